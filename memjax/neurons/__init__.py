"""Neurons: pure step functions plus thin `eqx.Module` parameter holders.

- :mod:`memjax.neurons.mif`: memristive integrate-and-fire (two MMSS memristors), the
  MEMprop neuron; analog output, no threshold, no surrogate.
- :mod:`memjax.neurons.lif`: leaky integrate-and-fire with a surrogate gradient.
- :mod:`memjax.neurons.alif`: adaptive LIF whose spike-frequency adaptation is stored in a
  multi-level RRAM cell.
"""

from .alif import ALIF as ALIF
from .alif import ALIFState as ALIFState
from .alif import alif_run as alif_run
from .alif import alif_step as alif_step

from .lif import LIF as LIF
from .lif import LIFState as LIFState
from .lif import lif_step as lif_step
from .lif import spike_fn as spike_fn
from .lif import surrogate_grad as surrogate_grad
from .mif import MIF as MIF
from .mif import MIFState as MIFState
from .mif import mif_simulate as mif_simulate
from .mif import mif_step as mif_step
from .mif import mif_vector_field as mif_vector_field
