"""MEMprop network: shapes, hoisted input projection vs a step-by-step reference,
crossbar vs dense equivalence, gradients vs finite differences, projection, noise, the
LIF baseline, the checkpointing modes."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_fd, rel_err

from memjax.crossbar import Crossbar, CrossbarConfig
from memjax.models.memprop import (
    DenseSynapse,
    LIFNet,
    MEMprop,
    cross_entropy,
    memprop_loss,
    project,
)
from memjax.neurons.mif import mif_step


@eqx.filter_jit
def _fwd(m, x, key=None):
    return m(x, key)


def _tiny(key, **kw):
    kw = {"n_steps": 4, "g1": 3.0, "g2": 3.0, **kw}
    return MEMprop.init(key, 12, 8, 3, w_std=0.3, **kw)


def test_shapes_and_traces(getkey):
    m = _tiny(getkey())
    x = jax.random.uniform(getkey(), (4, 12))
    logits = _fwd(m, x)
    assert logits.shape == (4, 3) and np.all(np.isfinite(logits))
    logits2, (vh, vo) = eqx.filter_jit(lambda m, x: m(x, traces=True))(m, x)
    np.testing.assert_allclose(logits, logits2, rtol=1e-6)
    assert vh.shape == (4, 4, 8) and vo.shape == (4, 4, 3)
    # the mean readout is the trapezoid time average over [0, n_steps dt]
    v0 = eqx.filter_jit(lambda m: m.neuron2.init_state((4, 3)).v)(m)  # as in the model
    trap = (vo.sum(0) + 0.5 * (v0 - vo[-1])) / 4
    np.testing.assert_allclose(logits, m.k_out * trap, rtol=1e-5)


def test_matches_step_by_step_reference(x64, getkey):
    # The network equals an explicit Python loop that reads crossbar 1 every step
    # (no hoisting), drives the output layer with the step-averaged hidden voltages
    # and takes the trapezoid time average of the output membrane; sub-steps (a
    # fori_loop inside the step) equal mif_step's own sub-steps.
    for substeps in (1, 3):
        m = _tiny(getkey(), n_steps=4, substeps=substeps)
        x = jax.random.uniform(getkey(), (3, 12), jnp.float64)
        s1 = m.neuron1.init_state((3, 8))
        s2 = m.neuron2.init_state((3, 3))
        vs = [s2.v]
        for _ in range(4):
            v1 = s1.v
            i1 = m.g1 * (x * m.v_read) @ m.syn1.effective_weight()
            s1 = mif_step(m.neuron1, s1, i1, m.dt, substeps=substeps)
            i2 = m.g2 * (m.a_v * 0.5 * (v1 + s1.v)) @ m.syn2.effective_weight()
            s2 = mif_step(m.neuron2, s2, i2, m.dt, substeps=substeps)
            vs.append(s2.v)
        ref = m.k_out * np.trapezoid(np.stack(vs), axis=0) / 4
        np.testing.assert_allclose(m(x), ref, rtol=1e-10)


def test_dense_and_crossbar_start_equal(x64, getkey):
    key = getkey()
    x = jax.random.uniform(getkey(), (2, 12), jnp.float64)
    a = _tiny(key, synapse="crossbar")
    b = _tiny(key, synapse="dense")
    assert isinstance(a.syn1, Crossbar) and isinstance(b.syn1, DenseSynapse)
    np.testing.assert_allclose(_fwd(a, x), _fwd(b, x), rtol=1e-9)


def test_gradient_matches_finite_differences(x64, getkey):
    m = _tiny(getkey())
    x = jax.random.uniform(getkey(), (3, 12), jnp.float64)
    y = jnp.array([0, 1, 2])
    w0 = m.syn2.u_pos

    @jax.jit
    def loss(u):
        mm = eqx.tree_at(lambda q: q.syn2.u_pos, m, u)
        return cross_entropy(mm(x), y)

    g = jax.grad(loss)(w0)
    fd = central_fd(loss, w0, eps=1e-6)
    assert rel_err(g, fd) < 1e-5
    # and through the hidden layer, for a few entries of crossbar 1
    idx = (slice(0, 3), slice(0, 2))
    u1 = m.syn1.u_pos

    @jax.jit
    def loss1(sub):
        mm = eqx.tree_at(lambda q: q.syn1.u_pos, m, u1.at[idx].set(sub))
        return cross_entropy(mm(x), y)

    g1 = jax.grad(loss1)(u1[idx])
    # these gradients are ~1e-6: a larger FD step keeps the loss's round-off (~1e-16 / eps)
    # below the tolerance; the truncation error (~eps^2) is far smaller
    assert rel_err(g1, central_fd(loss1, u1[idx], eps=1e-4)) < 1e-5


def test_neurons_frozen_unless_asked(getkey):
    m = _tiny(getkey())
    x = jax.random.uniform(getkey(), (2, 12))
    y = jnp.array([0, 2])
    # make the neuron parameters arrays so the filter selects them
    arr = lambda t: jax.tree.map(
        lambda v: jnp.asarray(v, jnp.float32) if isinstance(v, float) else v, t
    )
    m = eqx.tree_at(lambda q: (q.neuron1, q.neuron2), m, (arr(m.neuron1), arr(m.neuron2)))
    grad = eqx.filter_jit(eqx.filter_grad(lambda mm, x: memprop_loss(mm, x, y, None)[0]))
    g = grad(m, x)
    assert float(jnp.abs(g.neuron1.C)) == 0.0
    assert float(jnp.max(jnp.abs(g.syn1.u_pos))) > 0 and float(jnp.abs(g.log_k_out)) > 0
    m2 = dataclasses.replace(m, train_neurons=True)
    g2 = grad(m2, x)
    assert float(jnp.abs(g2.neuron1.C)) > 0
    # 10x the full-scale input current: finite gradients (the MIF update cannot blow up)
    g3 = grad(dataclasses.replace(m, g1=10.0 * m.g1), jnp.ones_like(x))
    assert np.all(np.isfinite(np.asarray(g3.syn1.u_pos)))


def test_project_clips_u(getkey):
    m = _tiny(getkey())
    m = eqx.tree_at(lambda q: q.syn1.u_pos, m, m.syn1.u_pos + 2.0)
    p = project(m)
    assert float(p.syn1.u_pos.max()) <= 1.0 and float(p.syn2.u_neg.min()) >= 0.0


def test_read_noise_and_rate_coding(getkey):
    m = _tiny(getkey())
    x = jax.random.uniform(getkey(), (4, 12))
    noisy = MEMprop.init(
        getkey(), 12, 8, 3, crossbar_config=CrossbarConfig(read_noise=True), n_steps=4
    )
    k = getkey()
    assert not np.allclose(_fwd(noisy, x, k), _fwd(noisy, x))  # fresh read noise with a key
    np.testing.assert_allclose(_fwd(noisy, x, k), _fwd(noisy, x, k))  # deterministic per key
    r = dataclasses.replace(m, encoding="rate")
    out = _fwd(r, x, getkey())
    assert out.shape == (4, 3) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="rate"):
        r(x)


def test_rate_coding_with_given_spikes(getkey):
    """Spikes encoded beforehand give the same logits as the same spikes drawn inside."""
    r = dataclasses.replace(_tiny(getkey()), encoding="rate")
    x = jax.random.uniform(getkey(), (4, 12))
    k = getkey()
    p = jnp.clip(x, 0.0, 1.0) * min(r.rate_max * r.dt, 1.0)
    spikes = jax.random.bernoulli(jax.random.split(k, 3)[0], p[None], (r.n_steps,) + x.shape)
    np.testing.assert_allclose(r(x, k, spikes=spikes), r(x, k), rtol=1e-6)
    assert np.all(np.isfinite(r(x, spikes=spikes)))  # no key needed then
    with pytest.raises(ValueError, match="n_steps, batch, n_in"):
        r(x, spikes=spikes[:-1])
    with pytest.raises(ValueError, match="encoding='rate'"):
        dataclasses.replace(r, encoding="direct")(x, spikes=spikes)


def test_lif_baseline(getkey):
    net = LIFNet.init(getkey(), 12, 8, 3, n_steps=6)
    x = jax.random.uniform(getkey(), (4, 12))
    logits, (vh, vo) = net(x, traces=True)
    assert logits.shape == (4, 3) and vh.shape == (6, 4, 8)
    g = eqx.filter_grad(lambda n: memprop_loss(n, x, jnp.array([0, 1, 2, 0]), None)[0])(net)
    assert float(jnp.max(jnp.abs(g.w1))) > 0  # gradient reaches layer 1 through the surrogate


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n_steps": 0}, "MEMprop.n_steps"),
        ({"encoding": "latency"}, "MEMprop.encoding"),
        ({"g1": -1.0}, "MEMprop.g1"),
    ],
)
def test_bad_settings(getkey, kwargs, field):
    with pytest.raises(ValueError, match=field):
        _tiny(getkey(), **kwargs)


def test_memprop_checkpoint_modes_same_gradient(x64, getkey):
    # T = 5 steps in segments of ceil(sqrt(5)) = 3: one segment and a remainder of 2.
    m0 = MEMprop.init(getkey(), 12, 8, 3, n_steps=5, w_std=0.3, g1=3.0, g2=3.0, synapse="dense")
    x = jax.random.uniform(getkey(), (4, 12), jnp.float64)
    y = jnp.array([0, 1, 2, 0])

    @eqx.filter_jit
    def grads(m0):
        out = {}
        for mode in ["none", "sqrt"]:
            m = MEMprop(
                **{**{f: getattr(m0, f) for f in m0.__dataclass_fields__}, "checkpoint": mode}
            )
            g = eqx.filter_grad(lambda m: memprop_loss(m, x, y, None)[0])(m)
            out[mode] = (g.syn1.weight, g.syn2.weight, g.log_k_out)
        return out

    g = grads(m0)
    for a, b in zip(g["sqrt"], g["none"]):
        assert float(jnp.max(jnp.abs(b))) > 0
        assert rel_err(a, b) < 1e-11
    with pytest.raises(ValueError, match="MEMprop.checkpoint"):
        MEMprop.init(getkey(), 12, 8, 3, checkpoint="all")


def test_unbatched_input_gives_unbatched_logits(getkey):
    m = _tiny(getkey())
    x = jax.random.uniform(getkey(), (2, 12))
    one = m(x[0])
    assert one.shape == (3,)
    batched = m(x)[0]
    # float32 sums in another order: agree to rounding of the largest logit
    np.testing.assert_allclose(
        one, batched, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(batched)))
    )
    logits, (vh, vo) = m(x[0], traces=True)
    assert logits.shape == (3,) and vh.shape == (4, 8) and vo.shape == (4, 3)
    net = LIFNet.init(getkey(), 12, 8, 3, n_steps=3)
    assert net(x[0]).shape == (3,)
    np.testing.assert_allclose(net(x[0]), net(x)[0], rtol=1e-6)


@pytest.mark.parametrize("model", ["memprop", "lifnet"])
def test_input_dtype_and_range_checks(getkey, model):
    m = _tiny(getkey()) if model == "memprop" else LIFNet.init(getkey(), 12, 8, 3, n_steps=3)
    name = "MEMprop" if model == "memprop" else "LIFNet"
    x = jax.random.uniform(getkey(), (2, 12))
    with pytest.raises(TypeError, match=f"{name}: x must be floating"):
        m(np.asarray(x * 255, np.uint8))
    # float16 is promoted to float32 (no scan-carry dtype error)
    out16 = m(x.astype(jnp.float16))
    assert out16.dtype == jnp.float32
    np.testing.assert_allclose(out16, m(x.astype(jnp.float16).astype(jnp.float32)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\]"):
        m(x * 255.0)
    with pytest.raises(ValueError, match=f"{name}: x must have shape"):
        m(jnp.ones((2, 13)))
    with pytest.raises(Exception, match=r"scaled to \[0, 1\]"):
        eqx.filter_jit(lambda mm, xx: mm(xx))(m, x * 255.0)


def test_one_v_read_and_crossbar_init(getkey):
    cfg = CrossbarConfig(v_read=0.3)
    k = getkey()
    m = MEMprop.init(k, 12, 8, 3, w_std=0.3, crossbar_config=cfg)
    assert m.v_read == 0.3 == m.syn1.v_read
    assert (
        not hasattr(MEMprop, "__dataclass_fields__") or "v_read" not in MEMprop.__dataclass_fields__
    )
    # the initialisation is Crossbar.init's one-sided normal pairs, key 0 of split(key, 4)
    xb = Crossbar.init(
        jax.random.split(k, 4)[0], 12, 8, cfg, scale=0.3, distribution="normal", pairing="one-sided"
    )
    np.testing.assert_array_equal(m.syn1.u_pos, xb.u_pos)
    np.testing.assert_array_equal(m.syn1.u_neg, xb.u_neg)
    d = MEMprop.init(k, 12, 8, 3, w_std=0.3, synapse="dense", crossbar_config=cfg)
    assert d.v_read == 0.3
    np.testing.assert_allclose(d.syn1.effective_weight(), m.syn1.effective_weight(), rtol=1e-6)
