"""``spice``: memjax against ngspice on the same devices, drive and time span.

Two devices with ngspice behavioural subcircuits (`memjax.spice`, netlists by
`memjax.spice.device_netlist`): the HP linear-drift model with the Joglekar window
(``HP_SUBCKT``) and the MMSS model (``MMSS_SUBCKT``). In each, the port current is a
B-source and the state variable is the voltage of a 1 F capacitor charged by a second
B-source whose current is ``dx/dt`` (the integrator of Knowm's MSS subcircuit).

Drive: ``v = A sin(2 pi f t)`` for two periods, the same ``A`` and ``f`` as the device's row
in :mod:`benchmarks.devices`. memjax: RK4 at ``T / 400`` (float64, the precision ngspice
computes in). ngspice: batch mode (``ngspice -b``), trapezoidal rule, ``maxstep = T / 4000``
and tight tolerances (:data:`NGSPICE_OPTIONS`) so that the comparison measures modelling
agreement rather than integration error; the output is read with ``wrdata``.

Metrics per device:

- ``max_rel_err``: one nominal device; ngspice's current linearly interpolated onto the
  memjax sample times (those inside ngspice's output span), ``max |i_mj - i_sp| /
  max |i_mj|``. ``state_max_abs_err``: the same for the state ``x``.
- ``ngspice_seconds[N]``: wall time of the ``ngspice -b`` process for a netlist with ``N``
  independent instances (one shared source; per-instance parameters from the same D2D
  population memjax simulates; ``N = 1`` is the nominal device), parsing included;
  ``ngspice_analysis_seconds[N]``: ngspice's own "Total analysis time".
- ``memjax_seconds[N]``: median steady-state wall time of one jitted call simulating the
  whole population (all states and currents returned); ``memjax_compile_seconds[N]``
  separately. ``speedup[N] = ngspice_seconds / memjax_seconds``;
  ``speedup_incl_compile[N]`` uses memjax compile + run time.
- ``sum_current_rel_err[N]``: ngspice's source current (the sum over the N devices) vs
  the sum of memjax's currents, relative to its max: both tools ran the same population.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memjax.spice import run_ngspice

from ._context import Context
from ._timing import timeit

__all__ = ["SPICE_CASES", "SpiceCase", "run"]

NGSPICE_OPTIONS = ".options reltol=1e-7 abstol=1e-15 vntol=1e-10 chgtol=1e-20 method=trap"
#: memjax samples per period; ngspice's maximum step is ``T / NGSPICE_STEPS_PER_PERIOD``.
MEMJAX_STEPS_PER_PERIOD = 400
NGSPICE_STEPS_PER_PERIOD = 4000
PERIODS = 2


@dataclasses.dataclass(frozen=True)
class SpiceCase:
    """A device with an ngspice subcircuit in `memjax.spice` (``subcircuit`` names it)."""

    subcircuit: str
    build: Callable[[], Any]
    amplitude: float  # V
    frequency: float  # Hz
    spread: dict


def _hp():
    from memjax.devices.hp import HPMemristor

    return HPMemristor()


def _mmss():
    from memjax.devices.mmss import MMSSMemristor

    return MMSSMemristor()


SPICE_CASES: dict[str, SpiceCase] = {
    "hp": SpiceCase("HP_SUBCKT", _hp, 1.0, 0.5, spread={"R_on": 0.1, "R_off": 0.1, "mu_v": 0.1}),
    "mmss": SpiceCase(
        "MMSS_SUBCKT", _mmss, 0.5, 1e3, spread={"R_on": 0.1, "R_off": 0.1, "tau": 0.1}
    ),
}


def _netlist(case: SpiceCase, dev, n: int, probe_state: bool):
    """``n`` instances across one sine source (`memjax.spice.device_netlist`); the
    nominal device's current and state are probed when ``probe_state``."""
    from memjax.spice import device_netlist
    from memjax.waveforms import Sine

    T = 1.0 / case.frequency
    return device_netlist(
        dev,
        Sine(case.amplitude, case.frequency),
        PERIODS * T,
        t_step=T / MEMJAX_STEPS_PER_PERIOD,
        max_step=T / NGSPICE_STEPS_PER_PERIOD,
        probe=(0,) if probe_state else (),
        options=NGSPICE_OPTIONS,
    )


