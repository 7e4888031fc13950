"""The plain ReLU multilayer perceptron: the software ceiling memristive networks are compared with.

    h_0 = x,   h_l = relu(W_l h_{l-1} + b_l)  (l < L),   logits = W_L h_{L-1} + b_L

trained with softmax cross-entropy. The default 784-512-10 is the usual one-hidden-layer
MNIST baseline; weights and biases start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the
`eqx.nn.Linear` / PyTorch default). Inputs are flattened images scaled to [0, 1]
(`flatten_scale`), without mean/std normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..train import accuracy, fit

__all__ = ["MLP", "cross_entropy_loss", "classification_metrics", "flatten_scale", "train_mlp"]


def _check_size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"MLP.{name} must be a positive integer; got {value!r}")


class MLP(eqx.Module):
    """Fully connected ReLU network ``in_size -> hidden... -> out_size`` (logits out).

    Takes ``x`` of shape ``(..., in_size)`` (a single sample or any batch) and returns
    logits of shape ``(..., out_size)``.
    """

    layers: tuple[eqx.nn.Linear, ...]
    in_size: int = eqx.field(static=True)
    hidden: tuple[int, ...] = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int = 784,
        hidden: int | Sequence[int] = (512,),
        out_size: int = 10,
        *,
        key: PRNGKeyArray,
    ):
        hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(hidden)
        _check_size("in_size", in_size)
        _check_size("out_size", out_size)
        for h in hidden:
            _check_size("hidden", h)
        sizes = (int(in_size), *map(int, hidden), int(out_size))
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.in_size, self.hidden, self.out_size = sizes[0], sizes[1:-1], sizes[-1]

    def __call__(self, x: Float[Array, "... in_size"]) -> Float[Array, "... out_size"]:
        if jnp.shape(x)[-1:] != (self.in_size,):
            raise ValueError(
                f"MLP: x must have shape (..., {self.in_size}); got {jnp.shape(x)}"
            )
        for layer in self.layers[:-1]:
            x = jax.nn.relu(x @ layer.weight.T + layer.bias)
        last = self.layers[-1]
        return x @ last.weight.T + last.bias


def cross_entropy_loss(
    model, x: Float[Array, "batch ..."], y: Int[Array, " batch"], key: PRNGKeyArray | None = None
) -> tuple[Array, dict[str, Array]]:
    """Mean softmax cross-entropy of ``model(x)`` (a batch of logits) against labels ``y``.

    The `memjax.train.fit` loss signature; ``key`` is unused (deterministic model).
    Returns ``(loss, {"accuracy": batch accuracy})``.
    """
    del key
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, {"accuracy": accuracy(logits, y)}


def classification_metrics(model, x, y) -> dict[str, Array]:
    """``{"accuracy", "loss"}`` of ``model(x)`` on a batch: an ``eval_fn`` for `fit`."""
    loss, aux = cross_entropy_loss(model, x, y)
    return {"accuracy": aux["accuracy"], "loss": loss}


def flatten_scale(x: np.ndarray) -> Float[Array, "batch features"]:
    """Images ``(batch, ...)`` (uint8 0..255 or floats in [0, 1]) to float32 ``(batch, prod)``."""
    x = np.asarray(x)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    return jnp.asarray(x.reshape(len(x), -1), jnp.float32) * scale


def train_mlp(
    train_data: tuple[np.ndarray, np.ndarray],
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    hidden: int | Sequence[int] = (512,),
    epochs: int = 10,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    **fit_kwargs,
) -> tuple[MLP, dict[str, list[float]]]:
    """Train an `MLP` with Adam on images ``(N, 28, 28)`` / ``(N, 784)`` and int labels.

    ``in_size`` and ``out_size`` come from the data (``out_size`` = 10 unless the labels go
    higher). Model initialisation uses ``jax.random.key(seed)``; other keyword arguments
    (``checkpoint_dir``, ``progress``, ``log``, ...) go to `memjax.train.fit`. Returns the
    trained model and the history (with test ``accuracy`` and ``loss`` when ``test_data``
    is given).
    """
    x, y = train_data
    in_size = int(np.prod(np.shape(x)[1:]))
    out_size = max(10, int(np.max(y)) + 1)
    model = MLP(in_size, hidden, out_size, key=jax.random.key(seed))
    eval_kw = {}
    if test_data is not None:
        eval_kw = dict(eval_fn=classification_metrics, eval_data=test_data)
    return fit(
        model,
        cross_entropy_loss,
        optax.adam(learning_rate),
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        preprocess=flatten_scale,
        **eval_kw,
        **fit_kwargs,
    )
