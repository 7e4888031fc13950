"""``speed-mif``: one MEMprop training step, its roofline, and a MNIST epoch.

One training step = forward over ``T`` time steps, BPTT (reverse mode through the whole
time loop, each step rematerialised: `MEMprop`'s default ``checkpoint="step"``), one Adam
update (lr 1e-3) and the conductance projection, batch 128, 784-H-10
`memjax.models.memprop.MEMprop` (ideal crossbars, MIF neurons at `MEMprop`'s default
(converged) step of 50 us) on two inputs: ``static`` (an MNIST batch as current at every
step, ``encoding="direct"``) and ``poisson`` (the rate-coded spike tensor of speed-lif,
``encoding="rate"``; crossbar 1 read for all steps in one matmul before the time scan).

Implementations, timed in interleaved rounds (``benchmarks/speed.py``'s protocol):

- ``memjax``: the MIF step with its hand-derived adjoint (``MIF.adjoint="hand"``, the
  default; :mod:`memjax.neurons._mif_adjoint`), the optimised path;
- ``reference``: the same integrator differentiated by JAX (``MIF.adjoint="autodiff"``),
  the path the hand adjoint replaces; ``speedup_vs_reference`` = reference / memjax;
- ``torch_mif`` (``[peers]`` extra): ``benchmarks/_torch_peers.py``'s ``TorchMEMprop``,
  the same equations and exponential-midpoint update in eager PyTorch with a Python loop
  over time (crossbar 1 read inside the loop, as the authors' prototype runs), with
  ``torch.set_num_threads`` = XLA's cores and with 1 thread; ``speedup_vs_torch_mif``
  against the faster of the two.

**Roofline.** :mod:`benchmarks._roofline` counts the operations of the compiled training
step's jaxpr (scans with their trip counts, rematerialised and custom-VJP bodies
included: the forward, its recomputation and the backward), times this CPU's throughput
for each elementwise primitive that occurs and for a matmul of crossbar 1's shape in
fused XLA loops over arrays of the hidden layer's size, and estimates the step as every
operation at that rate. ``ns_per_neuron_step`` = step time / (``T`` x batch x (H + 10)),
``roofline_ns_per_neuron_step`` the same for the estimate, ``roofline_ratio`` their
ratio. The per-neuron-step operations of one MIF step (forward, and forward + VJP, for
both adjoints) are reported by class.

**Input path** (``poisson``): the projection of the spikes through crossbar 1 and its
weight gradient, timed alone three ways: one ``[T batch, 784] @ [784, H]`` matmul before
the scan (what `MEMprop` does), ``T`` matmuls inside a ``lax.scan`` (what the PyTorch loop
does), and the batched matmul fed int8 spikes converted inside the jitted function.

**MNIST epoch.** The 60,000 MNIST training images in batches of 128 (468 steps, as
`memjax.training.fit` drops the remainder), 784-512-10, ``n_steps`` 10 at ``dt`` 500 us
(memprop-mnist's coarse epochs: the same 5 ms window as 100 x 50 us), both adjoints,
wall-clock of the Python loop over batches (data on the device), the two epochs run in
alternating chunks of 26 batches. QUICK times 10 batches and scales to 468
(``epoch_extrapolated``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import memjax.data as D
from memjax.models.memprop import MEMprop, cross_entropy, project
from memjax.neurons.mif import mif_step

from . import _roofline as R
from .speed import (
    BATCH,
    LR,
    MAX_RATE,
    N_IN,
    N_OUT,
    _bar_figure,
    _best_torch,
    _cost_flops,
    _have,
    _images,
    _interleaved,
    _n_threads,
    _one_thread,
    _peer_versions,
    _ratio,
    _spikes,
)

__all__ = ["run", "TARGETS", "Settings", "FULL", "QUICK"]

#: Targets of issue 23 (and issue 6's speedup_vs_torch_mif), reported beside the numbers.
TARGETS = {
    "speedup_vs_reference_T100_H256": (">=", 2.0),
    "speedup_vs_torch_mif": (">=", 5.0),
    "roofline_ratio": ("<=", 2.0),
}
EPOCH_IMAGES = 60_000
EPOCH_CHUNK = 26  # batches per timed chunk of the epoch (18 chunks of 468)


@dataclasses.dataclass(frozen=True)
class Settings:
    """``cases``: ``(T, H)`` pairs timed; ``repeats`` interleaved rounds after ``warmup``
    calls; the epoch at ``epoch_hidden`` units, ``epoch_steps`` steps of ``epoch_dt``
    (s), ``epoch_batches`` timed batches (None: the whole epoch)."""

    cases: tuple[tuple[int, int], ...] = ((25, 128), (100, 256))
    repeats: int = 15
    warmup: int = 2
    epoch_hidden: int = 512
    epoch_steps: int = 10
    epoch_dt: float = 5e-4
    epoch_batches: int | None = None


FULL = Settings()
QUICK = dataclasses.replace(FULL, cases=((25, 128),), repeats=3, warmup=1, epoch_batches=10)


def _with_adjoint(model: MEMprop, adjoint: str) -> MEMprop:
    n1 = dataclasses.replace(model.neuron1, adjoint=adjoint)
    n2 = dataclasses.replace(model.neuron2, adjoint=adjoint)
    return eqx.tree_at(lambda m: (m.neuron1, m.neuron2), model, (n1, n2))


def _train_step(model: MEMprop, spikes=None):
    """The jitted training step over the model's inexact arrays (``speed-lif``'s form)."""
    opt = optax.adam(LR)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def step(params, opt_state, x, y, key):
        def loss_fn(p):
            return cross_entropy(eqx.combine(p, static)(x, key, spikes=spikes), y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        model = project(eqx.combine(optax.apply_updates(params, updates), static))
        return eqx.filter(model, eqx.is_inexact_array), opt_state, loss

    return step, params, opt.init(params)


def _memjax_mif(T, H, x, y, encoding, seed, spikes, adjoint):
    model = MEMprop.init(
        jax.random.key(seed), N_IN, H, N_OUT, n_steps=T, encoding=encoding, rate_max=MAX_RATE
    )
    model = _with_adjoint(model, adjoint)
    step, params, opt_state = _train_step(model, spikes)
    key = jax.random.key(seed + 3)
    args = (params, opt_state, x, y, key)
    t0 = time.perf_counter()
    compiled = step.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    fn = lambda: step(*args)  # noqa: E731
    return model, fn, compile_s, _cost_flops(compiled), (step, args)


def _torch_mif(model, x, y, spikes=None):
    import torch

    from . import _torch_peers as TP

    net = TP.mif_from_memprop(model)
    kw = {} if spikes is None else {"spikes": torch.from_numpy(np.array(spikes))}
    step = TP.make_step(net, LR, project=lambda n: n.project(), **kw)
    xt = torch.from_numpy(np.array(x))
    yt = torch.from_numpy(np.array(y)).long()
    return lambda: step(xt, yt)


# --------------------------------------------------------------------------- roofline


def _per(counts: dict, n: int) -> dict:
    return {k: v / n for k, v in R.by_class(counts).items()}


def mif_step_ops(B: int, H: int) -> dict:
    """Operations per neuron-step of one MIF step on ``[B, H]`` by class: the forward,
    and the forward + VJP w.r.t. the state and input, for both adjoints."""
    from memjax.neurons.mif import MIF

    out = {}
    for adjoint in ("hand", "autodiff"):
        p = MIF(adjoint=adjoint)
        s0 = p.init_state((B, H), jnp.float32)
        u = jnp.full((B, H), 1e-5, jnp.float32)

        def fwd(s, u, p=p):
            return mif_step(p, s, u, 5e-5)

        def vjp(s, u, fwd=fwd):
            out, f = jax.vjp(fwd, s, u)
            return f(out)

        out[adjoint] = {
            "forward": _per(R.op_counts(fwd, s0, u), B * H),
            "forward_and_vjp": _per(R.op_counts(vjp, s0, u), B * H),
            "hlo_array_instructions": {
                "forward": _hlo_array_instructions(fwd, (B, H), s0, u),
                "forward_and_vjp": _hlo_array_instructions(vjp, (B, H), s0, u),
            },
        }
    return out


def _hlo_array_instructions(fn, shape, *args) -> int:
    """Instructions producing a float32 array of ``shape`` in XLA's optimised HLO of
    ``fn`` (inside fusions included): the elementwise work the compiled program does,
    to compare with the jaxpr's count (more where XLA duplicates shared producers into
    several fused consumers)."""
    txt = jax.jit(fn).lower(*args).compile().as_text()
    pat = re.compile(r"= f32\[" + ",".join(map(str, shape)) + r"\]\S* [a-z][\w-]*\(")
    return sum(1 for line in txt.splitlines() if pat.search(line) and " parameter(" not in line)


def roofline_case(step, args, T: int, H: int, seconds: float) -> dict:
    """Op counts of the whole training step, this CPU's rates for them on arrays of the
    hidden layer's size, and the measured and estimated time per neuron-step."""
    counts = R.op_counts(step, *args)
    B = BATCH
    spo = R.throughput(
        [p for p in counts if R.classify(p) in ("transcendental", "division")],
        B * H,
        (B, N_IN, H),
    )
    est = R.roofline(counts, spo)
    n = T * B * (H + N_OUT)
    return {
        "ns_per_neuron_step": 1e9 * seconds / n,
        "roofline_ns_per_neuron_step": 1e9 * est["total"] / n,
        "roofline_ratio": seconds / est["total"],
        "roofline_ns_by_class": {k: 1e9 * v / n for k, v in est.items() if k != "total"},
        "ops_per_neuron_step": _per(counts, n),
        "ns_per_op": {k: 1e9 * v for k, v in spo.items()},
    }


