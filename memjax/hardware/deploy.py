"""`deploy`: map a network's weight layers onto RRAM crossbars; `reprogram`, `set_mode`.

``deploy(model, config, key)`` replaces every ``Affine`` / ``Linear`` / ``Conv2d`` node
of a :class:`memjax.nir.NIRNetwork` by a crossbar layer
(:class:`memjax.hardware.HardwareAffine` / ``HardwareConv2d``) programmed into cells of
``config``. A weight ``W`` is split into one-sided pairs, ``u_pos = max(W, 0) /
max|W|``, ``u_neg = max(-W, 0) / max|W|`` (the unused cell of a pair stays at G_min),
and written:

- by program-and-verify (:meth:`memjax.crossbar.Crossbar.program`): targets rounded to
  the device levels, write noise, stuck-at cells, D2D spread, as the device says;
- or, with ``config.pulse``, by open-loop potentiating pulses from the reset state on
  the nonlinear cell (:meth:`PulseDevice.program`); stuck cells as above.

The faulty cells (mask and value) are stored in the layer: a re-programming of the same
chip (:func:`reprogram`, e.g. after hardware-aware fine-tuning) keeps them.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..crossbar import Crossbar
from ..nir.network import NIRNetwork
from ..nir.nodes import Affine, Conv2d, Linear
from .config import HardwareConfig
from .layers import HardwareAffine, HardwareConv2d

__all__ = ["deploy", "reprogram", "set_mode", "with_config", "hardware_layers"]


def _write(u_target, config: HardwareConfig, key, stuck=None, stuck_u=None):
    """Programmed normalised conductances of targets ``u[2, n_in, n_out]``; returns
    ``(u, stuck, stuck_u)``."""
    dev = config.device
    xb_cfg = config.crossbar_config()
    if stuck is not None:  # the same chip: its faults are given, draw no new ones
        xb_cfg = dataclasses.replace(xb_cfg, stuck_faults=False)
    xb = Crossbar(u_pos=u_target[0], u_neg=u_target[1], config=xb_cfg)
    k_prog, k_pulse = jax.random.split(key)
    programmed, state = xb.program(k_prog)
    if stuck is None:
        stuck = state.stuck_lrs | state.stuck_hrs
        stuck_u = jnp.where(state.stuck_lrs, 1.0, 0.0).astype(u_target.dtype)
    if config.pulse is not None:
        p = config.pulse
        G_t = dev.G_min + jnp.clip(u_target, 0.0, 1.0) * (dev.G_max - dev.G_min)
        kk = k_pulse if config.program_noise else None
        G = p.program(kk, G_t, aware=config.pulse_aware)
        u = (G - dev.G_min) / (dev.G_max - dev.G_min)
    else:
        u = jnp.stack([programmed.u_pos, programmed.u_neg])
    u = jnp.where(stuck, stuck_u, u)
    return u.astype(u_target.dtype), stuck, stuck_u


def _deploy_node(node, config: HardwareConfig, key):
    if isinstance(node, Conv2d):
        W = node.weight.reshape(node.weight.shape[0], -1)
        b = node.bias
    elif isinstance(node, Affine):
        W, b = node.weight, node.bias
    else:
        W, b = node.weight, jnp.zeros(node.weight.shape[0], node.weight.dtype)
    w_scale = float(jnp.max(jnp.abs(W)))
    w_scale = w_scale if w_scale > 0 else 1.0
    w = W.T / w_scale
    u_t = jnp.stack([jnp.maximum(w, 0.0), jnp.maximum(-w, 0.0)])
    u, stuck, stuck_u = _write(u_t, config, key)
    kw = dict(u=u, target=u_t, bias=b, stuck=stuck, stuck_u=stuck_u, config=config, w_scale=w_scale)
    if isinstance(node, Conv2d):
        if node.groups != 1:
            raise ValueError("deploy: grouped Conv2d (groups > 1) is not supported")
        return HardwareConv2d(
            **kw,
            kernel=(int(node.weight.shape[2]), int(node.weight.shape[3])),
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
        )
    return HardwareAffine(**kw)


def hardware_layers(model: NIRNetwork) -> list[str]:
    """Names of the crossbar layers of a deployed network."""
    return [k for k, v in model.nodes.items() if isinstance(v, HardwareAffine)]


def deploy(model: NIRNetwork, config: HardwareConfig, key: PRNGKeyArray) -> NIRNetwork:
    """``model`` with every weight layer on crossbars of ``config`` (see the module
    docstring); other nodes (neurons, flatten, ...) unchanged."""
    if not isinstance(model, NIRNetwork):
        raise TypeError(f"deploy: model must be a memjax.nir.NIRNetwork; got {type(model)}")
    if not isinstance(config, HardwareConfig):
        raise TypeError(f"deploy: config must be a HardwareConfig; got {type(config)}")
    new = {}
    for k, (name, node) in enumerate(model.nodes.items()):
        if isinstance(node, (Affine, Linear, Conv2d)):
            new[name] = _deploy_node(node, config, jax.random.fold_in(key, k))
    if not new:
        raise ValueError("deploy: the network has no Affine, Linear or Conv2d node")
    return model.replace_nodes(new)


def _map_hw(model: NIRNetwork, fn) -> NIRNetwork:
    return model.replace_nodes({k: fn(k, model.nodes[k]) for k in hardware_layers(model)})


def reprogram(model: NIRNetwork, key: PRNGKeyArray) -> NIRNetwork:
    """Write the layers' present ``u`` (e.g. fine-tuned targets) into the same arrays
    again: fresh programming noise, the same stuck cells; layers leave training mode."""

    def fn(name, node):
        k = jax.random.fold_in(key, list(model.nodes).index(name))
        u, _, _ = _write(node.u, node.config, k, node.stuck, node.stuck_u)
        return dataclasses.replace(node, u=u, target=node.u, training=False)

    return _map_hw(model, fn)


def set_mode(
    model: NIRNetwork, training: bool, *, from_target: bool = False, noise_scale: float = 1.0
) -> NIRNetwork:
    """Switch every crossbar layer to training mode (levels and write noise in the
    forward pass, for hardware-aware fine-tuning) or back. ``from_target=True`` also
    sets ``u`` to the layer's programming target (fine-tuning then starts from the
    intended weights, not from one noisy write of them). ``noise_scale``: the injected
    programming noise in units of the device's write sigma (>= 0)."""
    if not noise_scale >= 0:
        raise ValueError(f"set_mode: noise_scale must be >= 0; got {noise_scale}")

    def fn(name, node):
        node = dataclasses.replace(node, training=training, noise_scale=float(noise_scale))
        if from_target:
            node = eqx.tree_at(lambda n: n.u, node, node.target)
        return node

    return _map_hw(model, fn)


def with_config(model: NIRNetwork, **changes) -> NIRNetwork:
    """Every crossbar layer with its config's fields replaced, e.g. ``drift_time=3600``
    or ``r_wire=1.0`` (the programmed cells unchanged)."""
    return _map_hw(model, lambda k, n: dataclasses.replace(n, config=n.config.replace(**changes)))
