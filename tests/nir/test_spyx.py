"""memjax.nir against Spyx (the `peers` extra), both directions: Spyx exports run in
memjax, memjax exports run in Spyx. Skipped where spyx is missing or fails to import.

Spyx's `to_nir` writes its neurons with a convention of its own (docs/nir.md, "Peers"):
``LI`` (from ``PSU_LIF``) with ``r = 1`` and ``LIF`` with ``r = beta``, where the NIR
equations give Spyx's update ``V <- beta V + x`` only with ``r = tau / dt``; and its
``Flatten`` keeps Spyx's channels-last order. The tests below check that memjax runs
those graphs as the NIR equations say, and that with the NIR-exact gain and flatten
order memjax reproduces Spyx's spikes and membranes to float32 round-off.
"""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

try:
    import spyx.nir as snir
    import spyx.nn as snn
    from flax import nnx
except Exception as e:  # ImportError, or a spyx/flax that does not load with this jax
    pytest.skip(f"spyx unavailable here: {e!r}", allow_module_level=True)

from memjax.nir import from_nir, to_nir  # noqa: E402

DT = 1.0  # Spyx's `to_nir`/`from_nir` default time step; its graphs carry no metadata dt


def _export(net, shape_in, shape_out):
    return snir.to_nir(net, {"input": np.array(shape_in)}, {"output": np.array(shape_out)}, dt=DT)


# Spyx relies on NumPy rank promotion (e.g. ``beta * V``), which this test suite turns
# into an error for memjax's own code; it is allowed inside the Spyx calls only.
def _spyx():
    return jax.numpy_rank_promotion("allow")


def _spyx_run(net, x):
    with _spyx():
        return np.asarray(snn.run(net, x)[0])


def _spyx_states(graph, x, dt=DT):
    with _spyx():
        _, (out, states) = snir.from_nir(graph, x, dt=dt, return_all_states=True)
    return np.asarray(out), [None if s is None else np.asarray(s) for s in states]


def _nir_exact_gain(graph):
    """Set each ``LI`` node's ``r`` to ``tau / dt``: NIR's Euler step is then ``v <-
    (1 - dt/tau) v + I``, Spyx's ``V <- beta V + x`` with ``beta = 1 - dt/tau``."""
    for node in graph.nodes.values():
        if isinstance(node, nir.LI):
            node.r = (node.tau / DT).astype(np.float32)
    return graph


def _psu_mlp(seed):
    rngs = nnx.Rngs(seed)
    return snn.Sequential(
        nnx.Linear(20, 30, rngs=rngs),
        snn.PSU_LIF((30,), threshold=0.5, rngs=rngs),
        nnx.Linear(30, 5, rngs=rngs),
        snn.PSU_LIF((5,), threshold=0.5, rngs=rngs),
    )


def test_spyx_psu_lif_export_runs_identically_in_memjax():
    net = _psu_mlp(0)
    x = jax.random.uniform(jax.random.key(1), (40, 8, 20)) * 2
    spk = _spyx_run(net, x)
    g = _export(net, [20], [5])
    _, sp_states = _spyx_states(g, x)
    # As written by Spyx: memjax integrates the first LI as NIR says, v <- beta v +
    # (dt r / tau) I, i.e. Spyx's membrane scaled by dt r / tau (linear, no reset).
    li = g.nodes["layer_1"]
    _, tr = from_nir(g, dt=DT)(x, traces=True)
    np.testing.assert_allclose(
        np.asarray(tr["states"]["layer_1"]), sp_states[1] * (DT * li.r / li.tau), atol=2e-5
    )
    # With the NIR-exact gain r = tau/dt: Spyx's spikes and membranes, every layer.
    out, tr = from_nir(_nir_exact_gain(g), dt=DT)(x, traces=True)
    np.testing.assert_array_equal(np.asarray(out), spk)
    for k, name in ((1, "layer_1"), (3, "layer_3")):
        np.testing.assert_allclose(np.asarray(tr["states"][name]), sp_states[k], atol=2e-5)
    assert 0.05 < float(spk.mean()) < 0.95


def test_spyx_conv_export_same_padding_and_flatten_order():
    rngs = nnx.Rngs(3)
    net = snn.Sequential(
        nnx.Conv(2, 4, (3, 3), rngs=rngs),  # Spyx/flax default padding 'SAME' -> NIR 'same'
        snn.PSU_LIF((6, 6, 4), threshold=0.3, rngs=rngs),
        snn.Flatten(),
        nnx.Linear(144, 5, rngs=rngs),
        snn.PSU_LIF((5,), threshold=0.3, rngs=rngs),
    )
    x = jax.random.uniform(jax.random.key(3), (20, 3, 6, 6, 2))  # Spyx: channels-last
    spk = _spyx_run(net, x)
    g = _nir_exact_gain(_export(net, [2, 6, 6], [5]))
    assert g.nodes["layer_0"].padding == "same"
    _, sp_states = _spyx_states(g, x)
    xc = jnp.transpose(x, (0, 1, 4, 2, 3))  # NIR: channels-first
    out, tr = from_nir(g, dt=DT)(xc, traces=True)
    conv_v = np.transpose(sp_states[1], (0, 1, 4, 2, 3))
    np.testing.assert_allclose(np.asarray(tr["states"]["layer_1"]), conv_v, atol=2e-5)
    # NIR's Flatten of (C, H, W) orders features channel-first; Spyx's weights expect
    # its (H, W, C) order: permuting the Affine's columns gives Spyx's output exactly.
    assert not np.array_equal(np.asarray(out), spk)
    fc = g.nodes["layer_3"]
    fc.weight = fc.weight[:, np.arange(144).reshape(6, 6, 4).transpose(2, 0, 1).ravel()]
    out, tr = from_nir(g, dt=DT)(xc, traces=True)
    np.testing.assert_array_equal(np.asarray(out), spk)
    np.testing.assert_allclose(np.asarray(tr["states"]["layer_4"]), sp_states[4], atol=2e-5)
    assert 0.05 < float(spk.mean()) < 0.95


