"""benchmarks.speed_devices: the MIF SPICE netlist against memjax (tiny settings)."""

import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_mif_netlist_matches_memjax(x64):
    # Two neurons of a D2D population through the behavioural netlist (mif.sub) and
    # through memjax: membrane waveforms agree to < 1 % of their peak.
    from benchmarks import speed_devices as sd

    n = 2
    pop, amps = sd._population(n, 0), sd._amplitudes(n)
    f, arrays = sd._mif_transient_fn(pop, jnp.float64)
    st = jax.jit(f)(arrays, jnp.asarray(amps))
    s0 = pop.init_state((n,), jnp.float64)
    with tempfile.TemporaryDirectory() as tmp:
        net = sd._mif_netlist(pop, amps, (s0.v, s0.x1, s0.x2), [0, 1], Path(tmp) / "o.txt")
        sp = sd.run_ngspice(net, Path(tmp), "o")
    d = sp["data"]
    t = sd.DT_OUT * np.arange(st.v.shape[0])
    for k in range(n):
        v_sp = np.interp(t, d[:, 0], d[:, 1 + 3 * k])
        v = np.asarray(st.v[:, k])
        assert np.max(np.abs(v)) > 0.01  # a real depolarisation, not a flat line
        assert np.max(np.abs(v - v_sp)) / np.max(np.abs(v)) < 1e-2
        x_sp = np.interp(t, d[:, 0], d[:, 2 + 3 * k])
        assert np.max(np.abs(np.asarray(st.x1[:, k]) - x_sp)) < 1e-3
