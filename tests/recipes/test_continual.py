"""Continual training of the metaplastic network (`memjax.recipes.train_continual`):
level-change counts, resume, per-task optimizer state and BN slots, m, m_scale, adam_eps."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import tree_allclose

from memjax.learning.metaplastic import metaplastic_adam
from memjax.models.metaplastic import MetaplasticMLP, evaluate_task
from memjax.recipes import Task, train_continual


def test_bad_m(getkey):
    with pytest.raises(ValueError, match="m must be"):
        model = MetaplasticMLP((4, 2), 2, key=getkey())
        t = Task(
            "a",
            np.zeros((10, 4), np.float32),
            np.zeros(10, int),
            np.zeros((2, 4)),
            np.zeros(2, int),
        )
        train_continual(model, [t], m=-1.0, epochs=1, batch_size=5)


def test_train_continual_counts_and_learns(getkey):
    """Two tiny separable tasks: the counts equal the level changes replayed by hand."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(200, 6)).astype(np.float32)
    ya = (x[:, 0] > x[:, 1]).astype(np.int32)
    yb = (x[:, 2] > x[:, 3]).astype(np.int32)
    tasks = [Task("a", x, ya, x, ya), Task("b", x, yb, x, yb)]
    model = MetaplasticMLP((6, 32, 2), 3, n_tasks=2, key=getkey())
    snaps = [np.concatenate([np.asarray(l).ravel() for l in model.levels()])]
    changes = []

    def on_epoch(m, t, e):
        snaps.append(np.concatenate([np.asarray(l).ravel() for l in m.levels()]))

    trained, hist = train_continual(
        model, tasks, m=1.0, epochs=2, batch_size=50, on_epoch=on_epoch, learning_rate=0.02
    )
    counts = np.concatenate([c.ravel() for c in hist["counts"]])
    # Each epoch-to-epoch level difference needs at least one counted change.
    for a, b in zip(snaps[:-1], snaps[1:]):
        changes.append(a != b)
    assert np.all(counts >= np.sum(changes, axis=0))
    assert len(hist["acc"]) == 4 and hist["task"] == [0, 0, 1, 1]
    assert hist["acc"][1][0] > 0.7  # task a learned
    assert evaluate_task(trained, x, yb, 1) == hist["final_acc"][1]


def _two_tasks(seed):
    """Two small binary tasks on the same inputs (120 train, the first 40 as test)."""
    x = np.random.default_rng(seed).uniform(size=(120, 6)).astype(np.float32)
    ya = (x[:, 0] > x[:, 1]).astype(np.int32)
    yb = (x[:, 2] > x[:, 3]).astype(np.int32)
    return [Task("a", x, ya, x[:40], ya[:40]), Task("b", x, yb, x[:40], yb[:40])]


@pytest.mark.parametrize("affine", [False, True])
def test_train_continual_resume_equals_uninterrupted(getkey, tmp_path, affine):
    """Interrupted mid-task (optimizer state, counters, EWC anchors in the checkpoint),
    a resumed run returns what the uninterrupted run returns."""
    tasks = _two_tasks(1)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, bn_affine=affine, key=getkey())
    tx = metaplastic_adam(0.02, 1.0, 3)  # one transformation: one compilation for all runs
    kw = dict(epochs=2, batch_size=40, optimizer=lambda: tx, ewc_lambda=10.0, ewc_samples=40)
    straight, h1 = train_continual(model, tasks, **kw)

    class Stop(Exception):
        pass

    def stop(m, t, e):
        if (t, e) == (1, 1):
            raise Stop

    with pytest.raises(Stop):
        train_continual(model, tasks, checkpoint_dir=tmp_path, on_epoch=stop, **kw)
    resumed, h2 = train_continual(model, tasks, checkpoint_dir=tmp_path, **kw)
    assert tree_allclose(straight, resumed, rtol=0, atol=0)
    assert h2["acc"] == h1["acc"] and h2["task"] == h1["task"] and h2["loss"] == h1["loss"]
    for a, b in zip(h1["counts"], h2["counts"]):
        np.testing.assert_array_equal(a, b)
    # Nothing left to do: the saved final state comes back unchanged.
    again, h3 = train_continual(model, tasks, checkpoint_dir=tmp_path, **kw)
    assert h3["acc"] == h1["acc"]
    np.testing.assert_array_equal(np.asarray(again.weights[0]), np.asarray(straight.weights[0]))


