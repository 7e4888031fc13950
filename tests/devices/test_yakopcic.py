"""Yakopcic model against a NumPy transcription of the published equations (Yakopcic et
al. 2011 eqs. 1-5, the 2013 generalised model's eta), closed forms, the diffrax
reference and finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, device_outputs_finite, rel_err
from scipy.integrate import quad

from memjax.devices import simulate, simulate_reference
from memjax.devices.yakopcic import YakopcicMemristor
from memjax.waveforms import Constant, Sine

# The EDL 2011 fit to the Oblea et al. device (the model's defaults).
OBLEA = dict(
    a1=0.17,
    a2=0.17,
    b=0.05,
    V_p=0.16,
    V_n=0.15,
    A_p=4000.0,
    A_n=4000.0,
    x_p=0.3,
    x_n=0.5,
    alpha_p=1.0,
    alpha_n=5.0,
    eta=1.0,
)


# ---- independent NumPy transcription -----------------------------------------------
def np_g(V, V_p, V_n, A_p, A_n, **_):
    return np.where(
        V > V_p,
        A_p * (np.exp(V) - np.exp(V_p)),
        np.where(V < -V_n, -A_n * (np.exp(-V) - np.exp(V_n)), 0.0),
    )


def np_f(x, V, x_p, x_n, alpha_p, alpha_n, eta, **_):
    w_p = (x_p - x) / (1 - x_p) + 1
    w_n = x / (1 - x_n)
    pos = np.where(x >= x_p, np.exp(-alpha_p * (x - x_p)) * w_p, 1.0)
    neg = np.where(x <= 1 - x_n, np.exp(alpha_n * (x + x_n - 1)) * w_n, 1.0)
    return np.where(eta * V >= 0, pos, neg)


def np_rate(x, V, p):
    return p["eta"] * np_g(V, **p) * np_f(x, V, **p)


def np_current(x, V, a1, a2, b, **_):
    return np.where(V >= 0, a1 * x * np.sinh(b * V), a2 * x * np.sinh(b * V))


XS = np.linspace(0.0, 1.0, 21)  # includes x_p = 0.3 and 1 - x_n = 0.5
VS = np.array([-2.0, -0.6, -0.15, -0.149, -0.05, 0.0, 0.05, 0.16, 0.161, 0.45, 2.0])


@pytest.mark.parametrize("over", [{}, dict(a2=0.11, b=2.0, alpha_p=2.5, x_n=0.3), dict(eta=-1.0)])
def test_rate_and_current_match_numpy(x64, over):
    p = {**OBLEA, **over}
    dev = YakopcicMemristor(**p)
    xx, vv = np.meshgrid(XS, VS)
    np.testing.assert_allclose(dev.current(xx, vv), np_current(xx, vv, **p), rtol=1e-13, atol=0)
    got = dev.rate(xx, vv)
    np.testing.assert_allclose(got, np_rate(xx, vv, p), rtol=1e-12, atol=1e-300)
    assert np.count_nonzero(np.asarray(got) > 0) > 20 and np.count_nonzero(np.asarray(got) < 0) > 20


def test_zero_rate_inside_threshold_window(x64):
    dev = YakopcicMemristor()
    xx, vv = np.meshgrid(XS, np.linspace(-0.15, 0.16, 31))  # [-V_n, V_p] inclusive
    assert np.all(np.asarray(dev.rate(xx, vv)) == 0.0)
    g = jax.jit(jax.vmap(jax.grad(dev.rate, argnums=(0, 1))))(
        xx[:, 1:-1].ravel(), vv[:, 1:-1].ravel()
    )
    assert all(np.all(np.asarray(a) == 0.0) for a in g)
    assert float(dev.rate(0.5, 0.17)) > 0 and float(dev.rate(0.5, -0.16)) < 0


def test_motion_function_values(x64):
    dev = YakopcicMemristor()
    np.testing.assert_allclose(dev.f(0.3, 1.0), 1.0, rtol=1e-15)  # continuous at x_p
    np.testing.assert_allclose(dev.f(0.5, -1.0), 1.0, rtol=1e-15)  # and at 1 - x_n
    assert float(dev.f(1.0, 1.0)) == 0.0 and float(dev.f(0.0, -1.0)) == 0.0  # stops at bounds
    np.testing.assert_array_equal(dev.f(np.linspace(0, 0.29, 5), 1.0), 1.0)
    np.testing.assert_array_equal(dev.f(np.linspace(0.51, 1.0, 5), -1.0), 1.0)
    # Free to leave each bound: f(0) = 1 moving up, f(1) = 1 moving down.
    assert float(dev.f(0.0, 1.0)) == 1.0 and float(dev.f(1.0, -1.0)) == 1.0
    # Value inside the decay region, by hand: x = 0.65, V > 0.
    np.testing.assert_allclose(dev.f(0.65, 1.0), np.exp(-0.35) * (1 - 0.35 / 0.7), rtol=1e-14)
    # eta = -1 flips which branch a positive voltage sees.
    flip = YakopcicMemristor(eta=-1.0)
    np.testing.assert_allclose(flip.f(0.2, 1.0), np.exp(5 * (0.2 - 0.5)) * 0.2 / 0.5, rtol=1e-14)


@pytest.mark.parametrize("V,x0", [(0.3, 0.11), (-0.3, 0.9)])
def test_constant_voltage_matches_quadrature(x64, V, x0):
    # dx/dt = g(V) f(x): linear while f = 1, then t(x) = t_k + int dx / (g f(x)).
    p = OBLEA
    dev = YakopcicMemristor(x0=x0)
    g = float(np_g(np.asarray(V), **p))
    knee = 0.3 if V > 0 else 0.5
    f = lambda x: float(np_f(np.asarray(x), np.asarray(V), **p))
    tr = simulate(dev, Constant(V), dt=2e-5, n_steps=51, substeps=40)
    xs, ts = np.asarray(tr.x), np.asarray(tr.t)
    assert (xs[-1] - knee) * np.sign(V) > 0.15  # went well past the knee
    t_knee = (knee - x0) / g
    t_exp = np.array(
        [
            (x - x0) / g
            if (x - knee) * np.sign(V) <= 0
            else t_knee + quad(lambda y: 1.0 / (g * f(y)), knee, x, epsrel=1e-12)[0]
            for x in xs
        ]
    )
    np.testing.assert_allclose(t_exp[1:], ts[1:], rtol=1e-6)
    np.testing.assert_allclose(tr.i, np_current(xs, V, **p), rtol=1e-13)


def test_scan_matches_diffrax(x64):
    dev = YakopcicMemristor()
    drive = Sine(0.45, 100.0)
    tr = simulate(dev, drive, dt=2.5e-5, n_steps=1201, substeps=2)
    ref = simulate_reference(dev, drive, tr.t)
    assert float(tr.x.max() - tr.x.min()) > 0.5
    assert rel_err(tr.x, ref.x) < 1e-4 and rel_err(tr.i, ref.i) < 1e-4


def test_gradients_match_finite_differences(x64):
    # d loss / d (a1, A_p scale, drive amplitude).
    base = YakopcicMemristor()

    @jax.jit
    def fn(p):
        dev = eqx.tree_at(lambda d: (d.a1, d.A_p), base, (p[0], p[1] * base.A_p))
        tr = simulate(dev, Sine(p[2], 100.0), dt=1e-4, n_steps=101, substeps=2)
        return jnp.sum(tr.i**2) * 1e6

    p0 = np.array([0.17, 1.0, 0.4])
    g = jax.grad(fn)(jnp.asarray(p0))
    fd = central_fd(fn, p0)
    for k in range(3):
        assert rel_err(g[k], fd[k]) < 1e-5, (k, g, fd)


def test_large_voltage_is_finite_float32():
    x = jnp.linspace(0.0, 1.0, 11, dtype=jnp.float32)
    for dev in (YakopcicMemristor(), YakopcicMemristor(b=3.0, eta=-1.0)):
        for v in (1e3, -1e3):
            assert bool(device_outputs_finite(dev, x, jnp.float32(v)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(a1=0.0), "YakopcicMemristor.a1"),
        (dict(a2=-1.0), "YakopcicMemristor.a2"),
        (dict(b=0.0), "YakopcicMemristor.b"),
        (dict(V_p=-0.1), "YakopcicMemristor.V_p"),
        (dict(V_n=float("inf")), "YakopcicMemristor.V_n"),
        (dict(A_p=0.0), "YakopcicMemristor.A_p"),
        (dict(A_n=-5.0), "YakopcicMemristor.A_n"),
        (dict(x_p=1.0), "YakopcicMemristor.x_p"),
        (dict(x_n=-0.1), "YakopcicMemristor.x_n"),
        (dict(alpha_p=-1.0), "YakopcicMemristor.alpha_p"),
        (dict(alpha_n=float("nan")), "YakopcicMemristor.alpha_n"),
        (dict(eta=0.5), "YakopcicMemristor.eta"),
        (dict(x0=1.2), "YakopcicMemristor.x0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        YakopcicMemristor(**kwargs)
