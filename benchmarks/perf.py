"""Performance and scale: ``speed-devices``, ``memory-bptt``, ``scale-out``, ``precision``.

- ``speed-devices`` (:func:`run_devices`): MIF neuron steps per second for ``N = 10^3 ..
  10^6`` neurons (a D2D population, one jitted `lax.scan`), and memjax against ngspice
  on ``N`` independent MIF neurons (behavioural netlist ``benchmarks/netlists/mif.sub``):
  the same 4 ms transient (a 2 ms current pulse of a per-neuron amplitude, then
  recovery), ngspice at its default tolerances, memjax's exponential splitting at 2 us
  (float32). ``speedup_vs_ngspice_1000`` = ngspice process wall time / memjax median run
  time at ``N = 1000``; ``max_rel_err``: ``max |v_mj - v_sp| / max |v_mj|`` per neuron,
  worst neuron over all sizes (probed neurons).
- ``memory-bptt`` (:func:`run_memory`): one MEMprop training step (forward + BPTT +
  Adam) against the window length ``T``, for each ``MEMprop.checkpoint`` mode
  (``"none"``, ``"step"``, ``"sqrt"``), each ``(T, mode)`` in a fresh subprocess: XLA's
  compiled temp bytes (``memory_analysis``), the peak-RSS increase of the step (VmHWM
  reset through ``/proc/self/clear_refs``) and the step time.
- ``scale-out`` (:func:`run_scale_out`): data-parallel MEMprop training on real MNIST on
  4 host CPU devices (``--xla_force_host_platform_device_count=4``, in a subprocess)
  against one device: per-step losses, parameters, step times; and ``fit(mesh=)``.
- ``precision`` (:func:`run_precision`): the MEMprop step in float64 / float32 /
  bfloat16 (mixed: bf16 compute, float32 master weights): time, error against float64,
  and accuracy after a short training; plus a profile of the float32 training step.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._context import Context, timeit
from .spice import run_ngspice

__all__ = ["run_devices", "run_memory", "run_scale_out", "run_precision"]

REPO = Path(__file__).resolve().parents[1]
NETLISTS = Path(__file__).resolve().parent / "netlists"

# --------------------------------------------------------------------------------------
# helpers


def _load() -> dict[str, float]:
    a, b, c = os.getloadavg()
    return {"1min": a, "5min": b, "15min": c}


def _child(kind: str, args: dict, env: dict | None = None, timeout: float = 1200) -> dict:
    """Run ``python -m benchmarks.perf KIND JSON`` in a fresh process; its JSON result."""
    e = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.perf", kind, json.dumps(args)],
        cwd=REPO, env=e, capture_output=True, text=True, timeout=timeout,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"child {kind} {args} failed (rc {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT"):])


def _slope(xs, ys) -> float:
    """Exponent ``p`` of a least-squares fit ``y ~ x^p`` (log-log)."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


# --------------------------------------------------------------------------------------
# speed-devices

#: Relative D2D spread of the neuron population (lognormal), shared by memjax and SPICE.
SPREAD = {"C": 0.1, "m1.R_on": 0.1, "m2.R_on": 0.1}
#: Transient: pulse of PULSE_S, then recovery, to T_STOP; output every DT_OUT.
PULSE_S, T_STOP, DT_OUT = 2e-3, 4e-3, 1e-5
#: memjax inner step DT_OUT / SUBSTEPS = 2 us (the splitting is first order; 1e-3 error).
SUBSTEPS = 5
N_PROBES = 16
SUBCKT_PARAMS = {
    "c": "C", "e1": "E1", "e2": "E2", "taua": "tau_a",
    "ron1": "m1.R_on", "roff1": "m1.R_off", "von1": "m1.V_on", "voff1": "m1.V_off",
    "tau1": "m1.tau", "vt1": "m1.v_t",
    "ron2": "m2.R_on", "roff2": "m2.R_off", "von2": "m2.V_on", "voff2": "m2.V_off",
    "tau2": "m2.tau", "vt2": "m2.v_t",
}


def _field(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return np.asarray(obj, np.float64)


def _population(n: int, seed: int):
    import jax

    from memjax.neurons.mif import MIF
    from memjax.populations import sample_population

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
        ".control", "set wr_singlescale", "set wr_vecnames", "set numdgt=15", "run",
        "rusage all", f"wrdata {out} {probe}", "quit", ".endc", ".end",
    ]
    return "\n".join(lines) + "\n"


