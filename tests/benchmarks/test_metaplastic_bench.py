"""The metaplastic benchmarks' bookkeeping on a tiny network: the validation benchmark
never reads a test set and selects the m with the largest smallest margin; the two-task
benchmark's seed statistics are those of its runs."""

import json

import numpy as np
import pytest

from benchmarks import metaplastic as mb
from benchmarks import metaplastic_pmnist as mp
from benchmarks._context import Context
from benchmarks._json import to_json


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(mb.QNN, "sizes", (784, 32, 10))
    monkeypatch.setitem(
        mb.SETTINGS["validation"],
        "quick",
        mb.Validation(n_train=300, n_val=100, epochs=(1, 2), ms=(4.0, 5.0), tail=2),
    )
    monkeypatch.setitem(
        mb.SETTINGS["mnist_fmnist"],
        "quick",
        mb.TwoTasks(n_train=300, n_test=100, epochs=(1, 1), ewc_lambda=10.0, extra_seeds=(1,)),
    )
    splits = []
    real_load = mb.load

    def load(name, split, **kw):
        splits.append((name, split))
        return real_load(name, split, **kw)

    monkeypatch.setattr(mb, "load", load)
    return splits


def test_validation_reads_no_test_set_and_selects_max_min_margin(tiny, tmp_path):
    ctx = Context(name="metaplastic-validation", quick=True, out=tmp_path)
    result = mb.run_validation(ctx)
    assert {s for _, s in tiny} == {"train"}
    m = result["metrics"]
    alone = m["val_acc_alone"]
    for key, acc in m["val_acc_vs_m"].items():
        mg = m["val_margins_vs_m"][key]
        np.testing.assert_allclose(
            [
                mg["mnist_ge_0.97"],
                mg["fmnist_ge_0.86"],
                mg["mnist_within_1pt"],
                mg["fmnist_within_1pt"],
            ],
            [acc[0] - 0.97, acc[1] - 0.86, acc[0] - alone[0] + 0.01, acc[1] - alone[1] + 0.01],
            atol=1e-12,
        )
    best = max(m["val_margins_vs_m"], key=lambda k: min(m["val_margins_vs_m"][k].values()))
    assert m["selected_m"] == float(best)
    assert set(m["val_acc_vs_m"]) == {"4", "5"}
    # The accuracies are means over the last `tail` (2) epochs of each run's curve.
    for key, acc in m["val_acc_vs_m"].items():
        np.testing.assert_allclose(acc, np.mean(m["val_curves"]["m"][key][-2:], axis=0))
        assert m["val_final_epoch_acc_vs_m"][key] == m["val_curves"]["m"][key][-1]
    for j, curve in enumerate(m["val_curves"]["alone"]):
        np.testing.assert_allclose(alone[j], np.mean(np.asarray(curve)[-2:, 0]))
    json.dumps(to_json(result))
    assert (tmp_path / "metaplastic-validation_scan.png").stat().st_size > 0


def test_mnist_fmnist_seed_statistics(tiny, tmp_path):
    ctx = Context(name="metaplastic-mnist-fmnist", quick=True, out=tmp_path)
    m = mb.run_mnist_fmnist(ctx)["metrics"]
    seeds = m["over_seeds"]
    assert seeds["seeds"] == [0, 1]
    assert seeds["mnist_acc_after_task2"][0] == m["mnist_acc_after_task2"]
    assert seeds["fmnist_acc_nonsequential"][0] == m["fmnist_acc_nonsequential"]
    for k, v in seeds["mean"].items():
        np.testing.assert_allclose(v, np.mean(seeds[k]))
        np.testing.assert_allclose(seeds["std"][k], np.std(seeds[k], ddof=1))
    # The seeds differ in init and batch order, so their results differ.
    assert (
        seeds["mnist_acc_after_task2"][0] != seeds["mnist_acc_after_task2"][1]
        or seeds["fmnist_acc"][0] != seeds["fmnist_acc"][1]
    )
    for layer in ("layer0", "layer1"):
        assert 0.0 <= m["settled_fraction_after_task1"]["metaplastic"][layer] <= 1.0


