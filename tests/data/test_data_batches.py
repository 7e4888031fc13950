"""Minibatching: coverage, determinism, drop_last."""

import jax
import numpy as np
import pytest

from memjax.data import batches, num_batches


@pytest.fixture
def xy():
    x = np.arange(103 * 4).reshape(103, 4)
    return x, x[:, 0] // 4


def test_deterministic_and_seed_dependent(xy):
    a = [b[1] for b in batches(*xy, 10, 3)]
    b = [b[1] for b in batches(*xy, 10, 3)]
    c = [b[1] for b in batches(*xy, 10, 4)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_jax_key(xy):
    key = jax.random.key(0)
    a = np.concatenate([b[1] for b in batches(*xy, 16, key, drop_last=False)])
    b = np.concatenate([b[1] for b in batches(*xy, 16, key, drop_last=False)])
    np.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == sorted(xy[1].tolist())


def test_drop_last_and_pairs(xy):
    x, y = xy
    out = list(batches(x, y, 10, 0))
    assert len(out) == num_batches(103, 10) == 10
    assert all(bx.shape == (10, 4) for bx, _ in out)
    seen = np.concatenate([bx[:, 0] for bx, _ in out])
    assert len(set(seen.tolist())) == 100  # no repeats
    for bx, by in out:  # rows stay paired with their labels
        np.testing.assert_array_equal(by, bx[:, 0] // 4)
    out = list(batches(x, y, 10, 0, drop_last=False))
    assert len(out) == num_batches(103, 10, drop_last=False) == 11
    assert out[-1][0].shape == (3, 4)


def test_no_shuffle_in_order(xy):
    x, y = xy
    got = np.concatenate([bx for bx, _ in batches(x, y, 25, shuffle=False, drop_last=False)])
    np.testing.assert_array_equal(got, x)


def test_errors(xy):
    x, y = xy
    with pytest.raises(ValueError, match="needs a seed"):
        next(batches(x, y, 10))
    with pytest.raises(ValueError, match="lengths differ"):
        next(batches(x, y[:5], 10, 0))
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(x, y, 0, 0))
