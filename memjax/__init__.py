"""memjax: memristive spiking neural networks in JAX.

Device compact models as pure JAX functions, integrated with `lax.scan`, batched with
`vmap` and differentiated with `grad`; memristive neurons, RRAM crossbars and the
training loops built on them.
"""

from . import calibrate as calibrate
from . import crossbar as crossbar
from . import data as data
from . import devices as devices
from . import distributed as distributed
from . import integrate as integrate
from . import learning as learning
from . import losses as losses
from . import models as models
from . import neurons as neurons
from . import populations as populations
from . import recipes as recipes
from . import spice as spice
from . import train as train
from . import training as training
from . import waveforms as waveforms
from .crossbar import Crossbar as Crossbar
from .crossbar import CrossbarConfig as CrossbarConfig
from .crossbar import project_crossbars as project_crossbars
from .devices import MultiLevelRRAM as MultiLevelRRAM
from .devices import simulate as simulate
from .devices import simulate_reference as simulate_reference
from .integrate import RK4 as RK4
from .integrate import Euler as Euler
from .integrate import Heun as Heun
from .integrate import checkpointed_scan as checkpointed_scan
from .integrate import odeint as odeint
from .losses import accuracy as accuracy
from .losses import cross_entropy as cross_entropy
from .neurons import LIF as LIF
from .neurons import MIF as MIF
from .neurons import AbstractNeuron as AbstractNeuron
from .neurons import lif_step as lif_step
from .neurons import mif_step as mif_step
from .populations import sample_population as sample_population
from .populations import simulate_population as simulate_population
from .training import TrainState as TrainState
from .training import evaluate as evaluate
from .training import fit as fit

__version__ = "0.1.0"
