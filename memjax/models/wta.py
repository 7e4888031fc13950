"""Winner-take-all spiking layer of adaptive LIF neurons with STDP RRAM synapses: the
unsupervised layer of the SFA pipeline (:mod:`memjax.models.sfa_snn`).

Muñoz-Martín et al., "A SiOx RRAM-based hardware with spike frequency adaptation for
power-saving continual learning in convolutional neural networks", VLSI Technology 2020.
The paper gives no layer equations; the following are the project's choices
(docs/sfa.md).

This module simulates the layer: it rate codes the input (:func:`memjax.data.rate`),
steps the neurons (:mod:`memjax.neurons.alif`'s integrate / threshold / adapt), decides
the winner, asks the rule (:func:`memjax.learning.stdp.stdp_pulses`) for the pulses of
the winner's column and programs them into the synapse devices
(:func:`apply_level_pulses`).

**Layer** (one step ``t`` of one sample, ``x_t`` the input spikes):

    I_j   = sum_i x_t,i G_ij / sum_i G_ij                  (normalize=True or "l1", default)
          = sum_i x_t,i G_ij / sqrt(n_in sum_i G_ij^2)      (normalize="l2")
          = sum_i x_t,i G_ij / G_max                        (normalize=False)
    v_j   = leak v_j + I_j                                  (ALIF integrate)
    th_j  = theta0 + beta g_j + h_j                         (SFA g_j, homeostasis h_j)
    winner j* = argmax_j (v_j - th_j); it fires if v_j* > th_j*
    on a spike: every membrane resets to 0 (lateral inhibition), the adaptation cell
    steps one level (SFA, see `memjax.neurons.alif`), h_j* += theta_plus, and the STDP
    pulses of column j* are programmed.

SFA (``sfa="layer"``, default) uses one adaptation cell for the whole layer, stepped at
every output spike, so every threshold rises with the layer's firing rate and the
winner's identity is unaffected (``g`` is stored per neuron as identical copies; its SET
pulses are ``pulses[0]``). ``sfa="neuron"`` gives each neuron its own cell; with lateral
inhibition the adapted winner then hands over to other neurons (docs/sfa.md).

So at most one neuron fires per step. Reads are noiseless. ``normalize=True`` divides
each column's current by its total conductance (a per-column current normaliser, the
project's choice): without it a neuron whose synapses grew overall wins every sample
(docs/sfa.md). ``normalize="l2"`` divides by the column's root sum of squared
conductances instead (times ``sqrt(n_in)``, so that a uniform column reads as with
``"l1"``): the winner is then the column at the smallest angle to the input, the
cosine read; in hardware a per-column gain computed from a read-out of the column's
conductances, not a single current. Inputs are rate coded with spike probability
``p_in x`` per step. Between samples membranes and SFA cells reset; the homeostatic
offsets decay, ``h <- (1 - homeo_decay) h``, and persist (Diehl & Cook, "Unsupervised
learning of digit recognition using spike-timing-dependent plasticity", Front. Comput.
Neurosci. 2015: adaptive thresholds, with a per-sample decay here).

**Synapse programming** (:func:`apply_level_pulses`). Levels are those of the synapse
device, a :class:`~memjax.devices.rram.MultiLevelRRAM`: ``n_levels = 2`` is binary
stochastic STDP, more levels give multi-level STDP. A pulse aims at the next level of
the cell's own (D2D-spread) range and lands with the device's per-pulse write noise (no
verify: a single shot); stuck cells keep their value; every pulse counts in the cell's
``pulses`` (endurance), including a SET pulse to a cell already at its top level.
Without write noise the conductances stay exactly on the levels.

Learning is sequential over samples (one `lax.scan` over samples, each a `lax.scan` over
time steps, all synapses of the winner updated at once); inference (:func:`wta_respond`)
is `vmap`-ed over samples with learning and homeostasis frozen.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._validation import check_int, check_nonnegative, check_range, check_shape
from ..data.encoding import rate
from ..devices.rram import MultiLevelRRAM, RRAMState
from ..learning.stdp import STDP, pre_recent, stdp_pulses, steps_since
from ..neurons.alif import ALIF, alif_adapt, alif_integrate, alif_threshold

__all__ = [
    "WTALayer",
    "WTAState",
    "apply_level_pulses",
    "wta_sample",
    "wta_learn",
    "wta_respond",
    "wta_imprint",
]


def _default_synapse() -> MultiLevelRRAM:
    return MultiLevelRRAM(n_levels=16, write_sigma=0.0)


def _level_index(device: MultiLevelRRAM, syn: RRAMState) -> Float[Array, "..."]:
    """Each cell's nearest level ``0 .. n_levels - 1`` on its own range (as floats)."""
    steps = device.n_levels - 1
    return jnp.clip(jnp.round((syn.G - syn.G_min) / ((syn.G_max - syn.G_min) / steps)), 0, steps)


