"""The winner-take-all layer: STDP pulses programmed into RRAM levels (write noise,
stuck cells, saturation), one winner per step, homeostasis, SFA, bad parameters."""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.devices.rram import MultiLevelRRAM
from memjax.learning.stdp import STDP, stdp_pulses
from memjax.models.wta import (
    WTALayer,
    apply_level_pulses,
    wta_imprint,
    wta_learn,
    wta_respond,
    wta_sample,
)
from memjax.neurons.alif import ALIF


def _mid_synapses(dev, shape, level, key=jax.random.key(0)):
    syn = dev.sample_devices(key, shape)
    G = dev.G_min + level * (dev.G_max - dev.G_min) / (dev.n_levels - 1)
    return dataclasses.replace(syn, G=jnp.full(shape, G, syn.G.dtype))


def _levels(dev, G):
    return (np.asarray(G) - dev.G_min) / (dev.G_max - dev.G_min) * (dev.n_levels - 1)


def stdp_update(dev, rule, key, syn, pre, post):
    k_u, k_z = jax.random.split(key)
    return apply_level_pulses(dev, k_z, syn, stdp_pulses(rule, k_u, pre, post, syn.G.dtype))


def test_update_sign():
    dev = MultiLevelRRAM(n_levels=8, write_sigma=0.0)
    rule = STDP(p_pot=1.0, p_dep=1.0)
    syn = _mid_synapses(dev, (4, 3), 3)
    pre = jnp.array([True, False, True, False])
    post = jnp.array([False, True, True])
    new = stdp_update(dev, rule, jax.random.key(1), syn, pre, post)
    expected = np.array([[3, 4, 4], [3, 2, 2], [3, 4, 4], [3, 2, 2]])
    np.testing.assert_allclose(_levels(dev, new.G), expected, atol=1e-4)
    np.testing.assert_array_equal(new.pulses, np.array([[0, 1, 1]] * 4))


def test_update_probabilities_and_bounds():
    dev = MultiLevelRRAM(n_levels=4, write_sigma=0.0)
    rule = STDP(p_pot=0.3, p_dep=0.1)
    syn = _mid_synapses(dev, (200, 100), 3)  # top level: SET pulses cannot go higher
    pre = jnp.arange(200) < 100
    new = stdp_update(dev, rule, jax.random.key(2), syn, pre, jnp.ones(100, bool))
    lv = _levels(dev, new.G)
    assert np.all(lv[:100] == pytest.approx(3))  # saturated at the top level
    pulses = np.asarray(new.pulses)
    assert abs(pulses[:100].mean() - 0.3) < 0.02  # counted even at the top
    assert abs((lv[100:] < 2.5).mean() - 0.1) < 0.01
    assert lv.min() >= 2 - 1e-4


@pytest.mark.parametrize("bounds", ["soft", "hard"])
def test_stationary_levels_soft_binomial_hard_geometric(bounds):
    # A synapse whose input spikes with probability q at each post spike is a birth-death
    # chain on the levels k = 0..K. Soft bounds: up a q (1 - k/K), down b (1 - q) k/K,
    # stationary Binomial(K, g*) with g* = a q / (a q + b (1 - q)). Hard bounds: up a q,
    # down b (1 - q), stationary geometric pi_k ~ r^k with r = a q / (b (1 - q)).
    K, a, b, q, n = 7, 0.3, 0.2, 0.5, 6000
    dev = MultiLevelRRAM(n_levels=K + 1, write_sigma=0.0)
    rule = STDP(p_pot=a, p_dep=b, bounds=bounds)
    syn0 = _mid_synapses(dev, (n, 1), 0)

    @jax.jit
    def run(syn, key):
        def step(syn, k):
            k_pre, k_u, k_z = jax.random.split(k, 3)
            pre = jax.random.bernoulli(k_pre, q, (n,))
            g = (syn.G - syn.G_min) / (syn.G_max - syn.G_min)
            pulses = stdp_pulses(rule, k_u, pre, jnp.ones(1, bool), syn.G.dtype, g)
            return apply_level_pulses(dev, k_z, syn, pulses), None

        return jax.lax.scan(step, syn, jax.random.split(key, 400))[0]

    lv = np.rint(_levels(dev, run(syn0, jax.random.key(4)).G)).astype(int).ravel()
    hist = np.bincount(lv, minlength=K + 1) / n
    r = a * q / (b * (1 - q))
    k = np.arange(K + 1)
    if bounds == "soft":
        g = r / (1 + r)
        comb = np.array([math.comb(K, i) for i in k])
        expected = comb * g**k * (1 - g) ** (K - k)
    else:
        expected = r**k / np.sum(r**k)
    assert 0.5 * np.abs(hist - expected).sum() < 0.03  # total variation


