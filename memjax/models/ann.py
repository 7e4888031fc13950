"""The plain ReLU multilayer perceptron: the software ceiling memristive networks are compared with.

    h_0 = x,   h_l = relu(W_l h_{l-1} + b_l)  (l < L),   logits = W_L h_{L-1} + b_L

trained with softmax cross-entropy (`memjax.losses`; recipe `memjax.recipes.train_mlp`).
The default 784-512-10 is the usual one-hidden-layer
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
from jaxtyping import Array, Float, PRNGKeyArray

from ..losses import classification_metrics as classification_metrics
from ..losses import cross_entropy_loss as cross_entropy_loss

__all__ = ["MLP", "cross_entropy_loss", "classification_metrics", "flatten_scale"]


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
            raise ValueError(f"MLP: x must have shape (..., {self.in_size}); got {jnp.shape(x)}")
        for layer in self.layers[:-1]:
            x = jax.nn.relu(x @ layer.weight.T + _bias(layer))
        last = self.layers[-1]
        return x @ last.weight.T + _bias(last)


def _bias(layer: eqx.nn.Linear) -> Array:
    if layer.bias is None:  # the layers are built with use_bias=True
        raise ValueError("MLP: a layer has no bias")
    return layer.bias


def flatten_scale(x: np.ndarray) -> Float[Array, "batch features"]:
    """Images ``(batch, ...)`` (uint8 0..255 or floats in [0, 1]) to float32 ``(batch, prod)``."""
    x = np.asarray(x)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    return jnp.asarray(x.reshape(len(x), -1), jnp.float32) * scale
