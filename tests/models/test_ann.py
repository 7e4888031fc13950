"""The ReLU MLP baseline: forward pass against NumPy, input scaling, shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.models.ann import MLP, flatten_scale


def test_forward_matches_numpy(getkey):
    model = MLP(20, (16, 8), 5, key=getkey())
    assert [l.weight.shape for l in model.layers] == [(16, 20), (8, 16), (5, 8)]
    x = np.asarray(jax.random.normal(getkey(), (7, 20)))
    h = x
    for i, layer in enumerate(model.layers):
        h = h @ np.asarray(layer.weight).T + np.asarray(layer.bias)
        if i < 2:
            h = np.maximum(h, 0.0)
    np.testing.assert_allclose(model(jnp.asarray(x)), h, rtol=1e-5, atol=1e-6)
    # A single sample and any batch shape give the same rows.
    np.testing.assert_allclose(model(jnp.asarray(x[3])), h[3], rtol=1e-5, atol=1e-6)
    assert model(jnp.zeros((2, 3, 20))).shape == (2, 3, 5)


def test_flatten_scale():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    np.testing.assert_allclose(flatten_scale(x), [[0.0, 1.0, 0.2, 0.4]], rtol=1e-6)
    assert flatten_scale(np.ones((2, 3), np.float32)).dtype == jnp.float32


def test_shape_and_parameter_errors(getkey):
    model = MLP(784, 32, 10, key=getkey())
    with pytest.raises(ValueError, match=r"MLP: x must have shape \(\.\.\., 784\)"):
        model(jnp.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match="MLP.in_size"):
        MLP(0, 32, 10, key=getkey())
    with pytest.raises(ValueError, match="MLP.hidden"):
        MLP(784, (32, -1), 10, key=getkey())
    with pytest.raises(ValueError, match="MLP.out_size"):
        MLP(784, 32, 2.5, key=getkey())
