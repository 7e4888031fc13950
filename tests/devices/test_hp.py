"""HP linear ion drift model and its windows against the published equations, closed
forms, the diffrax reference and finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, device_outputs_finite, rel_err

from memjax.devices import simulate, simulate_reference
from memjax.devices.hp import HPMemristor
from memjax.devices.windows import Biolek, Joglekar, NoWindow, Prodromakis
from memjax.integrate import odeint
from memjax.waveforms import Constant, Sine


# Independent NumPy transcriptions of the published equations.
def np_joglekar(x, p):  # Joglekar & Wolf 2009, eq. (7)
    return (
        1.0 - (2.0 * x - 1.0) ** (2 * p)
        if float(p).is_integer()
        else 1.0 - np.abs(2.0 * x - 1.0) ** (2 * p)
    )


def np_biolek(x, i, p):  # Biolek et al. 2009, eq. (9); stp(i) = 1 for i >= 0
    stp = np.where(-i >= 0, 1.0, 0.0)
    return 1.0 - np.abs(x - stp) ** (2 * p)


def np_prodromakis(x, p, j):  # Prodromakis et al. 2011, eq. (11)
    return j * (1.0 - ((x - 0.5) ** 2 + 0.75) ** p)


def np_hp(x, v, R_on, R_off, D, mu_v, F):  # Strukov et al. 2008, eqs. (1)-(2)
    M = R_on * x + R_off * (1.0 - x)
    i = v / M
    return mu_v * R_on / D**2 * i * F(x, i), i


XS = np.linspace(0.0, 1.0, 21)
VS = np.array([-2.0, -0.3, -1e-3, 0.0, 1e-3, 0.3, 2.0])


@pytest.mark.parametrize("p", [1, 2, 0.5, 1.7])
def test_windows_match_numpy(x64, p):
    xx, ii = np.meshgrid(XS, [-1e-3, -1e-9, 0.0, 1e-9, 1e-3])
    np.testing.assert_allclose(Joglekar(p=p)(xx, ii), np_joglekar(xx, p), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(Biolek(p=p)(xx, ii), np_biolek(xx, ii, p), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        Prodromakis(p=p, j=0.7)(xx, ii), np_prodromakis(xx, p, 0.7), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_array_equal(NoWindow()(xx, ii), np.ones_like(xx))


@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_window_values_at_bounds_and_midpoint(x64, p):
    J = Joglekar(p=p)
    assert float(J(0.0, 1.0)) == 0.0 and float(J(1.0, 1.0)) == 0.0
    assert float(J(0.5, 1.0)) == 1.0
    B = Biolek(p=p)
    # Current that drives x up (i > 0) is stopped at x = 1 and free at x = 0 ...
    assert float(B(1.0, 1e-3)) == 0.0 and float(B(0.0, 1e-3)) == 1.0
    # ... and current that drives x down is stopped at x = 0 and free at x = 1.
    assert float(B(0.0, -1e-3)) == 0.0 and float(B(1.0, -1e-3)) == 1.0
    np.testing.assert_allclose(B(0.5, 1e-3), 1 - 0.25**p, rtol=1e-14)
    np.testing.assert_allclose(B(0.5, -1e-3), 1 - 0.25**p, rtol=1e-14)
    for j in (0.5, 1.0, 2.0):
        P = Prodromakis(p=p, j=j)
        np.testing.assert_allclose([P(0.0, 1.0), P(1.0, 1.0)], 0.0, atol=1e-15)
        np.testing.assert_allclose(P(0.5, 1.0), j * (1 - 0.75**p), rtol=1e-14)


def test_window_gradients_finite_where_base_vanishes():
    # (u^2)^p with p < 1 at u = 0 (Joglekar at x = 1/2, Biolek at its free boundary).
    for w, x, i in [
        (Joglekar(p=0.5), 0.5, 1.0),
        (Biolek(p=0.5), 0.0, 1.0),
        (Biolek(p=0.5), 1.0, -1.0),
    ]:
        g = jax.grad(lambda xx: w(xx, i))(x)
        gp = jax.grad(lambda pp: type(w)(p=pp)(x, i))(0.5)
        assert np.isfinite(g) and np.isfinite(gp)


@pytest.mark.parametrize(
    "window", [NoWindow(), Joglekar(p=1), Joglekar(p=2), Biolek(p=1), Prodromakis(p=2, j=0.5)]
)
def test_rate_and_current_match_numpy(x64, window):
    dev = HPMemristor(R_on=120.0, R_off=9e3, D=8e-9, mu_v=2e-14, window=window)
    xx, vv = np.meshgrid(XS, VS)
    F = lambda x, i: np.asarray(window(x, i))
    if isinstance(window, Joglekar):
        F = lambda x, i: np_joglekar(x, window.p)
    elif isinstance(window, Biolek):
        F = lambda x, i: np_biolek(x, i, window.p)
    elif isinstance(window, Prodromakis):
        F = lambda x, i: np_prodromakis(x, window.p, window.j)
    rate, i = np_hp(xx, vv, 120.0, 9e3, 8e-9, 2e-14, F)
    np.testing.assert_allclose(dev.current(xx, vv), i, rtol=1e-13, atol=0)
    np.testing.assert_allclose(dev.rate(xx, vv), rate, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(dev.memristance(xx), 120.0 * xx + 9e3 * (1 - xx), rtol=1e-14)


def test_constant_current_no_window_is_linear(x64):
    # dx/dt = mu_v R_on / D^2 * I0  =>  x(t) = x0 + mu_v R_on I0 t / D^2 (Strukov eq. 2).
    dev = HPMemristor(window=NoWindow(), x0=0.1)
    I0 = 2e-5
    f = lambda t, x: dev.rate(x, dev.memristance(x) * I0)
    ts, xs = odeint(f, 0.1, dt=0.01, n_steps=31, substeps=2, project=dev.project)
    expected = 0.1 + 1e-14 * 100.0 * I0 * np.asarray(ts) / (10e-9) ** 2
    assert expected[-1] < 0.9
    np.testing.assert_allclose(xs, expected, rtol=1e-12)


def test_constant_voltage_no_window_closed_form(x64):
    # M dM/dt = -(R_off - R_on) k V with k = mu_v R_on / D^2  =>  M(t)^2 = M0^2 - 2 k dR V t.
    dev = HPMemristor(window=NoWindow(), x0=0.1)
    V = 1.0
    tr = simulate(dev, Constant(V), dt=0.01, n_steps=31, substeps=20)
    k, dR = 1e-14 * 100.0 / (10e-9) ** 2, 16e3 - 100.0
    M0 = 100.0 * 0.1 + 16e3 * 0.9
    M = np.sqrt(M0**2 - 2 * k * dR * V * np.asarray(tr.t))
    assert M[-1] > 2e3
    np.testing.assert_allclose(V / np.asarray(tr.i), M, rtol=1e-9)
    np.testing.assert_allclose(tr.x, (16e3 - M) / dR, rtol=1e-9)


def test_constant_current_joglekar_p1_is_logistic(x64):
    # dx/dt = c (1 - (2x - 1)^2) = 4 c x (1 - x)  =>  logistic x(t).
    dev = HPMemristor(window=Joglekar(p=1), x0=0.05)
    I0 = 1e-4
    c = 1e-14 * 100.0 / (10e-9) ** 2 * I0
    ts, xs = odeint(
        lambda t, x: dev.rate(x, dev.memristance(x) * I0),
        0.05,
        dt=0.1,
        n_steps=41,
        substeps=20,
        project=dev.project,
    )
    ts = np.asarray(ts)
    expected = 1.0 / (1.0 + (0.95 / 0.05) * np.exp(-4 * c * ts))
    np.testing.assert_allclose(xs, expected, rtol=1e-8)


def test_scan_matches_diffrax(x64):
    dev = HPMemristor(window=Joglekar(p=2), x0=0.3)
    # 0.5 V keeps x in [0.3, 0.69]: a smooth regime away from the window's zeros.
    drive = Sine(0.5, 0.5)
    tr = simulate(dev, drive, dt=5e-3, n_steps=801, substeps=2)
    ref = simulate_reference(dev, drive, tr.t)
    assert float(tr.x.max() - tr.x.min()) > 0.2  # the state really moves
    assert rel_err(tr.x, ref.x) < 1e-4 and rel_err(tr.i, ref.i) < 1e-4


def _loss(dev, amplitude):
    tr = simulate(dev, Sine(amplitude, 0.5), dt=2e-2, n_steps=101, substeps=2)
    return jnp.sum(tr.i**2) * 1e6


def test_gradients_match_finite_differences(x64):
    # d loss / d (mu_v scale, R_off, drive amplitude), one jitted function of a vector.
    base = HPMemristor(window=Joglekar(p=2), x0=0.3)

    @jax.jit
    def fn(p):
        dev = eqx.tree_at(lambda d: (d.mu_v, d.R_off), base, (p[0] * 1e-14, p[1]))
        return _loss(dev, p[2])

    p0 = np.array([1.0, 16e3, 0.5])
    g = jax.grad(fn)(jnp.asarray(p0))
    fd = central_fd(fn, p0)
    for k in range(3):
        assert rel_err(g[k], fd[k]) < 1e-5, (k, g, fd)


def test_large_voltage_is_finite_float32():
    x = jnp.linspace(0.0, 1.0, 11, dtype=jnp.float32)
    for window in (Joglekar(p=1), Biolek(p=1)):
        dev = HPMemristor(window=window)
        for v in (1e3, -1e3):
            assert bool(device_outputs_finite(dev, x, jnp.float32(v)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(R_on=-1.0), "HPMemristor.R_on"),
        (dict(R_off=0.0), "HPMemristor.R_off"),
        (dict(R_on=2e4), "HPMemristor: R_on must be < R_off"),
        (dict(D=0.0), "HPMemristor.D"),
        (dict(mu_v=-1e-14), "HPMemristor.mu_v"),
        (dict(x0=1.5), "HPMemristor.x0"),
        (dict(window=lambda: Joglekar(p=0.0)), "Joglekar.p"),
        (dict(window=lambda: Biolek(p=-1.0)), "Biolek.p"),
        (dict(window=lambda: Prodromakis(p=1.0, j=0.0)), "Prodromakis.j"),
        (dict(window=lambda: Prodromakis(p=float("nan"))), "Prodromakis.p"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kw = {k: (v() if callable(v) else v) for k, v in kwargs.items()}
        HPMemristor(**kw)
