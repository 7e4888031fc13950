"""`load`: one entry point for MNIST / Fashion-MNIST, whatever the source.

Sources, tried in this order by ``source="auto"``:

1. IDX folder: ``data_dir`` if given, else ``$MEMJAX_DATA_DIR``
   (``DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``, same for
   ``DIR/fashion-mnist``). An explicit ``data_dir`` that lacks the files raises
   `FileNotFoundError`; it never falls back.
2. tensorflow-datasets, only when usable without waiting on the network: the dataset
   is already prepared in the TFDS data dir, or a 2 s connect to the download host
   succeeds.
3. The bundled sample (2,000 train / 1,000 test images per dataset), with a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from . import _tfds
from ._idx import find_idx, idx_paths, load_idx
from ._sample import load_sample

__all__ = ["DATASETS", "SPLITS", "SOURCES", "ENV_VAR", "load", "canonical_name"]

ENV_VAR = "MEMJAX_DATA_DIR"
DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
SOURCES = ("auto", "idx", "tfds", "sample")
_ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


class SampleDataWarning(UserWarning):
    """`load` fell back to the small bundled sample instead of the full dataset."""


def canonical_name(name: str) -> str:
    """``"fashion_mnist"``/``"fmnist"`` -> ``"fashion-mnist"``; ValueError if unknown."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(
            f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)} "
            f"(aliases: {', '.join(k for k in _ALIASES if k not in DATASETS)})"
        )
    return _ALIASES[key]


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return split


def _check_limit(limit):
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise ValueError(f"limit must be None or an int >= 0; got {limit!r}")
    return int(limit)


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST as NumPy arrays.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (aliases ``"fashion_mnist"``,
            ``"fmnist"``).
        split: ``"train"`` or ``"test"``.
        data_dir: IDX folder (holding ``mnist/`` and/or ``fashion-mnist/``). Overrides
            ``$MEMJAX_DATA_DIR``; when given, the files must be there (no fallback).
            With ``source="tfds"`` it is the TFDS data dir instead (default
            ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        source: ``"auto"`` (IDX, then TFDS, then the bundled sample), or ``"idx"``,
            ``"tfds"``, ``"sample"`` to force one.
        limit: keep only the first ``limit`` examples (in file order).

    Returns:
        ``(images, labels)``: images uint8 ``[N, 28, 28]`` (0..255; see `normalize`
        for float32 in [0, 1]) and labels int32 ``[N]`` in 0..9.
    """
    name = canonical_name(name)
    split = _check_split(split)
    limit = _check_limit(limit)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")

    explicit = data_dir is not None
    env = os.environ.get(ENV_VAR)
    root = Path(data_dir) if explicit else (Path(env) if env else None)

    if source == "idx":
        if root is None:
            raise FileNotFoundError(
                f"source='idx' needs an IDX folder: pass data_dir= or set ${ENV_VAR}"
            )
        return load_idx(root, name, split, limit=limit)
    if source == "tfds":  # data_dir, if given, is the TFDS data dir here
        return _tfds.load_tfds(name, split, limit=limit, data_dir=data_dir)
    if source == "sample":
        return load_sample(name, split, limit=limit)

    # source == "auto"
    if explicit:
        return load_idx(root, name, split, limit=limit)  # no fallback
    looked = []
    if root is not None:
        if find_idx(root, name, split) is not None:
            return load_idx(root, name, split, limit=limit)
        looked = [str(p) for pair in idx_paths(root, name, split) for p in pair]
    why_not_tfds = _tfds.unavailable_reason(name)
    if why_not_tfds is None:
        return _tfds.load_tfds(name, split, limit=limit)
    warnings.warn(
        f"memjax.data.load({name!r}, {split!r}): using the small bundled sample "
        f"(2,000 train / 1,000 test images), not the full dataset. "
        + (f"No IDX files under ${ENV_VAR}={root}. " if looked else f"${ENV_VAR} is not set. ")
        + f"TFDS unusable: {why_not_tfds}. To get the full data, download the four IDX "
        f"files into DIR/{name}/ (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) and set "
        f"{ENV_VAR}=DIR or pass data_dir=DIR; or prepare it once with tensorflow-datasets "
        f"(tensorflow installed, file_format='array_record') "
        f"on a machine with internet.",
        SampleDataWarning,
        stacklevel=2,
    )
    return load_sample(name, split, limit=limit)
