"""Adaptive LIF: threshold dynamics against a NumPy transcription, SFA lowers the firing
rate under constant drive, no SFA gives a constant rate, device levels, bad parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.devices.rram import MultiLevelRRAM
from memjax.neurons import simulate
from memjax.neurons.alif import ALIF, alif_step, alif_threshold, reset_adaptation


def alif_run(n, st0, inputs):
    """Per-step outputs from the states of `simulate` (``states[k]`` at step k's start):
    the spikes, membrane and conductance after step k and the threshold it used."""
    final, states = simulate(n, st0, inputs)
    after = jax.tree.map(lambda a, f: jnp.concatenate([a[1:], f[None]]), states, final)
    theta = alif_threshold(n, states)
    return final, {"s": after.s, "v": after.v, "theta": theta, "g": after.g}


def numpy_alif(I, leak, theta0, beta, rho, n_levels, reset="zero"):
    """Independent transcription of the module equations (one neuron)."""
    v, g = 0.0, 0.0
    dg = 1.0 / (n_levels - 1)
    out = []
    for i in I:
        th = theta0 + beta * g
        v = leak * v + i
        s = 1.0 if v > th else 0.0
        if s:
            v = 0.0 if reset == "zero" else v - th
        g = min(max(rho * g + dg * s, 0.0), 1.0)
        out.append((s, v, th, g))
    return np.array(out)


def test_hand_computed_sequence():
    # leak 1, theta0 1, beta 0.3, 4 levels (dg = 1/3): constant input 0.6.
    # t0: v .6 th 1 ; t1: v 1.2 > 1 spike, g = 1/3 ; t2: th 1.1, v .6 ; t3: v 1.2 > 1.1
    # spike, g = 2/3 ; t4: th 1.2, v .6 ; t5: v 1.2 not > 1.2 ; t6: v 1.8 spike, g = 1 ;
    # t7..: th 1.3 (saturated).
    n = ALIF(leak=1.0, theta0=1.0, beta=0.3, device=MultiLevelRRAM(n_levels=4))
    _, out = alif_run(n, n.init_state(), jnp.full((9,), 0.6))
    np.testing.assert_array_equal(out["s"], [0, 1, 0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_allclose(out["theta"], [1, 1, 1.1, 1.1, 1.2, 1.2, 1.2, 1.3, 1.3], atol=1e-6)
    np.testing.assert_allclose(out["g"][-1], 1.0)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("rho", [1.0, 0.97])
def test_matches_numpy_transcription(x64, reset, rho):
    I = np.random.default_rng(0).uniform(0, 0.8, 200)
    n = ALIF(
        leak=0.9, theta0=1.0, beta=2.0, rho=rho, reset=reset, device=MultiLevelRRAM(n_levels=16)
    )
    st, out = alif_run(n, n.init_state(), jnp.asarray(I))
    ref = numpy_alif(I, 0.9, 1.0, 2.0, rho, 16, reset)
    np.testing.assert_array_equal(out["s"], ref[:, 0])
    np.testing.assert_allclose(out["v"], ref[:, 1], atol=1e-12)
    np.testing.assert_allclose(out["theta"], ref[:, 2], atol=1e-12)
    np.testing.assert_allclose(out["g"], ref[:, 3], atol=1e-12)
    assert int(st.pulses) == int(ref[:, 0].sum())


def test_sfa_rate_falls_and_plain_lif_is_constant():
    drive = jnp.full((400, 1), 0.35)
    sfa = ALIF(leak=0.95, theta0=1.0, beta=3.0)
    plain = sfa.without_sfa()
    _, o1 = alif_run(sfa, sfa.init_state((1,)), drive)
    _, o0 = alif_run(plain, plain.init_state((1,)), drive)
    s1, s0 = np.asarray(o1["s"][:, 0]), np.asarray(o0["s"][:, 0])
    # plain LIF: a constant inter-spike interval after the first spike
    isi0 = np.diff(np.flatnonzero(s0))
    assert len(isi0) > 20 and np.all(isi0 == isi0[0])
    # SFA: the intervals grow and the spike count in successive windows falls
    isi1 = np.diff(np.flatnonzero(s1))
    assert np.all(np.diff(isi1) >= 0) and isi1[-1] > isi1[0]
    first, last = s1[:100].sum(), s1[-100:].sum()
    assert last < first
    assert s1.sum() < 0.6 * s0.sum()
    # the adaptation cell is on its levels (no write noise without a key)
    g = np.asarray(o1["g"][:, 0]) * 31
    np.testing.assert_allclose(g, np.round(g), atol=1e-4)


def test_write_noise_and_reset():
    n = ALIF(leak=1.0, theta0=1.0, beta=1.0, device=MultiLevelRRAM(n_levels=32, write_sigma=0.01))
    st = n.init_state((1000,))
    st = alif_step(n, st, jnp.full((1000,), 2.0), jax.random.key(0))
    assert np.all(st.s == 1)
    err = np.asarray(st.g) - 1 / 31
    assert 0.008 < err.std() < 0.012  # one write pulse of sigma 0.01 of the range
    st2, pulses = reset_adaptation(st)
    assert np.all(st2.g == 0)
    np.testing.assert_array_equal(pulses, np.asarray(st.g) > 0)
    np.testing.assert_array_equal(st2.pulses, 1 + (np.asarray(st.g) > 0))


def test_bad_parameters():
    with pytest.raises(ValueError, match="ALIF.leak"):
        ALIF(leak=1.5)
    with pytest.raises(ValueError, match="ALIF.theta0"):
        ALIF(theta0=0.0)
    with pytest.raises(ValueError, match="ALIF.beta"):
        ALIF(beta=-1.0)
    with pytest.raises(ValueError, match="ALIF.rho"):
        ALIF(rho=2.0)
    with pytest.raises(ValueError, match="ALIF.reset"):
        ALIF(reset="hard")
    with pytest.raises(ValueError, match="ALIF.device"):
        ALIF(device=None)