def test_write_noise_and_stuck_cells():
    dev = MultiLevelRRAM(n_levels=8, write_sigma=0.02, p_stuck_hrs=0.2)
    rule = STDP(p_pot=1.0, p_dep=1.0)
    syn0 = dev.sample_devices(jax.random.key(3), (100, 50))
    syn = dataclasses.replace(
        syn0, G=jnp.where(syn0.stuck, syn0.G, dev.G_min + 3 * (dev.G_max - dev.G_min) / 7)
    )
    new = stdp_update(dev, rule, jax.random.key(4), syn, jnp.ones(100, bool), jnp.ones(50, bool))
    st = np.asarray(syn.stuck)
    np.testing.assert_array_equal(np.asarray(new.G)[st], np.asarray(syn.G)[st])
    err = _levels(dev, new.G)[~st] - 4
    assert 0.1 < err.std() < 0.18  # sigma 0.02 of the range = 0.14 level
    assert np.all(new.pulses == 1)


def _layer(**kw):
    neuron = kw.pop("neuron", ALIF(leak=1.0, theta0=2.0, beta=0.0))
    rule = kw.pop("rule", STDP())
    syn = kw.pop("synapse", MultiLevelRRAM(n_levels=16, write_sigma=0.0))
    return WTALayer(
        n_in=kw.pop("n_in", 8),
        n_out=kw.pop("n_out", 4),
        neuron=neuron,
        rule=rule,
        synapse=syn,
        **kw,
    )


def test_sample_potentiates_active_depresses_silent():
    # p_in = 1: inputs of intensity 1 spike every step, 0 never; one neuron.
    dev = MultiLevelRRAM(n_levels=64, write_sigma=0.0)
    layer = _layer(
        n_out=1,
        n_steps=20,
        p_in=1.0,
        theta_plus=0.0,
        rule=STDP(p_pot=1.0, p_dep=1.0, window=1),
        synapse=dev,
    )
    st = layer.init_state(jax.random.key(0), 0.5, 0.5)
    x = jnp.array([1, 1, 1, 1, 0, 0, 0, 0], jnp.float32)
    new, out = eqx.filter_jit(wta_sample)(layer, st, x, jax.random.key(1), learn=True)
    n = int(out["counts"][0])
    assert n > 0
    lv0, lv = _levels(dev, st.syn.G)[:, 0], _levels(dev, new.syn.G)[:, 0]
    np.testing.assert_allclose(lv[:4], np.minimum(lv0[:4] + n, 63), atol=1e-3)
    np.testing.assert_allclose(lv[4:], np.maximum(lv0[4:] - n, 0), atol=1e-3)


def test_one_winner_per_step_and_lateral_inhibition():
    layer = _layer(n_out=6, n_steps=40, p_in=1.0, neuron=ALIF(leak=1.0, theta0=0.5, beta=0.0))
    st = layer.init_state(jax.random.key(0), 1.0, 1.0)  # identical synapses: all would fire
    out = wta_respond(layer, st, jnp.ones((3, 8)), jax.random.key(1), raster=True)
    r = np.asarray(out["raster"])
    assert r.sum(-1).max() == 1 and r.sum() == 3 * 40


def test_homeostasis_and_levels_after_learning():
    rng = np.random.default_rng(0)
    protos = (rng.uniform(size=(3, 32)) < 0.3).astype(np.float32)
    lab = rng.integers(0, 3, 300)
    x = jnp.asarray(protos[lab] * rng.uniform(0.7, 1.0, (300, 32)), jnp.float32)
    dev = MultiLevelRRAM(n_levels=2, write_sigma=0.0)  # binary synapses
    layer = _layer(
        n_in=32,
        n_out=6,
        theta_plus=0.05,
        homeo_decay=0.0,
        p_in=0.5,
        neuron=ALIF(leak=1.0, theta0=0.6, beta=0.0),
        rule=STDP(p_pot=0.1, p_dep=0.05),
        synapse=dev,
    )
    st0 = layer.init_state(jax.random.key(0))
    st, out = wta_learn(layer, st0, x, jax.random.key(1))
    # homeostasis: offset = theta_plus x winning spikes (no decay), so frequent winners
    # have the highest thresholds
    np.testing.assert_allclose(st.h, 0.05 * np.asarray(st.wins), rtol=1e-5)
    assert int(st.wins.sum()) == int(out["spikes"].sum())
    # binary synapses stay binary; pulses were counted
    G = np.asarray(st.syn.G)
    assert np.all(np.isclose(G, dev.G_min) | np.isclose(G, dev.G_max))
    assert int(st.syn.pulses.sum()) > 0
    # with homeostasis every neuron wins some samples; without, fewer neurons do
    used = (np.bincount(np.asarray(out["winner"])[100:], minlength=6) > 0).sum()
    st_n, out_n = wta_learn(dataclasses.replace(layer, theta_plus=0.0), st0, x, jax.random.key(1))
    used_n = (np.bincount(np.asarray(out_n["winner"])[100:], minlength=6) > 0).sum()
    assert used == 6 and used_n <= used


