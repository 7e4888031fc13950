"""Stanford-PKU RRAM: published equations, fixed-step vs adaptive, gradients, guards."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, rel_err

from memjax.devices._base import simulate
from memjax.devices.stanford_pku import StanfordPKURRAM
from memjax.waveforms import Sine

KB, Q = 1.380649e-23, 1.602176634e-19


def np_stanford(g, v, p):
    """NumPy transcription of the Verilog-A v1.0.0 equations (rram_v_1_0_0.va)."""
    g = np.asarray(g, np.float64)
    v = np.asarray(v, np.float64)
    i = p["I0"] * np.exp(-g / p["g0"]) * np.sinh(v / p["V0"])
    T = np.minimum(p["T0"] + np.abs(v * i * p["R_th"]), p["T_max"])
    gamma_ini = np.where(v < 0, p["gamma0_reset"], p["gamma0"])
    gamma = gamma_ini - p["beta"] * (g / 1e-9) ** 3
    gamma = np.where(gamma * np.abs(v) / p["t_ox"] < p["F_min"], 0.0, gamma)
    dg = (
        -p["v0"]
        * np.exp(-Q * p["E_a"] / KB / T)
        * np.sinh(gamma * p["a0"] / p["t_ox"] * Q * v / KB / T)
    )
    dg = np.where((g <= p["g_min"]) & (dg < 0), 0.0, dg)
    dg = np.where((g >= p["g_max"]) & (dg > 0), 0.0, dg)
    return i, dg


DEFAULTS = dict(
    I0=1e-3,
    g0=0.25e-9,
    V0=0.25,
    v0=10.0,
    E_a=0.6,
    gamma0=16.0,
    gamma0_reset=16.0,
    beta=0.8,
    a0=0.25e-9,
    t_ox=12e-9,
    F_min=1.4e9,
    T0=298.0,
    R_th=2.1e3,
    T_max=1e4,
    g_min=0.2e-9,
    g_max=1.7e-9,
)


def test_defaults_are_the_verilog_a_ones():
    d = StanfordPKURRAM()
    for k, val in DEFAULTS.items():
        assert float(getattr(d, k)) == val, k
    assert float(d.x0) == 0.2e-9


@pytest.mark.parametrize("overrides", [{}, dict(gamma0_reset=14.0, F_min=0.5e9, R_th=5e3)])
def test_equations_match_numpy(x64, overrides):
    p = {**DEFAULTS, **overrides}
    d = StanfordPKURRAM(**overrides)
    g = np.linspace(0.2e-9, 1.7e-9, 7)[:, None]
    v = np.array([-2.0, -1.5, -1.2, -1.0, -0.3, 0.0, 0.1, 0.5, 1.1, 1.3, 1.6, 2.0])[None, :]
    i_ref, dg_ref = np_stanford(g, v, p)
    np.testing.assert_allclose(d.current(g, v), i_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(d.rate(g, v), dg_ref, rtol=1e-6, atol=1e-30)
    # The grid exercises every branch: gated (zero), SET (< 0) and RESET (> 0) motion.
    dg = np.asarray(d.rate(g, v))
    assert (dg == 0).any() and (dg < 0).any() and (dg > 0).any()


def test_switching_physics(x64):
    d = StanfordPKURRAM()
    # Below the F_min gate (|V| ~ 1 V at g_min) nothing moves: read disturb free.
    assert float(d.rate(0.2e-9, 1.0)) == 0.0 and float(d.rate(1.0e-9, -0.9)) == 0.0
    # Joule heating speeds RESET up: the low-resistance state heats, the high does not.
    assert float(d.temperature(0.2e-9, -1.5)) > 500.0
    assert float(d.temperature(1.7e-9, -1.5)) < 300.0
    # Resistance window at a 0.1 V read: exp((g_max - g_min)/g0) = e^6.
    r = np.asarray(d.resistance(jnp.array([0.2e-9, 1.7e-9]), 0.1))
    np.testing.assert_allclose(r[1] / r[0], np.exp(6.0), rtol=1e-9)


def _reference(d, drive, ts, dt):
    # Adaptive Tsit5 with dtmax: exactly-zero rates (F_min gate, hard stops) otherwise let
    # the controller grow the step past whole switching events.
    term = diffrax.ODETerm(lambda t, y, a: d.rate(d.project(y), drive(t)))
    sol = diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=dt / 100,
        y0=jnp.asarray(d.x0),
        saveat=diffrax.SaveAt(ts=ts),
        max_steps=100_000,
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-24, dtmax=dt / 10),
    )
    return np.asarray(d.project(sol.ys))


@pytest.mark.parametrize("F_min,substeps,tol", [(0.0, 20, 1e-6), (1.4e9, 20, 1e-3)])
def test_rk4_matches_adaptive_reference(x64, F_min, substeps, tol):
    # Full SET / RESET cycle: 1.6 V, 1 MHz sine from the high-resistance state.
    d = StanfordPKURRAM(x0=1.7e-9, F_min=F_min)
    drive = Sine(1.6, 1e6)
    dt = 1e-6 / 200
    tr = simulate(d, drive, dt=dt, n_steps=201, substeps=substeps)
    x = np.asarray(tr.x)
    assert x.min() == pytest.approx(0.2e-9) and x[-1] == pytest.approx(1.7e-9)  # switched both ways
    xr = _reference(d, drive, tr.t, dt)
    # Measured: 9.9e-8 with the gate off (smooth field: RK4 converges at 4th order);
    # 2.1e-4 (x) and 3.2e-5 (i) with the published hard F_min gate: O(dt) error at each
    # gate crossing (6e-5 .. 3e-4 over 10 .. 100 substeps, not monotone).
    assert rel_err(x, xr) < tol
    assert rel_err(tr.i, d.current(xr, tr.v)) < tol


def test_gradients_match_finite_differences(x64):
    drive = lambda a: Sine(a, 1e6)

    @jax.jit
    def loss(p):
        d = StanfordPKURRAM(x0=1.7e-9, v0=p[0], F_min=0.0)
        tr = simulate(d, drive(p[1]), dt=1e-6 / 100, n_steps=101, substeps=8)
        return jnp.mean(tr.x) / 1e-9 + jnp.mean(tr.i**2) * 1e3

    p = jnp.array([10.0, 1.5])
    g = np.asarray(jax.jit(jax.grad(loss))(p))
    fd = central_fd(loss, p, eps=1e-7)
    assert np.all(np.abs(g) > 0)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("g_min", -1e-10),
        ("g_max", 0.1e-9),
        ("I0", 0.0),
        ("V0", -1.0),
        ("t_ox", 1e-9),
        ("R_th", -1.0),
        ("T0", np.inf),
        ("x0", 3e-9),
        ("E_a", -0.1),
        ("F_min", -1.0),
    ],
)
def test_bad_parameters(field, value):
    with pytest.raises(ValueError, match=f"StanfordPKURRAM.*{field}"):
        StanfordPKURRAM(**{field: value})


def test_huge_voltages_finite_in_float32():
    d = StanfordPKURRAM()
    g = jnp.array([0.2e-9, 1.0e-9, 1.7e-9], jnp.float32)[:, None]
    v = jnp.array([-1e6, -1e3, -20.0, 20.0, 1e3, 1e6], jnp.float32)[None, :]
    g, v = jnp.broadcast_arrays(g, v)

    @jax.jit
    def check(g, v):
        vals = (d.rate(g, v), d.current(g, v))
        grads = [
            jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(g, v)
            for fn in (d.rate, d.current)
        ]
        return vals, grads

    vals, grads = check(g, v)
    for leaf in jax.tree_util.tree_leaves((vals, grads)):
        assert leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf))

    # Forward simulation at 10 kV (the gradient through simulate is checked in float64).
    tr = jax.jit(lambda a: simulate(d, Sine(a, 1e6), dt=1e-8, n_steps=20))(jnp.float32(1e4))
    assert np.all(np.isfinite(tr.x)) and np.all(np.isfinite(tr.i))
