"""IDX files (the original MNIST / Fashion-MNIST format), parsed with NumPy only.

Layout (LeCun et al., "The MNIST database", http://yann.lecun.com/exdb/mnist/): a
big-endian header ``magic, dim_0, ..., dim_{k-1}`` (4-byte unsigned integers) then the
``prod(dims)`` data bytes. The magic number is ``0x0000 <type> <k>``; the files here are
unsigned bytes (type ``0x08``), so images have magic 2051 (k = 3: count, 28, 28) and
labels 2049 (k = 1: count). Files may be gzip-compressed (detected from their first
bytes, whatever their suffix).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "idx_paths", "load_idx"]

IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dims
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dim
N_CLASSES = 10

# Folder names accepted under the data directory, canonical name first.
_FOLDERS = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist")}
_PREFIX = {"train": "train", "test": "t10k"}


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic, truncated, inconsistent sizes or labels)."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({e})") from e
    return raw


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Parse one uint8 IDX file (plain or gzip) and return its array.

    Raises `IDXFormatError` naming `path` if the magic number is not `magic`, the
    header is short, or the data length differs from the product of the dimensions.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: file too short for an IDX header ({len(raw)} bytes)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        kind = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(magic, "IDX")
        raise IDXFormatError(
            f"{path}: bad magic number {got} (0x{got:08x}); expected {magic} "
            f"(0x{magic:08x}) for a uint8 {kind} file"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(
            f"{path}: truncated header ({len(raw)} bytes; need {header} for {ndim} dims)"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    have = len(raw) - header
    if have != expected:
        what = "truncated" if have < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{path}: data {what}: header dims {dims} need {expected} bytes, file has {have}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_paths(root: str | os.PathLike, name: str, split: str) -> list[tuple[Path, Path]]:
    """Candidate (images, labels) paths for `name`/`split` under `root`, in search order."""
    root = Path(root)
    prefix = _PREFIX[split]
    out = []
    for folder in _FOLDERS[name]:
        for suffix in (".gz", ""):
            out.append(
                (
                    root / folder / f"{prefix}-images-idx3-ubyte{suffix}",
                    root / folder / f"{prefix}-labels-idx1-ubyte{suffix}",
                )
            )
    return out


def find_idx(root: str | os.PathLike, name: str, split: str) -> tuple[Path, Path] | None:
    """The first existing (images, labels) pair, each found as .gz or plain; else None."""
    cands = idx_paths(root, name, split)
    # Images and labels are found independently (one may be gzipped, the other not),
    # but within the same dataset folder.
    for folder in _FOLDERS[name]:
        imgs = [p for p, _ in cands if p.parent.name == folder and p.is_file()]
        labs = [q for _, q in cands if q.parent.name == folder and q.is_file()]
        if imgs and labs:
            return imgs[0], labs[0]
    return None


def load_idx(
    root: str | os.PathLike, name: str, split: str, *, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, 28, 28]`` and labels int32 ``[N]`` from an IDX data folder.

    Raises `FileNotFoundError` naming every path looked for, or `IDXFormatError`
    naming the file that is malformed.
    """
    found = find_idx(root, name, split)
    if found is None:
        looked = [str(p) for pair in idx_paths(root, name, split) for p in pair]
        raise FileNotFoundError(
            f"no IDX files for {name!r} split {split!r} under {root}; looked for:\n  "
            + "\n  ".join(looked)
        )
    img_path, lab_path = found
    images = read_idx(img_path, IMAGES_MAGIC)
    labels = read_idx(lab_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(
            f"{img_path}: images are {images.shape[1]}x{images.shape[2]}; expected 28x28"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise IDXFormatError(
            f"{lab_path}: label {int(labels.max())} out of range 0..{N_CLASSES - 1}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    # Copy: frombuffer views are read-only and would pin the whole decompressed buffer.
    return np.array(images, dtype=np.uint8), labels.astype(np.int32)
