"""``python -m benchmarks run NAME --set KEY=VALUE``: parsed by the type of each setting,
unknown keys and benchmarks without settings rejected before anything runs, the
overrides recorded in the JSON config."""

import dataclasses
import json
import sys
import types

import pytest

from benchmarks import __main__ as runner
from benchmarks._context import Context


@dataclasses.dataclass(frozen=True)
class S:
    epochs: int = 3
    lr: float = 0.01
    ms: tuple[float, ...] = (0.0, 1.0)
    sizes: tuple[int, ...] = (10, 2)
    n_train: int | None = None
    flag: bool = False
    name: str = "a"


def ctx(**over):
    return Context(name="b", quick=False, out=".", overrides=over)


def test_values_parsed_by_field_type():
    s = ctx(
        epochs="20", lr="5e-3", ms="1.35", sizes="784,64,10", n_train="500", flag="true", name="x"
    ).settings(S())
    assert s == S(20, 0.005, (1.35,), (784, 64, 10), 500, True, "x")
    assert ctx(n_train="none").settings(S(n_train=5)).n_train is None
    assert ctx().settings(S()) == S()


@pytest.mark.parametrize(
    "over, match",
    [
        ({"epoch": "2"}, "unknown --set key 'epoch'; settable: epochs, flag, lr, ms"),
        ({"epochs": "2.5"}, "--set epochs=2.5: expected an integer"),
        ({"lr": "fast"}, "--set lr=fast: expected a number"),
        ({"flag": "yes"}, "expected true or false"),
        ({"ms": ","}, "comma-separated list"),
        ({"epochs": "none"}, "expected an integer"),
    ],
)
def test_bad_values_name_the_key(over, match):
    with pytest.raises(SystemExit, match=match):
        ctx(**over).settings(S())


@pytest.fixture
def fake(monkeypatch):
    mod = types.ModuleType("_memjax_fake_settable")
    mod.seen = []

    def run(c):
        mod.seen.append(c.settings(S()))
        return {"metrics": {"epochs": c.settings(S()).epochs}}

    mod.run = run
    mod.SETTINGS = {"s": {"full": S(), "quick": S(epochs=1)}}
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(runner.REGISTRY, "fake", (mod.__name__, "run", "settable"))
    monkeypatch.setattr(runner, "SETTABLE", {"fake": (mod.__name__, "s")})
    monkeypatch.setattr(runner, "environment", lambda: {})
    return mod


def test_cli_set_reaches_the_benchmark_and_the_record(fake, tmp_path):
    runner.main(["run", "fake", "--set", "epochs=7", "--set", "ms=0,2", "--out", str(tmp_path)])
    assert fake.seen == [S(epochs=7, ms=(0.0, 2.0))]
    rec = json.loads((tmp_path / "fake.json").read_text())
    assert rec["metrics"] == {"epochs": 7}
    assert rec["config"]["overrides"] == {"epochs": "7", "ms": "0,2"}


def test_set_refused_where_not_supported_before_running(fake, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "SETTABLE", {})
    with pytest.raises(SystemExit, match="--set is not supported by 'fake'"):
        runner.main(["run", "fake", "--set", "epochs=7", "--out", str(tmp_path)])
    assert fake.seen == []
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        runner.main(["run", "fake", "--set", "epochs", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    "item, match",
    [("epoch=2", "unknown --set key 'epoch'"), ("lr=fast", "--set lr=fast: expected a number")],
)
def test_bad_key_or_value_refused_by_the_parser_before_running(fake, tmp_path, item, match):
    with pytest.raises(SystemExit, match=match):
        runner.main(["run", "fake", "--set", item, "--out", str(tmp_path)])
    assert fake.seen == []
    assert not (tmp_path / "fake.json").exists()


def test_every_settable_benchmark_names_its_settings():
    from benchmarks._registry import REGISTRY, SETTABLE

    for name in SETTABLE:
        assert name in REGISTRY
        with pytest.raises(SystemExit, match=f"{name}: unknown --set key 'no_such_key'"):
            runner.check_settable([name], {"no_such_key": "1"})


def test_settings_class_check_refuses_a_value_at_parse_time():
    """A value the settings class itself rejects (``__post_init__``) is refused by the
    parser with its message."""
    with pytest.raises(SystemExit, match="bn_scale_init=normal: bn_scale_init must be"):
        runner.check_settable(["metaplastic-pmnist"], {"bn_scale_init": "normal"})
    runner.check_settable(["metaplastic-pmnist"], {"bn_scale_init": "uniform"})
