"""Metaplastic BNN/QNN: forward pass, BN statistics, reprogram-on-change, memory formula."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.devices.rram import MultiLevelRRAM
from memjax.models.metaplastic import (
    MetaplasticMLP,
    calibrate_bn,
    conductance_weights,
    evaluate_task,
    level_conductances,
    memory_bits,
    memory_reduction,
    program_levels,
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


@pytest.mark.parametrize(
    "k, act, affine", [(2, "sign", False), (5, "hardtanh", False), (3, "sign", True)]
)
def test_forward_matches_numpy(getkey, k, act, affine):
    model = MetaplasticMLP(
        (12, 9, 4), k, n_tasks=2, key=getkey(), logit_scale=2.0, activation=act, bn_affine=affine
    )
    model = eqx.tree_at(
        lambda m: (m.bn_mean[0], m.bn_var[0]),
        model,
        (jax.random.normal(getkey(), (2, 9)), 1 + jax.random.uniform(getkey(), (2, 9))),
    )
    if affine:
        model = eqx.tree_at(
            lambda m: (m.bn_scale, m.bn_shift),
            model,
            (
                tuple(jax.random.uniform(getkey(), a.shape, minval=0.5) for a in model.bn_scale),
                tuple(jax.random.normal(getkey(), a.shape) for a in model.bn_shift),
            ),
        )
    x = jax.random.uniform(getkey(), (6, 12))
    for task in (0, 1):
        np.testing.assert_allclose(
            model(x, task), _np_forward(model, x, task), rtol=1e-4, atol=1e-4
        )


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
    with pytest.raises(ValueError, match="MetaplasticMLP.bn_scale_init must be one of"):
        MetaplasticMLP((4, 2), 2, bn_affine=True, bn_scale_init="normal", key=getkey())
    with pytest.raises(ValueError, match="bn_scale_init='uniform' needs bn_affine=True"):
        MetaplasticMLP((4, 2), 2, bn_scale_init="uniform", key=getkey())
    with pytest.raises(ValueError, match="n_levels"):
        memory_bits((4, 2), 1)


def test_bn_scale_init_uniform(getkey):
    """``bn_scale_init="uniform"``: gains ``U(0, 1)`` (the authors' PyTorch 1.1 batch
    norm), the same in every task slot; hidden weights as with gains of 1."""
    key = getkey()
    ones = MetaplasticMLP((500, 400, 10), 2, n_tasks=3, bn_affine=True, key=key)
    uni = MetaplasticMLP(
        (500, 400, 10), 2, n_tasks=3, bn_affine=True, bn_scale_init="uniform", key=key
    )
    for a, b in zip(ones.weights, uni.weights):
        np.testing.assert_array_equal(a, b)
    for g in ones.bn_scale:
        np.testing.assert_array_equal(g, 1.0)
    g = np.asarray(uni.bn_scale[0])
    assert g.shape == (3, 400)
    np.testing.assert_array_equal(g, np.broadcast_to(g[0], g.shape))
    assert g.min() >= 0.0 and g.max() < 1.0
    # 400 draws of U(0, 1): mean 0.5 +- 0.014, variance 1/12
    assert abs(g[0].mean() - 0.5) < 0.06 and abs(g[0].var() - 1 / 12) < 0.02
    assert not np.allclose(uni.bn_scale[0][0, :10], uni.bn_scale[1][0])
    for s in uni.bn_shift:
        np.testing.assert_array_equal(s, 0.0)


def test_copy_slot(getkey):
    model = MetaplasticMLP((4, 3, 2), 2, n_tasks=3, bn_affine=True, key=getkey())
    model = eqx.tree_at(lambda m: m.bn_shift[1], model, jax.random.normal(getkey(), (3, 2)))
    got = model.copy_slot(0, 2)
    np.testing.assert_array_equal(got.bn_shift[1][2], model.bn_shift[1][0])
    np.testing.assert_array_equal(got.bn_shift[1][:2], model.bn_shift[1][:2])
    plain = MetaplasticMLP((4, 3, 2), 2, n_tasks=3, key=getkey())
    assert plain.copy_slot(0, 1) is plain and plain.bn_scale == ()


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
    wide = np.asarray(
        MetaplasticMLP(
            (300, 20), k, w_max=w_max, init="boundary", init_scale=0.2 * h, key=getkey()
        ).weights[0],
        np.float64,
    )
    jw = np.round((wide + w_max + h) / (2 * h))
    off = np.abs(wide - (-w_max + (2 * jw - 1) * h))
    assert 0.19 * h < off.max() <= 0.2 * h + 1e-6  # init_scale sets the spread
    with pytest.raises(ValueError, match="MetaplasticMLP.init must be one of"):
        MetaplasticMLP((4, 2), k, init="zeros", key=getkey())


@pytest.mark.parametrize("sizes", [(784, 64, 10), (50, 30, 30, 7)])
def test_uniform_init_draws_from_its_documented_range(getkey, sizes):
    """``init="uniform"``: BNN weights ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` per layer, QNN
    weights ``U(-w_max, w_max)``, ``init_scale`` overriding both; the draws fill the
    range (a wrong scale, e.g. a size used as the bound, fails either side)."""
    bnn = MetaplasticMLP(sizes, 2, key=getkey())
    for w, n_in in zip(bnn.weights, sizes[:-1]):
        a = 1.0 / np.sqrt(n_in)
        assert float(jnp.max(jnp.abs(w))) <= a
        assert float(jnp.max(jnp.abs(w))) > 0.9 * a
    qnn = MetaplasticMLP(sizes, 4, w_max=0.5, key=getkey())
    for w in qnn.weights:
        assert 0.45 < float(jnp.max(jnp.abs(w))) <= 0.5
    custom = MetaplasticMLP(sizes, 2, init_scale=0.05, key=getkey())
    for w in custom.weights:
        assert 0.045 < float(jnp.max(jnp.abs(w))) <= 0.05


def test_evaluate_task_with_batch_statistics(getkey):
    """``batch_statistics=True``: each batch normalised by its own mean and variance
    with the task's affine parameters (a BN without running statistics), against the
    stored population statistics otherwise."""
    model = MetaplasticMLP((20, 16, 4), 2, n_tasks=2, bn_affine=True, key=getkey())
    model = eqx.tree_at(
        lambda t: t.bn_shift, model, tuple(0.3 * jnp.ones_like(b) for b in model.bn_shift)
    )
    x = jax.random.uniform(getkey(), (60, 20))
    y = jax.random.randint(getkey(), (60,), 0, 4)

    def by_hand(xb):
        h = xb
        for l, w in enumerate(model.quantized_weights()):
            z = h @ w
            z = (z - z.mean(0, keepdims=True)) / jnp.sqrt(z.var(0, keepdims=True) + model.bn_eps)
            z = z * model.bn_scale[l][1][None] + model.bn_shift[l][1][None]
            h = jnp.sign(z) if l == 0 else z
        return jnp.argmax(h, -1)

    expected = np.mean(np.concatenate([by_hand(x[i : i + 20]) for i in (0, 20, 40)]) == y)
    got = evaluate_task(model, x, y, 1, batch_size=20, batch_statistics=True)
    assert got == pytest.approx(float(expected))
    # Without it: the stored statistics (here the initial zeros and ones).
    stored = evaluate_task(model, x, y, 1, batch_size=20)
    by_stored = np.mean(np.asarray(jnp.argmax(model(x, 1), -1)) == np.asarray(y))
    assert stored == pytest.approx(float(by_stored))


def test_evaluate_task_batch_statistics_has_no_short_remainder(getkey):
    """62 inputs at ``batch_size=20``: four batches of 15-16 inputs (not 20, 20, 20
    and a remainder of 2 normalised by its own meaningless statistics); fewer than 2
    inputs or ``batch_size=1`` are refused."""
    model = MetaplasticMLP((20, 16, 4), 2, n_tasks=1, bn_affine=True, key=getkey())
    x = jax.random.uniform(getkey(), (62, 20))
    y = jax.random.randint(getkey(), (62,), 0, 4)

    def batch_pred(xb):
        return np.asarray(jnp.argmax(model(xb, 0, train=True), -1))

    edges = (0, 16, 31, 46, 62)
    expected = np.concatenate([batch_pred(x[i:j]) for i, j in zip(edges[:-1], edges[1:])])
    got = evaluate_task(model, x, y, 0, batch_size=20, batch_statistics=True)
    assert got == pytest.approx(float(np.mean(expected == np.asarray(y))))
    with pytest.raises(ValueError, match="at least 2 inputs"):
        evaluate_task(model, x[:1], y[:1], 0, batch_statistics=True)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        evaluate_task(model, x, y, 0, batch_size=1, batch_statistics=True)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_task(model, x, y, 0, batch_size=0)
