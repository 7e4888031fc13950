"""benchmarks.memprop_spice and benchmarks.device_fit: registration, skips, pieces."""

import numpy as np


def test_registered():
    from benchmarks._registry import REGISTRY

    assert REGISTRY["memprop-spice"][:2] == ("benchmarks.memprop_spice", "run")
    assert REGISTRY["device-fit"][:2] == ("benchmarks.device_fit", "run")


def test_memprop_spice_skips_without_ngspice(tmp_path, monkeypatch):
    from benchmarks import memprop_spice
    from benchmarks._context import Context

    monkeypatch.setattr(memprop_spice.shutil, "which", lambda name: None)
    res = memprop_spice.run(Context(name="memprop-spice", quick=True, out=tmp_path))
    assert res["metrics"] == {"skipped": "ngspice not found"}


def test_voltage_error_is_relative_to_peak_to_peak():
    from benchmarks.memprop_spice import _verr

    sp = np.zeros((2, 5, 3))
    sp[0, :, 0] = np.linspace(0, 0.1, 5)  # image 0: ptp 0.1
    sp[1, :, 1] = np.linspace(0, 0.2, 5)  # image 1: ptp 0.2
    mj = sp.copy()
    mj[0, 2, 2] += 0.001  # 1 % of image 0's ptp
    mj[1, 4, 0] += 0.001  # 0.5 % of image 1's ptp
    assert np.isclose(_verr(mj, sp), 0.01)


def test_device_fit_bounds_keep_the_sign():
    from benchmarks.device_fit import _bounds
    from memjax.devices import VTEAMMemristor

    b = _bounds(VTEAMMemristor(), ("k_on", "R_on"))
    assert b["k_on"] == (-100.0, -1.0) and b["R_on"] == (5.0, 500.0)
