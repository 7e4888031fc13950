"""Deployment of spiking networks onto memristive crossbars (guide: docs/hardware.md).

``deploy(model, config, key)`` maps every weight layer of a `memjax.nir.NIRNetwork` onto
RRAM crossbars of a :class:`HardwareConfig` (presets :func:`rram_16level`,
:func:`neurosim_rram`, :func:`crosssim_milo`); ``finetune`` trains the deployed network
hardware-aware, ``reprogram`` writes it back; :mod:`~memjax.hardware.ir_drop` solves the
arrays' wire resistance, :class:`PulseDevice` is the nonlinear pulse-programmed cell,
:func:`substitute_mif` replaces LIF neurons by memristive MIF neurons.
"""

from . import ir_drop as ir_drop
from . import spice as spice
from .config import HardwareConfig as HardwareConfig
from .config import crosssim_milo as crosssim_milo
from .config import neurosim_rram as neurosim_rram
from .config import rram_16level as rram_16level
from .deploy import deploy as deploy
from .deploy import hardware_layers as hardware_layers
from .deploy import reprogram as reprogram
from .deploy import set_mode as set_mode
from .deploy import with_config as with_config
from .finetune import finetune as finetune
from .finetune import project_hardware as project_hardware
from .finetune import rate_loss as rate_loss
from .finetune import spike_accuracy as spike_accuracy
from .layers import HardwareAffine as HardwareAffine
from .layers import HardwareConv2d as HardwareConv2d
from .mif import MIFNode as MIFNode
from .mif import fit_mif_gain as fit_mif_gain
from .mif import substitute_mif as substitute_mif
from .pulses import PulseDevice as PulseDevice
