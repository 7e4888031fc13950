"""Hardware-aware fine-tuning of a deployed spiking network, and its evaluation.

``finetune`` trains the crossbar layers' conductances ``u`` and digital biases of a
deployed network by BPTT (surrogate spike gradients, exact gradients through the
crossbar model) with `memjax.training.fit`: the forward pass quantises ``u`` to the
device levels (straight-through), injects a fresh programming error per batch, keeps the
stuck cells at their values, drifts, reads with noise and IR drop as configured; after
every step ``u`` is clipped back into [0, 1]. Neuron parameters stay fixed. The loss is
snnTorch's ``ce_rate_loss``: the cross-entropy of the output spikes at every step,
averaged over steps. Write the result to the chip with
:func:`memjax.hardware.reprogram`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..losses import cross_entropy
from ..nir.network import NIRNetwork
from ..training import fit
from .deploy import hardware_layers, set_mode
from .layers import HardwareAffine

__all__ = ["finetune", "spike_accuracy", "rate_loss", "trainable_spec", "project_hardware"]


def rate_loss(spikes, y):
    """Mean over steps of the cross-entropy of the output spikes ``[T, batch, classes]``
    taken as logits (snnTorch's ``ce_rate_loss``)."""
    return jnp.mean(jax.vmap(lambda s: cross_entropy(s, y))(spikes))


def trainable_spec(model: NIRNetwork):
    """`eqx.partition` filter: the crossbar layers' ``u`` and ``bias`` and the input
    gains (log) of substituted MIF neurons (:class:`memjax.hardware.MIFNode`)."""
    from .mif import MIFNode  # noqa: PLC0415

    spec = jax.tree.map(lambda _: False, model)

    def where(name: str, fields: tuple[str, ...]):
        return lambda m: tuple(getattr(m.nodes[name], f) for f in fields)

    for name in hardware_layers(model):
        spec = eqx.tree_at(where(name, ("u", "bias")), spec, replace=(True, True))
    for name, node in model.nodes.items():
        if isinstance(node, MIFNode):
            spec = eqx.tree_at(where(name, ("log_gain",)), spec, replace=(True,))
    return spec


def project_hardware(model: NIRNetwork) -> NIRNetwork:
    """Clip every crossbar layer's ``u`` into [0, 1]."""
    is_hw = lambda x: isinstance(x, HardwareAffine)  # noqa: E731

    def clip(n):
        return eqx.tree_at(lambda n: n.u, n, jnp.clip(n.u, 0.0, 1.0)) if is_hw(n) else n

    return jax.tree.map(clip, model, is_leaf=is_hw)


def spike_accuracy(
    model: NIRNetwork,
    x: np.ndarray,
    y: np.ndarray,
    n_steps: int,
    *,
    key=None,
    batch_size: int = 1000,
) -> float:
    """Accuracy of the spike-count readout (argmax of output spikes summed over
    ``n_steps``, first index on ties) for static inputs ``x[N, ...]``; ``key``: fresh
    read noise per batch. The read matrices are computed once (`NIRNetwork.prepared`)."""

    model = _prepare(model)
    correct = 0
    for i, s in enumerate(range(0, len(x), batch_size)):
        k = None if key is None else jax.random.fold_in(key, i)
        p = _predict(model, x[s : s + batch_size], k, int(n_steps))
        correct += int((np.asarray(p) == y[s : s + batch_size]).sum())
    return correct / len(x)


@eqx.filter_jit
def _prepare(model):
    return model.prepared()


@eqx.filter_jit
def _predict(model, xb, key, n_steps):
    return jnp.argmax(model(xb, n_steps, key=key).sum(0), axis=-1)


def finetune(
    model: NIRNetwork,
    train_data: tuple[np.ndarray, np.ndarray],
    *,
    n_steps: int,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 1e-3,
    noise_scale: float = 1.0,
    seed: int = 0,
    n_classes: int = 10,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[NIRNetwork, dict]:
    """Hardware-aware fine-tuning (see the module docstring) from the layers'
    programming targets; returns ``(model in training mode, history)``. Adam with
    learning rate ``lr`` on ``u`` (units of the conductance range) and the biases;
    ``noise_scale``: the injected programming noise in units of the device's write
    sigma. The stuck cells are the deployed chip's own (fine-tune per chip)."""
    if not hardware_layers(model):
        raise ValueError("finetune: the model has no crossbar layer; deploy it first")
    m = set_mode(model, True, from_target=True, noise_scale=noise_scale)

    def loss_fn(mod, xb, yb, key):
        spk = mod(xb, n_steps, key=key)
        acc = jnp.mean(jnp.argmax(spk.sum(0), -1) == yb)
        return rate_loss(spk, yb), {"accuracy": acc}

    m, hist = fit(
        m,
        loss_fn,
        optax.adam(lr),
        train_data,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        project=project_hardware,
        n_classes=n_classes,
        filter_spec=trainable_spec(m),
        progress=progress,
        log=log,
    )
    return m, hist
