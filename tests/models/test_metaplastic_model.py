"""Metaplastic BNN/QNN: forward pass, BN statistics, reprogram-on-change, memory formula."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memjax.devices.rram import MultiLevelRRAM
from memjax.learning.metaplastic import metaplastic_adam
from memjax.models.metaplastic import (
    MetaplasticMLP,
    Task,
    calibrate_bn,
    conductance_weights,
    evaluate_task,
    level_conductances,
    memory_bits,
    memory_reduction,
    program_levels,
    train_continual,
)


def _np_forward(model, x, task):
    """NumPy transcription of the forward pass with inference statistics."""
    h = np.asarray(x, np.float64)
    L = len(model.weights)
    for l, w in enumerate(model.weights):
        w = np.asarray(w, np.float64)
        if model.n_levels == 2:
            q = np.where(w >= 0, 1.0, -1.0) * model.w_max
        else:
            levels = np.linspace(-model.w_max, model.w_max, model.n_levels)
            q = levels[np.argmin(np.abs(w[..., None] - levels), -1)]
        z = h @ q
        z = (z - np.asarray(model.bn_mean[l][task])) / np.sqrt(
            np.asarray(model.bn_var[l][task]) + model.bn_eps
        )
        if model.bn_affine:
            z = z * np.asarray(model.bn_scale[l][task]) + np.asarray(model.bn_shift[l][task])
        if l < L - 1:
            h = np.where(z >= 0, 1.0, -1.0) if model.activation == "sign" else np.clip(z, -1, 1)
        else:
            h = z * model.logit_scale
    return h


@pytest.mark.parametrize("k, act, affine", [(2, "sign", False), (5, "hardtanh", False),
                                            (3, "sign", True)])
def test_forward_matches_numpy(getkey, k, act, affine):
    model = MetaplasticMLP((12, 9, 4), k, n_tasks=2, key=getkey(), logit_scale=2.0,
                           activation=act, bn_affine=affine)
    model = eqx.tree_at(
        lambda m: (m.bn_mean[0], m.bn_var[0]),
        model,
        (jax.random.normal(getkey(), (2, 9)), 1 + jax.random.uniform(getkey(), (2, 9))),
    )
    if affine:
        model = eqx.tree_at(
            lambda m: (m.bn_scale, m.bn_shift), model,
            (tuple(jax.random.uniform(getkey(), a.shape, minval=0.5) for a in model.bn_scale),
             tuple(jax.random.normal(getkey(), a.shape) for a in model.bn_shift)))
    x = jax.random.uniform(getkey(), (6, 12))
    for task in (0, 1):
        np.testing.assert_allclose(model(x, task), _np_forward(model, x, task), rtol=1e-4,
                                   atol=1e-4)


def test_first_layer_input_real_and_weights_quantised(getkey):
    model = MetaplasticMLP((5, 3, 2), 3, key=getkey())
    qs = model.quantized_weights()
    assert set(np.unique(np.asarray(qs[0]))) <= {-1.0, 0.0, 1.0}
    # A change of a real input changes the first layer's pre-activation continuously.
    x = jnp.full((1, 5), 0.3)
    z1 = model.preactivations(x, 0)
    z2 = model.preactivations(x.at[0, 0].add(0.01), 0)
    np.testing.assert_allclose(z2 - z1, 0.01 * qs[0][0][None], atol=1e-6)


def test_calibrate_bn_is_population_statistics(getkey):
    model = MetaplasticMLP((8, 6, 3), 2, n_tasks=2, key=getkey())
    x = jax.random.uniform(getkey(), (50, 8))
    cal = calibrate_bn(model, np.asarray(x), 1, batch_size=16)
    z0 = np.asarray(x) @ np.asarray(model.quantized_weights()[0])
    np.testing.assert_allclose(cal.bn_mean[0][1], z0.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cal.bn_var[0][1], z0.var(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(cal.bn_mean[0][0], 0.0)  # other task's slot untouched
    h = np.where((z0 - z0.mean(0)) / np.sqrt(z0.var(0) + 1e-5) >= 0, 1.0, -1.0)
    z1 = h @ np.asarray(model.quantized_weights()[1])
    np.testing.assert_allclose(cal.bn_mean[1][1], z1.mean(0), rtol=1e-4, atol=1e-4)


def test_shared_bn_uses_one_slot(getkey):
    model = MetaplasticMLP((8, 4, 3), 2, n_tasks=3, bn="shared", key=getkey())
    assert model.n_slots == 1 and model.slot(2) == 0


def test_offset_mapping_roundtrip():
    dev = MultiLevelRRAM(n_levels=5)
    j = jnp.arange(5)
    G = level_conductances(dev, j, 5)
    np.testing.assert_allclose(G, dev.levels(), rtol=1e-6)
    np.testing.assert_allclose(conductance_weights(dev, G, 1.0), [-1, -0.5, 0, 0.5, 1], atol=1e-6)


def test_program_only_changed_levels(getkey):
    dev = MultiLevelRRAM(n_levels=4, write_sigma=0.0)
    state = dev.sample_devices(getkey(), (3, 4))
    lv0 = jnp.array([[0, 1, 2, 3]] * 3)
    state, written = program_levels(dev, getkey(), state, lv0, None, 4)
    np.testing.assert_array_equal(written, 1)
    np.testing.assert_allclose(state.G, level_conductances(dev, lv0, 4), rtol=1e-6)
    p0 = np.asarray(state.pulses).copy()
    lv1 = lv0.at[1, 2].set(0).at[2, 0].set(3)
    state, written = program_levels(dev, getkey(), state, lv1, lv0, 4)
    assert int(written.sum()) == 2 and written[1, 2] == 1 and written[2, 0] == 1
    dp = np.asarray(state.pulses) - p0
    assert dp[1, 2] >= 1 and dp[2, 0] >= 1 and dp.sum() == dp[1, 2] + dp[2, 0]
    np.testing.assert_allclose(state.G, level_conductances(dev, lv1, 4), rtol=1e-6)


def test_memory_formula_hand_case():
    # 10-20-5 with 5 levels (3 bits) in 1 cell and 8-bit hidden weights:
    # (200 + 100) * (3 + 8) = 3300 bits.
    assert memory_bits((10, 20, 5), 5, 8) == 3300
    # Differential pair: 2 cells of 3 bits.
    assert memory_bits((10, 20, 5), 5, 8, cells_per_weight=2) == 300 * 14
    # Reference BNN 784-4096-4096-10 with 32-bit hidden weights: 20,029,440 * 33 bits.
    ref = (784 * 4096 + 4096 * 4096 + 4096 * 10) * 33
    assert memory_bits((784, 4096, 4096, 10), 2, 32) == ref
    assert math.isclose(memory_reduction((10, 20, 5), 5, 8), ref / 3300)


def test_bad_parameters(getkey):
    with pytest.raises(ValueError, match="MetaplasticMLP.n_levels"):
        MetaplasticMLP((4, 2), 1, key=getkey())
    with pytest.raises(ValueError, match="MetaplasticMLP.bn"):
        MetaplasticMLP((4, 2), 2, bn="none", key=getkey())
    with pytest.raises(ValueError, match="MetaplasticMLP.activation"):
        MetaplasticMLP((4, 2), 2, activation="relu", key=getkey())
    with pytest.raises(ValueError, match="MetaplasticMLP.bn_affine"):
        MetaplasticMLP((4, 2), 2, bn_affine="yes", key=getkey())
    with pytest.raises(ValueError, match="MetaplasticMLP.sizes"):
        MetaplasticMLP((4, 0, 2), 2, key=getkey())
    with pytest.raises(ValueError, match="n_levels"):
        memory_bits((4, 2), 1)
    with pytest.raises(ValueError, match="m must be"):
        model = MetaplasticMLP((4, 2), 2, key=getkey())
        t = Task("a", np.zeros((10, 4), np.float32), np.zeros(10, int), np.zeros((2, 4)),
                 np.zeros(2, int))
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

    trained, hist = train_continual(model, tasks, m=1.0, epochs=2, batch_size=50,
                                    on_epoch=on_epoch, learning_rate=0.02)
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
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert h2["acc"] == h1["acc"] and h2["task"] == h1["task"] and h2["loss"] == h1["loss"]
    for a, b in zip(h1["counts"], h2["counts"]):
        np.testing.assert_array_equal(a, b)
    # Nothing left to do: the saved final state comes back unchanged.
    again, h3 = train_continual(model, tasks, checkpoint_dir=tmp_path, **kw)
    assert h3["acc"] == h1["acc"]
    np.testing.assert_array_equal(np.asarray(again.weights[0]), np.asarray(straight.weights[0]))


@pytest.mark.parametrize("affine", [False, True])
def test_train_continual_optimizer_carried_over_and_resumed_at_task_boundary(getkey, tmp_path,
                                                                            affine):
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
        train_continual(model, tasks, checkpoint_dir=tmp_path, on_epoch=stop,
                        reset_optimizer=False, **kw)
    resumed, h2 = train_continual(model, tasks, checkpoint_dir=tmp_path,
                                  reset_optimizer=False, **kw)
    for a, b in zip(jax.tree.leaves(carried), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert h2["loss"] == h1["loss"]


def test_copy_slot(getkey):
    model = MetaplasticMLP((4, 3, 2), 2, n_tasks=3, bn_affine=True, key=getkey())
    model = eqx.tree_at(lambda m: m.bn_shift[1], model,
                        jax.random.normal(getkey(), (3, 2)))
    got = model.copy_slot(0, 2)
    np.testing.assert_array_equal(got.bn_shift[1][2], model.bn_shift[1][0])
    np.testing.assert_array_equal(got.bn_shift[1][:2], model.bn_shift[1][:2])
    plain = MetaplasticMLP((4, 3, 2), 2, n_tasks=3, key=getkey())
    assert plain.copy_slot(0, 1) is plain and plain.bn_scale == ()


@pytest.mark.parametrize("reset", [True, False])
def test_affine_bn_slot_per_task(getkey, reset):
    """Task t trains slot t only (also when Adam's momentum is carried over), starting
    from slot t - 1 as the authors' affine BN, whose state they save per task."""
    tasks = _two_tasks(3)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, bn_affine=True, key=getkey())
    seen = {}

    def on_epoch(m, t, e):
        seen[t, e] = m

    final, _ = train_continual(model, tasks, m=1.0, epochs=[6, 1], batch_size=40,
                               learning_rate=0.05, reset_optimizer=reset, on_epoch=on_epoch)
    end_a = seen[0, 5]
    for l in range(2):
        for a, b, a0 in ((final.bn_scale[l], end_a.bn_scale[l], model.bn_scale[l]),
                         (final.bn_shift[l], end_a.bn_shift[l], model.bn_shift[l])):
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
    for a, b in zip(jax.tree.leaves(scalar), jax.tree.leaves(listed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, _ = train_continual(model, tasks, m=0.0, on_epoch=snap("adam"), **kw)
    sched, _ = train_continual(model, tasks, m=[0.0, 2.0], on_epoch=snap("sched"), **kw)
    np.testing.assert_array_equal(np.asarray(seen["adam", 0, 1].weights[0]),
                                  np.asarray(seen["sched", 0, 1].weights[0]))
    assert not np.array_equal(np.asarray(seen["adam", 1, 1].weights[0]),
                              np.asarray(sched.weights[0]))
    # The same as a schedule of the update count (task a: 2 epochs x 3 steps), which
    # carries over with the optimizer state.
    warmup = optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(2.0)],
                                  [6])
    by_count, _ = train_continual(model, tasks, m=warmup, **kw)
    for a, b in zip(jax.tree.leaves(by_count), jax.tree.leaves(sched)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
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
    kw = dict(epochs=2, batch_size=40, learning_rate=0.05, reset_optimizer=False,
              eval_every_epoch=False)
    plain, _ = train_continual(model, tasks, m=2.0, **kw)
    ones, _ = train_continual(model, tasks, m=2.0, m_scale=(1.0, 1.0), **kw)
    zeros, _ = train_continual(model, tasks, m=2.0, m_scale=(0.0, 0.0), **kw)
    adam, _ = train_continual(model, tasks, m=0.0, **kw)
    scaled, _ = train_continual(model, tasks, m=2.0, m_scale=(1.0, 3.0), **kw)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(ones)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(adam), jax.tree.leaves(zeros)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(plain.weights[1]), np.asarray(scaled.weights[1]))
    with pytest.raises(ValueError, match="one factor per layer"):
        train_continual(model, tasks, m=1.0, m_scale=(1.0,), **kw)
    with pytest.raises(ValueError, match="m_scale must be finite and >= 0"):
        train_continual(model, tasks, m=1.0, m_scale=(1.0, -1.0), **kw)
    with pytest.raises(ValueError, match="default optimizer"):
        train_continual(model, tasks, m=1.0, m_scale=(1.0, 1.0),
                        optimizer=lambda: optax.adam(0.01), **kw)


