"""RRAM crossbar layer: Ohm + Kirchhoff MVM, gradients, projection, each non-ideality."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.crossbar import Crossbar, CrossbarConfig, project_crossbars
from memjax.devices.rram import MultiLevelRRAM

from .helpers import central_fd, rel_err

DEV = MultiLevelRRAM()
#: One compiled call per (crossbar config, shape) instead of many small eager ops.
run = eqx.filter_jit(lambda m, v, key=None: m(v, key=key))
DG = DEV.G_max - DEV.G_min


def _xb(key, n_in, n_out, lo=0.0, hi=1.0, **cfg):
    k1, k2 = jax.random.split(key)
    u = lambda k: jax.random.uniform(k, (n_in, n_out), minval=lo, maxval=hi)
    return Crossbar(u_pos=u(k1), u_neg=u(k2), config=CrossbarConfig(**cfg))


def _ideal(xb):
    return Crossbar(u_pos=xb.u_pos, u_neg=xb.u_neg)


def test_ideal_crossbar_is_ohm_and_kirchhoff(x64, getkey):
    xb = _xb(getkey(), 6, 4)
    v = jax.random.uniform(getkey(), (3, 5, 6), minval=-0.2, maxval=0.2)
    up, un, vn = (np.asarray(a, np.float64) for a in (xb.u_pos, xb.u_neg, v))
    Gp, Gn = DEV.G_min + up * DG, DEV.G_min + un * DG
    # By hand: I_j = sum_i v_i G+_ij - sum_i v_i G-_ij, one column at a time.
    want = np.zeros((3, 5, 4))
    for j in range(4):
        want[..., j] = (vn * Gp[:, j]).sum(-1) - (vn * Gn[:, j]).sum(-1)
    np.testing.assert_allclose(run(xb, v), want, rtol=1e-12, atol=1e-24)
    np.testing.assert_allclose(xb.effective_weight(), Gp - Gn, rtol=1e-12)
    Gp2, Gn2 = xb.conductances()
    np.testing.assert_allclose(Gp2, Gp, rtol=1e-12)
    assert xb(v[0, 0]).shape == (4,)
    # Read noise is switched off: a key changes nothing.
    np.testing.assert_array_equal(run(xb, v, key=getkey()), run(xb, v))


def test_init_is_glorot_in_effective_weight(getkey):
    xb = Crossbar.init(getkey(), 300, 200, CrossbarConfig())
    w = np.asarray(xb.u_pos - xb.u_neg)
    a = math.sqrt(6 / 500)
    assert np.abs(w).max() <= a + 1e-6 and abs(w.std() - a / math.sqrt(3)) < 0.01 * a
    np.testing.assert_allclose(np.asarray(xb.u_pos + xb.u_neg), 1.0, rtol=1e-6)
    xb2 = Crossbar.init(getkey(), 3, 2, scale=0.5)
    assert float(jnp.abs(xb2.u_pos - xb2.u_neg).max()) <= 0.5 + 1e-6


@pytest.mark.parametrize("cfg", [{}, {"drift_time": 50.0, "device": MultiLevelRRAM(nu=0.05)}])
def test_gradient_matches_finite_differences(x64, getkey, cfg):
    xb = _xb(getkey(), 4, 3, 0.1, 0.9, **cfg)
    v = jax.random.uniform(getkey(), (5, 4), minval=-0.2, maxval=0.2)
    target = jax.random.normal(getkey(), (5, 3))

    @jax.jit
    def loss(up, un):
        m = eqx.tree_at(lambda c: (c.u_pos, c.u_neg), xb, (up, un))
        return jnp.sum(jnp.sin(m(v) / (0.2 * DG) + target))

    gp, gn = jax.grad(loss, argnums=(0, 1))(xb.u_pos, xb.u_neg)
    fp = central_fd(lambda u: loss(u, xb.u_neg), xb.u_pos)
    fn = central_fd(lambda u: loss(xb.u_pos, u), xb.u_neg)
    assert rel_err(gp, fp) < 1e-7 and rel_err(gn, fn) < 1e-7


def test_quantisers_are_straight_through(x64, getkey):
    # With every quantiser on, the gradient equals the ideal layer's gradient taken at
    # the quantised conductances and voltages (inside the converter ranges).
    cfg = dict(quantize_levels=True, dac_bits=4, adc_bits=10)
    xb = _xb(getkey(), 4, 3, 0.1, 0.9, **cfg)
    v = jax.random.uniform(getkey(), (5, 4), minval=-0.15, maxval=0.15)
    loss = lambda m: jnp.sum(jnp.sin(m(v) / (0.2 * DG)))
    g = eqx.filter_jit(eqx.filter_grad(loss))(xb)
    vq = xb.dac(v)
    i_q = xb(v)
    dl_di = jnp.cos(i_q / (0.2 * DG)) / (0.2 * DG)
    np.testing.assert_allclose(g.u_pos, DG * vq.T @ dl_di, rtol=1e-10)
    np.testing.assert_allclose(g.u_neg, -DG * vq.T @ dl_di, rtol=1e-10)
    # The forward pass did quantise (the STE is not a no-op).
    assert float(jnp.abs(vq - v).max()) > 0
    assert float(jnp.abs(xb.effective_weight() - _ideal(xb).effective_weight()).max()) > 0


def test_project_clips_and_project_crossbars_walks_a_tree(getkey):
    xb = _xb(getkey(), 5, 4, -0.5, 1.5)
    p = xb.project()
    assert float(p.u_pos.min()) == 0.0 and float(p.u_pos.max()) == 1.0
    inside = (xb.u_neg >= 0) & (xb.u_neg <= 1)
    np.testing.assert_array_equal(p.u_neg[inside], xb.u_neg[inside])
    tree = {"layers": [xb, _xb(getkey(), 2, 2, -1.0, 2.0)], "w": jnp.full(3, 7.0), "n": 3}
    out = project_crossbars(tree)
    for c in out["layers"]:
        assert float(c.u_pos.min()) >= 0 and float(c.u_neg.max()) <= 1
    np.testing.assert_array_equal(out["w"], tree["w"])
    assert out["n"] == 3


def test_read_noise_fresh_zero_mean_configured_std(getkey):
    sigma = 0.05
    xb = _xb(getkey(), 16, 3, read_noise=True, device=MultiLevelRRAM(read_sigma=sigma))
    v = jax.random.uniform(getkey(), (2, 16), minval=-0.2, maxval=0.2)
    ideal = np.asarray(run(xb, v), np.float64)
    k = getkey()
    a, b = run(xb, v, key=k), run(xb, v, key=getkey())
    assert np.all(np.asarray(a) != np.asarray(b)) and np.all(np.asarray(a) != ideal)
    np.testing.assert_array_equal(run(xb, v, key=k), a)
    np.testing.assert_array_equal(run(xb, v), ideal)  # no key: a noiseless read
    # Statistics over many reads against a per-cell Monte Carlo of the definition.
    n = 10_000
    out = np.asarray(jax.vmap(lambda k: xb(v, key=k))(jax.random.split(getkey(), n)), np.float64)
    Gp, Gn = (np.asarray(g, np.float64) for g in xb.conductances())
    vn = np.asarray(v, np.float64)
    std = sigma * np.sqrt((vn**2) @ (Gp**2 + Gn**2))
    np.testing.assert_allclose(out.mean(0), ideal, atol=5 * std.max() / math.sqrt(n))
    np.testing.assert_allclose(out.std(0), std, rtol=0.03)
    zp = np.random.default_rng(0).standard_normal((4000, 16, 3))
    zn = np.random.default_rng(1).standard_normal((4000, 16, 3))
    mc = np.einsum("i,kij->kj", vn[0], Gp * (1 + sigma * zp) - Gn * (1 + sigma * zn))
    np.testing.assert_allclose(mc.std(0), std[0], rtol=0.06)
    # Each row of a batch is its own read: identical rows get different noise.
    same = jnp.tile(v[:1], (2, 1))
    r = np.asarray(run(xb, same, key=getkey()))
    assert np.all(r[0] != r[1])


def test_quantize_levels_restricts_conductances(getkey):
    dev = MultiLevelRRAM(n_levels=5)
    xb = _xb(getkey(), 100, 100, quantize_levels=True, device=dev)
    levels = np.asarray(dev.levels())
    for G in xb.conductances():
        d = np.abs(np.asarray(G)[..., None] - levels).min(-1)
        assert d.max() <= 1e-6 * dev.G_max
    # Off: the conductances are continuous.
    free = _xb(getkey(), 100, 100, device=dev).conductances()[0]
    assert np.unique(np.asarray(free)).size > 9000
    # Programming with levels and no program noise writes exactly the levels.
    prog, _ = xb.program(getkey())
    G = np.asarray(prog.conductances()[0])
    np.testing.assert_allclose(G, np.asarray(xb.conductances()[0]), rtol=1e-5)
    # With program noise the programmed crossbar keeps its errors (no re-snapping).
    noisy = Crossbar(
        u_pos=xb.u_pos,
        u_neg=xb.u_neg,
        config=CrossbarConfig(
            quantize_levels=True, program_noise=True, device=dev.replace(write_sigma=0.005)
        ),
    )
    pn, _ = noisy.program(getkey())
    assert not pn.config.quantize_levels and pn.config.program_noise
    dn = np.abs(np.asarray(pn.conductances()[0]) - G)
    assert 0 < dn.max() <= dev.verify_tol * (dev.G_max - dev.G_min) * 1.0001


def test_program_noise_perturbs_within_configured_std(getkey):
    n_in, n_out = 100, 100
    # Exact programming when program noise is off: one pulse, target hit.
    xb = _xb(getkey(), n_in, n_out, 0.2, 0.8)
    prog, st = xb.program(getkey())
    np.testing.assert_allclose(prog.u_pos, xb.u_pos, atol=1e-6)
    assert st.pulses.shape == (2, n_in, n_out) and int(st.pulses.min()) == 1
    # One-shot writes (max_iterations = 1): error std = write_sigma of the range.
    sigma = 0.02
    one = MultiLevelRRAM(write_sigma=sigma, max_iterations=1, verify_tol=1e-4)
    xb1 = _xb(getkey(), n_in, n_out, 0.2, 0.8, program_noise=True, device=one)
    p1, _ = xb1.program(getkey())
    err = np.asarray(jnp.stack([p1.u_pos - xb1.u_pos, p1.u_neg - xb1.u_neg]), np.float64)
    assert abs(err.mean()) < 5 * sigma / math.sqrt(err.size)
    assert abs(err.std() / sigma - 1) < 0.03
    # Program-and-verify (default 20 iterations, tolerance 1 %): within tolerance.
    pv = MultiLevelRRAM(write_sigma=sigma)
    xb2 = _xb(getkey(), n_in, n_out, 0.2, 0.8, program_noise=True, device=pv)
    p2, st2 = xb2.program(getkey())
    err2 = np.abs(np.asarray(p2.u_pos - xb2.u_pos))
    assert err2.max() <= pv.verify_tol * (1 + 1e-4) and err2.max() > 0
    assert float(st2.pulses.mean()) > 1.5  # noisy writes need retries
    # Reprogramming with the returned state accumulates the pulse counters.
    p3, st3 = p2.program(getkey(), state=st2)
    np.testing.assert_array_equal(st3.pulses, st2.pulses + st3.last_pulses)


def test_stuck_faults_pin_configured_fraction(getkey):
    dev = MultiLevelRRAM(p_stuck_lrs=0.1, p_stuck_hrs=0.05)
    xb = _xb(getkey(), 100, 100, 0.2, 0.8, stuck_faults=True, device=dev)
    prog, st = xb.program(getkey())
    G = np.stack([np.asarray(g) for g in prog.conductances()])
    lrs, hrs = np.asarray(st.stuck_lrs), np.asarray(st.stuck_hrs)
    n = G.size
    for frac, p in ((lrs.mean(), 0.1), (hrs.mean(), 0.05)):
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(G[lrs], dev.G_max, rtol=1e-5)
    np.testing.assert_allclose(G[hrs], dev.G_min, rtol=1e-5)
    # Off: the same device programs without faults.
    prog0, st0 = _xb(getkey(), 100, 100, 0.2, 0.8, device=dev).program(getkey())
    assert not bool(st0.stuck.any())


def test_drift_lowers_conductance_per_power_law(x64, getkey):
    dev = MultiLevelRRAM(nu=0.05, t0=1.0)
    base = _xb(getkey(), 6, 5, device=dev)
    v = jax.random.uniform(getkey(), (4, 6), minval=-0.2, maxval=0.2)
    for t in (1.0, 1e3, 3.15e7):
        xb = Crossbar(
            u_pos=base.u_pos, u_neg=base.u_neg, config=CrossbarConfig(device=dev, drift_time=t)
        )
        f = t**-0.05
        for G, G0 in zip(xb.conductances(), base.conductances()):
            np.testing.assert_allclose(G, np.asarray(G0) * f, rtol=1e-13)
        np.testing.assert_allclose(run(xb, v), np.asarray(run(base, v)) * f, rtol=1e-12)
    assert float(xb.conductances()[0].max()) < float(base.conductances()[0].max())


def test_dac_restricts_inputs_to_2_pow_bits_levels(getkey):
    xb = _xb(getkey(), 64, 3, dac_bits=3, v_read=0.2)
    v = jax.random.uniform(getkey(), (50, 64), minval=-0.3, maxval=0.3)
    vq = np.asarray(xb.dac(v))
    grid = 0.2 / 4 * np.arange(-4, 4)
    assert set(np.round(np.unique(vq) / 0.05).astype(int)) <= set(range(-4, 4))
    assert np.unique(vq).size == 8
    vc = np.clip(np.asarray(v), -0.2, 0.15)
    nearest = grid[np.argmin(np.abs(vc[..., None] - grid), -1)]
    np.testing.assert_allclose(vq, nearest, atol=1e-7)
    want = vq @ np.asarray(xb.effective_weight())
    np.testing.assert_allclose(run(xb, v), want, rtol=1e-5, atol=1e-12)
    # Unsigned DAC: 2^bits levels on [0, v_read], both ends included.
    xu = _xb(getkey(), 64, 3, dac_bits=2, dac_signed=False, v_read=0.3)
    vu = np.unique(np.asarray(xu.dac(jax.random.uniform(getkey(), (50, 64), maxval=0.4))))
    np.testing.assert_allclose(vu, [0.0, 0.1, 0.2, 0.3], atol=1e-7)


def test_adc_restricts_outputs_to_2_pow_bits_levels(getkey):
    xb = _xb(getkey(), 32, 8, adc_bits=4)
    fs = 32 * 0.2 * DG
    assert xb.adc_full_scale() == pytest.approx(fs)
    v = jax.random.uniform(getkey(), (500, 32), minval=-0.2, maxval=0.2)
    out = np.asarray(run(xb, v))
    k = out / (fs / 8)
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    assert k.min() >= -8 - 1e-4 and k.max() <= 7 + 1e-4
    # A calibrated range: saturates and uses all 16 levels.
    xc = _xb(getkey(), 32, 8, adc_bits=4, adc_range=2e-6)
    oc = np.asarray(run(xc, v))
    assert np.unique(oc).size == 16 and oc.max() <= 2e-6 * 7 / 8 * (1 + 1e-6)
    ideal = np.asarray(run(_xb(getkey(), 32, 8), v))
    assert np.unique(ideal).size > 1000


def test_jit_and_hashable_config(getkey):
    cfg = CrossbarConfig(read_noise=True, quantize_levels=True, dac_bits=6, adc_bits=8)
    same = CrossbarConfig(read_noise=True, quantize_levels=True, dac_bits=6, adc_bits=8)
    assert hash(cfg) == hash(same) and cfg == same
    xb = Crossbar.init(getkey(), 10, 4, cfg)
    v = jnp.full((3, 10), 0.1)
    f = eqx.filter_jit(lambda m, v, k: m(v, key=k))
    np.testing.assert_allclose(f(xb, v, jax.random.key(1)), xb(v, key=jax.random.key(1)), rtol=1e-5)


def test_bad_shapes_and_settings_raise(getkey):
    xb = Crossbar.init(getkey(), 5, 3)
    with pytest.raises(ValueError, match="v must have last dimension n_in = 5"):
        xb(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="Crossbar.u_neg"):
        Crossbar(u_pos=jnp.ones((5, 3)), u_neg=jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="Crossbar.u_pos"):
        Crossbar(u_pos=jnp.ones(5), u_neg=jnp.ones(5))
    with pytest.raises(ValueError, match="n_in"):
        Crossbar.init(getkey(), 0, 3)
    with pytest.raises(ValueError, match="scale"):
        Crossbar.init(getkey(), 2, 3, scale=2.0)
    with pytest.raises(ValueError, match="state"):
        xb.program(getkey(), state=MultiLevelRRAM().sample_devices(getkey(), (2, 3, 3)))
    with pytest.raises(ValueError, match="CrossbarConfig.dac_bits"):
        CrossbarConfig(dac_bits=0)
    with pytest.raises(ValueError, match="CrossbarConfig.adc_bits"):
        CrossbarConfig(adc_bits=2.5)
    with pytest.raises(ValueError, match="CrossbarConfig.v_read"):
        CrossbarConfig(v_read=-0.1)
    with pytest.raises(ValueError, match="CrossbarConfig.drift_time"):
        CrossbarConfig(drift_time=0.0)
    with pytest.raises(ValueError, match="CrossbarConfig.device"):
        CrossbarConfig(device="rram")


def test_init_normal_one_sided_pairs_and_synapse_interface(getkey):
    from memjax.crossbar import AbstractSynapse, init_weight
    from memjax.models.memprop import DenseSynapse

    k = getkey()
    xb = Crossbar.init(k, 50, 40, scale=0.3, distribution="normal", pairing="one-sided")
    w = np.asarray(init_weight(k, (50, 40), "normal", 0.3))
    np.testing.assert_array_equal(
        w, np.clip(0.3 * np.asarray(jax.random.normal(k, (50, 40))), -1, 1)
    )
    np.testing.assert_allclose(xb.u_pos - xb.u_neg, w, atol=1e-7)
    assert np.all((np.asarray(xb.u_pos) == 0) | (np.asarray(xb.u_neg) == 0))  # one cell at G_min
    sym = Crossbar.init(k, 50, 40)
    np.testing.assert_allclose(sym.u_pos + sym.u_neg, 1.0, atol=1e-6)  # default: symmetric
    with pytest.raises(ValueError, match="pairing"):
        Crossbar.init(k, 5, 4, pairing="both")
    with pytest.raises(ValueError, match="distribution"):
        Crossbar.init(k, 5, 4, distribution="laplace")
    with pytest.raises(ValueError, match="scale"):
        Crossbar.init(k, 5, 4, distribution="normal", scale=-1.0)
    dense = DenseSynapse(jnp.ones((5, 4)))
    for syn in (xb, dense):
        assert isinstance(syn, AbstractSynapse)
    assert (xb.n_in, xb.n_out, dense.n_in, dense.n_out) == (50, 40, 5, 4)
    assert xb.v_read == xb.config.v_read and dense.v_read == 0.2
    v = jax.random.uniform(getkey(), (3, 50))
    np.testing.assert_allclose(xb(v), v @ xb.effective_weight(), rtol=1e-5)
    np.testing.assert_allclose(xb(v, None), xb(v), rtol=0)  # key positional, as the base
