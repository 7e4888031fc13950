"""Short path to the training API: `fit`, `evaluate`, `TrainState` and
`restore_checkpoint` (defined in `memjax.training.supervised`) and `accuracy`
(`memjax.losses`)."""

from .losses import accuracy as accuracy
from .training.supervised import TrainState as TrainState
from .training.supervised import evaluate as evaluate
from .training.supervised import fit as fit
from .training.supervised import restore_checkpoint as restore_checkpoint

__all__ = ["TrainState", "fit", "evaluate", "accuracy", "restore_checkpoint"]
