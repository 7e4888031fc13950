"""``nir-deploy``: an snnTorch network, through NIR, onto memristive hardware.

The network is a 784-256-10 LIF network trained in snnTorch on MNIST
(``benchmarks/nir/train_snntorch.py``), exported with snnTorch's NIR exporter to the
committed ``benchmarks/nir/mnist_lif.nir``; its snnTorch test accuracy and predictions
are stored beside it (``mnist_lif.json``, ``mnist_lif_pred.npy``), so this benchmark
needs no torch. Input: the image (in [0, 1]) as a constant current for ``n_steps``
steps; readout: the output spike count (argmax, first index on ties), as in snnTorch.

Metrics:

- ``ideal_accuracy`` (memjax ``from_nir``) against ``snntorch_accuracy``, and
  ``prediction_agreement`` (fraction of test images with the same prediction);
- ``deployed_accuracy`` (mean and std over ``n_chips`` programmings of
  :func:`memjax.hardware.rram_16level`: 16 levels, 5 % one-shot programming noise, 2 %
  read noise, 1 % stuck cells; fresh read noise per read);
- ``finetuned_accuracy``: after ``ft_epochs`` epochs of hardware-aware fine-tuning
  (:func:`memjax.hardware.finetune`) over snnTorch's training split (its validation
  images held out) for chip 0's own stuck cells, then re-programming that same chip
  (mean over ``n_chips`` re-programmings); ``finetuned_fresh_chip_accuracy``: the
  fine-tuned weights programmed onto fresh chips (other stuck cells);
- ``drift``: the accuracy after 1 h, 1 day, 1 year of drift, with and without fine-tuning;
- ``mif``: the same with the LIF neurons replaced by fitted MIF neurons
  (:func:`memjax.hardware.substitute_mif`), fine-tuned by BPTT through the device ODEs;
- ``sweeps``: accuracy against each non-ideality alone (levels, programming noise, read
  noise, stuck cells, drift time), before and after fine-tuning;
- ``ir_drop``: the exact and fast IR-drop solvers against ngspice (max relative column
  current error, array sizes up to 64 x 64), and the accuracy of the deployed network
  (IR drop only) against the array size and the wire resistance.

Settings were fixed before reading the test set; the fine-tuning learning rate and
noise-injection strength are chosen on snnTorch's validation split (the last ``n_val``
training images, never trained on) by a small scan recorded in ``config.finetune_scan``.

``--quick`` (`QUICK`, a smoke test of every part within two minutes) uses 500 test
images, one fine-tuning candidate (no scan), 1,000 fine-tuning images for one epoch,
one chip, one value per non-ideality sweep, drift after one year only, and the fast
IR-drop solver on one tile size (ngspice still checks both solvers).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import memjax.data as D
from memjax import hardware as hw
from memjax.nir import from_nir, nodes

from ._context import Context

__all__ = ["run", "Settings", "FULL", "QUICK"]

HERE = Path(__file__).resolve().parent / "nir"
DRIFT_TIMES = {"1h": 3600.0, "1d": 86400.0, "1y": 3.156e7}


@dataclasses.dataclass(frozen=True)
class Settings:
    test_size: int | None = None
    ft_size: int | None = None
    ft_epochs: int = 2
    ft_lrs: tuple = (3e-4, 1e-3, 3e-3)
    ft_noise: tuple = (1.0, 2.0)
    scan_size: int = 10000
    val_size: int | None = None
    batch_size: int = 128
    n_chips: int = 3
    mif_ft_epochs: int = 1
    mif_ft_size: int | None = 3000
    levels: tuple = (4, 8, 16, 32)
    program_sigma: tuple = (0.0, 0.02, 0.05, 0.1)
    read_sigma: tuple = (0.0, 0.02, 0.05, 0.1)
    stuck: tuple = (0.0, 0.01, 0.02, 0.05)
    spice_sizes: tuple = (16, 32, 64)
    ir_tiles: tuple = (32, 64, 128)
    ir_r_wire: tuple = (1.0, 2.5)
    ir_modes: tuple = ("exact", "fast")
    drift: tuple = ("1h", "1d", "1y")


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    test_size=500,
    ft_size=1000,
    ft_epochs=1,
    ft_lrs=(1e-3,),
    ft_noise=(1.0,),
    scan_size=500,
    val_size=500,
    n_chips=1,
    mif_ft_size=500,
    levels=(16,),
    program_sigma=(0.05,),
    read_sigma=(0.05,),
    stuck=(0.02,),
    spice_sizes=(16,),
    ir_tiles=(64,),
    ir_r_wire=(2.5,),
    ir_modes=("fast",),
    drift=("1y",),
)


def _load(ctx: Context, s: Settings):
    meta = json.loads((HERE / "mnist_lif.json").read_text())
    pred = np.load(HERE / "mnist_lif_pred.npy")
    flat = lambda a: (a.reshape(len(a), -1) / np.float32(255.0)).astype(np.float32)  # noqa: E731
    xtr, ytr = D.load("mnist", "train", data_dir=ctx.data_dir)
    xte, yte = D.load("mnist", "test", data_dir=ctx.data_dir)
    n_val = meta["settings"]["n_val"]
    train = (flat(xtr[:-n_val]), ytr[:-n_val].astype(np.int32))
    n_v = n_val if s.val_size is None else s.val_size
    val = (flat(xtr[-n_val:][:n_v]), ytr[-n_val:][:n_v].astype(np.int32))
    if s.ft_size is not None:
        train = (train[0][: s.ft_size], train[1][: s.ft_size])
    n = len(xte) if s.test_size is None else s.test_size
    test = (flat(xte[:n]), yte[:n].astype(np.int32))
    return meta, pred[:n], train, val, test


def _acc(model, test, n_steps, key=None) -> float:
    return hw.spike_accuracy(model, *test, n_steps, key=key)


def _chips(ideal, cfg, test, n_steps, key, n) -> tuple[float, float, list]:
    """Accuracy of ``n`` independent programmings (each read with fresh noise)."""
    accs = []
    for c in range(n):
        k1, k2 = jax.random.split(jax.random.fold_in(key, c))
        accs.append(_acc(hw.deploy(ideal, cfg, k1), test, n_steps, k2))
    return float(np.mean(accs)), float(np.std(accs)), accs


def _reprogrammed(ft, test, n_steps, key, n, **changes):
    accs = []
    for c in range(n):
        k1, k2 = jax.random.split(jax.random.fold_in(key, c))
        m = hw.reprogram(ft, k1)
        if changes:
            m = hw.with_config(m, **changes)
        accs.append(_acc(m, test, n_steps, k2))
    return float(np.mean(accs)), float(np.std(accs))


def _as_ideal(ft, like):
    """The fine-tuned targets as an ideal network (weights ``(u+ - u-) w_scale``)."""
    new = {}
    for name in hw.hardware_layers(ft):
        node = ft.nodes[name]
        W = ((node.u[0] - node.u[1]) * node.w_scale).T
        new[name] = nodes.Affine(W, node.bias)
    return like.replace_nodes(new)


def _scan(ctx, s, ideal, cfg, train, val, n_steps, key):
    """Fine-tuning learning rate and noise-injection strength, chosen on the validation
    split (one epoch over the first ``scan_size`` training images, chip 0). A grid of
    one candidate is taken as given, without a validation run."""
    if len(s.ft_lrs) * len(s.ft_noise) == 1:
        lr, ns = s.ft_lrs[0], s.ft_noise[0]
        ctx.log(f"one fine-tuning candidate (lr {lr:g}, noise x{ns:g}): no validation scan")
        return {"grid": [{"lr": lr, "noise_scale": ns}], "lr": lr, "noise_scale": ns}
    chip = hw.deploy(ideal, cfg, jax.random.fold_in(key, 0))
    sub = (train[0][: s.scan_size], train[1][: s.scan_size])
    rows = []
    for lr in s.ft_lrs:
        for ns in s.ft_noise:
            ft, _ = hw.finetune(
                chip,
                sub,
                n_steps=n_steps,
                epochs=1,
                batch_size=s.batch_size,
                lr=lr,
                noise_scale=ns,
                seed=ctx.seed,
            )
            acc, _ = _reprogrammed(ft, val, n_steps, jax.random.fold_in(key, 9), 1)
            rows.append({"lr": lr, "noise_scale": ns, "val_accuracy": acc})
            ctx.log(f"scan lr {lr:g} noise x{ns:g}: validation accuracy {acc:.4f}")
    best = max(rows, key=lambda r: r["val_accuracy"])
    return {"grid": rows, "lr": best["lr"], "noise_scale": best["noise_scale"]}


def _deploy_and_finetune(ctx, s, ideal, cfg, train, test, n_steps, key, epochs, tag, hp):
    """Deployed accuracy, fine-tuning, re-programmed accuracy and drift for one network."""
    out = {}
    t0 = time.perf_counter()
    out["deployed_accuracy"], out["deployed_std"], _ = _chips(
        ideal, cfg, test, n_steps, key, s.n_chips
    )
    ctx.log(f"{tag}: deployed accuracy {out['deployed_accuracy']:.4f}")
    chip = hw.deploy(ideal, cfg, jax.random.fold_in(key, 0))
    ft, hist = hw.finetune(
        chip,
        train,
        n_steps=n_steps,
        epochs=epochs,
        batch_size=s.batch_size,
        lr=hp["lr"],
        noise_scale=hp["noise_scale"],
        seed=ctx.seed,
        log=ctx.log,
    )
    out["finetune_history"] = hist
    k_rep = jax.random.fold_in(key, 7)
    out["finetuned_accuracy"], out["finetuned_std"] = _reprogrammed(
        ft, test, n_steps, k_rep, s.n_chips
    )
    ctx.log(f"{tag}: fine-tuned accuracy (same chip) {out['finetuned_accuracy']:.4f}")
    fresh = _as_ideal(ft, ideal)
    out["finetuned_fresh_chip_accuracy"], out["finetuned_fresh_chip_std"], _ = _chips(
        fresh, cfg, test, n_steps, jax.random.fold_in(key, 11), s.n_chips
    )
    ctx.log(f"{tag}: fine-tuned, fresh chips {out['finetuned_fresh_chip_accuracy']:.4f}")
    drift = {}
    for label in s.drift:
        t = DRIFT_TIMES[label]
        k = jax.random.fold_in(key, 100 + int(np.log10(t)))
        chip_t = hw.with_config(chip, drift_time=t)
        before = _acc(chip_t, test, n_steps, k)
        after, _ = _reprogrammed(ft, test, n_steps, k_rep, 1, drift_time=t)
        drift[label] = {"seconds": t, "deployed": before, "finetuned": after}
        ctx.log(f"{tag}: drift {label}: {before:.4f} -> fine-tuned {after:.4f}")
    out["drift"] = drift
    out["seconds"] = time.perf_counter() - t0
    return out, ft


def _sweeps(ctx, s, ideal, ft_ideal, test, n_steps, key):
    base = hw.rram_16level(
        quantize_levels=False, program_noise=False, stuck_faults=False, read_noise=False
    )
    dev = base.device.replace(verify_tol=1e-6)
    base = base.replace(device=dev)
    cases = {
        "levels": [
            (v, dict(quantize_levels=True, device=dev.replace(n_levels=v))) for v in s.levels
        ],
        "program_sigma": [
            (v, dict(program_noise=True, device=dev.replace(write_sigma=v)))
            for v in s.program_sigma
        ],
        "read_sigma": [
            (v, dict(read_noise=True, device=dev.replace(read_sigma=v))) for v in s.read_sigma
        ],
        "stuck_fraction": [
            (v, dict(stuck_faults=True, device=dev.replace(p_stuck_lrs=v / 2, p_stuck_hrs=v / 2)))
            for v in s.stuck
        ],
        "drift_seconds": [(v, dict(drift_time=v)) for v in (DRIFT_TIMES[k] for k in s.drift)],
    }
    out = {}
    for name, vals in cases.items():
        rec = {"values": [], "before": [], "after": []}
        for i, (v, ch) in enumerate(vals):
            cfg = base.replace(**ch)
            k = jax.random.fold_in(key, 37 * len(out) + i)
            b, _, _ = _chips(ideal, cfg, test, n_steps, k, 1)
            a, _, _ = _chips(ft_ideal, cfg, test, n_steps, k, 1)
            rec["values"].append(v)
            rec["before"].append(b)
            rec["after"].append(a)
            ctx.log(f"sweep {name} = {v}: {b:.4f} / fine-tuned {a:.4f}")
        out[name] = rec
    return out


def _ir_validation(ctx, s, chip):
    """Exact and fast IR-drop solves against ngspice on blocks of the deployed layer."""
    from memjax.hardware import ir_drop, spice

    if not spice.have_ngspice():
        return {"skipped": "ngspice not on PATH"}
    node = chip.nodes[hw.hardware_layers(chip)[0]]
    G = np.asarray(node.conductances()[0], np.float64)
    rng = np.random.default_rng(ctx.seed)
    out = {}
    r = 2.5
    for n in s.spice_sizes:
        g = G[:n, :n]
        v = 0.2 * (rng.uniform(size=n) < 0.3)
        t0 = time.perf_counter()
        ref = spice.ngspice_currents(g, v, r)
        t_sp = time.perf_counter() - t0
        gj, vj = jnp.asarray(g, jnp.float32), jnp.asarray(v, jnp.float32)[None]
        ex = np.asarray(ir_drop.column_currents(gj, vj, r))[0]
        fa = np.asarray(ir_drop.column_currents(gj, vj, r, sweeps=1))[0]
        scale = np.max(np.abs(ref))
        out[str(n)] = {
            "r_wire_ohm": r,
            "exact_max_rel_err": float(np.max(np.abs(ex - ref)) / scale),
            "fast_max_rel_err": float(np.max(np.abs(fa - ref)) / scale),
            "no_ir_drop_max_rel_err": float(np.max(np.abs(v @ g - ref)) / scale),
            "ngspice_seconds": t_sp,
        }
        ctx.log(f"IR drop vs ngspice {n}x{n}: {out[str(n)]}")
    return out


def _ir_accuracy(ctx, s, ideal, test, n_steps, key):
    cfg = hw.rram_16level(
        quantize_levels=False, program_noise=False, stuck_faults=False, read_noise=False
    )
    cfg = cfg.replace(device=cfg.device.replace(verify_tol=1e-6))
    chip = hw.deploy(ideal, cfg, key)
    out = {"no_ir_drop": _acc(chip, test, n_steps)}
    for tile in s.ir_tiles:
        for r in s.ir_r_wire:
            for mode in s.ir_modes:
                t0 = time.perf_counter()
                m = hw.with_config(chip, r_wire=r, tile=(tile, tile), ir_mode=mode)
                acc = _acc(m, test, n_steps)
                out[f"tile{tile}_r{r}_{mode}"] = {
                    "tile": tile,
                    "r_wire_ohm": r,
                    "mode": mode,
                    "accuracy": acc,
                    "seconds": time.perf_counter() - t0,
                }
                ctx.log(f"IR drop tile {tile} r {r} {mode}: {acc:.4f}")
    return out


def _plots(ctx, res):
    import matplotlib.pyplot as plt

    sw = res["sweeps"]
    fig, axes = plt.subplots(1, len(sw), figsize=(4 * len(sw), 3.2))
    for ax, (name, rec) in zip(np.atleast_1d(axes), sw.items()):
        x = np.arange(len(rec["values"]))
        ax.plot(x, rec["before"], "o-", label="deployed")
        ax.plot(x, rec["after"], "s-", label="fine-tuned")
        ax.set_xticks(x, [f"{v:g}" for v in rec["values"]])
        ax.axhline(res["metrics"]["ideal_accuracy"], color="k", lw=0.8, ls="--")
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy")
    np.atleast_1d(axes)[0].legend()
    ctx.save_figure(fig, "nonidealities")

    ir = res["ir_accuracy"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for tile in sorted({v["tile"] for k, v in ir.items() if k != "no_ir_drop"}):
        pts = [v for k, v in ir.items() if k != "no_ir_drop" and v["tile"] == tile]
        for mode, ls in (("exact", "-"), ("fast", ":")):
            q = sorted((p["r_wire_ohm"], p["accuracy"]) for p in pts if p["mode"] == mode)
            if not q:
                continue
            ax.plot(*zip(*q), ls, marker="o", label=f"{tile}x{tile} {mode}")
    ax.axhline(ir["no_ir_drop"], color="k", lw=0.8, ls="--", label="no IR drop")
    ax.set_xlabel("wire resistance per cell (ohm)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "ir_drop")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for tag, rec in (("LIF", res["lif"]), ("MIF", res["mif"])):
        t = [0] + [v["seconds"] for v in rec["drift"].values()]
        for key, ls in (("deployed", "--"), ("finetuned", "-")):
            a0 = rec["deployed_accuracy" if key == "deployed" else "finetuned_accuracy"]
            ax.plot(
                np.maximum(t, 1),
                [a0] + [v[key] for v in rec["drift"].values()],
                ls,
                marker="o",
                label=f"{tag} {key}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "drift")


def run(ctx: Context) -> dict:
    s = QUICK if ctx.quick else FULL
    t_start = time.perf_counter()
    meta, snn_pred, train, val, test = _load(ctx, s)
    n_steps = int(meta["settings"]["n_steps"])
    ideal = from_nir(HERE / "mnist_lif.nir")
    key = jax.random.key(ctx.seed)
    ideal_acc = _acc(ideal, test, n_steps)
    pred = np.concatenate(
        [
            np.asarray(jnp.argmax(ideal(test[0][i : i + 1000], n_steps).sum(0), -1))
            for i in range(0, len(test[0]), 1000)
        ]
    )
    snn_acc = float((snn_pred == test[1]).mean())
    ctx.log(f"ideal accuracy {ideal_acc:.4f} (snnTorch on the same images {snn_acc:.4f})")
    cfg = hw.rram_16level()
    hp = _scan(ctx, s, ideal, cfg, train, val, n_steps, jax.random.fold_in(key, 1))
    lif, ft = _deploy_and_finetune(
        ctx, s, ideal, cfg, train, test, n_steps, jax.random.fold_in(key, 1), s.ft_epochs, "LIF", hp
    )
    sweeps = _sweeps(ctx, s, ideal, _as_ideal(ft, ideal), test, n_steps, jax.random.fold_in(key, 2))
    mif_net, fit_info = hw.substitute_mif(ideal, n_steps=n_steps)
    mif_ideal = _acc(mif_net, test, n_steps)
    ctx.log(f"MIF substituted, ideal synapses: {mif_ideal:.4f} (fit {fit_info})")
    mtrain = (
        train if s.mif_ft_size is None else (train[0][: s.mif_ft_size], train[1][: s.mif_ft_size])
    )
    mif, _ = _deploy_and_finetune(
        ctx,
        s,
        mif_net,
        cfg,
        mtrain,
        test,
        n_steps,
        jax.random.fold_in(key, 3),
        s.mif_ft_epochs,
        "MIF",
        hp,
    )
    mif.update(ideal_accuracy=mif_ideal, fit=fit_info, finetune_size=len(mtrain[0]))
    chip = hw.deploy(ideal, cfg, jax.random.fold_in(key, 4))
    ir_val = _ir_validation(ctx, s, chip)
    ir_acc = _ir_accuracy(ctx, s, ideal, test, n_steps, jax.random.fold_in(key, 5))
    metrics = {
        "snntorch_accuracy": snn_acc,
        "snntorch_accuracy_full_test": meta["test_accuracy"],
        "ideal_accuracy": ideal_acc,
        "ideal_minus_snntorch_points": 100 * (ideal_acc - snn_acc),
        "prediction_agreement": float((pred == snn_pred).mean()),
        "deployed_accuracy": lif["deployed_accuracy"],
        "deployed_std": lif["deployed_std"],
        "finetuned_accuracy": lif["finetuned_accuracy"],
        "finetuned_std": lif["finetuned_std"],
        "finetuned_minus_ideal_points": 100 * (lif["finetuned_accuracy"] - ideal_acc),
        "finetuned_fresh_chip_accuracy": lif["finetuned_fresh_chip_accuracy"],
        "finetune_lr": hp["lr"],
        "finetune_noise_scale": hp["noise_scale"],
        "drift": lif["drift"],
        "mif_ideal_accuracy": mif_ideal,
        "mif_deployed_accuracy": mif["deployed_accuracy"],
        "mif_finetuned_accuracy": mif["finetuned_accuracy"],
        "mif_drift": mif["drift"],
        "ir_drop_vs_ngspice": ir_val,
        "ir_drop_accuracy": ir_acc,
        "test_size": len(test[0]),
        "seconds": time.perf_counter() - t_start,
    }
    res = {"metrics": metrics, "sweeps": sweeps, "ir_accuracy": ir_acc, "lif": lif, "mif": mif}
    _plots(ctx, res)
    metrics["sweeps"] = sweeps
    config = {
        "settings": dataclasses.asdict(s),
        "n_steps": n_steps,
        "dt": ideal.dt,
        "hardware": "rram_16level: 16 levels, one-shot write sigma 0.05 of range, read sigma 0.02, "
        "stuck 0.5 % LRS + 0.5 % HRS, G in [0.476, 10] uS, nu 0.01",
        "snntorch_training": {
            k: meta[k] for k in ("settings", "versions", "epochs_kept", "readout", "input")
        },
        "finetune": {"lif": lif["finetune_history"], "mif": mif["finetune_history"]},
        "finetune_scan": {**hp, "val_size": len(val[0]), "scan_size": s.scan_size},
        "finetune_size": len(train[0]),
        "mif_fit": fit_info,
        **ctx.data_config(),
    }
    return {"metrics": metrics, "config": config}
