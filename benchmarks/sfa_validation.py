"""``sfa-validation``: the SFA pipeline's design choices measured on a validation split
of the training images (the test sets are never loaded).

Each candidate is one :func:`benchmarks.sfa.experiment` with ``split="validation"``:
the CNN trains on the first 50,000 training images (trained classes only), the first
half of the last 10,000 training images gives the labelled set and the gate
calibration, the second half is scored. Candidates differ from the benchmark settings
(:data:`benchmarks.sfa.LAYER`) by the overrides in :data:`CANDIDATES`; on MNIST all
of them run, on Fashion-MNIST and noisy MNIST the ones in :data:`CHECK`. The selected
candidate (largest validation ``acc_all`` on MNIST among those whose trained classes
lose at most ``max_drop``) is reported beside the benchmark's own settings.
"""

from __future__ import annotations

from typing import Any

from . import sfa as S
from ._context import Context

__all__ = ["CANDIDATES", "CHECK", "run_validation"]

#: name -> overrides of the benchmark settings (the benchmark's own are ``{}`` in "hidden gate").
CANDIDATES: dict[str, dict[str, Any]] = {
    "linear gate": dict(gate_hidden=0, gate_steps=300, gate_batch=None, gate_lr=0.05),
    "hidden gate": {},
    "hidden gate, 40 neurons/class": dict(neurons_per_class=40),
    "no gate (layer routes)": dict(route_by="snn", filter_stream=False),
}
CHECK = ("linear gate", "hidden gate")
_KEYS = (
    "acc_all",
    "acc_trained_classes",
    "acc_new_classes",
    "acc_trained_before",
    "acc_trained_drop",
    "acc_routed_new",
    "gate_routed_new_test",
    "gate_routed_trained_test",
    "acc_all_nosfa",
    "acc_all_cost_sfa",
    "spike_reduction_sfa",
    "neurons_labelled",
    "seconds_total",
)


def run_validation(ctx: Context, max_drop: float = 0.005) -> dict:
    sets = (("mnist", "mnist", 0.0, tuple(CANDIDATES)),)
    sets += (
        ("fashion-mnist", "fashion-mnist", 0.0, CHECK),
        ("noisy-mnist", "mnist", S.NOISE_SIGMA, CHECK),
    )
    runs: dict[str, dict[str, Any]] = {}
    for tag, dataset, noise, names in sets:
        cache: dict = {}
        runs[tag] = {}
        for name in names:
            ctx.log(f"{tag}: {name}")
            out = S.experiment(
                ctx,
                dataset,
                5,
                noise=noise,
                figures=False,
                supervised=False,
                split="validation",
                cnn_cache=cache,
                **CANDIDATES[name],
            )
            runs[tag][name] = {k: out["metrics"][k] for k in _KEYS if k in out["metrics"]}
    ok = {n: r for n, r in runs["mnist"].items() if r["acc_trained_drop"] <= max_drop}
    selected = max(ok or runs["mnist"], key=lambda n: runs["mnist"][n]["acc_all"])
    metrics = {
        "val_runs": runs,
        "selected": selected,
        "benchmark_setting": "hidden gate",
        "max_trained_drop": max_drop,
    }
    config = {"candidates": CANDIDATES, "check": list(CHECK), **S._config(ctx, split="validation")}
    return {"metrics": metrics, "config": config}