# --------------------------------------------------------------------------- input path


def projection_paths(T: int, H: int, spikes, ctx, repeats: int) -> dict:
    """The spike projection and its weight gradient alone: batched before the scan,
    step by step in a scan, batched from int8 spikes (milliseconds, median)."""
    B = spikes.shape[1]
    W = 1e-5 * jax.random.uniform(jax.random.key(0), (N_IN, H))
    ct = jax.random.normal(jax.random.key(1), (T, B, H))
    s8 = spikes.astype(jnp.int8)

    def batched(W, s):
        i = (s.reshape(T * B, N_IN).astype(W.dtype) @ W).reshape(T, B, H)
        return jnp.sum(i * ct)

    def in_scan(W, s):
        def body(acc, st):
            s_t, c_t = st
            return acc + jnp.sum((s_t @ W) * c_t), None

        return jax.lax.scan(body, jnp.zeros(()), (s, ct))[0]

    fns = {
        "batched": jax.jit(jax.value_and_grad(batched)),
        "in_scan": jax.jit(jax.value_and_grad(in_scan)),
        "batched_int8": jax.jit(jax.value_and_grad(batched)),
    }
    inputs = {"batched": spikes, "in_scan": spikes, "batched_int8": s8}
    calls = {k: (lambda f=f, k=k: f(W, inputs[k])) for k, f in fns.items()}
    g = [np.asarray(c()[1]) for c in calls.values()]
    # the same gradient up to float32 summation order
    scale = float(np.max(np.abs(g[0])))
    if not all(float(np.max(np.abs(g[0] - gi))) <= 1e-5 * scale for gi in g[1:]):
        raise RuntimeError("speed-mif: the projection variants disagree")
    r = _interleaved(calls, repeats, ctx, f"projection T{T} H{H}", 1)
    return {k: 1e3 * v["median_s"] for k, v in r.items()}


