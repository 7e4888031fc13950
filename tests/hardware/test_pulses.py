"""PulseDevice: the NeuroSim potentiation/depression curves, asymmetry, noise, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.hardware import PulseDevice


def test_curves_hit_bounds_and_invert():
    p = PulseDevice(A_p=5.0, A_d=2.0, c2c_sigma=0.0)
    P = jnp.arange(p.n_pulses + 1.0)
    g = p.g_ltp(P)
    np.testing.assert_allclose([g[0], g[-1]], [p.G_min, p.G_max], rtol=1e-5)
    B = (p.G_max - p.G_min) / (1 - np.exp(-p.n_pulses / p.A_p))
    np.testing.assert_allclose(
        np.asarray(g), B * (1 - np.exp(-np.asarray(P) / 5.0)) + p.G_min, rtol=1e-5
    )
    np.testing.assert_allclose(np.asarray(p.p_ltp(g))[:-1], np.asarray(P)[:-1], atol=1e-2)
    d = p.g_ltd(P)
    np.testing.assert_allclose([d[0], d[-1]], [p.G_min, p.G_max], rtol=1e-4)
    # Saturating steps: the first potentiation step is the largest; depression from
    # G_max drops fastest first (asymmetric: A_d < A_p gives a steeper start).
    steps = np.diff(np.asarray(g))
    assert steps[0] > steps[-1] > 0
    assert (p.G_max - float(d[-2])) > steps[0]


def test_open_loop_write_is_bent_and_aware_write_is_not():
    p = PulseDevice(c2c_sigma=0.0)
    target = jnp.linspace(p.G_min, p.G_max, 9)
    naive = p.program(None, target)
    aware = p.program(None, target, aware=True)
    step = (p.G_max - p.G_min) / p.n_pulses
    assert np.max(np.abs(np.asarray(aware - target))) < step
    assert np.all(np.asarray(naive[1:-1] - target[1:-1]) > step)  # overshoot of a saturating cell


def test_update_directions_noise_and_clip():
    p = PulseDevice(c2c_sigma=0.01)
    G = jnp.full((2000,), 0.5 * (p.G_min + p.G_max))
    up = p.update(None, G, jnp.full_like(G, 1e-6))
    dn = p.update(None, G, jnp.full_like(G, -1e-6))
    assert float(up[0]) > float(G[0]) > float(dn[0])
    noisy = p.apply_pulses(jax.random.key(0), G, jnp.full_like(G, 4.0))
    clean = p.apply_pulses(None, G, jnp.full_like(G, 4.0))
    sd = float(jnp.std(noisy - clean))
    assert abs(sd / (0.01 * (p.G_max - p.G_min) * 2.0) - 1) < 0.1
    big = p.apply_pulses(jax.random.key(1), G, jnp.full_like(G, 1000.0))
    assert float(big.max()) <= p.G_max and float(big.min()) >= p.G_min


def test_bad_parameters():
    with pytest.raises(ValueError, match="A_p"):
        PulseDevice(A_p=0.0)
    with pytest.raises(ValueError, match="G_min"):
        PulseDevice(G_min=2e-5)
