"""Short path to the training API: `fit`, `evaluate`, `TrainState` and
`restore_checkpoint` (defined in `memjax.training.fit`) and `accuracy` (`memjax.losses`)."""

from .losses import accuracy as accuracy
from .training.fit import TrainState as TrainState
from .training.fit import evaluate as evaluate
from .training.fit import fit as fit
from .training.fit import restore_checkpoint as restore_checkpoint

__all__ = ["TrainState", "fit", "evaluate", "accuracy", "restore_checkpoint"]
