"""``sfa-validation`` keeps candidates already scored at the same effective settings and
reruns the rest; the SFA benchmarks' CNN cache key does not depend on the split."""

import json
import warnings

from benchmarks import sfa as S
from benchmarks import sfa_validation as V
from benchmarks._context import Context
from memjax.data import last_source, load


def _write(tmp_path, ctx, cands, base_over=None, drop=()):
    base = S._config(ctx, split="validation", n_stream=V.VAL_STREAM)
    cfg = {k: v for k, v in {**base, **(base_over or {})}.items() if k not in drop}
    load("mnist", "train", data_dir=ctx.data_dir)
    cfg.update(quick=ctx.quick, seed=ctx.seed, candidates=cands, data_sources=[last_source()])
    runs = {name: {"acc_all": 0.5 + i / 100} for i, name in enumerate(cands)}
    doc = {"config": cfg, "metrics": {"val_runs": runs}, "environment": {"git_commit": "abc"}}
    (tmp_path / "sfa-validation.json").write_text(json.dumps(doc))
    return base


def test_finished_candidates_at_the_same_settings_are_kept(tmp_path):
    ctx = Context(name="sfa-validation", quick=False, out=tmp_path)
    cands = json.loads(json.dumps(V.CANDIDATES))
    name, other = list(cands)[:2]
    cands[other] = {**cands[other], "neurons_per_class": 7}  # scored at other settings
    base = _write(tmp_path, ctx, cands, drop=("cnn_training", "simclr_epochs"))
    kept = V._finished(ctx, base)
    assert name in kept and other not in kept
    assert kept[name]["measured_at_commit"] == "abc"
    assert set(kept) == set(V.CANDIDATES) - {other}


def test_nothing_is_kept_at_another_seed_or_base_setting(tmp_path):
    ctx = Context(name="sfa-validation", quick=False, out=tmp_path)
    base = _write(tmp_path, ctx, V.CANDIDATES, base_over={"n_steps": 99})
    assert V._finished(ctx, base) == {}
    base = _write(tmp_path, ctx, V.CANDIDATES)
    assert set(V._finished(ctx, base)) == set(V.CANDIDATES)
    other_seed = Context(name="sfa-validation", quick=False, out=tmp_path, seed=1)
    assert V._finished(other_seed, base) == {}
    assert V._finished(Context(name="x", quick=False, out=tmp_path / "none"), base) == {}


def test_nothing_is_kept_from_other_data(tmp_path):
    ctx = Context(name="sfa-validation", quick=False, out=tmp_path)
    base = _write(tmp_path, ctx, V.CANDIDATES)
    doc = json.loads((tmp_path / "sfa-validation.json").read_text())
    doc["config"]["data_sources"][0]["n"] += 1  # e.g. the bundled sample instead
    (tmp_path / "sfa-validation.json").write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert V._finished(ctx, base) == {}


def test_selection_keeps_both_budgets_before_accuracy():
    def run(acc, drop=0.001, cut=3.0, cost=0.001):
        return dict(
            acc_all=acc, acc_trained_drop=drop, spike_reduction_sfa=cut, acc_all_cost_sfa=cost
        )

    runs = {
        "best but forgets": run(0.99, drop=0.02),
        "SFA too costly": run(0.97, cost=0.02),
        "SFA cuts too little": run(0.96, cut=1.5),
        "within both": run(0.93),
        "within both, lower": run(0.92),
    }
    assert V.select(runs, 0.005, 2.0, 0.005) == "within both"
    del runs["within both"], runs["within both, lower"]
    assert V.select(runs, 0.005, 2.0, 0.005) == "SFA too costly"  # trained budget only
    assert V.select({"a": run(0.9, drop=0.1), "b": run(0.8, drop=0.2)}, 0.005, 2.0, 0.005) == "a"


def test_the_mnist_benchmarks_run_the_benchmark_setting():
    ctx = Context(name="sfa-continual-mnist", quick=False, out=".")
    chosen = S._config(ctx, **V.CANDIDATES[V.BENCHMARK_SETTING])
    assert S._config(ctx, **S.MNIST) == chosen
