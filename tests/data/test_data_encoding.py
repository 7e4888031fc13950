"""Encoders: direct current exact, rate statistics, latency ordering and silence at 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.data import direct, latency, latency_steps, normalize, rate, scale_images


def test_scale_images():
    img = np.array([[[0, 51], [255, 128]]], np.uint8)
    x = scale_images(img)
    assert x.dtype == np.float32 and x.shape == (1, 2, 2)
    np.testing.assert_array_equal(x, img.astype(np.float32) / 255)
    assert scale_images(img, flatten=True).shape == (1, 4)
    assert normalize is scale_images
    # floats in [0, 1] are only cast; floats in 0..255 and other dtypes are rejected
    f = np.array([[0.0, 0.5, 1.0]], np.float64)
    np.testing.assert_array_equal(scale_images(f), f.astype(np.float32))
    with pytest.raises(
        ValueError,
        match=r"Task: images must be uint8 .* scaled to \[0, 1\]; got floats in \[0.0, 255.0\]",
    ):
        scale_images(np.array([[0.0, 255.0]]), owner="Task")
    with pytest.raises(TypeError, match="got int32"):
        scale_images(np.array([[0, 255]], np.int32))


def test_direct_exact(getkey):
    x = jax.random.uniform(getkey(), (3, 5))
    np.testing.assert_array_equal(direct(x), x)
    out = direct(x, 4, gain=2e-6, offset=1e-7)
    assert out.shape == (4, 3, 5)
    expected = np.broadcast_to(1e-7 + 2e-6 * np.asarray(x), (4, 3, 5))
    np.testing.assert_array_equal(np.asarray(out), expected.astype(np.float32))
    jitted = jax.jit(direct, static_argnames="n_steps")
    # XLA may fuse the multiply-add (one rounding instead of two): equal to 1 ulp.
    np.testing.assert_allclose(jitted(x, n_steps=4, gain=2e-6, offset=1e-7), out, rtol=3e-7)


def test_rate_mean_matches_probability(getkey):
    levels = jnp.array([0.0, 0.1, 0.25, 0.5, 1.0])
    x = jnp.tile(levels, (200, 1))  # (batch=200, features=5)
    T, max_rate, dt = 500, 200.0, 1e-3
    s = jax.jit(rate, static_argnames="n_steps")(getkey(), x, n_steps=T, max_rate=max_rate, dt=dt)
    assert s.shape == (T, 200, 5) and s.dtype == jnp.float32
    assert set(np.unique(np.asarray(s)).tolist()) <= {0.0, 1.0}
    p = np.asarray(levels) * max_rate * dt
    mean = np.asarray(s).mean(axis=(0, 1))
    n = T * 200
    tol = 5 * np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(mean - p) <= tol), (mean, p)
    assert mean[0] == 0.0  # zero intensity never spikes


def test_rate_independent_steps_and_keys(getkey):
    x = jnp.full((4, 100), 0.5)
    k = getkey()
    a = rate(k, x, 50, max_rate=400.0)
    np.testing.assert_array_equal(a, rate(k, x, 50, max_rate=400.0))
    assert not np.array_equal(a, rate(getkey(), x, 50, max_rate=400.0))
    assert not np.array_equal(a[0], a[1])


def test_rate_validation(getkey):
    with pytest.raises(ValueError, match=r"rate.max_rate\*dt must lie in \[0, 1\]"):
        rate(getkey(), jnp.ones(3), 10, max_rate=2000.0, dt=1e-3)
    with pytest.raises(ValueError, match="rate.max_rate"):
        rate(getkey(), jnp.ones(3), 10, max_rate=-1.0)
    with pytest.raises(ValueError, match="n_steps"):
        rate(getkey(), jnp.ones(3), 0)


def _numpy_linear_steps(x, T):
    k = np.round((1 - x) * (T - 1))
    return np.where(x > 0, k, T).astype(int)


def test_latency_linear_against_numpy(getkey):
    x = np.array(jax.random.uniform(getkey(), (6, 40)))
    x[:, :5] = 0.0
    x[:, 5] = 1.0
    T = 30
    s = np.asarray(latency(x, T))
    assert s.shape == (T, 6, 40)
    np.testing.assert_array_equal(np.asarray(latency_steps(x, T)), _numpy_linear_steps(x, T))
    # One spike per nonzero pixel, none for zeros, at the computed step.
    count = s.sum(axis=0)
    np.testing.assert_array_equal(count, (x > 0).astype(float))
    first = np.argmax(s, axis=0)
    np.testing.assert_array_equal(first[x > 0], _numpy_linear_steps(x, T)[x > 0])
    assert np.all(first[:, 5] == 0)


@pytest.mark.parametrize("method", ["linear", "log"])
def test_latency_ordering(getkey, method):
    x = jnp.sort(jax.random.uniform(getkey(), (500,)))
    x = x.at[:50].set(0.0)
    k = np.asarray(latency_steps(x, 25, method=method, tau=5.0, threshold=0.01))
    assert np.all(np.diff(k) <= 0)  # brighter -> no later
    assert np.all(k[:50] == 25)  # zeros never spike
    s = np.asarray(latency(x, 25, method=method))
    assert s[:, :50].sum() == 0 and s.sum(axis=0).max() == 1


def test_latency_log_against_numpy():
    x = np.array([0.0, 0.005, 0.011, 0.02, 0.1, 0.5, 1.0])
    tau, th, T = 5.0, 0.01, 100
    k = np.asarray(latency_steps(x, T, method="log", tau=tau, threshold=th))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.round(tau * np.log(x / (x - th)))
    ref = np.where((x > th) & (ref < T), ref, T)
    np.testing.assert_array_equal(k, ref.astype(int))
    assert k[0] == T and k[1] == T  # at or below threshold: silent
    # beyond the window: dropped
    assert latency_steps(np.array([0.0101]), 10, method="log")[0] == 10


def test_latency_validation():
    with pytest.raises(ValueError, match="method"):
        latency(jnp.ones(3), 5, method="exp")
    with pytest.raises(ValueError, match="latency.threshold"):
        latency(jnp.ones(3), 5, method="log", threshold=0.0)