def _mif_transient_fn(pop, dtype):
    """Compiled ``(arrays, amps) -> states [T_out, N]`` of the pulse transient."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from memjax.neurons.mif import mif_simulate

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
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from memjax.neurons.mif import mif_step

    rec: dict[str, Any] = {"neuron_steps_per_second": {}, "steps": {}, "median_s": {},
                           "compile_s": {}}
    for n in sizes:
        T = int(np.clip(total_steps // n, 20, 5000))
        pop = _population(n, ctx.seed)
        arrays, static = eqx.partition(pop, eqx.is_array)
        arrays = jax.tree.map(lambda a: a.astype(jnp.float32), arrays)
        amps = jnp.asarray(_amplitudes(n), jnp.float32)

        def f(arrays, amps, T=T):
            p = eqx.combine(arrays, static)
            s0 = p.init_state(amps.shape, jnp.float32)
            s, _ = jax.lax.scan(lambda s, _: (mif_step(p, s, amps, 2e-6), None), s0, None,
                                length=T)
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


def run_devices(ctx: Context) -> dict:
    """MIF throughput against N, and memjax vs ngspice on N independent MIF neurons."""
    import jax
    import jax.numpy as jnp

    load0 = _load()
    quick = ctx.quick
    tp_sizes = (10**3, 10**4, 10**5) if quick else (10**3, 10**4, 10**5, 10**6)
    tp = _throughput(ctx, tp_sizes, 2 * 10**6 if quick else 2 * 10**7, 3 if quick else 5)
    metrics: dict[str, Any] = {"throughput": tp}
    metrics["neuron_steps_per_second_1e6" if not quick else "neuron_steps_per_second_1e5"] = (
        tp["neuron_steps_per_second"][str(tp_sizes[-1])])

    exe = shutil.which("ngspice")
    sp_sizes = (1, 10, 100) if quick else (1, 10, 100, 1000)
    waves = None
    if exe is None:
        ctx.log("ngspice not found on PATH: skipping the SPICE comparison")
        metrics["ngspice"] = "skipped: ngspice not found"
    else:
        version = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
        version = next((ln.strip("* ").strip() for ln in version.splitlines()
                        if "ngspice-" in ln), "unknown")
        sp: dict[str, Any] = {k: {} for k in (
            "ngspice_seconds", "ngspice_analysis_seconds", "ngspice_timepoints",
            "memjax_seconds", "memjax_compile_seconds", "memjax_f64_seconds", "speedup",
            "speedup_analysis", "speedup_incl_compile", "speedup_f64", "max_rel_err",
            "max_rel_err_f64", "x_max_abs_err")}
        with tempfile.TemporaryDirectory(prefix="memjax-perf-") as tmp:
            for n in ctx.progress(sp_sizes, desc="ngspice vs memjax"):
                pop, amps = _population(n, ctx.seed), _amplitudes(n)
                probes = sorted(set(np.linspace(0, n - 1, min(n, N_PROBES)).astype(int)))
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
                        res[str(np.dtype(dtype))] = (st, c_s, {k: np.asarray(getattr(out, k), np.float64)
                                                               for k in ("v", "x1", "x2")})
                        if dtype == jnp.float64:
                            s0 = pop.init_state((n,), dtype)
                            rest = (s0.v, s0.x1, s0.x2)
                spr = run_ngspice(_mif_netlist(pop, amps, rest, probes, Path(tmp) / f"n{n}.txt"),
                               Path(tmp), f"n{n}")
                d = spr["data"]
                t_sp = d[:, 0]
                t_mj = DT_OUT * np.arange(1, int(round(T_STOP / DT_OUT)) + 1)
                m = t_mj <= t_sp[-1]
                errs = {}
                for key, (st, c_s, out) in res.items():
                    e, ex = 0.0, 0.0
                    for j, k in enumerate(probes):
                        v_sp = np.interp(t_mj[m], t_sp, d[:, 1 + 3 * j])
                        v_mj = out["v"][m, k]
                        e = max(e, float(np.max(np.abs(v_mj - v_sp)) / np.max(np.abs(v_mj))))
                        for q, col in (("x1", 2), ("x2", 3)):
                            x_sp = np.interp(t_mj[m], t_sp, d[:, col + 3 * j])
                            ex = max(ex, float(np.max(np.abs(out[q][m, k] - x_sp))))
                    errs[key] = (e, ex)
                    if n == 1 and key == "float32":
                        waves = {"t": t_mj, "v_mj": out["v"][:, 0], "t_sp": t_sp,
                                 "v_sp": d[:, 1], "x1_mj": out["x1"][:, 0], "x1_sp": d[:, 2]}
                k = str(n)
                st32, c32, _ = res["float32"]
                st64 = res["float64"][0]
                sp["ngspice_seconds"][k] = spr["wall"]
                sp["ngspice_analysis_seconds"][k] = spr["analysis"]
                sp["ngspice_timepoints"][k] = spr["timepoints"]
                sp["memjax_seconds"][k] = st32["median_s"]
                sp["memjax_compile_seconds"][k] = c32
                sp["memjax_f64_seconds"][k] = st64["median_s"]
                sp["speedup"][k] = spr["wall"] / st32["median_s"]
                sp["speedup_analysis"][k] = (spr["analysis"] or np.nan) / st32["median_s"]
                sp["speedup_incl_compile"][k] = spr["wall"] / (st32["median_s"] + c32)
                sp["speedup_f64"][k] = spr["wall"] / st64["median_s"]
                sp["max_rel_err"][k] = errs["float32"][0]
                sp["max_rel_err_f64"][k] = errs["float64"][0]
                sp["x_max_abs_err"][k] = errs["float32"][1]
                ctx.log(f"N={n}: ngspice {spr['wall']:.3g} s ({spr['timepoints']} points), "
                        f"memjax {st32['median_s']:.3g} s (f64 {st64['median_s']:.3g} s, "
                        f"compile {c32:.2f} s), speedup {sp['speedup'][k]:.3g}, "
                        f"v err {errs['float32'][0]:.2e} (f64 {errs['float64'][0]:.2e})")
        metrics["ngspice"] = sp
        nk = str(sp_sizes[-1])
        metrics[f"speedup_vs_ngspice_{nk}"] = sp["speedup"][nk]
        metrics["max_rel_err"] = max(sp["max_rel_err"].values())
        metrics["max_rel_err_f64"] = max(sp["max_rel_err_f64"].values())
    _plot_devices(ctx, tp, metrics.get("ngspice"), waves)
    config = {
        "load_avg_start": load0, "load_avg_end": _load(),
        "throughput": "MIF population (lognormal spread " + json.dumps(SPREAD) + "), float32, "
                      "constant per-neuron input 3-30 uA, dt 2 us, final state only, "
                      "T = clip(total / N, 20, 5000) steps, median of repeats",
        "throughput_sizes": list(tp_sizes),
        "transient": {"pulse_s": PULSE_S, "t_stop_s": T_STOP, "dt_out_s": DT_OUT,
                      "memjax_dt_s": DT_OUT / SUBSTEPS, "amplitudes": "log-spaced 3..30 uA",
                      "spread": SPREAD, "probes": N_PROBES},
        "ngspice": None if exe is None else version,
        "ngspice_options": "defaults (reltol 1e-3, abstol 1e-12, vntol 1e-6, trap), "
                           f".tran {DT_OUT} {T_STOP} uic; wall time of `ngspice -b`",
        "memjax": "mif_simulate, jit, all 5 states stored per output sample, median of 5",
        "spice_sizes": list(sp_sizes),
    }
    return {"metrics": metrics, "config": config}


def _plot_devices(ctx, tp, sp, waves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ns = sorted(int(k) for k in tp["neuron_steps_per_second"])
    axes[0].loglog(ns, [tp["neuron_steps_per_second"][str(n)] for n in ns], "o-",
                   label="MIF neuron steps/s")
    axes[0].loglog(ns, [2 * tp["neuron_steps_per_second"][str(n)] for n in ns], "s--",
                   alpha=0.6, label="memristor steps/s (2 per neuron)")
    axes[0].set(xlabel="neurons N", ylabel="steps per second",
                title="memjax throughput (float32, CPU)")
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    if isinstance(sp, dict):
        ns = sorted(int(k) for k in sp["ngspice_seconds"])
        axes[1].loglog(ns, [sp["ngspice_seconds"][str(n)] for n in ns], "o-", label="ngspice")
        axes[1].loglog(ns, [sp["memjax_seconds"][str(n)] for n in ns], "s-",
                       label="memjax float32")
        axes[1].loglog(ns, [sp["memjax_f64_seconds"][str(n)] for n in ns], "s:",
                       label="memjax float64")
        axes[1].loglog(ns, [sp["memjax_seconds"][str(n)] + sp["memjax_compile_seconds"][str(n)]
                            for n in ns], "--", alpha=0.6, label="memjax f32 incl. compile")
        axes[1].set(xlabel="independent MIF neurons N", ylabel="wall time (s)",
                    title=f"{T_STOP * 1e3:g} ms pulse transient")
        axes[1].grid(True, which="both", alpha=0.3)
        axes[1].legend(fontsize=8)
    if waves is not None:
        axes[2].plot(waves["t_sp"] * 1e3, waves["v_sp"] * 1e3, lw=2.5, alpha=0.5,
                     label="ngspice v")
        axes[2].plot(waves["t"] * 1e3, waves["v_mj"] * 1e3, "--", lw=1, label="memjax v")
        ax2 = axes[2].twinx()
        ax2.plot(waves["t_sp"] * 1e3, waves["x1_sp"], color="C2", lw=2.5, alpha=0.4)
        ax2.plot(waves["t"] * 1e3, waves["x1_mj"], ":", color="C3", lw=1)
        ax2.set_ylabel("x1 (green ngspice, red memjax)")
        axes[2].set(xlabel="t (ms)", ylabel="v (mV)", title="one MIF neuron, 10 uA pulse")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "scaling")


# --------------------------------------------------------------------------------------
# memory-bptt


def _memprop_step(n_hidden, T, checkpoint, batch, dtype="float32", seed=0):
    """(compiled step, args, aux) of one MEMprop training step (value_and_grad + Adam)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from memjax.models.memprop import MEMprop, memprop_loss

    model = MEMprop.init(jax.random.key(seed), 784, n_hidden, 10, n_steps=T,
                         checkpoint=checkpoint)
    opt = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(size=(batch, 784)), dtype)
    y = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)

    def step(params, opt_state, x, y):
        def f(p):
            return memprop_loss(eqx.combine(p, static), x, y, None)[0]

        loss, g = jax.value_and_grad(f)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    t0 = time.perf_counter()
    comp = jax.jit(step).lower(params, opt_state, x, y).compile()
    return comp, (params, opt_state, x, y), time.perf_counter() - t0


