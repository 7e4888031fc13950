"""The STDP rule alone: sign of the pulses, probabilities (hard and soft bounds), window
timing, parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.learning.stdp import STDP, pre_recent, stdp_pulses, steps_since


def test_pulse_sign():
    rule = STDP(p_pot=1.0, p_dep=1.0)
    pre = jnp.array([True, False, True, False])
    post = jnp.array([False, True, True])
    p = stdp_pulses(rule, jax.random.key(1), pre, post)
    np.testing.assert_array_equal(p, [[0, 1, 1], [0, -1, -1], [0, 1, 1], [0, -1, -1]])
    np.testing.assert_array_equal(rule(jax.random.key(1), pre, post), p)


def test_pulse_probabilities():
    rule = STDP(p_pot=0.3, p_dep=0.1)
    pre = jnp.arange(200) < 100
    p = np.asarray(stdp_pulses(rule, jax.random.key(2), pre, jnp.ones(100, bool)))
    assert set(np.unique(p[:100])) <= {0, 1} and set(np.unique(p[100:])) <= {-1, 0}
    assert abs(p[:100].mean() - 0.3) < 0.02
    assert abs(-p[100:].mean() - 0.1) < 0.01
    silent = stdp_pulses(rule, jax.random.key(2), pre, jnp.zeros(100, bool))
    assert not np.any(np.asarray(silent))


def test_soft_bounds_scale_probabilities_by_the_level():
    rule = STDP(p_pot=0.4, p_dep=0.3, bounds="soft")
    n = 20000
    pre = jnp.arange(n) < n // 2
    for g in (0.0, 0.25, 1.0):
        level = jnp.full((n, 1), g)
        p = np.asarray(stdp_pulses(rule, jax.random.key(3), pre, jnp.ones(1, bool), None, level))
        assert abs(p[: n // 2].mean() - 0.4 * (1 - g)) < 0.015
        assert abs(-p[n // 2 :].mean() - 0.3 * g) < 0.015
    hard = stdp_pulses(STDP(p_pot=0.4, p_dep=0.3), jax.random.key(3), pre, jnp.ones(1, bool))
    level = jnp.full((n, 1), 0.5)
    ignored = stdp_pulses(
        STDP(p_pot=0.4, p_dep=0.3), jax.random.key(3), pre, jnp.ones(1, bool), None, level
    )
    np.testing.assert_array_equal(hard, ignored)  # hard bounds ignore the level


def test_soft_bounds_need_the_level():
    with pytest.raises(ValueError, match="level"):
        stdp_pulses(STDP(bounds="soft"), jax.random.key(0), jnp.ones(3, bool), jnp.ones(2, bool))


def test_window_timing():
    # an input spike at step 0; the post spike d steps later sees it iff d < window
    since = steps_since(jnp.full((1,), 99), jnp.ones(1))
    for d in range(5):
        assert bool(pre_recent(since, 3)[0]) == (d < 3)
        since = steps_since(since, jnp.zeros(1))


def test_bad_parameters():
    with pytest.raises(ValueError, match="STDP.window"):
        STDP(window=0)
    with pytest.raises(ValueError, match="STDP.p_pot"):
        STDP(p_pot=1.5)
    with pytest.raises(ValueError, match="STDP.p_dep"):
        STDP(p_dep=-0.1)
    with pytest.raises(ValueError, match="STDP.bounds"):
        STDP(bounds="medium")
