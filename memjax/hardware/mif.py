"""Neuron substitution: memristive MIF neurons in place of a network's LIF neurons.

:func:`substitute_mif` replaces every NIR ``LIF`` node of a network by a
:class:`MIFNode`: a layer of :class:`memjax.neurons.MIF` neurons (capacitor and two
MMSS memristors, integrated by :func:`memjax.neurons.mif_step` over the network's
``dt`` per step, in ``substeps`` sub-steps) driven by the input current ``i = gain x``
(A per unit of the layer's input), whose output per step is a comparator on the
membrane, ``z = H(v - v_spike)`` (surrogate gradient), so the downstream layers still
receive 0/1 events. The MIF has no reset: under a sustained input its membrane stays
above the comparator, and the event count over a window grows with the input as the
LIF's spike count does.

**Fit.** ``gain`` and ``v_spike`` are chosen per layer to match the LIF's response: for
constant inputs ``x`` on a grid over ``[0, x_max]`` the event count of the MIF over
``n_steps`` is held against the LIF's spike count (least squares over a grid of
candidate gains and comparator levels). BPTT fine-tuning through the device equations
(:func:`memjax.hardware.finetune`, which also trains ``log_gain``) then adapts the weights
to the substituted neurons.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..neurons.lif import spike_fn
from ..neurons.mif import MIF, mif_step
from ..nir.network import NIRNetwork
from ..nir.nodes import LIF, AbstractNode

__all__ = ["MIFNode", "substitute_mif", "fit_mif_gain"]


class MIFNode(AbstractNode):
    """A layer of MIF neurons with an input gain and an output comparator.

    **Fields:** `neuron` (:class:`MIF`), `log_gain` (log of the gain in A per unit
    input; trained in log space, as the gain spans decades), `v_spike`
    (V, static), `shape` (static neuron shape), `substeps` (static)."""

    stateful: ClassVar[bool] = True
    neuron: MIF
    log_gain: Float[Array, ""]
    v_spike: float = eqx.field(static=True, default=0.05)
    shape: tuple[int, ...] = eqx.field(static=True, default=())
    substeps: int = eqx.field(static=True, default=1)

    @property
    def r(self):
        """Neuron shape as an array shape (what `NIRNetwork` reads for its states)."""
        return jnp.zeros(self.shape)

    def init_state(self, batch, dtype):
        return self.neuron.init_state((batch,) + self.shape, dtype)

    def step(self, state, x, dt, key=None):
        n = jax.lax.stop_gradient(self.neuron)
        i = jnp.exp(self.log_gain) * x
        h = dt / self.substeps
        for _ in range(self.substeps):
            state = mif_step(n, state, i, h)
        return state, spike_fn(state.v - self.v_spike)


def _lif_counts(node: LIF, x: np.ndarray, n_steps: int, dt: float) -> np.ndarray:
    """Spike counts of one LIF neuron (mean parameters of ``node``) for inputs ``x``."""
    lif = LIF(
        *(
            jnp.full(x.shape, jnp.mean(getattr(node, k)))
            for k in ("tau", "r", "v_leak", "v_threshold", "v_reset")
        )
    )

    def body(v, _):
        v, z = lif.step(v, jnp.asarray(x), dt)
        return v, z

    _, z = jax.lax.scan(body, jnp.zeros(x.shape), None, length=n_steps)
    return np.asarray(z.sum(0))


def fit_mif_gain(
    node: LIF,
    mif: MIF,
    *,
    n_steps: int,
    dt: float,
    x_max: float | None = None,
    substeps: int = 1,
    gains: np.ndarray | None = None,
    levels: tuple[float, ...] = (0.03, 0.05, 0.07),
) -> tuple[float, float, float]:
    """``(gain, v_spike, rms)``: the grid point whose MIF event counts best match the
    LIF's spike counts over ``n_steps`` for constant inputs in ``[0, x_max]`` (default
    four times the LIF's mean threshold over its mean ``r dt / tau``)."""
    thr = float(jnp.mean(node.v_threshold))
    a = float(jnp.mean(node.r * dt / node.tau))
    x_max = 4.0 * thr / a if x_max is None else x_max
    x = np.linspace(0.0, x_max, 41).astype(np.float32)
    target = _lif_counts(node, x, n_steps, dt)
    gains = np.geomspace(1e-6, 1e-2, 41) if gains is None else np.asarray(gains)
    I = jnp.asarray(gains[:, None] * x[None, :], jnp.float32)
    s = mif.init_state(I.shape, jnp.float32)

    def body(st, _):
        for _ in range(substeps):
            st = mif_step(mif, st, I, dt / substeps)
        return st, st.v

    _, v = jax.lax.scan(body, s, None, length=n_steps)
    best = (np.inf, 0.0, 0.0)
    for lev in levels:
        counts = np.asarray((v > lev).sum(0))
        err = np.sqrt(((counts - target[None]) ** 2).mean(1))
        k = int(np.argmin(err))
        if err[k] < best[0]:
            best = (float(err[k]), float(gains[k]), float(lev))
    return best[1], best[2], best[0]


def substitute_mif(
    model: NIRNetwork,
    *,
    n_steps: int,
    mif: MIF | None = None,
    substeps: int = 1,
) -> tuple[NIRNetwork, dict[str, dict[str, float]]]:
    """``model`` with every ``LIF`` node replaced by a fitted :class:`MIFNode` (see the
    module docstring); returns the network and, per node, the fitted ``gain`` (A),
    ``v_spike`` (V) and the rms count error of the fit."""
    mif = MIF() if mif is None else mif
    new, info = {}, {}
    for name, node in model.nodes.items():
        if isinstance(node, LIF):
            g, lev, rms = fit_mif_gain(node, mif, n_steps=n_steps, dt=model.dt, substeps=substeps)
            shape = tuple(node.tau.shape)
            new[name] = MIFNode(mif, jnp.log(jnp.asarray(g, jnp.float32)), lev, shape, substeps)
            info[name] = {"gain": g, "v_spike": lev, "rms_count_error": rms}
    if not new:
        raise ValueError("substitute_mif: the network has no LIF node")
    return model.replace_nodes(new), info
