"""VO2 thermal threshold switch: equations, threshold switching, volatility, solvers, grads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, rel_err

from memjax.devices._base import simulate, simulate_reference
from memjax.devices.threshold import VO2ThresholdSwitch
from memjax.waveforms import Sine

# Zhang et al. 2024 (collective_dynamics_neuristor/model.py) values, SI units.
P = dict(
    R0=5.35882879e-3,
    Ea=5.22047417e3,
    Rm=262.5 * 4.90025335,
    Tc=3.32805839e2,
    w=7.19357064,
    beta=2.52796285e-1,
    Cth=49.62776831e-12,
    Sth=0.20558726e-3,
    T_base=325.0,
)


def np_vo2(T, v, hysteresis=False, P_h=1e-6):
    """NumPy transcription: R(T) law of the source (clamped to [305, 370] K), heat balance."""
    T = np.asarray(T, np.float64)
    v = np.asarray(v, np.float64)

    def R(T, delta):
        Tc = np.clip(T, 305.0, 370.0)
        g = 0.5 + 0.5 * np.tanh(P["beta"] * (delta * P["w"] / 2 + P["Tc"] - Tc))
        return P["R0"] * np.exp(P["Ea"] / Tc) * g + P["Rm"]

    delta = 0.0
    if hysteresis:
        delta = np.tanh((v**2 / R(T, 0.0) - P["Sth"] * (T - P["T_base"])) / P_h)
    r = R(T, delta)
    return v / r, (v**2 / r - P["Sth"] * (T - P["T_base"])) / P["Cth"]


@pytest.mark.parametrize("hysteresis", [False, True])
def test_equations_match_numpy(x64, hysteresis):
    d = VO2ThresholdSwitch(hysteresis=hysteresis)
    T = np.linspace(290.0, 500.0, 43)[:, None]
    v = np.array([-8.0, -3.0, -0.5, 0.0, 0.2, 1.0, 2.5, 4.0, 5.5, 6.5, 9.0])[None, :]
    i_ref, r_ref = np_vo2(T, v, hysteresis)
    np.testing.assert_allclose(d.current(T, v), i_ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(d.rate(T, v), r_ref, rtol=1e-10, atol=1e-3)
    assert VO2ThresholdSwitch.volatile is True


def test_resistance_law(x64):
    d = VO2ThresholdSwitch()
    r_ins, r_met = np.asarray(d.device_resistance(jnp.array([325.0, 400.0])))
    assert 4e4 < r_ins < 6e4 and r_met == pytest.approx(P["Rm"], rel=1e-6)
    # Heating branch (delta = +1) stays insulating to higher T than the cooling branch.
    g_heat, g_cool = d.insulating_fraction(P["Tc"], 1.0), d.insulating_fraction(P["Tc"], -1.0)
    assert g_heat > 0.8 and g_cool < 0.2


def _ramp(v_peak, t_ramp):
    return lambda t: jnp.where(t < t_ramp, v_peak * (1 - jnp.abs(2 * t / t_ramp - 1)), 0.0)


def test_threshold_switching_hysteresis_and_relaxation(x64):
    d = VO2ThresholdSwitch()
    t_ramp, dt = 80e-6, 20e-9
    n_ramp = int(round(t_ramp / dt))
    tr = simulate(d, _ramp(7.0, t_ramp), dt=dt, n_steps=n_ramp + 151)
    t, v, i, T = (np.asarray(a) for a in (tr.t, tr.v, tr.i, tr.x))
    up, down = slice(1, n_ramp // 2), slice(n_ramp // 2, int(0.95 * n_ramp))  # v > 0.35 V

    # Independent steady-state analysis (NumPy): the insulating branch exists up to V_up,
    # the metallic one down to V_dn; the heat balance is bistable in between.
    Tg = np.linspace(300.0, 600.0, 60001)

    def n_equilibria(V):
        r = np_vo2(Tg, V)[1]
        return int(np.sum(np.sign(r[1:]) != np.sign(r[:-1])))

    Vg = np.arange(1.0, 7.0, 0.01)
    bist = Vg[[n_equilibria(V) == 3 for V in Vg]]
    V_dn, V_up = bist.min(), bist.max()
    assert 1.5 < V_dn < 3.0 and 5.0 < V_up < 6.5

    # Way up: one abrupt jump (current x > 5 within one 20 ns sample) just past V_up.
    ratio = i[up][1:] / np.maximum(i[up][:-1], 1e-15)
    k = int(np.argmax(ratio))
    assert ratio[k] > 1.5 and i[up][k + 1] / i[up][max(k - 25, 0)] > 5
    assert V_up - 0.05 < v[up][k] < V_up + 0.5
    # Way down: back to insulating at a much lower voltage near V_dn (hysteresis).
    ratio_dn = i[down][1:] / np.maximum(i[down][:-1], 1e-15)
    k = int(np.argmin(ratio_dn))
    assert i[down][max(k - 25, 0)] / i[down][k + 1] > 5
    assert V_dn - 0.5 < v[down][k] < V_dn + 0.3
    # Volatile: with the drive removed T relaxes as T_amb + (T1 - T_amb) e^{-t / R_th C_th}.
    tau = 1.0 / (P["Sth"]) * P["Cth"]
    off = slice(n_ramp, None)
    expect = 325.0 + (T[n_ramp] - 325.0) * np.exp(-(t[off] - t[n_ramp]) / tau)
    np.testing.assert_allclose(T[off], expect, rtol=1e-9)
    assert abs(T[-1] - 325.0) < 1e-4


@pytest.mark.parametrize("hysteresis,amplitude", [(False, 8.0), (True, 9.0)])
def test_rk4_matches_reference(x64, hysteresis, amplitude):
    # 200 kHz sine: switches on and off twice per period (R spans R_m .. ~50 kOhm).
    d = VO2ThresholdSwitch(hysteresis=hysteresis, P_h=1e-4)
    drive = Sine(amplitude, 2e5)
    tr = simulate(d, drive, dt=5e-8, n_steps=201, substeps=16)
    r = np.abs(np.asarray(tr.v[1:] / tr.i[1:]))
    assert np.max(tr.x) > 500 and r.min() < 1.01 * P["Rm"] and r.max() > 3e4
    ref = simulate_reference(d, drive, tr.t)
    # Measured max rel. error (T, I): 2.7e-6, 4e-7 (no hysteresis); 6e-6, 1.4e-5 (with);
    # 16 substeps (dt = 3.1 ns); 4th-order convergence checked at 8/16/32 substeps.
    assert rel_err(tr.x, ref.x) < 1e-4
    assert rel_err(tr.i, ref.i) < 1e-4


def test_gradients_match_finite_differences(x64):
    @jax.jit
    def loss(p):
        d = VO2ThresholdSwitch(C_th=p[0] * 1e-11)
        tr = simulate(d, Sine(p[1], 2e5), dt=5e-8, n_steps=101, substeps=2)
        return jnp.mean(tr.i) * 1e3 + jnp.mean(tr.x) / 300

    p = jnp.array([4.962776831, 6.5])
    g = np.asarray(jax.jit(jax.grad(loss))(p))
    fd = central_fd(loss, p, eps=1e-7)
    assert np.all(np.abs(g) > 0)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("R0", 0.0),
        ("R_m", -1.0),
        ("C_th", 0.0),
        ("R_th", np.nan),
        ("beta", -0.1),
        ("T_hi", 300.0),
        ("x0", -5.0),
        ("T_amb", 0.0),
        ("P_h", 0.0),
    ],
)
def test_bad_parameters(field, value):
    with pytest.raises(ValueError, match=f"VO2ThresholdSwitch.*{field}"):
        VO2ThresholdSwitch(**{field: value})


@pytest.mark.parametrize("hysteresis", [False, True])
def test_huge_voltages_finite_in_float32(hysteresis):
    d = VO2ThresholdSwitch(hysteresis=hysteresis)
    T, v = jnp.broadcast_arrays(
        jnp.array([300.0, 340.0, 1e4], jnp.float32)[:, None],
        jnp.array([-1e6, -1e3, 0.0, 1e3, 1e6], jnp.float32)[None, :],
    )

    @jax.jit
    def check(T, v):
        out = [
            (fn(T, v), jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(T, v))
            for fn in (d.rate, d.current)
        ]
        tr = simulate(d, Sine(jnp.float32(1e5), 1e6), dt=1e-9, n_steps=20)
        return out, tr.x, tr.i

    for leaf in jax.tree_util.tree_leaves(check(T, v)):
        assert leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf))
