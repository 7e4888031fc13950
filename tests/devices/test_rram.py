"""Multi-level RRAM: levels, program-and-verify statistics, read noise, drift, faults."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.devices.rram import MultiLevelRRAM, RRAMState, crosssim_milo_sigma


def _binom_ok(frac, p, n, z=5.0):
    return abs(frac - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-12


def test_defaults_are_the_cited_values():
    d = MultiLevelRRAM()
    assert d.G_min == 0.476e-6 and d.G_max == 10e-6 and d.n_levels == 32
    assert d.write_sigma == 0.005 and d.read_sigma == 0.01


def test_levels_evenly_spaced_and_quantize_to_nearest(getkey):
    d = MultiLevelRRAM(n_levels=7)
    lv = np.asarray(d.levels(), np.float64)
    assert lv.shape == (7,)
    np.testing.assert_allclose(lv[[0, -1]], [d.G_min, d.G_max], rtol=1e-6)
    np.testing.assert_allclose(np.diff(lv), (d.G_max - d.G_min) / 6, rtol=1e-5)
    G = jax.random.uniform(getkey(), (5000,), minval=-1e-6, maxval=12e-6)
    q = np.asarray(d.quantize(G))
    Gc = np.clip(np.asarray(G), d.G_min, d.G_max)
    nearest = lv[np.argmin(np.abs(Gc[:, None] - lv[None, :]), axis=1)]
    np.testing.assert_allclose(q, nearest, rtol=1e-5)
    # Per-device levels follow each cell's own bounds.
    s = MultiLevelRRAM(n_levels=7, d2d_sigma=0.1).sample_devices(getkey(), (100,))
    qs = np.asarray(d.quantize(s.G_max * 0.999, state=s))
    np.testing.assert_allclose(qs, np.asarray(s.G_max), rtol=1e-5)


def test_program_verify_convergence_matches_noise_settings(getkey):
    sigma, tol, iters, n = 0.02, 0.01, 3, 20_000
    d = MultiLevelRRAM(write_sigma=sigma, verify_tol=tol, max_iterations=iters)
    s = d.sample_devices(getkey(), (n,))
    rng = d.G_max - d.G_min
    target = d.G_min + rng * jax.random.uniform(getkey(), (n,), minval=0.3, maxval=0.7)
    out = d.program(getkey(), s, target)
    p = math.erf(tol / (math.sqrt(2) * sigma))  # one pulse lands within tolerance
    p_conv = 1 - (1 - p) ** iters
    within = np.abs(np.asarray(out.G) - np.asarray(target)) <= tol * rng * (1 + 1e-5)
    assert _binom_ok(within.mean(), p_conv, n), (within.mean(), p_conv)
    np.testing.assert_array_equal(np.asarray(out.converged), within)
    mean_pulses = sum((1 - p) ** k for k in range(iters))
    assert abs(float(out.pulses.mean()) - mean_pulses) < 0.03, (out.pulses.mean(), mean_pulses)
    # Non-converged cells used every iteration; pulses never exceed max_iterations.
    assert np.all(np.asarray(out.pulses)[~within] == iters)
    assert int(out.pulses.max()) <= iters
    # Default settings (sigma 0.5 %, tol 1 %, 20 iterations): every cell verifies.
    d0 = MultiLevelRRAM()
    out0 = d0.program(getkey(), d0.sample_devices(getkey(), (n,)), target)
    assert bool(out0.converged.all())
    assert float(jnp.max(jnp.abs(out0.G - target))) <= d0.verify_tol * rng * (1 + 1e-5)


def test_pulse_counts_only_where_programmed_and_accumulate(getkey):
    d = MultiLevelRRAM()
    s = d.sample_devices(getkey(), (64,))
    target = jnp.full((64,), 5e-6)
    mask = jnp.arange(64) % 2 == 0
    s1 = d.program(getkey(), s, target, mask=mask)
    p1 = np.asarray(s1.pulses)
    assert np.all(p1[::2] > 0) and np.all(p1[1::2] == 0)
    np.testing.assert_array_equal(np.asarray(s1.G)[1::2], np.asarray(s.G)[1::2])
    # Cells already within tolerance receive no pulse; the counter accumulates.
    s2 = d.program(getkey(), s1, target)
    p2 = np.asarray(s2.last_pulses)
    assert np.all(p2[::2] == 0) and np.all(p2[1::2] > 0)
    np.testing.assert_array_equal(np.asarray(s2.pulses), p1 + p2)
    s3 = d.program(getkey(), s2, 2e-6)
    np.testing.assert_array_equal(np.asarray(s3.pulses), np.asarray(s2.pulses + s3.last_pulses))
    assert np.all(np.asarray(s3.last_pulses) > 0)


def test_more_pulses_with_higher_write_noise(getkey):
    target = jnp.full((5000,), 4e-6)
    means = []
    for sigma in (0.002, 0.01, 0.03):
        d = MultiLevelRRAM(write_sigma=sigma)
        out = d.program(getkey(), d.sample_devices(getkey(), target.shape), target)
        means.append(float(out.pulses.mean()))
    assert means[0] < means[1] < means[2], means
    assert means[0] == 1.0  # 0.2 % noise always lands within 1 %


def test_read_noise_std_fresh_and_exact_without_noise(getkey):
    d = MultiLevelRRAM(read_sigma=0.03)
    s = d.sample_devices(getkey(), (100_000,), G0=6e-6)
    r1 = np.asarray(d.read(getkey(), s), np.float64)
    r2 = np.asarray(d.read(getkey(), s), np.float64)
    rel = r1 / 6e-6 - 1
    assert abs(rel.mean()) < 5 * 0.03 / math.sqrt(rel.size)
    assert abs(rel.std() / 0.03 - 1) < 0.02
    assert np.all(r1 != r2)
    # Same key, same read; zero noise or no key: the stored conductance exactly.
    k = getkey()
    np.testing.assert_array_equal(d.read(k, s), d.read(k, s))
    np.testing.assert_array_equal(d.read(None, s), s.G)
    d0 = MultiLevelRRAM(read_sigma=0.0)
    np.testing.assert_array_equal(d0.read(getkey(), s), s.G)
    # Reads are independent over a vmapped batch of keys too.
    keys = jax.random.split(getkey(), 4000)
    small = d.sample_devices(getkey(), (3,), G0=6e-6)
    many = jax.vmap(lambda k: d.read(k, small))(keys)
    np.testing.assert_allclose(np.std(np.asarray(many) / 6e-6, axis=0), 0.03, rtol=0.06)


def test_drift_follows_power_law(x64, getkey):
    d = MultiLevelRRAM(nu=0.06, t0=20.0, p_stuck_lrs=0.2)
    s = d.sample_devices(getkey(), (1000,), G0=3e-6)
    free = ~np.asarray(s.stuck)
    for t in (20.0, 100.0, 3600.0, 3.15e7):
        G = np.asarray(d.read(None, s, t=t))
        np.testing.assert_allclose(G[free], 3e-6 * (t / 20.0) ** -0.06, rtol=1e-13)
        np.testing.assert_array_equal(G[~free], np.asarray(s.G)[~free])  # stuck: no drift
    # Before t0 no drift; drift is monotone decreasing.
    np.testing.assert_array_equal(d.read(None, s, t=1.0), s.G)
    assert float(d.drift(1.0, 1e3)) > float(d.drift(1.0, 1e4))


def test_stuck_fractions_and_values(getkey):
    n = 100_000
    d = MultiLevelRRAM(p_stuck_lrs=0.1, p_stuck_hrs=0.05, max_iterations=5)
    s = d.sample_devices(getkey(), (n,), G0=5e-6)
    lrs, hrs = np.asarray(s.stuck_lrs), np.asarray(s.stuck_hrs)
    assert not np.any(lrs & hrs)
    assert _binom_ok(lrs.mean(), 0.1, n) and _binom_ok(hrs.mean(), 0.05, n)
    G = np.asarray(s.G)
    np.testing.assert_array_equal(G[lrs], np.asarray(s.G_max)[lrs])
    np.testing.assert_array_equal(G[hrs], np.asarray(s.G_min)[hrs])
    # Programming ignores the faults: stuck cells keep their value, use every pulse,
    # never verify at a mid-range target; free cells converge.
    out = d.program(getkey(), s, 5e-6 + 1e-6)
    np.testing.assert_array_equal(np.asarray(out.G)[lrs | hrs], G[lrs | hrs])
    assert np.all(np.asarray(out.last_pulses)[lrs | hrs] == 5)
    assert not np.any(np.asarray(out.converged)[lrs | hrs])
    assert np.all(np.asarray(out.converged)[~(lrs | hrs)])
    # A stuck-at-HRS cell asked for G_min already verifies: no pulse.
    out2 = d.program(getkey(), s, d.G_min)
    assert np.all(np.asarray(out2.last_pulses)[hrs] == 0)


def test_d2d_spread_changes_bounds_per_device(getkey):
    d = MultiLevelRRAM(d2d_sigma=0.1)
    s = d.sample_devices(getkey(), (20_000,))
    lo, hi = np.asarray(s.G_min, np.float64), np.asarray(s.G_max, np.float64)
    assert np.unique(lo).size > 10_000 and np.unique(hi).size > 10_000
    assert abs(np.std(np.log(hi / d.G_max)) - 0.1) < 0.005
    assert abs(np.std(np.log(lo / d.G_min)) - 0.1) < 0.005
    assert np.all(lo < hi)
    # Writes stay inside each cell's own bounds.
    out = d.program(getkey(), s, 1e-3)
    np.testing.assert_allclose(np.asarray(out.G), hi, rtol=1e-6)
    s0 = MultiLevelRRAM().sample_devices(getkey(), (10,))
    np.testing.assert_array_equal(s0.G_max, jnp.full((10,), 10e-6, s0.G_max.dtype))


def test_crosssim_milo_option(getkey):
    d = MultiLevelRRAM.crosssim_milo()
    assert (d.G_min, d.G_max, d.max_iterations) == (50e-6, 225e-6, 1)
    np.testing.assert_allclose(crosssim_milo_sigma(100e-6), (4.782321 - 0.9107) * 1e-6, rtol=1e-6)
    assert float(crosssim_milo_sigma(600e-6)) == 0.0
    n = 50_000
    out = d.program(getkey(), d.sample_devices(getkey(), (n,)), 100e-6)
    err = np.asarray(out.G, np.float64) - 100e-6
    assert np.all(np.asarray(out.pulses) == 1)
    assert abs(err.std() / float(crosssim_milo_sigma(100e-6)) - 1) < 0.02


def test_program_is_vmappable(getkey):
    d = MultiLevelRRAM()
    s = d.sample_devices(getkey(), (8, 16))
    keys = jax.random.split(getkey(), 8)
    out = jax.vmap(d.program)(keys, s, jnp.full((8, 16), 3e-6))
    assert isinstance(out, RRAMState) and out.G.shape == (8, 16)
    assert bool(out.converged.all())


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"G_min": -1e-6}, "MultiLevelRRAM.G_min"),
        ({"G_min": 2e-5}, "MultiLevelRRAM.G_min"),
        ({"G_max": float("inf")}, "MultiLevelRRAM.G_max"),
        ({"n_levels": 1}, "MultiLevelRRAM.n_levels"),
        ({"n_levels": 4.0}, "MultiLevelRRAM.n_levels"),
        ({"write_sigma": -0.1}, "MultiLevelRRAM.write_sigma"),
        ({"verify_tol": 0.0}, "MultiLevelRRAM.verify_tol"),
        ({"max_iterations": 0}, "MultiLevelRRAM.max_iterations"),
        ({"read_sigma": -1.0}, "MultiLevelRRAM.read_sigma"),
        ({"nu": -0.1}, "MultiLevelRRAM.nu"),
        ({"t0": 0.0}, "MultiLevelRRAM.t0"),
        ({"d2d_sigma": -0.1}, "MultiLevelRRAM.d2d_sigma"),
        ({"p_stuck_lrs": 1.5}, "MultiLevelRRAM.p_stuck_lrs"),
        ({"p_stuck_lrs": 0.6, "p_stuck_hrs": 0.6}, "MultiLevelRRAM.p_stuck_hrs"),
        ({"write_noise_model": "bogus"}, "MultiLevelRRAM.write_noise_model"),
    ],
)
def test_bad_parameters_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MultiLevelRRAM(**kwargs)
