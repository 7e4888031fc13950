"""Accurate MIF transients outside training: classical RK4 at a stable step.

`mif_step` (the training integrator) is unconditionally stable and second order; its
error at a given step is set by the switching dynamics. For simulation outside training,
where a circuit-level accuracy is wanted at float32 (checking a trained network against
SPICE, long transients of device populations), fourth-order Runge--Kutta on the same
equations (:func:`memjax.neurons.mif_vector_field`) reaches ngspice's accuracy at the
output step itself (`speed-devices`). RK4 is explicit: its real-axis stability limit is
``|h lambda| <= 2.785``, and the stiffest MIF mode is the membrane with both memristors
ON, ``lambda_max = (1/R_on1 + 1/R_on2) / C``. :func:`mif_transient` therefore takes
``ceil(dt lambda_max / SAFETY)`` RK4 sub-steps per output step (the largest over a
population) unless ``substeps`` is given, so it stays bounded whatever the input.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, Float

from .._validation import concrete
from ..integrate import RK4
from ._base import check_dt, check_substeps
from .mif import MIF, MIFState, mif_vector_field

__all__ = ["mif_transient", "rk4_substeps", "SAFETY", "RK4_LIMIT"]

#: ``h lambda_max`` per RK4 sub-step, below RK4's real-axis stability limit.
SAFETY = 2.5
#: RK4's real-axis stability limit, ``|h lambda| <= 2.785``.
RK4_LIMIT = 2.785


def _lambda_max(params: MIF) -> jax.Array:
    """The stiffest rate (1/s) of ``params``: ``max (1/R_on1 + 1/R_on2) / C``."""
    return jnp.max((1.0 / params.m1.R_on + 1.0 / params.m2.R_on) / params.C)


def rk4_substeps(params: MIF, dt: float | jax.Array) -> jax.Array:
    """RK4 sub-steps per step ``dt`` (s) that keep ``h (1/R_on1 + 1/R_on2) / C <=
    SAFETY`` for every neuron of ``params`` (an int32 scalar, at least 1)."""
    return jnp.maximum(1, jnp.ceil(dt * _lambda_max(params) / SAFETY)).astype(jnp.int32)


def _check_stable(params: MIF, dt: float, substeps: int) -> None:
    """Raise ``ValueError`` when a given ``substeps`` puts RK4 past its stability limit
    (concrete parameters and step; traced ones are not checked)."""
    lam, h = concrete(_lambda_max(params)), concrete(dt)
    if lam is None or h is None:
        return
    hl = float(h) / substeps * float(lam)
    if hl > RK4_LIMIT:
        raise ValueError(
            f"mif_transient: substeps={substeps} gives h lambda_max = {hl:.3g} > "
            f"{RK4_LIMIT} (RK4's stability limit; lambda_max = (1/R_on1 + 1/R_on2) / C "
            f"= {float(lam):.3g} /s): use substeps >= {int(rk4_substeps(params, dt))} or "
            "substeps=None"
        )


def _project(s: MIFState) -> MIFState:
    return dataclasses.replace(s, x1=jnp.clip(s.x1, 0.0, 1.0), x2=jnp.clip(s.x2, 0.0, 1.0))


def mif_transient(
    params: MIF,
    i_in: Float[ArrayLike, "T *shape"],  # noqa: F821 (jaxtyping shape)
    dt: float,
    *,
    state: MIFState | None = None,
    substeps: int | None = None,
) -> tuple[MIFState, MIFState]:
    """MIF neurons driven by ``i_in`` (A, time on axis 0, each sample held over its
    step), integrated by classical RK4 on :func:`mif_vector_field`.

    Same time base and return value as :func:`memjax.neurons.mif_simulate`: ``(final,
    states)``, ``states[k]`` the state at ``k dt`` (``states[0]`` the initial state, at
    rest by default), ``final`` the state at ``T dt``. The memristor states are clipped
    to ``[0, 1]`` after every sub-step. The integration runs in the input's float
    dtype, half precision (float16, bfloat16), integer and bool inputs in float32.

    ``substeps`` None (default): :func:`rk4_substeps` chooses them from the parameters
    at run time, so the result is bounded for any input; the sub-step loop then has a
    run-time length, which reverse-mode differentiation does not support (train with
    `mif_step`; use this function to simulate). An integer ``substeps >= 1`` fixes
    them (differentiable); a ``dt / substeps`` above RK4's stability limit ``2.785 /
    lambda_max`` raises ``ValueError`` for concrete parameters.
    """
    check_dt("mif_transient", dt)
    if substeps is not None:
        check_substeps("mif_transient", substeps)
        _check_stable(params, dt, substeps)
    i_in = jnp.asarray(i_in)
    if i_in.ndim < 1:
        raise ValueError(f"mif_transient: i_in must have time on axis 0; got shape {i_in.shape}")
    dtype = jnp.promote_types(i_in.dtype, jnp.float32)
    i_in = i_in.astype(dtype)
    if state is None:
        state = params.init_state(i_in.shape[1:], dtype)
    n = rk4_substeps(params, dt) if substeps is None else substeps
    h = jnp.asarray(dt, dtype) / jnp.asarray(n, dtype)
    solver = RK4()

    def body(s, u):
        f = mif_vector_field(params, lambda t: u)
        fp = lambda t, y: f(t, _project(y))
        nxt = jax.lax.fori_loop(0, n, lambda j, y: _project(solver.step(fp, 0.0, y, h)), s)
        return nxt, s

    return jax.lax.scan(body, _project(state), i_in)