def apply_level_pulses(
    device: MultiLevelRRAM, key: PRNGKeyArray, syn: RRAMState, pulses: Int[Array, "..."]
) -> RRAMState:
    """Program signed level pulses (``+1`` SET, ``-1`` RESET, ``0`` none; e.g. from
    :func:`memjax.learning.stdp.stdp_pulses`) into the cells ``syn`` of ``device``: one
    level per pulse on each cell's own range, write noise, stuck cells, pulse counts."""
    shape = syn.G.shape
    steps = device.n_levels - 1
    level = jnp.clip(_level_index(device, syn) + jnp.asarray(pulses).astype(syn.G.dtype), 0, steps)
    dG = (syn.G_max - syn.G_min) / steps
    target = syn.G_min + level * dG
    z = jax.random.normal(key, shape, syn.G.dtype)
    written = jnp.clip(target + device.write_std(target, syn) * z, syn.G_min, syn.G_max)
    pulse = jnp.asarray(pulses) != 0
    G = jnp.where(pulse & ~syn.stuck, written, syn.G)
    n = pulse.astype(jnp.int32)
    return dataclasses.replace(syn, G=G, pulses=syn.pulses + n, last_pulses=n)


class WTAState(eqx.Module):
    """What the layer learns and keeps between samples: synapses ``syn`` (``(n_in,
    n_out)`` `RRAMState`), homeostatic threshold offsets ``h`` and winning spikes
    ``wins`` per neuron (diagnostics)."""

    syn: RRAMState
    h: Float[Array, " n_out"]
    wins: Int[Array, " n_out"]


class WTALayer(eqx.Module):
    """Winner-take-all layer of adaptive LIF neurons with STDP synapses and homeostasis.

    **Fields:** `n_in`, `n_out` (static ints), `neuron` (`ALIF`: leak, theta0, SFA beta,
    rho, adaptation device), `rule` (`STDP`), `synapse` (the synapse `MultiLevelRRAM`:
    levels, bounds, write noise; default 16 levels, no write noise), `n_steps` (time steps
    per sample, static;
    default 30), `p_in` (input spike probability per step at intensity 1, in (0, 1];
    default 0.3), `theta_plus` (homeostatic increment per winning spike, >= 0; default
    0.02), `homeo_decay` (per-sample decay of the offsets, in [0, 1]; default 0.01),
    `normalize` (static: ``True`` or ``"l1"``, divide each column's current by its
    total conductance, ``I_j = x . G_j / sum_i G_ij``; ``"l2"``, divide it by its
    conductances' root sum of squares, ``I_j = x . G_j / sqrt(n_in sum_i G_ij^2)``,
    equal to the ``"l1"`` current for a uniform column and a cosine read otherwise;
    ``False``, ``I_j = x . G_j / G_max``; default True), `sfa` (static: ``"layer"``,
    one adaptation cell shared by the layer and stepped at every output spike, or
    ``"neuron"``, one cell per neuron; default ``"layer"``).
    """

    n_in: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    neuron: ALIF = eqx.field(default_factory=lambda: ALIF(leak=1.0, theta0=4.0, beta=4.0))
    rule: STDP = eqx.field(default_factory=STDP)
    synapse: MultiLevelRRAM = eqx.field(default_factory=_default_synapse)
    n_steps: int = eqx.field(static=True, default=30)
    p_in: float = 0.3
    theta_plus: float = 0.02
    homeo_decay: float = 0.01
    normalize: bool | str = eqx.field(static=True, default=True)
    sfa: str = eqx.field(static=True, default="layer")

    def __check_init__(self):
        check_int("WTALayer.n_in", self.n_in, 1)
        check_int("WTALayer.n_out", self.n_out, 1)
        check_int("WTALayer.n_steps", self.n_steps, 1)
        check_range("WTALayer", "p_in", self.p_in, 0.0, 1.0, lo_open=True)
        check_nonnegative("WTALayer", "theta_plus", self.theta_plus)
        check_range("WTALayer", "homeo_decay", self.homeo_decay, 0.0, 1.0)
        if not (isinstance(self.normalize, bool) or self.normalize in ("l1", "l2")):
            raise ValueError(
                f"WTALayer.normalize must be True, False, 'l1' or 'l2'; got {self.normalize!r}"
            )
        if self.sfa not in ("layer", "neuron"):
            raise ValueError(f"WTALayer.sfa must be 'layer' or 'neuron'; got {self.sfa!r}")
        if not isinstance(self.neuron, ALIF):
            raise ValueError(f"WTALayer.neuron must be an ALIF; got {type(self.neuron).__name__}")
        if not isinstance(self.synapse, MultiLevelRRAM):
            raise ValueError(
                f"WTALayer.synapse must be a MultiLevelRRAM; got {type(self.synapse).__name__}"
            )
        if not isinstance(self.rule, STDP):
            raise ValueError(f"WTALayer.rule must be an STDP; got {type(self.rule).__name__}")

    def without_sfa(self) -> "WTALayer":
        """The same layer with SFA disabled (plain LIF neurons)."""
        return dataclasses.replace(self, neuron=self.neuron.without_sfa())

    def init_state(self, key: PRNGKeyArray, lo: float = 0.0, hi: float = 1.0) -> WTAState:
        """Synapses on random levels, uniform over the fraction ``[lo, hi]`` of the
        range (D2D spread and stuck faults drawn from the device); ``h = 0``."""
        dev = self.synapse
        k_d, k_l = jax.random.split(key)
        shape = (self.n_in, self.n_out)
        syn = dev.sample_devices(k_d, shape)
        steps = dev.n_levels - 1
        lvl = jax.random.randint(
            k_l, shape, int(np.floor(lo * steps)), int(np.ceil(hi * steps)) + 1
        )
        G = syn.G_min + lvl * (syn.G_max - syn.G_min) / steps
        G = jnp.where(syn.stuck, syn.G, G)
        syn = dataclasses.replace(syn, G=G)
        return WTAState(syn=syn, h=jnp.zeros(self.n_out), wins=jnp.zeros(self.n_out, jnp.int32))


