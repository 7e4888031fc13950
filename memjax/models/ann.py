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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_int, is_int
from ..data.encoding import scale_images
from ..losses import classification_metrics as classification_metrics
from ..losses import cross_entropy_loss as cross_entropy_loss

__all__ = ["MLP", "cross_entropy_loss", "classification_metrics", "flatten_scale"]


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
        widths = (hidden,) if is_int(hidden) else tuple(hidden)
        check_int("MLP.in_size", in_size, 1)
        check_int("MLP.out_size", out_size, 1)
        for h in widths:
            check_int("MLP.hidden", h, 1)
        sizes = (int(in_size), *map(int, widths), int(out_size))
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.in_size, self.hidden, self.out_size = sizes[0], sizes[1:-1], sizes[-1]

    def __call__(self, x: Float[Array, "... in_size"]) -> Float[Array, "... out_size"]:
        if jnp.shape(x)[-1:] != (self.in_size,):
            raise ValueError(f"MLP: x must have shape (..., {self.in_size}); got {jnp.shape(x)}")
        for layer in self.layers[:-1]:
            x = jax.nn.relu(_affine(layer, x))
        return _affine(self.layers[-1], x)


def _affine(layer: eqx.nn.Linear, x: Array) -> Array:
    """``x @ W.T + b`` over any leading axes (the bias given their rank explicitly)."""
    if layer.bias is None:  # the layers are built with use_bias=True
        raise ValueError("MLP: a layer has no bias")
    y = x @ layer.weight.T
    return y + jax.lax.broadcast_to_rank(layer.bias, y.ndim)


def flatten_scale(x: np.ndarray) -> Float[Array, "batch features"]:
    """Images ``(batch, ...)`` to float32 ``(batch, features)`` in [0, 1]:
    :func:`memjax.data.scale_images` with ``flatten=True`` (uint8 divided by 255, floats
    checked in [0, 1]), as a JAX array."""
    return jnp.asarray(scale_images(x, flatten=True, owner="flatten_scale"))
