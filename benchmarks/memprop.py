"""MEMprop benchmarks: MIF neurons + RRAM crossbars trained by BPTT on MNIST and
Fashion-MNIST, with the surrogate-LIF and ReLU-MLP baselines of the same size, and the
trained network's robustness to read noise, programming noise and stuck-at faults.

Training uses ideal crossbars (``u`` clipped to [0, 1] after every step). The reported
``test_accuracy`` is that of the trained weights *programmed* into noisy devices
(program-and-verify with write noise, rounded to the device's 32 levels) and read with
fresh 1 % read noise on every read, averaged over ``n_programs`` independent programmings;
``test_accuracy_ideal`` evaluates the trained ``u`` on ideal crossbars.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import memjax.data as D
from memjax.crossbar import Crossbar
from memjax.devices.rram import MultiLevelRRAM
from memjax.models.ann import MLP
from memjax.models.memprop import LIFNet, MEMprop, memprop_eval, memprop_loss, project
from memjax.neurons.mif import MIF, mif_simulate
from memjax.recipes import train_mlp
from memjax.training import evaluate, fingerprint_digest, fit, fit_fingerprint

from ._memprop import circuit_metrics, convergence_study

__all__ = [
    "run_mnist",
    "run_fmnist",
    "run_robustness",
    "Settings",
    "FULL",
    "QUICK",
    "build_model",
    "optimizer",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    """One MEMprop benchmark run. ``train_size``/``test_size`` None: the full sets;
    ``n_steps`` None: `MEMprop`'s own (the network's other settings are its defaults).

    Training is coarse then fine: ``epochs - fine_epochs`` epochs at ``coarse_factor``
    times `MEMprop`'s (converged) step over the same window, then ``fine_epochs`` at the
    converged step with learning rate ``fine_lr``; the reported accuracies and circuit
    metrics are those at the converged step. ``n_circuit``: test images of the
    integration-error and switching metrics; ``sweep_test_size``: test images of each
    robustness sweep point."""

    n_hidden: int = 512
    n_steps: int | None = None
    epochs: int = 10
    fine_epochs: int = 1
    coarse_factor: int = 10
    fine_lr: float = 4e-4
    batch_size: int = 128
    lr: float = 4e-3
    train_size: int | None = None
    test_size: int | None = None
    lif_epochs: int = 8
    lif_lr: float = 1e-3
    ann_epochs: int = 10
    n_programs: int = 3
    n_circuit: int = 500
    sweep_test_size: int = 2000


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    n_hidden=128,
    n_steps=None,
    epochs=2,
    train_size=10000,
    test_size=2000,
    lif_epochs=2,
    lif_lr=2e-3,
    ann_epochs=2,
    n_programs=1,
    n_circuit=100,
    sweep_test_size=1000,
)


def _settings(ctx):
    return dataclasses.asdict(QUICK if ctx.quick else FULL)


def _model_kwargs(s) -> dict:
    """``n_steps`` where the settings set one (else `MEMprop`'s default)."""
    n_steps = s["n_steps"] if isinstance(s, dict) else s.n_steps
    return {} if n_steps is None else {"n_steps": n_steps}


def load_data(name, ctx, s):
    """``(train, test)`` of dataset ``name`` at the settings' sizes: images scaled to
    [0, 1] and flattened, int32 labels (memprop-spice trains on exactly these)."""
    xtr, ytr = D.load(name, "train", data_dir=ctx.data_dir, limit=s["train_size"])
    xte, yte = D.load(name, "test", data_dir=ctx.data_dir, limit=s["test_size"])
    return (
        (D.scale_images(xtr, flatten=True), ytr.astype(np.int32)),
        (D.scale_images(xte, flatten=True), yte.astype(np.int32)),
    )


def build_model(s, seed, synapse="crossbar"):
    """The benchmark's MEMprop network for settings ``s`` (`Settings` or its dict)."""

    n_hidden = s["n_hidden"] if isinstance(s, dict) else s.n_hidden
    return MEMprop.init(
        jax.random.key(seed), 784, n_hidden, 10, synapse=synapse, **_model_kwargs(s)
    )


def optimizer(lr, steps):
    """Adam with a cosine decay to 1 % of ``lr`` over ``steps`` updates."""

    return optax.adam(optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.01))


