"""memjax.neurons.mif_transient: RK4 transients against the adaptive diffrax reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.integrate import odeint_reference
from memjax.neurons import MIF, mif_simulate, mif_transient, rk4_substeps

DT, T = 1e-5, 2000  # 10 us output step, 20 ms


def _reference(neuron, amp, T=T):
    with jax.enable_x64(True):
        s0 = neuron.init_state(np.shape(amp), jnp.float64)
        field = neuron.vector_field(lambda t: jnp.asarray(amp, jnp.float64))
        ts = DT * jnp.arange(T + 1)
        ys = odeint_reference(field, s0, ts, rtol=1e-10, atol=1e-14, stiff=True, dtmax=DT)
        return np.asarray(ys.v)


def _err(v, ref):
    return float(np.max(np.abs(np.asarray(v, np.float64) - ref) / np.ptp(ref, axis=0)))


@pytest.mark.parametrize("C,amp", [(10e-9, 2e-6), (1e-9, 2e-6), (1e-9, 30e-6)])
def test_matches_the_reference_in_float64(C, amp):
    neuron = MIF(C=C, polarity2=1.0)
    ref = _reference(neuron, amp)
    with jax.enable_x64(True):
        final, st = jax.jit(mif_transient, static_argnames="dt")(
            neuron, jnp.full((T,), amp, jnp.float64), dt=DT
        )
        v = np.concatenate([np.asarray(st.v), np.asarray(final.v)[None]])
    assert _err(v, ref) < 1e-6


def test_float32_at_the_output_step_reaches_spice_accuracy():
    # speed-devices' neuron: one RK4 step per 10 us output step is stable and within
    # 2e-5 of the peak-to-peak in float32 (ngspice's default error there is 1.5e-5).
    neuron = MIF(C=10e-9, polarity2=1.0)
    assert int(rk4_substeps(neuron, DT)) == 1
    ref = _reference(neuron, 2e-6)
    final, st = jax.jit(mif_transient, static_argnames="dt")(
        neuron, jnp.full((T,), 2e-6, jnp.float32), dt=DT
    )
    v = np.concatenate([np.asarray(st.v), np.asarray(final.v)[None]])
    assert _err(v, ref) < 2e-5


def test_auto_substeps_keep_a_switching_neuron_bounded():
    # 1 nF, 1 kOhm ON resistances: lambda_max = 2e6 /s, so 10 us needs 8 sub-steps; one
    # RK4 step per 10 us is far past the stability limit once the memristors switch ON.
    neuron = MIF()
    assert int(rk4_substeps(neuron, DT)) == 8
    ref = _reference(neuron, 100e-6, 500)
    i_in = jnp.full((500,), 100e-6, jnp.float32)
    final, st = mif_transient(neuron, i_in, DT)
    v = np.concatenate([np.asarray(st.v), np.asarray(final.v)[None]])
    assert float(jnp.max(st.x1)) > 0.8  # M1 switches ON
    assert _err(v, ref) < 1e-4
    # one RK4 step per 10 us is past the stability limit: an error, not a divergence
    with pytest.raises(ValueError, match="substeps >= 8"):
        mif_transient(neuron, i_in, DT, substeps=1)
    # the divergence that the error prevents (the check is skipped for traced parameters)
    final, bad = jax.jit(lambda n: mif_transient(n, i_in, DT, substeps=1))(neuron)
    v_bad = np.concatenate([np.asarray(bad.v), np.asarray(final.v)[None]])
    assert not np.all(np.isfinite(v_bad)) or _err(v_bad, ref) > 0.1


def test_time_base_and_population_match_mif_simulate():
    neuron = MIF(C=jnp.array([1e-9, 2e-9, 4e-9]))
    i_in = jnp.full((50, 3), 5e-6, jnp.float32)
    final, st = mif_transient(neuron, i_in, 1e-5)
    f_ref, st_ref = mif_simulate(neuron, i_in, 1e-5, substeps=20)
    assert st.v.shape == (50, 3) and final.v.shape == (3,)
    np.testing.assert_array_equal(st.v[0], neuron.init_state((3,), jnp.float32).v)
    np.testing.assert_allclose(st.v, st_ref.v, atol=2e-4 * float(jnp.ptp(st_ref.v)))
    # the stiffest neuron (1 nF) sets one sub-step count for the population
    assert int(rk4_substeps(neuron, 1e-5)) == 8


def test_bad_arguments_name_the_parameter():
    neuron = MIF()
    with pytest.raises(ValueError, match="dt"):
        mif_transient(neuron, jnp.zeros((4,)), -1e-5)
    with pytest.raises(ValueError, match="substeps"):
        mif_transient(neuron, jnp.zeros((4,)), 1e-5, substeps=0)
    with pytest.raises(ValueError, match="axis 0"):
        mif_transient(neuron, jnp.asarray(1e-6), 1e-5)
