"""The benchmark runner: names checked before anything runs, strict JSON (non-finite
numbers as null with the reason), atomic writing, metrics on stdout."""

import json
import os
import sys
import types

import numpy as np
import pytest

from benchmarks import __main__ as runner
from benchmarks import _json


def _strict_loads(text):
    def bad(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


@pytest.fixture
def fake(monkeypatch):
    """A registered benchmark ``fake`` whose metrics are set by the test; ``calls``
    counts its runs."""
    mod = types.ModuleType("_memjax_fake_bench")
    mod.calls = []
    mod.metrics = {"acc": 0.5}

    def run(ctx):
        mod.calls.append(ctx.name)
        return {"metrics": mod.metrics, "config": {"n": np.int64(3)}}

    mod.run = run
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(runner.REGISTRY, "fake", (mod.__name__, "run", "a test benchmark"))
    monkeypatch.setattr(runner, "environment", lambda: {})
    return mod


def test_unknown_name_stops_before_anything_runs(fake, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        runner.main(["run", "fake", "no-such-bench", "--out", str(tmp_path)])
    assert fake.calls == []
    msg = str(e.value)
    assert "'no-such-bench'" in msg and "fake" in msg and "precision" in msg
    assert list(tmp_path.iterdir()) == []


def test_non_finite_metrics_are_null_with_reason(fake, tmp_path):
    fake.metrics = {
        "acc": float("nan"),
        "curve": [1.0, np.float32(np.inf)],
        "arr": np.array([-np.inf, 2.0]),
    }
    runner.main(["run", "fake", "--out", str(tmp_path)])
    rec = _strict_loads((tmp_path / "fake.json").read_text())
    assert rec["metrics"] == {"acc": None, "curve": [1.0, None], "arr": [None, 2.0]}
    assert rec["nulls"] == {
        "metrics.acc": "nan",
        "metrics.curve[1]": "inf",
        "metrics.arr[0]": "-inf",
    }
    assert rec["config"]["n"] == 3


def test_failed_write_keeps_old_file_and_prints_metrics(fake, tmp_path, monkeypatch, capsys):
    path = tmp_path / "fake.json"
    path.write_text('{"old": true}\n')

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        runner.main(["run", "fake", "--out", str(tmp_path)])
    assert path.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.json"]  # no temp file left
    out = capsys.readouterr().out
    assert _strict_loads(out) == {"name": "fake", "metrics": {"acc": 0.5}}


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("x" * 1000)
    _json.write_atomic(path, {"a": [1, 2]})
    assert _strict_loads(path.read_text()) == {"a": [1, 2]}
    with pytest.raises(ValueError):
        _json.write_atomic(path, {"a": float("nan")})
    assert _strict_loads(path.read_text()) == {"a": [1, 2]}
