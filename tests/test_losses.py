"""Cross-entropy and accuracy against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np

from memjax.losses import accuracy, classification_metrics, cross_entropy, cross_entropy_loss
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
