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
    stepped = jax.tree.map(
        lambda p, d: p - 0.1 * d,
        eqx.filter(xb, eqx.is_inexact_array),
        eqx.filter(g, eqx.is_inexact_array),
    )
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

    trained, hist = mj.fit(
        model, loss_fn, optax.adam(0.05), (x, y), epochs=5, batch_size=32, progress=False
    )
    acc = float(jnp.mean(jnp.argmax(trained(x), -1) == y))
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert acc > 0.9


def test_from_linen_needs_variables_or_inputs():
    with pytest.raises(ValueError, match="variables"):
        from_linen(nn.Dense(2))


# ---- stateful optimisers over many steps, eager and under nnx.jit, nested and top level ----
def _xbar(key):
    return mj.Crossbar.init(key, 6, 3, mj.CrossbarConfig(device=mj.MultiLevelRRAM()))


class _Net(nnx.Module):
    def __init__(self, xb, rngs):
        self.lin = nnx.Linear(6, 6, rngs=rngs)
        self.xb = to_nnx(xb)

    def __call__(self, v):
        return self.xb(0.2 * jax.nn.sigmoid(self.lin(v)))


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested"])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "nnx.jit"])
@pytest.mark.parametrize(
    "tx",
    [optax.adam(1e-2), optax.adamw(1e-2), optax.sgd(0.05, momentum=0.9)],
    ids=["adam", "adamw", "momentum"],
)
def test_stateful_optimiser_many_steps(getkey, nested, jit, tx):
    xb = _xbar(getkey())
    v = jax.random.uniform(getkey(), (8, 6)) * 0.2
    target = jnp.full((8, 3), 2e-6)
    model = _Net(xb, nnx.Rngs(0)) if nested else to_nnx(xb)
    loss = lambda m: jnp.mean((m(v) - target) ** 2) * 1e12
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)

    def step(model, opt):
        value, grads = nnx.value_and_grad(loss)(model)
        opt.update(model, grads)
        return value

    step = nnx.jit(step) if jit else step
    losses = [float(step(model, opt)) for _ in range(25)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses
    # the wrapped module is a memjax Crossbar again, with the trained values
    inner = model.xb.module if nested else model.module
    assert isinstance(inner, mj.Crossbar)
    assert not np.allclose(np.asarray(inner.u_pos), np.asarray(xb.u_pos))


def test_nnx_split_merge_round_trip(getkey):
    layer = to_nnx(_xbar(getkey()))
    graphdef, state = nnx.split(layer)
    again = nnx.merge(graphdef, state)
    v = jnp.ones((2, 6)) * 0.1
    np.testing.assert_array_equal(np.asarray(again(v)), np.asarray(layer(v)))


class _MNISTNet(nnx.Module):
    """Linear + sigmoid (row voltages 0..0.2 V) into a memristive crossbar read out in uA."""

    def __init__(self, key, rngs):
        self.lin = nnx.Linear(784, 64, rngs=rngs)
        self.xb = to_nnx(
            mj.Crossbar.init(key, 64, 10, mj.CrossbarConfig(device=mj.MultiLevelRRAM()))
        )

    def __call__(self, x):
        return self.xb(0.2 * jax.nn.sigmoid(self.lin(x))) * 1e5


def test_flax_training_loop_on_mnist(getkey):
    """A Flax user's loop: nnx.Optimizer(adam) under nnx.jit, several epochs on 2,000
    real MNIST images (the full IDX files where available, else the bundled sample)."""
    import os
    import warnings

    src = "idx" if os.environ.get("MEMJAX_DATA_DIR") else "sample"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.data.SampleDataWarning)
        xtr, ytr = mj.data.load("mnist", "train", source=src, limit=2000)
        xte, yte = mj.data.load("mnist", "test", source=src, limit=1000)
    xtr = mj.data.scale_images(xtr).reshape(len(xtr), -1)
    xte = mj.data.scale_images(xte).reshape(len(xte), -1)

    model = _MNISTNet(getkey(), nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        def loss(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        value, grads = nnx.value_and_grad(loss)(model)
        opt.update(model, grads)
        return value

    rng = np.random.default_rng(0)
    epoch_loss = []
    for _ in range(4):
        perm = rng.permutation(len(xtr))
        losses = [float(step(model, opt, xtr[b], ytr[b])) for b in np.split(perm, 20)]
        epoch_loss.append(np.mean(losses))
    acc = float(np.mean(np.argmax(np.asarray(model(xte)), -1) == yte))
    assert np.all(np.isfinite(epoch_loss)) and epoch_loss[-1] < epoch_loss[0]
    assert acc > 0.7, (acc, epoch_loss)