def _status_kb(field: str) -> int:
    txt = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s*(\d+)", txt).group(1))


def _child_memory(a: dict) -> dict:
    import jax

    comp, args, compile_s = _memprop_step(a["n_hidden"], a["T"], a["mode"], a["batch"])
    ma = comp.memory_analysis()
    out = {"compile_s": compile_s,
           "temp_bytes": int(ma.temp_size_in_bytes),
           "argument_bytes": int(ma.argument_size_in_bytes),
           "output_bytes": int(ma.output_size_in_bytes)}
    jax.block_until_ready(args)
    rss0 = _status_kb("VmRSS")
    reset = True
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS)
    except OSError:
        reset = False
    jax.block_until_ready(comp(*args))
    out["peak_rss_increase_MB"] = (_status_kb("VmHWM") - rss0) / 1024 if reset else None
    out["ru_maxrss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(a["repeats"]):
        t0 = time.perf_counter()
        jax.block_until_ready(comp(*args))
        times.append(time.perf_counter() - t0)
    out["step_ms"] = float(np.median(times) * 1e3)
    return out


MODES = ("none", "step", "sqrt")


def _child_memory_time(a: dict) -> dict:
    """The three modes' steps at one T, compiled in one process and timed in
    interleaved rounds: their time ratios without the load drift between processes."""
    import jax

    steps = {m: _memprop_step(a["n_hidden"], a["T"], m, a["batch"])[:2] for m in MODES}
    for comp, args in steps.values():
        jax.block_until_ready(comp(*args))
    rounds = {m: [] for m in MODES}
    order = np.random.default_rng(1)
    for _ in range(a["rounds"]):
        for m in order.permutation(list(MODES)):  # fresh order each round (cache effects)
            comp, args = steps[m]
            t0 = time.perf_counter()
            jax.block_until_ready(comp(*args))
            rounds[m].append(time.perf_counter() - t0)
    r = {m: np.asarray(v) for m, v in rounds.items()}
    return {"T": a["T"], "rounds": a["rounds"],
            "median_ms": {m: float(np.median(v) * 1e3) for m, v in r.items()},
            "sqrt_over_step": float(np.median(r["sqrt"] / r["step"])),
            "sqrt_over_none": float(np.median(r["sqrt"] / r["none"])),
            "step_over_none": float(np.median(r["step"] / r["none"]))}


def run_memory(ctx: Context) -> dict:
    """Peak memory and time of a MEMprop training step against T, per checkpoint mode."""
    load0 = _load()
    if ctx.quick:
        Ts, H, B, reps = (50, 200), 32, 8, 2
    else:
        Ts, H, B, reps = (100, 200, 500, 1000, 2000), 128, 32, 3
    rec: dict[str, dict[str, dict]] = {m: {} for m in MODES}
    for T in ctx.progress(Ts, desc="T"):
        for mode in MODES:
            args = {"T": T, "mode": mode, "n_hidden": H, "batch": B, "repeats": reps}
            # --quick measures in this process (a smoke test: RSS then shares the process)
            r = _child_memory(args) if ctx.quick else _child("memory", args)
            rec[mode][str(T)] = r
            ctx.log(f"T={T} {mode}: temp {r['temp_bytes'] / 2**20:.1f} MiB, peak RSS +"
                    f"{r['peak_rss_increase_MB']:.1f} MB, step {r['step_ms']:.1f} ms")
    metrics: dict[str, Any] = {"by_mode": rec}
    for mode in MODES:
        temp = [rec[mode][str(T)]["temp_bytes"] for T in Ts]
        rss = [max(rec[mode][str(T)]["peak_rss_increase_MB"] or 0.0, 1e-3) for T in Ts]
        metrics[f"temp_bytes_exponent_{mode}"] = _slope(Ts, temp)
        metrics[f"peak_rss_exponent_{mode}"] = _slope(Ts, rss)
    upper = [T for T in Ts if T >= 1000] or list(Ts[-2:])
    for mode in MODES:  # the large-T slope, past the T-independent buffers (weights, ...)
        metrics[f"temp_bytes_exponent_{mode}_T_ge_{upper[0]}"] = _slope(
            upper, [rec[mode][str(T)]["temp_bytes"] for T in upper])
    Tm = str(Ts[-1])
    metrics["T_max"] = Ts[-1]
    for mode in MODES:
        metrics[f"temp_MiB_{mode}_Tmax"] = rec[mode][Tm]["temp_bytes"] / 2**20
        metrics[f"peak_rss_increase_MB_{mode}_Tmax"] = rec[mode][Tm]["peak_rss_increase_MB"]
        metrics[f"step_ms_{mode}_Tmax"] = rec[mode][Tm]["step_ms"]
    metrics["memory_ratio_step_over_sqrt_Tmax"] = (
        rec["step"][Tm]["temp_bytes"] / rec["sqrt"][Tm]["temp_bytes"])
    metrics["memory_ratio_none_over_sqrt_Tmax"] = (
        rec["none"][Tm]["temp_bytes"] / rec["sqrt"][Tm]["temp_bytes"])
    metrics["time_ratio_sqrt_over_step_Tmax"] = rec["sqrt"][Tm]["step_ms"] / rec["step"][Tm]["step_ms"]
    metrics["time_ratio_sqrt_over_none_Tmax"] = rec["sqrt"][Tm]["step_ms"] / rec["none"][Tm]["step_ms"]
    metrics["sublinear"] = bool(metrics["temp_bytes_exponent_sqrt"] < 0.75)
    T_int = 200 if ctx.quick else 1000
    targs = {"T": T_int, "n_hidden": H, "batch": B, "rounds": 3 if ctx.quick else 7}
    it = _child_memory_time(targs) if ctx.quick else _child("memory_time", targs)
    metrics["interleaved_time"] = it
    ctx.log(f"interleaved at T={T_int}: {it['median_ms']}, sqrt/step {it['sqrt_over_step']:.2f}")
    _plot_memory(ctx, Ts, rec)
    config = {"load_avg_start": load0, "load_avg_end": _load(), "T": list(Ts),
              "topology": f"784-{H}-10 MEMprop (crossbars, MIF), dt 1 ms, direct coding",
              "batch": B, "dtype": "float32", "repeats": reps,
              "input": "uniform random intensities (memory and time do not depend on values)",
              "step": "jit(value_and_grad(memprop_loss) + Adam), compiled once per process",
              "measurement": ("in-process (--quick) " if ctx.quick else "fresh subprocess ")
                             + "per (T, mode): XLA memory_analysis temp bytes; "
                             "VmHWM after /proc/self/clear_refs minus VmRSS before the first "
                             "run; median step time of repeats after one warm-up"}
    return {"metrics": metrics, "config": config}


def _plot_memory(ctx, Ts, rec):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for c, mode in enumerate(MODES):
        r = rec[mode]
        axes[0].loglog(Ts, [r[str(T)]["temp_bytes"] / 2**20 for T in Ts], "o-", color=f"C{c}",
                       label=f"checkpoint={mode!r}")
        axes[1].loglog(Ts, [max(r[str(T)]["peak_rss_increase_MB"] or 0, 1e-3) for T in Ts],
                       "o-", color=f"C{c}", label=f"checkpoint={mode!r}")
        axes[2].loglog(Ts, [r[str(T)]["step_ms"] for T in Ts], "o-", color=f"C{c}",
                       label=f"checkpoint={mode!r}")
    t = np.asarray(Ts, float)
    ref = rec["sqrt"][str(Ts[0])]["temp_bytes"] / 2**20
    axes[0].loglog(t, ref * np.sqrt(t / t[0]), "k:", alpha=0.5, label="~ sqrt(T)")
    axes[0].set(xlabel="time steps T", ylabel="XLA temp memory (MiB)",
                title="compiled temp buffers of one training step")
    axes[1].set(xlabel="time steps T", ylabel="peak RSS increase (MB)",
                title="measured peak resident memory of the step")
    axes[2].set(xlabel="time steps T", ylabel="step time (ms)", title="training step time")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "memory")


