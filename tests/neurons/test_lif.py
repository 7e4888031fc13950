"""LIF baseline: forward spikes against a NumPy transcription, surrogate derivatives
against their formulas, bad parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.neurons.lif import LIF, lif_step, spike_fn, surrogate_grad


def _numpy_lif(i_in, beta, theta):
    v = np.zeros(i_in.shape[1:])
    vs, ss = [], []
    for t in range(i_in.shape[0]):
        v = beta * v + i_in[t]
        s = (v > theta).astype(float)
        v = v - theta * s
        vs.append(v.copy())
        ss.append(s)
    return np.stack(vs), np.stack(ss)


def test_forward_matches_numpy(x64, getkey):
    n = LIF(beta=0.85, theta=0.7)
    i_in = np.asarray(jax.random.uniform(getkey(), (50, 6), jnp.float64, 0.0, 0.4))

    def body(s, u):
        s = lif_step(n, s, u)
        return s, (s.v, s.s)

    _, (v, s) = jax.lax.scan(body, n.init_state((6,)), jnp.asarray(i_in))
    v_ref, s_ref = _numpy_lif(i_in, 0.85, 0.7)
    np.testing.assert_array_equal(np.asarray(s), s_ref)
    np.testing.assert_allclose(v, v_ref, rtol=1e-12, atol=1e-12)
    assert 0 < s_ref.sum() < s_ref.size  # some but not all steps spike


@pytest.mark.parametrize("kind", ["fast_sigmoid", "arctan"])
def test_surrogate_derivative_formula(x64, kind):
    k = 10.0
    u = jnp.linspace(-1.0, 1.0, 21)
    g = jax.vmap(jax.grad(lambda x: spike_fn(x, kind, k)))(u)
    un = np.asarray(u)
    if kind == "fast_sigmoid":
        ref = 1.0 / (1.0 + k * np.abs(un)) ** 2
    else:
        ref = (k / 2.0) / (1.0 + (np.pi * k * un / 2.0) ** 2)
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    np.testing.assert_allclose(surrogate_grad(u, kind, k), ref, rtol=1e-12)
    # forward is the exact Heaviside
    np.testing.assert_array_equal(spike_fn(u, kind, k), (un > 0).astype(float))


def test_gradient_flows_through_membrane(x64):
    # d(spike count)/d(input scale) is non-zero only through the surrogate.
    n = LIF(beta=0.9, theta=1.0, surrogate="arctan", slope=5.0)

    def count(a):
        def body(s, _):
            s = lif_step(n, s, a * jnp.ones(3))
            return s, s.s

        return jnp.sum(jax.lax.scan(body, n.init_state((3,)), None, length=20)[1])

    g = jax.grad(count)(0.3)
    assert np.isfinite(float(g)) and float(g) > 0


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"beta": 1.5}, "LIF.beta"),
        ({"theta": 0.0}, "LIF.theta"),
        ({"surrogate": "relu"}, "LIF.surrogate"),
    ],
)
def test_bad_parameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LIF(**kwargs)