@pytest.mark.parametrize("affine", [False, True])
def test_train_continual_optimizer_carried_over_and_resumed_at_task_boundary(
    getkey, tmp_path, affine
):
    """reset_optimizer=False keeps Adam's moments across tasks (a different run from the
    reset one), and an interruption at the task boundary resumes with them."""
    tasks = _two_tasks(2)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, bn_affine=affine, key=getkey())
    tx = metaplastic_adam(0.02, 1.0, 3)
    kw = dict(epochs=2, batch_size=40, optimizer=lambda: tx)
    reset, _ = train_continual(model, tasks, **kw)
    carried, h1 = train_continual(model, tasks, reset_optimizer=False, **kw)
    assert not np.array_equal(np.asarray(reset.weights[0]), np.asarray(carried.weights[0]))

    class Stop(Exception):
        pass

    def stop(m, t, e):
        if (t, e) == (0, 1):  # the last epoch of the first task
            raise Stop

    with pytest.raises(Stop):
        train_continual(
            model, tasks, checkpoint_dir=tmp_path, on_epoch=stop, reset_optimizer=False, **kw
        )
    resumed, h2 = train_continual(
        model, tasks, checkpoint_dir=tmp_path, reset_optimizer=False, **kw
    )
    assert tree_allclose(carried, resumed, rtol=0, atol=0)
    assert h2["loss"] == h1["loss"]


@pytest.mark.parametrize("reset", [True, False])
def test_affine_bn_slot_per_task(getkey, reset):
    """Task t trains slot t only (also when Adam's momentum is carried over), starting
    from slot t - 1 as the authors' affine BN, whose state they save per task."""
    tasks = _two_tasks(3)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, bn_affine=True, key=getkey())
    seen = {}

    def on_epoch(m, t, e):
        seen[t, e] = m

    final, _ = train_continual(
        model,
        tasks,
        m=1.0,
        epochs=[6, 1],
        batch_size=40,
        learning_rate=0.05,
        reset_optimizer=reset,
        on_epoch=on_epoch,
    )
    end_a = seen[0, 5]
    for l in range(2):
        for a, b, a0 in (
            (final.bn_scale[l], end_a.bn_scale[l], model.bn_scale[l]),
            (final.bn_shift[l], end_a.bn_shift[l], model.bn_shift[l]),
        ):
            np.testing.assert_array_equal(a[0], b[0])  # task a's slot is kept
            np.testing.assert_array_equal(b[1], a0[1])  # slot b untouched during task a
            assert not np.array_equal(a[1], b[0])  # task b trained its own slot ...
            # ... from task a's values: one epoch (3 steps) away from them, while task a
            # moved its slot over 18 steps.
            assert np.abs(a[1] - b[0]).mean() < np.abs(b[0] - a0[0]).mean()


def test_train_continual_m_per_task(getkey):
    """``m`` given per task: task t trains with its own m. [m, m] is the scalar run bit
    for bit; [0, 2] trains task a as plain Adam (= m = 0) and then task b as m = 2 from
    that state (the same as m = 2 throughout only if task a's m did not matter)."""
    tasks = _two_tasks(4)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, key=getkey())
    kw = dict(epochs=2, batch_size=40, learning_rate=0.05, reset_optimizer=False)
    seen = {}

    def snap(tag):
        def on_epoch(m, t, e):
            seen[tag, t, e] = m

        return on_epoch

    scalar, _ = train_continual(model, tasks, m=2.0, **kw)
    listed, _ = train_continual(model, tasks, m=[2.0, 2.0], **kw)
    assert tree_allclose(scalar, listed, rtol=0, atol=0)
    _, _ = train_continual(model, tasks, m=0.0, on_epoch=snap("adam"), **kw)
    sched, _ = train_continual(model, tasks, m=[0.0, 2.0], on_epoch=snap("sched"), **kw)
    np.testing.assert_array_equal(
        np.asarray(seen["adam", 0, 1].weights[0]), np.asarray(seen["sched", 0, 1].weights[0])
    )
    assert not np.array_equal(
        np.asarray(seen["adam", 1, 1].weights[0]), np.asarray(sched.weights[0])
    )
    # The same as a schedule of the update count (task a: 2 epochs x 3 steps), which
    # carries over with the optimizer state.
    warmup = optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(2.0)], [6])
    by_count, _ = train_continual(model, tasks, m=warmup, **kw)
    assert tree_allclose(by_count, sched, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="per task"):
        train_continual(model, tasks, m=[1.0, 1.0, 1.0], **kw)
    with pytest.raises(ValueError, match="m must be finite and >= 0"):
        train_continual(model, tasks, m=[1.0, -1.0], **kw)


