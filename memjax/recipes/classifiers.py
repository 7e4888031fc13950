"""Supervised recipes: the ReLU baseline `MLP` and the SFA pipeline's `CNN`, each trained
with Adam on softmax cross-entropy by `memjax.training.fit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..data.encoding import scale_images
from ..losses import classification_metrics, cross_entropy_loss
from ..models.ann import MLP, flatten_scale
from ..models.sfa_snn import CNN, select_classes
from ..training.supervised import fit

__all__ = ["train_mlp", "train_cnn"]


def _images(x: np.ndarray):
    """Images to float32 ``(N, 28, 28)`` in [0, 1] (:func:`memjax.data.scale_images`)."""
    return jnp.asarray(scale_images(x, owner="train_cnn").reshape(len(x), 28, 28))


def _head_labels(all_labels: np.ndarray, classes: list[int], y: np.ndarray) -> np.ndarray:
    """Labels ``y`` (all in ``classes``) as head indices: ``classes[k]`` -> ``k``."""
    remap = np.full(int(max(np.max(all_labels), max(classes))) + 1, -1, np.int64)
    remap[classes] = np.arange(len(classes))
    return remap[y].astype(np.int32)


def train_mlp(
    train_data: tuple[np.ndarray, np.ndarray],
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    hidden: int | Sequence[int] = (512,),
    epochs: int = 10,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    **fit_kwargs,
) -> tuple[MLP, dict[str, list[float]]]:
    """Train an `MLP` with Adam on images ``(N, 28, 28)`` / ``(N, 784)`` and int labels.

    ``in_size`` and ``out_size`` come from the data (``out_size`` = 10 unless the labels go
    higher). Model initialisation uses ``jax.random.key(seed)``; other keyword arguments
    (``checkpoint_dir``, ``progress``, ``log``, ...) go to `memjax.training.fit`. Returns
    the trained model and the history (with test ``accuracy`` and ``loss`` when
    ``test_data`` is given).
    """
    x, y = train_data
    if not np.issubdtype(np.asarray(y).dtype, np.integer) or np.min(y) < 0:
        raise ValueError(
            "train_mlp: labels must be non-negative integers; got dtype "
            f"{np.asarray(y).dtype}, minimum {np.min(y)}"
        )
    in_size = int(np.prod(np.shape(x)[1:]))
    out_size = max(10, int(np.max(y)) + 1)
    model = MLP(in_size, hidden, out_size, key=jax.random.key(seed))
    eval_kw: dict[str, Any] = {}
    if test_data is not None:
        eval_kw = dict(eval_fn=classification_metrics, eval_data=test_data)
    return fit(
        model,
        cross_entropy_loss,
        optax.adam(learning_rate),
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        preprocess=flatten_scale,
        n_classes=out_size,
        **eval_kw,
        **fit_kwargs,
    )


def train_cnn(
    train_data: tuple[np.ndarray, np.ndarray],
    classes: Sequence[int],
    *,
    n_features: int = 64,
    channels: tuple[int, int] = (16, 32),
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    **fit_kwargs,
) -> tuple[CNN, dict[str, list[float]]]:
    """Train a :class:`~memjax.models.sfa_snn.CNN` on the samples of ``classes`` only
    (Adam, cross-entropy, via `memjax.training.fit`). Head output ``k`` is
    ``classes[k]``. Returns (model, history)."""
    classes = [int(c) for c in classes]
    model = CNN(len(classes), n_features, channels, key=jax.random.key(seed))
    return _fit_classes(
        model,
        train_data,
        classes,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        **fit_kwargs,
    )


def _fit_classes(
    model: CNN,
    train_data: tuple[np.ndarray, np.ndarray],
    classes: list[int],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    **fit_kwargs,
) -> tuple[CNN, dict[str, list[float]]]:
    """`fit` ``model`` with Adam on cross-entropy over the samples of ``classes`` only,
    head output ``k`` for ``classes[k]`` (``fit_kwargs``: e.g. ``filter_spec``)."""
    x, y = select_classes(*train_data, classes)
    return fit(
        model,
        cross_entropy_loss,
        optax.adam(learning_rate),
        (x, _head_labels(train_data[1], classes, y)),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        preprocess=_images,
        n_classes=len(classes),
        **fit_kwargs,
    )
