"""Contrastive recipe: the SFA pipeline's `CNN` trunk learned without labels (SimCLR),
then its dense layers trained with labels on the frozen trunk.

SimCLR (Chen et al., *ICML* 2020): two random views of each image
(`memjax.data.augment_images`) pass through the convolutional trunk and a projection
MLP; `memjax.losses.nt_xent` pulls the two views of an image together and pushes the
other images of the batch away. Both phases run through `memjax.training.fit`
(checkpointing, progress, non-finite checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_int
from ..data.augment import augment_images
from ..losses import nt_xent
from ..models.sfa_snn import CNN, select_classes
from ..training.supervised import fit
from .classifiers import _fit_classes, _images

__all__ = ["SimCLR", "train_cnn_simclr"]


class SimCLR(eqx.Module):
    """A `CNN`'s convolutional trunk followed by a projection MLP
    (``n_conv -> width -> out_size``, ReLU): the network NT-Xent trains. ``encoder``
    is the CNN; its dense layers are not used here."""

    encoder: CNN
    projection: eqx.nn.MLP

    def __init__(self, encoder: CNN, width: int = 128, out_size: int = 64, *, key: PRNGKeyArray):
        check_int("SimCLR.width", width, 1)
        check_int("SimCLR.out_size", out_size, 1)
        self.encoder = encoder
        n_conv = encoder.conv2.out_channels * 16
        self.projection = eqx.nn.MLP(n_conv, out_size, width, 1, key=key)

    def __call__(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N out_size"]:
        return jax.vmap(self.projection)(self.encoder.conv_features(x))


def _nt_xent_loss(temperature: float, augment: dict):
    def loss_fn(model: SimCLR, x, y, key):
        del y
        k1, k2 = jax.random.split(key)
        za = model(augment_images(k1, x, **augment))
        zb = model(augment_images(k2, x, **augment))
        return nt_xent(za, zb, temperature), {}

    return loss_fn


def _dense_only(cnn: CNN):
    """Filter spec training only ``fc`` and ``head`` of ``cnn``."""
    spec = jax.tree.map(lambda _: False, cnn)
    dense = tuple(jax.tree.map(eqx.is_inexact_array, layer) for layer in (cnn.fc, cnn.head))
    return eqx.tree_at(lambda m: (m.fc, m.head), spec, replace=dense)


def train_cnn_simclr(
    train_data: tuple[np.ndarray, np.ndarray],
    classes: Sequence[int],
    *,
    epochs: int = 60,
    head_epochs: int = 3,
    n_features: int = 64,
    channels: tuple[int, int] = (16, 32),
    projection: tuple[int, int] = (128, 64),
    temperature: float = 0.5,
    augment: dict | None = None,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    checkpoint_dir=None,
    **fit_kwargs,
) -> tuple[CNN, dict[str, list[float]]]:
    """Train a :class:`~memjax.models.sfa_snn.CNN` on the samples of ``classes`` only:
    ``epochs`` of SimCLR on the images alone (labels unused), then ``head_epochs`` of
    cross-entropy on ``fc`` and ``head`` with the convolutions frozen.

    ``projection``: (width, output size) of the projection MLP; ``augment``: keyword
    arguments of `memjax.data.augment_images`; ``batch_size``: images per step of either
    phase (in NT-Xent each image's negatives are the batch's other images); Adam at
    ``learning_rate`` in both phases. With ``checkpoint_dir`` each phase checkpoints
    into its own sub-folder (``simclr``, ``head``) and resumes there. Head output ``k``
    is ``classes[k]``. Returns (model, history): the head phase's history, with the
    SimCLR phase's per-epoch loss as ``"simclr_loss"``.
    """
    check_int("train_cnn_simclr: epochs", epochs, 1)
    check_int("train_cnn_simclr: head_epochs", head_epochs, 1)
    classes = [int(c) for c in classes]
    x, _ = select_classes(*train_data, classes)
    k_cnn, k_proj = jax.random.split(jax.random.key(seed))
    cnn = CNN(len(classes), n_features, channels, key=k_cnn)
    net = SimCLR(cnn, *projection, key=k_proj)

    def sub(name: str):
        return None if checkpoint_dir is None else Path(checkpoint_dir) / name

    net, pre = fit(
        net,
        _nt_xent_loss(temperature, dict(augment or {})),
        optax.adam(learning_rate),
        (x, np.zeros(len(x), np.int32)),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        preprocess=_images,
        n_classes=1,
        checkpoint_dir=sub("simclr"),
        settings={"temperature": temperature, "augment": dict(augment or {})},
        **fit_kwargs,
    )
    cnn, hist = _fit_classes(
        net.encoder,
        train_data,
        classes,
        epochs=head_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        filter_spec=_dense_only(net.encoder),
        checkpoint_dir=sub("head"),
        **fit_kwargs,
    )
    return cnn, {**hist, "simclr_loss": pre["train_loss"]}
