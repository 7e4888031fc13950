"""memjax nodes of the NIR primitives, discretised with a fixed time step ``dt``.

NIR (Pedersen et al., "Neuromorphic intermediate representation: a unified instruction
set for interoperable brain-inspired computing", Nature Communications 2024) defines its
neurons in continuous time. memjax integrates them with one explicit (forward) Euler
step of length ``dt`` per time step, input ``I[t]`` held over the step, and applies the
threshold and reset after the update, as the NIR reference simulators and snnTorch's
importer do (``beta = 1 - dt / tau``):

- ``LIF``:  ``v' = v + dt/tau (v_leak - v + r I)``; ``z = H(v' - v_threshold)``;
  ``v <- v_reset`` where ``z = 1``, else ``v'``. Output ``z``.
- ``CubaLIF``: ``i' = i + dt/tau_syn (-i + w_in I)``; ``v' = v + dt/tau_mem (v_leak - v
  + r i')``; threshold and reset of ``v`` as ``LIF``. Output ``z``.
- ``LI``: ``v' = v + dt/tau (v_leak - v + r I)``. Output ``v'``.
- ``IF``: ``v' = v + dt r I``; threshold and reset as ``LIF``. Output ``z``.
- ``I``: ``v' = v + dt r I``. Output ``v'``.
- ``Threshold``: ``z = H(I - threshold)`` (stateless).

``H(u)`` is 1 for ``u > 0`` (NIR: ``v > v_threshold``), 0 otherwise, with a surrogate
derivative for training (:func:`memjax.neurons.lif.spike_fn`); the reset uses the spike
with its gradient stopped. States start at zero (NIR does not specify an initial state;
snnTorch starts at zero). Stateless nodes map ``[batch, *shape_in]`` to ``[batch,
*shape_out]``; NIR weights are ``[n_out, n_in]`` (``y = W x + b``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..neurons.lif import spike_fn

__all__ = [
    "AbstractNode",
    "Affine",
    "Linear",
    "Scale",
    "Flatten",
    "Conv2d",
    "Threshold",
    "LIF",
    "CubaLIF",
    "LI",
    "IF",
    "Integrator",
]


class AbstractNode(eqx.Module):
    """A node of a :class:`memjax.nir.NIRNetwork`: ``step(state, x, dt, key) -> (state,
    y)`` on batched arrays. Stateless nodes have ``stateful = False`` and state None."""

    stateful: ClassVar[bool] = False

    def init_state(self, batch: int, dtype) -> Any:
        return None

    def prepare(self, key=None) -> "AbstractNode":
        """The node as run inside the time loop (hardware layers compute their read
        matrix here, once per call of the network; ``key``: their per-call noise)."""
        return self

    def step(self, state, x, dt: float, key=None):
        return state, self.apply(x)

    def apply(self, x):
        raise NotImplementedError


def _arr(x) -> Array:
    return jnp.asarray(np.asarray(x, dtype=np.float32))


def _bc(p, x):
    """Parameter ``p`` (neuron or feature shape) with leading axes to ``x``'s rank."""
    p = jnp.asarray(p)
    return p.reshape((1,) * (jnp.ndim(x) - p.ndim) + p.shape)


class Affine(AbstractNode):
    """``y = x W^T + b``; `weight` ``[n_out, n_in]``, `bias` ``[n_out]``."""

    weight: Float[Array, "n_out n_in"]
    bias: Float[Array, " n_out"]

    def apply(self, x):
        return x @ self.weight.T + _bc(self.bias, x)


class Linear(AbstractNode):
    """``y = x W^T``; `weight` ``[n_out, n_in]``."""

    weight: Float[Array, "n_out n_in"]

    def apply(self, x):
        return x @ self.weight.T


class Scale(AbstractNode):
    """``y = scale x`` elementwise."""

    scale: Float[Array, "..."]

    def apply(self, x):
        return _bc(self.scale, x) * x


class Flatten(AbstractNode):
    """Flatten the (unbatched) axes ``start_dim .. end_dim`` (NIR counts them without the
    batch axis; negative values from the end)."""

    start_dim: int = eqx.field(static=True, default=0)
    end_dim: int = eqx.field(static=True, default=-1)

    def apply(self, x):
        nd = x.ndim - 1
        s = self.start_dim % nd
        e = self.end_dim % nd
        shape = x.shape[1 : s + 1] + (-1,) + x.shape[e + 2 :]
        return x.reshape((x.shape[0],) + shape)


