"""``precision``: the MEMprop training step in float64 / float32 / bfloat16, and a profile.

Per dtype (bfloat16 is mixed precision: bfloat16 compute, float32 master weights): the
step time, the error of the first step's loss, logits and gradient against float64, and
the test accuracy after a short training; the committed memprop-mnist model (its
checkpoint, where present) evaluated in each dtype; and a profile of the float32
training step (its parts timed alone and in interleaved rounds, XLA cost analysis, HLO
op counts).
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import memjax.data as D
from memjax.models.memprop import MEMprop, cross_entropy, memprop_loss
from memjax.neurons import MIF, mif_step
from memjax.train import restore_checkpoint

from . import memprop as memprop_bench
from ._child import REPO
from ._context import Context
from ._memprop import CHECKPOINT_MODES, make_train_step, random_batch
from ._timing import interleaved, load_avg, round_ratio, timeit

__all__ = ["run", "Settings", "FULL", "QUICK"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """784-``n_hidden``-10 MEMprop (its default window), ``batch`` images per step,
    ``train_steps`` steps on the first ``n_train`` MNIST images, tested on ``n_test``;
    medians of ``repeats`` timed calls."""

    n_hidden: int = 512
    batch: int = 128
    n_train: int = 12800
    n_test: int = 10000
    train_steps: int = 100
    repeats: int = 5


FULL = Settings()
QUICK = dataclasses.replace(
    FULL, n_hidden=128, n_train=1280, n_test=1000, train_steps=10, repeats=2
)


def _cast(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _loss_in(dtype_name: str):
    """``memprop_loss`` computed in ``dtype_name``; "bfloat16" is mixed precision: float32
    master weights, the network (crossbar reads and MIF states) in bfloat16, the loss in
    float32."""

    def loss(model, x, y, key=None):
        if dtype_name == "bfloat16":
            m = _cast(model, jnp.bfloat16)
            logits = m(x.astype(jnp.bfloat16), key).astype(jnp.float32)
        else:
            logits = model(x, key)
        return cross_entropy(logits, y), logits

    return loss


def _precision_case(name, model0, train, test, batch, n_train_steps, repeats):
    master = jnp.float64 if name == "float64" else jnp.float32
    loss = _loss_in(name)
    model = _cast(model0, master)
    opt = optax.adam(4e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)

    step = make_train_step(static, opt, loss, project=True, has_aux=True, return_grads=True)
    xb = jnp.asarray(train[0][:batch], master)
    yb = jnp.asarray(train[1][:batch])
    t0 = time.perf_counter()
    comp = jax.jit(step).lower(params, opt_state, xb, yb).compile()
    compile_s = time.perf_counter() - t0
    st = timeit(comp, params, opt_state, xb, yb, repeats=repeats)
    _, _, l0, logits0, g0 = comp(params, opt_state, xb, yb)
    first = {
        "loss": np.float64(l0),
        "logits": np.asarray(logits0, np.float64),
        "grad": np.concatenate([np.asarray(a, np.float64).ravel() for a in jax.tree.leaves(g0)]),
    }
    for i in range(n_train_steps):
        j = (i * batch) % (len(train[0]) - batch + 1)
        xb = jnp.asarray(train[0][j : j + batch], master)
        yb = jnp.asarray(train[1][j : j + batch])
        params, opt_state, l, _, _ = comp(params, opt_state, xb, yb)
    evalf = jax.jit(lambda p, x: loss(eqx.combine(p, static), x, jnp.zeros(len(x), jnp.int32))[1])
    correct = 0
    for j in range(0, len(test[0]), 500):
        logits = evalf(params, jnp.asarray(test[0][j : j + 500], master))
        correct += int(jnp.sum(jnp.argmax(logits, -1) == jnp.asarray(test[1][j : j + 500])))
    return {
        "step_ms": st["median_s"] * 1e3,
        "compile_s": compile_s,
        "final_train_loss": float(l),
        "test_accuracy": correct / len(test[0]),
        "first": first,
    }


def _trained_accuracy(ctx, test, names):
    """Test accuracy of the committed-run MEMprop MNIST model (its checkpoint, if present)
    evaluated in each precision."""
    ckpt = (Path(ctx.out) / "checkpoints" / "memprop-mnist-mif").absolute()
    if not ckpt.exists():
        ckpt = REPO / "benchmarks" / "results" / "checkpoints" / "memprop-mnist-mif"
    s = memprop_bench.FULL
    try:
        restored = restore_checkpoint(
            ckpt, memprop_bench.build_model(s, 0), memprop_bench.optimizer(s.lr, 1)
        )
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
            f = jax.jit(lambda m, x, loss=loss: loss(m, x, jnp.zeros(len(x), jnp.int32))[1])
            correct, t0 = 0, time.perf_counter()
            for j in range(0, len(test[0]), 1000):
                logits = f(model, jnp.asarray(test[0][j : j + 1000], master))
                correct += int(
                    jnp.sum(jnp.argmax(logits, -1) == jnp.asarray(test[1][j : j + 1000]))
                )
            out[name] = {
                "test_accuracy": correct / len(test[0]),
                "seconds": time.perf_counter() - t0,
            }
        ctx.log(f"trained model, {name}: test accuracy {out[name]['test_accuracy']:.4f}")
    return out


def _mif_layer(H, T, B):
    """``i1 -> sum of v`` of one MIF layer ``[B, H]`` over ``T`` steps of 1 ms (remat)."""
    n = MIF()

    def mif_layer(i1):
        s0 = n.init_state(i1.shape, i1.dtype)
        s, vs = jax.lax.scan(
            jax.checkpoint(lambda s, _: (mif_step(n, s, i1, 1e-3),) * 2), s0, None, length=T
        )
        return jnp.sum(vs.v)

    return mif_layer


def _profile(ctx, H, T, B, repeats):
    """Where the float32 MEMprop training step spends its time (see docs/performance.md):
    each part compiled and timed alone (XLA cost analysis beside it), then all of them in
    ``3 * repeats`` interleaved rounds (their ratios)."""
    x, y = random_batch(B, 784, 10, 0)
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
        out[label] = {
            "ms": st["median_s"] * 1e3,
            "min_ms": st["min_s"] * 1e3,
            "compile_s": c,
            "flops": float(ca.get("flops", np.nan)),
            "transcendentals": float(ca.get("transcendentals", np.nan)),
            "bytes_accessed": float(ca.get("bytes accessed", np.nan)),
        }
        ctx.log(f"profile {label}: {st['median_s'] * 1e3:.2f} ms")
        return comp

    for mode in ("step",) if ctx.quick else CHECKPOINT_MODES:
        model = MEMprop.init(jax.random.key(0), 784, H, 10, n_steps=T, checkpoint=mode)
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def grad_f(p, x, y, static=static):
            return jax.value_and_grad(
                lambda q: memprop_loss(eqx.combine(q, static), x, y, None)[0]
            )(p)

        comp = timed(f"value_and_grad_{mode}", grad_f, params, x, y)
        if mode == "step":
            timed("forward", lambda p, x, static=static: eqx.combine(p, static)(x), params, x)
            hlo = comp.as_text()
    # parts: crossbar-1 read (forward and its weight gradient), one MIF layer over T steps
    xb = model.syn1
    timed("crossbar1_read", lambda c, x: c(x * 0.2), xb, x)
    timed(
        "crossbar1_read_grad", lambda c, x: jax.grad(lambda c: jnp.sum(c(x * 0.2) ** 2))(c), xb, x
    )
    i1 = jnp.full((B, H), 5e-6, jnp.float32)
    mif_layer = _mif_layer(H, T, B)
    timed("mif_hidden_layer_forward", mif_layer, i1)
    timed("mif_hidden_layer_grad", jax.grad(mif_layer), i1)
    timed("mif_rest_point", lambda: MIF().init_state((B, H), jnp.float32))
    out["hlo_op_counts_step_mode"] = {
        op: len(re.findall(rf" {op}\(", hlo))
        for op in (
            "while",
            "fusion",
            "dot",
            "exponential",
            "exponential-minus-one",
            "logistic",
            "divide",
            "select",
            "copy",
            "dynamic-update-slice",
        )
    }
    r = interleaved(
        {k: (lambda c=c, a=a: c(*a)) for k, (c, a) in compiled.items()},
        3 * repeats,
        warmup=0,
        seed=1,
    )
    out["interleaved_median_ms"] = {k: v["median_s"] * 1e3 for k, v in r.items()}
    out["interleaved_min_ms"] = {k: v["min_s"] * 1e3 for k, v in r.items()}
    out["ratios"] = {
        **(
            {}
            if ctx.quick
            else {
                "checkpoint_none_over_step": round_ratio(
                    r, "value_and_grad_none", "value_and_grad_step"
                ),
                "checkpoint_sqrt_over_step": round_ratio(
                    r, "value_and_grad_sqrt", "value_and_grad_step"
                ),
            }
        ),
        "grad_over_forward": round_ratio(r, "value_and_grad_step", "forward"),
        "mif_layer_grad_over_forward": round_ratio(
            r, "mif_hidden_layer_grad", "mif_hidden_layer_forward"
        ),
        "mif_layer_forward_over_crossbar1_read": round_ratio(
            r, "mif_hidden_layer_forward", "crossbar1_read"
        ),
    }
    ctx.log(f"profile ratios: {out['ratios']}")
    return out


def run(ctx: Context) -> dict:
    """float64 / float32 / bfloat16 MEMprop steps: time, error vs float64, accuracy; and a
    profile of the float32 training step."""
    load0 = load_avg()
    s = QUICK if ctx.quick else FULL
    H, B, n_train, n_test = s.n_hidden, s.batch, s.n_train, s.n_test
    steps, repeats = s.train_steps, s.repeats
    xtr, ytr = D.load("mnist", "train", data_dir=ctx.data_dir, limit=n_train)
    xte, yte = D.load("mnist", "test", data_dir=ctx.data_dir, limit=n_test)
    train = (D.scale_images(xtr, flatten=True), ytr.astype(np.int32))
    test = (D.scale_images(xte, flatten=True), yte.astype(np.int32))
    names = ("float64", "float32", "bfloat16")
    model0 = MEMprop.init(jax.random.key(ctx.seed), 784, H, 10)
    T = model0.n_steps
    res = {}
    for name in names:
        with jax.enable_x64(name == "float64"):
            res[name] = _precision_case(name, model0, train, test, B, steps, repeats)
        ctx.log(
            f"{name}: step {res[name]['step_ms']:.1f} ms, loss after {steps} steps "
            f"{res[name]['final_train_loss']:.4f}, test acc {res[name]['test_accuracy']:.4f}"
        )
    ref = res["float64"].pop("first")
    cases = {}
    for name in names[1:]:
        f = res[name].pop("first")
        cases[name] = {
            **res[name],
            "loss_rel_err": float(abs(f["loss"] - ref["loss"]) / abs(ref["loss"])),
            "logits_max_rel_err": float(
                np.max(np.abs(f["logits"] - ref["logits"])) / np.max(np.abs(ref["logits"]))
            ),
            "grad_rel_err": float(
                np.linalg.norm(f["grad"] - ref["grad"]) / np.linalg.norm(ref["grad"])
            ),
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
    config = {
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
        "topology": f"784-{H}-10 MEMprop (crossbars, MIF), T {T} x 1 ms, batch {B}",
        "train_steps": steps,
        "n_train": n_train,
        "n_test": n_test,
        "repeats": repeats,
        "optimizer": "Adam 4e-3, projection to [0, 1]",
        "bfloat16": "mixed precision: float32 master weights and Adam; params and "
        "input cast to bfloat16 inside the loss; logits back to float32",
        "errors": "first step on the same batch from the same initial model, vs float64",
        "profile": f"float32, 784-{H}-10, T {T}, batch {B} (full: the MEMprop benchmark setting)",
    }
    return {"metrics": metrics, "config": config}
