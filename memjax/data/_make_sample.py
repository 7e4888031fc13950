"""Build the bundled sample ``memjax/data/_sample/{mnist,fashion-mnist}.npz``.

Usage (from the repository root)::

    python -m memjax.data._make_sample /work/shared/datasets

For each dataset and split, draws a class-stratified subset without replacement from the
full official IDX files: 200 images per class from train (2,000) and 100 per class from
test (1,000), using ``numpy.random.default_rng(SEED)`` with one generator per
(dataset, split) so the draw is deterministic and independent of the order of the
loop. The chosen indices are sorted (original order kept) and stored beside the
images as ``index_train`` / ``index_test``. Output is ``np.savez_compressed``.
Re-running it on the same IDX files gives byte-identical arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ._idx import load_idx
from ._sample import SAMPLE_DIR

SEED = 0
PER_CLASS = {"train": 200, "test": 100}
NAMES = ("mnist", "fashion-mnist")


def stratified_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices with exactly `per_class` items of each class in `labels`."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int32)


def make_sample(data_dir: str | Path, out_dir: str | Path = SAMPLE_DIR) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for k, name in enumerate(NAMES):
        arrays = {}
        for j, split in enumerate(("train", "test")):
            x, y = load_idx(data_dir, name, split)
            idx = stratified_indices(y, PER_CLASS[split], seed=SEED + 10 * k + j)
            arrays[f"x_{split}"] = x[idx]
            arrays[f"y_{split}"] = y[idx].astype(np.uint8)
            arrays[f"index_{split}"] = idx
        path = out_dir / f"{name}.npz"
        np.savez_compressed(path, **arrays)
        written.append(path)
    return written


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets"
    for p in make_sample(src):
        print(p, p.stat().st_size, "bytes")
