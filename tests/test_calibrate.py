"""memjax.calibrate: readers, weights, parameter recovery, bounds, uncertainty."""

import equinox as eqx
import jax
import numpy as np
import pytest

from memjax.calibrate import IVRecord, fit_device, read_iv, switching_weights
from memjax.devices import MMSSMemristor, simulate
from memjax.waveforms import Sine


def _record(dev, f=1e3, amp=0.5, n=200, noise=0.0, seed=0):
    with jax.enable_x64(True):
        tr = simulate(dev, Sine(amp, f), dt=1 / (f * n), n_steps=n)
    i = np.asarray(tr.i)
    i = i + noise * np.max(np.abs(i)) * np.random.default_rng(seed).standard_normal(i.shape)
    return IVRecord(np.asarray(tr.t), np.asarray(tr.v), i, name=f"{f:g} Hz")


def test_read_csv_and_npz(tmp_path):
    t = np.linspace(0, 1e-3, 11)
    v, i = np.sin(t * 1e3), 1e-3 * np.sin(t * 1e3)
    csv = tmp_path / "m.csv"
    np.savetxt(csv, np.c_[t, v, i], delimiter=",", header="time,volt,amp", comments="")
    rec = read_iv(csv, t="time", v="volt", i="amp")
    assert np.allclose(rec.i, i) and rec.name == "m" and rec.dt == pytest.approx(1e-4)
    np.savez(tmp_path / "m.npz", t=t, v=v, i=i)
    assert np.allclose(read_iv(tmp_path / "m.npz").v, v)
    with pytest.raises(
        ValueError, match="no column 'i' for i; columns: \\['amp', 'time', 'volt'\\]"
    ):
        read_iv(csv, t="time", v="volt")
    with pytest.raises(FileNotFoundError):
        read_iv(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError, match="unsupported suffix"):
        read_iv(tmp_path / "x.xlsx")


def test_record_checks():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="uniformly spaced"):
        IVRecord(t, t, t + 1)
    with pytest.raises(ValueError, match="one length"):
        IVRecord(t, t[:3], t)
    with pytest.raises(ValueError, match="zero everywhere"):
        IVRecord(np.arange(4.0), np.ones(4), np.zeros(4))


def test_switching_weights_emphasise_switching():
    rec = _record(MMSSMemristor())
    w = switching_weights(rec, 4.0)
    assert w.mean() == pytest.approx(1.0) and w.max() > 2.0
    assert np.allclose(switching_weights(rec, 0.0), 1.0)


def test_recovers_mmss_parameters():
    # 1 % current noise, a start 30 % off: R_on, R_off, tau back within 2 %, each
    # inside its reported 3-sigma band.
    true = MMSSMemristor()
    recs = [_record(true, f, noise=0.01, seed=k) for k, f in enumerate((1e3, 2e3))]
    names = ("R_on", "R_off", "tau")
    start = eqx.tree_at(lambda d: [getattr(d, n) for n in names], true, [650.0, 1100.0, 1.3e-4])
    res = fit_device(start, recs, names, key=jax.random.key(0), n_starts=3, steps=150)
    for n in names:
        p = float(getattr(true, n))
        assert abs(res.params[n] / p - 1) < 0.02, (n, res.params[n])
        assert abs(res.params[n] - p) < 3 * res.std[n] + 1e-3 * p
        assert res.identifiable[n]
    assert res.rms < 0.02 and res.start_losses.shape == (3,)


def test_bounds_are_respected():
    rec = _record(MMSSMemristor())
    res = fit_device(
        MMSSMemristor(R_on=700.0), rec, {"R_on": (600.0, 900.0)}, n_starts=2, steps=50, lm_steps=5
    )
    assert 600.0 <= res.params["R_on"] <= 900.0
    assert res.params["R_on"] == pytest.approx(600.0, rel=1e-3)  # truth (500) lies below


def test_bad_arguments():
    rec = _record(MMSSMemristor())
    with pytest.raises(ValueError, match="no parameter 'R_x'"):
        fit_device(MMSSMemristor(), rec, ["R_x"])
    with pytest.raises(ValueError, match="lo < hi"):
        fit_device(MMSSMemristor(), rec, {"R_on": (10.0, 1.0)})
    with pytest.raises(TypeError, match="IVRecord"):
        fit_device(MMSSMemristor(), [np.zeros(3)], ["R_on"])
