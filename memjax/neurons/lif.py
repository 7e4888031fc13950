"""Leaky integrate-and-fire neuron with a surrogate gradient (the MEMprop baseline).

The discrete LIF of snnTorch's ``Leaky`` / Norse's ``lif_step`` (Eshraghian et al.,
"Training spiking neural networks using lessons from deep learning", Proc. IEEE 2023;
Neftci, Mostafa, Zenke, "Surrogate gradient learning in SNNs", IEEE SPM 2019):

    v[t]   = beta v[t-1] + I[t]
    s[t]   = H(v[t] - theta)                       spike (Heaviside)
    v[t]  <- v[t] - theta s[t]                     reset by subtraction

The Heaviside has zero derivative almost everywhere; its derivative is replaced in the
backward pass by a surrogate (a `jax.custom_jvp`, so forward values stay exact 0/1):

- ``"fast_sigmoid"`` (Zenke & Ganguli, SuperSpike 2018): ``dS/du = 1 / (1 + k |u|)^2``
- ``"arctan"`` (Fang et al. 2021): ``dS/du = (k / 2) / (1 + (pi k u / 2)^2)``

with ``u = v - theta`` and slope ``k``. The reset term uses the spike with its gradient
stopped (snnTorch's default ``reset_delay``/detach behaviour), so gradients flow through
the membrane only. Units are arbitrary (the baseline is not a device model).

**What goes through what.** :class:`LIF` implements the neuron interface
(:class:`memjax.neurons.AbstractNeuron`) as a discrete-time map: :meth:`LIF.step` is
:func:`lif_step` (one step of the map; ``beta`` is per step of ``LIF.dt``, so a passed
``dt`` must equal ``LIF.dt``); :func:`memjax.neurons.simulate` runs it over a sequence.
There is no vector field and nothing goes through `memjax.integrate.odeint`. The network
reads the spikes (:meth:`LIF.output`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validation import check_positive, check_range
from ._base import AbstractNeuron

__all__ = ["LIF", "LIFState", "lif_step", "spike_fn", "surrogate_grad"]

Surrogate = Literal["fast_sigmoid", "arctan"]


def surrogate_grad(u, kind: Surrogate = "fast_sigmoid", slope: float = 25.0):
    """The surrogate derivative ``dS/du`` evaluated at ``u = v - theta``."""
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + slope * jnp.abs(u)) ** 2
    if kind == "arctan":
        return (slope / 2.0) / (1.0 + (jnp.pi * slope * u / 2.0) ** 2)
    raise ValueError(f"LIF.surrogate must be 'fast_sigmoid' or 'arctan'; got {kind!r}")


def spike_fn(u, kind: Surrogate = "fast_sigmoid", slope: float = 25.0):
    """Heaviside ``H(u)`` (1 where ``u > 0``, else 0) whose derivative in JVPs and VJPs
    is the surrogate :func:`surrogate_grad`."""

    @jax.custom_jvp
    def heaviside(u):
        return (u > 0).astype(u.dtype)

    @heaviside.defjvp
    def _jvp(primals, tangents):
        (u,), (du,) = primals, tangents
        return heaviside(u), surrogate_grad(u, kind, slope) * du

    return heaviside(jnp.asarray(u, dtype=jnp.result_type(u, float)))


class LIFState(eqx.Module):
    """Membrane ``v`` and last spikes ``s`` (arrays of one shape, e.g. ``[batch, n]``)."""

    v: Float[Array, "..."]
    s: Float[Array, "..."]


class LIF(AbstractNeuron):
    """Parameters of a layer of LIF neurons.

    **Fields:** `beta` (membrane decay per step, in [0, 1]), `theta` (threshold, > 0),
    `surrogate` (``"fast_sigmoid"`` or ``"arctan"``), `slope` (surrogate steepness k),
    `dt` (static: the duration of the step ``beta`` is given for, > 0; default 1, a
    unitless step).
    """

    continuous: ClassVar[bool] = False

    beta: Float[ArrayLike, "..."] = 0.9
    theta: Float[ArrayLike, "..."] = 1.0
    surrogate: Surrogate = eqx.field(static=True, default="fast_sigmoid")
    slope: float = eqx.field(static=True, default=25.0)
    dt: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        check_range("LIF", "beta", self.beta, 0.0, 1.0)
        check_positive("LIF", "theta", self.theta)
        check_positive("LIF", "slope", self.slope)
        check_positive("LIF", "dt", self.dt)
        if self.surrogate not in ("fast_sigmoid", "arctan"):
            raise ValueError(
                f"LIF.surrogate must be 'fast_sigmoid' or 'arctan'; got {self.surrogate!r}"
            )

    def init_state(self, shape=(), dtype=None) -> LIFState:
        """``v = 0``, no spikes."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        z = jnp.zeros(shape, dtype)
        return LIFState(v=z, s=z)

    def step(self, state: LIFState, i_in, dt: float | None = None, *, key=None) -> LIFState:
        """One step of :func:`lif_step`. ``dt``: None or ``LIF.dt`` (else
        ``ValueError``); ``key`` unused."""
        self.resolve_dt(dt)
        return lif_step(self, state, i_in)

    def output(self, state: LIFState) -> Float[Array, "..."]:
        """The spikes ``s`` (0/1, surrogate gradient)."""
        return state.s


def lif_step(params: LIF, state: LIFState, i_in: Float[ArrayLike, "..."]) -> LIFState:
    """``v = beta v + I``; ``s = H(v - theta)`` (surrogate gradient); ``v -= theta s``."""
    v = params.beta * state.v + i_in
    s = spike_fn(v - params.theta, params.surrogate, params.slope)
    v = v - params.theta * jax.lax.stop_gradient(s)
    return LIFState(v=v, s=s)
