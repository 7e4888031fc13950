"""memjax.nir against the NIR specification: node equations, reset/threshold, graph
handling, round trip and errors."""

import jax.numpy as jnp
import nir
import numpy as np
import pytest

from memjax.nir import NIRNetwork, from_nir, nodes, to_nir

DT = 1e-4


def _graph(neuron, n=3, weight=None):
    w = np.eye(n, dtype=np.float32) if weight is None else weight
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([w.shape[1]])),
            "fc": nir.Linear(weight=w),
            "neuron": neuron,
            "output": nir.Output(output_type=np.array([w.shape[0]])),
        },
        edges=[("input", "fc"), ("fc", "neuron"), ("neuron", "output")],
    )


def _f(*v):
    return np.asarray(v, dtype=np.float32)


def _euler_lif(tau, r, v_leak, thr, v_reset, x):
    """Reference: the NIR LIF, forward Euler, threshold then reset (float64)."""
    v = np.zeros(x.shape[1:])
    zs, vs = [], []
    for xt in x:
        v = v + DT / tau * (v_leak - v + r * xt)
        z = (v > thr).astype(float)
        v = np.where(z > 0, v_reset, v)
        zs.append(z)
        vs.append(v)
    return np.array(zs), np.array(vs)


def test_lif_matches_spec_euler_with_reset_value():
    tau, r, vl, thr, vr = (
        _f(1e-3, 2e-3, 5e-4),
        _f(1, 2, 3),
        _f(0.1, 0, -0.2),
        _f(1, 0.5, 0.3),
        _f(0, -0.1, 0.05),
    )
    g = _graph(nir.LIF(tau=tau, r=r, v_leak=vl, v_threshold=thr, v_reset=vr))
    x = np.random.default_rng(0).uniform(0, 3, (60, 4, 3)).astype(np.float32)
    out, tr = from_nir(g, dt=DT)(jnp.asarray(x), traces=True)
    z, v = _euler_lif(tau, r, vl, thr, vr, x.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(out), z)
    np.testing.assert_allclose(np.asarray(tr["states"]["neuron"]), v, atol=1e-5)
    assert 0 < z.mean() < 1


def test_threshold_is_strict_and_if_resets_to_v_reset():
    # IF: v' = v + dt r I; with dt r I = 0.5 per step v reaches exactly 1.0 at step 2:
    # no spike there (strict >), the spike comes at step 3 and v goes to v_reset.
    g = _graph(nir.IF(r=_f(5000.0), v_threshold=_f(1.0), v_reset=_f(-0.25)), n=1)
    out, tr = from_nir(g, dt=DT)(jnp.ones((4, 1, 1)), traces=True)
    np.testing.assert_array_equal(np.asarray(out)[:, 0, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(np.asarray(tr["states"]["neuron"])[:, 0, 0], [0.5, 1.0, -0.25, 0.25])


def test_cubalif_li_i_threshold_and_scale():
    x = np.random.default_rng(1).uniform(0, 1, (30, 2, 2)).astype(np.float32)
    # CubaLIF: synaptic current first, then the membrane driven by the new current.
    cl = nir.CubaLIF(
        tau_syn=_f(2e-4, 5e-4),
        tau_mem=_f(1e-3, 1e-3),
        r=_f(4, 4),
        v_leak=_f(0, 0),
        v_threshold=_f(0.5, 0.5),
        w_in=_f(2, 2),
    )
    out, tr = from_nir(_graph(cl, 2), dt=DT)(jnp.asarray(x), traces=True)
    i = np.zeros((2, 2))
    v = np.zeros((2, 2))
    zs = []
    for xt in x.astype(np.float64):
        i = i + DT / cl.tau_syn * (-i + cl.w_in * xt)
        v = v + DT / cl.tau_mem * (cl.v_leak - v + cl.r * i)
        z = v > 0.5
        v = np.where(z, 0.0, v)
        zs.append(z)
    np.testing.assert_array_equal(np.asarray(out), np.array(zs, float))
    # LI and I output their state; Threshold is stateless.
    li = from_nir(_graph(nir.LI(tau=_f(1e-3, 1e-3), r=_f(1, 2), v_leak=_f(0, 0.5)), 2), dt=DT)
    ref, v = [], np.zeros((2, 2))
    for xt in x.astype(np.float64):
        v = v + 0.1 * (np.array([0, 0.5]) - v + np.array([1, 2]) * xt)
        ref.append(v)
    np.testing.assert_allclose(np.asarray(li(jnp.asarray(x))), np.array(ref), rtol=1e-5, atol=1e-6)
    ii = from_nir(_graph(nir.I(r=_f(10, 20)), 2), dt=DT)
    np.testing.assert_allclose(
        np.asarray(ii(jnp.asarray(x)))[-1], np.cumsum(x, 0)[-1] * DT * np.array([10, 20]), rtol=1e-5
    )
    th = from_nir(_graph(nir.Threshold(threshold=_f(0.5, 0.2)), 2))
    np.testing.assert_array_equal(
        np.asarray(th(jnp.asarray(x))), (x > np.array([0.5, 0.2])).astype(float)
    )
    sc = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "s": nir.Scale(scale=_f(2, -1)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "s"), ("s", "output")],
    )
    np.testing.assert_allclose(np.asarray(from_nir(sc)(jnp.asarray(x))), x * np.array([2, -1]))


