"""Metaplastic binarized / quantized networks: continual learning without forgetting.

Four benchmarks (see docs/metaplasticity.md):

- ``metaplastic-mnist-fmnist`` (:func:`run_mnist_fmnist`): a quantized two-layer
  perceptron learns MNIST then Fashion-MNIST with metaplasticity (m > 0), without it
  (m = 0, plain Adam) and with EWC; non-sequential baselines train each task alone.
  Endurance: quantisation-level changes per weight (= device programming events) over
  the stream, and program-and-verify pulses when the cells are written after each epoch.
- ``metaplastic-validation`` (:func:`run_validation`): the choice of ``m`` for the first
  one, on a validation split of the training sets (the test sets are not read).
- ``metaplastic-pmnist`` (module `benchmarks.metaplastic_pmnist`; its settings are
  here): binarized 784-1024-1024-10 network on six permuted-MNIST tasks, mean final
  accuracy for m in {0, 0.5, 1, 1.35, 2}.
- ``metaplastic-devices`` (:func:`run_devices`): final accuracies against the number of
  levels, programming noise and stuck-at faults of the RRAM cells storing the weights;
  endurance with and without metaplasticity.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memjax.data import load
from memjax.devices.rram import MultiLevelRRAM
from memjax.learning.metaplastic import meta_factor
from memjax.models.metaplastic import (
    BN_SCALE_INITS,
    MetaplasticMLP,
    evaluate_task,
    memory_bits,
    memory_reduction,
    program_levels,
    read_device_weights,
)
from memjax.recipes import Task, train_continual

# The quantized perceptron of the MNIST -> Fashion-MNIST stream: 3,840 hidden units with
# 4-level (2-bit) cells and hidden weights stored at 12 bits (fixed point on [-2, 2)), the
# memory reduction against the reference BNN of docs/metaplasticity.md ("Memory").
# Real-valued hardtanh hidden activations, per-task affine BN, Adam's state carried across
# the task boundary, a consolidation warm-up (m = 0 for the first epoch of the stream),
# the readout layer protected twice as strongly as the hidden layer (m_scale = (1, 2)).
# Consolidation depends on how much a weight matters: hidden weights start next to a
# level boundary (init="boundary": every synapse unconsolidated) and Adam's eps (1e-5) is
# of the order of the first layer's gradient rms, so weights with little gradient
# (pixels MNIST hardly uses) neither move nor settle into their level, and stay free for
# Fashion-MNIST. m is the value metaplastic-validation selects (validation split of the
# training sets; the test sets are not read).
QNN = dict(
    sizes=(784, 3840, 10),
    n_levels=4,
    m=3.5,
    m_scale=(1.0, 2.0),
    warmup_epochs=1,
    hidden_bits=12,
    hidden_range=2.0,
    logit_scale=1.0,
    activation="hardtanh",
    bn_affine=True,
    reset_optimizer=False,
    init="boundary",
    adam_eps=1e-5,
)


BATCH_SIZE = 100  # train_continual's default, as the authors'


def _train_kwargs(cfg=QNN) -> dict[str, Any]:
    """The `train_continual` settings of every QNN run (m = 0 runs included: ``m_scale``
    times 0 is 0, plain Adam)."""
    return dict(
        batch_size=BATCH_SIZE,
        reset_optimizer=cfg["reset_optimizer"],
        hidden_bits=cfg["hidden_bits"],
        hidden_range=cfg["hidden_range"],
        m_scale=cfg["m_scale"],
        adam_eps=cfg["adam_eps"],
    )


def _warmup_steps(tasks, cfg=QNN) -> int:
    """Updates in ``cfg["warmup_epochs"]`` epochs of the stream's first task."""
    return cfg["warmup_epochs"] * (len(tasks[0].x_train) // BATCH_SIZE)


def m_schedule(m: float, warmup_steps: int):
    """``m`` after ``warmup_steps`` updates, 0 before (the consolidation warm-up)."""
    if m == 0 or warmup_steps == 0:
        return m
    return optax.join_schedules(
        [optax.constant_schedule(0.0), optax.constant_schedule(m)], [warmup_steps]
    )


@dataclasses.dataclass(frozen=True)
class TwoTasks:
    """metaplastic-mnist-fmnist. ``n_train``/``n_test`` None: every image. ``epochs``:
    on MNIST, then on Fashion-MNIST. ``extra_seeds``: offsets from ``--seed`` of the
    repeated metaplastic and non-sequential runs."""

    n_train: int | None = None
    n_test: int | None = None
    epochs: tuple[int, int] = (6, 10)
    ewc_lambda: float = 1000.0
    extra_seeds: tuple[int, ...] = (1, 2)


@dataclasses.dataclass(frozen=True)
class Validation:
    """metaplastic-validation: the last ``n_val`` training images of each set held out,
    the same epochs as metaplastic-mnist-fmnist, the scan over ``ms``. Accuracies are
    averaged over the last ``tail`` epochs of each run: one epoch's accuracy of a network
    trained on one task alone varies from epoch to epoch by more than the margins
    compared."""

    n_train: int | None = None
    n_val: int = 5000
    epochs: tuple[int, int] = (6, 10)
    ms: tuple[float, ...] = (3.0, 3.5, 4.0, 5.0)
    tail: int = 3


@dataclasses.dataclass(frozen=True)
class PermutedMNIST:
    """metaplastic-pmnist. Per-task affine BN (a learned gain and offset per task, as the
    authors' affine batch norm saved per task). ``weight_decay``: L2 added to the hidden
    weights' gradient before Adam (the authors' ``--decay``; its first moment then
    includes it, so the metaplastic test sees it). ``init_scale``: hidden weights
    ``U(-a, a)`` (None: ``1 / sqrt(n_in)``). ``bn_scale_init``: BN gains start at
    ``U(0, 1)`` (``"uniform"``, the authors' PyTorch 1.1 batch norm) or 1 (``"ones"``,
    newer PyTorch)."""

    n_train: int | None = None
    n_test: int | None = None
    epochs: int = 20
    n_tasks: int = 6
    hidden: tuple[int, ...] = (1024, 1024)
    ms: tuple[float, ...] = (0.0, 0.5, 1.0, 1.35, 2.0)
    learning_rate: float = 0.005
    weight_decay: float = 1e-7
    init_scale: float | None = 0.05
    bn_scale_init: str = "uniform"

    def __post_init__(self):
        if self.bn_scale_init not in BN_SCALE_INITS:
            raise ValueError(
                f"bn_scale_init must be one of {BN_SCALE_INITS}; got {self.bn_scale_init!r}"
            )


@dataclasses.dataclass(frozen=True)
class Devices:
    """metaplastic-devices: the scans over levels, write noise and stuck fractions."""

    n_train: int | None = None
    n_test: int | None = None
    epochs: int = 6
    levels: tuple[int, ...] = (2, 3, 4, 5, 8, 16)
    write_sigmas: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1)
    p_stuck: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05)