def _memjax_fn(case: SpiceCase, pop):
    import equinox as eqx
    import jax

    from memjax.devices import simulate
    from memjax.waveforms import Sine

    arrays, static = eqx.partition(pop, eqx.is_array)
    T = 1.0 / case.frequency
    n_steps = PERIODS * MEMJAX_STEPS_PER_PERIOD + 1
    drive = Sine(case.amplitude, case.frequency)

    def f(arrays):
        tr = simulate(
            eqx.combine(arrays, static), drive, dt=T / MEMJAX_STEPS_PER_PERIOD, n_steps=n_steps
        )
        return tr.t, tr.x, tr.i

    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(arrays).compile()
    return compiled, arrays, time.perf_counter() - t0


def _interp_err(t_mj, y_mj, t_sp, y_sp):
    m = (t_mj >= t_sp[0]) & (t_mj <= t_sp[-1])
    return np.abs(np.interp(t_mj[m], t_sp, y_sp) - y_mj[m]), m


def _one_case(ctx: Context, name: str, case: SpiceCase, sizes, repeats, workdir: Path):
    import jax

    from memjax.populations import sample_population

    dev = case.build()
    rec: dict[str, Any] = {
        "ngspice_seconds": {},
        "ngspice_analysis_seconds": {},
        "ngspice_timepoints": {},
        "memjax_seconds": {},
        "memjax_compile_seconds": {},
        "speedup": {},
        "speedup_incl_compile": {},
        "sum_current_rel_err": {},
    }
    wave = None
    for n in sizes:
        if n == 1:
            pop = sample_population(dev, jax.random.key(0), 1, {})
        else:
            pop = sample_population(
                dev, jax.random.fold_in(jax.random.key(ctx.seed), n), n, case.spread
            )
        sp = run_ngspice(_netlist(case, pop, n, n == 1), workdir=workdir, stem=f"{name}_{n}")
        compiled, arrays, compile_s = _memjax_fn(case, pop)
        stats = timeit(compiled, arrays, repeats=repeats, warmup=1)
        t_mj, x_mj, i_mj = (np.asarray(a) for a in compiled(arrays))
        t_sp, i_sum_sp = sp.t, -sp["i(vin)"]
        err, _ = _interp_err(t_mj, i_mj.sum(0), t_sp, i_sum_sp)
        key = str(n)
        rec["ngspice_seconds"][key] = sp.wall_s
        rec["ngspice_analysis_seconds"][key] = sp.analysis_s
        rec["ngspice_timepoints"][key] = sp.timepoints
        rec["memjax_seconds"][key] = stats["median_s"]
        rec["memjax_compile_seconds"][key] = compile_s
        rec["speedup"][key] = sp.wall_s / stats["median_s"]
        rec["speedup_incl_compile"][key] = sp.wall_s / (compile_s + stats["median_s"])
        rec["sum_current_rel_err"][key] = float(np.max(err) / np.max(np.abs(i_mj.sum(0))))
        if n == 1:
            x_sp = sp["v(x0.x)"]
            err_i, m = _interp_err(t_mj, i_mj[0], t_sp, sp["i(vs0)"])
            err_x, _ = _interp_err(t_mj, x_mj[0], t_sp, x_sp)
            rec["max_rel_err"] = float(np.max(err_i) / np.max(np.abs(i_mj[0])))
            rec["state_max_abs_err"] = float(np.max(err_x))
            rec["compared_samples"] = int(np.sum(m))
            wave = {
                "t_mj": t_mj,
                "i_mj": i_mj[0],
                "t_sp": t_sp,
                "i_sp": sp["i(vs0)"],
                "err": err_i / np.max(np.abs(i_mj[0])),
                "t_err": t_mj[m],
            }
        ctx.log(
            f"{name}: N={n}: ngspice {sp.wall_s:.3g} s, memjax {stats['median_s']:.3g} s "
            f"(compile {compile_s:.2f} s), sum-current err {rec['sum_current_rel_err'][key]:.2e}"
        )
    return rec, wave


