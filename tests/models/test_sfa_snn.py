"""CNN + WTA pipeline: shapes, neuron labelling and winner classification against hand
examples, gate calibration bound, the trained-class pathway untouched by learning."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tree_allclose

from memjax.models.sfa_snn import (
    CNN,
    NoveltyGate,
    accuracy_report,
    calibrate_novelty_gate,
    cnn_features,
    cnn_predict,
    encode_features,
    feature_scale,
    fit_novelty_gate,
    label_neurons,
    learn_unsupervised,
    mahalanobis_score,
    refit_novelty_gate,
    respond,
    route,
    snn_classify,
)
from memjax.models.wta import WTALayer
from memjax.neurons.alif import ALIF


def test_label_and_classify_by_hand():
    counts = np.array([[3, 0, 1], [2, 0, 0], [0, 4, 0], [0, 1, 0]], float)
    labels = np.array([0, 0, 2, 2])
    nl = label_neurons(counts, labels, n_classes=3)
    np.testing.assert_array_equal(nl, [0, 2, 0])
    silent = label_neurons(np.zeros((2, 2)), np.array([0, 1]), 2)
    np.testing.assert_array_equal(silent, [-1, -1])
    # winner = most spikes; a tie (and a silent sample) is broken by the drive
    c = np.array([[1, 1, 0], [0, 0, 0]], float)
    d = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    np.testing.assert_array_equal(snn_classify(c, d, np.array([0, 2, 1])), [2, 1])
    # unlabelled neurons never win
    np.testing.assert_array_equal(
        snn_classify(np.array([[5.0, 1.0]]), np.ones((1, 2)), np.array([-1, 3])), [3]
    )


def test_route_and_accuracy_report():
    rng = np.random.default_rng(0)
    head, snn = rng.integers(0, 5, 100), rng.integers(5, 10, 100)
    routed = rng.uniform(size=100) < 0.3
    pred = route(head, snn, routed)
    np.testing.assert_array_equal(pred[~routed], head[~routed])
    np.testing.assert_array_equal(pred[routed], snn[routed])
    rep = accuracy_report(
        np.array([0, 1, 5, 6]), np.array([0, 2, 5, 7]), {"t": [0, 1, 2], "n": [5, 6, 7]}
    )
    assert rep["all"] == 0.5 and rep["t"] == 0.5 and rep["n"] == 0.5


def test_pipeline_learning_leaves_cnn_unchanged():
    cnn = CNN(5, 16, key=jax.random.key(0))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (40, 28, 28)))
    f, logits = cnn_features(cnn, x, "conv")
    assert f.shape == (40, 512) and logits.shape == (40, 5)
    f_fc, _ = cnn_features(cnn, x, "fc")
    assert f_fc.shape == (40, 16) and np.all(f_fc >= 0)
    np.testing.assert_allclose(logits, np.asarray(cnn(jnp.asarray(x))), rtol=1e-5, atol=1e-5)
    e = encode_features(f, feature_scale(f))
    assert e.min() >= 0 and e.max() <= 1
    before = jax.tree_util.tree_map(np.asarray, eqx.filter(cnn, eqx.is_array))
    layer = WTALayer(
        n_in=512, n_out=6, n_steps=5, p_in=1.0, neuron=ALIF(leak=1.0, theta0=0.5, beta=5.0)
    )
    st0 = layer.init_state(jax.random.key(2))
    st, out = learn_unsupervised(layer, st0, e, jax.random.key(3), chunk=25)
    assert out["spikes"].shape == (40,)
    assert int(st.syn.pulses.sum()) > 0  # the spiking layer did learn
    after = eqx.filter(cnn, eqx.is_array)
    assert tree_allclose(before, after, rtol=0, atol=0)
    _, logits2 = cnn_features(cnn, x, "conv")
    np.testing.assert_array_equal(logits, logits2)
    head, conf = cnn_predict(logits, [0, 1, 2, 3, 4])
    assert np.all((conf > 0.2 - 1e-6) & (conf <= 1)) and set(np.unique(head)) <= set(range(5))
    r = respond(layer, st, e, jax.random.key(4), batch_size=20)
    assert r["counts"].shape == (40, 6) and np.all(r["spikes"] == r["counts"].sum(1))


def _gate_data(rng, n=600, d=6):
    """Trained classes: two Gaussian clusters; new class: a third one, only in the
    unlabelled stream (half the stream)."""
    mu = np.array([[2.0] + [0.0] * (d - 1), [-2.0] + [0.0] * (d - 1), [0.0, 5.0] + [0.0] * (d - 2)])

    def draw(c, m):
        return (mu[c] + rng.standard_normal((m, d))).astype(np.float32)

    trained = np.concatenate([draw(0, n), draw(1, n)])
    stream = np.concatenate([draw(0, n // 4), draw(1, n // 4), draw(2, n // 2)])
    return mu, draw, trained, stream


def test_novelty_gate_routes_new_class_within_the_budget():
    rng = np.random.default_rng(0)
    mu, draw, trained, stream = _gate_data(rng)
    gate = fit_novelty_gate(trained, stream, steps=300)
    assert not np.any(gate(trained))  # threshold +inf before calibration: routes nothing
    # the score grows towards the new cluster, which the trained data never showed
    w = np.asarray(gate.w)
    assert w[1] > 0 and w[1] > 5 * np.abs(w[2:]).max()
    val = np.concatenate([draw(0, 500), draw(1, 500)])
    for budget in (0.0, 0.01, 0.05):
        g = calibrate_novelty_gate(gate, val, budget)
        # continuous scores: exactly floor(budget N) calibration samples are routed
        assert g(val).sum() == int(np.floor(budget * len(val)))
    g = calibrate_novelty_gate(gate, val, 0.01)
    test_t = np.concatenate([draw(0, 2000), draw(1, 2000)])
    test_n = draw(2, 2000)
    assert g(test_t).mean() < 0.03 and g(test_n).mean() > 0.9
    # independent score: w . x + b
    np.testing.assert_allclose(
        g.score(test_n[:5]), test_n[:5] @ w + float(gate.b), rtol=1e-5, atol=1e-5
    )
    # routing: unrouted samples keep the head's answer, routed ones take the layer's
    head, snn = rng.integers(0, 2, 4000), rng.integers(2, 3, 4000)
    routed = g(test_t)
    pred = route(head, snn, routed)
    np.testing.assert_array_equal(pred[~routed], head[~routed])
    np.testing.assert_array_equal(pred[routed], snn[routed])


def test_refit_novelty_gate_fits_on_the_routed_stream_and_routes_more():
    """A new class that is 10 % of the stream: fitted again against the stream samples
    the first gate routes, the gate routes more of it at the same false-route budget."""
    rng = np.random.default_rng(4)
    d = 8
    mu = np.zeros((3, d))
    mu[0, 0], mu[1, 0], mu[2, 1] = 3.0, -3.0, 2.5

    def draw(c, m):
        return (mu[c] + rng.standard_normal((m, d))).astype(np.float32)

    trained = np.concatenate([draw(0, 1000), draw(1, 1000)])
    stream = np.concatenate([draw(0, 900), draw(1, 900), draw(2, 200)])
    val = np.concatenate([draw(0, 1000), draw(1, 1000)])
    test_t, test_n = np.concatenate([draw(0, 2000), draw(1, 2000)]), draw(2, 2000)
    kw = dict(steps=600, hidden=16, batch_size=256, learning_rate=0.02)
    g = calibrate_novelty_gate(fit_novelty_gate(trained, stream, **kw), val, 0.01)
    r = refit_novelty_gate(g, trained, stream, **kw)
    assert not np.any(r(test_n))  # threshold +inf again: calibrate before use
    # the same as fitting on exactly the routed stream samples
    direct = fit_novelty_gate(trained, stream[g(stream)], **kw)
    np.testing.assert_array_equal(np.asarray(r.w), np.asarray(direct.w))
    r = calibrate_novelty_gate(r, val, 0.01)
    assert r(test_n).mean() > g(test_n).mean() + 0.05
    assert r(test_t).mean() < 0.02 and g(test_t).mean() < 0.02
    with pytest.raises(ValueError, match="threshold must be finite"):
        refit_novelty_gate(fit_novelty_gate(trained, stream, steps=5), trained, stream)
    with pytest.raises(ValueError, match="routes none of x_stream"):
        high = eqx.tree_at(lambda gate: gate.threshold, g, jnp.asarray(1e30, jnp.float32))
        refit_novelty_gate(high, trained, stream)


def test_hidden_novelty_gate_routes_what_no_line_separates():
    """New class between the two trained clusters: no linear score routes it within the
    budget, a hidden layer of novelty neurons does; its score is w . relu(x W_h + b_h) + b."""
    rng = np.random.default_rng(2)
    d = 4
    mu = np.zeros((3, d))
    mu[0, 0], mu[1, 0] = 4.0, -4.0

    def draw(c, m):
        return (mu[c] + 0.7 * rng.standard_normal((m, d))).astype(np.float32)

    trained = np.concatenate([draw(0, 800), draw(1, 800)])
    stream = np.concatenate([draw(0, 400), draw(1, 400), draw(2, 800)])
    val = np.concatenate([draw(0, 500), draw(1, 500)])
    test_t, test_n = np.concatenate([draw(0, 1000), draw(1, 1000)]), draw(2, 2000)
    routed = {}
    for hidden in (0, 16):
        g = fit_novelty_gate(
            trained, stream, steps=600, hidden=hidden, batch_size=256, learning_rate=0.02
        )
        g = calibrate_novelty_gate(g, val, 0.01)
        routed[hidden] = (g(test_t).mean(), g(test_n).mean())
    assert routed[16][0] < 0.03 and routed[16][1] > 0.9
    assert routed[0][1] < 0.5
    assert g.W_h.shape == (d, 16) and g.b_h.shape == (16,) and g.w.shape == (16,)
    ref = np.maximum(test_n[:5] @ np.asarray(g.W_h) + np.asarray(g.b_h), 0) @ np.asarray(g.w)
    np.testing.assert_allclose(g.score(test_n[:5]), ref + float(g.b), rtol=1e-5, atol=1e-5)


def test_mahalanobis_score_against_direct_solve():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 4))
    y = rng.integers(0, 3, 300)
    f[y == 1] += 3.0
    score = mahalanobis_score(f, y, eps=0.0)
    q = rng.standard_normal((7, 4))
    mus = [f[y == c].mean(0) for c in range(3)]
    xc = f - np.stack(mus)[y]
    cov = np.cov(xc.T, bias=True)
    ref = np.min([[np.dot(x - m, np.linalg.solve(cov, x - m)) for m in mus] for x in q], axis=1)
    np.testing.assert_allclose(score(q), ref, rtol=1e-8)


def test_bad_parameters():
    with pytest.raises(ValueError, match="steps"):
        fit_novelty_gate(np.zeros((2, 3)), np.ones((2, 3)), steps=0)
    with pytest.raises(ValueError, match="same n_in"):
        fit_novelty_gate(np.zeros((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="hidden"):
        fit_novelty_gate(np.zeros((2, 3)), np.ones((2, 3)), hidden=-1)
    with pytest.raises(ValueError, match="batch_size"):
        fit_novelty_gate(np.zeros((2, 3)), np.ones((2, 3)), batch_size=0)
    with pytest.raises(ValueError, match="together"):
        NoveltyGate(w=jnp.zeros(2), b=jnp.zeros(()), threshold=jnp.zeros(()), W_h=jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_hidden"):
        NoveltyGate(
            w=jnp.zeros(2),
            b=jnp.zeros(()),
            threshold=jnp.zeros(()),
            W_h=jnp.zeros((3, 4)),
            b_h=jnp.zeros(4),
        )
    with pytest.raises(ValueError, match="NoveltyGate.w"):
        NoveltyGate(w=jnp.zeros((2, 2)), b=jnp.zeros(()), threshold=jnp.zeros(()))
    with pytest.raises(ValueError, match="max_false_route"):
        calibrate_novelty_gate(
            NoveltyGate(w=jnp.zeros(2), b=jnp.zeros(()), threshold=jnp.zeros(())),
            np.zeros((3, 2)),
            1.0,
        )
    with pytest.raises(ValueError, match="CNN.n_features"):
        CNN(5, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="which"):
        cnn_features(CNN(5, 4, key=jax.random.key(0)), np.zeros((1, 28, 28)), "pixels")


def test_cnn_features_image_scaling_is_consistent():
    cnn = CNN(3, 8, key=jax.random.key(0))
    u8 = np.asarray(jax.random.randint(jax.random.key(1), (5, 28, 28), 0, 256), np.uint8)
    f_u8, _ = cnn_features(cnn, u8)
    f_f, _ = cnn_features(cnn, u8.astype(np.float32) / 255.0)
    np.testing.assert_allclose(f_u8, f_f, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\]"):
        cnn_features(cnn, u8.astype(np.float32))  # floats in 0..255
    with pytest.raises(TypeError, match="uint8"):
        cnn_features(cnn, u8.astype(np.int32))


def test_cnn_channels_set_the_conv_feature_width():
    cnn = CNN(3, 8, (4, 6), key=jax.random.key(0))
    f, logits = cnn_features(cnn, np.zeros((2, 28, 28), np.float32))
    assert f.shape == (2, 6 * 4 * 4) and logits.shape == (2, 3)
    assert CNN(3, 8, key=jax.random.key(0)).conv_features(np.zeros((1, 28, 28))).shape == (1, 512)
    with pytest.raises(ValueError, match=r"CNN.channels\[1\]"):
        CNN(3, 8, (4, 0), key=jax.random.key(0))
    with pytest.raises(ValueError, match="two ints"):
        CNN(3, 8, (4,), key=jax.random.key(0))
