"""MIF neuron: exact-update checks, diffrax reference, gradients vs finite differences,
stability where forward Euler fails, the spike-like waveform, per-neuron variability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, rel_err

from memjax.devices.mmss import MMSSMemristor
from memjax.integrate import Euler, odeint, odeint_reference
from memjax.neurons.mif import (
    MIF,
    MIFState,
    default_memristor,
    mif_simulate,
    mif_step,
    mif_vector_field,
    phi1,
)
from memjax.populations import sample_population

I_NOM = 2e-6  # nominal input: the knee of the default neuron's response (A)


def test_phi1_series_and_gradient(x64):
    z = jnp.array([0.0, 1e-6, 1e-5, 9e-5, 1e-3, 0.5, 3.0, 50.0, 1e4])
    exact = np.where(
        np.asarray(z) == 0,
        1.0,
        -np.expm1(-np.asarray(z)) / np.where(np.asarray(z) == 0, 1, np.asarray(z)),
    )
    np.testing.assert_allclose(phi1(z), exact, rtol=1e-12)
    g = jax.vmap(jax.grad(phi1))(z)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], -0.5, rtol=1e-12)


def test_rate_reused_from_mmss(x64):
    # The x update's fixed point and rate are MMSSMemristor's: x_inf makes rate vanish,
    # and for a tiny step the update equals dt * rate.
    m = default_memristor()
    n = MIF()
    V = jnp.linspace(-0.3, 0.3, 13)
    x = jnp.full_like(V, 0.3)
    s = MIFState(a=0 * V, i=0 * V, v=V + n.E1, x1=x, x2=x)
    # zero-capacitance limit is not needed: evaluate the x sub-step directly
    from memjax.neurons.mif import _x_inf, _x_update

    np.testing.assert_allclose(m.rate(_x_inf(m, V), V), 0.0, atol=1e-12)
    dt = 1e-9
    np.testing.assert_allclose((_x_update(m, x, V, dt) - x) / dt, m.rate(x, V), rtol=1e-5)
    assert s.v.shape == V.shape


def test_exponential_update_equals_closed_form(x64):
    # Conductances frozen (switching time 1e9 s) and the synaptic filter at its steady
    # state: v(t) = v_inf + (v0 - v_inf) exp(-(G1 + G2) t / C) exactly, even with
    # (G1 + G2) dt / C = 50 (forward Euler would diverge).
    m1 = MMSSMemristor(R_on=1e3, R_off=1e5, V_on=0.11, V_off=-0.005, tau=1e9, v_t=0.015)
    n = MIF(m1=m1, m2=m1)
    x1, x2 = 0.7, 0.2
    g1, g2 = n.m1.memductance(x1), n.m2.memductance(x2)
    i0 = 5e-6
    s0 = MIFState(
        a=jnp.array(i0), i=jnp.array(i0), v=jnp.array(0.08), x1=jnp.array(x1), x2=jnp.array(x2)
    )
    dt = 50 * n.C / (g1 + g2)
    _, st = mif_simulate(n, jnp.full((6,), i0), dt, state=s0)
    t = dt * np.arange(6)  # states[k] is the state at k dt, the initial one first
    v_inf = (i0 + g1 * n.E1 + g2 * n.E2) / (g1 + g2)
    dt_small = 0.7 * n.C / (g1 + g2)
    _, st2 = mif_simulate(n, jnp.full((6,), i0), dt_small, state=s0)
    for ts, vs in ((t, st.v), (dt_small * np.arange(6), st2.v)):
        closed = v_inf + (0.08 - v_inf) * np.exp(-(g1 + g2) * ts / n.C)
        np.testing.assert_allclose(vs, closed, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(st.x1, x1, atol=1e-9)


def test_synaptic_filter_closed_form(x64):
    # Alpha filter from rest with a constant input: I(t) = i (1 - (1 + t/tau_a) e^{-t/tau_a}).
    n = MIF()
    dt, i0 = 3e-4, 4e-6
    _, st = mif_simulate(n, jnp.full((10,), i0), dt)
    t = dt * np.arange(10)
    r = t / n.tau_a
    np.testing.assert_allclose(st.i, i0 * (1 - (1 + r) * np.exp(-r)), rtol=1e-12)
    np.testing.assert_allclose(st.a, i0 * (1 - np.exp(-r)), rtol=1e-12)


def test_matches_diffrax_reference(x64):
    # A 2 ms current pulse (5 uA) then 2 ms of recovery. The splitting is first order in
    # dt; at dt = 1 us (the membrane's fastest time constant is R_on C = 1 us) the
    # largest error in v over the run is < 0.2 % of the peak depolarisation, and halving
    # dt halves it.
    n = MIF()
    pulse = lambda t: jnp.where(t < 2e-3, 5e-6, 0.0)
    s0 = n.init_state((), jnp.float64)
    dt = 2e-6
    ts = dt * jnp.arange(2001)
    ref = odeint_reference(mif_vector_field(n, pulse), s0, ts, rtol=1e-9, atol=1e-13)
    scale = float(np.max(np.abs(ref.v)))
    errs = []
    for sub in (1, 2):
        # input held over each step at its start-of-step value (as the network does)
        tk = (dt / sub) * jnp.arange(2000 * sub)
        final, st = mif_simulate(n, pulse(tk), dt / sub, state=s0)
        # states at 0, h, .., (N - 1) h and the final one at N h: the grid of ts
        traj = jax.tree.map(lambda a, f: np.concatenate([a, f[None]]), st, final)
        np.testing.assert_array_equal(traj.v[0], s0.v)
        v = traj.v[::sub]
        errs.append(float(np.max(np.abs(v - np.asarray(ref.v)))) / scale)
        np.testing.assert_allclose(traj.x1[::sub], ref.x1, atol=0.02 * float(np.max(ref.x1)))
    assert errs[1] < 0.002, errs
    assert 1.6 < errs[0] / errs[1] < 2.4, errs


def test_grad_matches_finite_differences(x64, getkey):
    # d loss / d (input weights) through 40 steps of the full neuron (switching on).
    n = MIF()
    x = jax.random.uniform(getkey(), (4,), jnp.float64)
    W0 = jax.random.normal(getkey(), (4, 3), jnp.float64)
    dt = 2e-4

    @jax.jit
    def loss(W):
        i_in = 3e-6 * (x @ W) + 2e-6
        _, st = mif_simulate(n, jnp.broadcast_to(i_in, (40, 3)), dt)
        return jnp.sum(jnp.mean(st.v, axis=0) ** 2) * 1e3

    g = jax.grad(loss)(W0)
    fd = central_fd(loss, W0, eps=1e-6)
    assert rel_err(g, fd) < 1e-5
    # and w.r.t. a time-varying input current directly
    u0 = 4e-6 * jax.random.uniform(getkey(), (20, 2), jnp.float64)

    @jax.jit
    def loss_u(u):
        _, st = mif_simulate(n, u * 1e-6, dt)
        return jnp.sum(st.v[-5:]) * 10

    g = jax.grad(loss_u)(u0 * 1e6)
    fd = central_fd(loss_u, u0 * 1e6, eps=1e-6)
    assert rel_err(g, fd) < 1e-5


def test_strong_input_stable_where_euler_blows_up():
    n = MIF()
    dt = 5e-4
    u = jnp.full((40, 8), 10 * I_NOM) * jnp.linspace(-1.0, 1.0, 8)[None]
    _, st = mif_simulate(n, u, dt)
    for leaf in (st.a, st.i, st.v, st.x1, st.x2):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert np.all((st.x1 >= 0) & (st.x1 <= 1)) and np.all((st.x2 >= 0) & (st.x2 <= 1))
    assert float(jnp.max(jnp.abs(st.v))) < 1.0  # bounded by the batteries + I R_on
    # gradient finite too
    g = jax.grad(lambda s: jnp.sum(mif_simulate(n, u * s, dt)[1].v))(1.0)
    assert np.isfinite(float(g))

    # The naive explicit Euler of the same equations at the same dt diverges: with both
    # memristors OFF, (G1 + G2) dt / C = 10 > 2.
    f = mif_vector_field(n, lambda t: 10 * I_NOM)
    s0 = n.init_state(())
    with np.errstate(all="ignore"):
        _, ys = odeint(f, s0, dt=dt, n_steps=40, solver=Euler())
    v = np.asarray(ys.v)
    assert not np.all(np.isfinite(v)) or np.max(np.abs(v)) > 1e3


def test_spike_like_waveform():
    # A 5 ms, 10 uA pulse: depolarisation to a peak, repolarisation below the peak while
    # the input is still on (M1 switches on), hyperpolarisation below rest after it ends,
    # then recovery towards rest as M1 switches back off.
    n = MIF()
    dt = 1e-5
    t = dt * np.arange(1500)
    _, st = mif_simulate(n, jnp.where(t < 5e-3, 10e-6, 0.0), dt)
    v, x1 = np.asarray(st.v), np.asarray(st.x1)
    rest = float(n.init_state(()).v)
    k_peak = int(np.argmax(v))
    assert v[k_peak] > rest + 0.03 and t[k_peak] < 5e-3
    assert v[499] < v[k_peak] - 0.008  # repolarised below the peak, input still on
    after = v[500:]
    assert after.min() < rest - 0.005  # hyperpolarised below rest
    assert abs(v[-1] - rest) < 0.3 * abs(after.min() - rest)  # recovering
    x_rest = float(n.init_state(()).x1)
    assert x1.max() > 5 * x_rest  # M1 switched on ...
    assert x1[-1] < 0.25 * x1.max()  # ... and back off
    # M2 (reversed) switches on for a strong negative pulse and pulls v back up
    _, st2 = mif_simulate(n, jnp.where(t < 5e-3, -30e-6, 0.0), dt)
    assert float(jnp.max(st2.x2)) > 5 * float(n.init_state(()).x2)


def test_per_neuron_variability(getkey):
    pop = sample_population(MIF(), getkey(), 5, {"C": 0.3, "m1.R_on": 0.3, "m1.V_on": 0.1})
    assert pop.m1.R_on.shape == (5,)
    u = jnp.full((300, 5), 10e-6)
    _, st = mif_simulate(pop, u, 1e-5)
    v = np.asarray(st.v)
    assert v.shape == (300, 5) and np.all(np.isfinite(v))
    spread = np.std(v.max(axis=0))
    assert spread > 1e-4, spread
    # identical parameters give identical traces
    same = sample_population(MIF(), getkey(), 3, {})
    v2 = np.asarray(mif_simulate(same, u[:, :3], 1e-5)[1].v)
    np.testing.assert_allclose(v2, v2[:, :1] * np.ones((1, 3)), rtol=1e-6)


def test_rest_state_is_fixed_point(x64):
    n = MIF()
    s = n.init_state((3,))
    s1 = mif_step(n, s, jnp.zeros(3), 1e-3)
    for a, b in ((s.v, s1.v), (s.x1, s1.x1), (s.x2, s1.x2)):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,field",
    [({"C": -1e-9}, "MIF.C"), ({"tau_a": 0.0}, "MIF.tau_a"), ({"polarity2": 0.5}, "MIF.polarity2")],
)
def test_bad_parameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MIF(**kwargs)


@pytest.mark.parametrize("dt", [-1e-3, 0.0, float("nan"), float("inf")])
def test_bad_dt_is_a_named_error(dt):
    n = MIF()
    with pytest.raises(ValueError, match="mif_simulate: dt must be finite and > 0"):
        mif_simulate(n, jnp.zeros((3, 2)), dt)
    with pytest.raises(ValueError, match="mif_step: dt must be finite and > 0"):
        mif_step(n, n.init_state((2,)), jnp.zeros(2), dt)


def test_bad_dt_under_jit_is_an_error():
    n = MIF()
    f = jax.jit(lambda dt: mif_step(n, n.init_state((2,)), jnp.zeros(2), dt).v)
    assert np.all(np.isfinite(f(1e-3)))
    with pytest.raises(Exception, match="dt must be finite and > 0"):
        jax.block_until_ready(f(-1e-3))


@pytest.mark.parametrize("substeps", [-1, 0, 1.5, True])
def test_bad_substeps_is_a_named_error(substeps):
    with pytest.raises(ValueError, match="mif_simulate: substeps must be an integer >= 1"):
        mif_simulate(MIF(), jnp.zeros((3, 2)), 1e-4, substeps=substeps)


def test_float16_input_is_promoted_bfloat16_kept():
    n = MIF()
    u = jnp.full((50, 2), 5e-6)
    _, st = mif_simulate(n, u.astype(jnp.float16), 1e-5)
    assert st.v.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(st.v)))
    _, ref = mif_simulate(n, u.astype(jnp.float16).astype(jnp.float32), 1e-5)
    np.testing.assert_allclose(st.v, ref.v, rtol=1e-6)
    assert np.max(np.abs(np.asarray(st.v) - float(st.v[0, 0]))) > 1e-3  # it responds
    assert n.init_state((2,), jnp.float16).v.dtype == jnp.float32
    _, sb = mif_simulate(n, u.astype(jnp.bfloat16), 1e-5)
    assert sb.v.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(sb.v, np.float32)))


def test_schottky_branch_is_rejected():
    m = MMSSMemristor(
        R_on=1e3, R_off=1e5, V_on=0.110, V_off=-0.005, tau=1e-3, v_t=0.015, x0=0.0238, phi=0.5
    )
    with pytest.raises(ValueError, match=r"MIF.m1.phi must be 1.*Schottky branch"):
        MIF(m1=m)
    with pytest.raises(ValueError, match=r"MIF.m2.phi must be 1"):
        MIF(m2=m)
