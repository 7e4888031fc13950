"""Classification losses and metrics shared by every model and the training loop.

Softmax cross-entropy of logits ``z`` against an integer label ``y``:

    L = log sum_k exp(z_k) - z_y

(the negative log-likelihood of ``y`` under ``softmax(z)``), averaged over the batch.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._validation import check_positive

__all__ = [
    "cross_entropy",
    "accuracy",
    "cross_entropy_loss",
    "classification_metrics",
    "nt_xent",
]


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


def nt_xent(
    z1: Float[Array, "batch dim"], z2: Float[Array, "batch dim"], temperature: float = 0.5
) -> Array:
    """Normalised-temperature cross-entropy (NT-Xent), the contrastive loss of SimCLR
    (Chen et al., *ICML* 2020, eq. 1), averaged over the ``2 B`` anchors.

    Rows ``i`` of ``z1`` and ``z2`` are two views of one sample. With ``u`` the ``2 B``
    embeddings ``[z1; z2]`` scaled to unit length and ``s_ij = u_i . u_j / tau``:

        l_i = -s_{i, p(i)} + log sum_{k != i} exp(s_ik)

    where ``p(i)`` is the other view of sample ``i``; every other row of the batch is a
    negative. ``temperature`` ``tau`` must be > 0.
    """
    check_positive("nt_xent", "temperature", temperature)
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            "nt_xent: z1 and z2 must both be (batch, dim) with the same shape; got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    n = z1.shape[0]
    z = jnp.concatenate([z1, z2])
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    sim = z @ z.T / temperature
    sim = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, sim)
    positive = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
    return optax.softmax_cross_entropy_with_integer_labels(sim, positive).mean()
