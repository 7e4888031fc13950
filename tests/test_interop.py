"""Flax bridges: a memjax crossbar trained inside flax.nnx, a Linen module inside fit."""

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import memjax as mj
from memjax.interop import from_linen, to_nnx


def test_nnx_wrapper_trains_like_the_equinox_module(getkey):
    xb = mj.Crossbar.init(getkey(), 6, 3, mj.CrossbarConfig(device=mj.MultiLevelRRAM()))
    v = jax.random.uniform(getkey(), (4, 6)) * 0.2
    target = jnp.ones((4, 3)) * 1e-6
    loss_eqx = lambda m: jnp.mean((m(v) - target) ** 2) * 1e12

    layer = to_nnx(xb)
    np.testing.assert_allclose(layer(v), xb(v), rtol=1e-6)
    opt = nnx.Optimizer(layer, optax.sgd(0.1), wrt=nnx.Param)
    grads = nnx.grad(lambda m: loss_eqx(m))(layer)
    opt.update(layer, grads)

    # The same SGD step done on the equinox module directly.
    g = eqx.filter_grad(loss_eqx)(xb)
    stepped = jax.tree.map(lambda p, d: p - 0.1 * d, eqx.filter(xb, eqx.is_inexact_array),
                           eqx.filter(g, eqx.is_inexact_array))
    stepped = eqx.combine(stepped, eqx.filter(xb, eqx.is_inexact_array, inverse=True))
    np.testing.assert_allclose(layer.module.u_pos, stepped.u_pos, rtol=1e-6)
    assert float(loss_eqx(layer.module)) < float(loss_eqx(xb))


def test_to_nnx_rejects_non_modules():
    with pytest.raises(TypeError, match="equinox Module"):
        to_nnx(lambda x: x)


def test_linen_module_inside_fit(getkey):
    x = np.asarray(jax.random.normal(getkey(), (256, 5)), dtype=np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    model = from_linen(nn.Dense(2), getkey(), jnp.ones((1, 5)))

    def loss_fn(m, xb, yb, key):
        logits = m(xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), {}

    trained, hist = mj.fit(model, loss_fn, optax.adam(0.05), (x, y), epochs=5, batch_size=32,
                           progress=False)
    acc = float(jnp.mean(jnp.argmax(trained(x), -1) == y))
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert acc > 0.9


def test_from_linen_needs_variables_or_inputs():
    with pytest.raises(ValueError, match="variables"):
        from_linen(nn.Dense(2))
