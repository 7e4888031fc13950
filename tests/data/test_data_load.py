"""`load` dispatch: names, splits, sources, and the bundled-sample fallback."""

import warnings

import numpy as np
import pytest

from memjax.data import SampleDataWarning, _load, _tfds, load
from memjax.data._sample import load_sample


@pytest.mark.parametrize("bad", ["cifar10", "emnist", ""])
def test_unknown_name(bad):
    with pytest.raises(ValueError, match="allowed: mnist, fashion-mnist"):
        load(bad, "train")


def test_unknown_split_and_source():
    with pytest.raises(ValueError, match="allowed: train, test"):
        load("mnist", "validation")
    with pytest.raises(ValueError, match="allowed: auto, idx, download, tfds, sample"):
        load("mnist", "train", source="web")
    with pytest.raises(ValueError, match="limit"):
        load("mnist", "train", source="sample", limit=-1)


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No IDX folder in the environment and no usable TFDS."""
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty_tfds"))
    monkeypatch.setattr(_tfds, "internet_available", lambda *a, **k: False)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "fmnist"])
def test_sample_fallback_warns(no_data, name):
    with pytest.warns(SampleDataWarning, match="bundled sample.*MEMJAX_DATA_DIR"):
        x, y = load(name, "train")
    assert x.shape == (2000, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int32
    assert np.bincount(y, minlength=10).tolist() == [200] * 10
    with pytest.warns(SampleDataWarning):
        xt, yt = load(name, "test", limit=300)
    assert xt.shape == (300, 28, 28) and yt.shape == (300,)


def test_sample_fallback_when_tfds_not_installed(monkeypatch):
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setattr(_tfds, "_have", lambda module: False)
    with pytest.warns(SampleDataWarning, match="tensorflow-datasets is not installed"):
        x, _ = load("mnist", "test")
    assert x.shape == (1000, 28, 28)


def test_env_dir_without_files_falls_back_and_says_where(no_data, monkeypatch, tmp_path):
    monkeypatch.setenv("MEMJAX_DATA_DIR", str(tmp_path))
    with pytest.warns(SampleDataWarning, match="No IDX files under"):
        load("mnist", "test")


def test_forced_sample_is_silent(monkeypatch):
    monkeypatch.setattr(_load, "load_idx", None)  # must not be touched
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, y = load("mnist", "test", source="sample")
    assert x.shape == (1000, 28, 28)


def test_tfds_forced_but_unusable_raises(no_data):
    with pytest.raises(RuntimeError, match="source='tfds' unusable"):
        load("mnist", "train", source="tfds")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_sample_is_real_subset(data_dir, name):
    """Each sample image is the official image at the recorded index, stratified."""
    for split, per_class in (("train", 200), ("test", 100)):
        xs, ys, idx = load_sample(name, split, return_index=True)
        x, y = load(name, split, data_dir=data_dir)
        assert np.all(np.diff(idx) > 0)
        np.testing.assert_array_equal(xs, x[idx])
        np.testing.assert_array_equal(ys, y[idx])
        assert np.bincount(ys, minlength=10).tolist() == [per_class] * 10


def test_sample_is_small():
    from memjax.data._sample import SAMPLE_DIR

    total = sum(p.stat().st_size for p in SAMPLE_DIR.glob("*.npz"))
    assert 0 < total < 3_000_000
