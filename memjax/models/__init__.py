"""The networks of the reproductions: the ReLU baseline, MEMprop, metaplastic and SFA nets."""

from . import sfa_snn as sfa_snn
from . import wta as wta
from .ann import MLP as MLP
from .ann import classification_metrics as classification_metrics
from .ann import cross_entropy_loss as cross_entropy_loss
from .ann import flatten_scale as flatten_scale
from .memprop import DenseSynapse as DenseSynapse
from .memprop import LIFNet as LIFNet
from .memprop import MEMprop as MEMprop
from .metaplastic import MetaplasticMLP as MetaplasticMLP
from .metaplastic import memory_bits as memory_bits
