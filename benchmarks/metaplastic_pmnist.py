"""metaplastic-pmnist: a binarized network learns six permuted-MNIST tasks one after
the other, for several m (Laborieux et al., Nat. Commun. 12, 2549 (2021)); settings in
`benchmarks.metaplastic.SETTINGS["pmnist"]`, guide in docs/metaplasticity.md."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from typing import Any

import jax
import numpy as np
import optax

from memjax.learning.metaplastic import metaplastic_adam
from memjax.models.metaplastic import MetaplasticMLP, evaluate_task
from memjax.recipes import Task, train_continual

from ._context import environment
from ._json import write_atomic
from .metaplastic import BATCH_SIZE, SETTINGS, _load_task, _settings

#: Published mean final accuracy over 6 permuted-MNIST tasks against m (Laborieux et al.,
#: "Synaptic metaplasticity in binarized neural networks", Nat. Commun. 12, 2549, 2021).
REFERENCE_PMNIST = {"0": 0.255, "0.5": 0.591, "1": 0.926, "1.35": 0.920, "2": 0.913}

#: Recorded with every part: how ``level_index`` reads a BNN weight. Parts trained before
#: it compared each boundary exactly (commit b6a7c5c) read every hidden weight within
#: float32 rounding of 0 as +1 ("rounded"); they are reported apart, never mixed in.
LEVEL_INDEX = "exact"

#: For settings added after parts were first written: the behaviour of the parts that
#: lack them (not the current default, which may have changed since).
_EARLIER = {"bn_scale_init": "ones", "level_index": "rounded"}


def _pmnist_tasks(ctx, s) -> list[Task]:
    """MNIST and ``n_tasks - 1`` fixed pixel permutations of it (seeded by ``ctx.seed``)."""
    rng = np.random.default_rng(ctx.seed)
    base = _load_task(ctx, "mnist", s["n_train"], s["n_test"])
    return [
        base._replace(name=f"P{i + 1}", perm=None if i == 0 else rng.permutation(784))
        for i in range(s["n_tasks"])
    ]


def _pmnist_one(ctx, s, tasks, m, ckpt_dir):
    """One m of metaplastic-pmnist: the accuracy matrix (row = after training task i,
    column = task j, stored per-task BN statistics), the training seconds per epoch and
    the final accuracy of each task with test-batch BN statistics."""
    model = MetaplasticMLP(
        (784, *s["hidden"], 10),
        2,
        n_tasks=len(tasks),
        bn_affine=True,
        bn_scale_init=s["bn_scale_init"],
        init_scale=s["init_scale"],
        key=jax.random.key(ctx.seed),
    )
    wd, lr = s["weight_decay"], s["learning_rate"]
    optimizer = None
    if wd > 0:
        optimizer = lambda: optax.chain(optax.add_decayed_weights(wd), metaplastic_adam(lr, m))
    model, hist = train_continual(
        model,
        tasks,
        m=m,
        epochs=s["epochs"],
        seed=ctx.seed,
        learning_rate=lr,
        optimizer=optimizer,
        eval_every_epoch=False,
        log=ctx.log,
        checkpoint_dir=ckpt_dir,
    )
    ends = np.cumsum([s["epochs"]] * len(tasks)) - 1
    # The authors' evaluation: each test batch of 1,000 normalised by its own statistics.
    batch_bn = [
        evaluate_task(
            model,
            t.x_test,
            t.y_test,
            j,
            preprocess=t.inputs,
            batch_size=1000,
            batch_statistics=True,
        )
        for j, t in enumerate(tasks)
    ]
    return np.array([hist["acc"][e] for e in ends], dtype=float), hist["seconds"], batch_bn


def run_pmnist(ctx) -> dict[str, Any]:
    """Six permuted-MNIST tasks on a binarized network, for several m.

    Each m is written to ``OUT/metaplastic-pmnist.parts/m{m}.json`` when it finishes
    (with a per-epoch checkpoint while it runs), so m values can be separate invocations
    (``--set ms=1.35``): a later invocation with the same other settings reuses the
    finished parts and reports every m found in the folder. An invocation with other
    overrides than ``ms`` writes ``m{m}_{key}{value}...json`` (``--set epochs=40``:
    ``m0.5_epochs40.json``); parts whose settings differ from this invocation's are
    reported apart, under ``other_settings``."""
    s = _settings(ctx, "pmnist")
    tasks = _pmnist_tasks(ctx, s)
    base = tasks[0]
    # What a finished m must share with this invocation to be reported with it.
    same = {k: v for k, v in s.items() if k != "ms"}
    same.update(
        seed=ctx.seed,
        quick=ctx.quick,
        n_train_images=len(base.x_train),
        n_test_images=len(base.x_test),
        level_index=LEVEL_INDEX,
    )
    same = json.loads(json.dumps(same))  # tuples as lists, as read back
    parts = ctx.out / f"{ctx.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    tag = "".join(f"_{k}{v}" for k, v in sorted(ctx.overrides.items()) if k != "ms")
    for m in s["ms"]:
        path = parts / f"m{m:g}{tag}.json"
        if path.exists():
            st = _part_settings(json.loads(path.read_text()), ctx.quick)
            if st == same:
                ctx.log(f"m = {m:g}: reusing {path}")
                continue
            _keep_aside(path, _differ(st, same), ctx.log)
        ckpt = parts / f"checkpoint_m{m:g}{tag}"
        commit = environment()["git_commit"]  # the code this m starts with
        t0 = time.perf_counter()
        mat, seconds, batch_bn = _pmnist_one(ctx, s, tasks, m, ckpt)
        rec = {
            "m": m,
            "settings": same,
            "acc_matrix": mat.tolist(),
            "final_acc_test_batch_bn": batch_bn,
            "seconds_per_epoch": [float(x) for x in seconds],
            "wall_seconds": time.perf_counter() - t0,
            "git_commit": commit,
        }
        write_atomic(path, rec)
        shutil.rmtree(ckpt, ignore_errors=True)
    found, other = {}, {}
    for path in sorted(parts.glob("m*.json")):
        rec = json.loads(path.read_text())
        st = _part_settings(rec, ctx.quick)
        if st == same:
            found[float(rec["m"])] = rec
        else:
            other[path.stem] = {
                "m": rec["m"],
                "settings_differ": _differ(st, same),
                **_part_summary(rec),
                "git_commit": rec.get("git_commit"),
            }
    summaries = {f"{m:g}": _part_summary(found[m]) for m in sorted(found)}
    mats = {m: np.array(found[m]["acc_matrix"]) for m in sorted(found)}
    results = {k: v["mean_final_acc"] for k, v in summaries.items()}
    seconds = [x for m in sorted(found) for x in found[m]["seconds_per_epoch"]]
    batch_bn = {k: v for k, v in summaries.items() if "final_acc_test_batch_bn" in v}
    metrics = {
        "mean_final_acc": results,
        "reference_mean_final_acc": REFERENCE_PMNIST,
        "gap_to_reference_points": {
            k: 100 * (REFERENCE_PMNIST[k] - v) for k, v in results.items() if k in REFERENCE_PMNIST
        },
        "acc_matrix": {k: v["acc_matrix"] for k, v in summaries.items()},
        "acc_own_task": {k: v["acc_own_task"] for k, v in summaries.items()},
        "seconds_per_epoch_median": float(np.median(seconds)),
        "wall_seconds_per_m": {k: v["wall_seconds"] for k, v in summaries.items()},
        # The same networks evaluated as the authors' code does (test-batch BN statistics).
        "final_acc_test_batch_bn": {k: v["final_acc_test_batch_bn"] for k, v in batch_bn.items()},
        "mean_final_acc_test_batch_bn": {
            k: v["mean_final_acc_test_batch_bn"] for k, v in batch_bn.items()
        },
    }
    if other:
        metrics["other_settings"] = other
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(mats), figsize=(3.0 * len(mats), 3.0), squeeze=False)
    for ax, (m, mat) in zip(axes[0], mats.items()):
        im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
        bb = metrics["mean_final_acc_test_batch_bn"].get(f"{m:g}")
        extra = "" if bb is None else f"\n(test-batch BN: {bb:.3f})"
        ax.set_title(f"m = {m:g}: mean {mat[-1].mean():.3f}{extra}", fontsize=9)
        ax.set_xlabel("task tested")
    axes[0][0].set_ylabel("after training task")
    fig.colorbar(im, ax=axes, shrink=0.8)
    ctx.save_figure(fig, "acc_matrix")
    config = dict(
        s,
        ms=sorted(found),
        batch_size=BATCH_SIZE,
        bn="per_task",
        bn_affine=True,
        parts={
            f"{m:g}": {k: v for k, v in found[m].items() if k.endswith(("git_commit", "_note"))}
            for m in sorted(found)
        },
    )
    return {"metrics": metrics, "config": config}


def _keep_aside(path, differ: dict, log) -> None:
    """Rename a part run at other settings (a default changed since) so that its name
    says how it differs (``differ``: its values of those settings); it is then reported
    apart. A kept part is never replaced."""
    was = "".join(f"_{k}{v}" for k, v in sorted(differ.items()))
    keep, i = path.with_name(f"{path.stem}{was}.json"), 1
    while keep.exists():
        keep, i = path.with_name(f"{path.stem}{was}_{i}.json"), i + 1
    log(f"{path.name} ran at other settings; kept as {keep.name}")
    path.rename(keep)


def _differ(st: dict, same: dict) -> dict:
    """The settings of a part (``st``) that differ from this invocation's."""
    return {k: st.get(k) for k in sorted(set(st) | set(same)) if st.get(k) != same.get(k)}


def _part_settings(rec: dict, quick: bool) -> dict:
    """The settings a finished m ran with; a setting added after the part was written
    is filled with the behaviour before it existed (`_EARLIER`), else its default."""
    mode = "quick" if quick else "full"
    defaults = json.loads(json.dumps(dataclasses.asdict(SETTINGS["pmnist"][mode])))
    st = rec.get("settings", {})
    if not st:
        return {}
    return {**{k: v for k, v in defaults.items() if k != "ms"}, **_EARLIER, **st}


def _part_summary(rec: dict) -> dict:
    """One finished m: its accuracy matrix, mean final accuracy, accuracy on each task
    right after training it, and (if measured) the test-batch-BN final accuracies."""
    mat = np.array(rec["acc_matrix"])
    out = {
        "mean_final_acc": float(mat[-1].mean()),
        "acc_own_task": np.diag(mat).tolist(),
        "acc_matrix": mat.tolist(),
        "wall_seconds": rec.get("wall_seconds"),
    }
    if "final_acc_test_batch_bn" in rec:
        out["final_acc_test_batch_bn"] = rec["final_acc_test_batch_bn"]
        out["mean_final_acc_test_batch_bn"] = float(np.mean(rec["final_acc_test_batch_bn"]))
    return out
