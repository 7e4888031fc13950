"""``memory-bptt``: peak memory and time of MEMprop BPTT against the window length ``T``.

One MEMprop training step (forward + BPTT + Adam) for each ``MEMprop.checkpoint`` mode
(``"none"``, ``"step"``, ``"sqrt"``), each ``(T, mode)`` in a fresh subprocess: XLA's
compiled temp bytes (``memory_analysis``), the peak-RSS increase of the step (VmHWM reset
through ``/proc/self/clear_refs``) and the step time; and the three modes' step times at
one ``T`` in interleaved rounds (one process). ``--quick`` measures in this process.
"""

from __future__ import annotations

import dataclasses
import re
import resource
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from memjax.models.memprop import MEMprop, memprop_loss

from ._child import child_main, run_child
from ._context import Context
from ._memprop import CHECKPOINT_MODES, make_train_step, random_batch
from ._plot import plt
from ._timing import interleaved, load_avg, round_ratio

__all__ = ["run", "MODES", "Settings", "FULL", "QUICK"]

MODES = CHECKPOINT_MODES


@dataclasses.dataclass(frozen=True)
class Settings:
    """Windows ``Ts``, 784-``n_hidden``-10 MEMprop, ``batch`` images, median of
    ``repeats`` steps; the interleaved timing at ``T_interleaved`` over ``rounds``."""

    Ts: tuple[int, ...] = (100, 200, 500, 1000, 2000)
    n_hidden: int = 128
    batch: int = 32
    repeats: int = 3
    T_interleaved: int = 1000
    rounds: int = 7


FULL = Settings()
QUICK = dataclasses.replace(
    FULL, Ts=(50, 200), n_hidden=32, batch=8, repeats=2, T_interleaved=200, rounds=3
)


