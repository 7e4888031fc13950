"""tensorflow-datasets as a source, used only when it cannot hang on the network.

TFDS (4.9.10 here) works without TensorFlow for *reading* a dataset prepared in the
``array_record`` file format: ``builder.as_data_source(split)`` decodes records with
NumPy and PIL. Preparing MNIST with TFDS's own builder needs TensorFlow (its IDX
reader uses ``tf.io.gfile`` and its PNG encoder ``tf.image.encode_png``), and a
download that cannot reach the host retries for minutes. So this module uses TFDS when

* the dataset is already prepared in the TFDS data dir (``$TFDS_DATA_DIR`` or
  ``~/tensorflow_datasets``, or ``data_dir=`` with ``source="tfds"``), in
  ``array_record`` format (or any format when TensorFlow is installed); or
* it is not prepared, TensorFlow is installed, and a 2 s TCP connect to the download
  host succeeds (then it downloads and prepares).

Note: TFDS shuffles examples when it prepares a dataset, so the order of a TFDS split
differs from the IDX file order (the set of (image, label) pairs is the same).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
from pathlib import Path

import numpy as np

__all__ = ["TFDS_NAMES", "tfds_data_dir", "internet_available", "unavailable_reason", "load_tfds"]

TFDS_NAMES = {"mnist": "mnist", "fashion-mnist": "fashion_mnist"}
# Download hosts of the TFDS builders (tensorflow_datasets/image_classification/mnist.py).
_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "fashion-mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
CONNECT_TIMEOUT = 2.0  # s


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def internet_available(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection to ``host:port`` opens within `timeout` s.

    False at once if ``$MEMJAX_OFFLINE`` is set; otherwise the answer is cached per
    process, so the (at most `timeout` s) wait happens once.
    """
    if os.environ.get("MEMJAX_OFFLINE"):
        return False
    return _can_connect(host, port, timeout)


@functools.cache
def _can_connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tfds_data_dir() -> Path:
    """TFDS's default data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def _builder(name: str, data_dir=None):
    import tensorflow_datasets as tfds

    # Always explicit: TFDS reads $TFDS_DATA_DIR only once, at import.
    root = tfds_data_dir() if data_dir is None else data_dir
    return tfds.builder(TFDS_NAMES[name], data_dir=str(root))


def _prepared_format(builder) -> str | None:
    """The file format of a prepared builder ("array_record", "tfrecord"), else None."""
    if not builder.is_prepared():
        return None
    fmt = builder.info.file_format
    return getattr(fmt, "value", None) or str(fmt or "tfrecord")


def prepared(name: str, data_dir=None) -> bool:
    """True if TFDS holds ``name`` prepared in a format it can read here (no network)."""
    if not _have("tensorflow_datasets"):
        return False
    root = Path(data_dir) if data_dir is not None else tfds_data_dir()
    if not any(root.glob(f"{TFDS_NAMES[name]}/*/dataset_info.json")):
        return False
    try:
        fmt = _prepared_format(_builder(name, data_dir))
    except Exception:  # a broken TFDS install must not break the fallback
        return False
    return fmt is not None and (fmt == "array_record" or _have("tensorflow"))


def unavailable_reason(name: str, data_dir=None) -> str | None:
    """None if `load_tfds(name, ...)` can run without waiting on the network, else why not."""
    if not _have("tensorflow_datasets"):
        return "tensorflow-datasets is not installed"
    has_tf = _have("tensorflow")
    root = Path(data_dir) if data_dir is not None else tfds_data_dir()
    if not has_tf and not any(root.glob(f"{TFDS_NAMES[name]}/*/dataset_info.json")):
        # Cheap answer without importing TFDS (no side effects, no absl noise).
        return (
            f"{TFDS_NAMES[name]} is not prepared in {root} and preparing it with TFDS "
            "needs tensorflow"
        )
    try:
        builder = _builder(name, data_dir)
        fmt = _prepared_format(builder)
    except Exception as e:  # a broken TFDS install must not break the fallback
        return f"tensorflow-datasets failed ({type(e).__name__}: {e})"
    if fmt is not None:
        if fmt == "array_record" or has_tf:
            return None
        return (
            f"{TFDS_NAMES[name]} is prepared in {builder.data_dir} as {fmt}, "
            "which needs tensorflow to read"
        )
    if not has_tf:
        return (
            f"{TFDS_NAMES[name]} is not prepared in {builder.data_dir} and preparing it "
            "with TFDS needs tensorflow"
        )
    if not internet_available(*_HOSTS[name]):
        return (
            f"{TFDS_NAMES[name]} is not prepared in {builder.data_dir} and "
            f"{_HOSTS[name][0]} is unreachable"
        )
    return None


def load_tfds(
    name: str, split: str, *, limit: int | None = None, data_dir=None
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, 28, 28]`` and labels int32 ``[N]`` through TFDS (TFDS order).

    Raises `RuntimeError` saying why if TFDS cannot be used without the network.
    """
    why = unavailable_reason(name, data_dir)
    if why is not None:
        raise RuntimeError(f"source='tfds' unusable: {why}")
    builder = _builder(name, data_dir)
    if not builder.is_prepared():
        builder.download_and_prepare()  # online and tensorflow present (checked above)
    n = builder.info.splits[split].num_examples
    n = n if limit is None else min(n, limit)
    if _prepared_format(builder) == "array_record":
        source = builder.as_data_source(split=split)
        records = source.__getitems__(range(n)) if n else []
        images = np.zeros((n, 28, 28, 1), np.uint8)
        for i, r in enumerate(records):
            images[i] = r["image"]
        labels = np.asarray([r["label"] for r in records], dtype=np.int32)
    else:  # tfrecord, tensorflow installed
        import tensorflow_datasets as tfds

        ds = builder.as_dataset(split=f"{split}[:{n}]", batch_size=-1)
        batch = tfds.as_numpy(ds)
        images, labels = batch["image"], batch["label"].astype(np.int32)
    return np.ascontiguousarray(images.reshape(-1, 28, 28)), labels
