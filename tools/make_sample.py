"""Build the bundled sample ``memjax/data/_sample/{mnist,fashion-mnist}.npz``.

A development script, not part of the installed package. Usage (from the repository
root, ``DATA_DIR`` holding the official MNIST and Fashion-MNIST IDX files)::

    python tools/make_sample.py DATA_DIR [OUT_DIR]

For each dataset and split, draws a class-stratified subset without replacement from the
full official IDX files: 200 images per class from train (2,000) and 100 per class from
test (1,000), using ``numpy.random.default_rng(SEED)`` with one generator per
(dataset, split) so the draw is deterministic and independent of the order of the
loop. The chosen indices are sorted (original order kept) and stored beside the
images as ``index_train`` / ``index_test``. Output is ``np.savez_compressed``.
Re-running it on the same IDX files gives byte-identical arrays.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from memjax.data._idx import load_idx
from memjax.data._sample import SAMPLE_DIR

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder of the official MNIST / Fashion-MNIST IDX files")
    parser.add_argument(
        "out_dir",
        nargs="?",
        default=str(SAMPLE_DIR),
        help="where to write the .npz files (default: the package's _sample/)",
    )
    args = parser.parse_args(argv)
    for p in make_sample(args.data_dir, args.out_dir):
        print(p, p.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