@pytest.mark.parametrize("k", [2, 4, 5])
def test_boundary_init_starts_every_weight_unconsolidated(getkey, k):
    """``init="boundary"``: every hidden weight lies within ``a`` of a level boundary
    ``-w_max + (2 j - 1) h``, the boundaries are drawn uniformly (so every level is
    populated), and the meta factor is near 1 both ways (unconsolidated)."""
    from memjax.learning.metaplastic import meta_factor

    w_max, h = 1.5, 1.5 / (k - 1)
    model = MetaplasticMLP((300, 200, 10), k, w_max=w_max, init="boundary", key=getkey())
    for w in model.weights:
        w = np.asarray(w, np.float64)
        j = np.round((w + w_max + h) / (2 * h))
        assert np.all((j >= 1) & (j <= k - 1))
        np.testing.assert_array_less(np.abs(w - (-w_max + (2 * j - 1) * h)), 0.05 * h + 1e-6)
    w = np.asarray(model.weights[0], np.float64)
    j = np.round((w + w_max + h) / (2 * h))
    freq = np.bincount(j.astype(int).ravel(), minlength=k)[1:] / w.size
    np.testing.assert_allclose(freq, 1.0 / (k - 1), atol=0.01)  # 60,000 draws
    levels = np.bincount(np.asarray(model.levels()[0]).ravel(), minlength=k)
    assert np.all(levels > 0)
    for step in (1.0, -1.0):
        f = meta_factor(model.weights[0], jnp.full_like(model.weights[0], step), 3.0, k, w_max)
        assert float(jnp.min(f)) >= 1 - np.tanh(3.0 * 0.05) ** 2 - 1e-6
    wide = np.asarray(MetaplasticMLP((300, 20), k, w_max=w_max, init="boundary",
                                     init_scale=0.2 * h, key=getkey()).weights[0], np.float64)
    jw = np.round((wide + w_max + h) / (2 * h))
    off = np.abs(wide - (-w_max + (2 * jw - 1) * h))
    assert 0.19 * h < off.max() <= 0.2 * h + 1e-6  # init_scale sets the spread
    with pytest.raises(ValueError, match="MetaplasticMLP.init must be one of"):
        MetaplasticMLP((4, 2), k, init="zeros", key=getkey())