def _modes(full, **quick) -> dict:
    return {"full": full, "quick": dataclasses.replace(full, **quick)}


#: Per benchmark, the full settings and the quick ones (--quick: fewer images and epochs).
SETTINGS = {
    "mnist_fmnist": _modes(TwoTasks(), n_train=4000, n_test=1000, epochs=(2, 2), extra_seeds=()),
    "validation": _modes(
        Validation(), n_train=4000, n_val=1000, epochs=(2, 2), ms=(3.5, 4.0), tail=2
    ),
    "pmnist": _modes(
        PermutedMNIST(), n_train=2000, n_test=500, epochs=1, hidden=(256, 256), learning_rate=0.02
    ),
    "devices": _modes(
        Devices(),
        n_train=3000,
        n_test=500,
        epochs=1,
        levels=(2, 3, 5, 16),
        write_sigmas=(0.0, 0.02, 0.1),
        p_stuck=(0.0, 0.01, 0.05),
    ),
}


def _settings(ctx, name):
    """The benchmark's settings (full or quick) with the runner's ``--set`` overrides."""
    return dataclasses.asdict(ctx.settings(SETTINGS[name]["quick" if ctx.quick else "full"]))


def _load_task(ctx, name, n_train, n_test, perm=None, label=None, n_val=None):
    """A task on the training set and the first ``n_test`` test images, or, with
    ``n_val``, on a validation split: the last ``n_val`` training images stand in for
    the test set and the training images are taken from the rest (the test set is not
    read)."""
    x, y = load(name, "train", data_dir=ctx.data_dir)
    if n_val is not None:
        x, y, xt, yt = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    else:
        xt, yt = load(name, "test", data_dir=ctx.data_dir)
    n_train = len(x) if n_train is None else n_train
    n_test = len(xt) if n_test is None else n_test
    return Task(label or name, x[:n_train], y[:n_train], xt[:n_test], yt[:n_test], perm)