def _nir_lif_reference(g, x):
    """float64 reference of the NIR graph input -> Affine -> LIF -> Affine -> LIF (Euler
    step dt, threshold, reset to v_reset); output spikes and the membranes."""
    h, vs = x.astype(np.float64), []
    for a, n in (("layer_0", "layer_1"), ("layer_2", "layer_3")):
        fc, lif = g.nodes[a], g.nodes[n]
        i_in = h @ fc.weight.T.astype(np.float64) + fc.bias
        v, zs, vt = np.zeros(i_in.shape[1:]), [], []
        for it in i_in:
            v = v + DT / lif.tau * (lif.v_leak - v + lif.r * it)
            z = (v > lif.v_threshold).astype(float)
            v = np.where(z > 0, lif.v_reset, v)
            zs.append(z)
            vt.append(v)
        h = np.array(zs)
        vs.append(np.array(vt))
    return h, vs


def test_spyx_lif_export_runs_as_nir_specifies():
    rngs = nnx.Rngs(4)
    net = snn.Sequential(
        nnx.Linear(20, 30, rngs=rngs),
        snn.LIF((30,), threshold=0.2, rngs=rngs),
        nnx.Linear(30, 5, rngs=rngs),
        snn.LIF((5,), threshold=0.2, rngs=rngs),
    )
    x = jax.random.uniform(jax.random.key(5), (40, 8, 20)) * 4
    g = _export(net, [20], [5])
    out, tr = from_nir(g, dt=DT)(x, traces=True)
    z, (v1, v3) = _nir_lif_reference(g, np.asarray(x))
    np.testing.assert_array_equal(np.asarray(out), z)
    np.testing.assert_allclose(np.asarray(tr["states"]["layer_1"]), v1, atol=1e-4)
    np.testing.assert_allclose(np.asarray(tr["states"]["layer_3"]), v3, atol=1e-4)
    assert 0.02 < float(z.mean()) < 0.95
    # Spyx's own LIF (spike from the previous membrane, subtractive reset, unit input
    # gain) is not the NIR LIF it writes: its spikes differ (docs/nir.md, "Peers").
    spk = _spyx_run(net, x)
    assert not np.array_equal(spk, z)


def _memjax_li_net(rng, dt, conv):
    """A memjax network, input -> (Conv2d | Affine) -> LI -> Threshold -> ... with the
    leaky-integrator gain r = tau/dt, the NIR form of Spyx's PSU_LIF."""
    beta = lambda n: rng.uniform(0.5, 0.95, n).astype(np.float32)  # noqa: E731

    def li(shape):
        tau = (dt / (1 - beta(int(np.prod(shape))))).reshape(shape)
        return nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(shape, np.float32))

    def thr(shape):
        return nir.Threshold(threshold=np.full(shape, 0.5, np.float32))

    if conv:
        w = rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32)
        first = nir.Conv2d((6, 6), w, 1, 1, 1, 1, rng.normal(0, 0.1, 4).astype(np.float32))
        nodes = {"input": nir.Input(np.array([2, 6, 6])), "l0": first}
        nodes |= {
            "l1": li((4, 6, 6)),
            "l2": thr((4, 6, 6)),
            "output": nir.Output(np.array([4, 6, 6])),
        }
        edges = [("input", "l0"), ("l0", "l1"), ("l1", "l2"), ("l2", "output")]
        return from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=dt)
    a0 = nir.Affine(rng.normal(0, 0.5, (30, 20)).astype(np.float32), np.zeros(30, np.float32))
    a1 = nir.Affine(rng.normal(0, 0.5, (5, 30)).astype(np.float32), np.zeros(5, np.float32))
    nodes = {"input": nir.Input(np.array([20])), "l0": a0, "l1": li((30,)), "l2": thr((30,))}
    nodes |= {"l3": a1, "l4": li((5,)), "l5": thr((5,)), "output": nir.Output(np.array([5]))}
    names = list(nodes)
    edges = list(zip(names[:-1], names[1:]))
    return from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=dt)


@pytest.mark.parametrize("conv", [False, True])
def test_memjax_export_imported_by_spyx(conv):
    rng = np.random.default_rng(6)
    dt = 1e-3
    m = _memjax_li_net(rng, dt, conv)
    shape = (3, 2, 6, 6) if conv else (8, 20)
    x = jnp.asarray(rng.uniform(0, 1.5, (25,) + shape), jnp.float32)
    out, tr = m(x, traces=True)
    graph = to_nir(m)
    xs = jnp.transpose(x, (0, 1, 3, 4, 2)) if conv else x  # Spyx: channels-last
    sp_out, sp_states = _spyx_states(graph, xs, dt)
    to_nchw = (lambda a: np.transpose(np.asarray(a), (0, 1, 4, 2, 3))) if conv else np.asarray
    np.testing.assert_array_equal(to_nchw(sp_out), np.asarray(out))
    np.testing.assert_allclose(to_nchw(sp_states[1]), np.asarray(tr["states"]["l1"]), atol=2e-5)
    if not conv:
        np.testing.assert_allclose(
            np.asarray(sp_states[3]), np.asarray(tr["states"]["l4"]), atol=2e-5
        )
    assert 0.05 < float(out.mean()) < 0.95
