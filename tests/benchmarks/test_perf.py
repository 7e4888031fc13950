"""Performance helpers: checkpointed_scan (values, gradients, memory), MEMprop's
checkpoint switch, and the MIF SPICE netlist against memjax (tiny settings)."""

import shutil
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.integrate import checkpointed_scan
from memjax.models.memprop import MEMprop, memprop_loss

from helpers import rel_err

MODES = ["none", "step", "sqrt", 4, 50]


def _f(c, x):
    c = jnp.tanh(c * x[0]) + 0.3 * c * x[1]
    return c, jnp.sum(c**2)


def _numpy_scan(c, xs):
    ys = []
    for x in xs:
        c = np.tanh(c * x[0]) + 0.3 * c * x[1]
        ys.append(np.sum(c**2))
    return c, np.asarray(ys)


@pytest.mark.parametrize("T", [1, 17])
def test_checkpointed_scan_values_and_grads(x64, getkey, T):
    c0 = jax.random.normal(getkey(), (3,))
    xs = jax.random.uniform(getkey(), (T, 2, 3), minval=0.5, maxval=1.5)
    c_ref, ys_ref = _numpy_scan(np.asarray(c0), np.asarray(xs))

    def loss(c0, xs, mode):
        c, ys = checkpointed_scan(_f, c0, xs, checkpoint=mode)
        return jnp.sum(c) + jnp.sum(jnp.cos(ys))

    @jax.jit
    def run(c0, xs):
        out = {}
        for mode in MODES:
            c, ys = checkpointed_scan(_f, c0, xs, checkpoint=mode)
            out[str(mode)] = (c, ys, jax.grad(loss, argnums=(0, 1))(c0, xs, mode))
        return out

    out = run(c0, xs)
    g_ref = out["none"][2]
    for mode, (c, ys, g) in out.items():
        np.testing.assert_allclose(c, c_ref, rtol=1e-12)
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-12)
        assert rel_err(g[0], g_ref[0]) < 1e-12 and rel_err(g[1], g_ref[1]) < 1e-12, mode


def test_checkpointed_scan_length_only_and_errors(x64):
    f = lambda c, _: (0.9 * c + 1.0, c)
    ref = 10.0 * (1 - 0.9 ** np.arange(23))
    for mode in MODES:
        c, ys = checkpointed_scan(f, jnp.float64(0.0), None, 23, checkpoint=mode)
        np.testing.assert_allclose(ys, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="checkpoint must be"):
        checkpointed_scan(f, 0.0, None, 5, checkpoint="everything")
    with pytest.raises(ValueError, match="segment length"):
        checkpointed_scan(f, 0.0, None, 5, checkpoint=0)


def _temp_bytes(mode, T, n=2048):
    def loss(c0, w):
        c, ys = checkpointed_scan(lambda c, _: (jnp.sin(c * w) + 0.5 * jnp.cos(c), None),
                                  c0, None, T, checkpoint=mode)
        return jnp.sum(c)

    args = (jnp.ones(n, jnp.float32), jnp.float32(1.1))
    comp = jax.jit(jax.grad(loss, argnums=1)).lower(*args).compile()
    return comp.memory_analysis().temp_size_in_bytes


def test_sqrt_checkpointing_is_sublinear():
    # Residuals of a 2048-float state over T steps: "step" keeps T states, "sqrt" about
    # 2 sqrt(T); growing T 16x grows "step" ~16x and "sqrt" ~4x.
    t_step = [_temp_bytes("step", T) for T in (64, 1024)]
    t_sqrt = [_temp_bytes("sqrt", T) for T in (64, 1024)]
    assert t_step[1] / t_step[0] > 10
    assert t_sqrt[1] / t_sqrt[0] < 6
    assert t_sqrt[1] < t_step[1] / 5


def test_memprop_checkpoint_modes_same_gradient(x64, getkey):
    # T = 5 steps in segments of ceil(sqrt(5)) = 3: one segment and a remainder of 2.
    m0 = MEMprop.init(getkey(), 12, 8, 3, n_steps=5, w_std=0.3, g1=3.0, g2=3.0,
                      synapse="dense")
    x = jax.random.uniform(getkey(), (4, 12), jnp.float64)
    y = jnp.array([0, 1, 2, 0])

    @eqx.filter_jit
    def grads(m0):
        out = {}
        for mode in ["none", "sqrt"]:
            m = MEMprop(**{**{f: getattr(m0, f) for f in m0.__dataclass_fields__},
                           "checkpoint": mode})
            g = eqx.filter_grad(lambda m: memprop_loss(m, x, y, None)[0])(m)
            out[mode] = (g.syn1.weight, g.syn2.weight, g.log_k_out)
        return out

    g = grads(m0)
    for a, b in zip(g["sqrt"], g["none"]):
        assert float(jnp.max(jnp.abs(b))) > 0
        assert rel_err(a, b) < 1e-12
    with pytest.raises(ValueError, match="MEMprop.checkpoint"):
        MEMprop.init(getkey(), 12, 8, 3, checkpoint="all")


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_mif_netlist_matches_memjax(x64):
    # Two neurons of a D2D population through the behavioural netlist (mif.sub) and
    # through memjax: membrane waveforms agree to < 1 % of their peak.
    from benchmarks import perf

    n = 2
    pop, amps = perf._population(n, 0), perf._amplitudes(n)
    f, arrays = perf._mif_transient_fn(pop, jnp.float64)
    st = jax.jit(f)(arrays, jnp.asarray(amps))
    s0 = pop.init_state((n,), jnp.float64)
    with tempfile.TemporaryDirectory() as tmp:
        net = perf._mif_netlist(pop, amps, (s0.v, s0.x1, s0.x2), [0, 1], Path(tmp) / "o.txt")
        sp = perf.run_ngspice(net, Path(tmp), "o")
    d = sp["data"]
    t = perf.DT_OUT * np.arange(1, st.v.shape[0] + 1)
    for k in range(n):
        v_sp = np.interp(t, d[:, 0], d[:, 1 + 3 * k])
        v = np.asarray(st.v[:, k])
        assert np.max(np.abs(v)) > 0.01  # a real depolarisation, not a flat line
        assert np.max(np.abs(v - v_sp)) / np.max(np.abs(v)) < 1e-2
        x_sp = np.interp(t, d[:, 0], d[:, 2 + 3 * k])
        assert np.max(np.abs(np.asarray(st.x1[:, k]) - x_sp)) < 1e-3