def test_affine_conv_flatten_and_summed_inputs():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    fc = rng.normal(size=(4, 3 * 4 * 4)).astype(np.float32)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2, 6, 6])),
            "conv": nir.Conv2d(
                input_shape=(6, 6), weight=w, bias=b, stride=1, padding=0, dilation=1, groups=1
            ),
            "flat": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
            "fc": nir.Affine(weight=fc, bias=np.zeros(4, np.float32)),
            "skip": nir.Affine(weight=fc, bias=np.ones(4, np.float32)),
            "output": nir.Output(np.array([4])),
        },
        edges=[
            ("input", "conv"),
            ("conv", "flat"),
            ("flat", "fc"),
            ("flat", "skip"),
            ("fc", "output"),
            ("skip", "output"),
        ],
    )
    x = rng.uniform(size=(2, 2, 6, 6)).astype(np.float32)
    y = np.asarray(from_nir(g)(jnp.asarray(x), 1))[0]
    conv = np.zeros((2, 3, 4, 4))
    for o in range(3):
        for i in range(4):
            for j in range(4):
                conv[:, o, i, j] = (x[:, :, i : i + 3, j : j + 3] * w[o]).sum((1, 2, 3)) + b[o]
    h = conv.reshape(2, -1)
    np.testing.assert_allclose(y, 2 * h @ fc.T + 1, rtol=1e-4, atol=1e-4)


def _conv_graph(w, padding, stride=1, dilation=1):
    conv = nir.Conv2d(
        input_shape=(7, 7),
        weight=w,
        bias=np.zeros(w.shape[0], np.float32),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=1,
    )
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([w.shape[1], 7, 7])),
            "conv": conv,
            "output": nir.Output(conv.output_type["output"]),
        },
        edges=[("input", "conv"), ("conv", "output")],
    )


def test_conv_string_padding_same_and_valid():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    x = jnp.asarray(rng.uniform(size=(2, 3, 7, 7)), jnp.float32)
    run = lambda g: np.asarray(from_nir(g)(x, 1))[0]  # noqa: E731
    same = run(_conv_graph(w, "same"))
    assert same.shape == (2, 2, 7, 7)
    np.testing.assert_array_equal(same, run(_conv_graph(w, 1)))
    np.testing.assert_array_equal(run(_conv_graph(w, "valid")), run(_conv_graph(w, 0)))
    np.testing.assert_array_equal(
        run(_conv_graph(w, "same", dilation=2)), run(_conv_graph(w, 2, dilation=2))
    )
    with pytest.raises(
        ValueError, match=r"'conv' \(Conv2d\) has padding 'same' with stride \(2, 2\)"
    ):
        from_nir(_conv_graph(w, "same", stride=2))
    with pytest.raises(ValueError, match="odd dilated kernel"):
        from_nir(_conv_graph(w[:, :, :2, :2], "same"))


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([5])),
            "a": nir.Affine(
                weight=rng.normal(size=(4, 5)).astype(np.float32),
                bias=rng.normal(size=4).astype(np.float32),
            ),
            "lif": nir.LIF(
                tau=_f(*[1e-3] * 4),
                r=_f(*[10.0] * 4),
                v_leak=_f(*[0.0] * 4),
                v_threshold=_f(*[1.0] * 4),
            ),
            "b": nir.Linear(weight=rng.normal(size=(2, 4)).astype(np.float32)),
            "cl": nir.CubaLIF(
                tau_syn=_f(5e-4, 5e-4),
                tau_mem=_f(1e-3, 1e-3),
                r=_f(10, 10),
                v_leak=_f(0, 0),
                v_threshold=_f(1, 1),
            ),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "a"), ("a", "lif"), ("lif", "b"), ("b", "cl"), ("cl", "output")],
    )
    m = from_nir(g)
    nir.write(tmp_path / "m.nir", to_nir(m))
    m2 = from_nir(tmp_path / "m.nir")
    x = jnp.asarray(rng.uniform(0, 2, (40, 3, 5)), jnp.float32)
    out, tr = m(x, traces=True)
    out2, tr2 = m2(x, traces=True)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out2))
    np.testing.assert_array_equal(np.asarray(tr["states"]["lif"]), np.asarray(tr2["states"]["lif"]))
    assert m2.dt == m.dt and 0 < float(out.mean()) < 1


def test_unsupported_node_and_cycle_errors():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "d": nir.Delay(delay=_f(1, 1)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "d"), ("d", "output")],
    )
    with pytest.raises(ValueError, match=r"'d' is a NIR Delay.*supported: Input, Output, Affine"):
        from_nir(g)
    n = nodes.Linear(jnp.eye(2))
    with pytest.raises(ValueError, match="cycle"):
        NIRNetwork(
            nodes={"input": None, "a": n, "b": n, "output": None},
            edges=(("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")),
            dt=DT,
            shapes=(),
        )(jnp.ones((1, 1, 2)))
    with pytest.raises(ValueError, match="dt"):
        NIRNetwork(
            nodes={"input": None, "output": None}, edges=(("input", "output"),), dt=0.0, shapes=()
        )
