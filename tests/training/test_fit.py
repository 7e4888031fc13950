"""The training loop on 2,000 real MNIST images: learning, determinism, resume, projection."""

import gzip

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import tree_allclose

from memjax.train import TrainState, accuracy, evaluate, fit, restore_checkpoint


def _read_idx(path, magic):
    raw = gzip.decompress(path.read_bytes())
    assert int.from_bytes(raw[:4], "big") == magic
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def mnist_small():
    import os
    from pathlib import Path

    d = os.environ.get("MEMJAX_DATA_DIR")
    if not d or not (Path(d) / "mnist").is_dir():
        pytest.skip("no MEMJAX_DATA_DIR with the MNIST IDX files")
    root = Path(d) / "mnist"
    x = _read_idx(root / "train-images-idx3-ubyte.gz", 2051)[:2600].reshape(-1, 784)
    y = _read_idx(root / "train-labels-idx1-ubyte.gz", 2049)[:2600].astype(np.int32)
    # uint8 images: every test scales them through `preprocess`.
    return (x[:2000], y[:2000]), (x[2000:], y[2000:])


def scale(xb):
    return jnp.asarray(xb, jnp.float32) / 255.0


class Net(eqx.Module):
    l1: eqx.nn.Linear
    l2: eqx.nn.Linear
    noise: float = eqx.field(static=True, default=0.1)

    def __init__(self, key, noise=0.1):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(784, 32, key=k1)
        self.l2 = eqx.nn.Linear(32, 10, key=k2)
        self.noise = noise

    def __call__(self, x):
        return self.l2(jax.nn.relu(self.l1(x)))


def loss_fn(model, x, y, key):
    # Input noise drawn from the per-step key: resume must restore the key exactly.
    x = x + model.noise * jax.random.normal(key, x.shape)
    logits = jax.vmap(model)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, {"acc": accuracy(logits, y)}


def eval_fn(model, x, y):
    logits = jax.vmap(model)(x)
    return {
        "accuracy": accuracy(logits, y),
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
    }


# One optimizer object for all runs: the compiled step is cached on (loss_fn, optimizer, ...)
# identity, so the tests compile it once.
ADAM = optax.adam(3e-3)


def run(train, *, epochs=2, seed=0, **kw):
    kw.setdefault("progress", False)
    return fit(
        Net(jax.random.key(1)),
        loss_fn,
        ADAM,
        train,
        epochs=epochs,
        batch_size=100,
        seed=seed,
        preprocess=scale,
        **kw,
    )


def arrays(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))


def assert_identical(m1, m2):
    assert tree_allclose(arrays(m1), arrays(m2), rtol=0, atol=0)


def test_learns_and_history(mnist_small, capsys):
    train, test = mnist_small
    model, hist = run(train, epochs=3, eval_fn=eval_fn, eval_data=test, progress=True)
    err = capsys.readouterr().err
    assert "epoch 3/3: train_loss" in err and "accuracy" in err  # bar + summary lines
    assert hist["epoch"] == [1, 2, 3]
    assert set(hist) == {"epoch", "train_loss", "train_acc", "seconds", "accuracy", "loss"}
    assert all(len(v) == 3 for v in hist.values())
    assert hist["train_loss"][2] < hist["train_loss"][0] < np.log(10)
    assert hist["accuracy"][-1] > 0.8  # chance is 0.1
    # The recorded held-out metrics are what `evaluate` gives for the returned model.
    again = evaluate(model, eval_fn, *test, batch_size=256, preprocess=scale)
    np.testing.assert_allclose(again["accuracy"], hist["accuracy"][-1], atol=1e-6)


def test_evaluate_weights_batches_by_size(mnist_small):
    _, (x, y) = mnist_small
    model = Net(jax.random.key(3))
    logits = np.asarray(jax.vmap(model)(scale(x)))
    want = float(np.mean(np.argmax(logits, 1) == y))
    # 600 samples in batches of 250: 250 + 250 + 100; a plain mean of batch means is wrong.
    got = evaluate(model, eval_fn, x, y, batch_size=250, preprocess=scale)["accuracy"]
    np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="same number of samples"):
        evaluate(model, eval_fn, x, y[:-1])


def test_same_seed_bit_identical_other_seed_differs(mnist_small):
    train, _ = mnist_small
    m1, h1 = run(train, epochs=1)
    m2, h2 = run(train, epochs=1)
    m3, _ = run(train, epochs=1, seed=1)
    assert_identical(m1, m2)
    assert h1["train_loss"] == h2["train_loss"]
    assert not np.array_equal(np.asarray(m1.l1.weight), np.asarray(m3.l1.weight))


