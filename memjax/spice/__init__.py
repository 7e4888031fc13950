"""SPICE export: ngspice netlists of memjax devices, MIF neurons and MEMprop networks,
running ngspice (when it is on ``PATH``) and reading its waveforms back.

See docs/spice.md.
"""

from ._subckt import HP_SUBCKT as HP_SUBCKT
from ._subckt import MIF_SUBCKT as MIF_SUBCKT
from ._subckt import MMSS_SUBCKT as MMSS_SUBCKT
from .netlist import DEFAULT_OPTIONS as DEFAULT_OPTIONS
from .netlist import device_netlist as device_netlist
from .netlist import mif_instance_params as mif_instance_params
from .netlist import mif_netlist as mif_netlist
from .netlist import source as source
from .network import crossbar_netlist as crossbar_netlist
from .network import memprop_netlist as memprop_netlist
from .network import simulate_memprop as simulate_memprop
from .network import synapse_conductances as synapse_conductances
from .run import Netlist as Netlist
from .run import NgspiceNotFoundError as NgspiceNotFoundError
from .run import SpiceResult as SpiceResult
from .run import ngspice_available as ngspice_available
from .run import run_ngspice as run_ngspice
