"""The neuron interface: every neuron is an AbstractNeuron, one simulate() for all, the
time base shared with odeint, the dt convention of discrete- and continuous-time
neurons."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.integrate import odeint
from memjax.neurons import (
    ALIF,
    LIF,
    MIF,
    AbstractNeuron,
    mif_simulate,
    simulate,
)

NEURONS = [
    (LIF(beta=0.8, theta=0.5), None, 0.3),
    (ALIF(theta0=0.5), None, 0.3),
    (MIF(), 1e-4, 5e-6),
]


def test_abstract_base_cannot_be_built():
    with pytest.raises(TypeError):
        AbstractNeuron()


@pytest.mark.parametrize("neuron,dt,amp", NEURONS)
def test_simulate_time_base_matches_a_step_loop(neuron, dt, amp):
    assert isinstance(neuron, AbstractNeuron)
    u = amp * jnp.abs(jnp.sin(jnp.arange(12.0)))[:, None] * jnp.ones((1, 3))
    s0 = neuron.init_state((3,))
    final, states = simulate(neuron, s0, u, dt)
    # states[k] is the state at k dt, the initial one first; final after the last input
    s, ref = s0, []
    for k in range(12):
        ref.append(s)
        s = neuron.step(s, u[k], dt)
    # float32 round-off of the compiled scan against eager steps: relative to each
    # leaf's scale over the run (a state that starts at 0 has no relative precision)
    scale = jax.tree.map(lambda x: 1e-6 * float(jnp.max(jnp.abs(x))), states)

    def close(a, b):
        return all(
            np.allclose(p, q, rtol=1e-6, atol=t)
            for p, q, t in zip(*(jax.tree.leaves(z) for z in (a, b, scale)))
        )

    for k in (0, 5, 11):
        assert close(ref[k], jax.tree.map(lambda x: x[k], states))
    assert close(s, final)
    assert neuron.output(final).shape == (3,)


def test_mif_simulate_shares_odeint_time_base(x64):
    # The same MIF trajectory by the exponential splitting and by odeint on the vector
    # field: sample k of both is the state at k dt (the initial state first). The
    # synaptic filter current is exact in the splitting, so it shows any shift.
    n = MIF()
    dt, T, i0 = 1e-4, 30, 5e-6
    s0 = n.init_state((), jnp.float64)
    final, st = mif_simulate(n, jnp.full((T,), i0), dt, state=s0)
    _, ys = odeint(n.vector_field(lambda t: i0), s0, dt=dt, n_steps=T, substeps=50)
    np.testing.assert_array_equal(st.v[0], s0.v)
    np.testing.assert_array_equal(ys.v[0], s0.v)
    np.testing.assert_allclose(st.i, ys.i, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(st.a, ys.a, rtol=1e-6, atol=1e-15)
    # shifted by one sample (the other time base) they disagree
    assert float(np.max(np.abs(st.i[1:] - ys.i[:-1]))) > 0.01 * i0


def test_dt_convention():
    lif = LIF()
    s = lif.init_state((2,))
    np.testing.assert_array_equal(lif.step(s, jnp.ones(2)).v, lif.step(s, jnp.ones(2), 1.0).v)
    with pytest.raises(ValueError, match=r"LIF.step: LIF is a discrete-time map .* LIF.dt = 1.0"):
        lif.step(s, jnp.ones(2), 1e-3)
    LIF(dt=1e-3).step(s, jnp.ones(2), 1e-3)
    with pytest.raises(ValueError, match="ALIF.step"):
        simulate(ALIF(), None, jnp.ones((3, 2)), 0.5)
    with pytest.raises(ValueError, match="substeps must be 1 for a discrete-time neuron"):
        simulate(LIF(), None, jnp.ones((3, 2)), substeps=2)
    with pytest.raises(ValueError, match="MIF.step: dt .* is required"):
        MIF().step(MIF().init_state((2,)), jnp.zeros(2))
    with pytest.raises(ValueError, match="dt .* is required"):
        simulate(MIF(), None, jnp.zeros((3, 2)))
    with pytest.raises(NotImplementedError, match="discrete-time map"):
        LIF().vector_field(lambda t: 0.0)
    with pytest.raises(ValueError, match="LIF.dt"):
        LIF(dt=0.0)


def test_alif_key_draws_write_noise():
    from memjax.devices.rram import MultiLevelRRAM

    n = ALIF(leak=1.0, theta0=0.5, beta=1.0, device=MultiLevelRRAM(n_levels=32, write_sigma=0.01))
    u = jnp.ones((5, 100))
    f0, _ = simulate(n, None, u)
    f1, _ = simulate(n, None, u, key=jax.random.key(0))
    g0 = np.asarray(f0.g) * 31
    np.testing.assert_allclose(g0, np.round(g0), atol=1e-4)  # on the levels
    assert float(np.std(np.asarray(f1.g))) > 0  # off the levels: write noise drawn
    assert eqx.tree_equal(jax.tree.structure(f0), jax.tree.structure(f1))