def wta_sample(
    layer: WTALayer,
    state: WTAState,
    x: Float[Array, " n_in"],
    key: PRNGKeyArray,
    *,
    learn: bool,
) -> tuple[WTAState, dict[str, Array]]:
    """Present one sample (intensities ``x`` in [0, 1]) for ``n_steps`` steps.

    Returns the new state (synapses changed only if ``learn``; ``h`` and ``wins`` too)
    and ``{"counts": spikes per neuron, "first": first spike step per neuron (n_steps if
    none), "drive": summed input current per neuron, "raster": (n_steps, n_out) spikes}``.
    """
    k_in, k_l = jax.random.split(key)
    T = layer.n_steps
    spikes = rate(k_in, x, T, max_rate=layer.p_in, dt=1.0, dtype=jnp.result_type(float))
    neuron = layer.neuron
    st = neuron.init_state((layer.n_out,))
    since = jnp.full((layer.n_in,), layer.rule.window + 1, jnp.int32)
    G_scale = 1.0 / layer.synapse.G_max

    def body(carry, xs):
        st, since, syn, h = carry
        x_t, t, k = xs
        since = steps_since(since, x_t)
        if layer.normalize == "l2":
            I = (x_t @ syn.G) / jnp.sqrt(layer.n_in * jnp.sum(syn.G**2, axis=0))
        elif layer.normalize:
            I = (x_t @ syn.G) / jnp.sum(syn.G, axis=0)
        else:
            I = x_t @ (syn.G * G_scale)
        theta = alif_threshold(neuron, st) + h
        v = alif_integrate(neuron, st, I)
        over = v - theta
        j = jnp.argmax(over)
        fire = over[j] > 0
        s = jax.nn.one_hot(j, layer.n_out, dtype=v.dtype) * fire
        s_adapt = jnp.broadcast_to(fire, s.shape).astype(s.dtype) if layer.sfa == "layer" else s
        st = alif_adapt(neuron, st, v, s_adapt, theta)
        st = dataclasses.replace(st, s=s)
        st = dataclasses.replace(st, v=jnp.where(fire, jnp.zeros_like(st.v), st.v))
        h = h + layer.theta_plus * s
        if learn:

            def update(syn):
                col = jax.tree_util.tree_map(
                    lambda a: jax.lax.dynamic_slice_in_dim(a, j, 1, axis=1), syn
                )
                k_u, k_z = jax.random.split(k)
                pulses = stdp_pulses(
                    layer.rule,
                    k_u,
                    pre_recent(since, layer.rule.window),
                    jnp.ones((1,), bool),
                    col.G.dtype,
                    (col.G - col.G_min) / (col.G_max - col.G_min),
                )
                col = apply_level_pulses(layer.synapse, k_z, col, pulses)
                return jax.tree_util.tree_map(
                    lambda a, c: jax.lax.dynamic_update_slice_in_dim(a, c, j, axis=1), syn, col
                )

            syn = jax.lax.cond(fire, update, lambda s: s, syn)
        return (st, since, syn, h), (s, I)

    keys = jax.random.split(k_l, T)
    (_, _, syn, h), (raster, drive) = jax.lax.scan(
        body, (st, since, state.syn, state.h), (spikes, jnp.arange(T), keys)
    )
    counts = raster.sum(0)
    t_idx = jnp.arange(T)[:, None]
    first = jnp.min(jnp.where(raster > 0, t_idx, T), axis=0)
    if learn:
        h = (1.0 - layer.homeo_decay) * h
        new = WTAState(syn=syn, h=h, wins=state.wins + counts.astype(jnp.int32))
    else:
        new = state
    return new, {"counts": counts, "first": first, "drive": drive.sum(0), "raster": raster}


