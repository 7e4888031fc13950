"""``speed-devices``: MIF neuron throughput, and memjax against ngspice.

- throughput: MIF neuron steps per second for ``N = 10^3 .. 10^6`` neurons (a D2D
  population, one jitted `lax.scan`, final state only);
- memjax against ngspice on ``N`` independent MIF neurons (behavioural netlist
  ``benchmarks/netlists/mif.sub``): the same 4 ms transient (a 2 ms current pulse of a
  per-neuron amplitude, then recovery), ngspice at its default tolerances, memjax's
  exponential splitting at 2 us (float32). ``speedup_vs_ngspice_1000`` = ngspice process
  wall time / memjax median run time at ``N = 1000``; ``max_rel_err``:
  ``max |v_mj - v_sp| / max |v_mj|`` per neuron, worst neuron over all sizes (probed
  neurons). Without ``ngspice`` on ``PATH`` the comparison is skipped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from memjax.neurons import MIF, mif_simulate, mif_step
from memjax.populations import sample_population

from ._context import Context
from ._plot import plt
from ._timing import load_avg, timeit
from .spice import run_ngspice

__all__ = ["run", "Settings", "FULL", "QUICK"]

NETLISTS = Path(__file__).resolve().parent / "netlists"


#: Relative D2D spread of the neuron population (lognormal), shared by memjax and SPICE.
SPREAD = {"C": 0.1, "m1.R_on": 0.1, "m2.R_on": 0.1}
#: Transient: pulse of PULSE_S, then recovery, to T_STOP; output every DT_OUT.
PULSE_S, T_STOP, DT_OUT = 2e-3, 4e-3, 1e-5
#: memjax inner step DT_OUT / SUBSTEPS = 2 us (the splitting is first order; 1e-3 error).
SUBSTEPS = 5
N_PROBES = 16


@dataclasses.dataclass(frozen=True)
class Settings:
    """Throughput at ``throughput_sizes`` neurons (``total_steps`` neuron steps per size,
    median of ``repeats``); the SPICE comparison at ``spice_sizes`` neurons."""

    throughput_sizes: tuple[int, ...] = (10**3, 10**4, 10**5, 10**6)
    total_steps: int = 2 * 10**7
    repeats: int = 5
    spice_sizes: tuple[int, ...] = (1, 10, 100, 1000)


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    throughput_sizes=(10**3, 10**4, 10**5),
    total_steps=2 * 10**6,
    repeats=3,
    spice_sizes=(1, 10, 100),
)

SUBCKT_PARAMS = {
    "c": "C",
    "e1": "E1",
    "e2": "E2",
    "taua": "tau_a",
    "ron1": "m1.R_on",
    "roff1": "m1.R_off",
    "von1": "m1.V_on",
    "voff1": "m1.V_off",
    "tau1": "m1.tau",
    "vt1": "m1.v_t",
    "ron2": "m2.R_on",
    "roff2": "m2.R_off",
    "von2": "m2.V_on",
    "voff2": "m2.V_off",
    "tau2": "m2.tau",
    "vt2": "m2.v_t",
}


def _field(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return np.asarray(obj, np.float64)


def _population(n: int, seed: int):
    spread = SPREAD if n > 1 else {}  # N = 1: the nominal neuron
    return sample_population(MIF(), jax.random.fold_in(jax.random.key(seed), n), n, spread)


def _amplitudes(n: int) -> np.ndarray:
    """Pulse amplitudes (A), log-spaced 3 .. 30 uA (10 uA for one neuron)."""
    if n == 1:
        return np.array([10e-6])
    return 3e-6 * 10.0 ** (np.arange(n) / (n - 1))


def _mif_netlist(pop, amps, rest, probes, out: Path) -> str:
    n = len(amps)
    vals = {p: _field(pop, f) for p, f in SUBCKT_PARAMS.items()}
    lines = [
        f"* memjax speed-devices: {n} independent MIF neuron(s)",
        (NETLISTS / "mif.sub").read_text().strip(),
        f"Vin in 0 PULSE(0 1 0 1e-9 1e-9 {PULSE_S!r} 1)",
    ]
    v0, x10, x20 = (np.asarray(r, np.float64) for r in rest)
    for k in range(n):
        ps = " ".join(f"{p}={float(v if v.ndim == 0 else v[k])!r}" for p, v in vals.items())
        lines.append(
            f"X{k} in mif gain={float(amps[k] * 1e6)!r} v0={float(v0[k])!r} x10={float(x10[k])!r} "
            f"x20={float(x20[k])!r} {ps}"
        )
    probe = " ".join(f"v(x{k}.m) v(x{k}.x1) v(x{k}.x2)" for k in probes)
    lines += [
        f".tran {DT_OUT!r} {T_STOP!r} 0 uic",
        ".control",
        "set wr_singlescale",
        "set wr_vecnames",
        "set numdgt=15",
        "run",
        "rusage all",
        f"wrdata {out} {probe}",
        "quit",
        ".endc",
        ".end",
    ]
    return "\n".join(lines) + "\n"


def _mif_transient_fn(pop, dtype):
    """Compiled ``(arrays, amps) -> states [T_out, N]`` of the pulse transient."""
    n_out = int(round(T_STOP / DT_OUT))
    arrays, static = eqx.partition(pop, eqx.is_array)
    arrays = jax.tree.map(lambda a: a.astype(dtype), arrays)
    tk = DT_OUT * np.arange(n_out)
    on = jnp.asarray(tk < PULSE_S - 1e-12, dtype)

    def f(arrays, amps):
        p = eqx.combine(arrays, static)
        _, st = mif_simulate(p, on[:, None] * amps[None, :], DT_OUT, substeps=SUBSTEPS)
        return st

    return f, arrays


def _throughput(ctx, sizes, total_steps, repeats):
    """Neuron steps per second of a scan over N MIF neurons (final state only)."""
    rec: dict[str, Any] = {
        "neuron_steps_per_second": {},
        "steps": {},
        "median_s": {},
        "compile_s": {},
    }
    for n in sizes:
        T = int(np.clip(total_steps // n, 20, 5000))
        pop = _population(n, ctx.seed)
        arrays, static = eqx.partition(pop, eqx.is_array)
        arrays = jax.tree.map(lambda a: a.astype(jnp.float32), arrays)
        amps = jnp.asarray(_amplitudes(n), jnp.float32)

        def f(arrays, amps, T=T, static=static):
            p = eqx.combine(arrays, static)
            s0 = p.init_state(amps.shape, jnp.float32)
            s, _ = jax.lax.scan(lambda s, _: (mif_step(p, s, amps, 2e-6), None), s0, None, length=T)
            return s

        t0 = time.perf_counter()
        comp = jax.jit(f).lower(arrays, amps).compile()
        compile_s = time.perf_counter() - t0
        st = timeit(comp, arrays, amps, repeats=repeats)
        assert bool(jnp.all(jnp.isfinite(comp(arrays, amps).v)))
        k = str(n)
        rec["steps"][k] = T
        rec["median_s"][k] = st["median_s"]
        rec["compile_s"][k] = compile_s
        rec["neuron_steps_per_second"][k] = n * T / st["median_s"]
        ctx.log(f"throughput N={n}: {n * T / st['median_s']:.3g} neuron-steps/s (T={T})")
    return rec


SPICE_KEYS = (
    "ngspice_seconds",
    "ngspice_analysis_seconds",
    "ngspice_timepoints",
    "memjax_seconds",
    "memjax_compile_seconds",
    "memjax_f64_seconds",
    "speedup",
    "speedup_analysis",
    "speedup_incl_compile",
    "speedup_f64",
    "max_rel_err",
    "max_rel_err_f64",
    "x_max_abs_err",
)


def _ngspice_version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
    return next((ln.strip("* ").strip() for ln in out.splitlines() if "ngspice-" in ln), "unknown")


def _memjax_transients(pop, amps):
    """Per dtype name: (timing, compile seconds, {v, x1, x2} as float64 arrays); and the
    float64 rest state ``(v, x1, x2)`` the netlist starts from."""
    n = len(amps)
    res = {}
    for dtype in (jnp.float32, jnp.float64):
        with jax.enable_x64(dtype == jnp.float64):
            f, arrays = _mif_transient_fn(pop, dtype)
            a = jnp.asarray(amps, dtype)
            t0 = time.perf_counter()
            comp = jax.jit(f).lower(arrays, a).compile()
            c_s = time.perf_counter() - t0
            st = timeit(comp, arrays, a, repeats=5)
            out = comp(arrays, a)
            res[str(np.dtype(dtype))] = (
                st,
                c_s,
                {k: np.asarray(getattr(out, k), np.float64) for k in ("v", "x1", "x2")},
            )
            if dtype == jnp.float64:
                s0 = pop.init_state((n,), dtype)
                rest = (s0.v, s0.x1, s0.x2)
    return res, rest


def _errors(res, probes, d):
    """Per dtype name: (max relative v error, max absolute x1/x2 error) over the probed
    neurons against the ngspice columns ``d``; and the waves of neuron 0 (float32)."""
    t_sp = d[:, 0]
    t_mj = DT_OUT * np.arange(int(round(T_STOP / DT_OUT)))
    m = t_mj <= t_sp[-1]
    errs, waves = {}, None
    for key, (_, _, out) in res.items():
        e, ex = 0.0, 0.0
        for j, k in enumerate(probes):
            v_sp = np.interp(t_mj[m], t_sp, d[:, 1 + 3 * j])
            v_mj = out["v"][m, k]
            e = max(e, float(np.max(np.abs(v_mj - v_sp)) / np.max(np.abs(v_mj))))
            for q, col in (("x1", 2), ("x2", 3)):
                x_sp = np.interp(t_mj[m], t_sp, d[:, col + 3 * j])
                ex = max(ex, float(np.max(np.abs(out[q][m, k] - x_sp))))
        errs[key] = (e, ex)
        if key == "float32":
            waves = {
                "t": t_mj,
                "v_mj": out["v"][:, 0],
                "t_sp": t_sp,
                "v_sp": d[:, 1],
                "x1_mj": out["x1"][:, 0],
                "x1_sp": d[:, 2],
            }
    return errs, waves


def _spice_case(ctx, n: int, tmp: Path, sp: dict):
    """memjax and ngspice on ``n`` neurons; fills column ``str(n)`` of ``sp``; the waves
    of neuron 0."""
    pop, amps = _population(n, ctx.seed), _amplitudes(n)
    probes = sorted(set(np.linspace(0, n - 1, min(n, N_PROBES)).astype(int)))
    res, rest = _memjax_transients(pop, amps)
    spr = run_ngspice(_mif_netlist(pop, amps, rest, probes, tmp / f"n{n}.txt"), tmp, f"n{n}")
    errs, waves = _errors(res, probes, spr["data"])
    k = str(n)
    st32, c32, _ = res["float32"]
    st64 = res["float64"][0]
    row = {
        "ngspice_seconds": spr["wall"],
        "ngspice_analysis_seconds": spr["analysis"],
        "ngspice_timepoints": spr["timepoints"],
        "memjax_seconds": st32["median_s"],
        "memjax_compile_seconds": c32,
        "memjax_f64_seconds": st64["median_s"],
        "speedup": spr["wall"] / st32["median_s"],
        "speedup_analysis": (spr["analysis"] or np.nan) / st32["median_s"],
        "speedup_incl_compile": spr["wall"] / (st32["median_s"] + c32),
        "speedup_f64": spr["wall"] / st64["median_s"],
        "max_rel_err": errs["float32"][0],
        "max_rel_err_f64": errs["float64"][0],
        "x_max_abs_err": errs["float32"][1],
    }
    for key, v in row.items():
        sp[key][k] = v
    ctx.log(
        f"N={n}: ngspice {spr['wall']:.3g} s ({spr['timepoints']} points), "
        f"memjax {st32['median_s']:.3g} s (f64 {st64['median_s']:.3g} s, "
        f"compile {c32:.2f} s), speedup {row['speedup']:.3g}, "
        f"v err {errs['float32'][0]:.2e} (f64 {errs['float64'][0]:.2e})"
    )
    return waves


def _spice_comparison(ctx, sizes) -> tuple[dict, dict]:
    """Per-size results of memjax against ngspice, and neuron 0's waves at ``N = 1``."""
    sp: dict[str, Any] = {k: {} for k in SPICE_KEYS}
    waves = None
    with tempfile.TemporaryDirectory(prefix="memjax-perf-") as tmp:
        for n in ctx.progress(sizes, desc="ngspice vs memjax"):
            w = _spice_case(ctx, n, Path(tmp), sp)
            waves = w if n == 1 else waves
    return sp, waves