def test_train_continual_adam_eps(getkey):
    """``adam_eps`` is Adam's eps of the hidden weights: the run equals one with
    ``optimizer=metaplastic_adam(lr, m, k, eps=adam_eps)`` bit for bit, and a large eps
    slows weights whose gradients are small against it (they move less)."""
    tasks = _two_tasks(5)
    model = MetaplasticMLP((6, 16, 2), 3, n_tasks=2, init="boundary", key=getkey())
    kw = dict(epochs=2, batch_size=40, learning_rate=0.05, eval_every_epoch=False)
    got, _ = train_continual(model, tasks, m=2.0, adam_eps=1e-3, **kw)
    ref, _ = train_continual(model, tasks, m=2.0, **kw,
                             optimizer=lambda: metaplastic_adam(0.05, 2.0, 3, eps=1e-3))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    default, _ = train_continual(model, tasks, m=2.0, **kw)
    explicit, _ = train_continual(model, tasks, m=2.0, adam_eps=1e-8, **kw)
    for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(explicit)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    slow, _ = train_continual(model, tasks, m=2.0, adam_eps=10.0, **kw)

    def moved(m):
        return sum(float(jnp.abs(a - b).sum()) for a, b in zip(m.weights, model.weights))

    assert moved(slow) < 0.1 * moved(default)
    for bad in (-1e-3, float("nan"), "1e-5", True):
        with pytest.raises(ValueError, match="adam_eps must be a finite number >= 0"):
            train_continual(model, tasks, m=1.0, adam_eps=bad, **kw)
    with pytest.raises(ValueError, match="default optimizer"):
        train_continual(model, tasks, m=1.0, adam_eps=1e-5,
                        optimizer=lambda: optax.adam(0.01), **kw)
