"""CNN + WTA pipeline: shapes, neuron labelling and winner classification against hand
examples, gate calibration bound, the trained-class pathway untouched by learning."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.learning.stdp import WTALayer
from memjax.models.sfa_snn import (
    CNN,
    accuracy_report,
    calibrate_gate,
    cnn_features,
    cnn_predict,
    encode_features,
    feature_scale,
    gated_predict,
    label_neurons,
    learn_unsupervised,
    respond,
    snn_classify,
)
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
    np.testing.assert_array_equal(snn_classify(np.array([[5.0, 1.0]]), np.ones((1, 2)),
                                               np.array([-1, 3])), [3])


def test_gate_calibration_bound_and_head_untouched():
    rng = np.random.default_rng(0)
    n = 2000
    snn = rng.integers(0, 10, n)
    conf = rng.uniform(0.2, 1.0, n)
    head = rng.integers(0, 5, n)
    for budget in (0.0, 0.005, 0.05):
        g = calibrate_gate(snn, conf, range(5, 10), budget)
        pred, routed = gated_predict(head, conf, snn, range(5, 10), g)
        assert routed.mean() <= budget
        np.testing.assert_array_equal(pred[~routed], head[~routed])
        assert np.all(np.isin(pred[routed], np.arange(5, 10)))
    rep = accuracy_report(np.array([0, 1, 5, 6]), np.array([0, 2, 5, 7]), {"t": [0, 1, 2], "n": [5, 6, 7]})
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
    layer = WTALayer(n_in=512, n_out=6, n_steps=5, p_in=1.0,
                     neuron=ALIF(leak=1.0, theta0=0.5, beta=5.0))
    st0 = layer.init_state(jax.random.key(2))
    st, out = learn_unsupervised(layer, st0, e, jax.random.key(3), chunk=25)
    assert out["spikes"].shape == (40,)
    assert int(st.syn.pulses.sum()) > 0  # the spiking layer did learn
    after = eqx.filter(cnn, eqx.is_array)
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)):
        np.testing.assert_array_equal(a, b)
    _, logits2 = cnn_features(cnn, x, "conv")
    np.testing.assert_array_equal(logits, logits2)
    head, conf = cnn_predict(logits, [0, 1, 2, 3, 4])
    assert np.all((conf > 0.2 - 1e-6) & (conf <= 1)) and set(np.unique(head)) <= set(range(5))
    r = respond(layer, st, e, jax.random.key(4), batch_size=20)
    assert r["counts"].shape == (40, 6) and np.all(r["spikes"] == r["counts"].sum(1))


def test_bad_parameters():
    with pytest.raises(ValueError, match="CNN.n_features"):
        CNN(5, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="which"):
        cnn_features(CNN(5, 4, key=jax.random.key(0)), np.zeros((1, 28, 28)), "pixels")