class Conv2d(AbstractNode):
    """2-D convolution, NCHW: `weight` ``[c_out, c_in / groups, kh, kw]``, `bias`
    ``[c_out]``, `stride`, `padding` (pairs of ints), `dilation`, `groups`."""

    weight: Float[Array, "c_out c_in kh kw"]
    bias: Float[Array, " c_out"]
    stride: tuple[int, int] = eqx.field(static=True, default=(1, 1))
    padding: tuple[int, int] = eqx.field(static=True, default=(0, 0))
    dilation: tuple[int, int] = eqx.field(static=True, default=(1, 1))
    groups: int = eqx.field(static=True, default=1)

    def apply(self, x):
        y = jax.lax.conv_general_dilated(
            x,
            self.weight,
            window_strides=self.stride,
            padding=[(p, p) for p in self.padding],
            rhs_dilation=self.dilation,
            feature_group_count=self.groups,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        return y + self.bias.reshape(1, -1, 1, 1)


class Threshold(AbstractNode):
    """``z = H(x - threshold)`` (1 where ``x > threshold``), surrogate gradient."""

    threshold: Float[Array, "..."]

    def apply(self, x):
        return spike_fn(x - _bc(self.threshold, x))


def _leak(v, x, dt, tau, v_leak, r):
    """One Euler step of NIR's leaky membrane ``tau dv/dt = (v_leak - v) + r x``."""
    a = _bc(dt / tau, v)
    return (1.0 - a) * v + a * _bc(v_leak, v) + (a * _bc(r, v)) * x


def _fire(v, v_threshold, v_reset):
    z = spike_fn(v - _bc(v_threshold, v))
    zs = jax.lax.stop_gradient(z)
    return z, zs * _bc(v_reset, v) + (1.0 - zs) * v


class LIF(AbstractNode):
    """NIR ``LIF`` (see the module docstring): `tau` (s), `r`, `v_leak`, `v_threshold`,
    `v_reset`, each of the neuron shape."""

    stateful: ClassVar[bool] = True
    tau: Float[Array, "..."]
    r: Float[Array, "..."]
    v_leak: Float[Array, "..."]
    v_threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]

    def init_state(self, batch, dtype):
        return jnp.zeros((batch,) + self.tau.shape, dtype)

    def step(self, v, x, dt, key=None):
        v = _leak(v, x, dt, self.tau, self.v_leak, self.r)
        z, v = _fire(v, self.v_threshold, self.v_reset)
        return v, z


class CubaLIF(AbstractNode):
    """NIR ``CubaLIF``: synaptic current then membrane (see the module docstring)."""

    stateful: ClassVar[bool] = True
    tau_syn: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    r: Float[Array, "..."]
    v_leak: Float[Array, "..."]
    v_threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    w_in: Float[Array, "..."]

    def init_state(self, batch, dtype):
        z = jnp.zeros((batch,) + self.tau_mem.shape, dtype)
        return (z, z)

    def step(self, state, x, dt, key=None):
        i, v = state
        a_s = _bc(dt / self.tau_syn, i)
        i = (1.0 - a_s) * i + (a_s * _bc(self.w_in, i)) * x
        v = _leak(v, i, dt, self.tau_mem, self.v_leak, self.r)
        z, v = _fire(v, self.v_threshold, self.v_reset)
        return (i, v), z


class LI(AbstractNode):
    """NIR ``LI`` (leaky integrator, no spikes): output the membrane ``v``."""

    stateful: ClassVar[bool] = True
    tau: Float[Array, "..."]
    r: Float[Array, "..."]
    v_leak: Float[Array, "..."]

    def init_state(self, batch, dtype):
        return jnp.zeros((batch,) + self.tau.shape, dtype)

    def step(self, v, x, dt, key=None):
        v = _leak(v, x, dt, self.tau, self.v_leak, self.r)
        return v, v


class IF(AbstractNode):
    """NIR ``IF``: ``v' = v + dt r I``, threshold and reset to `v_reset`."""

    stateful: ClassVar[bool] = True
    r: Float[Array, "..."]
    v_threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]

    def init_state(self, batch, dtype):
        return jnp.zeros((batch,) + self.r.shape, dtype)

    def step(self, v, x, dt, key=None):
        v = v + _bc(dt * self.r, v) * x
        z, v = _fire(v, self.v_threshold, self.v_reset)
        return v, z


class Integrator(AbstractNode):
    """NIR ``I`` (integrator): ``v' = v + dt r I``, output ``v``."""

    stateful: ClassVar[bool] = True
    r: Float[Array, "..."]

    def init_state(self, batch, dtype):
        return jnp.zeros((batch,) + self.r.shape, dtype)

    def step(self, v, x, dt, key=None):
        v = v + _bc(dt * self.r, v) * x
        return v, v
