"""MMSS memristor (Molter & Nugent 2016): switching probabilities, closed forms, solvers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, rel_err

from memjax.devices._base import simulate, simulate_reference
from memjax.devices.mmss import MMSSMemristor, thermal_voltage
from memjax.waveforms import Constant, Sine

VT = 1.380649e-23 * 298.5 / 1.602176634e-19


def np_mmss(
    x,
    v,
    R_on=500.0,
    R_off=1500.0,
    V_on=0.27,
    V_off=0.27,
    tau=1e-4,
    v_t=VT,
    phi=1.0,
    a_f=1e-6,
    b_f=3.0,
    a_r=1e-6,
    b_r=3.0,
):
    """NumPy transcription of the generalised MSS equations (Molter & Nugent 2016)."""
    x = np.asarray(x, np.float64)
    v = np.asarray(v, np.float64)
    p_on = 1.0 / (1.0 + np.exp(-(v - V_on) / v_t))
    # 1 - 1/(1 + e^-u) written as 1/(1 + e^u): same function, no cancellation in the tail.
    p_off = 1.0 / (1.0 + np.exp((v + V_off) / v_t))
    dx = ((1 - x) * p_on - x * p_off) / tau
    g = x / R_on + (1 - x) / R_off
    i = phi * v * g + (1 - phi) * (a_f * np.exp(b_f * v) - a_r * np.exp(-b_r * v))
    return dx, i, p_on, p_off


GRID_X = np.linspace(0.0, 1.0, 9)[:, None]
GRID_V = np.array([-1.0, -0.4, -0.27, -0.2, -0.05, 0.0, 0.05, 0.2, 0.27, 0.4, 1.0])[None, :]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(R_on=1e3, R_off=1e5, V_on=0.11, V_off=-0.005, tau=1e-3, v_t=0.015),  # MEMprop-like
        dict(phi=0.7, a_f=2e-6, b_f=4.0, a_r=1e-7, b_r=2.5),  # Schottky branch
    ],
)
def test_equations_match_numpy(x64, kw):
    d = MMSSMemristor(**kw)
    dx, i, p_on, p_off = np_mmss(GRID_X, GRID_V, **kw)
    np.testing.assert_allclose(d.rate(GRID_X, GRID_V), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.current(GRID_X, GRID_V), i, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(d.p_on(GRID_V), p_on, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(d.p_off(GRID_V), p_off, rtol=1e-12, atol=1e-300)


def test_defaults_and_thermal_voltage(x64):
    d = MMSSMemristor()
    assert (d.R_on, d.R_off, d.V_on, d.V_off, d.tau) == (500.0, 1500.0, 0.27, 0.27, 1e-4)
    assert float(d.v_t) == pytest.approx(0.025722, rel=1e-4)
    assert float(thermal_voltage(300.0)) == pytest.approx(0.0258520, rel=1e-5)


def test_probability_limits_and_midpoints(x64):
    d = MMSSMemristor(V_on=0.2, V_off=0.3)
    assert float(d.p_on(0.2)) == pytest.approx(0.5, abs=1e-15)
    assert float(d.p_off(-0.3)) == pytest.approx(0.5, abs=1e-15)
    assert float(d.p_on(5.0)) == pytest.approx(1.0, abs=1e-15) and float(d.p_on(-5.0)) < 1e-80
    assert float(d.p_off(-5.0)) == pytest.approx(1.0, abs=1e-15) and float(d.p_off(5.0)) < 1e-80
    # One thermal voltage past the threshold: logistic value 1 / (1 + e^-1).
    assert float(d.p_on(0.2 + d.v_t)) == pytest.approx(1 / (1 + np.exp(-1.0)), rel=1e-12)
    # Monotone: ON increases, OFF decreases with V.
    v = jnp.linspace(-1, 1, 201)
    assert np.all(np.diff(d.p_on(v)) >= 0) and np.all(np.diff(d.p_off(v)) <= 0)
    # Far-field probabilities neither overflow nor give NaN gradients.
    gv = jax.grad(lambda u: d.p_on(u) + d.p_off(u))(1e4)
    assert np.isfinite(gv)


@pytest.mark.parametrize("v,x0", [(0.27, 0.0), (0.35, 0.1), (-0.3, 1.0), (0.0, 0.6), (0.1, 0.9)])
def test_constant_drive_closed_form(x64, v, x0):
    # Constant V: dx/dt = (P_on - (P_on + P_off) x) / tau is linear, so
    # x(t) = x_inf + (x0 - x_inf) exp(-(P_on + P_off) t / tau), x_inf = P_on / (P_on + P_off).
    d = MMSSMemristor(x0=x0)
    _, _, p_on, p_off = np_mmss(0.0, v)
    k = (p_on + p_off) / 1e-4
    x_inf = p_on / (p_on + p_off)
    t_end = 5.0 / k
    tr = simulate(d, Constant(v), dt=t_end / 100, n_steps=101, substeps=4)
    exact = x_inf + (x0 - x_inf) * np.exp(-k * np.asarray(tr.t))
    np.testing.assert_allclose(tr.x, exact, rtol=1e-8, atol=1e-10)
    assert float(tr.x[-1]) == pytest.approx(x_inf, abs=0.01)
    if v == 0.27:  # at V_on both OFF- and ON-rates: P_on = 1/2, P_off ~ 0
        assert x_inf == pytest.approx(1.0, abs=1e-8)


def test_schottky_branch_and_zero_bias(x64):
    kw = dict(phi=0.25, a_f=3e-6, b_f=5.0, a_r=3e-6, b_r=2.0)
    d = MMSSMemristor(**kw)
    x, v = 0.4, np.array([-0.5, 0.2, 0.6])
    g = 0.4 / 500 + 0.6 / 1500
    expect = 0.25 * v * g + 0.75 * (3e-6 * np.exp(5 * v) - 3e-6 * np.exp(-2 * v))
    np.testing.assert_allclose(d.current(x, v), expect, rtol=1e-13)
    # a_f = a_r: no current without bias for any state; rectifying when b_f != b_r.
    xs = jnp.linspace(0, 1, 5)
    np.testing.assert_array_equal(d.current(xs, 0.0), 0.0)
    assert abs(float(d.current(x, 0.6))) > abs(float(d.current(x, -0.6)))
    # a_f != a_r: a zero-bias current (1 - phi)(a_f - a_r) remains.
    d2 = MMSSMemristor(**{**kw, "a_r": 1e-6})
    assert float(d2.current(x, 0.0)) == pytest.approx(0.75 * 2e-6, rel=1e-12)
    # phi = 1 ignores the diode entirely.
    d3 = MMSSMemristor(phi=1.0, a_f=1.0, a_r=0.0)
    assert float(d3.current(x, 0.3)) == pytest.approx(0.3 * g, rel=1e-13)


@pytest.mark.parametrize("kw", [{}, dict(phi=0.5, x0=0.3)])
def test_rk4_matches_reference(x64, kw):
    d = MMSSMemristor(**kw)
    drive = Sine(0.5, 2e3)  # x swings 0 -> 0.83 -> 0.16 each period (tau = 0.1 ms)
    tr = simulate(d, drive, dt=5e-6, n_steps=201, substeps=4)
    assert float(tr.x.max()) > 0.8 and float(tr.x[100:].min()) < 0.2
    ref = simulate_reference(d, drive, tr.t)
    # Measured max rel. error (x, i): 1.1e-8, 4.2e-9 (phi = 1); 9.8e-9, 3.7e-9 (phi = 0.5).
    assert rel_err(tr.x, ref.x) < 1e-4
    assert rel_err(tr.i, ref.i) < 1e-4


def test_gradients_match_finite_differences(x64):
    @jax.jit
    def loss(p):
        d = MMSSMemristor(tau=p[0] * 1e-4, R_on=p[1], phi=0.8)
        tr = simulate(d, Sine(p[2], 2e3), dt=5e-6, n_steps=101, substeps=2)
        return jnp.mean(tr.i**2) * 1e6 + jnp.mean(tr.x)

    p = jnp.array([1.0, 500.0, 0.35])
    g = np.asarray(jax.jit(jax.grad(loss))(p))
    fd = central_fd(loss, p, eps=1e-7)
    assert np.all(np.abs(g) > 0)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(R_on=0.0), "R_on"),
        (dict(R_off=-1.0), "R_off"),
        (dict(R_on=2e3), "R_on"),
        (dict(tau=0.0), "tau"),
        (dict(v_t=-0.01), "v_t"),
        (dict(phi=1.5), "phi"),
        (dict(a_f=-1e-6), "a_f"),
        (dict(b_r=-1.0), "b_r"),
        (dict(x0=1.2), "x0"),
        (dict(tau=np.nan), "tau"),
    ],
)
def test_bad_parameters(kw, field):
    with pytest.raises(ValueError, match=f"MMSSMemristor.*{field}"):
        MMSSMemristor(**kw)


def test_huge_voltages_finite_in_float32():
    d = MMSSMemristor(phi=0.5)
    x, v = jnp.broadcast_arrays(
        jnp.array([0.0, 0.5, 1.0], jnp.float32)[:, None],
        jnp.array([-1e6, -1e3, -10.0, 10.0, 1e3, 1e6], jnp.float32)[None, :],
    )

    @jax.jit
    def check(x, v):
        out = [
            (fn(x, v), jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(x, v))
            for fn in (d.rate, d.current)
        ]
        tr = simulate(d, Sine(jnp.float32(1e5), 2e3), dt=5e-6, n_steps=20)
        return out, tr.x, tr.i

    for leaf in jax.tree_util.tree_leaves(check(x, v)):
        assert leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf))
