"""``speed-lif``: one training step of memjax against what users run; the shared
protocol and helpers of ``speed-mif`` (``benchmarks/speed_mif.py``).

One training step = forward over ``T`` time steps, BPTT (reverse-mode through the whole
time loop), one Adam update (lr 1e-3), batch 128, 784-H-10 network, cross-entropy on the
output layer's membrane averaged over time. Two inputs:

- ``static``: an MNIST image batch injected as current at every step (the MEMprop
  setting; direct coding);
- ``poisson``: a rate-coded spike tensor ``(T, 128, 784)`` (:func:`memjax.data.rate`,
  ``max_rate`` :data:`MAX_RATE` Hz at ``dt`` = 1 ms) of the same images.

``speed-lif`` (surrogate-gradient LIF, beta 0.9, threshold 1, fast-sigmoid slope 25)
runs:

- **memjax**: `memjax.models.memprop.LIFNet` (:mod:`memjax.neurons.lif`) trained the way
  a user writes it: ``eqx.partition`` into arrays and the rest, a ``jax.jit`` step with
  ``jax.value_and_grad`` and ``optax.adam`` (the headline ``memjax``); also timed with
  ``eqx.filter_jit`` + ``eqx.filter_value_and_grad`` (``memjax_filter_jit``: the same
  compiled code plus equinox's per-call Python work);
- **hand JAX**: ``benchmarks/_handjax.py``, a dict of arrays, one ``lax.scan``, the static
  input's projection outside the scan, ``jax.jit`` (the yardstick for memjax's overhead);
- **snnTorch** (``[peers]`` extra): ``nn.Linear`` + ``snn.Leaky`` with a Python loop over
  time as in its tutorials (``benchmarks/_torch_peers.py``), ``torch.optim.Adam``;
  ``torch.set_num_threads`` = the cores XLA uses;
- **Spyx** (``[peers]`` extra): ``spyx.nn.Sequential(nnx.Linear, spyx.nn.LIF, nnx.Linear,
  spyx.nn.LI)`` driven by ``spyx.nn.run`` over a time-major input (the static image
  repeated ``T`` times), trained by ``spyx.optimize.make_train_step`` with an
  ``nnx.Optimizer`` (Spyx's own training step).

The peers' LIF conventions differ slightly (snnTorch applies the reset one step later;
Spyx's ``LIF`` computes the spike from the previous membrane and lets gradient flow through
the reset; its idiomatic readout layer is a non-spiking ``LI``): the work per step is the
same two matmuls and elementwise updates.

Protocol: every implementation is built on the same weights and data, called once
(compile / first call, recorded as ``*_first_s``) and ``WARMUP`` more times, then timed in
``repeats`` interleaved rounds (each round times every implementation once, so load
changes on the shared machine hit all of them alike); the step time is the median over
rounds, outputs blocked on (``jax.block_until_ready``; PyTorch on CPU is synchronous).

``flops_utilization`` = ``flops / memjax_step_s / peak``: ``flops`` is from XLA's cost
analysis (``jax.jit(f).lower(...).compile().cost_analysis()["flops"]``). That analysis
counts the body of a ``while`` loop (a ``lax.scan``) once, not ``T`` times, so ``flops``
= the cost of the compiled hand-JAX step + ``(T - 1)`` x the cost of one time step's
forward and VJP compiled alone (:func:`_step_flops`; compiling the scan fully unrolled
instead over-counts, because XLA then duplicates the held input projection into the
unrolled steps' fusions). The cost analysis of memjax's own compiled step is recorded as
``xla_flops_memjax_step`` (loop bodies once). ``peak`` is the FLOP/s of a dense
``PEAK_N`` x ``PEAK_N`` float32 matmul timed in the same interleaved rounds: its median
(``flops_utilization``) and its best round (``flops_utilization_vs_best_peak``, the
machine's capability when the other tenants let it run).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import memjax.data as D
from memjax.models.memprop import LIFNet, cross_entropy

from . import _handjax as HJ
from ._context import Context
from ._plot import plt
from ._timing import interleaved

__all__ = ["run_lif", "TARGETS"]

#: Targets of issue 6, reported beside the numbers.
TARGETS = {
    "ratio_vs_hand_jax": ("<=", 1.15),
    "speedup_vs_snntorch_static": (">=", 5.0),
    "speedup_vs_snntorch_poisson": (">=", 1.5),
    "speedup_vs_spyx_static": (">=", 2.0),
    "speedup_vs_spyx_poisson": (">=", 1.1),
    "flops_utilization_poisson": (">=", 0.5),
}
BATCH = 128
N_IN, N_OUT = 784, 10
LR = 1e-3
MAX_RATE = 200.0  # Hz, Poisson input; p = 0.2 per step for a white pixel at dt = 1 ms
DT = 1e-3
WARMUP = 2
GAP_S = 0.05  # idle gap before each timed sample
MIN_SAMPLE_S = 0.25  # a timed sample averages enough back-to-back calls to last this long
PEAK_N = 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    """``cases``: ``(T, H)`` pairs timed; ``repeats`` interleaved rounds after ``warmup``
    calls."""

    cases: tuple[tuple[int, int], ...] = ((25, 128), (100, 256))
    repeats: int = 15
    warmup: int = WARMUP


FULL = Settings()
QUICK = dataclasses.replace(FULL, cases=((25, 128),), repeats=3, warmup=1)


def _settings(ctx: Context) -> dict:
    s = dataclasses.asdict(QUICK if ctx.quick else FULL)
    return dict(s, cases=[tuple(c) for c in s["cases"]])


def _n_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _images(ctx: Context):
    """A batch of MNIST test images in [0, 1] (random images where no data is found)."""
    try:
        x, y = D.load("mnist", "test", data_dir=ctx.data_dir, limit=BATCH)
        return D.scale_images(x, flatten=True).astype(np.float32), y.astype(np.int32), "mnist"
    except Exception as e:  # pragma: no cover - data missing
        ctx.log(f"no MNIST ({e}); random images")
        rng = np.random.default_rng(ctx.seed)
        return (
            rng.random((BATCH, N_IN), dtype=np.float32),
            rng.integers(0, 10, BATCH).astype(np.int32),
            "random",
        )


def _spikes(ctx: Context, x, T: int):
    """The Poisson case's input: rate-coded spikes ``(T, batch, 784)`` of the images
    ``x`` (the same tensor in speed-lif and speed-mif)."""
    return D.rate(jax.random.key(ctx.seed + 7), x, T, max_rate=MAX_RATE, dt=DT)


def _have(mod: str) -> bool:
    """Whether the optional peer ``mod`` (torch, snntorch, spyx: the ``[peers]`` extra) is
    installed. The peers are imported inside the functions that run them, only then."""
    return importlib.util.find_spec(mod) is not None


def _interleaved(fns: dict, repeats: int, ctx: Context, desc: str, warmup: int = WARMUP) -> dict:
    """:func:`benchmarks._timing.interleaved` with this benchmark's protocol: an idle gap
    (:data:`GAP_S`) and one untimed call before each sample (so that one library's worker
    threads still spinning after its call, PyTorch's OpenMP pool, do not slow down the
    next call, and the CPU and thread pools are awake after the gap, as in a training
    loop calling step after step), samples of at least :data:`MIN_SAMPLE_S`."""
    return interleaved(
        fns,
        repeats,
        warmup=warmup,
        gap_s=GAP_S,
        untimed_call=True,
        min_sample_s=MIN_SAMPLE_S,
        seed=0,
        progress=lambda it: ctx.progress(it, desc=desc, leave=False),
    )


def _one_thread(fn, n_threads: int):
    """``fn`` run with ``torch.set_num_threads(1)`` (restored to ``n_threads`` after)."""
    import torch

    def f():
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(n_threads)

    return f


def _best_torch(t: dict, name: str):
    """The faster of the 2-thread and 1-thread PyTorch runs (None where absent)."""
    vals = [t[k] for k in (name, name + "_1thread") if k in t]
    return min(vals) if vals else None


def _peak_fn():
    a = jax.random.normal(jax.random.key(0), (PEAK_N, PEAK_N), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (PEAK_N, PEAK_N), jnp.float32)
    mm = jax.jit(lambda a, b: a @ b)
    return (lambda: mm(a, b)), 2.0 * PEAK_N**3


def _cost_flops(compiled) -> float | None:
    compiled = getattr(compiled, "compiled", compiled)  # equinox's AOT wrapper
    ca = compiled.cost_analysis()
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else {}
    return None if ca is None else (float(ca["flops"]) if "flops" in ca else None)


def _ratio(a, b):
    return None if (a is None or b is None) else float(a / b)


# --------------------------------------------------------------------------- LIF


def _memjax_lif(T, H, x, y, opt):
    """memjax's step, two ways a user writes it: ``eqx.partition`` + ``jax.jit`` (the
    headline; what equinox recommends where dispatch overhead matters) and
    ``eqx.filter_jit`` (convenient; ~0.1-0.3 ms more Python work per call)."""
    model = LIFNet.init(jax.random.key(1), N_IN, H, N_OUT, n_steps=T)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            return cross_entropy(eqx.combine(p, static)(x), y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @eqx.filter_jit
    def fstep(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(lambda m: cross_entropy(m(x), y))(model)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), opt_state, loss

    opt_state = opt.init(params)
    t0 = time.perf_counter()
    compiled = step.lower(params, opt_state, x, y).compile()
    compile_s = time.perf_counter() - t0
    return (
        (lambda: step(params, opt_state, x, y)),
        (lambda: fstep(model, opt_state, x, y)),
        compile_s,
        _cost_flops(compiled),
    )


def _hand_lif(T, H, x, y, opt):

    params = HJ.init_params(jax.random.key(1), N_IN, H, N_OUT)
    step = HJ.make_train_step(opt, n_steps=T)
    opt_state = opt.init(params)
    t0 = time.perf_counter()
    step.lower(params, opt_state, x, y).compile()
    compile_s = time.perf_counter() - t0
    return (lambda: step(params, opt_state, x, y)), compile_s, params


def _step_flops(params, x, y, T, opt) -> float:
    """FLOPs of one hand-JAX training step: XLA's cost analysis of the compiled step,
    which counts each scan body once (the forward and the backward loop), plus ``T - 1``
    times the cost analysis of one time step's forward and VJP compiled alone."""

    step = HJ.make_train_step(opt, n_steps=T)
    c_step = _cost_flops(step.lower(params, opt.init(params), x, y).compile())
    seq = x.ndim == 3
    B = x.shape[-2]
    carry = (
        jnp.zeros((B, params["w1"].shape[1]), x.dtype),
        jnp.zeros((B, params["w2"].shape[1]), x.dtype),
    )
    if seq:  # the step's spikes are data: no gradient

        def one(p, c, xt):
            out, vjp = jax.vjp(lambda p, c: HJ.time_step(p, c, xt, seq=True), p, c)
            return out, vjp(out)

        inp = x[0]
    else:  # layer 1's current depends on the weights: its cotangent is needed

        def one(p, c, i):
            out, vjp = jax.vjp(lambda p, c, i: HJ.time_step(p, c, i, seq=False), p, c, i)
            return out, vjp(out)

        inp = jnp.zeros((B, params["w1"].shape[1]), x.dtype)
    c_body = _cost_flops(jax.jit(one).lower(params, carry, inp).compile())
    return c_step + (T - 1) * c_body


