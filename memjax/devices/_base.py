"""The interface every memristor compact model implements, and its simulation.

A compact model is a one-port with an internal state ``x`` (one scalar per device):

    dx/dt = rate(x, v)          (state equation)
    i     = current(x, v)       (port equation)

with ``v`` the voltage across the device (V), ``i`` the current through it (A) and ``x``
kept inside ``state_bounds``. Models are `eqx.Module`s whose fields are the parameters,
so a model with array-valued fields is a population of devices and `vmap` simulates it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validation import check_fields, check_real, concrete
from ..integrate import RK4, AbstractSolver, odeint, odeint_reference

__all__ = ["AbstractMemristor", "Trajectory", "clamp", "simulate", "simulate_reference"]


def clamp(x: Float[ArrayLike, "..."], lo, hi) -> Float[Array, "..."]:
    """``x`` clipped to ``[lo, hi]``, with zero derivative on and beyond a bound.

    A state on its bound is held there: the derivative of the result with respect to
    ``x`` is 1 strictly inside and 0 at ``x == lo`` or ``x == hi`` (``jnp.clip`` passes
    1/2 at a tie). In a saturated simulation every step lands exactly on the bound; with
    1/2 the backward pass would multiply the step Jacobians ``1 + h df/dx`` of a stiff
    model (of modulus >> 1) over the whole saturated stretch and overflow to inf, and
    then NaN, while the forward value stays finite.
    """
    x = jnp.asarray(x)
    return jnp.where(x >= hi, hi, jnp.where(x <= lo, lo, x)).astype(x.dtype)


class AbstractMemristor(eqx.Module):
    """Base class of the compact models.

    Subclasses implement :meth:`rate`, :meth:`current` and :meth:`state_bounds`, carry
    their default initial state as the field ``x0`` and validate their parameters in
    ``__check_init__``.
    """

    #: Volatile devices (threshold switches) relax back when the drive is removed; their
    #: I-V loop is not required to be a pinched, frequency-shrinking hysteresis.
    volatile: ClassVar[bool] = False
    #: Name of the state variable and its unit, for plots and docs.
    state_name: ClassVar[str] = "x"
    state_unit: ClassVar[str] = "1"

    x0: eqx.AbstractVar[Float[ArrayLike, "..."]]

    def __post_init__(self):
        # Before any subclass's __check_init__: every parameter a real number (TypeError
        # naming the field) and all parameter shapes broadcastable (naming both).
        check_fields(type(self).__name__, self)

    @abc.abstractmethod
    def rate(self, x: Float[ArrayLike, "..."], v: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """State derivative dx/dt (state units per second) at state ``x``, voltage ``v``."""

    @abc.abstractmethod
    def current(
        self, x: Float[ArrayLike, "..."], v: Float[ArrayLike, "..."]
    ) -> Float[Array, "..."]:
        """Device current (A) at state ``x`` and voltage ``v`` (V)."""

    @abc.abstractmethod
    def state_bounds(self) -> tuple[Float[ArrayLike, "..."], Float[ArrayLike, "..."]]:
        """Physical bounds ``(lo, hi)`` of the state (either may be +-inf)."""

    def project(self, x):
        """Clip the state to its physical bounds (see :func:`clamp` for its gradient)."""
        lo, hi = self.state_bounds()
        return clamp(x, lo, hi)

    def conductance(self, x, v=0.0):
        """Chord conductance ``i / v`` (S); the small-signal ``di/dv`` where ``v = 0``."""
        v = jnp.asarray(v, dtype=jnp.result_type(v, float))
        small = jnp.abs(v) < 1e-12
        v_safe = jnp.where(small, 1.0, v)
        chord = self.current(x, v_safe) / v_safe
        diff = jax.grad(lambda vv: jnp.sum(self.current(x, vv)))(jnp.zeros_like(v))
        return jnp.where(small, diff, chord)

    def resistance(self, x, v=0.0):
        """``1 / conductance`` (Ohm)."""
        return 1.0 / self.conductance(x, v)


class Trajectory(eqx.Module):
    """Result of :func:`simulate`: samples at times ``t`` of the drive ``v``, the state
    ``x`` and the current ``i``. A population adds leading batch axes to ``x``, ``i``."""

    t: Float[Array, " T"]
    v: Float[Array, "*batch T"]
    x: Float[Array, "*batch T"]
    i: Float[Array, "*batch T"]


def _initial(device: AbstractMemristor, x0):
    if x0 is not None:
        _check_x0(device, x0)
    x0 = device.x0 if x0 is None else x0
    return jnp.asarray(x0, dtype=jnp.result_type(x0, float))


def _check_x0(device: AbstractMemristor, x0) -> None:
    """An explicit initial state is real, finite and inside the device's bounds (a state
    outside would be clipped silently by the first projection)."""
    name = type(device).__name__
    check_real(name, "x0 (simulate)", x0)
    arr = concrete(x0)
    bounds = [concrete(b) for b in device.state_bounds()]
    if arr is None or any(b is None for b in bounds):
        return
    lo, hi = (np.asarray(b, dtype=float) for b in bounds)
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    tol = 1e-6 * span
    arr = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < lo - tol) or np.any(arr > hi + tol):
        raise ValueError(
            f"simulate: x0 must be finite and inside {name}'s state bounds "
            f"[{np.min(lo):g}, {np.max(hi):g}] {device.state_unit}; got "
            f"{np.min(arr):g} .. {np.max(arr):g}"
        )


def simulate(
    device: AbstractMemristor,
    drive: Callable[[Array], Array],
    *,
    dt: float,
    n_steps: int,
    x0: Float[ArrayLike, "..."] | None = None,
    solver: AbstractSolver = RK4(),
    substeps: int = 1,
    t0: float = 0.0,
    checkpoint: bool = False,
    debug: bool = False,
) -> Trajectory:
    """Simulate one device (or a population: array-valued parameters) under a voltage
    drive ``v = drive(t)``, sampled every ``dt`` seconds for ``n_steps`` samples.

    Integrates ``dx/dt = device.rate(x, drive(t))`` with a fixed-step ``solver`` at
    ``substeps`` steps per sample, clipping ``x`` to the device's bounds after each step
    (see :func:`memjax.integrate.odeint`). ``debug=True`` raises on the first NaN/inf.
    """

    def f(t, x):
        return device.rate(x, drive(t))

    def out(t, x):
        v = drive(t)
        return x, v, device.current(x, v)

    ts, (xs, vs, is_) = odeint(
        f,
        _initial(device, x0),
        dt=dt,
        n_steps=n_steps,
        t0=t0,
        solver=solver,
        substeps=substeps,
        project=device.project,
        output=out,
        checkpoint=checkpoint,
        debug=debug,
    )
    # Time is the scan axis (leading); put it last so a population reads x[device, t].
    move = lambda a: jnp.moveaxis(a, 0, -1)
    return Trajectory(t=ts, v=move(vs), x=move(xs), i=move(is_))


def simulate_reference(
    device: AbstractMemristor,
    drive: Callable[[Array], Array],
    ts: Float[ArrayLike, " T"],
    *,
    x0: Float[ArrayLike, "..."] | None = None,
    rtol: float = 1e-9,
    atol: float | None = None,
    stiff: bool = False,
    max_steps: int = 1_000_000,
    dtmax: float | None = None,
) -> Trajectory:
    """Adaptive-step (diffrax) solution of the same problem as :func:`simulate`, saved at
    ``ts``: the reference the fixed-step path is tested against. Use float64.

    ``dtmax`` (s) caps the adaptive step; set it (e.g. to the sample spacing) for models
    with threshold windows where the rate is exactly zero between switching events.
    ``atol`` defaults to ``rtol`` times the state's scale (the width of its bounds where
    finite, else max(|x0|, 1)), so states in metres or kelvin get a meaningful tolerance."""
    ts = jnp.asarray(ts)
    if atol is None:
        lo, hi = device.state_bounds()
        width = np.asarray(hi, dtype=float) - np.asarray(lo, dtype=float)
        x_init = np.abs(np.asarray(_initial(device, x0), dtype=float))
        scale = np.where(np.isfinite(width), width, np.maximum(x_init, 1.0))
        atol = float(rtol * np.min(scale))
    lo, hi = device.state_bounds()

    def field(t, x):
        # The scan path clips x after each step; the adaptive path cannot, so it stops
        # the state at a bound instead: zero rate where the rate pushes outward.
        dx = device.rate(device.project(x), drive(t))
        return jnp.where(((x <= lo) & (dx < 0)) | ((x >= hi) & (dx > 0)), 0.0, dx)

    xs = odeint_reference(
        field,
        _initial(device, x0),
        ts,
        rtol=rtol,
        atol=atol,
        stiff=stiff,
        max_steps=max_steps,
        dtmax=dtmax,
    )
    xs = device.project(xs)
    vs = jax.vmap(drive)(ts)
    is_ = device.current(xs, vs)
    return Trajectory(t=ts, v=vs, x=xs, i=is_)
