"""SimCLR training of the SFA CNN on real MNIST images (the bundled sample)."""

import warnings

import jax
import numpy as np
import pytest

from memjax.data import load
from memjax.models.sfa_snn import cnn_features
from memjax.recipes import SimCLR, train_cnn_simclr


@pytest.fixture(scope="module")
def digits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = load("mnist", "train", data_dir=None, source="sample")
    return x[:1500], y[:1500].astype(np.int32)


def test_simclr_learns_and_a_checkpointed_rerun_returns_the_same_model(digits, tmp_path):
    kw = dict(epochs=2, head_epochs=2, batch_size=64, progress=False, checkpoint_dir=tmp_path)
    cnn, hist = train_cnn_simclr(digits, [0, 1, 2], **kw)
    # both phases resume from their finished checkpoints: nothing is trained again
    again, _ = train_cnn_simclr(digits, [0, 1, 2], **kw)
    for a, b in ((cnn.conv1.weight, again.conv1.weight), (cnn.fc.weight, again.fc.weight)):
        np.testing.assert_array_equal(a, b)
    assert len(hist["simclr_loss"]) == 2 and len(hist["train_loss"]) == 2
    assert hist["simclr_loss"][1] < hist["simclr_loss"][0]
    x, y = digits
    mask = np.isin(y, [0, 1, 2])
    _, logits = cnn_features(cnn, x[mask], "fc")
    assert np.mean(np.asarray(logits).argmax(-1) == y[mask]) > 0.8


def test_head_phase_leaves_the_convolutions_unchanged(digits):
    short, _ = train_cnn_simclr(
        digits, [0, 1], epochs=1, head_epochs=1, batch_size=64, progress=False
    )
    long, _ = train_cnn_simclr(
        digits, [0, 1], epochs=1, head_epochs=3, batch_size=64, progress=False
    )
    for name in ("conv1", "conv2"):
        np.testing.assert_array_equal(getattr(short, name).weight, getattr(long, name).weight)
    assert not np.array_equal(short.fc.weight, long.fc.weight)
    assert not np.array_equal(short.head.weight, long.head.weight)


def test_simclr_module_and_bad_settings():
    from memjax.models.sfa_snn import CNN

    net = SimCLR(CNN(3, key=jax.random.key(0)), 32, 16, key=jax.random.key(1))
    assert net(np.zeros((4, 28, 28), np.float32)).shape == (4, 16)
    with pytest.raises(ValueError, match="SimCLR.width must be an integer >= 1"):
        SimCLR(CNN(3, key=jax.random.key(0)), 0, key=jax.random.key(1))
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        train_cnn_simclr((np.zeros((4, 28, 28)), np.zeros(4, int)), [0], epochs=0)
