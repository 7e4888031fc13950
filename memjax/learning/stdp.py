"""Stochastic window STDP: pre/post spike activity in, signed level pulses out.

Muñoz-Martín, Bianchi, Pedretti, Melnic, Ambrogio, Ielmini, "Unsupervised learning to
overcome catastrophic forgetting in neural networks", IEEE J. Explor. Solid-State
Comput. Devices Circuits 5, 58 (2019), and Muñoz-Martín et al., "A SiOx RRAM-based
hardware with spike frequency adaptation for power-saving continual learning in
convolutional neural networks", VLSI Technology 2020. One pulse per update on 1T1R
synapses; the window and the probabilities are the project's choices (the papers give
none).

**Rule** (:func:`stdp_pulses`). At a post-synaptic spike of neuron ``j``, every synapse
``(i, j)``

- whose input ``i`` spiked within the last ``window`` steps (the post spike's step
  included; :func:`steps_since`, :func:`pre_recent`) receives, with probability
  ``p_pot``, one SET pulse: ``+1`` (up one level);
- whose input did not receives, with probability ``p_dep``, one RESET pulse: ``-1``
  (down one level);

and every other synapse ``0``. The rule knows nothing of devices, encoders or neurons:
what a pulse does to a conductance (the device's levels, write noise, stuck cells,
endurance counters) is the model's business, e.g.
:func:`memjax.models.wta.apply_level_pulses`, and the spiking layer that produces
``pre`` and ``post`` is :class:`memjax.models.wta.WTALayer`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._validation import check_int, check_range

__all__ = ["STDP", "stdp_pulses", "steps_since", "pre_recent"]


class STDP(eqx.Module):
    """Parameters of stochastic window STDP (rule in the module docstring).

    **Fields:** `window` (steps, static int >= 1; default 2), `p_pot`, `p_dep` (pulse
    probabilities in [0, 1]; defaults 0.1, 0.05).

    Calling it is :func:`stdp_pulses` with these parameters.
    """

    window: int = eqx.field(static=True, default=2)
    p_pot: float = 0.1
    p_dep: float = 0.05

    def __check_init__(self):
        check_int("STDP.window", self.window, 1)
        check_range("STDP", "p_pot", self.p_pot, 0.0, 1.0)
        check_range("STDP", "p_dep", self.p_dep, 0.0, 1.0)

    def __call__(
        self,
        key: PRNGKeyArray,
        pre_recent: Bool[Array, " n_in"],
        post: Bool[Array, " n_out"],
        dtype=None,
    ) -> Int[Array, "n_in n_out"]:
        return stdp_pulses(self, key, pre_recent, post, dtype)


def stdp_pulses(
    rule: STDP,
    key: PRNGKeyArray,
    pre_recent: Bool[Array, " n_in"],
    post: Bool[Array, " n_out"],
    dtype=None,
) -> Int[Array, "n_in n_out"]:
    """Signed pulses of one time step (int32, shape ``(n_in, n_out)``): ``+1`` with
    probability ``p_pot`` where ``post[j]`` and ``pre_recent[i]``, ``-1`` with
    probability ``p_dep`` where ``post[j]`` and not ``pre_recent[i]``, else 0.

    One uniform draw per synapse (of floating ``dtype``, default the default float)
    decides both cases, which never overlap.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    post = jnp.asarray(post, bool)
    pre = jnp.asarray(pre_recent, bool)
    shape = (pre.shape[0], post.shape[0])
    post = jnp.broadcast_to(post[None, :], shape)
    pre = jnp.broadcast_to(pre[:, None], shape)
    u = jax.random.uniform(key, shape, dtype)
    pot = post & pre & (u < rule.p_pot)
    dep = post & ~pre & (u < rule.p_dep)
    return pot.astype(jnp.int32) - dep.astype(jnp.int32)


def steps_since(since: Int[Array, " n_in"], x_t: Float[Array, " n_in"]) -> Int[Array, " n_in"]:
    """Steps since each input last spiked, after step ``t`` (0 where ``x_t`` spiked)."""
    return jnp.where(x_t > 0, 0, since + 1)


def pre_recent(since: Int[Array, " n_in"], window: int) -> Bool[Array, " n_in"]:
    """Inputs that spiked within the last ``window`` steps, the current one included."""
    return since < window
