"""`load`: one entry point for MNIST / Fashion-MNIST, whatever the source.

Sources, tried in this order by ``source="auto"``:

1. IDX folder: ``data_dir`` if given, else ``$MEMJAX_DATA_DIR``
   (``DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``, same for
   ``DIR/fashion-mnist``). An explicit ``data_dir`` that lacks the files raises
   `FileNotFoundError`; it never falls back.
2. The download cache (``$XDG_CACHE_HOME/memjax``, see :mod:`._download`), if it
   already holds the files.
3. tensorflow-datasets, if the dataset is already prepared in the TFDS data dir.
4. A download of the official IDX files into the cache (unless ``download=False``,
   ``$MEMJAX_NO_DOWNLOAD`` or ``$MEMJAX_OFFLINE``).
5. tensorflow-datasets preparing the dataset itself, when TensorFlow is installed and
   a 2 s connect to the download host succeeds.
6. The bundled sample (2,000 train / 1,000 test images per dataset), with a warning.

Every load records where its data came from: :func:`last_source` and
:func:`loaded_sources` (for the ``config`` of benchmark results).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .._validation import check_int
from . import _download, _tfds
from ._idx import find_idx, idx_paths, load_idx
from ._sample import load_sample

__all__ = [
    "DATASETS",
    "SPLITS",
    "SOURCES",
    "ENV_VAR",
    "load",
    "canonical_name",
    "last_source",
    "loaded_sources",
    "clear_sources",
]

ENV_VAR = "MEMJAX_DATA_DIR"
DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
SOURCES = ("auto", "idx", "download", "tfds", "sample")
_ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


class SampleDataWarning(UserWarning):
    """`load` fell back to the small bundled sample instead of the full dataset."""


_LOADED: list[dict] = []


def _record(result, name: str, split: str, kind: str, path) -> tuple[np.ndarray, np.ndarray]:
    _LOADED.append(
        {
            "dataset": name,
            "split": split,
            "source": kind,
            "path": None if path is None else str(Path(path).resolve()),
            "n": int(len(result[1])),
        }
    )
    return result


def last_source() -> dict | None:
    """Where the most recent `load` took its data: ``{"dataset", "split", "source",
    "path", "n"}`` with ``source`` one of ``"idx"`` (``path``: the IDX folder),
    ``"download"`` (``path``: the download cache folder), ``"tfds"`` (``path``: the
    TFDS data dir) or ``"sample"`` (``path``: None); None before any load."""
    return dict(_LOADED[-1]) if _LOADED else None


def loaded_sources() -> list[dict]:
    """Every load of this process since the last :func:`clear_sources`, oldest first,
    each as :func:`last_source` describes it (duplicates removed)."""
    out: list[dict] = []
    for rec in _LOADED:
        if rec not in out:
            out.append(dict(rec))
    return out


def clear_sources() -> None:
    """Forget the recorded loads (e.g. at the start of a benchmark)."""
    _LOADED.clear()


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
    check_int("load: limit", limit, 0)
    return int(limit)


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    limit: int | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST as NumPy arrays.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (aliases ``"fashion_mnist"``,
            ``"fmnist"``).
        split: ``"train"`` or ``"test"``.
        data_dir: IDX folder (holding ``mnist/`` and/or ``fashion-mnist/``). Overrides
            ``$MEMJAX_DATA_DIR``; when given, the files must be there (no fallback).
            With ``source="tfds"`` it is the TFDS data dir instead (default
            ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); with
            ``source="download"`` the cache folder.
        source: ``"auto"`` (see the module docstring for the order), or ``"idx"``,
            ``"download"`` (the cache, downloading what is missing), ``"tfds"``,
            ``"sample"`` to force one.
        limit: keep only the first ``limit`` examples (in file order).
        download: allow ``source="auto"`` to download (the environment variables
            ``MEMJAX_NO_DOWNLOAD`` / ``MEMJAX_OFFLINE`` also turn it off).

    Returns:
        ``(images, labels)``: images uint8 ``[N, 28, 28]`` (0..255; see `normalize`
        for float32 in [0, 1]) and labels int32 ``[N]`` in 0..9. Where they came from
        is recorded: :func:`last_source`.
    """
    name = canonical_name(name)
    split = _check_split(split)
    limit = _check_limit(limit)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    rec = lambda result, kind, path: _record(result, name, split, kind, path)

    explicit = data_dir is not None
    env = os.environ.get(ENV_VAR)
    root = Path(data_dir) if data_dir is not None else (Path(env) if env else None)

    if source == "idx":
        if root is None:
            raise FileNotFoundError(
                f"source='idx' needs an IDX folder: pass data_dir= or set ${ENV_VAR}"
            )
        return rec(load_idx(root, name, split, limit=limit), "idx", root)
    if source == "download":
        cache = _download.download(name, split, root=data_dir)
        return rec(load_idx(cache, name, split, limit=limit), "download", cache)
    if source == "tfds":  # data_dir, if given, is the TFDS data dir here
        result = _tfds.load_tfds(name, split, limit=limit, data_dir=data_dir)
        return rec(result, "tfds", data_dir or _tfds.tfds_data_dir())
    if source == "sample":
        return rec(load_sample(name, split, limit=limit), "sample", None)

    # source == "auto"
    if explicit and root is not None:
        return rec(load_idx(root, name, split, limit=limit), "idx", root)  # no fallback
    looked = []
    if root is not None:
        if find_idx(root, name, split) is not None:
            return rec(load_idx(root, name, split, limit=limit), "idx", root)
        looked = [str(p) for pair in idx_paths(root, name, split) for p in pair]
    cached = _download.cached(name, split)
    if cached is not None:
        return rec(load_idx(cached, name, split, limit=limit), "download", cached)
    if _tfds.prepared(name):
        return rec(_tfds.load_tfds(name, split, limit=limit), "tfds", _tfds.tfds_data_dir())
    why_not_download = _download.downloads_disabled() or (None if download else "download=False")
    if why_not_download is None:
        try:
            cache = _download.download(name, split)
            return rec(load_idx(cache, name, split, limit=limit), "download", cache)
        except _download.DownloadError as e:
            why_not_download = str(e)
    why_not_tfds = _tfds.unavailable_reason(name)
    if why_not_tfds is None:
        return rec(_tfds.load_tfds(name, split, limit=limit), "tfds", _tfds.tfds_data_dir())
    warnings.warn(
        f"memjax.data.load({name!r}, {split!r}): using the small bundled sample "
        f"(2,000 train / 1,000 test images), not the full dataset. "
        + (f"No IDX files under ${ENV_VAR}={root}. " if looked else f"${ENV_VAR} is not set. ")
        + f"Download unusable: {why_not_download}. "
        + f"TFDS unusable: {why_not_tfds}. To get the full data, run "
        f"memjax.data.load({name!r}, {split!r}) once with internet access (it downloads "
        f"the official IDX files into {_download.cache_dir()}), or download the four IDX "
        f"files into DIR/{name}/ (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) and set "
        f"{ENV_VAR}=DIR or pass data_dir=DIR; or prepare it once with tensorflow-datasets "
        f"(tensorflow installed, file_format='array_record').",
        SampleDataWarning,
        stacklevel=2,
    )
    return rec(load_sample(name, split, limit=limit), "sample", None)
