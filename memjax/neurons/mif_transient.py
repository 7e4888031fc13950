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

from ..integrate import RK4
from ._base import check_dt, check_substeps
from .mif import MIF, MIFState, mif_vector_field

__all__ = ["mif_transient", "rk4_substeps", "SAFETY"]

#: ``h lambda_max`` per RK4 sub-step, below RK4's real-axis stability limit 2.785.
SAFETY = 2.5


def rk4_substeps(params: MIF, dt: float | jax.Array) -> jax.Array:
    """RK4 sub-steps per step ``dt`` (s) that keep ``h (1/R_on1 + 1/R_on2) / C <=
    SAFETY`` for every neuron of ``params`` (an int32 scalar, at least 1)."""
    lam = (1.0 / params.m1.R_on + 1.0 / params.m2.R_on) / params.C
    return jnp.maximum(1, jnp.ceil(dt * jnp.max(lam) / SAFETY)).astype(jnp.int32)


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
    them (differentiable; RK4 is unstable, and its states leave every bound, when
    ``dt / substeps`` exceeds ``2.785 / lambda_max``).
    """
    check_dt("mif_transient", dt)
    if substeps is not None:
        check_substeps("mif_transient", substeps)
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
