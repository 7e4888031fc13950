"""The bundled sample: a small, class-stratified real subset shipped with the package.

Per dataset: 2,000 train images (200 per class) and 1,000 test images (100 per class),
drawn without replacement from the official IDX files by `tools/make_sample.py`
(NumPy ``default_rng(0)``), kept in their original order. Stored as
``_sample/<name>.npz`` with ``x_train, y_train, index_train, x_test, y_test,
index_test`` (``index_*`` = position in the full official split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_DIR", "sample_path", "load_sample"]

SAMPLE_DIR = Path(__file__).resolve().parent / "_sample"


def sample_path(name: str) -> Path:
    return SAMPLE_DIR / f"{name}.npz"


def load_sample(name: str, split: str, *, limit: int | None = None, return_index: bool = False):
    """Images uint8 ``[N, 28, 28]`` and labels int32 ``[N]`` from the bundled sample."""
    path = sample_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"bundled sample missing: {path} (broken install?)")
    with np.load(path) as z:
        x = z[f"x_{split}"][:limit]
        y = z[f"y_{split}"][:limit].astype(np.int32)
        idx = z[f"index_{split}"][:limit]
    return (x, y, idx) if return_index else (x, y)