def _snntorch_lif(T, params, x, y):
    import torch

    from . import _torch_peers as TP

    net = TP.lif_from_params(params)
    step = TP.make_step(net, LR, num_steps=T)
    xt = torch.from_numpy(np.array(x))
    yt = torch.from_numpy(np.array(y)).long()
    return lambda: step(xt, yt)


def _spyx_lif(T, H, x, y):
    import spyx
    from flax import nnx

    rngs = nnx.Rngs(1)
    model = spyx.nn.Sequential(
        nnx.Linear(N_IN, H, rngs=rngs),
        spyx.nn.LIF((H,), beta=0.9, activation=spyx.axn.superspike(25.0), rngs=rngs),
        nnx.Linear(H, N_OUT, rngs=rngs),
        spyx.nn.LI((N_OUT,), beta=0.9, rngs=rngs),
    )
    optimizer = nnx.Optimizer(model, optax.adam(LR), wrt=nnx.Param)

    def loss_fn(m, x, y):
        xs = x if x.ndim == 3 else jnp.broadcast_to(x, (T,) + x.shape)
        out, _ = spyx.nn.run(m, xs)
        logits = jnp.mean(out, axis=0)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    step = spyx.optimize.make_train_step(loss_fn)
    return lambda: step(model, optimizer, x, y)


