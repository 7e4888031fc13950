"""Timing shared by the benchmarks: the median of repeats, and interleaved rounds.

Under a shared, loaded CPU, functions timed one after another see different loads; timed
in interleaved rounds (each function once per round, in a fresh random order each round,
so that what ran just before, e.g. a memory-heavy step that evicts the caches, does not
bias one function) they see the same, and the per-round ratios are steadier than ratios
of separately taken medians.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import jax
import numpy as np

__all__ = ["timeit", "interleaved", "round_ratio", "load_avg"]


def timeit(fn, *args, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall time of ``fn(*args)`` (outputs blocked on), warm-up excluded.

    Returns ``{"first_s": first call incl. compile, "median_s": ..., "min_s": ...}``.
    """
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"first_s": first, "median_s": times[len(times) // 2], "min_s": times[0]}


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    *,
    warmup: int = 1,
    gap_s: float = 0.0,
    untimed_call: bool = False,
    min_sample_s: float = 0.0,
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[str, dict]:
    """Time the argument-free calls ``fns`` in ``rounds`` interleaved rounds.

    Each function is first called once (``first_s``, compile included) and ``warmup``
    more times; then every round times each function once, in a fresh random order.
    Before each sample: an idle gap of ``gap_s`` (so that worker threads of the previous
    call, e.g. PyTorch's OpenMP pool, have stopped spinning) and, with ``untimed_call``,
    one untimed call (CPU and thread-pool wake-up after the gap). A sample is the mean of
    ``n_inner`` back-to-back calls, chosen from the warm-up so that it lasts at least
    ``min_sample_s`` (1 to 50). Outputs are blocked on.

    Returns per function ``first_s``, ``median_s``, ``min_s``, ``n_inner`` and
    ``times_s`` (one per round, in round order: ratios per round line up).
    """
    first, inner = {}, {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        first[k] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(warmup):
            jax.block_until_ready(f())
        per = (time.perf_counter() - t0) / max(warmup, 1)
        inner[k] = max(1, min(50, int(np.ceil(min_sample_s / max(per, 1e-6)))))
    times: dict[str, list[float]] = {k: [] for k in fns}
    rng = np.random.default_rng(seed)
    keys = list(fns)
    for _ in (progress or iter)(range(rounds)):
        for i in rng.permutation(len(keys)):
            k = keys[i]
            if gap_s > 0:
                time.sleep(gap_s)
            if untimed_call:
                jax.block_until_ready(fns[k]())
            t0 = time.perf_counter()
            for _ in range(inner[k]):
                jax.block_until_ready(fns[k]())
            times[k].append((time.perf_counter() - t0) / inner[k])
    return {
        k: dict(
            first_s=first[k],
            median_s=float(np.median(times[k])),
            min_s=float(np.min(times[k])),
            n_inner=inner[k],
            times_s=[float(t) for t in times[k]],
        )
        for k in fns
    }


def round_ratio(res: dict[str, dict], a: str, b: str) -> float:
    """Median over rounds of the time of ``a`` over the time of ``b`` (same round)."""
    return float(np.median(np.asarray(res[a]["times_s"]) / np.asarray(res[b]["times_s"])))


def load_avg() -> dict[str, float]:
    """The machine's 1, 5 and 15 minute load averages."""
    a, b, c = os.getloadavg()
    return {"1min": a, "5min": b, "15min": c}
