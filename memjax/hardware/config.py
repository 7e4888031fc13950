"""`HardwareConfig`: what a deployed network's crossbars are made of, with presets.

Every weight of an ``Affine`` / ``Linear`` / ``Conv2d`` node becomes a differential pair
of cells of ``device`` (:class:`memjax.devices.MultiLevelRRAM`): finite levels,
programming noise (program-and-verify with ``device.max_iterations`` iterations, or
one shot with ``max_iterations = 1``), read noise, stuck-at faults, power-law drift; the
converters and the wire resistance of the arrays are set here. ``pulse`` replaces
program-and-verify by an open-loop pulse write on a nonlinear, asymmetric cell
(:class:`memjax.hardware.PulseDevice`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx

from .._validation import check_int, check_nonnegative, check_positive
from ..crossbar import CrossbarConfig
from ..devices.rram import MultiLevelRRAM
from .pulses import PulseDevice

__all__ = ["HardwareConfig", "rram_16level", "neurosim_rram", "crosssim_milo"]


class HardwareConfig(eqx.Module):
    """Static deployment settings (hashable: Python numbers only).

    - `device`: the RRAM cell (:class:`MultiLevelRRAM`).
    - `quantize_levels`, `program_noise`, `stuck_faults`, `read_noise`: switches of the
      cell's non-idealities (the cell's own parameters set their size).
    - `drift_time`: seconds since programming at which the network is read (None: 0).
    - `dac_bits`, `adc_bits`, `v_read` (V), `adc_range` (A): converters as in
      :class:`memjax.crossbar.CrossbarConfig`.
    - `r_wire`: wire resistance per cell segment (ohm; None: no IR drop);
      `ir_mode`: ``"exact"`` (converged solve) or ``"fast"`` (`ir_sweeps` sweeps);
      `tile`: the physical array size ``(rows, cols)`` a layer is split into.
    - `pulse`: program by pulses on this :class:`PulseDevice` instead of by
      program-and-verify (None); `pulse_aware`: invert its nonlinearity when counting
      pulses.
    """

    device: MultiLevelRRAM = eqx.field(default_factory=MultiLevelRRAM)
    quantize_levels: bool = True
    program_noise: bool = True
    stuck_faults: bool = True
    read_noise: bool = True
    drift_time: float | None = None
    dac_bits: int | None = None
    adc_bits: int | None = None
    v_read: float = 0.2
    adc_range: float | None = None
    r_wire: float | None = None
    ir_mode: str = "exact"
    ir_sweeps: int = 1
    tile: tuple[int, int] = (128, 128)
    pulse: PulseDevice | None = None
    pulse_aware: bool = False

    def __check_init__(self):
        n = "HardwareConfig"
        if not isinstance(self.device, MultiLevelRRAM):
            raise ValueError(f"{n}.device must be a MultiLevelRRAM; got {type(self.device)}")
        if self.drift_time is not None:
            check_positive(n, "drift_time", self.drift_time, "s")
        if self.r_wire is not None:
            check_positive(n, "r_wire", self.r_wire, "ohm")
        if self.ir_mode not in ("exact", "fast"):
            raise ValueError(f"{n}.ir_mode must be 'exact' or 'fast'; got {self.ir_mode!r}")
        check_int(f"{n}.ir_sweeps", self.ir_sweeps, 1)
        if len(self.tile) != 2:
            raise ValueError(f"{n}.tile must be (rows, cols); got {self.tile!r}")
        for t in self.tile:
            check_int(f"{n}.tile", t, 1)
        check_positive(n, "v_read", self.v_read, "V")
        check_nonnegative(n, "device.nu", self.device.nu)
        if self.pulse is not None and not isinstance(self.pulse, PulseDevice):
            raise ValueError(f"{n}.pulse must be a PulseDevice or None; got {type(self.pulse)}")

    def replace(self, **kw) -> "HardwareConfig":
        """A copy with fields replaced (``device`` fields: ``device=cfg.device.replace(...)``)."""
        return dataclasses.replace(self, **kw)

    def crossbar_config(self) -> CrossbarConfig:
        """The :class:`CrossbarConfig` used to program a layer (program-and-verify path)."""
        return CrossbarConfig(
            device=self.device,
            quantize_levels=self.quantize_levels,
            program_noise=self.program_noise,
            stuck_faults=self.stuck_faults,
            read_noise=self.read_noise,
            v_read=self.v_read,
        )


def rram_16level(**kw) -> HardwareConfig:
    """16-level RRAM with 5 % programming noise (one shot: a write error of standard
    deviation 5 % of the conductance range), 2 % read noise (of G), 1 % stuck cells
    (half at G_max, half at G_min): the deployment target of the `nir-deploy`
    benchmark. Bounds [0.476, 10] uS of NeuroSim's ``RealDevice`` (Chen, Peng & Yu, IEEE
    TCAD 2018). Drift exponent ``nu = 0.01`` is the project's choice (a slow RRAM
    relaxation; aihwkit models ReRAM without power-law drift). ``kw`` overrides fields of
    the :class:`HardwareConfig`."""
    dev = MultiLevelRRAM(
        n_levels=16,
        write_sigma=0.05,
        max_iterations=1,
        read_sigma=0.02,
        p_stuck_lrs=0.005,
        p_stuck_hrs=0.005,
        nu=0.01,
    )
    return HardwareConfig(device=dev, **kw)


def neurosim_rram(**kw) -> HardwareConfig:
    """NeuroSim's ``RealDevice`` RRAM (Chen, Peng & Yu, IEEE TCAD 2018; MLP_NeuroSim
    V3.0 ``Cell.cpp``): [0.476, 10] uS, 32 levels, cycle-to-cycle noise 0.5 % of the
    range per pulse, programmed by open-loop pulses on a nonlinear, asymmetric cell
    (:class:`PulseDevice` with ``A_p = 8``, ``A_d = 4`` pulses over 31 pulses: the
    project's choice of a clearly nonlinear cell). Read noise 1 % (the default of
    :class:`MultiLevelRRAM`)."""
    dev = MultiLevelRRAM()
    pulse = PulseDevice(G_min=dev.G_min, G_max=dev.G_max, n_pulses=dev.n_levels - 1)
    return HardwareConfig(device=dev, pulse=pulse, **kw)


def crosssim_milo(**kw) -> HardwareConfig:
    """Sandia CrossSim's RRAM programming-error fit (``RRAM_Milo.py``, after Milo et al.,
    IRPS 2021): G in [50, 225] uS, state-dependent one-shot write error
    (:meth:`MultiLevelRRAM.crosssim_milo`)."""
    return HardwareConfig(device=MultiLevelRRAM.crosssim_milo(), quantize_levels=False, **kw)
