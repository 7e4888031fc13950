"""Property: the MIF neuron's gradient is finite wherever its forward value is, over
input amplitude (a tenth to a thousand times a spiking drive), step size, substeps and
parameters, in float32 and float64."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.neurons.mif import MIF, mif_simulate

N_DRAWS = 8
T = 60
AMP0 = 1e-5  # a pulse that spikes (A)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize("dt, substeps", [(1e-5, 1), (1e-4, 1), (1e-4, 4)])
def test_mif_gradient_finite_where_forward_finite(x64, dt, substeps):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        rng = np.random.default_rng(0)
        amp = AMP0 * 10.0 ** rng.uniform(-1.0, 3.0, N_DRAWS)
        amp[0] = 1e3 * AMP0
        sign = np.where(rng.uniform(size=N_DRAWS) < 0.25, -1.0, 1.0)
        scales = 2.0 ** rng.uniform(-1.0, 1.0, (N_DRAWS, 3))
        base = MIF()
        on = (np.arange(T) < T // 2).astype(float)

        def loss(a, s):
            p = eqx.tree_at(
                lambda m: (m.C, m.tau_a, m.m1.R_on),
                base,
                (base.C * s[0], base.tau_a * s[1], base.m1.R_on * s[2]),
            )
            i_in = jnp.asarray(on, dtype)[:, None] * a
            _, st = mif_simulate(p, i_in, dt, substeps=substeps)
            return jnp.mean(st.v) + jnp.mean(st.x1) + jnp.mean(st.x2)

        f = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1))))
        value, (ga, gs) = f(jnp.asarray(amp * sign, dtype), jnp.asarray(scales, dtype))
        value = np.asarray(value)
        g = np.concatenate(
            [np.asarray(ga).reshape(N_DRAWS, -1), np.asarray(gs).reshape(N_DRAWS, -1)], axis=1
        )
        assert np.isfinite(value).any()
        bad = np.isfinite(value) & ~np.all(np.isfinite(g), axis=1)
        assert not bad.any(), (np.flatnonzero(bad), amp[bad], g[bad])
