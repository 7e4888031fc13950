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

and every other synapse ``0``.

**Soft bounds** (``bounds="soft"``): the probabilities depend on each synapse's
normalised conductance ``g = (G - G_min) / (G_max - G_min)`` in [0, 1],

    P(SET) = p_pot (1 - g),        P(RESET) = p_dep g,

the weight-dependent STDP of van Rossum, Bi and Turrigiano (J. Neurosci. 20, 8812,
2000), as the conductance-dependent update of memristive synapses (Querlioz, Bichler,
Dollfus and Gamrat, IEEE Trans. Nanotechnol. 12, 288, 2013) gives it. A synapse whose
input spikes with probability ``q`` per post spike drifts to
``g* = p_pot q / (p_pot q + p_dep (1 - q))`` (``= q`` for ``p_pot = p_dep``): the
column learns a graded template of its inputs' rates. With hard bounds (the default,
the papers' rule) the level is a random walk with constant rates, which piles up at
the top level where ``p_pot q > p_dep (1 - q)`` and at the bottom elsewhere: a binary
template of the inputs that are active more often than ``p_dep / (p_pot + p_dep)``.

The rule knows nothing of devices, encoders or neurons:
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
    probabilities in [0, 1]; defaults 0.1, 0.05), `bounds` (static: ``"hard"``,
    probabilities independent of the conductance, or ``"soft"``, scaled by ``1 - g``
    and ``g``; default ``"hard"``).

    Calling it is :func:`stdp_pulses` with these parameters.
    """

    window: int = eqx.field(static=True, default=2)
    p_pot: float = 0.1
    p_dep: float = 0.05
    bounds: str = eqx.field(static=True, default="hard")

    def __check_init__(self):
        if self.bounds not in ("hard", "soft"):
            raise ValueError(f"STDP.bounds must be 'hard' or 'soft'; got {self.bounds!r}")
        check_int("STDP.window", self.window, 1)
        check_range("STDP", "p_pot", self.p_pot, 0.0, 1.0)
        check_range("STDP", "p_dep", self.p_dep, 0.0, 1.0)

    def __call__(
        self,
        key: PRNGKeyArray,
        pre_recent: Bool[Array, " n_in"],
        post: Bool[Array, " n_out"],
        dtype=None,
        level: Float[Array, "n_in n_out"] | None = None,
    ) -> Int[Array, "n_in n_out"]:
        return stdp_pulses(self, key, pre_recent, post, dtype, level)


def stdp_pulses(
    rule: STDP,
    key: PRNGKeyArray,
    pre_recent: Bool[Array, " n_in"],
    post: Bool[Array, " n_out"],
    dtype=None,
    level: Float[Array, "n_in n_out"] | None = None,
) -> Int[Array, "n_in n_out"]:
    """Signed pulses of one time step (int32, shape ``(n_in, n_out)``): ``+1`` with
    probability ``p_pot`` where ``post[j]`` and ``pre_recent[i]``, ``-1`` with
    probability ``p_dep`` where ``post[j]`` and not ``pre_recent[i]``, else 0; with
    ``rule.bounds == "soft"`` these probabilities are scaled by ``1 - level`` and
    ``level`` (the synapses' normalised conductances in [0, 1], required then).

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
    p_pot: Array | float = rule.p_pot
    p_dep: Array | float = rule.p_dep
    if rule.bounds == "soft":
        if level is None:
            raise ValueError("stdp_pulses: soft bounds need `level` (normalised conductances)")
        g = jnp.clip(jnp.broadcast_to(jnp.asarray(level, dtype), shape), 0.0, 1.0)
        p_pot, p_dep = p_pot * (1.0 - g), p_dep * g
    pot = post & pre & (u < p_pot)
    dep = post & ~pre & (u < p_dep)
    return pot.astype(jnp.int32) - dep.astype(jnp.int32)


def steps_since(since: Int[Array, " n_in"], x_t: Float[Array, " n_in"]) -> Int[Array, " n_in"]:
    """Steps since each input last spiked, after step ``t`` (0 where ``x_t`` spiked)."""
    return jnp.where(x_t > 0, 0, since + 1)


def pre_recent(since: Int[Array, " n_in"], window: int) -> Bool[Array, " n_in"]:
    """Inputs that spiked within the last ``window`` steps, the current one included."""
    return since < window
