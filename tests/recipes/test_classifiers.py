"""Recipes that train a classifier on real MNIST: the ReLU MLP and the SFA CNN."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from memjax.models.sfa_snn import cnn_features
from memjax.recipes import train_cnn, train_mlp


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


def test_learns_mnist_subset(mnist_subset):
    train, test = mnist_subset
    model, hist = train_mlp(train, test, epochs=5, batch_size=64, progress=False)
    assert model.in_size == 784 and model.hidden == (512,) and model.out_size == 10
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    # 2,000 training images, 1,000 held-out test images; chance is 0.10.
    assert hist["accuracy"][-1] > 0.85, hist["accuracy"]


def test_train_mlp_rejects_negative_labels(mnist_subset):
    (x, y), _ = mnist_subset
    with pytest.raises(ValueError, match="train_mlp: labels must be non-negative"):
        train_mlp((x[:200], np.where(np.arange(200) == 5, -1, y[:200])), epochs=1, progress=False)


def test_train_cnn_learns_its_classes_only(mnist_subset):
    (x, y), (xt, yt) = mnist_subset
    classes = [0, 1, 2]
    cnn, hist = train_cnn((x, y), classes, epochs=2, batch_size=32, progress=False)
    assert cnn.head.weight.shape[0] == len(classes)
    # 3-class head, about 600 training images; chance is 1/3.
    assert hist["train_accuracy"][-1] > 0.8, hist
    m = np.isin(yt, classes)
    _, logits = cnn_features(cnn, xt[m], "fc")
    pred = np.asarray(classes)[np.asarray(logits).argmax(-1)]
    assert np.mean(pred == yt[m]) > 0.8
