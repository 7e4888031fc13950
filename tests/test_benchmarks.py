"""Smoke tests of the benchmark runner and the ``devices`` benchmark (tiny setting)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_list_names_the_benchmarks():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert "devices" in names and "spice" in names


def test_registry_entries_resolve():
    """Every registered benchmark names an importable module and a function in it."""
    import importlib

    from benchmarks._registry import REGISTRY

    for name, (module, func, desc) in REGISTRY.items():
        assert callable(getattr(importlib.import_module(module), func)), name
        assert desc


def test_devices_tiny(tmp_path):
    from benchmarks import devices
    from benchmarks._context import Context
    from benchmarks._json import to_json

    ctx = Context(name="devices", quick=True, out=tmp_path)
    result = devices.run(ctx, tiny=True)
    m = result["metrics"]
    assert m["models"] == ["HP (Joglekar)"]
    assert m["errors"] == {}
    # The HP model gives pinched, shrinking hysteresis loops.
    assert m["pinched_hysteresis"] is True
    for name in m["models"]:
        p = m["pinched_hysteresis_by_model"][name]
        assert p["zero_crossing_residual_max"] < devices.ZERO_TOL
        a = p["lobe_area"]
        assert a["1f0"] > a["2f0"] > a["4f0"] > 0
    # Even at the tiny setting's coarser step the scan path is close to diffrax, and
    # reverse-mode gradients agree with central differences.
    assert m["scan_vs_diffrax_max_rel_err"] < 1e-3
    assert m["grad_fd_max_rel_err"] < 1e-5
    for name in m["models"]:
        rate = m["device_steps_per_second"][name]
        assert math.isfinite(rate) and rate > 0
        assert m["throughput_details"][name]["100"]["finite"]
    # The record is JSON-serialisable, and the figures were written.
    json.dumps(to_json(result))
    for fig in ctx.figures:
        assert (tmp_path / fig).stat().st_size > 0
    assert {"devices_iv_loops.png", "devices_scaling.png"} <= set(ctx.figures)


def test_spice_skips_without_ngspice(tmp_path, monkeypatch):
    from benchmarks import spice
    from benchmarks._context import Context

    monkeypatch.setattr(spice.shutil, "which", lambda name: None)
    result = spice.run(Context(name="spice", quick=True, out=tmp_path))
    assert result["metrics"] == {"skipped": "ngspice not found"}


@pytest.mark.skipif(
    subprocess.run(["which", "ngspice"], capture_output=True).returncode != 0,
    reason="ngspice not installed",
)
def test_spice_netlist_matches_memjax(tmp_path):
    """One HP device through the library's subcircuit agrees with memjax."""
    import jax
    import numpy as np

    from benchmarks import spice
    from memjax.devices import simulate
    from memjax.waveforms import Sine

    case = spice.SPICE_CASES["hp"]
    with jax.enable_x64(True):
        dev = case.build()
        sp = spice.run_ngspice(spice._netlist(case, dev, 1, True), workdir=tmp_path, stem="hp")
        T = 1.0 / case.frequency
        tr = simulate(
            dev,
            Sine(case.amplitude, case.frequency),
            dt=T / spice.MEMJAX_STEPS_PER_PERIOD,
            n_steps=spice.PERIODS * spice.MEMJAX_STEPS_PER_PERIOD + 1,
        )
    err, _ = spice._interp_err(np.asarray(tr.t), np.asarray(tr.i), sp.t, sp["i(vs0)"])
    assert np.max(err) / np.max(np.abs(tr.i)) < 1e-5
