"""The interface every neuron implements, and the one simulation loop over it.

A neuron is an `eqx.Module` whose fields are its parameters (scalars, or arrays for a
population) and whose state is a pytree of arrays of one shape (e.g. ``[batch, n]``):

    state_{k+1} = step(state_k, i_k, dt)        input i_k held over [t_k, t_k + dt)
    y_k         = output(state_k)               what a network reads (spikes or voltage)

**Time step.** ``step(state, i_in, dt)`` has one signature for every neuron:

- continuous-time neurons (``continuous = True``, e.g. `MIF`) integrate their equations
  over ``dt`` seconds; ``dt`` is required, finite and > 0. They also give their
  equations as :meth:`AbstractNeuron.vector_field` (for `memjax.integrate.odeint` and
  the diffrax reference).
- discrete-time neurons (``continuous = False``, e.g. `LIF`, `ALIF`) are maps whose
  parameters (leak, decay) are *per step*. They carry the duration of that step as the
  static field ``dt`` (default 1: unitless steps). ``dt=None`` means one step of the
  map; any other ``dt`` must equal the neuron's own ``dt``, else `step` raises a
  ``ValueError`` (re-parametrise the neuron instead: a discrete map cannot be stretched).

``key`` (keyword) is the randomness of stochastic neurons (`ALIF`'s adaptation-cell write
noise); deterministic neurons accept and do not use it.

**Time base** (the same as :func:`memjax.integrate.odeint`'s). :func:`simulate` over
inputs ``i[0 .. T-1]`` returns ``(final, states)``: ``states[k]`` is the state at ``t_k =
t0 + k dt`` (``states[0]`` is the initial state; input ``i[k]`` is then held over
``[t_k, t_{k+1})``), and ``final`` is the state at ``t_T`` after the last input. The
spikes emitted by the step of input ``k`` are therefore in ``states[k + 1].s`` (and
``final.s`` for the last input).
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from .._validation import check_int, check_time

__all__ = ["AbstractNeuron", "simulate", "check_dt", "check_substeps"]


def check_dt(owner: str, dt: Any) -> None:
    """`check_time` of ``owner``'s ``dt`` (s): a finite real scalar > 0. A traced
    ``dt`` is checked by the caller (`guard_time`)."""
    check_time(f"{owner}: dt", dt)


def check_substeps(owner: str, substeps: Any) -> None:
    """Raise ``ValueError`` naming ``owner`` unless ``substeps`` is an integer >= 1."""
    check_int(f"{owner}: substeps", substeps, 1)


class AbstractNeuron(eqx.Module):
    """Base class of the neurons (`LIF`, `ALIF`, `MIF`); see the module docstring.

    Subclasses set the class variable ``continuous`` and implement :meth:`init_state`,
    :meth:`step` and :meth:`output`; continuous-time ones also :meth:`vector_field`.
    """

    #: True: `step` integrates equations over ``dt`` seconds; False: a per-step map.
    continuous: ClassVar[bool]

    @abc.abstractmethod
    def init_state(self, shape: tuple[int, ...] = (), dtype=None) -> PyTree[Array]:
        """Resting state, every leaf of shape ``shape`` (floating ``dtype``, default the
        default float)."""

    @abc.abstractmethod
    def step(
        self,
        state: PyTree[Array],
        i_in: Float[ArrayLike, "..."],
        dt: float | None = None,
        *,
        key: PRNGKeyArray | None = None,
    ) -> PyTree[Array]:
        """The state after input ``i_in`` held over one step of ``dt``."""

    @abc.abstractmethod
    def output(self, state: PyTree[Array]) -> Float[Array, "..."]:
        """What a network reads from the neuron: its spikes or its membrane voltage."""

    def vector_field(self, i_in):
        """The continuous equations ``f(t, state) -> dstate/dt`` for an input ``i_in(t)``.
        Discrete-time neurons have none and raise ``NotImplementedError``."""
        raise NotImplementedError(
            f"{type(self).__name__} is a discrete-time map: it has no vector field"
        )

    def resolve_dt(self, dt: float | None) -> float:
        """The step duration to use: for a continuous-time neuron the given ``dt``
        (checked, required); for a discrete-time one its own ``dt``, which a given
        ``dt`` must equal."""
        name = type(self).__name__
        if self.continuous:
            if dt is None:
                raise ValueError(f"{name}.step: dt (s) is required for a continuous-time neuron")
            check_dt(f"{name}.step", dt)
            return dt
        own = self.dt  # type: ignore[attr-defined]
        if dt is None:
            return own
        check_dt(f"{name}.step", dt)
        if not isinstance(dt, jax.core.Tracer) and not math.isclose(
            float(dt), float(own), rel_tol=1e-9
        ):
            raise ValueError(
                f"{name}.step: {name} is a discrete-time map parametrised per step of "
                f"{name}.dt = {own!r}; got dt = {dt!r} (build it with dt={dt!r} and "
                f"per-step parameters for that step)"
            )
        return own


def simulate(
    neuron: AbstractNeuron,
    state0: PyTree[Array] | None,
    inputs: Float[ArrayLike, "T *shape"],  # noqa: F821 (jaxtyping shape)
    dt: float | None = None,
    *,
    key: PRNGKeyArray | None = None,
    substeps: int = 1,
) -> tuple[PyTree[Array], PyTree[Array]]:
    """Run ``neuron.step`` over ``inputs`` (time on axis 0) in one `lax.scan`.

    Returns ``(final, states)``: every leaf of ``states`` has shape ``[T, *shape]`` and
    ``states[k]`` is the state at ``t0 + k dt`` (``states[0] = state0``), ``final`` the
    state at ``t0 + T dt`` (module docstring: the time base of
    :func:`memjax.integrate.odeint`).

    **Arguments:**

    - `state0`: initial state, or None for ``neuron.init_state(inputs.shape[1:], dtype)``
      (``dtype``: that of ``inputs``, float16 promoted to float32, integers to the
      default float).
    - `dt`: the step (s): required for a continuous-time neuron; for a discrete-time one
      None or its own ``dt``.
    - `key`: split into one key per step for stochastic neurons.
    - `substeps`: each step as that many equal sub-steps with the same held input
      (continuous-time neurons only; an integer >= 1).
    """
    name = f"simulate({type(neuron).__name__})"
    if not isinstance(neuron, AbstractNeuron):
        raise TypeError(f"simulate: neuron must be an AbstractNeuron; got {type(neuron).__name__}")
    check_substeps(name, substeps)
    if substeps != 1 and not neuron.continuous:
        raise ValueError(f"{name}: substeps must be 1 for a discrete-time neuron; got {substeps}")
    dt = neuron.resolve_dt(dt)
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1:
        raise ValueError(f"{name}: inputs must have time on axis 0; got shape {inputs.shape}")
    inputs = inputs.astype(_state_dtype(inputs.dtype))
    if state0 is None:
        state0 = neuron.init_state(inputs.shape[1:], inputs.dtype)
    h = dt / substeps
    T = inputs.shape[0]
    keys = None if key is None else jax.random.split(key, T)

    def body(s, xs):
        u, k = xs
        if substeps == 1:
            new = neuron.step(s, u, h, key=k)
        else:
            new = jax.lax.fori_loop(0, substeps, lambda _, ss: neuron.step(ss, u, h, key=k), s)
        return new, s

    return jax.lax.scan(body, state0, (inputs, keys))


def _state_dtype(dtype) -> Any:
    """Floating dtype of a simulation driven by inputs of ``dtype``: the input's own
    float, except float16, promoted to float32 (its exponent range underflows for
    SI-unit device constants such as ``C = 1e-9``; bfloat16 has float32's range and is
    kept); the default float for integer and bool inputs."""
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float16:
        return jnp.dtype(jnp.float32)
    if jnp.issubdtype(dtype, jnp.floating):
        return dtype
    return jnp.dtype(jnp.result_type(float))