def _qnn(key, n_tasks, base=QNN, **over):
    cfg = dict(base, **over)
    return MetaplasticMLP(
        cfg["sizes"],
        cfg["n_levels"],
        n_tasks=n_tasks,
        logit_scale=cfg["logit_scale"],
        activation=cfg["activation"],
        bn_affine=cfg["bn_affine"],
        init=cfg["init"],
        key=key,
    )


def _settled_fraction(model, cfg=QNN) -> dict[str, float]:
    """Per layer, the fraction of hidden weights that have settled into their level: the
    meta factor (at the benchmark's m and m_scale) of a step toward their nearest level
    boundary is below 1/2."""
    scales = cfg["m_scale"] or (1.0,) * len(model.weights)
    out = {}
    for i, (w, c) in enumerate(zip(model.weights, scales)):
        one = jnp.ones_like(w)
        f = jnp.minimum(
            meta_factor(w, one, c * cfg["m"], model.n_levels, model.w_max),
            meta_factor(w, -one, c * cfg["m"], model.n_levels, model.w_max),
        )
        out[f"layer{i}"] = float(jnp.mean(f < 0.5))
    return out


def _count_stats(counts):
    c = np.concatenate([np.asarray(a).ravel() for a in counts])
    return {"mean": float(c.mean()), "max": int(c.max()), "fraction_never": float(np.mean(c == 0))}


class _DeviceTracker:
    """Writes the cells after every epoch, only where the weight's level changed since
    they were last written; accumulates program-and-verify pulses per cell."""

    def __init__(self, device, key):
        self.device, self.key = device, key
        self.states, self.last = None, None

    def __call__(self, model, task, epoch):
        levels = model.levels()
        if self.states is None:
            self.states = [
                self.device.sample_devices(jax.random.fold_in(self.key, i), l.shape)
                for i, l in enumerate(levels)
            ]
            self.last = [None] * len(levels)
        for i, lv in enumerate(levels):
            k = jax.random.fold_in(self.key, 1000 * (task + 1) + 10 * epoch + i + 7)
            self.states[i], _ = program_levels(
                self.device, k, self.states[i], lv, self.last[i], model.n_levels
            )
            self.last[i] = lv

    def pulses(self):
        p = np.concatenate([np.asarray(s.pulses).ravel() for s in self.states])
        return {"mean": float(p.mean()), "max": int(p.max())}

    def accuracy(self, model, tasks, key):
        ws = [
            read_device_weights(self.device, jax.random.fold_in(key, i), s, model.w_max)
            for i, s in enumerate(self.states)
        ]
        return [
            evaluate_task(model, t.x_test, t.y_test, j, weights=ws, preprocess=t.inputs)
            for j, t in enumerate(tasks)
        ]