def run_lif(ctx: Context) -> dict:
    s = _settings(ctx)
    n_threads = _n_threads()
    have_torch = _have("torch") and _have("snntorch")
    have_spyx = _have("spyx")
    if have_torch:
        import torch

        torch.set_num_threads(n_threads)
    else:
        ctx.log("snnTorch not installed (pip install -e '.[peers]'): skipped")
    if not have_spyx:
        ctx.log("Spyx not installed (pip install -e '.[peers]'): skipped")
    xs_np, ys_np, data = _images(ctx)
    x, y = jnp.asarray(xs_np), jnp.asarray(ys_np)
    opt = optax.adam(LR)
    peak, peak_flops = _peak_fn()
    load_before = os.getloadavg()
    metrics: dict = {}
    rows = []
    for T, H in s["cases"]:
        spikes = _spikes(ctx, x, T)
        for inp, xin in (("static", x), ("poisson", spikes)):
            tag = f"T{T}_H{H}_{inp}"
            ctx.log(f"{tag}: building and compiling")
            m_fn, mf_fn, m_compile, m_xla_flops = _memjax_lif(T, H, xin, y, opt)
            h_fn, h_compile, params = _hand_lif(T, H, xin, y, opt)
            flops = _step_flops(params, xin, y, T, opt)
            fns = {"memjax": m_fn, "memjax_filter_jit": mf_fn, "hand_jax": h_fn}
            if have_torch:
                fns["snntorch"] = _snntorch_lif(T, params, xin, y)
                fns["snntorch_1thread"] = _one_thread(_snntorch_lif(T, params, xin, y), n_threads)
            if have_spyx:
                fns["spyx"] = _spyx_lif(T, H, xin, y)
            fns["peak_matmul"] = peak
            r = _interleaved(fns, s["repeats"], ctx, tag, s["warmup"])
            t = {k: v["median_s"] for k, v in r.items()}
            peak_s = peak_flops / t["peak_matmul"]
            m = {
                "memjax_step_ms": 1e3 * t["memjax"],
                "hand_jax_step_ms": 1e3 * t["hand_jax"],
                "snntorch_step_ms": 1e3 * t["snntorch"] if "snntorch" in t else None,
                "snntorch_1thread_step_ms": 1e3 * t["snntorch_1thread"]
                if "snntorch_1thread" in t
                else None,
                "spyx_step_ms": 1e3 * t["spyx"] if "spyx" in t else None,
                "memjax_filter_jit_step_ms": 1e3 * t["memjax_filter_jit"],
                "ratio_vs_hand_jax": _ratio(t["memjax"], t["hand_jax"]),
                "ratio_vs_hand_jax_of_min": _ratio(r["memjax"]["min_s"], r["hand_jax"]["min_s"]),
                # median over rounds of the per-round ratio (the two samples of a round
                # are seconds apart, so slow load drift cancels)
                "ratio_vs_hand_jax_paired": float(
                    np.median(np.array(r["memjax"]["times_s"]) / np.array(r["hand_jax"]["times_s"]))
                ),
                "ratio_vs_hand_jax_filter_jit": _ratio(t["memjax_filter_jit"], t["hand_jax"]),
                # against the faster of snnTorch with 2 threads (= XLA's) and with 1
                "speedup_vs_snntorch": _ratio(_best_torch(t, "snntorch"), t["memjax"]),
                "speedup_vs_spyx": _ratio(t.get("spyx"), t["memjax"]),
                "flops_per_step": flops,
                "xla_flops_memjax_step": m_xla_flops,
                "achieved_gflops": None if flops is None else flops / t["memjax"] / 1e9,
                "peak_matmul_gflops": peak_s / 1e9,
                "flops_utilization": None if flops is None else flops / t["memjax"] / peak_s,
                # against the best matmul rate seen in the run (the machine's capability
                # when the other tenants let it run); the median above can exceed 1
                # when load depresses the median matmul more than the step
                "flops_utilization_vs_best_peak": None
                if flops is None
                else flops / t["memjax"] / (peak_flops / r["peak_matmul"]["min_s"]),
                "memjax_compile_s": m_compile,
                "hand_jax_compile_s": h_compile,
                "first_call_s": {k: v["first_s"] for k, v in r.items()},
                "min_step_ms": {k: 1e3 * v["min_s"] for k, v in r.items()},
                "calls_per_sample": {k: v["n_inner"] for k, v in r.items()},
            }
            metrics[tag] = m
            rows.append((tag, {k: v for k, v in t.items() if k != "peak_matmul"}))
            ctx.log(
                f"{tag}: "
                + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in t.items())
                + f"; ratio_vs_hand_jax {m['ratio_vs_hand_jax']:.3f}, "
                f"util {m['flops_utilization']:.2f}"
            )
    metrics["summary"] = _lif_summary(metrics)
    _bar_figure(
        ctx, rows, "step_times", f"speed-lif: one training step (fwd + BPTT + Adam), batch {BATCH}"
    )
    config = dict(
        batch=BATCH,
        n_in=N_IN,
        n_out=N_OUT,
        lr=LR,
        cases=s["cases"],
        repeats=s["repeats"],
        warmup=s["warmup"],
        data=data,
        poisson_max_rate_hz=MAX_RATE,
        dt_s=DT,
        peak_n=PEAK_N,
        lif=dict(beta=0.9, theta=1.0, surrogate="fast_sigmoid", slope=25.0),
        torch_num_threads=[n_threads, 1] if have_torch else None,
        xla_cpu_threads=n_threads,
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        peers=_peer_versions(),
        targets=TARGETS,
    )
    return {"metrics": metrics, "config": config}


