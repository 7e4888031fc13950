"""``memprop-spice``: a trained MEMprop network verified at circuit level in ngspice.

The network (784-``n_hidden``-10, MIF neurons, RRAM crossbars, direct coding) is trained
by the `memprop-mnist` code path (`benchmarks.memprop`: its settings, data loading,
`train_mif` with the same optimizer, projection and fingerprinted checkpoints) on MNIST.
Each of the first ``n_images`` test images is then simulated

- by memjax: ``model(x, traces=True)``, the network's own integration at its default
  ``dt`` and ``n_steps`` (float64), and, as a check of the netlist, at a step
  ``fine`` times smaller over the same window (``fine_*`` metrics);
- by ngspice: `memjax.spice.simulate_memprop` (crossbar 1 as resistors solved at its
  operating point and held, the MIF neurons as MMSS subcircuits with their batteries,
  the mirrors as current-controlled sources, crossbar 2 as resistors driven by the
  amplifiers; gear integration, :data:`OPTIONS`, maximum step :data:`MAX_STEP`), one
  process per image, ``workers`` at a time.

Metrics: ``prediction_agreement`` (argmax of memjax's logits = argmax of ngspice's, the
same readout applied to ngspice's output membranes at the model's sample times);
``max_voltage_error_hidden`` / ``_output``: ``max |v_mj - v_sp|`` over neurons and sample
times over the layer's peak-to-peak in ngspice, worst image; ``seconds_per_image_ngspice``
(wall time of the ngspice runs of one image, netlist writing included, divided by the
workers running at once) and ``seconds_per_image_memjax`` (one jitted batched call,
median, per image, compile excluded).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memjax.models.memprop import MEMprop

from . import memprop as mp
from ._context import Context
from ._plot import plt
from ._timing import timeit

__all__ = ["FULL", "QUICK", "OPTIONS", "MAX_STEP", "Settings", "run"]

OPTIONS = ".options reltol=1e-4 abstol=1e-12 vntol=1e-7 method=gear"
#: ngspice's maximum time step (s): 1/50 of the MIF switching time constant (1 ms).
MAX_STEP = 2e-5


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training as `benchmarks.memprop` with ``n_hidden``, ``epochs``, ``train_size``;
    ``n_images`` test images simulated in both; ``fine``: step refinement of the check."""

    n_hidden: int = 128
    epochs: int = 3
    train_size: int | None = None
    n_images: int = 200
    workers: int = 2
    fine: int = 100


FULL = Settings()
QUICK = dataclasses.replace(FULL, epochs=1, train_size=5000, n_images=6)


def _train(ctx: Context, s: Settings) -> tuple[MEMprop, tuple, float]:
    ms = dataclasses.asdict(
        dataclasses.replace(mp.FULL, n_hidden=s.n_hidden, epochs=s.epochs, train_size=s.train_size)
    )
    train, test = mp.load_data("mnist", ctx, ms)
    model, _, seconds = mp.train_mif(ctx, f"{ctx.name}-mif", train, test, ms)
    return model, test, seconds


def _to64(model):
    import equinox as eqx

    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model)


def _memjax(model: MEMprop, x: np.ndarray, fine: int):
    """Logits and traces ``[batch, T, n]`` at the model's step and at ``dt / fine``
    (sampled at the model's times), and the float32 time per image."""
    with jax.enable_x64(True):
        m64 = _to64(model)
        xs = jnp.asarray(x, jnp.float64)
        logits, (v1, v2) = jax.jit(lambda m, x: m(x, traces=True))(m64, xs)
        mf = dataclasses.replace(m64, dt=model.dt / fine, n_steps=model.n_steps * fine)
        lf, (f1, f2) = jax.jit(lambda m, x: m(x, traces=True))(mf, xs)
        sub = slice(fine - 1, None, fine)
        out = {
            "logits": np.asarray(logits),
            "v_hidden": np.moveaxis(np.asarray(v1), 0, 1),
            "v_out": np.moveaxis(np.asarray(v2), 0, 1),
            "fine_logits": np.asarray(lf),
            "fine_v_hidden": np.moveaxis(np.asarray(f1)[sub], 0, 1),
            "fine_v_out": np.moveaxis(np.asarray(f2)[sub], 0, 1),
        }
    fn = jax.jit(lambda m, x: m(x))
    st = timeit(fn, model, jnp.asarray(x, jnp.float32), repeats=5)
    return out, st["median_s"] / len(x)


