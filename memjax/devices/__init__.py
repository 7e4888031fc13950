"""Memristor compact models: pure state equations in `eqx.Module`s (SI units)."""

from ._base import AbstractMemristor as AbstractMemristor
from ._base import Trajectory as Trajectory
from ._base import clamp as clamp
from ._base import simulate as simulate
from ._base import simulate_reference as simulate_reference
from .hp import HPMemristor as HPMemristor
from .mmss import MMSSMemristor as MMSSMemristor
from .mmss import thermal_voltage as thermal_voltage
from .rram import MultiLevelRRAM as MultiLevelRRAM
from .rram import RRAMState as RRAMState
from .rram import crosssim_milo_sigma as crosssim_milo_sigma
from .stanford_pku import StanfordPKURRAM as StanfordPKURRAM
from .team import Kvatinsky as Kvatinsky
from .team import TEAMMemristor as TEAMMemristor
from .team import VTEAMMemristor as VTEAMMemristor
from .threshold import VO2ThresholdSwitch as VO2ThresholdSwitch
from .windows import AbstractWindow as AbstractWindow
from .windows import Biolek as Biolek
from .windows import Joglekar as Joglekar
from .windows import NoWindow as NoWindow
from .windows import Prodromakis as Prodromakis
from .yakopcic import YakopcicMemristor as YakopcicMemristor