# --------------------------------------------------------------------------- epoch


def mnist_epoch(ctx, s: Settings) -> dict:
    """Seconds of one MEMprop MNIST epoch (module docstring), both adjoints."""
    try:
        x, y = D.load("mnist", "train", data_dir=ctx.data_dir)
        x, data = D.scale_images(x, flatten=True).astype(np.float32), "mnist"
    except Exception as e:  # pragma: no cover - data missing
        ctx.log(f"no MNIST training set ({e}); random images")
        rng = np.random.default_rng(ctx.seed)
        x, data = rng.random((EPOCH_IMAGES, N_IN), dtype=np.float32), "random"
        y = rng.integers(0, 10, EPOCH_IMAGES)
    n_batches = len(x) // BATCH
    timed = n_batches if s.epoch_batches is None else min(s.epoch_batches, n_batches)
    xb = jnp.asarray(x[: timed * BATCH].reshape(timed, BATCH, N_IN))
    yb = jnp.asarray(np.asarray(y[: timed * BATCH], np.int32).reshape(timed, BATCH))
    out: dict = {"data": data, "batches_per_epoch": n_batches, "batches_timed": timed}
    runs = {}
    for adjoint in ("autodiff", "hand"):
        model = MEMprop.init(jax.random.key(ctx.seed), N_IN, s.epoch_hidden, N_OUT)
        model = dataclasses.replace(model, dt=s.epoch_dt, n_steps=s.epoch_steps)
        step, params, opt_state = _train_step(_with_adjoint(model, adjoint))
        key = jax.random.key(ctx.seed + 1)
        # compile: each call's outputs are the next call's inputs, and their weak types
        # settle only after two updates (three compiled variants)
        for b in range(3):
            params, opt_state, _ = step(params, opt_state, xb[b], yb[b], key)
        jax.block_until_ready(params)
        runs[adjoint] = [step, params, opt_state, key, 0.0, None]
    # both epochs advance in alternating chunks of batches (the order flips every
    # chunk), so a change of the machine's load hits both alike
    for c, start in enumerate(ctx.progress(range(0, timed, EPOCH_CHUNK), desc="epoch")):
        order = ("autodiff", "hand") if c % 2 == 0 else ("hand", "autodiff")
        for adjoint in order:
            r = runs[adjoint]
            t0 = time.perf_counter()
            for b in range(start, min(start + EPOCH_CHUNK, timed)):
                r[1], r[2], r[5] = r[0](r[1], r[2], xb[b], yb[b], r[3])
            jax.block_until_ready(r[1])
            r[4] += time.perf_counter() - t0
    for adjoint, r in runs.items():
        name = "reference" if adjoint == "autodiff" else "memjax"
        out[f"{name}_epoch_s"] = r[4] * n_batches / timed
        out[f"{adjoint}_final_loss"] = float(r[5])
    out["speedup_vs_reference"] = out["reference_epoch_s"] / out["memjax_epoch_s"]
    out["epoch_extrapolated"] = timed < n_batches
    return out


