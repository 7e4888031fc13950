"""Cross-entropy, accuracy and NT-Xent against NumPy."""

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from memjax.losses import (
    accuracy,
    classification_metrics,
    cross_entropy,
    cross_entropy_loss,
    nt_xent,
)
from memjax.models.ann import MLP


def test_loss_and_metrics_match_numpy(getkey):
    model = MLP(6, 4, 3, key=getkey())
    x = jax.random.normal(getkey(), (9, 6))
    y = jnp.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    logits = np.asarray(model(x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want_loss = -np.mean(logp[np.arange(9), np.asarray(y)])
    want_acc = np.mean(logits.argmax(1) == np.asarray(y))
    loss, aux = cross_entropy_loss(model, x, y, getkey())
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(aux["accuracy"], want_acc)
    m = classification_metrics(model, x, y)
    np.testing.assert_allclose(m["loss"], want_loss, rtol=1e-5)


def test_cross_entropy_and_accuracy_by_hand():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    y = jnp.array([0, 2])
    want = np.mean(
        [np.log(np.exp([2.0, 0.0, -1.0]).sum()) - 2.0, np.log(np.exp([0.0, 3.0, 0.0]).sum()) - 0.0]
    )
    np.testing.assert_allclose(cross_entropy(logits, y), want, rtol=1e-6)
    assert float(accuracy(logits, y)) == 0.5


def _nt_xent_numpy(z1, z2, tau):
    """NT-Xent written out term by term (Chen et al. 2020, eq. 1), float64."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    losses = []
    for i in range(n2):
        p = (i + n2 // 2) % n2
        s = [z[i] @ z[k] / tau for k in range(n2)]
        denom = sum(np.exp(s[k]) for k in range(n2) if k != i)
        losses.append(-np.log(np.exp(s[p]) / denom))
    return np.mean(losses)


def test_nt_xent_matches_the_equation_term_by_term(getkey):
    z1 = jax.random.normal(getkey(), (5, 3))
    z2 = jax.random.normal(getkey(), (5, 3))
    for tau in (0.1, 0.5, 2.0):
        np.testing.assert_allclose(
            nt_xent(z1, z2, tau), _nt_xent_numpy(np.asarray(z1), np.asarray(z2), tau), rtol=1e-5
        )


def test_nt_xent_is_scale_invariant_and_prefers_matching_views(getkey):
    z1 = jax.random.normal(getkey(), (8, 4))
    other = jax.random.normal(getkey(), (8, 4))
    np.testing.assert_allclose(nt_xent(z1, 3.0 * z1), nt_xent(z1, z1), rtol=1e-5)
    assert nt_xent(z1, z1 + 0.01 * other) < nt_xent(z1, other)


def test_nt_xent_gradient_matches_finite_differences(getkey):
    with jax.enable_x64():
        z1 = jax.random.normal(getkey(), (4, 3), jnp.float64)
        z2 = jax.random.normal(getkey(), (4, 3), jnp.float64)
        jax.test_util.check_grads(lambda a, b: nt_xent(a, b, 0.5), (z1, z2), order=1, modes="rev")


def test_nt_xent_rejects_bad_input():
    z = jnp.ones((3, 2))
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        nt_xent(z, z, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(z, jnp.ones((4, 2)))
