"""MIF integrator at the documented default step: error against the diffrax reference
over the operating range of the trained networks, float32 accuracy at small steps,
boundedness for any step, the phi2 weight, and sub-steps compiled as a loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.integrate import odeint_reference
from memjax.models.memprop import MEMprop
from memjax.neurons import mif as mif_module
from memjax.neurons.mif import MIF, mif_simulate, mif_step, mif_vector_field

#: MEMprop's default step and window (s)
DT = MEMprop.__dataclass_fields__["dt"].default
WINDOW = DT * MEMprop.__dataclass_fields__["n_steps"].default
#: the documented bound (docs/mif.md): largest error in v over the window at the
#: default step, relative to the largest |v|, for inputs of 1 uA to 300 uA
BOUND = 0.02
#: input amplitudes across the trained networks' operating range (A), both signs
AMPS = np.array([1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, -3e-6, -3e-5, -3e-4])


def _alpha(t, tau=1e-3):
    """A unit alpha-shaped current waveform (peak 1 at ``t = tau``)."""
    return (t / tau) * jnp.exp(1.0 - t / tau)


def _errors(shape):
    n = MIF()
    s0 = n.init_state((len(AMPS),), jnp.float64)
    amps = jnp.asarray(AMPS)
    T = int(round(WINDOW / DT))
    ts = DT * jnp.arange(T + 1)
    drive = (lambda t: amps) if shape == "constant" else (lambda t: amps * _alpha(t))
    ref = odeint_reference(mif_vector_field(n, drive), s0, ts, rtol=1e-10, atol=1e-14, stiff=True)
    # input held over each step at its mid-step value
    u = jax.vmap(drive)(ts[:-1] + 0.5 * DT)
    final, st = mif_simulate(n, u, DT, state=s0)
    v = np.concatenate([np.asarray(st.v), np.asarray(final.v)[None]])
    vr = np.asarray(ref.v)
    return np.max(np.abs(v - vr), axis=0) / np.max(np.abs(vr), axis=0)


@pytest.mark.parametrize("shape", ["constant", "alpha"])
def test_default_step_error_within_documented_bound(x64, shape):
    err = _errors(shape)
    assert np.all(err < BOUND), dict(zip(AMPS.tolist(), err.tolist()))


def test_float32_keeps_the_scheme_accuracy_at_small_steps():
    # dt / tau_a = 1e-4: every exp(-dt / tau) factor is written in increment (expm1)
    # form, so float32 stays within ~1e-5 of float64 running the same scheme (a
    # 1 - exp(-r) factor computed as such is off by ~eps / r = 6e-4 relative here).
    n = MIF()
    dt, T = 1e-7, 3000
    u = jnp.full((T, 3), 1.0) * jnp.asarray([3e-6, 3e-5, 3e-4])[None]
    _, st32 = mif_simulate(n, u.astype(jnp.float32), dt)
    with jax.enable_x64(True):
        _, st64 = mif_simulate(n, u.astype(jnp.float64), dt)
        st64 = jax.tree.map(np.asarray, st64)
    for f in ("a", "i", "v"):
        a32, a64 = np.asarray(getattr(st32, f), np.float64), getattr(st64, f)
        rel = np.max(np.abs(a32 - a64)) / np.max(np.abs(a64))
        assert rel < 2e-5, (f, rel)


@pytest.mark.parametrize("dt", [1e-12, 1e-7, 1e-4, 1e-2, 1.0, 1e3])
@pytest.mark.parametrize("amp", [0.0, 1e-3, -1e-3, 1.0])
def test_bounded_for_any_step_and_input(dt, amp):
    n = MIF()
    s = n.init_state((2,))
    for _ in range(5):
        s = mif_step(n, s, jnp.full((2,), amp, jnp.float32), dt)
    for leaf in jax.tree.leaves(s):
        assert np.all(np.isfinite(leaf))
    assert np.all((s.x1 >= 0) & (s.x1 <= 1) & (s.x2 >= 0) & (s.x2 <= 1))
    # v stays between the batteries' pull and the input's target
    g_min = 2 / n.m1.R_off
    assert np.all(np.abs(s.v) <= abs(amp) / g_min + 0.03)


def test_phi2_series_meets_closed_form_and_gradient_is_finite(x64):
    phi2 = mif_module._phi2

    def exact(z):
        # 40 terms of the series (the closed form cancels for small z); large z closed
        z = np.asarray(z, np.float64)
        series = sum((-z) ** n / math.factorial(n + 2) for n in range(40))
        return np.where(z < 1, series, (z - 1 + np.exp(-np.minimum(z, 700))) / z**2)

    for dtype, tol in ((jnp.float64, 1e-12), (jnp.float32, 2e-6)):
        z = jnp.asarray([1e-3, 4.9e-3, 5.1e-3, 0.099, 0.101, 0.5, 3.0, 50.0], dtype)
        m = -jnp.expm1(-z)
        got = np.asarray(phi2(z, m), np.float64)
        np.testing.assert_allclose(got, exact(np.asarray(z, np.float64)), rtol=tol)
    np.testing.assert_allclose(phi2(jnp.zeros(()), jnp.zeros(())), 0.5)
    g = jax.vmap(jax.grad(lambda z: phi2(z, -jnp.expm1(-z))))(jnp.asarray([0.0, 1e-3, 1.0, 1e3]))
    assert np.all(np.isfinite(g))
    # d phi2 / dz = (phi1 - 2 phi2) / z; -1/6 at 0
    np.testing.assert_allclose(g[0], -1 / 6, rtol=1e-6)
    z = 1.0
    np.testing.assert_allclose(g[2], ((1 - np.exp(-z)) / z - 2 * exact(z)) / z, rtol=1e-9)


def test_substeps_compile_as_a_loop(getkey):
    # the jaxpr of a network step does not grow with the number of sub-steps
    x = jax.random.uniform(getkey(), (2, 12))
    sizes = []
    for sub in (2, 50):
        m = MEMprop.init(getkey(), 12, 8, 3, n_steps=3, substeps=sub)
        sizes.append(len(str(jax.make_jaxpr(lambda x: m(x))(x))))
    assert sizes[1] < 1.05 * sizes[0], sizes
    n = MIF()
    s = n.init_state((3,))
    jx = [
        len(str(jax.make_jaxpr(lambda s: mif_step(n, s, 1e-5, 1e-4, substeps=k))(s)))
        for k in (2, 50)
    ]
    assert jx[1] < 1.05 * jx[0], jx