def _plot_curves(ctx, runs, tasks, stem, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (label, hist) in zip(axes, runs.items()):
        acc = np.array(hist["acc"], dtype=float)
        ep = np.arange(1, len(acc) + 1)
        for j, t in enumerate(tasks):
            ax.plot(ep, acc[:, j], marker="o", ms=3, label=t.name)
        switches = np.flatnonzero(np.diff(hist["task"])) + 1.5
        for s in switches:
            ax.axvline(s, color="grey", ls=":")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    ctx.save_figure(fig, stem)


# --------------------------------------------------------------------------------------


def _mnist_fmnist_metrics(s, runs, trackers, alone, seeds, seconds, key) -> dict[str, Any]:
    """metaplastic-mnist-fmnist's metrics from its runs (in the order metaplastic,
    m = 0, EWC, ...), their device trackers and the over-seeds statistics."""
    meta, plain, ewc = (runs[k] for k in list(runs)[:3])
    dev_acc = {
        label: tr.accuracy(model, tl, jax.random.fold_in(key, 99))
        for label, (tr, model, tl) in trackers.items()
    }
    return {
        "mnist_acc_after_task2": meta["final_acc"][0],
        "fmnist_acc": meta["final_acc"][1],
        "baseline_mnist_acc_after_task2": plain["final_acc"][0],
        "baseline_fmnist_acc": plain["final_acc"][1],
        "ewc_mnist_acc_after_task2": ewc["final_acc"][0],
        "ewc_fmnist_acc": ewc["final_acc"][1],
        "mnist_acc_nonsequential": alone[0]["final_acc"][0],
        "fmnist_acc_nonsequential": alone[1]["final_acc"][0],
        "target_margins": _margins(meta["final_acc"], [a["final_acc"][0] for a in alone]),
        "over_seeds": seeds,
        # Seed 0's accuracies averaged over the last 3 epochs (the estimator
        # metaplastic-validation selects m with; diagnostics, not the targets).
        "last3_epochs_mean": {
            "metaplastic": _tail_mean(meta, 3),
            "alone": [_tail_mean(a, 3)[0] for a in alone],
        },
        "mnist_acc_after_task1": meta["acc"][s["epochs"][0] - 1][0],
        # Hidden weights settled into their level after MNIST (meta factor toward the
        # nearest boundary < 1/2 at the benchmark's m), per layer.
        "settled_fraction_after_task1": {
            "metaplastic": meta["settled_after_task1"],
            "m=0": plain["settled_after_task1"],
        },
        "baseline_mnist_acc_after_task1": plain["acc"][s["epochs"][0] - 1][0],
        "device_acc_after_task2": {
            "metaplastic": dev_acc[list(runs)[0]],
            "m=0": dev_acc[list(runs)[1]],
        },
        "level_changes_per_weight": {
            "metaplastic": _count_stats(meta["counts"]),
            "m=0": _count_stats(plain["counts"]),
            "ewc": _count_stats(ewc["counts"]),
        },
        "program_verify_pulses_per_cell": {
            "metaplastic": trackers[list(runs)[0]][0].pulses(),
            "m=0": trackers[list(runs)[1]][0].pulses(),
        },
        "memory_bits_qnn": memory_bits(QNN["sizes"], QNN["n_levels"], QNN["hidden_bits"]),
        "memory_bits_reference_bnn": memory_bits((784, 4096, 4096, 10), 2, 32),
        "memory_reduction": memory_reduction(QNN["sizes"], QNN["n_levels"], QNN["hidden_bits"]),
        "seconds_per_epoch_median": float(np.median(seconds)),
        "curves": {k: {"acc": v["acc"], "task": v["task"]} for k, v in runs.items()},
    }


def run_mnist_fmnist(ctx) -> dict[str, Any]:
    """MNIST then Fashion-MNIST on the quantized perceptron: metaplastic, plain, EWC."""
    s = _settings(ctx, "mnist_fmnist")
    tasks = [
        _load_task(ctx, "mnist", s["n_train"], s["n_test"]),
        _load_task(ctx, "fashion-mnist", s["n_train"], s["n_test"]),
    ]
    key = jax.random.key(ctx.seed)
    device = MultiLevelRRAM(n_levels=QNN["n_levels"])
    common = dict(log=ctx.log, **_train_kwargs())
    warmup = _warmup_steps(tasks)
    runs, trackers, seconds = {}, {}, []

    def run(label, m, task_list, track=True, epochs=s["epochs"], seed=ctx.seed, **kw):
        tr = _DeviceTracker(device, jax.random.fold_in(key, len(runs) + 1)) if track else None
        settled = {}

        def on_epoch(model, t, e):
            if tr is not None:
                tr(model, t, e)
            if t == 0 and e == epochs[0] - 1:
                settled.update(_settled_fraction(model))

        t0 = time.perf_counter()
        model, hist = train_continual(
            _qnn(jax.random.key(seed), len(task_list)),
            task_list,
            epochs=epochs,
            m=m_schedule(m, warmup),
            seed=seed,
            on_epoch=on_epoch,
            **common,
            **kw,
        )
        hist["wall_s"] = time.perf_counter() - t0
        hist["settled_after_task1"] = settled
        seconds.extend(hist["seconds"])
        runs[label] = hist
        if track:
            trackers[label] = (tr, model, task_list)
        return hist

    meta = run(f"metaplastic m={QNN['m']:g}", QNN["m"], tasks)
    run("m=0 (Adam)", 0.0, tasks)
    run(f"EWC lambda={s['ewc_lambda']:g}", 0.0, tasks, ewc_lambda=s["ewc_lambda"])

    def alone_runs(suffix="", **kw):
        """Each task trained alone (the non-sequential baselines)."""
        return [
            run(f"{t.name} alone{suffix}", 0.0, [t], track=False, epochs=[e], **kw)
            for t, e in zip(tasks, s["epochs"])
        ]

    alone = alone_runs()
    # The metaplastic run and the non-sequential baselines again with other seeds (model
    # init and batch order): the targets compare two noisy numbers.
    per_seed = {ctx.seed: (meta["final_acc"], [a["final_acc"][0] for a in alone])}
    for sd in s["extra_seeds"]:
        sd = ctx.seed + sd
        mt = run(
            f"metaplastic m={QNN['m']:g}, seed {sd}",
            QNN["m"],
            tasks,
            track=False,
            seed=sd,
            eval_every_epoch=False,
        )
        al = alone_runs(f", seed {sd}", seed=sd, eval_every_epoch=False)
        per_seed[sd] = (mt["final_acc"], [a["final_acc"][0] for a in al])
    seeds = _over_seeds(per_seed)

    metrics = _mnist_fmnist_metrics(s, runs, trackers, alone, seeds, seconds, key)
    _plot_curves(
        ctx,
        {k: runs[k] for k in list(runs)[:3]},
        tasks,
        "curves",
        f"QNN {'-'.join(map(str, QNN['sizes']))}, {QNN['n_levels']} levels: "
        "MNIST then Fashion-MNIST",
    )
    config = dict(
        s,
        qnn=QNN,
        warmup_steps=warmup,
        batch_size=BATCH_SIZE,
        learning_rate=0.005,
        bn="per_task",
        device=repr(device),
    )
    return {"metrics": metrics, "config": config}


def _over_seeds(per_seed) -> dict[str, Any]:
    """Per-seed final accuracies (``{seed: (two-task accuracies, each task alone)}``),
    their means and standard deviations, and the targets' margins of the means."""
    seq = np.array([v[0] for v in per_seed.values()])
    non = np.array([v[1] for v in per_seed.values()])
    cols = {
        "mnist_acc_after_task2": seq[:, 0],
        "fmnist_acc": seq[:, 1],
        "mnist_acc_nonsequential": non[:, 0],
        "fmnist_acc_nonsequential": non[:, 1],
    }
    seeds = {
        "seeds": list(per_seed),
        **{k: v.tolist() for k, v in cols.items()},
        "mean": {k: float(v.mean()) for k, v in cols.items()},
        "std": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in cols.items()},
    }
    seeds["target_margins_of_means"] = _margins(
        [seeds["mean"]["mnist_acc_after_task2"], seeds["mean"]["fmnist_acc"]],
        [seeds["mean"]["mnist_acc_nonsequential"], seeds["mean"]["fmnist_acc_nonsequential"]],
    )
    return seeds