def run(ctx: Context) -> dict:
    """MIF throughput against N, and memjax vs ngspice on N independent MIF neurons."""
    load0 = load_avg()
    s = QUICK if ctx.quick else FULL
    tp_sizes = s.throughput_sizes
    tp = _throughput(ctx, tp_sizes, s.total_steps, s.repeats)
    metrics: dict[str, Any] = {"throughput": tp}
    metrics[f"neuron_steps_per_second_1e{round(np.log10(tp_sizes[-1]))}"] = tp[
        "neuron_steps_per_second"
    ][str(tp_sizes[-1])]

    exe = shutil.which("ngspice")
    sp_sizes = s.spice_sizes
    waves = None
    if exe is None:
        ctx.log("ngspice not found on PATH: skipping the SPICE comparison")
        metrics["ngspice"] = "skipped: ngspice not found"
    else:
        version = _ngspice_version(exe)
        sp, waves = _spice_comparison(ctx, sp_sizes)
        metrics["ngspice"] = sp
        nk = str(sp_sizes[-1])
        metrics[f"speedup_vs_ngspice_{nk}"] = sp["speedup"][nk]
        metrics["max_rel_err"] = max(sp["max_rel_err"].values())
        metrics["max_rel_err_f64"] = max(sp["max_rel_err_f64"].values())
    _plot_devices(ctx, tp, metrics.get("ngspice"), waves)
    config = {
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
        "throughput": "MIF population (lognormal spread " + json.dumps(SPREAD) + "), float32, "
        "constant per-neuron input 3-30 uA, dt 2 us, final state only, "
        "T = clip(total / N, 20, 5000) steps, median of repeats",
        "throughput_sizes": list(tp_sizes),
        "transient": {
            "pulse_s": PULSE_S,
            "t_stop_s": T_STOP,
            "dt_out_s": DT_OUT,
            "memjax_dt_s": DT_OUT / SUBSTEPS,
            "amplitudes": "log-spaced 3..30 uA",
            "spread": SPREAD,
            "probes": N_PROBES,
        },
        "ngspice": None if exe is None else version,
        "ngspice_options": "defaults (reltol 1e-3, abstol 1e-12, vntol 1e-6, trap), "
        f".tran {DT_OUT} {T_STOP} uic; wall time of `ngspice -b`",
        "memjax": "mif_simulate, jit, all 5 states stored per output sample, median of 5",
        "spice_sizes": list(sp_sizes),
    }
    return {"metrics": metrics, "config": config}


