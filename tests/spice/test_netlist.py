"""memjax.spice: netlists against memjax, ngspice errors, a small MEMprop round trip."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.devices import HPMemristor, MMSSMemristor, YakopcicMemristor, simulate
from memjax.integrate import odeint_reference
from memjax.models.memprop import MEMprop
from memjax.neurons import MIF
from memjax.populations import sample_population
from memjax.spice import (
    NgspiceNotFoundError,
    crossbar_netlist,
    device_netlist,
    memprop_netlist,
    mif_netlist,
    run_ngspice,
    simulate_memprop,
    source,
)
from memjax.waveforms import Constant, PulseTrain, Sine

needs_ngspice = pytest.mark.skipif(
    shutil.which("ngspice") is None, reason="ngspice not on PATH (apt-get install ngspice)"
)


def test_sources_and_bad_drive():
    assert source("V1", "a", Sine(0.5, 1e3)).startswith("V1 a 0 SIN(0.0 0.5 1000.0)")
    assert "PULSE(" in source("V1", "a", PulseTrain(1.0, 1e-3, 2e-3))
    assert source("V1", "a", Constant(0.2)) == "V1 a 0 DC 0.2"
    assert "PWL(0.0 0.0 1.0 2.0)" in source("V1", "a", (np.array([0.0, 1.0]), np.array([0, 2.0])))
    with pytest.raises(ValueError, match="strictly"):
        source("V1", "a", (np.array([1.0, 0.0]), np.array([0, 2.0])))
    with pytest.raises(TypeError, match="drive must be"):
        source("V1", "a", lambda t: t)


def test_unsupported_device_and_probe():
    with pytest.raises(TypeError, match="no ngspice subcircuit for YakopcicMemristor"):
        device_netlist(YakopcicMemristor(), Sine(0.5, 1e3), 1e-3)
    with pytest.raises(ValueError, match="probe indices"):
        device_netlist(MMSSMemristor(), Sine(0.5, 1e3), 1e-3, probe=(3,))


def test_missing_ngspice_is_a_clear_error(monkeypatch):
    import memjax.spice.run as run

    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    net = device_netlist(MMSSMemristor(), Sine(0.5, 1e3), 1e-3)
    with pytest.raises(NgspiceNotFoundError, match="apt-get install ngspice"):
        run_ngspice(net)


@needs_ngspice
def test_device_population_matches_memjax(tmp_path, x64):
    pop = sample_population(HPMemristor(), jax.random.key(0), 3, {"R_on": 0.1, "mu_v": 0.1})
    T = 2.0
    net = device_netlist(
        pop,
        Sine(1.0, 0.5),
        T,
        t_step=T / 400,
        max_step=T / 4000,
        probe=(0, 2),
        options=".options reltol=1e-7 abstol=1e-15 vntol=1e-10 method=trap",
    )
    res = run_ngspice(net, workdir=tmp_path)
    tr = simulate(pop, Sine(1.0, 0.5), dt=T / 400, n_steps=401)
    t = np.asarray(tr.t)[1:]
    for k in (0, 2):
        i = np.asarray(tr.i[k])[1:]
        assert np.max(np.abs(res.sample(f"i(vs{k})", t) - i)) < 1e-4 * np.max(np.abs(i))
    # i(vin) is minus the sum of the three device currents.
    total = np.asarray(tr.i).sum(0)[1:]
    assert np.max(np.abs(-res.sample("i(vin)", t) - total)) < 1e-4 * np.max(np.abs(total))


@needs_ngspice
def test_mif_layer_matches_reference(tmp_path, x64):
    # Two neurons driven into switching; ngspice within 1 % of the peak-to-peak of the
    # adaptive diffrax solution of MIF.vector_field.
    pop = sample_population(MIF(), jax.random.key(1), 2, {"C": 0.1})
    i_in = np.array([10e-6, 20e-6])
    t_stop = 4e-3
    net = mif_netlist(
        pop,
        i_in,
        t_stop,
        t_step=1e-5,
        probe=(0, 1),
        max_step=2e-6,
        options=".options reltol=1e-5 abstol=1e-14 vntol=1e-8 method=gear",
    )
    res = run_ngspice(net, workdir=tmp_path)
    ts = jnp.linspace(0.0, t_stop, 401)  # the reference starts at ts[0]
    s0 = pop.init_state((2,), jnp.float64)
    ref = odeint_reference(
        pop.vector_field(lambda t: jnp.asarray(i_in)),
        s0,
        ts,
        stiff=True,
        rtol=1e-9,
        atol=1e-13,
        dtmax=1e-5,
    )
    for k in range(2):
        v = np.asarray(ref.v[1:, k])  # ngspice writes its first point after t = 0
        assert np.ptp(v) > 0.02  # a real excursion, not a flat line
        assert np.max(np.abs(res.sample(f"v(m{k})", np.asarray(ts[1:])) - v)) < 1e-2 * np.ptp(v)


def _small_model():
    m = MEMprop.init(jax.random.key(3), 12, 5, 3, w_std=0.5)
    return jax.tree.map(lambda a: a.astype(jnp.float64) if isinstance(a, jax.Array) else a, m)


def test_memprop_netlist_checks():
    m = _small_model()
    with pytest.raises(ValueError, match="shape \\(12,\\)"):
        memprop_netlist(m, np.zeros(7))
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        memprop_netlist(m, np.full(12, 2.0))
    with pytest.raises(ValueError, match="encoding='direct'"):
        memprop_netlist(dataclasses.replace(m, encoding="rate"), np.zeros(12))
    net = memprop_netlist(m, np.r_[np.zeros(6), np.ones(6)])
    assert len(net.probes) == 5 + 3
    assert "Vr5 " not in net.circuit and "Vr6 " in net.circuit  # zero pixels: no row


@needs_ngspice
def test_memprop_round_trip(x64):
    """A small trained-shape network: the circuit (held and full crossbar 1) against the
    network integrated at a fine step; the same predictions."""
    m = _small_model()
    x = np.asarray(jax.random.uniform(jax.random.key(4), (2, 12)))
    op = crossbar_netlist(m, x[0])
    i_col = np.array([run_ngspice(op)[p][0] for p in op.probes])
    assert np.allclose(i_col, np.asarray(m.syn1(jnp.asarray(x[0]) * m.v_read)), rtol=1e-9)
    opts = ".options reltol=1e-5 abstol=1e-14 vntol=1e-8 method=gear"
    held = simulate_memprop(m, x, workers=2, options=opts, max_step=1e-5)
    full = simulate_memprop(m, x[:1], hold_input=False, options=opts, max_step=1e-5)
    assert np.max(np.abs(held["v_hidden"][:1] - full["v_hidden"])) < 1e-5
    fine = dataclasses.replace(m, dt=m.dt / 200, n_steps=m.n_steps * 200)
    logits, (v1, v2) = fine(jnp.asarray(x), traces=True)
    v1 = np.moveaxis(np.asarray(v1)[199::200], 0, 1)
    v2 = np.moveaxis(np.asarray(v2)[199::200], 0, 1)
    assert np.ptp(v1) > 0.02
    assert np.max(np.abs(held["v_hidden"] - v1)) < 1e-2 * np.ptp(v1)
    assert np.max(np.abs(held["v_out"] - v2)) < 1e-2 * np.ptp(v2)
    assert np.array_equal(np.argmax(held["logits"], -1), np.argmax(np.asarray(logits), -1))
