"""Recipes: functions that build and train a model (a layer above `memjax.models`)."""

from .classifiers import train_cnn as train_cnn
from .classifiers import train_mlp as train_mlp
from .continual import Task as Task
from .continual import train_continual as train_continual
from .contrastive import SimCLR as SimCLR
from .contrastive import train_cnn_simclr as train_cnn_simclr