def test_resume_equals_uninterrupted(mnist_small, tmp_path):
    train, test = mnist_small
    kw = dict(eval_fn=eval_fn, eval_data=test)
    straight, h_straight = run(train, epochs=2, **kw)
    ckpt = tmp_path / "ckpt"
    _, h1 = run(train, epochs=1, checkpoint_dir=ckpt, **kw)
    assert h1["epoch"] == [1]
    resumed, h_resumed = run(train, epochs=2, checkpoint_dir=ckpt, **kw)
    assert_identical(straight, resumed)
    for k in h_straight:
        if k != "seconds":
            assert h_resumed[k] == h_straight[k], k
    # Nothing left to do: the checkpointed model comes back unchanged.
    again, h_again = run(train, epochs=2, checkpoint_dir=ckpt, **kw)
    assert_identical(straight, again)
    assert h_again["epoch"] == [1, 2]
    state = restore_checkpoint(ckpt, Net(jax.random.key(1)), ADAM)
    assert isinstance(state, TrainState)
    assert (state.epoch, state.step) == (2, 2 * 20)
    assert_identical(straight, state.model)
    # The last two checkpoints are kept.
    assert sorted(p.name for p in ckpt.iterdir() if p.name.isdigit()) == ["1", "2"]
    # resume=False starts again from scratch (and replaces the checkpoints).
    _, h_fresh = run(train, epochs=1, checkpoint_dir=ckpt, resume=False)
    assert h_fresh["epoch"] == [1]
    assert restore_checkpoint(ckpt, Net(jax.random.key(1)), ADAM).epoch == 1


def test_resume_rejects_other_architecture(mnist_small, tmp_path):
    train, _ = mnist_small
    run(train, epochs=1, checkpoint_dir=tmp_path)
    other = eqx.nn.MLP(784, 10, 16, 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="checkpoint"):
        fit(
            other,
            lambda m, x, y, k: (jnp.mean(jax.vmap(m)(x)), {}),
            optax.sgd(0.1),
            train,
            epochs=2,
            batch_size=100,
            preprocess=scale,
            checkpoint_dir=tmp_path,
            progress=False,
        )


def test_project_applied_after_every_step(mnist_small):
    train, _ = mnist_small
    free, _ = run(train, epochs=1)
    assert float(jnp.max(jnp.abs(free.l1.weight))) > 0.05
    clip = lambda m: jax.tree.map(lambda w: jnp.clip(w, -0.05, 0.05), m)
    clipped, hist = run(train, epochs=1, project=clip)
    for w in arrays(clipped):
        assert float(jnp.max(jnp.abs(w))) <= np.float32(0.05)
    assert np.isfinite(hist["train_loss"][0])


def test_matches_hand_written_projected_sgd(mnist_small):
    # Full-batch SGD (one step per epoch, no noise) against a plain loop: grad, update,
    # clip after every step.
    (x, y), _ = mnist_small
    x, y = x[:500], y[:500]
    model = Net(jax.random.key(2), noise=0.0)
    clip = lambda m: jax.tree.map(lambda w: jnp.clip(w, -0.04, 0.04), m)
    got, _ = fit(
        model,
        loss_fn,
        optax.sgd(0.5),
        (x, y),
        epochs=3,
        batch_size=500,
        preprocess=scale,
        project=clip,
        progress=False,
    )

    @eqx.filter_jit
    def sgd_step(m, xs, ys):
        g = jax.grad(lambda m: loss_fn(m, xs, ys, jax.random.key(0))[0])(m)
        return clip(jax.tree.map(lambda w, d: w - 0.5 * d, m, g))

    ref = model
    for _ in range(3):
        ref = sgd_step(ref, scale(x), jnp.asarray(y))
    assert tree_allclose(arrays(got), arrays(ref), rtol=1e-4, atol=1e-6)
    assert not np.allclose(got.l1.weight, model.l1.weight)


def test_filter_spec_freezes_leaves(mnist_small):
    train, _ = mnist_small
    model = Net(jax.random.key(1))
    spec = jax.tree.map(lambda _: False, model)
    spec = eqx.tree_at(lambda s: (s.l2.weight, s.l2.bias), spec, (True, True))
    trained, _ = fit(
        model,
        loss_fn,
        ADAM,
        train,
        epochs=1,
        batch_size=100,
        preprocess=scale,
        filter_spec=spec,
        progress=False,
    )
    np.testing.assert_array_equal(trained.l1.weight, model.l1.weight)
    assert not np.array_equal(trained.l2.weight, model.l2.weight)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=11), "batch_size"),
        (dict(eval_batch_size=0), "eval_batch_size"),
        (dict(train_data=(np.zeros((10, 784)), np.zeros(9))), "train_data"),
        (dict(eval_fn=eval_fn), "eval_data"),
        (dict(eval_fn=eval_fn, eval_data=(np.zeros((4, 784)), np.zeros(5))), "eval_data"),
        (dict(on_mismatch="ignore"), "on_mismatch must be 'raise' or 'restart'"),
        (dict(on_nonfinite="warn"), "on_nonfinite must be 'raise' or 'skip'"),
    ],
)
def test_bad_arguments(kw, match):
    args = dict(
        train_data=(np.zeros((10, 784), np.float32), np.zeros(10, np.int32)),
        epochs=1,
        batch_size=5,
        progress=False,
    )
    args.update(kw)
    train = args.pop("train_data")
    with pytest.raises(ValueError, match=match):
        fit(Net(jax.random.key(0)), loss_fn, optax.sgd(0.1), train, **args)