def _mif_setup(ctx, train, s):
    """The MEMprop model and optimizer `train_mif` starts from."""
    steps = s["epochs"] * (len(train[0]) // s["batch_size"])
    return build_model(s, ctx.seed), optimizer(s["lr"], steps)


def _fit(ctx, tag, model, opt, train, test, epochs, batch_size, project=None):
    """`fit` with the benchmark's evaluation, logging and fingerprinted checkpoint
    folder; ``(model, history, seconds)``."""
    t0 = time.perf_counter()
    model, hist = fit(
        model,
        memprop_loss,
        opt,
        train,
        epochs=epochs,
        batch_size=batch_size,
        seed=ctx.seed,
        eval_fn=memprop_eval,
        eval_data=test,
        project=project,
        checkpoint_dir=_ckpt(ctx, tag, model, opt, train, test, batch_size),
        progress=True,
        log=ctx.log,
    )
    return model, hist, time.perf_counter() - t0


def coarse(model, factor: int):
    """``model`` over (about) the same window at ``factor`` times its step."""
    n = max(model.n_steps // factor, 1)
    return dataclasses.replace(model, dt=model.dt * model.n_steps / n, n_steps=n)


def train_mif(ctx, tag, train, test, s):
    """Coarse-then-fine training (`Settings`): ``(model, history, seconds)``; the
    history's accuracies are those of each phase's own step."""
    model, _ = _mif_setup(ctx, train, s)
    fine_dt, fine_steps = model.dt, model.n_steps
    n_coarse = s["epochs"] - s["fine_epochs"]
    per_epoch = len(train[0]) // s["batch_size"]
    hists, seconds = [], 0.0
    if n_coarse > 0:
        opt = optimizer(s["lr"], n_coarse * per_epoch)
        model, h, t = _fit(
            ctx, tag, coarse(model, s["coarse_factor"]), opt, train, test, n_coarse,
            s["batch_size"], project,
        )  # fmt: skip
        hists.append(h)
        seconds += t
    if s["fine_epochs"] > 0:
        model = dataclasses.replace(model, dt=fine_dt, n_steps=fine_steps)
        opt = optimizer(s["fine_lr"] if n_coarse > 0 else s["lr"], s["fine_epochs"] * per_epoch)
        model, h, t = _fit(
            ctx, f"{tag}-fine", model, opt, train, test, s["fine_epochs"], s["batch_size"],
            project,
        )  # fmt: skip
        hists.append(h)
        seconds += t
    hist = {k: sum((list(h[k]) for h in hists), []) for k in ("epoch", "accuracy", "seconds")}
    hist["epoch"] = list(range(1, len(hist["accuracy"]) + 1))
    return model, hist, seconds


def _ckpt(ctx, tag, model, opt, train, test, batch_size) -> Path:
    """The checkpoint folder of one training run, keyed by the fingerprint `fit` gives
    it (model, optimizer, data, seed, batch size): a run on other data (the bundled
    sample, then the full set) or with other settings never resumes another's model."""

    fp = fit_fingerprint(model, opt, train, seed=ctx.seed, batch_size=batch_size, eval_data=test)
    return (Path(ctx.out) / "checkpoints" / f"{tag}-{fingerprint_digest(fp)}").absolute()


def _train_lif(ctx, tag, train, test, s):
    model = LIFNet.init(jax.random.key(ctx.seed + 1), 784, s["n_hidden"], 10, **_model_kwargs(s))
    steps = s["lif_epochs"] * (len(train[0]) // s["batch_size"])
    opt = optimizer(s["lif_lr"], steps)
    return _fit(ctx, tag, model, opt, train, test, s["lif_epochs"], s["batch_size"])


def _train_ann(ctx, tag, train, test, s):

    # the network and optimizer train_mlp builds, for the checkpoint folder's key
    mlp = MLP(train[0].shape[1], (s["n_hidden"],), 10, key=jax.random.key(ctx.seed))
    ckpt = _ckpt(ctx, tag, mlp, optax.adam(1e-3), train, test, s["batch_size"])
    t0 = time.perf_counter()
    model, hist = train_mlp(
        train,
        test,
        hidden=(s["n_hidden"],),
        epochs=s["ann_epochs"],
        batch_size=s["batch_size"],
        learning_rate=1e-3,
        seed=ctx.seed,
        checkpoint_dir=ckpt,
        progress=True,
        log=ctx.log,
    )
    return model, hist, time.perf_counter() - t0


def with_config(model, **changes):
    """The model with every crossbar's config (and device) changed, e.g.
    ``read_noise=True`` or ``device=dev.replace(read_sigma=0.05)``."""

    is_xb = lambda c: isinstance(c, Crossbar)

    def f(c):
        if not is_xb(c):
            return c
        return Crossbar(
            u_pos=c.u_pos, u_neg=c.u_neg, config=dataclasses.replace(c.config, **changes)
        )

    return jax.tree.map(f, model, is_leaf=is_xb)


def program(model, key):
    """Program every crossbar of ``model`` (``Crossbar.program``), one key each."""

    is_xb = lambda c: isinstance(c, Crossbar)
    leaves, treedef = jax.tree.flatten(model, is_leaf=is_xb)
    keys = jax.random.split(key, len(leaves))
    new = [c.program(k)[0] if is_xb(c) else c for c, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, new)


def noisy_accuracy(model, x, y, key, batch_size=1000):
    """Test accuracy with a fresh read-noise key per batch (read noise where enabled)."""

    @eqx.filter_jit
    def acc(m, xb, yb, k):
        return jnp.sum(jnp.argmax(m(xb, k), -1) == yb)

    correct = 0
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb, yb = (
            jnp.asarray(x[start : start + batch_size]),
            jnp.asarray(y[start : start + batch_size]),
        )
        correct += int(acc(model, xb, yb, jax.random.fold_in(key, i)))
    return correct / len(x)


def programmed_accuracy(model, x, y, key, n_programs=3, **changes):
    """Mean and std of the accuracy over ``n_programs`` programmings (config ``changes``
    applied first; default: program noise, 32 levels, read noise)."""

    cfg = dict(read_noise=True, program_noise=True, quantize_levels=True)
    cfg.update(changes)
    m = with_config(model, **cfg)
    accs = []
    for k in jax.random.split(key, n_programs):
        kp, kr = jax.random.split(k)
        accs.append(noisy_accuracy(program(m, kp), x, y, kr))
    return float(np.mean(accs)), float(np.std(accs))


def _figures(ctx, model, test, hists, labels_ds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # 1. the network's membrane voltages for one test image
    x = jnp.asarray(test[0][:1])
    logits, (vh, vo) = model(x, traces=True)
    T = vh.shape[0]
    t_ms = (np.arange(1, T + 1) * model.dt) * 1e3
    vh, vo = np.asarray(vh)[:, 0] * 1e3, np.asarray(vo)[:, 0] * 1e3
    active = np.argsort(-np.abs(vh).max(axis=0))[:6]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for j in active:
        axes[0].plot(t_ms, vh[:, j], "o-", ms=3, label=f"hidden {j}")
    axes[0].set(
        xlabel="t (ms)", ylabel="v (mV)", title=f"hidden MIF membranes ({labels_ds} test image 0)"
    )
    axes[0].legend(fontsize=7)
    for j in range(vo.shape[1]):
        axes[1].plot(
            t_ms,
            vo[:, j],
            "o-",
            ms=3,
            lw=2.5 if j == int(test[1][0]) else 1,
            label=f"class {j}" + (" (label)" if j == int(test[1][0]) else ""),
        )
    axes[1].set(xlabel="t (ms)", ylabel="v (mV)", title="output MIF membranes")
    axes[1].legend(fontsize=6, ncol=2)
    # a single neuron at fine time resolution: the graded spike under a current pulse
    n = MIF()
    dt = 1e-5
    tt = dt * np.arange(1500)
    for amp in (3e-6, 1e-5, 3e-5):
        _, st = mif_simulate(n, jnp.where(tt < 5e-3, amp, 0.0), dt)
        axes[2].plot(tt * 1e3, np.asarray(st.v) * 1e3, label=f"{amp * 1e6:.0f} uA pulse, 0-5 ms")
    axes[2].set(xlabel="t (ms)", ylabel="v (mV)", title="one MIF neuron (dt = 10 us)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(fig, "traces")

    # 2. accuracy over epochs
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, h in hists.items():
        ax.plot(h["epoch"], np.asarray(h["accuracy"]) * 100, "o-", label=name)
    ax.set(
        xlabel="epoch",
        ylabel="test accuracy (%)",
        title=f"{labels_ds}: test accuracy (ideal weights)",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, "accuracy")


def _run(ctx, dataset: str, label: str):

    s = _settings(ctx)
    t_start = time.perf_counter()
    train, test = load_data(dataset, ctx, s)
    ctx.log(f"{label}: {len(train[0])} train / {len(test[0])} test images; settings {s}")
    tag = ctx.name
    model, h_mif, t_mif = train_mif(ctx, f"{tag}-mif", train, test, s)
    acc_ideal = evaluate(model, memprop_eval, *test)["accuracy"]
    acc_prog, acc_prog_std = programmed_accuracy(
        model, *test, jax.random.key(ctx.seed + 100), n_programs=s["n_programs"]
    )
    ctx.log(
        f"MIF: ideal {acc_ideal:.4f}, programmed {acc_prog:.4f} +- {acc_prog_std:.4f}"
        f" ({t_mif:.0f} s)"
    )
    circuit = circuit_metrics(model, test, s["n_circuit"], log=ctx.log)
    study = convergence_study(ctx, model, test)
    _, h_lif, t_lif = _train_lif(ctx, f"{tag}-lif", train, test, s)
    _, h_ann, t_ann = _train_ann(ctx, f"{tag}-ann", train, test, s)
    _figures(
        ctx,
        model,
        test,
        {"MEMprop (MIF)": h_mif, "LIF (surrogate)": h_lif, "ReLU MLP": h_ann},
        label,
    )
    metrics = {
        "test_accuracy": acc_prog,
        "test_accuracy_std": acc_prog_std,
        "test_accuracy_ideal": acc_ideal,
        "baseline_test_accuracy": h_lif["accuracy"][-1],
        "ann_test_accuracy": h_ann["accuracy"][-1],
        "train_size": len(train[0]),
        "test_size": len(test[0]),
        "epochs": s["epochs"],
        "time_steps": model.n_steps,
        **circuit,
        **study,
        "seconds": time.perf_counter() - t_start,
        "seconds_mif_train": t_mif,
        "seconds_lif_train": t_lif,
        "seconds_ann_train": t_ann,
        "seconds_per_epoch_mif": float(np.sum(h_mif["seconds"]) / max(len(h_mif["seconds"]), 1)),
        "history_mif_test_accuracy": h_mif["accuracy"],
        "history_lif_test_accuracy": h_lif["accuracy"],
        "history_ann_test_accuracy": h_ann["accuracy"],
    }
    config = {
        "dataset": dataset,
        "data_dir": ctx.data_dir,
        **s,
        "n_steps": model.n_steps,
        "dt": model.dt,
        "topology": f"784-{s['n_hidden']}-10",
        "neuron": "MIF defaults (memjax.neurons.mif.MIF())",
        "crossbar_device": (
            "MultiLevelRRAM defaults (0.476-10 uS, 32 levels, write 0.5 %, verify 1 %, read 1 %)"
        ),
        "programmed_eval": (
            "program_noise + quantize_levels (32) + read_noise, mean of n_programs programmings"
        ),
        "window_ms": model.n_steps * model.dt * 1e3,
        "training": (
            f"{s['epochs'] - s['fine_epochs']} epochs at dt x {s['coarse_factor']}, then "
            f"{s['fine_epochs']} at dt (lr {s['fine_lr']}); evaluation at dt"
        ),
        "circuit_metrics": (
            f"ideal reads; integration error on the first {s['n_circuit']} test images "
            "against the network at dt / 10; converged_* on the whole test set at dt / 10"
        ),
        "readout": "trapezoid time average of the output membrane voltage x k_out (trained)",
        "optimizer": "Adam, cosine decay to 1 % over all steps",
        "lif": "LIF beta 0.9, theta 1, fast-sigmoid surrogate slope 25, dense weights + bias",
        "ann": f"ReLU MLP 784-{s['n_hidden']}-10, Adam 1e-3",
    }
    return {"metrics": metrics, "config": config}


def run_mnist(ctx):
    """MEMprop on MNIST (+ LIF and ReLU baselines)."""
    return _run(ctx, "mnist", "MNIST")


def run_fmnist(ctx):
    """MEMprop on Fashion-MNIST (+ LIF and ReLU baselines)."""
    return _run(ctx, "fashion-mnist", "Fashion-MNIST")


def _robustness_sweeps(dev, thin):
    """``(name, values, make)`` of each robustness sweep: ``make(value)`` gives the
    `programmed_accuracy` switches and device for one point."""
    return [
        # read noise alone (ideal programming, no level rounding)
        (
            "read_sigma",
            thin([0.0, 0.01, 0.02, 0.05, 0.1, 0.2]),
            lambda r: dict(
                read_noise=True,
                program_noise=False,
                quantize_levels=False,
                device=dev.replace(read_sigma=r),
            ),
        ),
        # programming noise, one shot (no verify loop), no level rounding, no read noise
        (
            "write_sigma_one_shot",
            thin([0.0, 0.01, 0.02, 0.05, 0.1]),
            lambda w: dict(
                read_noise=False,
                program_noise=True,
                quantize_levels=False,
                device=dev.replace(write_sigma=w, max_iterations=1, verify_tol=1e-6),
            ),
        ),
        # stuck-at faults: cells stuck at HRS (G_min), then at LRS (G_max); otherwise ideal
        (
            "stuck_hrs_fraction",
            thin([0.0, 0.01, 0.02, 0.05, 0.1, 0.2]),
            lambda p: dict(
                read_noise=False,
                program_noise=False,
                quantize_levels=False,
                stuck_faults=True,
                device=dev.replace(p_stuck_hrs=p),
            ),
        ),
        (
            "stuck_lrs_fraction",
            thin([0.0, 0.001, 0.002, 0.005, 0.01, 0.02]),
            lambda p: dict(
                read_noise=False,
                program_noise=False,
                quantize_levels=False,
                stuck_faults=True,
                device=dev.replace(p_stuck_lrs=p),
            ),
        ),
    ]


def _robustness_figure(ctx, sweeps, acc_ideal):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    titles = {
        "read_sigma": ("read noise sigma (relative to G)", "read noise (fresh every read)"),
        "write_sigma_one_shot": (
            "write noise sigma (fraction of G range)",
            "programming noise (one shot)",
        ),
        "stuck_hrs_fraction": ("fraction of cells stuck at G_min", "stuck at HRS"),
        "stuck_lrs_fraction": ("fraction of cells stuck at G_max", "stuck at LRS"),
    }
    for ax, (name, sw) in zip(axes, sweeps.items()):
        ax.errorbar(
            sw["values"],
            np.asarray(sw["accuracy"]) * 100,
            yerr=np.asarray(sw["std"]) * 100,
            fmt="o-",
            capsize=3,
        )
        ax.axhline(acc_ideal * 100, color="gray", ls="--", lw=1, label="ideal")
        ax.set(xlabel=titles[name][0], ylabel="test accuracy (%)", title=titles[name][1])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, "sweeps")


def _robustness_model(ctx, s):
    """The trained MNIST network and memprop-mnist's test set: memprop-mnist's training
    resumed from its checkpoints (finished ones return at once), else trained here."""

    train, test = load_data("mnist", ctx, s)  # exactly as memprop-mnist loads them
    model, h, _ = train_mif(ctx, "memprop-mnist-mif", train, test, s)
    source = f"memprop-mnist-mif checkpoints ({len(h['accuracy'])} epochs)"
    ctx.log(f"model from {source}")
    return model, source, test


def run_robustness(ctx):
    """Test accuracy of the trained MNIST network against read noise, programming noise
    and stuck-at faults (reuses the memprop-mnist checkpoint when present)."""
    s = _settings(ctx)
    t_start = time.perf_counter()
    model, source, full_test = _robustness_model(ctx, s)
    # the sweeps on the first sweep_test_size test images (their cost grows with the
    # number of steps); the circuit metrics on the whole test set
    n = min(s["sweep_test_size"], len(full_test[0]))
    test = (full_test[0][:n], full_test[1][:n])
    acc_ideal = evaluate(model, memprop_eval, *test)["accuracy"]
    dev = MultiLevelRRAM()
    n_prog = s["n_programs"]
    key = jax.random.key(ctx.seed + 200)
    sweeps = {}

    def sweep(name, values, make):
        accs, stds = [], []
        for i, val in enumerate(values):
            a, sd = programmed_accuracy(
                model,
                *test,
                jax.random.fold_in(key, 1000 * len(sweeps) + i),
                n_programs=n_prog,
                **make(val),
            )
            accs.append(a)
            stds.append(sd)
            ctx.log(f"{name} = {val}: accuracy {a:.4f} +- {sd:.4f}")
        sweeps[name] = {"values": list(values), "accuracy": accs, "std": stds}

    thin = (lambda v: v[::2]) if ctx.quick else (lambda v: v)
    for name, values, make in _robustness_sweeps(dev, thin):
        sweep(name, values, make)
    # time discretisation: the trained network against itself integrated 10x finer
    circuit = circuit_metrics(model, full_test, s["n_circuit"], log=ctx.log)
    # the default non-ideal setting of memprop-mnist, for reference
    a_def, sd_def = programmed_accuracy(
        model, *test, jax.random.fold_in(key, 99), n_programs=n_prog
    )

    _robustness_figure(ctx, sweeps, acc_ideal)

    metrics = {
        "test_accuracy_ideal": acc_ideal,
        "test_accuracy_default_nonideal": a_def,
        "test_accuracy_default_nonideal_std": sd_def,
        "test_size": len(full_test[0]),
        "sweep_test_size": n,
        "seconds": time.perf_counter() - t_start,
    }
    for name, sw in sweeps.items():
        for v, a in zip(sw["values"], sw["accuracy"]):
            metrics[f"accuracy_{name}_{v:g}"] = a
    metrics.update(circuit)
    return {
        "metrics": metrics,
        "config": {
            "model_source": source,
            "n_programs": n_prog,
            "sweeps": sweeps,
            "device": "MultiLevelRRAM defaults except the swept parameter",
            **s,
        },
    }