# --------------------------------------------------------------------------------------
# scale-out


def _dp_setup(a: dict):
    """MNIST batches, model, optimizer and the jitted train step of the scale-out run."""
    import equinox as eqx
    import jax
    import optax

    import memjax.data as D
    from memjax.models.memprop import MEMprop, memprop_loss, project

    steps, B = a["steps"], a["batch"]
    x, y = D.load("mnist", "train", data_dir=a["data_dir"], limit=steps * B)
    x, y = D.normalize(x, flatten=True), y.astype(np.int32)
    model = MEMprop.init(jax.random.key(a["seed"]), 784, a["n_hidden"], 10)
    opt = optax.adam(4e-3)
    params0, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def f(p):
            return memprop_loss(eqx.combine(p, static), xb, yb, None)[0]

        loss, g = jax.value_and_grad(f)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = eqx.partition(project(eqx.combine(params, static)), eqx.is_inexact_array)[0]
        return params, opt_state, loss

    return x, y, model, opt, params0, step


def _dp_run(a: dict, setup, mesh) -> dict:
    """Per-step losses and times of ``a["steps"]`` steps, data-parallel over ``mesh``
    (or on the first device when ``mesh`` is None)."""
    import jax
    import jax.numpy as jnp

    from memjax.distributed import replicate, shard_batch

    x, y, _, opt, params0, step = setup
    B = a["batch"]
    params, opt_state = params0, opt.init(params0)
    if mesh is not None:
        params, opt_state = replicate((params, opt_state), mesh)
    else:
        params, opt_state = jax.device_put((params, opt_state), jax.devices()[0])
    losses, times = [], []
    for i in range(a["steps"]):
        xb, yb = jnp.asarray(x[i * B:(i + 1) * B]), jnp.asarray(y[i * B:(i + 1) * B])
        xb, yb = shard_batch((xb, yb), mesh) if mesh is not None else (xb, yb)
        t0 = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, xb, yb)
        loss = float(loss)
        times.append(time.perf_counter() - t0)
        losses.append(loss)
    leaves = jax.tree.leaves(params)
    return {"losses": losses, "first_step_s": times[0],
            "median_step_ms": float(np.median(times[1:]) * 1e3),
            "params_sharding": str(leaves[0].sharding),
            "params": [np.asarray(p.addressable_data(0)).ravel() for p in leaves]}


