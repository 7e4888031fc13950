"""The MEMprop training step timed by the performance benchmarks, built in one place.

One step = ``jax.value_and_grad`` of a loss of the network over its whole time window
(BPTT), an optax update, and (optionally) the projection of the conductances to their
range (`memjax.models.memprop.project`), compiled with ``jax.jit`` over the inexact
arrays of the model (``eqx.partition``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from memjax.models.memprop import project as project_model

__all__ = [
    "CHECKPOINT_MODES",
    "make_train_step",
    "random_batch",
    "refine",
    "frozen_memristors",
    "predictions",
    "integration_error",
    "hidden_switching",
    "circuit_metrics",
    "neuron_convergence",
    "network_convergence",
    "convergence_figure",
    "convergence_study",
]

#: The checkpoint modes of `MEMprop` (how BPTT stores or recomputes the time steps).
CHECKPOINT_MODES = ("none", "step", "sqrt")


def make_train_step(
    static,
    opt: optax.GradientTransformation,
    loss: Callable,
    *,
    project: bool = False,
    has_aux: bool = False,
    return_grads: bool = False,
) -> Callable:
    """``step(params, opt_state, *batch) -> (params, opt_state, loss[, aux][, grads])``.

    ``loss(model, *batch)`` returns the scalar loss (``(loss, aux)`` with ``has_aux``),
    ``model = eqx.combine(params, static)``. With ``project`` the updated model's
    conductances are projected to their range. Not jitted: the caller compiles it.
    """

    def step(params, opt_state, *batch):
        out, grads = jax.value_and_grad(
            lambda p: loss(eqx.combine(p, static), *batch), has_aux=has_aux
        )(params)
        value, aux = out if has_aux else (out, None)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if project:
            params = eqx.filter(project_model(eqx.combine(params, static)), eqx.is_inexact_array)
        res = (params, opt_state, value)
        res += (aux,) if has_aux else ()
        res += (grads,) if return_grads else ()
        return res

    return step


def random_batch(batch: int, n_in: int, n_classes: int, seed: int, dtype=jnp.float32):
    """``(x, y)``: uniform random intensities in [0, 1) and labels (the memory and time
    of a step do not depend on the values)."""
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.uniform(size=(batch, n_in)), dtype),
        jnp.asarray(rng.integers(0, n_classes, batch), jnp.int32),
    )


# ----------------------------------------------------------------- circuit fidelity


def refine(model, factor: int):
    """``model`` over the same window at ``1 / factor`` of its step."""
    return dataclasses.replace(model, dt=model.dt / factor, n_steps=model.n_steps * factor)


def frozen_memristors(model):
    """``model`` with every MIF memristor held at its rest state (``tau`` = 1e9 s: a
    plain RC neuron with the rest conductances)."""

    def freeze(n):
        return eqx.tree_at(lambda q: (q.m1.tau, q.m2.tau), n, (1e9, 1e9))

    return eqx.tree_at(
        lambda m: (m.neuron1, m.neuron2), model, (freeze(model.neuron1), freeze(model.neuron2))
    )


@eqx.filter_jit
def _traces(model, x):
    return model(x, traces=True)


@eqx.filter_jit
def _predict(model, x):
    return jnp.argmax(model(x), -1)


def predictions(model, x, batch_size: int = 500) -> np.ndarray:
    """Deterministic (ideal-read) class predictions for images ``x``."""
    out = [
        _predict(model, jnp.asarray(x[i : i + batch_size])) for i in range(0, len(x), batch_size)
    ]
    return np.concatenate([np.asarray(o) for o in out])


def integration_error(model, x, factor: int = 10, batch_size: int = 50) -> dict:
    """Largest hidden and output membrane error of ``model`` at its samples ``k dt``
    against the same network integrated ``factor`` times finer, relative to the
    largest ``|v|`` of that layer (ideal reads)."""
    ref = refine(model, factor)
    err, vmax = np.zeros(2), np.zeros(2)
    for i in range(0, len(x), batch_size):
        xb = jnp.asarray(x[i : i + batch_size])
        _, coarse_v = _traces(model, xb)
        _, fine_v = _traces(ref, xb)
        for j, (c, f) in enumerate(zip(coarse_v, fine_v)):
            f = f[factor - 1 :: factor]
            err[j] = max(err[j], float(jnp.max(jnp.abs(c - f))))
            vmax[j] = max(vmax[j], float(jnp.max(jnp.abs(f))))
    rel = err / np.maximum(vmax, 1e-30)
    return {"hidden": float(rel[0]), "output": float(rel[1]), "max": float(rel.max())}


def hidden_switching(model, x, batch_size: int = 100) -> dict:
    """How much the hidden layer's memristors switch during inference (ideal reads):
    the fraction of (image, hidden neuron) pairs in which a memristor's state crosses
    0.5 upwards, the mean number of such crossings per image, and the median over
    neurons of the peak state."""
    from memjax.neurons.mif import mif_simulate

    n_switch, n_cross, peaks, total = 0.0, 0.0, [], 0
    for i in range(0, len(x), batch_size):
        xb = jnp.asarray(x[i : i + batch_size])
        i1 = model.g1 * model.syn1(xb * model.v_read)
        final, st = mif_simulate(
            model.neuron1, jnp.broadcast_to(i1, (model.n_steps,) + i1.shape), model.dt
        )
        xs = jnp.stack(
            [jnp.concatenate([st.x1, final.x1[None]]), jnp.concatenate([st.x2, final.x2[None]])]
        )
        up = (xs[:, :-1] < 0.5) & (xs[:, 1:] >= 0.5)  # [2, T, B, H]
        n_switch += float(jnp.sum(jnp.any(up, axis=(0, 1))))
        n_cross += float(jnp.sum(up))
        peaks.append(np.asarray(jnp.max(xs, axis=(0, 1))).ravel())
        total += xb.shape[0]
    n_hidden = model.syn1.n_out
    return {
        "switching_fraction": n_switch / (total * n_hidden),
        "switching_crossings_per_image": n_cross / total,
        "median_peak_state": float(np.median(np.concatenate(peaks))),
    }


def circuit_metrics(model, test, n_circuit: int, factor: int = 10, log=print) -> dict:
    """Integration error, converged accuracy and agreement, memristor switching and
    the frozen-memristor ablation of a trained MEMprop network (ideal reads)."""
    x, y = test
    pred = predictions(model, x)
    pred_fine = predictions(refine(model, factor), x)
    err = integration_error(model, x[:n_circuit], factor)
    log(f"integration error vs {factor}x finer: {err}")
    sw = hidden_switching(model, x[:n_circuit])
    log(f"switching: {sw}")
    frozen = float(np.mean(predictions(frozen_memristors(model), x) == y))
    return {
        "integration_error": err["max"],
        "integration_error_hidden": err["hidden"],
        "integration_error_output": err["output"],
        "converged_test_accuracy": float(np.mean(pred_fine == y)),
        "converged_agreement": float(np.mean(pred_fine == pred)),
        "frozen_memristor_accuracy": frozen,
        **sw,
    }


# ------------------------------------------------------------------ convergence study

#: input amplitudes (A) of the single-neuron study: the trained networks' range
STUDY_AMPS = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4)


def neuron_convergence(dts, window: float, amps=STUDY_AMPS) -> dict:
    """Error of one default `MIF` neuron over ``window`` (s) against the diffrax
    reference (float64, Kvaerno5, rtol 1e-10), for constant and alpha-shaped inputs
    (peak ``amp`` at ``tau_a``; held at the mid-step value) of each amplitude: the
    largest ``|v - v_ref|`` at the samples relative to the largest ``|v_ref|``.
    ``{shape: [len(dts), len(amps)]}``."""
    from memjax.integrate import odeint_reference
    from memjax.neurons.mif import MIF, mif_simulate, mif_vector_field

    with jax.enable_x64(True):
        n = MIF()
        a = jnp.asarray(amps, jnp.float64)
        s0 = n.init_state((len(amps),), jnp.float64)
        out = {}
        for shape in ("constant", "alpha"):

            def drive(t, shape=shape):
                w = 1.0 if shape == "constant" else (t / n.tau_a) * jnp.exp(1.0 - t / n.tau_a)
                return a * w

            base = min(dts)
            ts = base * jnp.arange(int(round(window / base)) + 1)
            ref = odeint_reference(
                mif_vector_field(n, drive), s0, ts, rtol=1e-10, atol=1e-14, stiff=True
            )
            vr = np.asarray(ref.v)
            errs = []
            for dt in dts:
                T, k = int(round(window / dt)), int(round(dt / base))
                u = jax.vmap(drive)(dt * jnp.arange(T) + 0.5 * dt)
                final, st = mif_simulate(n, u, dt, state=s0)
                v = np.concatenate([np.asarray(st.v), np.asarray(final.v)[None]])
                errs.append(np.max(np.abs(v - vr[::k]), 0) / np.max(np.abs(vr), 0))
            out[shape] = np.asarray(errs)
    return out


def network_convergence(model, x, factors=(1, 2, 5, 10), ref_factor: int = 10) -> dict:
    """Hidden and output membrane error of ``model`` run at ``f`` times its step (each
    ``f`` in ``factors``) against ``model`` at ``1 / ref_factor`` of its step, relative
    to the largest ``|v|`` (ideal reads, images ``x``). ``{"dt": [...], "hidden":
    [...], "output": [...]}``."""
    ref = refine(model, ref_factor)
    _, (hr, orf) = _traces(ref, jnp.asarray(x))
    res = {"dt": [], "hidden": [], "output": []}
    for f in factors:
        m = dataclasses.replace(model, dt=model.dt * f, n_steps=model.n_steps // f)
        _, (h, o) = _traces(m, jnp.asarray(x))
        stride = f * ref_factor
        res["dt"].append(m.dt)
        for name, c, r in (("hidden", h, hr), ("output", o, orf)):
            r = r[stride - 1 :: stride][: c.shape[0]]
            res[name].append(float(jnp.max(jnp.abs(c - r)) / jnp.max(jnp.abs(r))))
    return res


def convergence_figure(ctx, neuron: dict, dts, network: dict, default_dt: float) -> None:
    """The convergence study as one figure (``<name>_convergence.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for ax, shape in zip(axes[:2], ("constant", "alpha")):
        for j, amp in enumerate(STUDY_AMPS):
            ax.loglog(np.asarray(dts) * 1e6, neuron[shape][:, j], "o-", label=f"{amp * 1e6:g} uA")
        ax.set(
            xlabel="dt (us)",
            ylabel="max |v - v_ref| / max |v_ref|",
            title=f"one MIF neuron, {shape} input (vs diffrax)",
        )
    axes[2].loglog(np.asarray(network["dt"]) * 1e6, network["hidden"], "o-", label="hidden")
    axes[2].loglog(np.asarray(network["dt"]) * 1e6, network["output"], "s-", label="output")
    axes[2].set(
        xlabel="dt (us)",
        ylabel="max |v - v_fine| / max |v_fine|",
        title="trained network vs 10x finer (test images)",
    )
    for ax in axes:
        ax.axvline(default_dt * 1e6, color="gray", ls="--", lw=1)
        ax.axhline(0.02, color="red", ls=":", lw=1)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(fig, "convergence")


def convergence_study(ctx, model, test) -> dict:
    """The single-neuron and trained-network convergence study (figure
    ``<name>_convergence.png``); its numbers as metrics."""
    window = model.dt * model.n_steps
    dts = [1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 5e-4]
    neuron = neuron_convergence(dts, window)
    network = network_convergence(model, test[0][:100])
    convergence_figure(ctx, neuron, dts, network, model.dt)
    at = dts.index(model.dt) if model.dt in dts else None
    ctx.log(f"convergence: network {network}")
    return {
        "neuron_error_at_dt": None
        if at is None
        else float(max(neuron[k][at].max() for k in neuron)),
        "convergence": {
            "dt": dts,
            "amps": list(STUDY_AMPS),
            "neuron_constant": neuron["constant"].tolist(),
            "neuron_alpha": neuron["alpha"].tolist(),
            "network": network,
        },
    }