# --------------------------------------------------------------------------- run


def _case(ctx, s: Settings, T: int, H: int, inp: str, x, y, spikes, have_torch, n_threads):
    enc, sp = ("direct", None) if inp == "static" else ("rate", spikes)
    tag = f"T{T}_H{H}_{inp}"
    ctx.log(f"{tag}: building and compiling")
    model, m_fn, m_compile, m_flops, (step, args) = _memjax_mif(
        T, H, x, y, enc, ctx.seed, sp, "hand"
    )
    _, r_fn, r_compile, _, _ = _memjax_mif(T, H, x, y, enc, ctx.seed, sp, "autodiff")
    fns = {"memjax": m_fn, "reference": r_fn}
    if have_torch:
        fns["torch_mif"] = _torch_mif(model, x, y, sp)
        fns["torch_mif_1thread"] = _one_thread(_torch_mif(model, x, y, sp), n_threads)
    r = _interleaved(fns, s.repeats, ctx, tag, s.warmup)
    t = {k: v["median_s"] for k, v in r.items()}
    m = {
        "memjax_step_ms": 1e3 * t["memjax"],
        "reference_step_ms": 1e3 * t["reference"],
        "speedup_vs_reference": _ratio(t["reference"], t["memjax"]),
        # median over rounds of the per-round ratio (slow load drift cancels)
        "speedup_vs_reference_paired": float(
            np.median(np.array(r["reference"]["times_s"]) / np.array(r["memjax"]["times_s"]))
        ),
        "torch_mif_step_ms": 1e3 * t["torch_mif"] if "torch_mif" in t else None,
        "torch_mif_1thread_step_ms": 1e3 * t["torch_mif_1thread"]
        if "torch_mif_1thread" in t
        else None,
        # against the faster of PyTorch with 2 threads (= XLA's) and with 1
        "speedup_vs_torch_mif": _ratio(_best_torch(t, "torch_mif"), t["memjax"]),
        "memjax_compile_s": m_compile,
        "reference_compile_s": r_compile,
        "xla_flops_memjax_step": m_flops,
        "first_call_s": {k: v["first_s"] for k, v in r.items()},
        "min_step_ms": {k: 1e3 * v["min_s"] for k, v in r.items()},
    }
    ctx.log(f"{tag}: roofline")
    m.update(roofline_case(step, args, T, H, t["memjax"]))
    if inp == "poisson":
        proj = projection_paths(T, H, spikes, ctx, max(3, s.repeats // 3))
        m["projection_ms"] = proj
        m["projection_share_of_step"] = proj["batched"] / (1e3 * t["memjax"])
    ctx.log(
        f"{tag}: "
        + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in t.items())
        + f"; x{m['speedup_vs_reference']:.2f} vs reference, "
        f"{m['ns_per_neuron_step']:.1f} ns/neuron-step (roofline "
        f"{m['roofline_ns_per_neuron_step']:.1f}, ratio {m['roofline_ratio']:.2f})"
    )
    return tag, m, t


def _summary(metrics: dict) -> dict:
    cases = {k: v for k, v in metrics.items() if k.startswith("T")}

    def vals(key, pick=lambda k: True):
        return [v[key] for k, v in cases.items() if pick(k) and v.get(key) is not None]

    sp = vals("speedup_vs_torch_mif")
    out = {
        "speedup_vs_torch_mif_min": min(sp) if sp else None,
        "speedup_vs_reference_min": min(vals("speedup_vs_reference")),
        "roofline_ratio_max": max(vals("roofline_ratio")),
    }
    for inp in ("static", "poisson"):
        v = vals("speedup_vs_reference", lambda k, inp=inp: k == f"T100_H256_{inp}")
        out[f"speedup_vs_reference_T100_H256_{inp}"] = v[0] if v else None
    return out


def run(ctx) -> dict:
    s = QUICK if ctx.quick else FULL
    n_threads = _n_threads()
    have_torch = _have("torch")
    if have_torch:
        import torch

        torch.set_num_threads(n_threads)
    else:
        ctx.log("torch not installed (pip install -e '.[peers]'): torch MIF skipped")
    xs_np, ys_np, data = _images(ctx)
    x, y = jnp.asarray(xs_np), jnp.asarray(ys_np)
    load_before = os.getloadavg()
    metrics: dict = {}
    rows = []
    for T, H in s.cases:
        # the same spike tensor as speed-lif's, fed to every implementation
        spikes = _spikes(ctx, x, T)
        for inp in ("static", "poisson"):
            tag, m, t = _case(ctx, s, T, H, inp, x, y, spikes, have_torch, n_threads)
            metrics[tag] = m
            rows.append((tag, t))
    ctx.log("MIF step: operations per neuron-step")
    metrics["mif_step_ops_per_neuron_step"] = mif_step_ops(BATCH, s.cases[-1][1])
    ctx.log("MNIST epoch")
    metrics["mnist_epoch"] = mnist_epoch(ctx, s)
    metrics["summary"] = _summary(metrics)
    metrics["summary"]["mnist_epoch_s"] = metrics["mnist_epoch"]["memjax_epoch_s"]
    _bar_figure(
        ctx,
        rows,
        "step_times",
        f"speed-mif: one MEMprop training step (fwd + BPTT + Adam + clip), batch {BATCH}",
    )
    config = dict(
        dataclasses.asdict(s),
        batch=BATCH,
        n_in=N_IN,
        n_out=N_OUT,
        lr=LR,
        data=data,
        dt_s=MEMprop.__dataclass_fields__["dt"].default,
        rate_max_hz=MAX_RATE,
        memprop="MEMprop.init defaults (ideal crossbars, MIF defaults, gains 2, k_out 200)",
        checkpoint=MEMprop.__dataclass_fields__["checkpoint"].default,
        torch_num_threads=[n_threads, 1] if have_torch else None,
        xla_cpu_threads=n_threads,
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        peers=_peer_versions(),
        targets=TARGETS,
    )
    return {"metrics": metrics, "config": config}