def _lif_summary(metrics: dict) -> dict:
    cases = {k: v for k, v in metrics.items() if k.startswith("T")}
    out = {
        "ratio_vs_hand_jax_max": max(v["ratio_vs_hand_jax"] for v in cases.values()),
        "ratio_vs_hand_jax_paired_max": max(v["ratio_vs_hand_jax_paired"] for v in cases.values()),
    }
    for inp in ("static", "poisson"):
        sub = [v for k, v in cases.items() if k.endswith(inp)]
        for key in (
            "speedup_vs_snntorch",
            "speedup_vs_spyx",
            "flops_utilization",
            "flops_utilization_vs_best_peak",
        ):
            vals = [v[key] for v in sub if v[key] is not None]
            out[f"{key}_{inp}_min"] = min(vals) if vals else None
    return out


def _peer_versions() -> dict:
    out = {}
    for p in ("torch", "snntorch", "spyx", "flax", "equinox", "optax"):
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def _bar_figure(ctx: Context, rows, stem: str, title: str) -> None:
    impls = []
    for _, t in rows:
        impls += [k for k in t if k not in impls]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(rows), 4))
    w = 0.8 / len(impls)
    for j, k in enumerate(impls):
        xs = [i + (j - (len(impls) - 1) / 2) * w for i in range(len(rows))]
        hs = [1e3 * t.get(k, np.nan) for _, t in rows]
        bars = ax.bar(xs, hs, w, label=k)
        for b, h in zip(bars, hs):
            if np.isfinite(h):
                ax.annotate(
                    f"{h:.0f}" if h >= 10 else f"{h:.2g}",
                    (b.get_x() + b.get_width() / 2, h),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([tag.replace("_", "\n") for tag, _ in rows], fontsize=8)
    ax.set_yscale("log")
    top = max(1e3 * v for _, t in rows for v in t.values() if np.isfinite(v))
    ax.set_ylim(top=3 * top)
    ax.set_ylabel("step time (ms, median)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=len(impls), loc="upper left")
    ctx.save_figure(fig, stem)
