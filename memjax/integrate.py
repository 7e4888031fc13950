"""Fixed-step ODE integration through `jax.lax.scan`, and an adaptive diffrax reference.

The device simulations (:func:`memjax.devices.simulate`) go through :func:`odeint`: a
vector field ``f(t, y) -> dy/dt`` over any pytree state ``y``, integrated with a
fixed-step solver (:class:`Euler`, :class:`Heun`, :class:`RK4`) at ``substeps`` steps per
output sample, with an optional projection (state bounds) after every step. It is a
single `lax.scan`, so it `jit`s, `vmap`s over populations and is reverse-mode
differentiable. The neurons step themselves (:func:`memjax.neurons.simulate`: the MIF
neuron by its own exact exponential splitting, LIF / adaptive LIF as discrete maps);
the MIF equations are also available as a vector field for :func:`odeint`.

**Time base**, shared with :func:`memjax.neurons.simulate`: sample ``k`` is the state at
``t0 + k dt``, the initial state first.

:func:`odeint_reference` solves the same problem with diffrax's adaptive Tsit5 /
Kvaerno5 at tight tolerances: the yardstick the tests and the ``devices`` benchmark
hold the fixed-step path against.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ._validation import check_int, check_time, guard_time, is_int

__all__ = [
    "AbstractSolver",
    "Euler",
    "Heun",
    "RK4",
    "odeint",
    "odeint_reference",
    "check_finite",
    "checkpointed_scan",
    "check_checkpoint",
]

VectorField = Callable[[Any, PyTree], PyTree]


def _axpy(y: PyTree, h: Any, *ks: tuple[float, PyTree]) -> PyTree:
    """y + h * sum(c * k)."""

    def comb(yy, *kk):
        acc = sum(c * k for (c, _), k in zip(ks, kk))
        return yy + h * acc

    return jax.tree.map(comb, y, *[k for _, k in ks])


class AbstractSolver(eqx.Module):
    """A one-step explicit method: ``step(f, t, y, h) -> y(t + h)``."""

    order: ClassVar[int]

    @abc.abstractmethod
    def step(self, f: VectorField, t: Any, y: PyTree, h: Any) -> PyTree:
        raise NotImplementedError


class Euler(AbstractSolver):
    """Forward Euler, order 1: ``y1 = y0 + h f(t0, y0)``."""

    order: ClassVar[int] = 1

    def step(self, f, t, y, h):
        return _axpy(y, h, (1.0, f(t, y)))


class Heun(AbstractSolver):
    """Heun's method (explicit trapezoid), order 2:
    ``k1 = f(t, y)``, ``k2 = f(t + h, y + h k1)``, ``y1 = y + h (k1 + k2) / 2``."""

    order: ClassVar[int] = 2

    def step(self, f, t, y, h):
        k1 = f(t, y)
        k2 = f(t + h, _axpy(y, h, (1.0, k1)))
        return _axpy(y, h, (0.5, k1), (0.5, k2))


class RK4(AbstractSolver):
    """The classical fourth-order Runge--Kutta method."""

    order: ClassVar[int] = 4

    def step(self, f, t, y, h):
        k1 = f(t, y)
        k2 = f(t + 0.5 * h, _axpy(y, h, (0.5, k1)))
        k3 = f(t + 0.5 * h, _axpy(y, h, (0.5, k2)))
        k4 = f(t + h, _axpy(y, h, (1.0, k3)))
        return _axpy(y, h, (1 / 6, k1), (1 / 3, k2), (1 / 3, k3), (1 / 6, k4))


def check_finite(ys: PyTree, ts: Float[Array, " T"]) -> None:
    """Raise `FloatingPointError` naming the first output step and time at which any
    leaf of ``ys`` is NaN or inf.

    The check runs in a host callback, so it also works under `jit`; there JAX wraps
    the exception: the caller sees a `jax.errors.JaxRuntimeError` whose message holds
    the `FloatingPointError` and its text. Called eagerly, the `FloatingPointError`
    itself propagates.

    ``ys`` leaves have time on axis 0. Under `vmap` the check covers every batch member.
    """
    leaves = [jnp.reshape(leaf, (leaf.shape[0], -1)) for leaf in jax.tree.leaves(ys)]
    bad = jnp.zeros(ts.shape[0], dtype=bool)
    for leaf in leaves:
        bad = bad | ~jnp.all(jnp.isfinite(leaf), axis=1)
    first = jnp.argmax(bad)

    def _raise(any_bad, first, t_first):
        any_bad = np.asarray(any_bad)
        if np.any(any_bad):
            idx = np.flatnonzero(np.ravel(any_bad))[0]
            step = int(np.ravel(np.asarray(first))[idx])
            t = float(np.ravel(np.asarray(t_first))[idx])
            raise FloatingPointError(
                f"memjax: non-finite state (NaN or inf) first at output step {step} "
                f"(t = {t:.6g} s). Reduce dt or raise substeps, or use a stable solver."
            )

    jax.debug.callback(_raise, jnp.any(bad), first, ts[first])


def _check_count(name: str, value: Any) -> int:
    """A static count >= 1: a Python or NumPy integer (not a bool, not 2.5)."""
    check_int(f"odeint: {name}", value, 1, type_error=TypeError)
    return int(value)


def odeint(
    f: VectorField,
    y0: PyTree,
    *,
    dt: float,
    n_steps: int,
    t0: float | Array = 0.0,
    solver: AbstractSolver = RK4(),
    substeps: int = 1,
    project: Callable[[PyTree], PyTree] | None = None,
    output: Callable[[Any, PyTree], PyTree] | None = None,
    checkpoint: bool = False,
    debug: bool = False,
) -> tuple[Float[Array, " n_steps"], PyTree]:
    """Integrate ``dy/dt = f(t, y)`` on the uniform grid ``t_k = t0 + k dt``.

    Returns ``(ts, ys)`` with ``ts.shape == (n_steps,)`` and every leaf of ``ys`` stacked
    on a leading axis of length ``n_steps``; ``ys[k]`` is the state at ``ts[k] = t0 + k
    dt``, so ``ys[0]`` is ``y0`` (or ``output(t0, y0)``): the time base of every
    simulation function in memjax (also :func:`memjax.neurons.simulate`).

    The time grid and the step take the floating dtype of ``y0`` (float32 or float64),
    with half precision (float16, bfloat16) promoted to float32: a state in half
    precision is integrated, and returned, in float32. Bad arguments raise at call time:
    ``n_steps`` or ``substeps`` not an integer >= 1 (`TypeError` / `ValueError`), ``dt``
    not finite and > 0 or ``t0`` not finite (`ValueError`).

    **Arguments:**

    - `f`: the vector field, a pure function of ``(t, y)``.
    - `y0`: initial state, any pytree of arrays.
    - `dt`: output sample spacing (s), finite and > 0 (time runs forwards only).
    - `n_steps`: number of output samples (static), an integer >= 1.
    - `solver`: a fixed-step method; each output interval takes ``substeps`` steps of
      size ``dt / substeps``. Raise ``substeps`` for stiff or fast dynamics.
    - `project`: applied after every step, e.g. clipping to physical state bounds, and
      to the state at which every solver stage evaluates ``f``: a Runge--Kutta stage
      ``y + c h k`` that overshoots a bound sees the bound, as the adaptive reference
      does (:func:`odeint_reference`). The vector field is therefore never evaluated
      outside the physical domain, where a model's equations may be singular (a
      resistance through zero, a fractional power of a negative number) and would give
      a NaN gradient under a finite forward value.
    - `output`: maps ``(t, y)`` to what is stored per sample (default: ``y`` itself).
      Saves memory when only a derived quantity (a current, a voltage) is needed.
    - `checkpoint`: rematerialise each output interval in the backward pass
      (`jax.checkpoint`), so reverse-mode memory stores one state per output sample
      instead of every stage of every sub-step.
    - `debug`: raise `FloatingPointError` naming the first non-finite output step. Under
      `jit` the error is raised inside a host callback, so JAX re-raises it wrapped in a
      `jax.errors.JaxRuntimeError` whose message contains the `FloatingPointError`
      text; eagerly (no `jit`) the `FloatingPointError` itself propagates.
    """
    n_steps = _check_count("n_steps", n_steps)
    substeps = _check_count("substeps", substeps)
    check_time("odeint: dt", dt)
    check_time("odeint: t0", t0, positive=False)
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"odeint: solver must be an AbstractSolver; got {type(solver)}")
    if project is None:
        project = lambda y: y
        field = f
    else:
        field = lambda t, y: f(t, project(y))
    output = (lambda t, y: y) if output is None else output
    y0 = jax.tree.map(jnp.asarray, y0)
    leaves = jax.tree.leaves(y0)
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = jnp.result_type(float)
    if jnp.finfo(dtype).bits < 32:
        # Half precision cannot resolve a time grid (bfloat16 holds 3 significant
        # digits: t = 1.0 + 1e-3 rounds to 1.0) nor most device constants.
        dtype = jnp.promote_types(dtype, jnp.float32)
    y0 = jax.tree.map(
        lambda a: (
            a.astype(jnp.promote_types(a.dtype, dtype))
            if jnp.issubdtype(a.dtype, jnp.inexact)
            else a
        ),
        y0,
    )
    h = jnp.asarray(dt / substeps, dtype)
    if isinstance(dt, jax.core.Tracer):
        h = guard_time("odeint: dt", h)
    t0 = jnp.asarray(t0, dtype)

    def interval(y, k):
        def sub(j, yy):
            t = t0 + (k * substeps + j) * h
            return project(solver.step(field, t, yy, h))

        return jax.lax.fori_loop(0, substeps, sub, y)

    if checkpoint:
        interval = jax.checkpoint(interval)

    def body(y, k):
        t = t0 + k * substeps * h
        out = output(t, y)
        y_next = interval(y, k)
        return y_next, out

    ks = jnp.arange(n_steps)
    _, ys = jax.lax.scan(body, project(y0), ks)
    ts = t0 + ks.astype(dtype) * substeps * h
    if debug:
        check_finite(ys, ts)
    return ts, ys


def check_checkpoint(name: str, checkpoint) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``checkpoint`` is a mode of
    :func:`checkpointed_scan`: ``'none'``, ``'step'``, ``'sqrt'`` or an int >= 1."""
    if is_int(checkpoint):
        if checkpoint < 1:
            raise ValueError(f"{name}: segment length must be >= 1; got {checkpoint}")
        return
    if not (isinstance(checkpoint, str) and checkpoint in ("none", "step", "sqrt")):
        raise ValueError(
            f"{name} must be 'none', 'step', 'sqrt' or a segment length (int >= 1); "
            f"got {checkpoint!r}"
        )


