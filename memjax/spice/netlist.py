"""ngspice netlists of memjax objects: a device population, a MIF layer, a MEMprop network.

Parameters are written at the values the memjax object holds (float64 ``repr``), so the
netlist simulates the same equations as memjax (the subcircuits in
:mod:`memjax.spice._subckt`). Every writer returns a :class:`~memjax.spice.run.Netlist`
(deck without its ``.control`` block, and the probe names) for
:func:`~memjax.spice.run.run_ngspice`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jaxtyping import ArrayLike, Float

from .._validation import check_positive
from ..devices.hp import HPMemristor
from ..devices.mmss import MMSSMemristor
from ..devices.windows import Joglekar
from ..neurons.mif import MIF
from ..waveforms import Constant, PulseTrain, Sine
from ._subckt import HP_SUBCKT, MIF_SUBCKT, MMSS_SUBCKT
from .run import Netlist

__all__ = [
    "DEFAULT_OPTIONS",
    "device_netlist",
    "mif_netlist",
    "mif_instance_params",
    "source",
]

#: ngspice's defaults, written out (trapezoidal rule, reltol 1e-3).
DEFAULT_OPTIONS = ".options reltol=1e-3 abstol=1e-12 vntol=1e-6 method=trap"

#: subcircuit parameter -> field path, per device class.
_DEVICE_PARAMS: dict[type, tuple[str, str, dict[str, str]]] = {
    HPMemristor: (
        HP_SUBCKT,
        "hpmem",
        {"ron": "R_on", "roff": "R_off", "d": "D", "uv": "mu_v", "wp": "window.p", "x0": "x0"},
    ),
    MMSSMemristor: (
        MMSS_SUBCKT,
        "mmss",
        {
            "ron": "R_on",
            "roff": "R_off",
            "von": "V_on",
            "voff": "V_off",
            "tau": "tau",
            "vt": "v_t",
            "phi": "phi",
            "af": "a_f",
            "bf": "b_f",
            "ar": "a_r",
            "br": "b_r",
            "x0": "x0",
        },
    ),
}

_MIF_MEM = {"ron": "R_on", "roff": "R_off", "von": "V_on", "voff": "V_off", "tau": "tau"}


def _num(x) -> str:
    return repr(float(x))


def _field(obj, path: str) -> np.ndarray:
    for part in path.split("."):
        obj = getattr(obj, part)
    return np.asarray(obj, np.float64)


def _pick(value: np.ndarray, k: int) -> float:
    return float(value if value.ndim == 0 else value.reshape(-1)[k])


def source(name: str, node: str, drive) -> str:
    """An independent voltage source ``name`` from ``node`` to ground for a
    `memjax.waveforms` drive: `Sine` (``SIN``), `PulseTrain` (``PULSE``), `Constant`
    (``DC``), or a pair ``(t, v)`` of sample arrays (``PWL``)."""
    if isinstance(drive, Sine):
        if float(np.asarray(drive.phase)) != 0.0:
            raise ValueError("source: a Sine drive must have phase 0 (ngspice SIN has a delay)")
        a, f, o = (_num(np.asarray(q)) for q in (drive.amplitude, drive.frequency, drive.offset))
        return f"{name} {node} 0 SIN({o} {a} {f})"
    if isinstance(drive, PulseTrain):
        b, a, d, w, p = (
            _num(np.asarray(q))
            for q in (drive.base, drive.amplitude, drive.delay, drive.width, drive.period)
        )
        return f"{name} {node} 0 PULSE({b} {a} {d} 1e-12 1e-12 {w} {p})"
    if isinstance(drive, Constant):
        return f"{name} {node} 0 DC {_num(np.asarray(drive.value))}"
    if isinstance(drive, tuple) and len(drive) == 2:
        t, v = (np.asarray(q, np.float64).reshape(-1) for q in drive)
        if t.shape != v.shape or t.size < 2 or np.any(np.diff(t) <= 0):
            raise ValueError(
                "source: a (t, v) drive needs two equal-length arrays with strictly "
                f"increasing t; got shapes {t.shape}, {v.shape}"
            )
        pts = " ".join(f"{_num(a)} {_num(b)}" for a, b in zip(t, v, strict=True))
        return f"{name} {node} 0 PWL({pts})"
    raise TypeError(
        "source: drive must be a memjax.waveforms Sine, PulseTrain or Constant, or a (t, v) "
        f"pair of arrays; got {type(drive).__name__}"
    )


def _tran(t_step: float, t_stop: float, max_step: float | None) -> str:
    check_positive("netlist", "t_stop", t_stop, "s")
    check_positive("netlist", "t_step", t_step, "s")
    ms = "" if max_step is None else f" {_num(max_step)}"
    return f".tran {_num(t_step)} {_num(t_stop)} 0{ms} uic"


def device_netlist(
    device,
    drive,
    t_stop: float,
    *,
    t_step: float | None = None,
    max_step: float | None = None,
    probe: Sequence[int] = (0,),
    options: str = DEFAULT_OPTIONS,
) -> Netlist:
    """``n`` devices of a population (array-valued fields; one device for scalar fields)
    in parallel across one voltage source ``vin`` driven by ``drive`` (see :func:`source`).

    Supported models: `HPMemristor` with the `Joglekar` window and `MMSSMemristor`.
    Probes: ``v(in)``, ``i(vin)`` (minus the total device current) and, for each index in
    ``probe``, the device current ``i(vs<k>)`` (a 0 V ammeter in series) and its state
    ``v(x<k>.x)``.
    """
    cls = type(device)
    if cls not in _DEVICE_PARAMS:
        raise TypeError(
            f"device_netlist: no ngspice subcircuit for {cls.__name__}; supported: "
            + ", ".join(c.__name__ for c in _DEVICE_PARAMS)
        )
    if isinstance(device, HPMemristor) and not isinstance(device.window, Joglekar):
        raise TypeError("device_netlist: HPMemristor is supported with the Joglekar window only")
    text, sub, params = _DEVICE_PARAMS[cls]
    values = {p: _field(device, f) for p, f in params.items()}
    n = max(int(v.size) for v in values.values())
    probe = sorted({int(k) for k in probe})
    if probe and (probe[0] < 0 or probe[-1] >= n):
        raise ValueError(f"device_netlist: probe indices must lie in [0, {n - 1}]; got {probe}")
    lines = [f"* memjax: {n} {cls.__name__} device(s)", text, source("Vin", "in", drive)]
    for k in range(n):
        ps = " ".join(f"{p}={_pick(v, k)!r}" for p, v in values.items())
        node = f"p{k}" if k in probe else "in"
        if k in probe:
            lines.append(f"Vs{k} in p{k} DC 0")
        lines.append(f"X{k} {node} 0 {sub} {ps}")
    step = t_stop / 1000 if t_step is None else t_step
    lines += [options, _tran(step, t_stop, max_step)]
    probes = ("v(in)", "i(vin)") + tuple(f"i(vs{k})" for k in probe)
    probes += tuple(f"v(x{k}.x)" for k in probe)
    return Netlist("\n".join(lines), probes)


def mif_instance_params(mif: MIF, state=None) -> list[dict[str, float]]:
    """Per neuron, the ``mif`` subcircuit parameters of a (population of) `MIF` neuron(s)
    and its initial state (``state``: a `MIFState`; default the rest point)."""
    if not isinstance(mif, MIF):
        raise TypeError(f"mif_instance_params: mif must be a MIF; got {type(mif).__name__}")
    if state is None:
        with jax.enable_x64(True):
            state = mif.init_state(np.shape(mif.C), np.float64)
    vals = {"c": _field(mif, "C"), "e1": _field(mif, "E1"), "e2": _field(mif, "E2")}
    vals["taua"] = _field(mif, "tau_a")
    for k in (1, 2):
        for p, f in _MIF_MEM.items():
            vals[f"{p}{k}"] = _field(mif, f"m{k}.{f}")
        vals[f"vt{k}"] = _field(mif, f"m{k}.v_t")
        vals[f"s{k}"] = np.asarray(getattr(mif, f"polarity{k}"), np.float64)
    for p, f in (("v0", "v"), ("x10", "x1"), ("x20", "x2"), ("a0", "a"), ("i0", "i")):
        vals[p] = np.asarray(getattr(state, f), np.float64)
    n = max(int(v.size) for v in vals.values())
    return [{p: _pick(v, k) for p, v in vals.items()} for k in range(n)]


def _mif_line(name: str, inp: str, mem: str, ps: dict[str, float], iscale: float) -> str:
    a0, i0 = float(ps["a0"]) / iscale, float(ps["i0"]) / iscale
    body = " ".join(f"{p}={v!r}" for p, v in ps.items() if p not in ("a0", "i0"))
    return f"{name} {inp} {mem} mif iscale={float(iscale)!r} a0={a0!r} i0={i0!r} {body}"


def mif_netlist(
    mif: MIF,
    i_in: Float[ArrayLike, " n"],
    t_stop: float,
    *,
    state=None,
    t_step: float | None = None,
    max_step: float | None = None,
    probe: Sequence[int] = (0,),
    iscale: float = 1e-6,
    options: str = DEFAULT_OPTIONS,
) -> Netlist:
    """A layer of ``n`` independent MIF neurons, neuron ``k`` driven by a constant input
    current ``i_in[k]`` (A) from ``t = 0`` (through its alpha filter, as `mif_step` with
    a held input); ``mif`` a scalar `MIF` or a population of ``n``. Initial state
    ``state`` (default the rest point). Probes ``v(m<k>)``, ``v(x<k>.x1)``,
    ``v(x<k>.x2)`` for each index in ``probe``. ``iscale`` (A) is the current that the
    subcircuit's internal filter nodes represent by 1 V.
    """
    i_in = np.asarray(i_in, np.float64).reshape(-1)
    params = mif_instance_params(mif, state)
    n = len(i_in)
    if len(params) not in (1, n):
        raise ValueError(f"mif_netlist: mif holds {len(params)} neurons but i_in has {n}")
    check_positive("mif_netlist", "iscale", iscale, "A")
    probe = sorted({int(k) for k in probe})
    if probe and (probe[0] < 0 or probe[-1] >= n):
        raise ValueError(f"mif_netlist: probe indices must lie in [0, {n - 1}]; got {probe}")
    lines = [f"* memjax: {n} MIF neuron(s)", MIF_SUBCKT]
    for k in range(n):
        ps = params[k if len(params) > 1 else 0]
        lines.append(f"Vin{k} in{k} 0 DC {float(i_in[k]) / iscale!r}")
        lines.append(_mif_line(f"X{k}", f"in{k}", f"m{k}", ps, iscale))
    step = t_stop / 1000 if t_step is None else t_step
    lines += [options, _tran(step, t_stop, max_step)]
    probes = tuple(f"v(m{k})" for k in probe)
    probes += tuple(f"v(x{k}.{q})" for k in probe for q in ("x1", "x2"))
    return Netlist("\n".join(lines), probes)
