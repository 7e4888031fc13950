"""Adaptive leaky integrate-and-fire neuron: spike-frequency adaptation (SFA) stored in a
multi-level RRAM cell (Muñoz-Martín et al., "A SiOx RRAM-based hardware with spike
frequency adaptation for power-saving continual learning in convolutional neural
networks", VLSI Technology 2020).

Discrete time, one step per call (arbitrary units for ``v`` and the input ``I``):

    v[t]   = leak v[t-1] + I[t]                                 integrate
    th[t]  = theta0 + beta g[t-1]                               adaptive threshold
    s[t]   = H(v[t] - th[t])                                    spike (no surrogate)
    v[t]  <- 0               (reset="zero")     where s[t] = 1
             v[t] - th[t]    (reset="subtract")
    g[t]   = clip(rho g[t-1] + dg s[t] (+ write_sigma z s[t]), 0, 1)   adaptation cell

``g = (G_a - G_min) / (G_max - G_min)`` is the normalised conductance of the adaptation
cell, a :class:`~memjax.devices.rram.MultiLevelRRAM`. Each spike is one SET pulse that
moves the cell up by one level, ``dg = 1 / (n_levels - 1)``; the cell saturates at its
top level (``g = 1``, threshold ``theta0 + beta``). With a PRNG key the pulse lands with
the device's per-pulse write noise ``write_sigma`` (relative to the range, its
``"constant"`` model; ``z ~ N(0, 1)``); without a key the cell stays exactly on its
levels. Every SET pulse counts in ``pulses`` (endurance).

**Relaxation** (the paper gives no equation; the project's choice, documented in
docs/sfa.md): ``rho = 1`` (default) is a non-volatile level counter that is RESET to
``G_min`` between samples (``init_state`` / :func:`reset_adaptation`, one RESET pulse per
cell that had moved); ``rho < 1`` is a volatile cell relaxing towards ``G_min`` by the
factor ``rho`` per step, the form ``a <- rho a + (1 - rho) s`` of the usual SFA models
with the spike increment ``dg`` in place of ``1 - rho``; the relaxed value is off the
level grid.

**No SFA**: ``beta = 0`` gives the plain LIF (constant threshold ``theta0``; ``g`` still
counts spikes but feeds nothing back). Use :meth:`ALIF.without_sfa`.

The threshold uses ``g[t-1]``: a spike raises the threshold from the next step on.

**What goes through what.** :class:`ALIF` implements the neuron interface
(:class:`memjax.neurons.AbstractNeuron`) as a discrete-time map: :meth:`ALIF.step` is
:func:`alif_step` (``leak`` and ``rho`` are per step of ``ALIF.dt``, so a passed ``dt``
must equal ``ALIF.dt``; ``key`` draws the write noise); :func:`memjax.neurons.simulate`
runs it over a sequence. There is no vector field and nothing goes through
`memjax.integrate.odeint`. Layers with their own spike decision (the winner-take-all
layer, :mod:`memjax.models.wta`) use :func:`alif_threshold`, :func:`alif_integrate` and
:func:`alif_adapt`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._validation import check_nonnegative, check_positive, check_range
from ..devices.rram import MultiLevelRRAM
from ._base import AbstractNeuron

__all__ = [
    "ALIF",
    "ALIFState",
    "alif_step",
    "alif_threshold",
    "alif_integrate",
    "alif_adapt",
    "reset_adaptation",
]

Reset = Literal["zero", "subtract"]


class ALIFState(eqx.Module):
    """Membrane ``v``, adaptation conductance ``g`` (normalised, in [0, 1]), last spikes
    ``s`` and SET pulses received by the adaptation cell ``pulses`` (one shape each)."""

    v: Float[Array, "..."]
    g: Float[Array, "..."]
    s: Float[Array, "..."]
    pulses: Int[Array, "..."]


def _default_device() -> MultiLevelRRAM:
    return MultiLevelRRAM(n_levels=32)


class ALIF(AbstractNeuron):
    """Parameters of a layer of adaptive LIF neurons (equations in the module docstring).

    **Fields:**

    - `leak`: membrane decay per step, in [0, 1] (1 = perfect integrator). Default 0.9.
    - `theta0`: resting threshold, > 0. Default 1.
    - `beta`: threshold increase at full adaptation conductance (``g = 1``), >= 0;
      0 disables SFA. Default 4 (with 32 levels: ``4 / 31`` per spike).
    - `rho`: per-step relaxation factor of ``g``, in [0, 1]; 1 = none (RESET per
      sample). Default 1.
    - `device`: the adaptation cell (`MultiLevelRRAM`; its ``n_levels`` sets the step
      ``dg`` and its ``write_sigma`` the pulse noise when a key is given).
    - `reset`: ``"zero"`` or ``"subtract"`` (static).
    - `dt`: the duration of the step ``leak`` and ``rho`` are given for (static, > 0;
      default 1, a unitless step).
    """

    continuous: ClassVar[bool] = False

    leak: Float[ArrayLike, "..."] = 0.9
    theta0: Float[ArrayLike, "..."] = 1.0
    beta: Float[ArrayLike, "..."] = 4.0
    rho: Float[ArrayLike, "..."] = 1.0
    device: MultiLevelRRAM = eqx.field(default_factory=_default_device)
    reset: Reset = eqx.field(static=True, default="zero")
    dt: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        check_range("ALIF", "leak", self.leak, 0.0, 1.0)
        check_positive("ALIF", "theta0", self.theta0)
        check_nonnegative("ALIF", "beta", self.beta)
        check_range("ALIF", "rho", self.rho, 0.0, 1.0)
        check_positive("ALIF", "dt", self.dt)
        if not isinstance(self.device, MultiLevelRRAM):
            raise ValueError(
                f"ALIF.device must be a MultiLevelRRAM; got {type(self.device).__name__}"
            )
        if self.reset not in ("zero", "subtract"):
            raise ValueError(f"ALIF.reset must be 'zero' or 'subtract'; got {self.reset!r}")

    @property
    def dg(self) -> float:
        """Normalised conductance step of one SET pulse, ``1 / (n_levels - 1)``."""
        return 1.0 / (self.device.n_levels - 1)

    def without_sfa(self) -> "ALIF":
        """The same neuron with SFA disabled (``beta = 0``): a plain LIF."""
        return dataclasses.replace(self, beta=0.0)

    def init_state(self, shape=(), dtype=None) -> ALIFState:
        """Resting state: ``v = 0``, adaptation cell at ``G_min`` (``g = 0``)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        z = jnp.zeros(shape, dtype)
        return ALIFState(v=z, g=z, s=z, pulses=jnp.zeros(shape, jnp.int32))

    def step(
        self,
        state: ALIFState,
        i_in,
        dt: float | None = None,
        *,
        key: PRNGKeyArray | None = None,
    ) -> ALIFState:
        """One step of :func:`alif_step`. ``dt``: None or ``ALIF.dt`` (else
        ``ValueError``); ``key``: the adaptation cell's write noise."""
        self.resolve_dt(dt)
        return alif_step(self, state, i_in, key)

    def output(self, state: ALIFState) -> Float[Array, "..."]:
        """The spikes ``s`` (0/1)."""
        return state.s