def _segment_length(checkpoint, length: int) -> int:
    if checkpoint == "sqrt":
        return math.isqrt(length - 1) + 1 if length > 1 else 1  # ceil(sqrt(length))
    return int(checkpoint)


def checkpointed_scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: PyTree,
    xs: PyTree = None,
    length: int | None = None,
    *,
    checkpoint: str | int = "step",
) -> tuple[PyTree, PyTree]:
    """`jax.lax.scan` with a choice of what reverse mode stores (rematerialisation).

    Same contract as ``jax.lax.scan(f, init, xs, length)``. For ``T`` steps:

    - ``"none"``: plain scan; the backward pass keeps every intermediate of every step
      (memory ``O(T)`` times the size of one step's intermediates; least compute).
    - ``"step"``: each step is `jax.checkpoint`-ed; only the carry of every step is kept
      and the step is recomputed in the backward pass (memory ``O(T)`` carries).
    - ``"sqrt"`` or an int ``K``: two-level (segment) checkpointing (Griewank's
      recursive checkpointing with two levels; Chen et al., "Training deep nets with
      sublinear memory cost", arXiv:1604.06174, 2016). The steps are grouped into
      segments of ``K`` (``K = ceil(sqrt(T))`` for ``"sqrt"``); the forward pass keeps
      the carry at each segment start only, and the backward pass recomputes one
      segment at a time (its steps checkpointed as in ``"step"``). Memory
      ``O(T / K + K)`` carries, ``O(sqrt(T))`` for ``"sqrt"``, for one extra forward
      evaluation. A remainder of ``T mod K`` steps runs as ``"step"``.

    The stacked outputs ``ys`` are returned in full (``O(T)``) in every mode: return
    small per-step outputs, or reduce them in the carry, when memory matters.
    """
    leaves = jax.tree.leaves(xs)
    T = leaves[0].shape[0] if leaves else length
    if T is None:
        raise ValueError("checkpointed_scan: give xs or length")
    check_checkpoint("checkpointed_scan: checkpoint", checkpoint)
    if checkpoint == "none":
        return jax.lax.scan(f, init, xs, length)
    step = jax.checkpoint(f)
    if checkpoint == "step":
        return jax.lax.scan(step, init, xs, length)
    K = _segment_length(checkpoint, T)
    n = T // K
    if n == 0:
        return jax.lax.scan(step, init, xs, length)

    @jax.checkpoint
    def segment(c, xs_seg):
        return jax.lax.scan(step, c, xs_seg, None if xs_seg is not None else K)

    head = jax.tree.map(lambda x: x[: n * K].reshape((n, K) + x.shape[1:]), xs)
    carry, ys = jax.lax.scan(segment, init, head, None if xs is not None else n)
    ys = jax.tree.map(lambda y: y.reshape((n * K,) + y.shape[2:]), ys)
    if T > n * K:
        tail = jax.tree.map(lambda x: x[n * K :], xs)
        carry, ys_tail = jax.lax.scan(step, carry, tail, None if xs is not None else T - n * K)
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), ys, ys_tail)
    return carry, ys


def odeint_reference(
    f: VectorField,
    y0: PyTree,
    ts: Float[Array, " T"],
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    stiff: bool = False,
    max_steps: int = 1_000_000,
    project: Callable[[PyTree], PyTree] | None = None,
    dtmax: float | None = None,
) -> PyTree:
    """Adaptive-step reference solution of ``dy/dt = f(t, y)`` saved at ``ts`` (diffrax).

    Uses Tsit5 (or Kvaerno5 when ``stiff``) with a PID step-size controller. If
    ``project`` is given, the vector field is evaluated at ``project(y)``: the same
    state bounds the fixed-step path enforces. Run it in float64 for reference accuracy.
    """
    import diffrax

    project = (lambda y: y) if project is None else project
    term = diffrax.ODETerm(lambda t, y, args: f(t, project(y)))
    solver = diffrax.Kvaerno5() if stiff else diffrax.Tsit5()
    ts = jnp.asarray(ts)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, dtmax=dtmax),
        max_steps=max_steps,
    )
    return sol.ys