def _child_multiprocess(a: dict) -> dict:
    """One of ``a["processes"]`` processes of a `jax.distributed` run (CPU, gloo)."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{a['port']}",
                               num_processes=a["processes"], process_id=a["process_id"])
    from memjax.distributed import data_mesh

    out = _dp_run(a, _dp_setup(a), data_mesh())
    out.pop("params")
    return {"process_id": jax.process_index(), "processes": jax.process_count(),
            "devices": jax.device_count(), "local_devices": jax.local_device_count(), **out}


def _child_scale_out(a: dict) -> dict:
    import equinox as eqx
    import jax

    from memjax.distributed import data_mesh
    from memjax.models.memprop import memprop_loss, project
    from memjax.train import fit

    n_dev = jax.device_count()
    setup = _dp_setup(a)
    x, y, model, opt, _, _ = setup
    B = a["batch"]
    out: dict[str, Any] = {"devices": n_dev, "device_kinds": [str(d) for d in jax.devices()]}
    for name, mesh in (("one_device", None), (f"{n_dev}_devices", data_mesh())):
        out[name] = _dp_run(a, setup, mesh)
    one, many = out["one_device"], out[f"{n_dev}_devices"]
    l1, ln = np.asarray(one["losses"]), np.asarray(many["losses"])
    out["loss_max_abs_diff"] = float(np.max(np.abs(l1 - ln)))
    out["loss_max_rel_diff"] = float(np.max(np.abs(l1 - ln) / np.abs(l1)))
    out["params_max_rel_diff"] = float(max(
        np.max(np.abs(p - q)) / max(np.max(np.abs(p)), 1e-30)
        for p, q in zip(one.pop("params"), many.pop("params"))))
    if a.get("skip_fit"):
        return out
    # The library path: fit(mesh=) for one epoch of the same steps vs fit on one device.
    fits = {}
    for name, mesh in (("one_device", None), ("mesh", data_mesh())):
        m, h = fit(model, memprop_loss, opt, (x, y), epochs=1, batch_size=B, seed=a["seed"],
                   project=project, progress=False, mesh=mesh)
        fits[name] = (h, [np.asarray(p).ravel() for p in
                          jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array))])
    out["fit_train_loss"] = {k: v[0]["train_loss"][0] for k, v in fits.items()}
    out["fit_seconds"] = {k: v[0]["seconds"][0] for k, v in fits.items()}
    out["fit_params_max_rel_diff"] = float(max(
        np.max(np.abs(p - q)) / max(np.max(np.abs(p)), 1e-30)
        for p, q in zip(fits["one_device"][1], fits["mesh"][1])))
    return out


def run_scale_out(ctx: Context) -> dict:
    """Data-parallel MEMprop training on 4 host devices vs one device (subprocess)."""
    load0 = _load()
    n_dev = 4
    a = {"steps": 6 if ctx.quick else 20, "batch": 128, "n_hidden": 32 if ctx.quick else 256,
         "seed": ctx.seed, "data_dir": ctx.data_dir, "skip_fit": ctx.quick}
    r = _child("scale_out", a, env={
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_dev}"})
    many = f"{n_dev}_devices"
    # --quick: the 4-device mesh only (fit(mesh=) and the multi-process path are covered
    # by tests/test_distributed.py)
    mp = None if ctx.quick else _multiprocess(ctx, a, processes=2, devices_per_process=2)
    metrics = {
        "devices": r["devices"],
        "loss_max_abs_diff": r["loss_max_abs_diff"],
        "loss_max_rel_diff": r["loss_max_rel_diff"],
        "params_max_rel_diff": r["params_max_rel_diff"],
        "same_trajectory": bool(r["loss_max_rel_diff"] < 1e-4),
        "losses_one_device": r["one_device"]["losses"],
        f"losses_{many}": r[many]["losses"],
        "step_ms_one_device": r["one_device"]["median_step_ms"],
        f"step_ms_{many}": r[many]["median_step_ms"],
        "speedup_4_host_devices": r["one_device"]["median_step_ms"] / r[many]["median_step_ms"],
        "params_sharding": r[many]["params_sharding"],
        "fit_train_loss": r.get("fit_train_loss", "skipped (--quick)"),
        "fit_params_max_rel_diff": r.get("fit_params_max_rel_diff", "skipped (--quick)"),
        "fit_seconds": r.get("fit_seconds", "skipped (--quick)"),
    }
    if mp is not None:
        lm = np.asarray(mp[0]["losses"])
        l1 = np.asarray(r["one_device"]["losses"])
        metrics["multiprocess"] = {
            "processes": mp[0]["processes"], "devices": mp[0]["devices"],
            "local_devices": mp[0]["local_devices"], "losses": mp[0]["losses"],
            "losses_agree_across_processes": bool(all(q["losses"] == mp[0]["losses"] for q in mp)),
            "loss_max_rel_diff_vs_one_device": float(np.max(np.abs(lm - l1) / np.abs(l1))),
            "median_step_ms": mp[0]["median_step_ms"],
        }
    _plot_scale_out(ctx, r, many, mp)
    config = {"load_avg_start": load0, "load_avg_end": _load(), **{k: v for k, v in a.items()},
              "dataset": "MNIST train (first steps x batch images)",
              "topology": f"784-{a['n_hidden']}-10 MEMprop, crossbars, 10 steps of 1 ms",
              "optimizer": "Adam 4e-3, u clipped to [0, 1] after each step",
              "xla_flags": f"--xla_force_host_platform_device_count={n_dev}",
              "sharding": "batch P('data') over Mesh(4 CPU devices), params/opt state P()",
              "multiprocess": "2 processes x 2 host devices, jax.distributed.initialize on "
                              "localhost, CPU collectives over gloo, same global mesh code",
              "note": "4 host devices share this machine's 2 cores: scale-out here shows "
                      "correctness, not speed"}
    return {"metrics": metrics, "config": config}


def _multiprocess(ctx, a, processes: int, devices_per_process: int):
    """The same training as ``processes`` `jax.distributed` processes on this machine
    (CPU collectives over gloo), each with ``devices_per_process`` host devices; None
    (with a message) where that runtime is unavailable."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.perf", "multiprocess",
         json.dumps({**a, "port": port, "processes": processes, "process_id": i})],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(processes)]
    outs = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
        line = next((ln for ln in so.splitlines() if ln.startswith("RESULT")), None)
        if p.returncode != 0 or line is None:
            ctx.log(f"multi-process run failed (rc {p.returncode}): {se[-1500:]}")
            for q in procs:
                if q.poll() is None:
                    q.kill()
            return None
        outs.append(json.loads(line[len("RESULT"):]))
    ctx.log(f"{processes} processes x {devices_per_process} devices: losses "
            f"{outs[0]['losses'][:3]}...")
    return outs


