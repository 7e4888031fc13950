"""Training: the one loop (`run_epochs`), `fit` built on it, and verified checkpoints."""

from . import checkpoint as checkpoint
from . import loop as loop
from .checkpoint import CheckpointCorruptError as CheckpointCorruptError
from .checkpoint import Checkpointer as Checkpointer
from .checkpoint import CheckpointError as CheckpointError
from .checkpoint import CheckpointMismatchError as CheckpointMismatchError
from .checkpoint import NonFiniteStateError as NonFiniteStateError
from .checkpoint import fingerprint as fingerprint
from .checkpoint import fingerprint_digest as fingerprint_digest
from .loop import EpochResult as EpochResult
from .loop import run_epochs as run_epochs
from .supervised import TrainState as TrainState
from .supervised import accuracy as accuracy
from .supervised import evaluate as evaluate
from .supervised import fit as fit
from .supervised import fit_fingerprint as fit_fingerprint
from .supervised import restore_checkpoint as restore_checkpoint
