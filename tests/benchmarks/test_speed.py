"""The speed benchmarks compare like with like: memjax, the hand-written JAX reference
and the PyTorch peers compute the same losses and gradients on tiny networks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import _handjax as HJ
from memjax.models.memprop import LIFNet, MEMprop, cross_entropy

T, B, N_IN, H, N_OUT = 6, 5, 20, 8, 4


def _data(key, scale=3.0):
    kx, ks = jax.random.split(key)
    x = scale * jax.random.uniform(kx, (B, N_IN))
    spikes = (jax.random.uniform(ks, (T, B, N_IN)) < 0.4).astype(jnp.float32) * scale
    return x, spikes, jnp.array([0, 1, 2, 3, 1])


@eqx.filter_jit
def _vg(model, x, y, *key):
    return eqx.filter_value_and_grad(lambda m: cross_entropy(m(x, *key), y))(model)


_hand_vg = jax.jit(jax.value_and_grad(HJ.loss), static_argnames=("n_steps", "reset"))


def _memjax_lif(params):
    m = LIFNet.init(jax.random.key(0), N_IN, H, N_OUT, n_steps=T)
    return eqx.tree_at(
        lambda m: (m.w1, m.w2, m.b1, m.b2),
        m,
        (params["w1"], params["w2"], params["b1"], params["b2"]),
    )


@pytest.mark.parametrize("inp", ["static", "poisson"])
def test_memjax_lif_equals_hand_jax(x64, inp):
    params = jax.tree.map(
        lambda a: a.astype(jnp.float64), HJ.init_params(jax.random.key(1), N_IN, H, N_OUT)
    )
    # LIFNet takes inputs in [0, 1]: the drive of inputs scaled by 3 goes into w1 instead
    params["w1"] = 3.0 * params["w1"]
    x, spikes, y = _data(jax.random.key(2), scale=1.0)
    xin = (x if inp == "static" else spikes).astype(jnp.float64)
    model = _memjax_lif(params)

    l_m, g_m = _vg(model, xin, y)
    l_h, g_h = _hand_vg(params, xin, y, n_steps=T)
    assert float(l_h) > 0
    np.testing.assert_allclose(l_m, l_h, rtol=1e-12)
    for k in ("w1", "w2", "b1", "b2"):
        assert np.abs(np.asarray(g_h[k])).max() > 0, k  # surrogate gradients flow
        np.testing.assert_allclose(getattr(g_m, k), g_h[k], rtol=1e-10, atol=1e-14)
    # neurons spike in this case: the reset changes the loss
    l_d = _hand_vg(params, xin, y, n_steps=T, reset="delayed")[0]
    assert abs(float(l_d) - float(l_h)) > 1e-6


def test_lif_sequence_shape_error():
    m = LIFNet.init(jax.random.key(0), N_IN, H, N_OUT, n_steps=T)
    with pytest.raises(ValueError, match="n_steps"):
        m(jnp.zeros((T + 1, B, N_IN)))


def test_step_flops_count_the_loop_body_per_step():
    """XLA's cost analysis counts a scan body once; the benchmark adds T - 1 bodies."""
    import optax

    from benchmarks.speed import _step_flops

    params = HJ.init_params(jax.random.key(1), N_IN, H, N_OUT)
    x, spikes, y = _data(jax.random.key(3))
    opt = optax.adam(1e-3)
    f_seq = _step_flops(params, spikes, y, T, opt)
    # the per-step input projection alone: forward and weight gradient, T times
    assert f_seq > 2 * 2 * T * B * N_IN * H
    assert f_seq < 1.5 * 2 * 2 * T * B * N_IN * H + 1e6
    f_static = _step_flops(params, x, y, T, opt)
    assert 2 * 2 * B * N_IN * H < f_static < f_seq


