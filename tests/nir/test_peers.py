"""memjax.nir against snnTorch (the `peers` extra): export -> memjax and memjax -> import
give the same spikes and membrane traces. Skipped where torch/snntorch are missing."""

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
import snntorch.utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

from memjax.nir import from_nir, to_nir  # noqa: E402


def _leaky(n, **kw):
    return snn.Leaky(
        beta=torch.rand(n) * 0.5 + 0.45,
        threshold=torch.full((n,), 0.5),
        reset_mechanism="zero",
        init_hidden=True,
        **kw,
    )


def _run_torch(net, x):
    snntorch.utils.reset(net)
    spk, mem = [], []
    with torch.no_grad():
        for xt in x:
            s, m = net(xt)
            spk.append(s)
            mem.append(m)
    return torch.stack(spk).numpy(), torch.stack(mem).numpy()


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(20, 30), _leaky(30), torch.nn.Linear(30, 5), _leaky(5, output=True)
    )


def test_snntorch_export_runs_identically_in_memjax():
    net = _net()
    x = torch.rand(50, 8, 20) * 2
    spk, mem = _run_torch(net, x)
    m = from_nir(export_to_nir(net, torch.zeros(1, 20), ignore_dims=[0]))
    out, tr = m(jnp.asarray(x.numpy()), traces=True)
    np.testing.assert_array_equal(np.asarray(out), spk)
    assert 0.02 < spk.mean() < 0.9
    # snnTorch returns the membrane before its (delayed) reset; memjax's state is after it.
    np.testing.assert_allclose(np.asarray(tr["states"]["3"]), mem * (1 - spk), atol=1e-5)


def test_memjax_export_imported_by_snntorch():
    net = _net()
    m = from_nir(export_to_nir(net, torch.zeros(1, 20), ignore_dims=[0]))
    back = import_from_nir(to_nir(m))
    x = torch.rand(50, 8, 20) * 2
    out = np.asarray(m(jnp.asarray(x.numpy())))
    snntorch.utils.reset(back)
    spk = []
    with torch.no_grad():
        for xt in x:
            o = back(xt)
            spk.append(o[0] if isinstance(o, tuple) else o)
    np.testing.assert_array_equal(np.stack([s.numpy() for s in spk]), out)