def _plot_scale_out(ctx, r, many, mp=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    l1, ln = np.asarray(r["one_device"]["losses"]), np.asarray(r[many]["losses"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    s = np.arange(1, len(l1) + 1)
    axes[0].plot(s, l1, "o-", lw=2.5, alpha=0.5, label="1 device")
    axes[0].plot(s, ln, "x--", label=f"{many.replace('_', ' ')} (batch sharded)")
    if mp is not None:
        lm = np.asarray(mp[0]["losses"])
        axes[0].plot(s, lm, "+:", ms=9, label=f"{mp[0]['processes']} processes x "
                     f"{mp[0]['local_devices']} devices (jax.distributed)")
        axes[1].semilogy(s, np.maximum(np.abs(l1 - lm) / np.abs(l1), 1e-10), "C3+:",
                         label="multi-process vs 1")
    axes[0].set(xlabel="training step", ylabel="loss", title="MEMprop on MNIST")
    axes[0].legend()
    axes[1].semilogy(s, np.maximum(np.abs(l1 - ln) / np.abs(l1), 1e-10), "k.-",
                     label="4 devices vs 1")
    axes[1].legend(fontsize=8)
    axes[1].set(xlabel="training step", ylabel="|rel. loss difference|",
                title="difference to one device (float32)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    ctx.save_figure(fig, "losses")


# --------------------------------------------------------------------------------------
# precision (+ profile of the MIF training step)


def _cast(tree, dtype):
    import equinox as eqx
    import jax

    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _loss_in(dtype_name: str):
    """``memprop_loss`` computed in ``dtype_name``; "bfloat16" is mixed precision: float32
    master weights, the network (crossbar reads and MIF states) in bfloat16, the loss in
    float32."""
    import jax.numpy as jnp

    from memjax.models.memprop import cross_entropy

    def loss(model, x, y, key=None):
        if dtype_name == "bfloat16":
            m = _cast(model, jnp.bfloat16)
            logits = m(x.astype(jnp.bfloat16), key).astype(jnp.float32)
        else:
            logits = model(x, key)
        return cross_entropy(logits, y), logits

    return loss


def _precision_case(name, model0, train, test, batch, n_train_steps, repeats):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    master = jnp.float64 if name == "float64" else jnp.float32
    loss = _loss_in(name)
    model = _cast(model0, master)
    opt = optax.adam(4e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    from memjax.models.memprop import project

    def step(params, opt_state, x, y):
        (l, logits), g = jax.value_and_grad(
            lambda p: loss(eqx.combine(p, static), x, y), has_aux=True)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = eqx.partition(project(eqx.combine(params, static)), eqx.is_inexact_array)[0]
        return params, opt_state, l, logits, g

    xb = jnp.asarray(train[0][:batch], master)
    yb = jnp.asarray(train[1][:batch])
    t0 = time.perf_counter()
    comp = jax.jit(step).lower(params, opt_state, xb, yb).compile()
    compile_s = time.perf_counter() - t0
    st = timeit(comp, params, opt_state, xb, yb, repeats=repeats)
    _, _, l0, logits0, g0 = comp(params, opt_state, xb, yb)
    first = {"loss": np.float64(l0), "logits": np.asarray(logits0, np.float64),
             "grad": np.concatenate([np.asarray(a, np.float64).ravel()
                                     for a in jax.tree.leaves(g0)])}
    for i in range(n_train_steps):
        j = (i * batch) % (len(train[0]) - batch + 1)
        xb = jnp.asarray(train[0][j:j + batch], master)
        yb = jnp.asarray(train[1][j:j + batch])
        params, opt_state, l, _, _ = comp(params, opt_state, xb, yb)
    evalf = jax.jit(lambda p, x: loss(eqx.combine(p, static), x, jnp.zeros(len(x), jnp.int32))[1])
    correct = 0
    for j in range(0, len(test[0]), 500):
        logits = evalf(params, jnp.asarray(test[0][j:j + 500], master))
        correct += int(jnp.sum(jnp.argmax(logits, -1) == jnp.asarray(test[1][j:j + 500])))
    return {"step_ms": st["median_s"] * 1e3, "compile_s": compile_s,
            "final_train_loss": float(l), "test_accuracy": correct / len(test[0]),
            "first": first}


def _trained_accuracy(ctx, test, names):
    """Test accuracy of the committed-run MEMprop MNIST model (its checkpoint, if present)
    evaluated in each precision."""
    import jax
    import jax.numpy as jnp

    from benchmarks.memprop import SETTINGS, _build, _optimizer
    from memjax.train import restore_checkpoint

    ckpt = (Path(ctx.out) / "checkpoints" / "memprop-mnist-mif").absolute()
    if not ckpt.exists():
        ckpt = (REPO / "benchmarks" / "results" / "checkpoints" / "memprop-mnist-mif")
    s = SETTINGS["full"]
    try:
        restored = restore_checkpoint(ckpt, _build(s, 0), _optimizer(s["lr"], 1))
    except Exception as e:  # noqa: BLE001
        ctx.log(f"no usable memprop-mnist checkpoint ({type(e).__name__}): skipping")
        return None
    if restored is None:
        return None
    out = {"checkpoint": str(ckpt), "epoch": int(restored.epoch)}
    for name in names:
        with jax.enable_x64(name == "float64"):
            loss = _loss_in(name)
            master = jnp.float64 if name == "float64" else jnp.float32
            model = _cast(restored.model, master)
            f = jax.jit(lambda m, x: loss(m, x, jnp.zeros(len(x), jnp.int32))[1])
            correct, t0 = 0, time.perf_counter()
            for j in range(0, len(test[0]), 1000):
                logits = f(model, jnp.asarray(test[0][j:j + 1000], master))
                correct += int(jnp.sum(jnp.argmax(logits, -1) == jnp.asarray(test[1][j:j + 1000])))
            out[name] = {"test_accuracy": correct / len(test[0]),
                         "seconds": time.perf_counter() - t0}
        ctx.log(f"trained model, {name}: test accuracy {out[name]['test_accuracy']:.4f}")
    return out


def _phi1_branch_autodiff(z):
    """memjax's phi1 before its custom JVP (reverse mode through both where branches)."""
    import jax.numpy as jnp

    z = jnp.asarray(z)
    small = z < 1e-4
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 - 0.5 * z + z * z / 6.0, -jnp.expm1(-zs) / zs)


def _mif_layer(H, T, B):
    """``i1 -> sum of v`` of one MIF layer ``[B, H]`` over ``T`` steps of 1 ms (remat)."""
    import jax
    import jax.numpy as jnp

    from memjax.neurons.mif import MIF, mif_step

    n = MIF()

    def mif_layer(i1):
        s0 = n.init_state(i1.shape, i1.dtype)
        s, vs = jax.lax.scan(jax.checkpoint(lambda s, _: (mif_step(n, s, i1, 1e-3),) * 2),
                             s0, None, length=T)
        return jnp.sum(vs.v)

    return mif_layer


def _profile(ctx, H, T, B, repeats):
    """Where the float32 MEMprop training step spends its time (see docs/performance.md)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from memjax.models.memprop import MEMprop, memprop_loss
    from memjax.neurons.mif import MIF

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(B, 784)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, B), jnp.int32)
    out: dict[str, Any] = {"H": H, "T": T, "batch": B}
    compiled = {}

    def timed(label, f, *args):
        t0 = time.perf_counter()
        comp = jax.jit(f).lower(*args).compile()
        compiled[label] = (comp, args)
        c = time.perf_counter() - t0
        st = timeit(comp, *args, repeats=repeats)
        ca = comp.cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        out[label] = {"ms": st["median_s"] * 1e3, "min_ms": st["min_s"] * 1e3, "compile_s": c,
                      "flops": float(ca.get("flops", np.nan)),
                      "transcendentals": float(ca.get("transcendentals", np.nan)),
                      "bytes_accessed": float(ca.get("bytes accessed", np.nan))}
        ctx.log(f"profile {label}: {st['median_s'] * 1e3:.2f} ms")
        return comp

    import memjax.neurons.mif as mif_module

    modes = ("step", "step_phi1_autodiff") if ctx.quick else MODES + ("step_phi1_autodiff",)
    for mode in modes:
        model = MEMprop.init(jax.random.key(0), 784, H, 10, n_steps=T,
                             checkpoint=mode.split("_")[0])
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def grad_f(p, x, y, static=static):
            return jax.value_and_grad(
                lambda q: memprop_loss(eqx.combine(q, static), x, y, None)[0])(p)

        if mode == "step_phi1_autodiff":
            # before/after of the custom JVP of phi1: the same step with phi1 differentiated
            # through both of its jnp.where branches (the library's earlier form)
            lib_phi1, mif_module.phi1 = mif_module.phi1, _phi1_branch_autodiff
            try:
                timed(f"value_and_grad_{mode}", grad_f, params, x, y)
                timed("mif_hidden_layer_grad_phi1_autodiff", jax.grad(_mif_layer(H, T, B)),
                      jnp.full((B, H), 5e-6, jnp.float32))
            finally:
                mif_module.phi1 = lib_phi1
            continue
        comp = timed(f"value_and_grad_{mode}", grad_f, params, x, y)
        if mode == "step":
            timed("forward", lambda p, x, static=static: eqx.combine(p, static)(x), params, x)
            hlo = comp.as_text()
    # parts: crossbar-1 read (forward and its weight gradient), one MIF layer over T steps
    xb = model.syn1
    timed("crossbar1_read", lambda c, x: c(x * 0.2), xb, x)
    timed("crossbar1_read_grad", lambda c, x: jax.grad(lambda c: jnp.sum(c(x * 0.2) ** 2))(c),
          xb, x)
    n = MIF()
    i1 = jnp.full((B, H), 5e-6, jnp.float32)
    mif_layer = _mif_layer(H, T, B)
    timed("mif_hidden_layer_forward", mif_layer, i1)
    timed("mif_hidden_layer_grad", jax.grad(mif_layer), i1)
    timed("mif_rest_point", lambda: n.init_state((B, H), jnp.float32))
    counts = {op: len(re.findall(rf" {op}\(", hlo)) for op in (
        "while", "fusion", "dot", "exponential", "exponential-minus-one", "logistic",
        "divide", "select", "copy", "dynamic-update-slice")}
    out["hlo_op_counts_step_mode"] = counts
    # Interleaved rounds (each function once per round): under a shared, loaded CPU the
    # per-round ratios are steadier than separately taken medians.
    rounds = {k: [] for k in compiled}
    order = np.random.default_rng(1)
    for _ in range(3 * repeats):
        # a fresh order each round: what ran just before (e.g. the memory-heavy "none"
        # step, which evicts the caches) must not bias one function's time
        for k in order.permutation(list(compiled)):
            comp, args = compiled[k]
            t0 = time.perf_counter()
            jax.block_until_ready(comp(*args))
            rounds[k].append(time.perf_counter() - t0)
    rounds = {k: np.asarray(v) for k, v in rounds.items()}
    out["interleaved_median_ms"] = {k: float(np.median(v) * 1e3) for k, v in rounds.items()}
    out["interleaved_min_ms"] = {k: float(np.min(v) * 1e3) for k, v in rounds.items()}

    def ratio(a, b):
        return float(np.median(rounds[a] / rounds[b]))

    out["ratios"] = {
        "phi1_custom_jvp_speedup_train_grad": ratio("value_and_grad_step_phi1_autodiff",
                                                    "value_and_grad_step"),
        "phi1_custom_jvp_speedup_mif_layer_grad": ratio("mif_hidden_layer_grad_phi1_autodiff",
                                                        "mif_hidden_layer_grad"),
        **({} if ctx.quick else {
            "checkpoint_none_over_step": ratio("value_and_grad_none", "value_and_grad_step"),
            "checkpoint_sqrt_over_step": ratio("value_and_grad_sqrt", "value_and_grad_step")}),
        "grad_over_forward": ratio("value_and_grad_step", "forward"),
        "mif_layer_grad_over_forward": ratio("mif_hidden_layer_grad", "mif_hidden_layer_forward"),
        "mif_layer_forward_over_crossbar1_read": ratio("mif_hidden_layer_forward",
                                                       "crossbar1_read"),
    }
    ctx.log(f"profile ratios: {out['ratios']}")
    return out


def run_precision(ctx: Context) -> dict:
    """float64 / float32 / bfloat16 MEMprop steps: time, error vs float64, accuracy; and a
    profile of the float32 training step."""
    import jax

    import memjax.data as D
    from memjax.models.memprop import MEMprop

    load0 = _load()
    quick = ctx.quick
    H, T, B = (128, 10, 128) if quick else (512, 10, 128)
    n_train, n_test, steps = (1280, 1000, 10) if quick else (12800, 10000, 100)
    repeats = 2 if quick else 5
    xtr, ytr = D.load("mnist", "train", data_dir=ctx.data_dir, limit=n_train)
    xte, yte = D.load("mnist", "test", data_dir=ctx.data_dir, limit=n_test)
    train = (D.normalize(xtr, flatten=True), ytr.astype(np.int32))
    test = (D.normalize(xte, flatten=True), yte.astype(np.int32))
    names = ("float64", "float32", "bfloat16")
    model0 = MEMprop.init(jax.random.key(ctx.seed), 784, H, 10, n_steps=T)
    res = {}
    for name in names:
        with jax.enable_x64(name == "float64"):
            res[name] = _precision_case(name, model0, train, test, B, steps, repeats)
        ctx.log(f"{name}: step {res[name]['step_ms']:.1f} ms, loss after {steps} steps "
                f"{res[name]['final_train_loss']:.4f}, test acc {res[name]['test_accuracy']:.4f}")
    ref = res["float64"].pop("first")
    cases = {}
    for name in names[1:]:
        f = res[name].pop("first")
        cases[name] = {
            **res[name],
            "loss_rel_err": float(abs(f["loss"] - ref["loss"]) / abs(ref["loss"])),
            "logits_max_rel_err": float(np.max(np.abs(f["logits"] - ref["logits"]))
                                        / np.max(np.abs(ref["logits"]))),
            "grad_rel_err": float(np.linalg.norm(f["grad"] - ref["grad"])
                                  / np.linalg.norm(ref["grad"])),
            "speedup_vs_float64": res["float64"]["step_ms"] / res[name]["step_ms"],
        }
    cases["float64"] = res["float64"]
    metrics: dict[str, Any] = {"by_dtype": cases}
    for name in names:
        metrics[f"step_ms_{name}"] = cases[name]["step_ms"]
        metrics[f"test_accuracy_{name}"] = cases[name]["test_accuracy"]
    for name in names[1:]:
        metrics[f"grad_rel_err_{name}"] = cases[name]["grad_rel_err"]
        metrics[f"logits_max_rel_err_{name}"] = cases[name]["logits_max_rel_err"]
    trained = _trained_accuracy(ctx, test, names)
    if trained is not None:
        metrics["trained_model"] = trained
    metrics["profile"] = _profile(ctx, H, T, B, repeats)
    config = {"load_avg_start": load0, "load_avg_end": _load(),
              "topology": f"784-{H}-10 MEMprop (crossbars, MIF), T {T} x 1 ms, batch {B}",
              "train_steps": steps, "n_train": n_train, "n_test": n_test, "repeats": repeats,
              "optimizer": "Adam 4e-3, projection to [0, 1]",
              "bfloat16": "mixed precision: float32 master weights and Adam; params and "
                          "input cast to bfloat16 inside the loss; logits back to float32",
              "errors": "first step on the same batch from the same initial model, vs float64",
              "profile": f"float32, 784-{H}-10, T {T}, batch {B} (full: the MEMprop benchmark setting)"}
    return {"metrics": metrics, "config": config}


# --------------------------------------------------------------------------------------

_CHILDREN = {"memory": _child_memory, "memory_time": _child_memory_time,
             "scale_out": _child_scale_out,
             "multiprocess": _child_multiprocess}

if __name__ == "__main__":
    kind, arg = sys.argv[1], json.loads(sys.argv[2])
    res = _CHILDREN[kind](arg)
    from .__main__ import _jsonable

    print("RESULT" + json.dumps(_jsonable(res)))
