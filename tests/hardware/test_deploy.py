"""deploy / reprogram / finetune / substitute_mif on small NIR networks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

from memjax import hardware as hw
from memjax.nir import from_nir, to_nir


def _net(seed=0, n_in=20, n_h=30, n_out=5):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    full = lambda n, v: np.full(n, v, np.float32)  # noqa: E731
    lif = lambda n: nir.LIF(
        tau=full(n, 1e-3), r=full(n, 10.0), v_leak=full(n, 0.0), v_threshold=full(n, 1.0)
    )  # noqa: E731
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n_in])),
            "fc1": nir.Affine(weight=0.5 * f(n_h, n_in), bias=0.1 * f(n_h)),
            "lif1": lif(n_h),
            "fc2": nir.Linear(weight=0.5 * f(n_out, n_h)),
            "lif2": lif(n_out),
            "output": nir.Output(np.array([n_out])),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "lif1"),
            ("lif1", "fc2"),
            ("fc2", "lif2"),
            ("lif2", "output"),
        ],
    )
    return from_nir(g)


def _ideal():
    cfg = hw.rram_16level(
        quantize_levels=False, program_noise=False, stuck_faults=False, read_noise=False
    )
    return cfg.replace(device=cfg.device.replace(verify_tol=1e-7))


X = jnp.asarray(np.random.default_rng(9).uniform(size=(16, 20)), jnp.float32)


def test_ideal_deployment_reproduces_the_network_and_exports_back():
    m = _net()
    d = hw.deploy(m, _ideal(), jax.random.key(0))
    assert hw.hardware_layers(d) == ["fc1", "fc2"]
    W, b = d.nodes["fc1"].effective_affine()
    np.testing.assert_allclose(np.asarray(W), np.asarray(m.nodes["fc1"].weight), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(d(X, 20)), np.asarray(m(X, 20)))
    back = from_nir(to_nir(d))
    np.testing.assert_array_equal(np.asarray(back(X, 20)), np.asarray(d(X, 20)))


def test_levels_noise_and_stuck_cells():
    m = _net()
    cfg = hw.rram_16level(read_noise=False)
    d = hw.deploy(m, cfg, jax.random.key(1))
    node = d.nodes["fc1"]
    frac = float(node.stuck.mean())
    assert 0.002 < frac < 0.03
    G = node.conductances()
    dev = cfg.device
    np.testing.assert_allclose(
        np.asarray(G[node.stuck]),
        np.where(np.asarray(node.stuck_u)[np.asarray(node.stuck)] > 0.5, dev.G_max, dev.G_min),
        rtol=1e-5,
    )
    err = np.asarray(node.u - node.target)[
        ~np.asarray(node.stuck) & (np.asarray(node.target) > 0.05)
    ]
    assert 0.02 < err.std() < 0.08  # 5 % one-shot write noise plus level rounding
    # Re-programming writes again (fresh noise) but keeps the faulty cells.
    r = hw.reprogram(d, jax.random.key(2)).nodes["fc1"]
    np.testing.assert_array_equal(np.asarray(r.stuck), np.asarray(node.stuck))
    assert not np.allclose(np.asarray(r.u), np.asarray(node.u))
    # ... and draws no new ones: without write noise every healthy cell gets its target
    # (level-rounded), and the stuck cells keep their stuck value.
    quiet = hw.with_config(d, program_noise=False)
    q = hw.reprogram(quiet, jax.random.key(3)).nodes["fc1"]
    ok = ~np.asarray(q.stuck)
    step = 1.0 / (dev.n_levels - 1)
    assert np.max(np.abs(np.asarray(q.u - q.target)[ok])) <= step / 2 + 1e-3
    np.testing.assert_array_equal(np.asarray(q.u)[~ok], np.asarray(q.stuck_u)[~ok])


def test_drift_and_read_noise_change_the_read():
    m = _net()
    d = hw.deploy(m, _ideal(), jax.random.key(0))
    W0, _ = d.nodes["fc1"].effective_affine()
    Wt, _ = hw.with_config(d, drift_time=3600.0).nodes["fc1"].effective_affine()
    np.testing.assert_allclose(np.asarray(Wt), np.asarray(W0) * 3600.0**-0.01, rtol=1e-4, atol=1e-6)
    dn = hw.with_config(d, read_noise=True)
    a = dn(X, 20, key=jax.random.key(3))
    b = dn(X, 20, key=jax.random.key(4))
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_ir_drop_in_the_layer_and_pulse_writes():
    m = _net()
    d = hw.deploy(m, _ideal(), jax.random.key(0))
    W0, _ = d.nodes["fc1"].effective_affine()
    W1, _ = hw.with_config(d, r_wire=50.0, tile=(8, 8)).nodes["fc1"].effective_affine()
    W2, _ = (
        hw.with_config(d, r_wire=50.0, tile=(8, 8), ir_mode="fast").nodes["fc1"].effective_affine()
    )
    rel = lambda a: float(jnp.abs(a - W0).max() / jnp.abs(W0).max())  # noqa: E731
    assert 1e-3 < rel(W1) < 0.5 and abs(rel(W2) - rel(W1)) < 0.5 * rel(W1)
    cfg = hw.neurosim_rram(read_noise=False, stuck_faults=False)
    naive = hw.deploy(m, cfg, jax.random.key(0))
    aware = hw.deploy(m, cfg.replace(pulse_aware=True), jax.random.key(0))
    Wn, _ = naive.nodes["fc1"].effective_affine()
    Wa, _ = aware.nodes["fc1"].effective_affine()
    assert rel(Wa) < rel(Wn)


def test_conv_deployment_matches_conv():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2, 7, 7])),
            "conv": nir.Conv2d(
                input_shape=(7, 7),
                weight=w,
                bias=np.zeros(4, np.float32),
                stride=2,
                padding=1,
                dilation=1,
                groups=1,
            ),
            "output": nir.Output(np.array([4, 4, 4])),
        },
        edges=[("input", "conv"), ("conv", "output")],
    )
    m = from_nir(g)
    x = jnp.asarray(rng.uniform(size=(3, 2, 7, 7)), jnp.float32)
    d = hw.deploy(m, _ideal(), jax.random.key(0))
    np.testing.assert_allclose(np.asarray(d(x, 1)), np.asarray(m(x, 1)), atol=1e-4)


def test_finetune_lowers_the_loss_and_keeps_bounds():
    m = _net()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(256, 20)).astype(np.float32)
    y = np.asarray(jnp.argmax(m(jnp.asarray(x), 10).sum(0), -1)).astype(np.int32)
    d = hw.deploy(m, hw.rram_16level(), jax.random.key(0))
    ft, hist = hw.finetune(d, (x, y), n_steps=10, epochs=3, batch_size=32, lr=3e-3)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    u = np.asarray(ft.nodes["fc1"].u)
    assert u.min() >= 0 and u.max() <= 1
    np.testing.assert_array_equal(np.asarray(ft.nodes["lif1"].tau), np.asarray(m.nodes["lif1"].tau))


def test_finetune_gradient_reaches_healthy_cells_not_stuck_ones():
    """The training-mode forward pass (levels, injected write noise, stuck cells) passes
    gradients to every healthy cell's conductance and none to a stuck one."""
    d = hw.deploy(_net(), hw.rram_16level(stuck_faults=True), jax.random.key(4))
    tr = hw.set_mode(d, True, from_target=True)

    def loss(u):
        m = eqx.tree_at(lambda m: m.nodes["fc1"].u, tr, u)
        return jnp.sum(m.nodes["fc1"].read_matrix(jax.random.key(5)) ** 2)

    grad = np.asarray(jax.grad(loss)(tr.nodes["fc1"].u))
    stuck = np.asarray(d.nodes["fc1"].stuck)
    assert stuck.any()
    assert np.all(grad[stuck] == 0)
    assert np.mean(grad[~stuck] != 0) > 0.99
    # noise_scale scales the injected write noise (0: none, the levels only).
    quiet = hw.set_mode(d, True, from_target=True, noise_scale=0.0).nodes["fc1"]
    a, b = quiet.conductances(jax.random.key(6)), quiet.conductances(jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loud = tr.nodes["fc1"]
    assert not np.array_equal(np.asarray(loud.conductances(jax.random.key(6))), np.asarray(a))
    with pytest.raises(ValueError, match="noise_scale"):
        hw.set_mode(d, True, noise_scale=-1.0)


def test_substitute_mif_fits_the_lif_response():
    m = _net()
    sm, info = hw.substitute_mif(m, n_steps=20)
    assert set(info) == {"lif1", "lif2"}
    assert info["lif1"]["rms_count_error"] < 6  # counts in 0..20
    out = sm(X, 20)
    assert out.shape == (20, 16, 5) and 0 < float(out.mean()) < 1
    with pytest.raises(ValueError, match="no LIF node"):
        hw.substitute_mif(sm, n_steps=20)


def test_config_errors():
    with pytest.raises(ValueError, match="r_wire"):
        hw.HardwareConfig(r_wire=-1.0)
    with pytest.raises(ValueError, match="ir_mode"):
        hw.HardwareConfig(ir_mode="approx")
    with pytest.raises(TypeError, match="NIRNetwork"):
        hw.deploy("net", hw.HardwareConfig(), jax.random.key(0))