def _margins(acc, alone):
    """Distance (accuracy points as fractions) of a two-task result to each target of
    metaplastic-mnist-fmnist: MNIST >= 0.97, Fashion-MNIST >= 0.86, each within 1 point
    of its task trained alone."""
    return {
        "mnist_ge_0.97": acc[0] - 0.97,
        "fmnist_ge_0.86": acc[1] - 0.86,
        "mnist_within_1pt": acc[0] - (alone[0] - 0.01),
        "fmnist_within_1pt": acc[1] - (alone[1] - 0.01),
    }


def _tail_mean(hist, tail: int) -> list[float]:
    """Each task's accuracy averaged over the last ``tail`` epochs of a run."""
    return np.mean(np.asarray(hist["acc"], dtype=float)[-tail:], axis=0).tolist()


def run_validation(ctx) -> dict[str, Any]:
    """Choose m of the MNIST -> Fashion-MNIST network on a validation split (never the
    test sets): a scan over m and each task alone; accuracies averaged over the last
    ``tail`` epochs; the m whose smallest margin to the targets is largest is selected."""
    s = _settings(ctx, "validation")
    tasks = [
        _load_task(ctx, n, s["n_train"], None, n_val=s["n_val"]) for n in ("mnist", "fashion-mnist")
    ]
    key = jax.random.key(ctx.seed)
    warmup = _warmup_steps(tasks)
    tail = s["tail"]

    def run(cfg, m, task_list, epochs=s["epochs"]):
        _, hist = train_continual(
            _qnn(key, len(task_list), cfg),
            task_list,
            epochs=epochs,
            m=m_schedule(m, warmup),
            seed=ctx.seed,
            log=ctx.log,
            eval_every_epoch=True,
            **_train_kwargs(cfg),
        )
        return hist

    scan, final, after1, counts, curves = {}, {}, {}, {}, {}
    for m in s["ms"]:
        hist = run(QNN, m, tasks)
        k = f"{m:g}"
        scan[k], final[k] = _tail_mean(hist, tail), hist["final_acc"]
        after1[k] = hist["acc"][s["epochs"][0] - 1][0]
        counts[k], curves[k] = _count_stats(hist["counts"]), hist["acc"]
    alone_hist = [run(QNN, 0.0, [t], epochs=[e]) for t, e in zip(tasks, s["epochs"])]
    alone = [_tail_mean(h, tail)[0] for h in alone_hist]
    alone_final = [h["final_acc"][0] for h in alone_hist]
    margins = {m: _margins(acc, alone) for m, acc in scan.items()}
    selected = max(margins, key=lambda m: min(margins[m].values()))
    metrics = {
        # Means over the last `tail` epochs (the selection uses these).
        "val_acc_vs_m": scan,
        "val_acc_alone": alone,
        "val_margins_vs_m": margins,
        # The last epoch's accuracies alone (not used for the selection).
        "val_final_epoch_acc_vs_m": final,
        "val_final_epoch_acc_alone": alone_final,
        "val_final_epoch_margins_vs_m": {m: _margins(acc, alone_final) for m, acc in final.items()},
        "val_mnist_acc_after_task1_vs_m": after1,
        "level_changes_per_weight_vs_m": counts,
        "val_curves": {"m": curves, "alone": [h["acc"] for h in alone_hist]},
        "tail_epochs": tail,
        "selected_m": float(selected),
        "benchmark_m": QNN["m"],
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = [float(m) for m in scan]
    acc = np.array(list(scan.values()))
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for j, (t, c) in enumerate(zip(tasks, ("C0", "C1"))):
        ax.plot(ms, acc[:, j], marker="o", color=c, label=f"{t.name} after both tasks")
        ax.axhline(alone[j] - 0.01, color=c, ls=":", label=f"{t.name} alone - 1 point")
    ax.axvline(float(selected), color="grey", ls="--", lw=0.8)
    ax.set_xlabel("m")
    ax.set_ylabel(f"validation accuracy (mean of the last {tail} epochs)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ctx.save_figure(fig, "scan")
    config = dict(s, qnn=QNN, warmup_steps=warmup, batch_size=BATCH_SIZE, learning_rate=0.005)
    return {"metrics": metrics, "config": config}


def run_devices(ctx) -> dict[str, Any]:
    """Accuracy against levels, programming noise and stuck faults; endurance."""
    s = _settings(ctx, "devices")
    tasks = [
        _load_task(ctx, "mnist", s["n_train"], s["n_test"]),
        _load_task(ctx, "fashion-mnist", s["n_train"], s["n_test"]),
    ]
    key = jax.random.key(ctx.seed)
    cfg = QNN
    common = dict(
        epochs=s["epochs"], seed=ctx.seed, log=ctx.log, eval_every_epoch=False, **_train_kwargs(cfg)
    )
    warmup = _warmup_steps(tasks, cfg)
    by_levels, endurance, seconds = {}, {}, []
    models = {}
    for k in s["levels"]:
        for m in (cfg["m"], 0.0):
            if m == 0.0 and k != cfg["n_levels"]:
                continue
            model, hist = train_continual(
                _qnn(key, 2, cfg, n_levels=k), tasks, m=m_schedule(m, warmup), **common
            )
            seconds.extend(hist["seconds"])
            tag = f"k={k}, m={m:g}"
            endurance[tag] = _count_stats(hist["counts"])
            if m > 0:
                by_levels[str(k)] = hist["final_acc"]
                models[k] = model

    model = models[cfg["n_levels"]] if cfg["n_levels"] in models else models[max(models)]
    k = model.n_levels

    def device_acc(dev, seed):
        kk = jax.random.fold_in(key, seed)
        states = []
        for i, lv in enumerate(model.levels()):
            st = dev.sample_devices(jax.random.fold_in(kk, i), lv.shape)
            st, _ = program_levels(dev, jax.random.fold_in(kk, 100 + i), st, lv, None, k)
            states.append(st)
        ws = [
            read_device_weights(dev, jax.random.fold_in(kk, 200 + i), st, model.w_max)
            for i, st in enumerate(states)
        ]
        return [
            evaluate_task(model, t.x_test, t.y_test, j, weights=ws, preprocess=t.inputs)
            for j, t in enumerate(tasks)
        ]

    noise = {
        f"{w:g}": device_acc(MultiLevelRRAM(n_levels=k, write_sigma=w), 1)
        for w in s["write_sigmas"]
    }
    stuck = {
        f"{p:g}": device_acc(MultiLevelRRAM(n_levels=k, p_stuck_lrs=p / 2, p_stuck_hrs=p / 2), 2)
        for p in s["p_stuck"]
    }
    metrics = {
        "final_acc_vs_levels": by_levels,
        "final_acc_vs_write_sigma": noise,
        "final_acc_vs_stuck_fraction": stuck,
        "level_changes_per_weight": endurance,
        "seconds_per_epoch_median": float(np.median(seconds)),
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, (data, xlabel) in zip(
        axes, ((by_levels, "levels"), (noise, "write sigma (of range)"), (stuck, "stuck fraction"))
    ):
        xs = [float(x) for x in data]
        acc = np.array(list(data.values()))
        for j, t in enumerate(tasks):
            ax.plot(xs, acc[:, j], marker="o", label=t.name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy after both tasks")
    axes[0].legend(fontsize=8)
    ctx.save_figure(fig, "robustness")
    config = dict(
        s, qnn=cfg, warmup_steps=warmup, batch_size=BATCH_SIZE, learning_rate=0.005, bn="per_task"
    )
    return {"metrics": metrics, "config": config}