def _plot_devices(ctx, tp, sp, waves):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ns = sorted(int(k) for k in tp["neuron_steps_per_second"])
    axes[0].loglog(
        ns, [tp["neuron_steps_per_second"][str(n)] for n in ns], "o-", label="MIF neuron steps/s"
    )
    axes[0].loglog(
        ns,
        [2 * tp["neuron_steps_per_second"][str(n)] for n in ns],
        "s--",
        alpha=0.6,
        label="memristor steps/s (2 per neuron)",
    )
    axes[0].set(
        xlabel="neurons N", ylabel="steps per second", title="memjax throughput (float32, CPU)"
    )
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    if isinstance(sp, dict):
        ns = sorted(int(k) for k in sp["ngspice_seconds"])
        axes[1].loglog(ns, [sp["ngspice_seconds"][str(n)] for n in ns], "o-", label="ngspice")
        axes[1].loglog(ns, [sp["memjax_seconds"][str(n)] for n in ns], "s-", label="memjax float32")
        axes[1].loglog(
            ns, [sp["memjax_f64_seconds"][str(n)] for n in ns], "s:", label="memjax float64"
        )
        axes[1].loglog(
            ns,
            [sp["memjax_seconds"][str(n)] + sp["memjax_compile_seconds"][str(n)] for n in ns],
            "--",
            alpha=0.6,
            label="memjax f32 incl. compile",
        )
        axes[1].set(
            xlabel="independent MIF neurons N",
            ylabel="wall time (s)",
            title=f"{T_STOP * 1e3:g} ms pulse transient",
        )
        axes[1].grid(True, which="both", alpha=0.3)
        axes[1].legend(fontsize=8)
    if waves is not None:
        axes[2].plot(waves["t_sp"] * 1e3, waves["v_sp"] * 1e3, lw=2.5, alpha=0.5, label="ngspice v")
        axes[2].plot(waves["t"] * 1e3, waves["v_mj"] * 1e3, "--", lw=1, label="memjax v")
        ax2 = axes[2].twinx()
        ax2.plot(waves["t_sp"] * 1e3, waves["x1_sp"], color="C2", lw=2.5, alpha=0.4)
        ax2.plot(waves["t"] * 1e3, waves["x1_mj"], ":", color="C3", lw=1)
        ax2.set_ylabel("x1 (green ngspice, red memjax)")
        axes[2].set(xlabel="t (ms)", ylabel="v (mV)", title="one MIF neuron, 10 uA pulse")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "scaling")