@pytest.mark.parametrize("inp", ["static", "poisson"])
def test_snntorch_equals_hand_jax_delayed_reset(inp):
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    from benchmarks import _torch_peers as TP

    params = HJ.init_params(jax.random.key(4), N_IN, H, N_OUT)
    x, spikes, y = _data(jax.random.key(5))
    xin = x if inp == "static" else spikes
    l_h, g_h = _hand_vg(params, xin, y, n_steps=T, reset="delayed")
    net = TP.lif_from_params(params)
    loss = torch.nn.functional.cross_entropy(
        net(torch.from_numpy(np.array(xin)), T), torch.from_numpy(np.array(y)).long()
    )
    loss.backward()
    np.testing.assert_allclose(loss.item(), l_h, rtol=1e-5)
    assert np.abs(np.asarray(g_h["w1"])).max() > 0
    np.testing.assert_allclose(net.fc1.weight.grad.numpy().T, g_h["w1"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(net.fc2.weight.grad.numpy().T, g_h["w2"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(net.fc1.bias.grad.numpy(), g_h["b1"], rtol=1e-3, atol=1e-6)
    # and the reset conventions really differ (the snnTorch twin is not memjax's LIF)
    assert abs(float(_hand_vg(params, xin, y, n_steps=T)[0]) - float(l_h)) > 1e-4


def test_snntorch_adam_step_matches_optax():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    import optax

    from benchmarks import _torch_peers as TP

    params = HJ.init_params(jax.random.key(6), N_IN, H, N_OUT)
    x, _, y = _data(jax.random.key(7))
    opt = optax.adam(1e-3)
    step = HJ.make_train_step(opt, n_steps=T, reset="delayed")
    p1, _, l_h = step(params, opt.init(params), x, y)
    net = TP.lif_from_params(params)
    l_t = TP.make_step(net, 1e-3, num_steps=T)(
        torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y)).long()
    )
    np.testing.assert_allclose(float(l_t), l_h, rtol=1e-5)
    np.testing.assert_allclose(net.fc1.weight.detach().numpy().T, p1["w1"], atol=2e-6)


def _memprop(encoding="direct"):
    return MEMprop.init(jax.random.key(8), N_IN, H, N_OUT, n_steps=T, encoding=encoding)


def test_torch_mif_equals_memjax_direct():
    torch = pytest.importorskip("torch")
    from benchmarks import _torch_peers as TP

    m = _memprop()
    x, _, y = _data(jax.random.key(9), scale=1.0)
    l_m, g_m = _vg(m, x, y)
    net = TP.mif_from_memprop(m)
    loss = torch.nn.functional.cross_entropy(
        net(torch.from_numpy(np.array(x))), torch.from_numpy(np.array(y)).long()
    )
    loss.backward()
    np.testing.assert_allclose(loss.item(), l_m, rtol=1e-5)
    scale = np.abs(np.asarray(g_m.syn1.u_pos)).max()
    assert scale > 0
    np.testing.assert_allclose(net.u1p.grad.numpy(), g_m.syn1.u_pos, atol=1e-3 * scale)
    np.testing.assert_allclose(
        net.u2n.grad.numpy(), g_m.syn2.u_neg, atol=1e-3 * np.abs(np.asarray(g_m.syn2.u_neg)).max()
    )
    # d loss / d log k_out = sum((softmax - onehot) logits) / B cancels to ~1e-5 here: its
    # float32 round-off (~1e-8) is an absolute tolerance
    np.testing.assert_allclose(net.log_k_out.grad.item(), g_m.log_k_out, rtol=1e-3, atol=5e-8)


def test_memjax_rate_coding_equals_step_by_step_read():
    """MEMprop reads crossbar 1 for all steps before the scan; the torch loop reads it
    step by step from the same spikes: same loss."""
    torch = pytest.importorskip("torch")
    from benchmarks import _torch_peers as TP

    m = _memprop("rate")
    x, _, y = _data(jax.random.key(10), scale=1.0)
    key = jax.random.key(11)
    l_m = eqx.filter_jit(lambda m, x, k: cross_entropy(m(x, k), y))(m, x, key)
    k_in, _, _ = jax.random.split(key, 3)
    p = jnp.clip(x, 0.0, 1.0) * min(m.rate_max * m.dt, 1.0)
    spikes = jax.random.bernoulli(k_in, p[None], (T,) + x.shape).astype(x.dtype)
    assert 0 < float(spikes.mean()) < 1
    net = TP.mif_from_memprop(m)
    logits = net(torch.from_numpy(np.array(x)), torch.from_numpy(np.array(spikes)))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(np.array(y)).long())
    np.testing.assert_allclose(loss.item(), l_m, rtol=1e-5)
