"""The ReLU MLP baseline: forward pass against NumPy, learning real MNIST, shape errors."""

import gzip
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.models.ann import (
    MLP,
    classification_metrics,
    cross_entropy_loss,
    flatten_scale,
    train_mlp,
)


def _read_idx(path, magic):
    raw = gzip.decompress(path.read_bytes())
    assert int.from_bytes(raw[:4], "big") == magic
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def mnist_subset():
    d = os.environ.get("MEMJAX_DATA_DIR")
    if not d or not (Path(d) / "mnist").is_dir():
        pytest.skip("no MEMJAX_DATA_DIR with the MNIST IDX files")
    root = Path(d) / "mnist"
    xtr = _read_idx(root / "train-images-idx3-ubyte.gz", 2051)[:2000]
    ytr = _read_idx(root / "train-labels-idx1-ubyte.gz", 2049)[:2000].astype(np.int32)
    xte = _read_idx(root / "t10k-images-idx3-ubyte.gz", 2051)[:1000]
    yte = _read_idx(root / "t10k-labels-idx1-ubyte.gz", 2049)[:1000].astype(np.int32)
    return (xtr, ytr), (xte, yte)


def test_forward_matches_numpy(getkey):
    model = MLP(20, (16, 8), 5, key=getkey())
    assert [l.weight.shape for l in model.layers] == [(16, 20), (8, 16), (5, 8)]
    x = np.asarray(jax.random.normal(getkey(), (7, 20)))
    h = x
    for i, layer in enumerate(model.layers):
        h = h @ np.asarray(layer.weight).T + np.asarray(layer.bias)
        if i < 2:
            h = np.maximum(h, 0.0)
    np.testing.assert_allclose(model(jnp.asarray(x)), h, rtol=1e-5, atol=1e-6)
    # A single sample and any batch shape give the same rows.
    np.testing.assert_allclose(model(jnp.asarray(x[3])), h[3], rtol=1e-5, atol=1e-6)
    assert model(jnp.zeros((2, 3, 20))).shape == (2, 3, 5)


def test_loss_and_metrics_match_numpy(getkey):
    model = MLP(6, 4, 3, key=getkey())
    x = jax.random.normal(getkey(), (9, 6))
    y = jnp.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    logits = np.asarray(model(x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want_loss = -np.mean(logp[np.arange(9), np.asarray(y)])
    want_acc = np.mean(logits.argmax(1) == np.asarray(y))
    loss, aux = cross_entropy_loss(model, x, y, getkey())
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(aux["accuracy"], want_acc)
    m = classification_metrics(model, x, y)
    np.testing.assert_allclose(m["loss"], want_loss, rtol=1e-5)


def test_flatten_scale():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    np.testing.assert_allclose(flatten_scale(x), [[0.0, 1.0, 0.2, 0.4]], rtol=1e-6)
    assert flatten_scale(np.ones((2, 3), np.float32)).dtype == jnp.float32


def test_learns_mnist_subset(mnist_subset):
    train, test = mnist_subset
    model, hist = train_mlp(train, test, epochs=5, batch_size=64, progress=False)
    assert model.in_size == 784 and model.hidden == (512,) and model.out_size == 10
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    # 2,000 training images, 1,000 held-out test images; chance is 0.10.
    assert hist["accuracy"][-1] > 0.85, hist["accuracy"]


def test_shape_and_parameter_errors(getkey):
    model = MLP(784, 32, 10, key=getkey())
    with pytest.raises(ValueError, match=r"MLP: x must have shape \(\.\.\., 784\)"):
        model(jnp.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match="MLP.in_size"):
        MLP(0, 32, 10, key=getkey())
    with pytest.raises(ValueError, match="MLP.hidden"):
        MLP(784, (32, -1), 10, key=getkey())
    with pytest.raises(ValueError, match="MLP.out_size"):
        MLP(784, 32, 2.5, key=getkey())