def _verr(v_mj: np.ndarray, v_sp: np.ndarray) -> float:
    """Worst image of ``max |v_mj - v_sp| / peak-to-peak(v_sp)`` over neurons and times."""
    ptp = np.ptp(v_sp.reshape(len(v_sp), -1), axis=1)
    err = np.abs(v_mj - v_sp).reshape(len(v_sp), -1).max(axis=1)
    return float(np.max(err / ptp))


def _figure(ctx: Context, model: MEMprop, mj: dict, sp: dict, fine: int):
    t = model.dt * np.arange(1, model.n_steps + 1) * 1e3
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, idx, title in (
        (axes[0], "v_hidden", range(4), "hidden MIF membranes (4 of them), image 0"),
        (axes[1], "v_out", range(10), "output MIF membranes, image 0"),
    ):
        for c, k in enumerate(idx):
            ax.plot(t, sp[key][0, :, k] * 1e3, "o-", color=f"C{c}", lw=2, alpha=0.4)
            ax.plot(t, mj[key][0, :, k] * 1e3, "x--", color=f"C{c}", lw=1)
            ax.plot(t, mj["fine_" + key][0, :, k] * 1e3, ":", color=f"C{c}", lw=1)
        ax.set(xlabel="t (ms)", ylabel="v (mV)", title=title)
    axes[0].plot([], [], "o-", color="k", alpha=0.4, label="ngspice")
    axes[0].plot([], [], "x--", color="k", label=f"memjax dt = {model.dt * 1e3:g} ms")
    axes[0].plot([], [], ":", color="k", label=f"memjax dt / {fine}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "traces")


def run(ctx: Context) -> dict:
    """Train, then simulate ``n_images`` test images in memjax and ngspice."""
    from memjax.spice import simulate_memprop

    if shutil.which("ngspice") is None:
        ctx.log("ngspice not found on PATH: skipping")
        return {"metrics": {"skipped": "ngspice not found"}, "config": {}}
    s = QUICK if ctx.quick else FULL
    t_start = time.perf_counter()
    model, test, t_train = _train(ctx, s)
    x, y = test[0][: s.n_images], test[1][: s.n_images]
    ctx.log(f"trained in {t_train:.0f} s; simulating {len(x)} test images")
    mj, mj_s = _memjax(model, x, s.fine)
    t0 = time.perf_counter()
    sp = simulate_memprop(model, x, workers=s.workers, options=OPTIONS, max_step=MAX_STEP)
    sp_wall = time.perf_counter() - t0
    pred_sp = np.argmax(sp["logits"], -1)
    metrics: dict[str, Any] = {
        "prediction_agreement": float(np.mean(np.argmax(mj["logits"], -1) == pred_sp)),
        "max_voltage_error_hidden": _verr(mj["v_hidden"], sp["v_hidden"]),
        "max_voltage_error_output": _verr(mj["v_out"], sp["v_out"]),
        "fine_prediction_agreement": float(np.mean(np.argmax(mj["fine_logits"], -1) == pred_sp)),
        "fine_max_voltage_error_hidden": _verr(mj["fine_v_hidden"], sp["v_hidden"]),
        "fine_max_voltage_error_output": _verr(mj["fine_v_out"], sp["v_out"]),
        "seconds_per_image_ngspice": sp_wall / len(x),
        "seconds_per_image_ngspice_process": float(np.median(sp["seconds"])),
        "seconds_per_image_memjax": mj_s,
        "speedup_per_image": sp_wall / len(x) / mj_s,
        "accuracy_memjax": float(np.mean(np.argmax(mj["logits"], -1) == y)),
        "accuracy_ngspice": float(np.mean(pred_sp == y)),
        "n_images": len(x),
        "seconds_train": t_train,
        "seconds": time.perf_counter() - t_start,
    }
    ctx.log(
        " ".join(f"{k} {v:.3g}" for k, v in metrics.items() if "error" in k or "agree" in k)
        + f"; {metrics['seconds_per_image_ngspice']:.2f} s/image ngspice vs {mj_s:.2e} s memjax"
    )
    _figure(ctx, model, mj, sp, s.fine)
    config = {
        **dataclasses.asdict(s),
        "topology": f"784-{s.n_hidden}-10",
        "dt": model.dt,
        "n_steps": model.n_steps,
        "training": "benchmarks.memprop (memprop-mnist's code path) with these settings",
        "ngspice_options": OPTIONS,
        "ngspice_max_step_s": MAX_STEP,
        "ngspice_crossbar1": "operating point, column currents held (direct coding)",
        "memjax_dtype": "float64 for the comparison, float32 for the timing",
        **ctx.data_config(),
    }
    return {"metrics": metrics, "config": config}