def _plot_waves(ctx: Context, waves: dict):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2,
        len(waves),
        figsize=(5.2 * len(waves), 5.6),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [2.2, 1]},
    )
    for col, (name, w) in enumerate(waves.items()):
        case = SPICE_CASES[name]
        ax, ae = axes[0, col], axes[1, col]
        ax.plot(w["t_sp"] * 1e3, w["i_sp"] * 1e6, color="C0", lw=2.5, alpha=0.5, label="ngspice")
        ax.plot(w["t_mj"] * 1e3, w["i_mj"] * 1e6, "--", color="C3", lw=1.0, label="memjax")
        ax.set_ylabel("current (uA)")
        ax.set_title(f"{name}: {case.amplitude:g} V sine at {case.frequency:g} Hz", fontsize=10)
        ax.legend(fontsize=8)
        ae.semilogy(w["t_err"] * 1e3, np.maximum(w["err"], 1e-16), color="k", lw=0.8)
        ae.set_ylabel("|i_mj - i_sp| / max|i|")
        ae.set_xlabel("time (ms)")
    fig.suptitle("memjax (RK4, T/400) vs ngspice (trap, maxstep T/4000)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "waveforms")


def _plot_times(ctx: Context, recs: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for c, (name, r) in enumerate(recs.items()):
        ns = sorted(int(k) for k in r["ngspice_seconds"])
        ax.plot(
            ns,
            [r["ngspice_seconds"][str(n)] for n in ns],
            "o-",
            color=f"C{c}",
            label=f"{name}: ngspice",
        )
        ax.plot(
            ns,
            [r["memjax_seconds"][str(n)] for n in ns],
            "s--",
            color=f"C{c}",
            label=f"{name}: memjax (jitted)",
        )
        ax.plot(
            ns,
            [r["memjax_seconds"][str(n)] + r["memjax_compile_seconds"][str(n)] for n in ns],
            ":",
            color=f"C{c}",
            alpha=0.6,
            label=f"{name}: memjax incl. compile",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("devices N")
    ax.set_ylabel("wall time (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{PERIODS} drive periods, float64", fontsize=10)
    fig.tight_layout()
    ctx.save_figure(fig, "time_vs_n")


def run(ctx: Context) -> dict:
    """Run the benchmark (skipped, with a message, where ngspice is not installed)."""
    import jax

    exe = shutil.which("ngspice")
    if exe is None:
        ctx.log("ngspice not found on PATH: skipping")
        return {"metrics": {"skipped": "ngspice not found"}, "config": {}}
    version = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
    version = next(
        (ln.strip("* ").strip() for ln in version.splitlines() if "ngspice-" in ln), "unknown"
    )
    sizes = (1, 10, 100) if ctx.quick else (1, 100, 1000)
    repeats = 5
    metrics, waves = {}, {}
    with jax.enable_x64(True), tempfile.TemporaryDirectory(prefix="memjax-spice-") as tmp:
        for name, case in ctx.progress(SPICE_CASES.items(), desc="spice"):
            metrics[name], waves[name] = _one_case(ctx, name, case, sizes, repeats, Path(tmp))
    _plot_waves(ctx, waves)
    _plot_times(ctx, metrics)
    config = {
        "ngspice": version,
        "ngspice_options": NGSPICE_OPTIONS,
        "ngspice_method": "trap",
        "ngspice_maxstep": f"T/{NGSPICE_STEPS_PER_PERIOD}",
        "memjax_solver": "RK4",
        "memjax_dt": f"T/{MEMJAX_STEPS_PER_PERIOD}",
        "dtype": "float64",
        "periods": PERIODS,
        "sizes": list(sizes),
        "memjax_repeats": repeats,
        "cases": {
            name: {
                "subcircuit": f"memjax.spice.{c.subcircuit}",
                "amplitude_V": c.amplitude,
                "frequency_Hz": c.frequency,
                "spread": c.spread,
            }
            for name, c in SPICE_CASES.items()
        },
    }
    return {"metrics": metrics, "config": config}
