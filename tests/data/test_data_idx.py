"""IDX parsing and loading: the real files, and malformed ones written here."""

import gzip

import numpy as np
import pytest

from memjax.data import IDXFormatError, load, read_idx

# Published facts about the official files (first labels, class counts).
MNIST_TRAIN_FIRST = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TEST_FIRST = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_TRAIN_FIRST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
FASHION_TEST_FIRST = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


@pytest.mark.parametrize(
    "name, split, n, first, counts",
    [
        ("mnist", "train", 60000, MNIST_TRAIN_FIRST, MNIST_TRAIN_COUNTS),
        ("mnist", "test", 10000, MNIST_TEST_FIRST, MNIST_TEST_COUNTS),
        ("fashion-mnist", "train", 60000, FASHION_TRAIN_FIRST, [6000] * 10),
        ("fashion_mnist", "test", 10000, FASHION_TEST_FIRST, [1000] * 10),
    ],
)
def test_real_idx(data_dir, name, split, n, first, counts):
    x, y = load(name, split, data_dir=data_dir)
    assert x.shape == (n, 28, 28) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int32
    assert y[:10].tolist() == first
    assert np.bincount(y, minlength=10).tolist() == counts
    assert x.min() == 0 and x.max() == 255
    assert x.flags.writeable


def test_env_var_and_limit(data_dir, monkeypatch):
    monkeypatch.setenv("MEMJAX_DATA_DIR", str(data_dir))
    x, y = load("mnist", "test", limit=25, source="idx")
    full_x, full_y = load("mnist", "test", data_dir=data_dir)
    assert x.shape == (25, 28, 28)
    np.testing.assert_array_equal(x, full_x[:25])
    np.testing.assert_array_equal(y, full_y[:25])


# ---- hand-written files ---------------------------------------------------------


def _idx_bytes(arr, magic):
    arr = np.asarray(arr, np.uint8)
    return (
        magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    )


def _write_set(
    root,
    images,
    labels,
    *,
    gz=False,
    name="mnist",
    split="t10k",
    img_magic=2051,
    lab_magic=2049,
    img_tail=None,
    lab_tail=None,
):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    ib, lb = _idx_bytes(images, img_magic), _idx_bytes(labels, lab_magic)
    ib = ib if img_tail is None else ib[:img_tail]
    lb = lb if lab_tail is None else lb[:lab_tail]
    suffix = ".gz" if gz else ""
    ip = folder / f"{split}-images-idx3-ubyte{suffix}"
    lp = folder / f"{split}-labels-idx1-ubyte{suffix}"
    ip.write_bytes(gzip.compress(ib) if gz else ib)
    lp.write_bytes(gzip.compress(lb) if gz else lb)
    return ip, lp


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)


@pytest.mark.parametrize("gz", [False, True])
def test_roundtrip_plain_and_gzip(tmp_path, tiny, gz):
    images, labels = tiny
    _write_set(tmp_path, images, labels, gz=gz)
    x, y = load("mnist", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_wrong_magic(tmp_path, tiny):
    ip, _ = _write_set(tmp_path, *tiny, img_magic=2049 + 0x100)
    with pytest.raises(IDXFormatError, match=r"bad magic number .*expected 2051") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(ip) in str(e.value)


def test_labels_file_given_as_images(tmp_path, tiny):
    _, lp = _write_set(tmp_path, *tiny)
    with pytest.raises(IDXFormatError, match="expected 2051"):
        read_idx(lp, 2051)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, tiny, gz):
    ip, _ = _write_set(tmp_path, *tiny, gz=gz, img_tail=16 + 7 * 784 - 100)
    with pytest.raises(IDXFormatError, match=r"truncated.*need 5488 bytes, file has 5388") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(ip) in str(e.value)


def test_truncated_header(tmp_path, tiny):
    _, lp = _write_set(tmp_path, *tiny, lab_tail=6)
    with pytest.raises(IDXFormatError, match="truncated header") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(lp) in str(e.value)


def test_truncated_gzip_stream(tmp_path, tiny):
    ip, _ = _write_set(tmp_path, *tiny, gz=True)
    ip.write_bytes(ip.read_bytes()[:-30])
    with pytest.raises(IDXFormatError, match="gzip") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(ip) in str(e.value)


def test_trailing_bytes(tmp_path, tiny):
    ip, _ = _write_set(tmp_path, *tiny)
    ip.write_bytes(ip.read_bytes() + b"\x00\x01")
    with pytest.raises(IDXFormatError, match="trailing bytes"):
        load("mnist", "test", data_dir=tmp_path)


def test_count_mismatch(tmp_path, tiny):
    images, labels = tiny
    ip, lp = _write_set(tmp_path, images, labels[:5])
    with pytest.raises(IDXFormatError, match="7 images but .* 5 labels") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(ip) in str(e.value) and str(lp) in str(e.value)


def test_wrong_image_size(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((2, 27, 28)), 2051))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(2), 2049))
    with pytest.raises(IDXFormatError, match="27x28; expected 28x28"):
        load("mnist", "test", data_dir=tmp_path)


def test_label_out_of_range(tmp_path, tiny):
    images, labels = tiny
    labels = labels.copy()
    labels[3] = 12
    _, lp = _write_set(tmp_path, images, labels)
    with pytest.raises(IDXFormatError, match="label 12 out of range") as e:
        load("mnist", "test", data_dir=tmp_path)
    assert str(lp) in str(e.value)


def test_explicit_missing_dir_names_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMJAX_DATA_DIR", "/nonexistent")
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as e:
        load("mnist", "train", data_dir=missing)
    msg = str(e.value)
    for f in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ):
        assert str(missing / "mnist" / f) in msg


def test_explicit_incomplete_dir_does_not_fall_back(tmp_path, tiny):
    ip, lp = _write_set(tmp_path, *tiny, name="fashion-mnist")
    lp.unlink()
    with pytest.raises(FileNotFoundError, match="fashion-mnist/t10k-labels-idx1-ubyte.gz"):
        load("fashion-mnist", "test", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        load("fashion-mnist", "test", data_dir=tmp_path, source="idx")


def test_source_idx_without_any_dir(monkeypatch):
    monkeypatch.delenv("MEMJAX_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="MEMJAX_DATA_DIR"):
        load("mnist", "test", source="idx")


def test_env_dir_with_corrupt_file_raises_not_falls_back(tmp_path, tiny, monkeypatch):
    _write_set(tmp_path, *tiny, img_magic=1234)
    monkeypatch.setenv("MEMJAX_DATA_DIR", str(tmp_path))
    with pytest.raises(IDXFormatError, match="bad magic number 1234"):
        load("mnist", "test")