def test_train_continual_m_scale_per_layer(getkey):
    """``m_scale`` (one factor per layer): (1, 1) is the plain run bit for bit; (0, 0)
    is plain Adam (m = 0); (1, 3) differs; bad lengths, values or a custom optimizer
    get a named error."""
    tasks = _two_tasks(4)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, key=getkey())
    kw = dict(
        epochs=2, batch_size=40, learning_rate=0.05, reset_optimizer=False, eval_every_epoch=False
    )
    plain, _ = train_continual(model, tasks, m=2.0, **kw)
    ones, _ = train_continual(model, tasks, m=2.0, m_scale=(1.0, 1.0), **kw)
    zeros, _ = train_continual(model, tasks, m=2.0, m_scale=(0.0, 0.0), **kw)
    adam, _ = train_continual(model, tasks, m=0.0, **kw)
    scaled, _ = train_continual(model, tasks, m=2.0, m_scale=(1.0, 3.0), **kw)
    assert tree_allclose(plain, ones, rtol=0, atol=0)
    assert tree_allclose(adam, zeros, rtol=0, atol=0)
    assert not np.array_equal(np.asarray(plain.weights[1]), np.asarray(scaled.weights[1]))
    with pytest.raises(ValueError, match="one factor per layer"):
        train_continual(model, tasks, m=1.0, m_scale=(1.0,), **kw)
    with pytest.raises(ValueError, match="m_scale must be finite and >= 0"):
        train_continual(model, tasks, m=1.0, m_scale=(1.0, -1.0), **kw)
    with pytest.raises(ValueError, match="default optimizer"):
        train_continual(
            model, tasks, m=1.0, m_scale=(1.0, 1.0), optimizer=lambda: optax.adam(0.01), **kw
        )


def test_train_continual_adam_eps(getkey):
    """``adam_eps`` is Adam's eps of the hidden weights: the run equals one with
    ``optimizer=metaplastic_adam(lr, m, k, eps=adam_eps)`` bit for bit, and a large eps
    slows weights whose gradients are small against it (they move less)."""
    tasks = _two_tasks(5)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, init="boundary", key=getkey())
    kw = dict(epochs=2, batch_size=40, learning_rate=0.05, eval_every_epoch=False)
    got, _ = train_continual(model, tasks, m=2.0, adam_eps=1e-3, **kw)
    ref, _ = train_continual(
        model, tasks, m=2.0, **kw, optimizer=lambda: metaplastic_adam(0.05, 2.0, 3, eps=1e-3)
    )
    assert tree_allclose(got, ref, rtol=0, atol=0)
    default, _ = train_continual(model, tasks, m=2.0, **kw)
    explicit, _ = train_continual(model, tasks, m=2.0, adam_eps=1e-8, **kw)
    assert tree_allclose(default, explicit, rtol=0, atol=0)
    slow, _ = train_continual(model, tasks, m=2.0, adam_eps=10.0, **kw)

    def moved(m):
        return sum(float(jnp.abs(a - b).sum()) for a, b in zip(m.weights, model.weights))

    assert moved(slow) < 0.1 * moved(default)
    for bad in (-1e-3, float("nan"), "1e-5", True):
        with pytest.raises(ValueError, match="adam_eps must be a finite number >= 0"):
            train_continual(model, tasks, m=1.0, adam_eps=bad, **kw)
    with pytest.raises(ValueError, match="default optimizer"):
        train_continual(
            model, tasks, m=1.0, adam_eps=1e-5, optimizer=lambda: optax.adam(0.01), **kw
        )


def test_train_continual_resume_of_another_run_raises(getkey, tmp_path):
    """A checkpoint of another seed, data or setting is never resumed silently."""
    from memjax.training import CheckpointMismatchError

    tasks = _two_tasks(3)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, key=getkey())
    tx = metaplastic_adam(0.02, 1.0, 3)
    kw = dict(epochs=1, batch_size=40, optimizer=lambda: tx)
    train_continual(model, tasks, checkpoint_dir=tmp_path, **kw)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)another run.*seed:"):
        train_continual(model, tasks, checkpoint_dir=tmp_path, seed=1, **kw)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)another run.*data\.1\.b\.train:"):
        train_continual(model, [tasks[0], _two_tasks(4)[1]], checkpoint_dir=tmp_path, **kw)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)settings\.ewc_lambda:"):
        train_continual(model, tasks, checkpoint_dir=tmp_path, ewc_lambda=1.0, **kw)
    # Starting afresh on request gives the uninterrupted result of the new run.
    with pytest.warns(RuntimeWarning, match="moved checkpoint step"):
        got, _ = train_continual(
            model, tasks, checkpoint_dir=tmp_path, seed=1, on_mismatch="restart", **kw
        )
    want, _ = train_continual(model, tasks, seed=1, **kw)
    assert tree_allclose(got, want, rtol=0, atol=0)


def test_train_continual_rejects_labels_outside_the_outputs(getkey):
    tasks = _two_tasks(5)
    bad = tasks[1]._replace(y_train=np.where(np.arange(120) == 3, 2, tasks[1].y_train))
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, key=getkey())
    with pytest.raises(ValueError, match=r"task 'b' labels must be integers in \[0, 2\)"):
        train_continual(model, [tasks[0], bad], epochs=1, batch_size=40)
