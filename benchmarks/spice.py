"""``spice``: memjax against ngspice on the same devices, drive and time span.

Two devices with hand-written ngspice behavioural subcircuits (``benchmarks/netlists``):
the HP linear-drift model with the Joglekar window (``hp.sub``) and the MMSS model
(``mmss.sub``). In each, the port current is a B-source and the state variable is the
voltage of a 1 F capacitor charged by a second B-source whose current is ``dx/dt`` (the
integrator of Knowm's MSS subcircuit).

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
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._context import Context
from ._timing import timeit

__all__ = ["SPICE_CASES", "SpiceCase", "run"]

NETLISTS = Path(__file__).resolve().parent / "netlists"
NGSPICE_OPTIONS = ".options reltol=1e-7 abstol=1e-15 vntol=1e-10 chgtol=1e-20 method=trap"
#: memjax samples per period; ngspice's maximum step is ``T / NGSPICE_STEPS_PER_PERIOD``.
MEMJAX_STEPS_PER_PERIOD = 400
NGSPICE_STEPS_PER_PERIOD = 4000
PERIODS = 2


@dataclasses.dataclass(frozen=True)
class SpiceCase:
    """A device with a subcircuit: ``params`` maps subcircuit parameter -> model field."""

    subckt_file: str
    subckt_name: str
    build: Callable[[], Any]
    amplitude: float  # V
    frequency: float  # Hz
    params: dict
    spread: dict


def _hp():
    from memjax.devices.hp import HPMemristor

    return HPMemristor()


def _mmss():
    from memjax.devices.mmss import MMSSMemristor

    return MMSSMemristor()


SPICE_CASES: dict[str, SpiceCase] = {
    "hp": SpiceCase(
        "hp.sub",
        "hpmem",
        _hp,
        1.0,
        0.5,
        params={
            "ron": "R_on",
            "roff": "R_off",
            "d": "D",
            "uv": "mu_v",
            "wp": "window.p",
            "x0": "x0",
        },
        spread={"R_on": 0.1, "R_off": 0.1, "mu_v": 0.1},
    ),
    "mmss": SpiceCase(
        "mmss.sub",
        "mmss",
        _mmss,
        0.5,
        1e3,
        params={
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
        spread={"R_on": 0.1, "R_off": 0.1, "tau": 0.1},
    ),
}


def _field(dev, path: str):
    obj = dev
    for part in path.split("."):
        obj = getattr(obj, part)
    return np.asarray(obj, dtype=np.float64)


def _netlist(case: SpiceCase, dev, n: int, out: Path, probe_state: bool) -> str:
    """``n`` instances of the subcircuit across one sine source; instance ``k`` takes
    device ``k`` of ``dev`` (a population) or ``dev`` itself (a scalar device)."""
    T = 1.0 / case.frequency
    values = {p: _field(dev, f) for p, f in case.params.items()}
    lines = [
        f"* memjax spice benchmark: {case.subckt_name}, {n} device(s)",
        (NETLISTS / case.subckt_file).read_text().strip(),
        f"Vin in 0 SIN(0 {case.amplitude!r} {case.frequency!r})",
    ]
    for k in range(n):
        ps = " ".join(f"{p}={float(v if v.ndim == 0 else v[k])!r}" for p, v in values.items())
        lines.append(f"X{k} in 0 {case.subckt_name} {ps}")
    probes = "v(in) i(vin)" + (" v(x0.x)" if probe_state else "")
    lines += [
        NGSPICE_OPTIONS,
        f".tran {T / MEMJAX_STEPS_PER_PERIOD!r} {PERIODS * T!r} 0 "
        f"{T / NGSPICE_STEPS_PER_PERIOD!r} uic",
        ".control",
        "set wr_singlescale",
        "set wr_vecnames",
        "set numdgt=15",
        "run",
        "rusage all",
        f"wrdata {out} {probes}",
        "quit",
        ".endc",
        ".end",
    ]
    return "\n".join(lines) + "\n"


def run_ngspice(netlist: str, workdir: Path, stem: str) -> dict:
    """Write ``stem.cir``, run ``ngspice -b`` on it and read ``stem.txt`` (its ``wrdata``):
    the data, the process wall time and ngspice's own analysis statistics."""
    cir = workdir / f"{stem}.cir"
    out = workdir / f"{stem}.txt"
    cir.write_text(netlist)
    t0 = time.perf_counter()
    proc = subprocess.run(["ngspice", "-b", str(cir)], capture_output=True, text=True, cwd=workdir)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"ngspice failed (rc {proc.returncode}) on {cir}:\n{log[-3000:]}")
    data = np.loadtxt(out, skiprows=1)

    def stat(label):
        m = re.search(rf"{label}\s*=\s*([0-9.eE+-]+)", log)
        return float(m.group(1)) if m else None

    return {
        "data": data,
        "wall": wall,
        "analysis": stat(r"Total analysis time \(seconds\)"),
        "timepoints": stat("Transient timepoints"),
        "iterations": stat("Transient iterations"),
    }


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
        sp = run_ngspice(
            _netlist(case, pop, n, workdir / f"{name}_{n}.txt", n == 1), workdir, f"{name}_{n}"
        )
        compiled, arrays, compile_s = _memjax_fn(case, pop)
        stats = timeit(compiled, arrays, repeats=repeats, warmup=1)
        t_mj, x_mj, i_mj = (np.asarray(a) for a in compiled(arrays))
        t_sp, i_sum_sp = sp["data"][:, 0], -sp["data"][:, 2]
        err, _ = _interp_err(t_mj, i_mj.sum(0), t_sp, i_sum_sp)
        key = str(n)
        rec["ngspice_seconds"][key] = sp["wall"]
        rec["ngspice_analysis_seconds"][key] = sp["analysis"]
        rec["ngspice_timepoints"][key] = sp["timepoints"]
        rec["memjax_seconds"][key] = stats["median_s"]
        rec["memjax_compile_seconds"][key] = compile_s
        rec["speedup"][key] = sp["wall"] / stats["median_s"]
        rec["speedup_incl_compile"][key] = sp["wall"] / (compile_s + stats["median_s"])
        rec["sum_current_rel_err"][key] = float(np.max(err) / np.max(np.abs(i_mj.sum(0))))
        if n == 1:
            x_sp = sp["data"][:, 3]
            err_i, m = _interp_err(t_mj, i_mj[0], t_sp, -sp["data"][:, 2])
            err_x, _ = _interp_err(t_mj, x_mj[0], t_sp, x_sp)
            rec["max_rel_err"] = float(np.max(err_i) / np.max(np.abs(i_mj[0])))
            rec["state_max_abs_err"] = float(np.max(err_x))
            rec["compared_samples"] = int(np.sum(m))
            wave = {
                "t_mj": t_mj,
                "i_mj": i_mj[0],
                "t_sp": t_sp,
                "i_sp": -sp["data"][:, 2],
                "err": err_i / np.max(np.abs(i_mj[0])),
                "t_err": t_mj[m],
            }
        ctx.log(
            f"{name}: N={n}: ngspice {sp['wall']:.3g} s, memjax {stats['median_s']:.3g} s "
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
                "subcircuit": c.subckt_file,
                "amplitude_V": c.amplitude,
                "frequency_Hz": c.frequency,
                "spread": c.spread,
            }
            for name, c in SPICE_CASES.items()
        },
    }
    return {"metrics": metrics, "config": config}
