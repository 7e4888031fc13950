"""Device-to-device populations: statistics of the drawn parameters, vmap equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax as mj
from memjax.devices import Biolek, HPMemristor
from memjax.populations import index, population_size, sample_population
from memjax.waveforms import Sine


def test_lognormal_spread_statistics(getkey):
    pop = sample_population(HPMemristor(), getkey(), 20_000, {"R_off": 0.1, "mu_v": 0.3})
    assert population_size(pop) == 20_000
    log_roff = np.log(np.asarray(pop.R_off) / 16e3)
    assert abs(log_roff.mean()) < 3e-3 and abs(log_roff.std() - 0.1) < 3e-3
    log_mu = np.log(np.asarray(pop.mu_v) / 1e-14)
    assert abs(log_mu.std() - 0.3) < 1e-2
    # Unspread parameters are copied.
    np.testing.assert_array_equal(np.asarray(pop.R_on), 100.0)


def test_normal_and_uniform(getkey):
    pop = sample_population(
        HPMemristor(),
        getkey(),
        20_000,
        {"D": 0.05, "R_off": 0.2},
        distribution={"D": "normal", "R_off": "uniform"},
    )
    rel = np.asarray(pop.D) / 10e-9 - 1
    assert abs(rel.std() - 0.05) < 2e-3
    u = np.asarray(pop.R_off) / 16e3 - 1
    assert u.min() >= -0.2 and u.max() <= 0.2 and abs(u.std() - 0.2 / np.sqrt(3)) < 3e-3


def test_nested_field(getkey):
    pop = sample_population(HPMemristor(window=Biolek(p=2.0)), getkey(), 100, {"window.p": 0.1})
    assert np.asarray(pop.window.p).shape == (100,)
    assert np.std(np.asarray(pop.window.p)) > 0


def test_population_simulation_equals_per_device(getkey):
    pop = sample_population(HPMemristor(), getkey(), 8, {"R_off": 0.2, "x0": 0.1})
    kw = dict(dt=1e-3, n_steps=200)
    direct = mj.simulate(pop, Sine(1.0, 1.0), **kw)
    mapped = mj.simulate_population(mj.simulate, pop, Sine(1.0, 1.0), **kw)
    assert direct.x.shape == (8, 200) and mapped.x.shape == (8, 200)
    np.testing.assert_allclose(direct.x, mapped.x, rtol=1e-6)
    for k in (0, 5):
        one = mj.simulate(index(pop, k), Sine(1.0, 1.0), **kw)
        np.testing.assert_allclose(one.x, direct.x[k], rtol=1e-6)
    # The spread actually changes the dynamics.
    assert float(jnp.std(direct.x[:, -1])) > 0


def test_population_simulation_under_jit_with_integer_leaf(getkey):
    # Biolek's p = 2 is an int leaf: under jit a 0-d integer tracer, shared, not mapped.
    pop = sample_population(HPMemristor(window=Biolek(p=2)), getkey(), 6, {"R_off": 0.2})
    kw = dict(dt=1e-3, n_steps=50)
    run = jax.jit(lambda p: mj.simulate_population(mj.simulate, p, Sine(1.0, 1.0), **kw))
    jitted = run(pop)
    eager = mj.simulate_population(mj.simulate, pop, Sine(1.0, 1.0), **kw)
    assert jitted.x.shape == (6, 50)
    np.testing.assert_allclose(jitted.x, eager.x, rtol=1e-6)
    np.testing.assert_allclose(
        jitted.x[3], mj.simulate(index(pop, 3), Sine(1.0, 1.0), **kw).x, rtol=1e-6
    )


def test_bad_spread(getkey):
    with pytest.raises(ValueError, match="no parameter 'R_of'"):
        sample_population(HPMemristor(), getkey(), 10, {"R_of": 0.1})
    with pytest.raises(ValueError, match="spread"):
        sample_population(HPMemristor(), getkey(), 10, {"R_off": -0.1})
    with pytest.raises(ValueError, match="n must be"):
        sample_population(HPMemristor(), getkey(), 0, {})
    with pytest.raises(ValueError, match="distribution"):
        sample_population(HPMemristor(), getkey(), 10, {"R_off": 0.1}, distribution="cauchy")
    # A spread so wide that some R_on >= R_off is caught by the model's own validation.
    with pytest.raises(ValueError, match="R_on must be < R_off"):
        sample_population(HPMemristor(R_on=1e4, R_off=1.1e4), getkey(), 1000, {"R_on": 0.5})


# ---- invalid draws are never silent, also under jit ---------------------------------
def test_lognormal_stays_positive_with_median_nominal(getkey):
    pop = sample_population(HPMemristor(R_off=1e9), getkey(), 20_000, {"R_off": 3.0})
    r = np.asarray(pop.R_off)
    assert np.all(r > 0)
    assert abs(np.log(np.median(r) / 1e9)) < 0.05


def test_invalid_normal_draw_raises_eagerly(getkey):
    with pytest.raises(ValueError, match="R_off must be finite and > 0"):
        sample_population(HPMemristor(), getkey(), 1000, {"R_off": 10}, distribution="normal")


def test_invalid_normal_draw_raises_under_jit(getkey):
    f = jax.jit(
        lambda k: (
            sample_population(HPMemristor(), k, 1000, {"R_off": 10}, distribution="normal").R_off
        )
    )
    with pytest.raises(Exception, match="R_off must be finite and > 0"):
        jax.block_until_ready(f(getkey()))


def test_invalid_lognormal_order_raises_under_jit(getkey):
    """A wide log-normal spread keeps R_off positive but puts it below R_on."""
    f = jax.jit(lambda k: sample_population(HPMemristor(), k, 1000, {"R_off": 10}).R_off)
    with pytest.raises(Exception, match="R_on must be < R_off"):
        jax.block_until_ready(f(getkey()))


def test_nested_invalid_draw_raises_under_jit(getkey):
    f = jax.jit(
        lambda k: (
            sample_population(
                HPMemristor(window=Biolek(p=1.0)), k, 1000, {"window.p": 10}, distribution="normal"
            ).window.p
        )
    )
    with pytest.raises(Exception, match="Biolek.p must be finite and > 0"):
        jax.block_until_ready(f(getkey()))


def test_valid_draw_under_jit_matches_eager(getkey):
    key = getkey()
    f = jax.jit(
        lambda k: (
            sample_population(HPMemristor(), k, 100, {"R_off": 0.1}, distribution="normal").R_off
        )
    )
    eager = sample_population(HPMemristor(), key, 100, {"R_off": 0.1}, distribution="normal")
    np.testing.assert_allclose(np.asarray(f(key)), np.asarray(eager.R_off), rtol=1e-6)


def test_check_false_skips_the_traced_check(getkey):
    f = jax.jit(
        lambda k: (
            sample_population(
                HPMemristor(), k, 1000, {"R_off": 10}, distribution="normal", check=False
            ).R_off
        )
    )
    assert np.any(np.asarray(f(getkey())) < 0)
