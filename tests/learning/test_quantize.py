"""Straight-through quantisers (`memjax.learning.quantize`): levels, exact boundaries,
gradients, fixed-point storage."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memjax.learning.quantize import (
    fixed_point,
    level_index,
    level_value,
    quantize_levels,
    sign_hardtanh_ste,
    sign_ste,
)


def _reference_index(w, k, w_max=1.0):
    """Float64 count of the decision boundaries at or below ``w``."""
    bounds = w_max * (2.0 * np.arange(k - 1) + 2 - k) / (k - 1)  # half-way between levels
    return (np.asarray(w, np.float64)[:, None] >= bounds[None]).sum(1)


def test_sign_ste_values_and_gradient():
    x = jnp.array([-2.0, -0.5, 0.0, 0.3, 4.0])
    np.testing.assert_array_equal(sign_ste(x), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(jax.grad(lambda a: jnp.sum(sign_ste(a) * 3.0))(x), 3.0)


def test_sign_hardtanh_ste_gradient():
    x = jnp.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.01])
    np.testing.assert_array_equal(sign_hardtanh_ste(x), [-1, -1, -1, 1, 1, 1, 1])
    g = jax.grad(lambda a: jnp.sum(sign_hardtanh_ste(a) * jnp.arange(7.0)))(x)
    np.testing.assert_array_equal(g, [0, 1, 2, 3, 4, 5, 0])


def test_quantize_levels_values_and_ste():
    x = jnp.array([-3.0, -0.76, -0.74, -0.25, 0.1, 0.8, 5.0])
    np.testing.assert_allclose(quantize_levels(x, 5), [-1, -1, -0.5, 0, 0, 1, 1])
    np.testing.assert_array_equal(level_index(x, 5), [0, 0, 1, 2, 2, 4, 4])
    np.testing.assert_array_equal(quantize_levels(x, 2, 0.5), np.where(x >= 0, 0.5, -0.5))
    np.testing.assert_array_equal(jax.grad(lambda a: quantize_levels(a, 4).sum())(x), 1.0)
    # Every output is one of the levels, and the nearest one.
    y = jnp.linspace(-1.2, 1.2, 97)
    levels = np.linspace(-1, 1, 7)
    near = levels[np.argmin(np.abs(np.asarray(y)[:, None] - levels), axis=1)]
    np.testing.assert_allclose(quantize_levels(y, 7), near, atol=1e-6)


def test_fixed_point():
    x = jnp.array([-5.0, -0.26, 0.13, 3.9, 4.0])
    np.testing.assert_allclose(fixed_point(x, 4, 4.0), [-4.0, -0.5, 0.0, 3.5, 3.5])
    assert fixed_point(x, None, 4.0) is not None
    with pytest.raises(ValueError, match="bits"):
        fixed_point(x, 1, 4.0)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 7, 16])
def test_level_index_exact_next_to_every_boundary(k):
    """Weights a few float32 ulps either side of each boundary (tiny weights either side
    of a boundary at 0) get the level of the side they are on, not the rounded one."""
    w = []
    for b in (2.0 * np.arange(k - 1) + 2 - k) / (k - 1):
        if b == 0:
            w += [-6e-8, -1e-9, -1e-30, 1e-30, 1e-9, 6e-8]
        else:
            b32 = np.float32(b)
            w += [b32 + n * np.spacing(b32) for n in (-40, -5, -2, 2, 5, 40)]
    w = np.asarray(w, np.float32)
    got = jax.jit(level_index, static_argnums=(1,))(jnp.asarray(w), k)
    np.testing.assert_array_equal(got, _reference_index(w, k))


def test_ties_go_up_and_random_weights_match_the_reference():
    assert int(level_index(jnp.float32(0.0), 2)) == 1
    assert int(level_index(jnp.float32(0.0), 4)) == 2
    w = np.random.default_rng(0).uniform(-1.4, 1.4, 20000).astype(np.float32)
    for k in (2, 3, 4, 6, 9):
        np.testing.assert_array_equal(level_index(w, k), _reference_index(w, k))
        np.testing.assert_array_equal(
            level_index(2.5 * w, k, 2.5), _reference_index(2.5 * w, k, 2.5)
        )


def test_quantize_levels_is_exactly_a_level():
    """The forward value is the level itself (no ``w + (q - w)`` rounding), under jit."""
    w = jnp.asarray(np.random.default_rng(1).normal(0, 0.7, 5000), jnp.float32)
    w = jnp.concatenate([w, jnp.array([-5e-8, -1e-20, 3e-8], jnp.float32)])
    for k in (2, 3, 5):
        q = jax.jit(quantize_levels, static_argnums=(1,))(w, k)
        np.testing.assert_array_equal(q, level_value(level_index(w, k), k, dtype=jnp.float32))
    q2 = quantize_levels(w, 2)
    np.testing.assert_array_equal(q2, np.where(np.asarray(w) >= 0, 1.0, -1.0))


def test_weight_decayed_toward_zero_reads_its_own_sign():
    """An unused BNN weight under L2 and Adam (zero task gradient) is driven toward 0
    (Adam normalises the tiny decay gradient) and settles, after a damped oscillation,
    at a tiny value of either sign; its binary value is that sign, as ``torch.sign``
    reads it in the reference code, not ``+1`` for every weight within float32 rounding
    of 0."""
    opt = optax.chain(optax.add_decayed_weights(1e-7), optax.adam(0.005))
    w = jnp.asarray(np.linspace(-0.3, 0.3, 12), jnp.float32)
    state = opt.init(w)

    @jax.jit
    def step(w, state):
        u, state = opt.update(jnp.zeros_like(w), state, w)
        return optax.apply_updates(w, u), state

    for _ in range(800):
        w, state = step(w, state)
    w_np = np.asarray(w)
    assert np.all(np.abs(w_np) < 1e-8) and np.all(w_np != 0)
    assert 0 < np.sum(w_np < 0) < len(w_np)  # both signs occur
    np.testing.assert_array_equal(quantize_levels(w, 2), np.where(w_np >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(level_index(w, 4), np.where(w_np >= 0, 2, 1))


def test_quantize_levels_refuses_bad_input():
    """Integer weights would be truncated onto integer levels (0 for +-1/3): refused by
    name, as are bad level settings."""
    with pytest.raises(TypeError, match="quantize_levels: w must be floating point; got dtype int"):
        quantize_levels(jnp.array([1, -1, 0]), 4)
    with pytest.raises(ValueError, match="quantize_levels.w_max must be finite and > 0"):
        quantize_levels(jnp.zeros(3), 2, "a")
    with pytest.raises(ValueError, match="quantize_levels.n_levels"):
        quantize_levels(jnp.zeros(3), 1)