def wta_imprint(
    layer: WTALayer, state: WTAState, x: Float[Array, "n_out n_in"], key: PRNGKeyArray
) -> WTAState:
    """Program column ``j`` to the sample ``x[j]`` (intensities in [0, 1]): each cell
    goes to level ``round(x_ij (n_levels - 1))`` of its own range, in one signed
    multi-level pulse train (``|level change|`` pulses counted per cell), with the
    device's write noise; stuck cells keep their value.

    Imprinting the first ``n_out`` samples of a stream starts every neuron on a data
    point (the sample initialisation of k-means, Forgy 1965) instead of on random
    levels far from every input. No label is used.
    """
    x = jnp.asarray(x)
    check_shape("wta_imprint", "x", x, (layer.n_out, layer.n_in))
    check_range("wta_imprint", "x", x, 0.0, 1.0)
    syn = state.syn
    target = jnp.round(x.T.astype(syn.G.dtype) * (layer.synapse.n_levels - 1))
    delta = (target - _level_index(layer.synapse, syn)).astype(jnp.int32)
    new = apply_level_pulses(layer.synapse, key, syn, delta)
    n = jnp.abs(delta)
    return dataclasses.replace(
        state, syn=dataclasses.replace(new, pulses=syn.pulses + n, last_pulses=n)
    )


def _floats_as_arrays(tree):
    """Python floats -> 0-d arrays, so that changing a parameter (e.g. SFA on/off) does
    not recompile (`eqx.filter_jit` treats Python scalars as static)."""
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v) if isinstance(v, float) else v, tree)


def wta_learn(
    layer: WTALayer, state: WTAState, x: Float[Array, "N n_in"], key: PRNGKeyArray
) -> tuple[WTAState, dict[str, Array]]:
    """Online unsupervised learning over the samples ``x`` in order (one `lax.scan`).

    Returns the final state and per-sample ``{"spikes": output spikes, "winner": neuron
    with most spikes}``.
    """
    return _wta_learn(_floats_as_arrays(layer), state, jnp.asarray(x), key)


@eqx.filter_jit
def _wta_learn(layer, state, x, key):
    keys = jax.random.split(key, x.shape[0])

    def body(state, xs):
        xi, k = xs
        state, out = wta_sample(layer, state, xi, k, learn=True)
        return state, {"spikes": out["counts"].sum(), "winner": jnp.argmax(out["counts"])}

    return jax.lax.scan(body, state, (x, keys))


def wta_respond(
    layer: WTALayer,
    state: WTAState,
    x: Float[Array, "N n_in"],
    key: PRNGKeyArray,
    *,
    raster: bool = False,
) -> dict[str, Array]:
    """Responses to samples ``x`` (no learning; `vmap` over samples): ``counts``,
    ``first``, ``drive`` each ``(N, n_out)``, ``spikes`` ``(N,)`` and with ``raster``
    the ``(N, n_steps, n_out)`` spike trains."""
    return _wta_respond(_floats_as_arrays(layer), state, jnp.asarray(x), key, raster)


@eqx.filter_jit
def _wta_respond(layer, state, x, key, raster):
    keys = jax.random.split(key, x.shape[0])

    def one(xi, k):
        _, out = wta_sample(layer, state, xi, k, learn=False)
        if not raster:
            out = {k_: v for k_, v in out.items() if k_ != "raster"}
        return out

    out = jax.vmap(one)(x, keys)
    out["spikes"] = out["counts"].sum(-1)
    return out
