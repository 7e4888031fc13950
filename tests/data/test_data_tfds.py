"""The TFDS source, offline: prepare MNIST / Fashion-MNIST with TFDS's own builders
from local IDX files in a temp dir, then read them through ``source="tfds"``.

TFDS 4.9.10 can *read* ``array_record`` datasets without TensorFlow, but its MNIST
builder needs TensorFlow (and the network) to *prepare* one. Three shims make the real
builder run here, none of which touches memjax's loading code:

* ``DownloadManager.download_and_extract`` returns the local IDX files (no network);
* the builder's IDX readers (``tf.io.gfile``) are replaced by NumPy readers returning
  PIL images, which TFDS's ``Image`` feature encodes to PNG without TensorFlow;
* ``importlib_resources`` (a TFDS dependency missing from this environment, needed only
  to look up the builder's checksum file) is aliased to the stdlib ``importlib.resources``.

Any socket connection attempted during a test fails at once.
"""

import gzip
import importlib.resources
import importlib.resources.abc
import importlib.util
import socket
import sys
import warnings

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("PIL")

from memjax.data import (  # noqa: E402
    SampleDataWarning,
    _tfds,  # noqa: E402
    load,
    read_idx,
)


def _write_idx(path, arr, magic):
    arr = np.asarray(arr, np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(header + arr.tobytes(), compresslevel=1))


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("MEMJAX_OFFLINE", "1")


def _prepare(monkeypatch, name, idx_dir, tfds_dir):
    """Prepare `name` with TFDS's own builder from the IDX files in `idx_dir`."""
    from PIL import Image
    from tensorflow_datasets.core.download import download_manager
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    if not hasattr(tfds_mnist, "_extract_mnist_images"):
        pytest.skip(f"tfds {tfds.__version__}: MNIST builder internals changed")
    if importlib.util.find_spec("importlib_resources") is None:
        monkeypatch.setitem(sys.modules, "importlib_resources", importlib.resources)

    def fake_download_and_extract(self, urls):
        files = {
            "train_data": "train-images-idx3-ubyte.gz",
            "train_labels": "train-labels-idx1-ubyte.gz",
            "test_data": "t10k-images-idx3-ubyte.gz",
            "test_labels": "t10k-labels-idx1-ubyte.gz",
        }
        return {k: str(idx_dir / files[k]) for k in urls}

    def images(path, num):  # the builder asks for all 60000; the files hold fewer
        return [Image.fromarray(a, mode="L") for a in read_idx(path, 2051)[:num]]

    def labels(path, num):
        return read_idx(path, 2049)[:num].astype(np.int64)

    monkeypatch.setattr(
        download_manager.DownloadManager, "download_and_extract", fake_download_and_extract
    )
    monkeypatch.setattr(tfds_mnist, "_extract_mnist_images", images)
    monkeypatch.setattr(tfds_mnist, "_extract_mnist_labels", labels)
    builder = tfds.builder(
        _tfds.TFDS_NAMES[name], data_dir=str(tfds_dir), file_format="array_record"
    )
    builder.download_and_prepare()
    assert builder.is_prepared()


def _sorted_pairs(x, y):
    """Order-free view of a dataset: rows sorted by (label, pixels)."""
    flat = np.concatenate([y[:, None].astype(np.int64), x.reshape(len(x), -1)], axis=1)
    return flat[np.lexsort(flat.T[::-1])]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_tfds_source_roundtrip(tmp_path, monkeypatch, offline, name):
    # Real images: the bundled sample, written out as IDX files.
    idx_dir = tmp_path / "idx" / name
    idx_dir.mkdir(parents=True)
    ref = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = load(name, split, source="sample")
        n = 300 if split == "train" else 100
        ref[split] = (x[:n], y[:n])
        _write_idx(idx_dir / f"{prefix}-images-idx3-ubyte.gz", x[:n], 2051)
        _write_idx(idx_dir / f"{prefix}-labels-idx1-ubyte.gz", y[:n], 2049)
    tfds_dir = tmp_path / "tfds"
    assert _tfds.unavailable_reason(name, tfds_dir) is not None  # not prepared yet
    _prepare(monkeypatch, name, idx_dir, tfds_dir)
    assert _tfds.unavailable_reason(name, tfds_dir) is None

    for split in ("train", "test"):
        x, y = load(name, split, source="tfds", data_dir=tfds_dir)
        rx, ry = ref[split]
        assert x.shape == rx.shape and x.dtype == np.uint8 and y.dtype == np.int32
        # TFDS shuffles at preparation: same (image, label) pairs, another order.
        np.testing.assert_array_equal(_sorted_pairs(x, y), _sorted_pairs(rx, ry))
        xl, yl = load(name, split, source="tfds", data_dir=tfds_dir, limit=17)
        np.testing.assert_array_equal(xl, x[:17])
        np.testing.assert_array_equal(yl, y[:17])

    # source="auto": no IDX folder, TFDS prepared in $TFDS_DATA_DIR -> TFDS, no warning.
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SampleDataWarning)
        x, y = load(name, "test")
    np.testing.assert_array_equal(_sorted_pairs(x, y), _sorted_pairs(*ref["test"]))


def test_unprepared_offline_never_downloads(tmp_path, monkeypatch, offline):
    """Not prepared and offline: auto falls back at once, forced tfds raises."""
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(_tfds, "_have", lambda m: True)  # pretend tensorflow is installed
    _tfds._can_connect.cache_clear()
    with pytest.warns(SampleDataWarning, match="unreachable"):
        x, _ = load("mnist", "test")
    assert x.shape == (1000, 28, 28)
    with pytest.raises(RuntimeError, match="unreachable"):
        load("fashion-mnist", "test", source="tfds")


def test_internet_check_is_bounded(monkeypatch):
    calls = []

    def fake(address, timeout=None):
        calls.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.delenv("MEMJAX_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", fake)
    _tfds._can_connect.cache_clear()
    assert _tfds.internet_available("storage.googleapis.com", 443) is False
    assert calls == [(("storage.googleapis.com", 443), 2.0)]
    _tfds._can_connect.cache_clear()