def test_imprint_programs_each_column_to_its_sample():
    dev = MultiLevelRRAM(n_levels=16, write_sigma=0.0, p_stuck_lrs=0.05)
    layer = _layer(n_in=40, n_out=6, synapse=dev)
    st = layer.init_state(jax.random.key(7))
    x = jax.random.uniform(jax.random.key(8), (6, 40))
    new = wta_imprint(layer, st, x, jax.random.key(9))
    before, after = np.rint(_levels(dev, st.syn.G)), _levels(dev, new.syn.G)
    target = np.rint(np.asarray(x).T * 15)
    stuck = np.asarray(st.syn.stuck)
    assert stuck.any() and (~stuck).any()
    np.testing.assert_allclose(after[~stuck], target[~stuck], atol=1e-4)
    np.testing.assert_array_equal(new.syn.G[stuck], st.syn.G[stuck])
    moved = np.abs(target - before).astype(int)
    np.testing.assert_array_equal(new.syn.pulses, np.asarray(st.syn.pulses) + moved)
    np.testing.assert_array_equal(new.h, st.h)
    with pytest.raises(ValueError, match="wta_imprint: x must have shape"):
        wta_imprint(layer, st, x.T, jax.random.key(9))
    for bad in (x + 0.5, x.at[0, 0].set(jnp.nan)):  # intensities outside [0, 1], NaN
        with pytest.raises(ValueError, match=r"wta_imprint.x must lie in \[0, 1\]"):
            wta_imprint(layer, st, bad, jax.random.key(9))


def test_column_normalisation_l1_l2_none():
    # p_in = 1 and 0/1 inputs: deterministic input spikes, so the summed current is
    # n_steps times the read of one step.
    layer = _layer(n_in=6, n_out=3, n_steps=5, p_in=1.0)
    st = layer.init_state(jax.random.key(5))
    x = jnp.array([[1.0, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 1]])
    G = np.asarray(st.syn.G, np.float64)
    reads = {
        True: G.sum(0),
        "l1": G.sum(0),
        "l2": np.sqrt(6 * (G**2).sum(0)),
        False: np.full(3, layer.synapse.G_max),
    }
    for norm, denom in reads.items():
        lay = dataclasses.replace(layer, normalize=norm)
        drive = np.asarray(wta_respond(lay, st, x, jax.random.key(6))["drive"])
        np.testing.assert_allclose(drive, 5 * (np.asarray(x) @ G) / denom, rtol=1e-5)
    uniform = dataclasses.replace(
        st, syn=dataclasses.replace(st.syn, G=jnp.full_like(st.syn.G, 3e-6))
    )
    d1, d2 = (
        wta_respond(dataclasses.replace(layer, normalize=n), uniform, x, jax.random.key(6))["drive"]
        for n in ("l1", "l2")
    )
    np.testing.assert_allclose(d1, d2, rtol=1e-6)


def test_bad_parameters():
    for bad in ("l3", 1, None):
        with pytest.raises(ValueError, match="WTALayer.normalize"):
            WTALayer(n_in=4, n_out=2, normalize=bad)
    with pytest.raises(ValueError, match="WTALayer.synapse"):
        WTALayer(n_in=4, n_out=2, synapse=STDP())
    with pytest.raises(ValueError, match="WTALayer.n_out"):
        WTALayer(n_in=4, n_out=0)
    with pytest.raises(ValueError, match="WTALayer.p_in"):
        WTALayer(n_in=4, n_out=2, p_in=0.0)
    with pytest.raises(ValueError, match="WTALayer.theta_plus"):
        WTALayer(n_in=4, n_out=2, theta_plus=-1.0)


def test_layer_sfa_cuts_spikes_without_changing_the_winner():
    layer = _layer(n_out=4, n_steps=40, p_in=1.0, neuron=ALIF(leak=1.0, theta0=0.5, beta=10.0))
    st = layer.init_state(jax.random.key(0))
    x = jnp.ones((2, 8))
    a = wta_respond(layer, st, x, jax.random.key(1))
    b = wta_respond(layer.without_sfa(), st, x, jax.random.key(1))
    # deterministic input (p_in = 1, x = 1): the same neuron wins at every spike
    np.testing.assert_array_equal(np.argmax(a["counts"], -1), np.argmax(b["counts"], -1))
    assert np.all(b["spikes"] == 40) and np.all(a["spikes"] < 20)
    with pytest.raises(ValueError, match="WTALayer.sfa"):
        dataclasses.replace(layer, sfa="global")