def alif_threshold(params: ALIF, state: ALIFState) -> Float[Array, "..."]:
    """``theta0 + beta g``: the threshold the next input is compared with."""
    return jnp.asarray(params.theta0 + params.beta * state.g)


def alif_integrate(params: ALIF, state: ALIFState, i_in: Float[ArrayLike, "..."]):
    """``leak v + I`` (the membrane before the spike decision)."""
    return params.leak * state.v + i_in


def alif_adapt(
    params: ALIF,
    state: ALIFState,
    v: Float[Array, "..."],
    s: Float[Array, "..."],
    theta: Float[ArrayLike, "..."],
    key: PRNGKeyArray | None = None,
) -> ALIFState:
    """Given membrane ``v`` and spikes ``s`` (decided by the caller against ``theta``):
    reset the spiking neurons, relax ``g`` and SET the spiking neurons' cells one level.

    Exposed so that layers with their own spike decision (winner-take-all,
    `memjax.learning.stdp`) share the neuron's reset and adaptation.
    """
    s = jnp.asarray(s, v.dtype)
    if params.reset == "zero":
        v = jnp.where(s > 0, 0.0, v)
    else:
        v = v - theta * s
    step = params.dg * s
    if key is not None:
        step = step + params.device.write_sigma * jax.random.normal(key, s.shape, s.dtype) * s
    g = jnp.clip(params.rho * state.g + step, 0.0, 1.0)
    return ALIFState(v=v, g=g, s=s, pulses=state.pulses + (s > 0).astype(jnp.int32))


def alif_step(
    params: ALIF,
    state: ALIFState,
    i_in: Float[ArrayLike, "..."],
    key: PRNGKeyArray | None = None,
) -> ALIFState:
    """One step: integrate, compare with ``theta0 + beta g``, reset, adapt (see module)."""
    theta = alif_threshold(params, state)
    v = alif_integrate(params, state, i_in)
    s = (v > theta).astype(v.dtype)
    return alif_adapt(params, state, v, s, theta, key)


def reset_adaptation(state: ALIFState) -> tuple[ALIFState, Int[Array, "..."]]:
    """RESET every adaptation cell to ``G_min`` (``g = 0``) and the membrane to 0, as
    between two samples. Returns the new state and the RESET pulses applied (1 where
    the cell had moved off ``G_min``; they also count in ``pulses``)."""
    moved = (state.g > 0).astype(jnp.int32)
    z = jnp.zeros_like(state.v)
    return ALIFState(v=z, g=jnp.zeros_like(state.g), s=z, pulses=state.pulses + moved), moved