def test_pmnist_m_values_as_separate_invocations(monkeypatch, tmp_path):
    """Each m is a part file; a later invocation reuses finished parts with the same
    settings, retrains none of them, and reports every m found; other settings
    (here more epochs) start a separate set."""
    monkeypatch.setitem(
        mb.SETTINGS["pmnist"],
        "quick",
        mb.PermutedMNIST(n_train=200, n_test=100, epochs=1, n_tasks=2, hidden=(16,), ms=(0.0,)),
    )
    trained = []
    real_one = mp._pmnist_one

    def one(ctx, s, tasks, m, ckpt):
        trained.append((m, s["epochs"]))
        return real_one(ctx, s, tasks, m, ckpt)

    monkeypatch.setattr(mp, "_pmnist_one", one)

    def run(**over):
        ctx = Context(name="metaplastic-pmnist", quick=True, out=tmp_path, overrides=over)
        return mp.run_pmnist(ctx)

    first = run()
    assert list(first["metrics"]["mean_final_acc"]) == ["0"]
    both = run(ms="0,1.35")
    assert trained == [(0.0, 1), (1.35, 1)]  # m = 0 was reused
    metrics = both["metrics"]
    assert list(metrics["mean_final_acc"]) == ["0", "1.35"]
    assert metrics["acc_matrix"]["0"] == first["metrics"]["acc_matrix"]["0"]
    for k, mat in metrics["acc_matrix"].items():
        assert np.shape(mat) == (2, 2)
        np.testing.assert_allclose(metrics["mean_final_acc"][k], np.mean(mat[-1]))
        assert metrics["acc_own_task"][k] == [mat[0][0], mat[1][1]]
    assert both["config"]["ms"] == [0.0, 1.35]
    for k in ("0", "1.35"):
        bb = metrics["final_acc_test_batch_bn"][k]
        assert len(bb) == 2 and all(0.0 <= a <= 1.0 for a in bb)
        np.testing.assert_allclose(metrics["mean_final_acc_test_batch_bn"][k], np.mean(bb))
    assert not list((tmp_path / "metaplastic-pmnist.parts").glob("checkpoint_*"))
    other = run(ms="1.35", epochs="2")
    assert list(other["metrics"]["mean_final_acc"]) == ["1.35"]
    assert trained[-1] == (1.35, 2)
    # The epochs=2 part has its own file: the epochs=1 parts stay and are reported apart.
    parts = tmp_path / "metaplastic-pmnist.parts"
    assert sorted(p.name for p in parts.glob("m*.json")) == [
        "m0.json",
        "m1.35.json",
        "m1.35_epochs2.json",
    ]
    assert sorted(other["metrics"]["other_settings"]) == ["m0", "m1.35"]
    again = run(ms="0,1.35")
    assert trained[-1] == (1.35, 2)  # nothing retrained
    assert again["metrics"]["acc_matrix"] == metrics["acc_matrix"]
    o = again["metrics"]["other_settings"]["m1.35_epochs2"]
    assert o["m"] == 1.35 and o["settings_differ"] == {"epochs": 2}
    mat = other["metrics"]["acc_matrix"]["1.35"]
    assert o["acc_matrix"] == mat
    np.testing.assert_allclose(o["mean_final_acc"], np.mean(mat[-1]))
    np.testing.assert_allclose(
        o["mean_final_acc_test_batch_bn"], other["metrics"]["mean_final_acc_test_batch_bn"]["1.35"]
    )
    # A part at settings that are no longer the defaults is kept under a name saying
    # how it differs, reported apart, and m is run again at the current settings. A
    # part written before a setting existed counts as run with the behaviour before it
    # (BN gains 1, level_index rounding near boundaries), not at today's default.
    p0 = parts / "m0.json"
    rec = json.loads(p0.read_text())
    assert rec["settings"]["bn_scale_init"] == "uniform"
    assert rec["settings"]["level_index"] == "exact"
    del rec["settings"]["bn_scale_init"], rec["settings"]["level_index"]
    p0.write_text(json.dumps(rec))
    again = run(ms="0")
    assert trained[-1] == (0.0, 1)  # retrained at the current settings
    kept = parts / "m0_bn_scale_initones_level_indexrounded.json"
    assert json.loads(kept.read_text()) == rec  # unchanged, renamed
    assert json.loads(p0.read_text())["settings"]["level_index"] == "exact"
    o = again["metrics"]["other_settings"]["m0_bn_scale_initones_level_indexrounded"]
    assert o["settings_differ"] == {"bn_scale_init": "ones", "level_index": "rounded"}
    assert o["acc_matrix"] == metrics["acc_matrix"]["0"]
    assert list(again["metrics"]["mean_final_acc"]) == ["0", "1.35"]
    n = len(trained)
    run(ms="0")
    assert len(trained) == n  # the new part is reused
    # The same again: the second kept part does not replace the first.
    p0.write_text(json.dumps(rec))
    run(ms="0")
    assert json.loads(kept.read_text()) == rec
    assert (parts / "m0_bn_scale_initones_level_indexrounded_1.json").exists()
