"""A roofline for elementwise-dominated steps: operation counts and this CPU's throughput.

``op_counts`` walks the jaxpr of a function (into `jit`, `scan` with its trip count,
`custom_jvp`/`custom_vjp` bodies, `remat`, `cond` branches at their largest, `while`
bodies once) and counts, per primitive, the number of output elements it computes:
an elementwise primitive on an ``[n]`` array is ``n`` operations. The primitives fall
into classes with very different costs on a CPU:

- ``transcendental``: ``exp``, ``expm1``, ``log``, ``log1p``, ``logistic``, ``tanh``,
  ``pow``, ``erf``, ``sin``, ``cos``, ... (tens of instructions each, vectorised);
- ``division``: ``div``, ``sqrt``, ``rsqrt`` (a long-latency hardware instruction);
- ``arithmetic``: ``add``, ``mul``, ``max``, ``select_n``, comparisons, ... (one
  instruction each);
- ``matmul``: ``dot_general``, counted in flops (``2 m n k``);
- ``movement``: broadcasts, reshapes, slices, copies, reductions' inputs (data layout;
  costed by the memory roof, not the compute roof).

``throughput`` measures what this CPU sustains for each elementwise primitive that
occurs, in a fused XLA loop over an array of the size the step works on (many
independent applications per element, so that the loop is bound by the operation's
throughput, not by memory or latency), and the flop rate of a matmul of the step's
shape. ``roofline`` combines
the two: ``sum_p count_p * seconds_per_op_p + matmul_flops / matmul_rate``, the time
the step would take if every operation ran at the rate this CPU reaches for it in
isolation. The ratio of the measured step time to this estimate says how much is left
to gain by scheduling (fusion, memory traffic, thread use) without removing work.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CLASSES", "classify", "op_counts", "by_class", "throughput", "roofline"]

TRANSCENDENTAL = {
    "exp",
    "exp2",
    "expm1",
    "log",
    "log1p",
    "logistic",
    "tanh",
    "pow",
    "erf",
    "erf_inv",
    "erfc",
    "sin",
    "cos",
    "tan",
    "atan2",
    "lgamma",
    "digamma",
    "cbrt",
}
DIVISION = {"div", "sqrt", "rsqrt", "rem"}
ARITHMETIC = {
    "add",
    "add_any",
    "sub",
    "mul",
    "neg",
    "max",
    "min",
    "abs",
    "sign",
    "select_n",
    "clamp",
    "integer_pow",
    "square",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "and",
    "or",
    "not",
    "xor",
    "is_finite",
    "floor",
    "ceil",
    "round",
    "nextafter",
    "stop_gradient",
    "convert_element_type",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "argmax",
    "argmin",
    "cumsum",
    "random_bits",
    "threefry2x32",
    "shift_left",
    "shift_right_logical",
    "shift_right_arithmetic",
    "population_count",
}
MATMUL = {"dot_general"}
CLASSES = ("transcendental", "division", "arithmetic", "matmul", "movement")


def classify(prim: str) -> str:
    """The cost class of a primitive name (module docstring)."""
    if prim in TRANSCENDENTAL:
        return "transcendental"
    if prim in DIVISION:
        return "division"
    if prim in ARITHMETIC:
        return "arithmetic"
    if prim in MATMUL:
        return "matmul"
    return "movement"


def _size(aval) -> int:
    return int(math.prod(getattr(aval, "shape", ()) or (1,)))


def _dot_flops(eqn) -> int:
    lhs, rhs = (v.aval for v in eqn.invars[:2])
    (lc, _), (lb, _) = eqn.params["dimension_numbers"]
    k = math.prod(lhs.shape[d] for d in lc) if lc else 1
    return 2 * _size(eqn.outvars[0].aval) * int(k)


def _sub_jaxprs(eqn):
    """(jaxpr, multiplicity) pairs nested in ``eqn``."""
    p, name = eqn.params, eqn.primitive.name
    if name == "scan":
        return [(p["jaxpr"].jaxpr, int(p["length"]))]
    if name == "while":
        return [(p["body_jaxpr"].jaxpr, 1), (p["cond_jaxpr"].jaxpr, 1)]
    if name == "cond":
        return [("max", [b.jaxpr for b in p["branches"]])]
    out = []
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        j = p.get(key)
        if j is not None:
            out.append((getattr(j, "jaxpr", j), 1))
    return out


def _count(jaxpr, mult: int, acc: Counter) -> None:
    for eqn in jaxpr.eqns:
        subs = _sub_jaxprs(eqn)
        if subs:
            for j, m in subs:
                if j == "max":
                    best: Counter = Counter()
                    for b in m:
                        c: Counter = Counter()
                        _count(b, 1, c)
                        if sum(c.values()) > sum(best.values()):
                            best = c
                    for k, v in best.items():
                        acc[k] += mult * v
                else:
                    _count(j, mult * m, acc)
            continue
        name = eqn.primitive.name
        if name in MATMUL:
            acc[name] += mult * _dot_flops(eqn)
        else:
            acc[name] += mult * sum(_size(v.aval) for v in eqn.outvars)


def op_counts(fn: Callable, *args) -> dict[str, int]:
    """Operations per primitive of ``fn(*args)`` (elements computed; matmul in flops)."""
    closed = jax.make_jaxpr(fn)(*args)
    acc: Counter = Counter()
    _count(closed.jaxpr, 1, acc)
    return dict(sorted(acc.items(), key=lambda kv: -kv[1]))


def by_class(counts: dict[str, int]) -> dict[str, int]:
    """``op_counts`` summed over the cost classes of :data:`CLASSES`."""
    out = dict.fromkeys(CLASSES, 0)
    for prim, n in counts.items():
        out[classify(prim)] += n
    return out


def _unary(prim: str):
    """A jnp function computing ``prim`` on values in ``[0, 2)`` (kept in range)."""
    table = {
        "exp": lambda x: jnp.exp(-x),
        "exp2": lambda x: jnp.exp2(-x),
        "expm1": lambda x: jnp.expm1(-x),
        "log": lambda x: jnp.log(1.5 + x),
        "log1p": lambda x: jnp.log1p(x),
        "logistic": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "pow": lambda x: jnp.power(1.5 + x, 0.7),
        "erf": jax.scipy.special.erf,
        "sin": jnp.sin,
        "cos": jnp.cos,
        "div": lambda x: 1.0 / (1.5 + x),
        "sqrt": lambda x: jnp.sqrt(1.5 + x),
        "rsqrt": lambda x: jax.lax.rsqrt(1.5 + x),
    }
    return table.get(prim)


def _time(f, x, repeats: int) -> float:
    """The fastest of ``repeats`` calls: a throughput is what the CPU sustains when the
    other tenants of a shared machine let it run (the median mixes in their load)."""
    jax.block_until_ready(f(x))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x))
        ts.append(time.perf_counter() - t0)
    return float(np.min(ts))


def _sum_of(f1, reps: int):
    """``x -> sum_k f1(x + k / reps)``: ``reps`` independent applications per element,
    fused by XLA into one loop (throughput-bound, one load and one store per element)."""

    def f(x):
        acc = f1(x)
        for k in range(1, reps):
            acc = acc + f1(x + k / reps)
        return acc

    return jax.jit(f)


def throughput(
    prims,
    n: int,
    matmul_shape: tuple[int, int, int] | None = None,
    *,
    reps: int = 32,
    repeats: int = 9,
    dtype=jnp.float32,
) -> dict[str, float]:
    """Seconds per operation on this CPU for each elementwise primitive in ``prims``
    that has a microbenchmark, for ``"arithmetic"`` (one add or multiply), and, with
    ``matmul_shape = (m, k, n)``, ``"matmul_flop"`` for an ``(m, k) @ (k, n)`` matmul.

    An elementwise kernel computes ``sum_k op(x + k / reps)`` over an ``[n]`` array
    (``reps`` independent operations per element in one fused loop); the same sum
    without the operation is subtracted, which leaves the operation's own cost. The
    arithmetic rate is the sum's cost per added term over its three operations.
    """
    x = jnp.linspace(0.0, 1.0, n, dtype=dtype)
    ident = _time(_sum_of(lambda x: -x, reps), x, repeats)
    one = _time(_sum_of(lambda x: -x, 1), x, repeats)
    out: dict[str, float] = {"arithmetic": max(ident - one, 1e-12) / (3 * (reps - 1) * n)}
    for prim in prims:
        f1 = _unary(prim)
        if f1 is None or prim in out:
            continue
        t = _time(_sum_of(f1, reps), x, repeats)
        out[prim] = max(t - ident, 1e-12) / (reps * n)
    if matmul_shape is not None:
        m, k, nn = matmul_shape
        a = jnp.full((m, k), 1e-3, dtype)
        b = jnp.full((k, nn), 1e-3, dtype)
        t = _time(jax.jit(lambda a: a @ b), a, repeats)
        out["matmul_flop"] = t / (2.0 * m * k * nn)
    return out


def roofline(counts: dict[str, int], seconds_per_op: dict[str, float]) -> dict[str, float]:
    """Estimated seconds of the compute part of a step: each counted operation at its
    measured rate (a primitive without its own microbenchmark takes its class's:
    transcendentals at ``exp``'s rate, divisions at ``div``'s, arithmetic at one fused
    add or multiply; movement is not charged). Returns the total and each class's part."""
    parts = dict.fromkeys(CLASSES, 0.0)
    for prim, n in counts.items():
        cls = classify(prim)
        if cls == "movement":
            continue
        if cls == "matmul":
            rate = seconds_per_op.get("matmul_flop", 0.0)
        elif prim in seconds_per_op:
            rate = seconds_per_op[prim]
        else:
            fallback = {"transcendental": "exp", "division": "div"}.get(cls, "arithmetic")
            rate = seconds_per_op.get(fallback, seconds_per_op["arithmetic"])
        parts[cls] += n * rate
    parts["total"] = float(sum(parts[c] for c in CLASSES))
    return parts
