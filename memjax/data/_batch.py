"""Minibatches of an in-memory dataset, deterministic given a seed or a JAX key."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np

from .._validation import check_int, is_int

__all__ = ["batches", "num_batches"]


def num_batches(n: int, batch_size: int, drop_last: bool = True) -> int:
    """How many batches `batches` yields for `n` examples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def _permutation(n: int, seed) -> np.ndarray:
    if seed is None:
        raise ValueError("batches: shuffle=True needs a seed (int) or a JAX PRNG key")
    if is_int(seed):
        return np.random.default_rng(int(seed)).permutation(n)
    return np.asarray(jax.random.permutation(seed, n))  # a JAX key


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int | jax.Array | None = None,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x[idx], y[idx])`` minibatches (NumPy) covering the data once.

    Args:
        x, y: arrays with the same leading length ``N``.
        batch_size: examples per batch (>= 1).
        seed: int (NumPy ``default_rng``) or JAX key; fixes the order. Required if
            ``shuffle``; ignored otherwise.
        shuffle: visit examples in a random permutation (else in order).
        drop_last: drop the final partial batch (so every batch has ``batch_size``
            examples and a jitted step compiles once).

    A new order each epoch: ``batches(x, y, B, jax.random.fold_in(key, epoch))``.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"batches: x and y lengths differ ({n} vs {len(y)})")
    check_int("batches: batch_size", batch_size, 1)
    order = _permutation(n, seed) if shuffle else np.arange(n)
    for b in range(num_batches(n, int(batch_size), drop_last)):
        idx = order[b * batch_size : (b + 1) * batch_size]
        yield x[idx], y[idx]
