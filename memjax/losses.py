"""Classification losses and metrics shared by every model and the training loop.

Softmax cross-entropy of logits ``z`` against an integer label ``y``:

    L = log sum_k exp(z_k) - z_y

(the negative log-likelihood of ``y`` under ``softmax(z)``), averaged over the batch.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = ["cross_entropy", "accuracy", "cross_entropy_loss", "classification_metrics"]


def cross_entropy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Array:
    """Mean softmax cross-entropy ``mean_i (logsumexp(z_i) - z_{i, y_i})``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Array:
    """Fraction of rows of ``logits`` whose argmax equals ``labels``."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def cross_entropy_loss(
    model, x: Float[Array, "batch ..."], y: Int[Array, " batch"], key: PRNGKeyArray | None = None
) -> tuple[Array, dict[str, Array]]:
    """`cross_entropy` of ``model(x)`` against ``y``: a ``loss_fn`` for `memjax.training.fit`.

    For deterministic models called as ``model(x)``; ``key`` is unused. Returns
    ``(loss, {"accuracy": batch accuracy})``.
    """
    del key
    logits = model(x)
    return cross_entropy(logits, y), {"accuracy": accuracy(logits, y)}


def classification_metrics(model, x, y) -> dict[str, Array]:
    """``{"accuracy", "loss"}`` of ``model(x)`` on a batch: an ``eval_fn`` for `fit`."""
    loss, aux = cross_entropy_loss(model, x, y)
    return {"accuracy": aux["accuracy"], "loss": loss}