def _slope(xs, ys) -> float:
    """Exponent ``p`` of a least-squares fit ``y ~ x^p`` (log-log)."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def _memprop_step(n_hidden, T, checkpoint, batch, seed=0):
    """(compiled step, args, compile seconds) of one MEMprop training step."""
    model = MEMprop.init(jax.random.key(seed), 784, n_hidden, 10, n_steps=T, checkpoint=checkpoint)
    opt = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    x, y = random_batch(batch, 784, 10, seed)
    step = make_train_step(static, opt, lambda m, x, y: memprop_loss(m, x, y, None)[0])
    t0 = time.perf_counter()
    comp = jax.jit(step).lower(params, opt_state, x, y).compile()
    return comp, (params, opt_state, x, y), time.perf_counter() - t0


def _status_kb(field: str) -> int:
    txt = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s*(\d+)", txt).group(1))


def _child_memory(a: dict) -> dict:
    comp, args, compile_s = _memprop_step(a["n_hidden"], a["T"], a["mode"], a["batch"])
    ma = comp.memory_analysis()
    out = {
        "compile_s": compile_s,
        "temp_bytes": int(ma.temp_size_in_bytes),
        "argument_bytes": int(ma.argument_size_in_bytes),
        "output_bytes": int(ma.output_size_in_bytes),
    }
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


def _child_memory_time(a: dict) -> dict:
    """The three modes' steps at one T, compiled in one process and timed in
    interleaved rounds: their time ratios without the load drift between processes."""
    steps = {m: _memprop_step(a["n_hidden"], a["T"], m, a["batch"])[:2] for m in MODES}
    r = interleaved(
        {m: (lambda c=c, args=args: c(*args)) for m, (c, args) in steps.items()},
        a["rounds"],
        seed=1,
    )
    return {
        "T": a["T"],
        "rounds": a["rounds"],
        "median_ms": {m: r[m]["median_s"] * 1e3 for m in MODES},
        "sqrt_over_step": round_ratio(r, "sqrt", "step"),
        "sqrt_over_none": round_ratio(r, "sqrt", "none"),
        "step_over_none": round_ratio(r, "step", "none"),
    }


def run(ctx: Context) -> dict:
    """Peak memory and time of a MEMprop training step against T, per checkpoint mode."""
    load0 = load_avg()
    s = QUICK if ctx.quick else FULL
    Ts, H, B, reps = s.Ts, s.n_hidden, s.batch, s.repeats
    rec: dict[str, dict[str, dict]] = {m: {} for m in MODES}
    for T in ctx.progress(Ts, desc="T"):
        for mode in MODES:
            args = {"T": T, "mode": mode, "n_hidden": H, "batch": B, "repeats": reps}
            # --quick measures in this process (a smoke test: RSS then shares the process)
            r = _child_memory(args) if ctx.quick else run_child(__name__, "memory", args)
            rec[mode][str(T)] = r
            ctx.log(
                f"T={T} {mode}: temp {r['temp_bytes'] / 2**20:.1f} MiB, peak RSS +"
                f"{r['peak_rss_increase_MB']:.1f} MB, step {r['step_ms']:.1f} ms"
            )
    metrics: dict[str, Any] = {"by_mode": rec}
    for mode in MODES:
        temp = [rec[mode][str(T)]["temp_bytes"] for T in Ts]
        rss = [max(rec[mode][str(T)]["peak_rss_increase_MB"] or 0.0, 1e-3) for T in Ts]
        metrics[f"temp_bytes_exponent_{mode}"] = _slope(Ts, temp)
        metrics[f"peak_rss_exponent_{mode}"] = _slope(Ts, rss)
    upper = [T for T in Ts if T >= 1000] or list(Ts[-2:])
    for mode in MODES:  # the large-T slope, past the T-independent buffers (weights, ...)
        metrics[f"temp_bytes_exponent_{mode}_T_ge_{upper[0]}"] = _slope(
            upper, [rec[mode][str(T)]["temp_bytes"] for T in upper]
        )
    Tm = str(Ts[-1])
    metrics["T_max"] = Ts[-1]
    for mode in MODES:
        metrics[f"temp_MiB_{mode}_Tmax"] = rec[mode][Tm]["temp_bytes"] / 2**20
        metrics[f"peak_rss_increase_MB_{mode}_Tmax"] = rec[mode][Tm]["peak_rss_increase_MB"]
        metrics[f"step_ms_{mode}_Tmax"] = rec[mode][Tm]["step_ms"]
    metrics["memory_ratio_step_over_sqrt_Tmax"] = (
        rec["step"][Tm]["temp_bytes"] / rec["sqrt"][Tm]["temp_bytes"]
    )
    metrics["memory_ratio_none_over_sqrt_Tmax"] = (
        rec["none"][Tm]["temp_bytes"] / rec["sqrt"][Tm]["temp_bytes"]
    )
    metrics["time_ratio_sqrt_over_step_Tmax"] = (
        rec["sqrt"][Tm]["step_ms"] / rec["step"][Tm]["step_ms"]
    )
    metrics["time_ratio_sqrt_over_none_Tmax"] = (
        rec["sqrt"][Tm]["step_ms"] / rec["none"][Tm]["step_ms"]
    )
    metrics["sublinear"] = bool(metrics["temp_bytes_exponent_sqrt"] < 0.75)
    T_int = s.T_interleaved
    targs = {"T": T_int, "n_hidden": H, "batch": B, "rounds": s.rounds}
    it = _child_memory_time(targs) if ctx.quick else run_child(__name__, "memory_time", targs)
    metrics["interleaved_time"] = it
    ctx.log(f"interleaved at T={T_int}: {it['median_ms']}, sqrt/step {it['sqrt_over_step']:.2f}")
    _plot_memory(ctx, Ts, rec)
    config = {
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
        "T": list(Ts),
        "topology": f"784-{H}-10 MEMprop (crossbars, MIF), dt 1 ms, direct coding",
        "batch": B,
        "dtype": "float32",
        "repeats": reps,
        "input": "uniform random intensities (memory and time do not depend on values)",
        "step": "jit(value_and_grad(memprop_loss) + Adam), compiled once per process",
        "measurement": ("in-process (--quick) " if ctx.quick else "fresh subprocess ")
        + "per (T, mode): XLA memory_analysis temp bytes; "
        "VmHWM after /proc/self/clear_refs minus VmRSS before the first "
        "run; median step time of repeats after one warm-up",
    }
    return {"metrics": metrics, "config": config}


def _plot_memory(ctx, Ts, rec):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for c, mode in enumerate(MODES):
        r = rec[mode]
        axes[0].loglog(
            Ts,
            [r[str(T)]["temp_bytes"] / 2**20 for T in Ts],
            "o-",
            color=f"C{c}",
            label=f"checkpoint={mode!r}",
        )
        axes[1].loglog(
            Ts,
            [max(r[str(T)]["peak_rss_increase_MB"] or 0, 1e-3) for T in Ts],
            "o-",
            color=f"C{c}",
            label=f"checkpoint={mode!r}",
        )
        axes[2].loglog(
            Ts,
            [r[str(T)]["step_ms"] for T in Ts],
            "o-",
            color=f"C{c}",
            label=f"checkpoint={mode!r}",
        )
    t = np.asarray(Ts, float)
    ref = rec["sqrt"][str(Ts[0])]["temp_bytes"] / 2**20
    axes[0].loglog(t, ref * np.sqrt(t / t[0]), "k:", alpha=0.5, label="~ sqrt(T)")
    axes[0].set(
        xlabel="time steps T",
        ylabel="XLA temp memory (MiB)",
        title="compiled temp buffers of one training step",
    )
    axes[1].set(
        xlabel="time steps T",
        ylabel="peak RSS increase (MB)",
        title="measured peak resident memory of the step",
    )
    axes[2].set(xlabel="time steps T", ylabel="step time (ms)", title="training step time")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "memory")


CHILDREN = {"memory": _child_memory, "memory_time": _child_memory_time}

if __name__ == "__main__":
    child_main(CHILDREN)
