"""memjax.nir against Norse, both directions: Norse exports run in memjax, memjax
exports run in Norse. Skipped where norse (or torch) is missing or fails to import.

Norse's `to_nir` writes each time constant as ``dt / tau_inv`` (``dt`` times the time
constant, docs/nir.md, "Peers"); the tests check that, and that with ``tau = 1 /
tau_inv`` (the NIR parameter) memjax reproduces Norse's `LIFBoxCell`/`LIBoxCell`
spikes and membranes to float32 round-off. Norse's importer reads NIR's ``tau``
correctly: memjax's LIF and CubaLIF exports run identically in Norse.
"""

import jax.numpy as jnp
import nir
import numpy as np
import pytest

torch = pytest.importorskip("torch")
try:
    import norse.torch as nt
except Exception as e:  # ImportError, or a norse that does not load with this torch
    pytest.skip(f"norse unavailable here: {e!r}", allow_module_level=True)

from memjax.nir import from_nir, to_nir  # noqa: E402

DT = 1e-3  # Norse's default time step


def _norse_net():
    torch.manual_seed(0)
    inv = {30: torch.rand(30) * 150 + 100, 5: torch.rand(5) * 150 + 100}  # 1/tau, 1/s
    lif = nt.LIFBoxParameters(
        tau_mem_inv=inv[30], v_th=torch.full((30,), 0.3), v_leak=torch.zeros(30)
    )
    li = nt.LIBoxParameters(tau_mem_inv=inv[5], v_leak=torch.zeros(5))
    net = nt.SequentialState(
        torch.nn.Linear(20, 30), nt.LIFBoxCell(lif), torch.nn.Linear(30, 5), nt.LIBoxCell(li)
    )
    return net, inv


def test_norse_export_runs_identically_in_memjax():
    net, inv = _norse_net()
    x = torch.rand(50, 8, 20) * 20
    outs, v1 = [], []
    state = None
    with torch.no_grad():
        for xt in x:
            y, state = net(xt, state)
            outs.append(y)
            v1.append(state[1].v)
    out_n, v1_n = torch.stack(outs).numpy(), torch.stack(v1).numpy()
    g = nt.to_nir(net, torch.zeros(1, 20), dt=DT)
    (lif_name,) = [k for k, n in g.nodes.items() if isinstance(n, nir.LIF)]
    (li_name,) = [k for k, n in g.nodes.items() if isinstance(n, nir.LI)]
    # As written by Norse: tau = dt / tau_inv, dt times the time constant.
    for name, n in ((lif_name, 30), (li_name, 5)):
        np.testing.assert_allclose(g.nodes[name].tau, DT / inv[n].numpy(), rtol=1e-6)
        g.nodes[name].tau = (1.0 / inv[n].numpy()).astype(np.float32)
    out, tr = from_nir(g, dt=DT)(jnp.asarray(x.numpy()), traces=True)
    np.testing.assert_allclose(np.asarray(out), out_n, atol=1e-4)  # LI readout: membrane
    np.testing.assert_allclose(np.asarray(tr["states"][lif_name]), v1_n, atol=1e-5)
    z = np.asarray(tr["outputs"][lif_name])
    assert 0.05 < z.mean() < 0.95


def test_memjax_export_imported_by_norse():
    rng = np.random.default_rng(0)
    f = lambda *s: rng.normal(0, 1, s).astype(np.float32)  # noqa: E731
    c = lambda n, v: np.full(n, v, np.float32)  # noqa: E731
    lif = nir.LIF(tau=c(30, 5e-3), r=c(30, 1), v_leak=c(30, 0), v_threshold=c(30, 0.3))
    cuba = nir.CubaLIF(
        tau_syn=c(5, 2e-3), tau_mem=c(5, 5e-3), r=c(5, 1), v_leak=c(5, 0), v_threshold=c(5, 0.3)
    )
    nodes = {"input": nir.Input(np.array([20])), "a": nir.Affine(f(30, 20), f(30)), "l": lif}
    nodes |= {"b": nir.Affine(f(5, 30), f(5)), "c": cuba, "output": nir.Output(np.array([5]))}
    edges = [("input", "a"), ("a", "l"), ("l", "b"), ("b", "c"), ("c", "output")]
    m = from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
    x = rng.uniform(0, 20, (50, 8, 20)).astype(np.float32)
    out, tr = m(jnp.asarray(x), traces=True)
    back = nt.from_nir(to_nir(m), dt=DT)
    state, o, vl, ic, vc = None, [], [], [], []
    with torch.no_grad():
        for xt in torch.from_numpy(x):
            y, state = back(xt, state)
            o.append(y.numpy())
            # nirtorch keeps each module's state in a 1-tuple
            vl.append(state.state["l"][0].v.numpy())
            ((syn, mem),) = state.state["c"]
            ic.append(syn.v.numpy())
            vc.append(mem.v.numpy())
    np.testing.assert_array_equal(np.stack(o), np.asarray(out))
    np.testing.assert_allclose(np.stack(vl), np.asarray(tr["states"]["l"]), rtol=1e-5, atol=1e-5)
    i_m, v_m = tr["states"]["c"]
    np.testing.assert_allclose(np.stack(ic), np.asarray(i_m), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack(vc), np.asarray(v_m), rtol=1e-5, atol=1e-5)
    assert 0.05 < float(out.mean()) < 0.95
