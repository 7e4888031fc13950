"""The one loop (`run_epochs`): batch order, hooks, step counting, non-finite losses."""

import jax.numpy as jnp
import numpy as np
import pytest

from memjax.training import NonFiniteStateError, run_epochs
from memjax.training.loop import check_labels, epoch_permutation


def _sum_step(carry, xb, yb):
    """Carry = (sum of the samples seen, list of batches seen as index arrays)."""
    total, seen = carry
    seen = seen + [np.asarray(yb)]
    return (total + jnp.sum(xb), seen), jnp.mean(xb), {"n": jnp.asarray(len(xb), jnp.float32)}


def test_batches_follow_the_permutation_and_drop_the_remainder():
    x = np.arange(23, dtype=np.float32)
    y = np.arange(23)
    (total, seen) = run_epochs(
        (jnp.asarray(0.0), []),
        _sum_step,
        x,
        y,
        epochs=range(2),
        batch_size=5,
        order=lambda e: epoch_permutation(7, e, n=23),
    )
    assert len(seen) == 8 and all(len(b) == 5 for b in seen)
    for e in range(2):
        want = epoch_permutation(7, e, n=23)[:20].reshape(4, 5)
        np.testing.assert_array_equal(np.stack(seen[4 * e : 4 * e + 4]), want)
    assert float(total) == float(x[np.concatenate(seen)].sum())
    # The order depends on the seed words only.
    np.testing.assert_array_equal(epoch_permutation(7, 1, n=23), epoch_permutation(7, 1, n=23))
    assert not np.array_equal(epoch_permutation(7, 1, n=23), epoch_permutation(7, 2, n=23))


def test_hooks_run_in_order_and_may_replace_the_carry():
    x = np.ones(10, np.float32)
    calls = []

    def reset(r):
        calls.append(("reset", r.epoch, r.steps, len(r.losses)))
        return (jnp.asarray(100.0), r.carry[1])

    def look(r):
        calls.append(("look", r.epoch, float(r.carry[0]), r.aux_means()["n"]))

    total, _ = run_epochs(
        (jnp.asarray(0.0), []),
        _sum_step,
        x,
        np.zeros(10, int),
        epochs=range(1, 3),
        batch_size=4,
        order=lambda e: np.arange(10),
        on_epoch=[reset, look],
    )
    assert calls == [
        ("reset", 1, 2, 2),
        ("look", 1, 100.0, 4.0),
        ("reset", 2, 2, 2),
        ("look", 2, 100.0, 4.0),
    ]
    assert float(total) == 100.0


def test_non_finite_loss_names_epoch_and_step():
    x = np.ones(12, np.float32)
    x[7] = np.nan  # second batch of 4 in epoch order 0..11

    with pytest.raises(NonFiniteStateError, match=r"epoch 1, step 2 of 3 \(optimizer step 8\)"):
        run_epochs(
            (jnp.asarray(0.0), []),
            _sum_step,
            x,
            np.zeros(12, int),
            epochs=range(1),
            batch_size=4,
            order=lambda e: np.arange(12),
            step_offset=6,
        )
    seen = []
    run_epochs(
        (jnp.asarray(0.0), []),
        _sum_step,
        x,
        np.zeros(12, int),
        epochs=range(1),
        batch_size=4,
        order=lambda e: np.arange(12),
        on_nonfinite="skip",
        on_epoch=[lambda r: seen.append(r.skipped)],
    )
    assert seen == [1]
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        run_epochs(
            (0.0, []),
            _sum_step,
            x,
            x,
            epochs=range(1),
            batch_size=4,
            order=lambda e: np.arange(12),
            on_nonfinite="ignore",
        )


def test_check_labels():
    check_labels("t", np.array([0, 2, 1]), 3)
    with pytest.raises(ValueError, match=r"t: labels must be in \[0, 3\); got values from 0 to 3"):
        check_labels("t", np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="got values from -1"):
        check_labels("t", np.array([-1, 0]), None)
    with pytest.raises(ValueError, match="labels must be integers"):
        check_labels("t", np.array([0.0, 1.0]), 3)
