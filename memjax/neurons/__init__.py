"""Neurons: one interface (:class:`AbstractNeuron`), pure step functions and thin
`eqx.Module` parameter holders, and one simulation loop (:func:`simulate`).

- :mod:`memjax.neurons.mif`: memristive integrate-and-fire (two MMSS memristors), the
  MEMprop neuron; continuous time, analog output, no threshold, no surrogate.
- :mod:`memjax.neurons.lif`: leaky integrate-and-fire with a surrogate gradient
  (discrete time).
- :mod:`memjax.neurons.alif`: adaptive LIF whose spike-frequency adaptation is stored in a
  multi-level RRAM cell (discrete time).

Time base of :func:`simulate` (and :func:`mif_simulate`): ``states[k]`` is the state at
``t0 + k dt``, the initial state first, as in :func:`memjax.integrate.odeint`.
"""

from ._base import AbstractNeuron as AbstractNeuron
from ._base import simulate as simulate
from .alif import ALIF as ALIF
from .alif import ALIFState as ALIFState
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
from .mif_transient import mif_transient as mif_transient
from .mif_transient import rk4_substeps as rk4_substeps
