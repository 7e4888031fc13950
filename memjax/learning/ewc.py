"""Elastic weight consolidation (EWC), the continual-learning baseline.

After task A, the diagonal empirical Fisher information of each parameter,

    F_i = E_(x, y) ~ A [ (d log p(y | x; theta) / d theta_i)^2 ]       (per example),

and the parameters theta*_A are kept; training on task B then minimises

    L_B(theta) + (lambda / 2) sum_i F_i (theta_i - theta*_A,i)^2.

Source: Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks",
PNAS 114, 3521 (2017), eq. 3. With several previous tasks, penalties add up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array

__all__ = ["fisher_diagonal", "ewc_penalty"]


def fisher_diagonal(
    log_likelihood: Callable[[Any, Array, Array], Array],
    params: Any,
    x: Array,
    y: Array,
    batch_size: int = 250,
) -> Any:
    """Diagonal empirical Fisher: mean over the examples of ``(grad log p(y|x))^2``.

    ``log_likelihood(params, x_i, y_i)`` takes *one* example (it is `vmap`-ed); per-example
    gradients are computed in chunks of ``batch_size`` (the last partial chunk is used
    too). Returns a pytree shaped like ``params``.
    """
    n = len(x)
    if n == 0:
        raise ValueError("fisher_diagonal: x is empty")

    @jax.jit
    def chunk(p, xb, yb):
        g = jax.vmap(jax.grad(log_likelihood), in_axes=(None, 0, 0))(p, xb, yb)
        return jax.tree.map(lambda a: jnp.sum(a * a, axis=0), g)

    total = None
    for s in range(0, n, batch_size):
        out = chunk(params, jnp.asarray(x[s : s + batch_size]), jnp.asarray(y[s : s + batch_size]))
        total = out if total is None else jax.tree.map(jnp.add, total, out)
    return jax.tree.map(lambda a: a / n, total)


def ewc_penalty(params: Any, anchor: Any, fisher: Any, lam: float) -> Array:
    """``(lam / 2) sum_i F_i (params_i - anchor_i)^2`` over every leaf."""
    terms = jax.tree.map(lambda p, a, f: jnp.sum(f * (p - a) ** 2), params, anchor, fisher)
    return jnp.asarray(0.5 * lam * sum(jax.tree.leaves(terms)))
