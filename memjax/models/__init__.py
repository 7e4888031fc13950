"""The networks of the reproductions: the ReLU baseline, MEMprop, metaplastic and SFA nets."""

from .ann import MLP as MLP
from .ann import classification_metrics as classification_metrics
from .ann import cross_entropy_loss as cross_entropy_loss
from .ann import flatten_scale as flatten_scale
from .ann import train_mlp as train_mlp
