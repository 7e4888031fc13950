# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Continual learning with metaplasticity
#
# Train a network on MNIST, then on Fashion-MNIST, and it forgets MNIST: the second
# task's gradients overwrite the weights the first one needed (*catastrophic
# forgetting*). Storing the old data and replaying it is one cure; biology suggests
# another. A synapse that has been strengthened many times becomes harder to change
# again (*metaplasticity*), so the weights that matter for the first task stay put while
# the unused ones learn the second. Laborieux et al. (Nat. Commun. 12, 2549, 2021) showed
# this for binarized networks; D'Agostino et al. (AICAS 2023, arXiv:2306.12142) carried
# it to quantized networks whose weights live in multi-level RRAM cells, where it also
# saves device reprogrammings, a real cost, since each cell endures a limited number of
# writes.
#
# This tutorial trains a small quantized perceptron on MNIST then Fashion-MNIST, with
# plain Adam and with metaplasticity at two strengths, and compares what each remembers
# and how often each rewrites its memristors. You will use
# `memjax.models.MetaplasticMLP` and `memjax.recipes.train_continual` / `Task`.

# %%
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from memjax.data import load
from memjax.models.metaplastic import MetaplasticMLP
from memjax.recipes import Task, train_continual

# %% [markdown]
# ## The data
#
# `memjax.data.load` reads MNIST and Fashion-MNIST; `source="sample"` takes the 2,000
# training and 1,000 test images per data set that ship with memjax, so this runs
# anywhere. Set `FULL = True` to use the full 60,000 / 10,000 images (from
# `$MEMJAX_DATA_DIR`, a download, or the cache) and the benchmark's network and epochs.

# %%
FULL = False

source = "auto" if FULL else "sample"
tasks = []
for name in ("mnist", "fashion-mnist"):
    x, y = load(name, "train", source=source)
    xt, yt = load(name, "test", source=source)
    tasks.append(Task(name, x, y, xt, yt))
print([(t.name, len(t.x_train), len(t.x_test)) for t in tasks])

# %% [markdown]
# ## Hidden weights, levels and the meta factor
#
# Each weight is a memristor cell with $k$ conductance levels; the network computes with
# the *quantized* weight $Q(W_h)$, one of $k$ values
# $q_j = -w_\mathrm{max} + j\,\Delta$, $\Delta = 2 w_\mathrm{max}/(k-1)$. The optimizer
# updates a real-valued *hidden* weight $W_h$ kept in digital memory, with the gradient
# taken with respect to $Q(W_h)$ (the straight-through estimator). A cell is reprogrammed
# only when its hidden weight crosses a boundary between two levels.
#
# Metaplasticity multiplies an update that moves $W_h$ *toward* the nearest level
# boundary $b^*$ by
#
# $$ f_\mathrm{meta} = 1 - \tanh^2\!\left(\frac{m\,|W_h - b^*|}{h}\right), \qquad h = \Delta / 2, $$
#
# and leaves updates away from it alone. A weight deep inside its level (far from $b^*$)
# is hard to push out; one near a boundary moves freely. For $k = 2$ this is the rule of
# Laborieux et al. (their eq. 1 with the boundary at 0); the form for $k > 2$ is memjax's
# (see the [metaplasticity guide](../metaplasticity.md)). With $m = 0$,
# $f_\mathrm{meta} = 1$ and the optimizer is plain Adam: our contrast.
#
# The network is the benchmark's quantized perceptron, narrower: 4 levels (2-bit cells),
# real-valued hardtanh hidden units, batch norm per task, hidden weights that start next
# to a level boundary (`init="boundary"`, every synapse unconsolidated), and Adam's
# `eps = 1e-5`, of the order of the gradients that matter, so weights with tiny gradients
# (pixels MNIST never uses) stay free for the second task. The settings are those of
# `benchmarks/metaplastic.py`, where they were chosen on a validation split.

# %%
N_LEVELS = 4
HIDDEN = 3840 if FULL else 256
EPOCHS = (6, 10) if FULL else (8, 8)
# The sample gives 20 updates per epoch, against 600 for the full set: with so few
# updates the steps must be larger for weights to reach, and settle in, their levels.
LEARNING_RATE = 0.005 if FULL else 0.02
BATCH_SIZE = 100


def make_model(seed=0):
    return MetaplasticMLP(
        (784, HIDDEN, 10),
        N_LEVELS,
        n_tasks=len(tasks),
        activation="hardtanh",
        bn_affine=True,
        init="boundary",
        key=jax.random.key(seed),
    )


# Plain Adam for the first epoch (a consolidation warm-up), then m: a weight should
# consolidate into the level the task needs, not the one it happened to start in.
warmup_steps = len(tasks[0].x_train) // BATCH_SIZE


def m_schedule(m):
    if m == 0:
        return 0.0
    return optax.join_schedules(
        [optax.constant_schedule(0.0), optax.constant_schedule(m)], [warmup_steps]
    )


settings = {
    "epochs": EPOCHS,
    "batch_size": BATCH_SIZE,
    "learning_rate": LEARNING_RATE,
    "adam_eps": 1e-5,
    "m_scale": (1.0, 2.0),  # the readout, shared by both tasks, twice as stable
    "hidden_bits": 12,  # hidden weights stored in 12-bit fixed point on [-2, 2)
    "hidden_range": 2.0,
    "reset_optimizer": False,
}

# %% [markdown]
# ## Training the stream three times
#
# `train_continual` trains the tasks one after the other, with no replay, and after each
# epoch measures every task's test accuracy. We train with plain Adam ($m = 0$), with the
# benchmark's $m = 3.5$ and with a stronger $m = 6$. Its history also holds, per weight, how
# many times the quantized level changed over the whole stream: the number of times that
# cell would have been reprogrammed.

# %%
runs = {}
for m in (0.0, 3.5, 6.0):
    label = "plain Adam, m = 0" if m == 0 else f"metaplastic, m = {m:g}"
    t0 = time.perf_counter()
    model, hist = train_continual(make_model(), tasks, m=m_schedule(m), **settings)
    runs[label] = (model, hist)
    acc = hist["final_acc"]
    print(
        f"{label}: MNIST {acc[0]:.3f}, Fashion-MNIST {acc[1]:.3f} ({time.perf_counter() - t0:.1f} s)"
    )

# %%
fig, axes = plt.subplots(1, len(runs), figsize=(13, 3.6), sharey=True)
for ax, (label, (_, hist)) in zip(axes, runs.items()):
    acc = np.array(hist["acc"])
    epochs = np.arange(1, len(acc) + 1)
    for j, t in enumerate(tasks):
        ax.plot(epochs, acc[:, j], marker="o", label=t.name)
    ax.axvline(EPOCHS[0] + 0.5, color="grey", ls=":")
    ax.text(EPOCHS[0] + 0.6, 0.05, "Fashion-MNIST starts", color="grey", fontsize=8)
    ax.set(title=label, xlabel="epoch", ylim=(0, 1))
    ax.grid(alpha=0.3)
axes[0].set_ylabel("test accuracy")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# (Before its own epochs, Fashion-MNIST is tested through an untrained batch-norm slot
# and the network has never seen it: chance level or below.) With plain Adam, MNIST
# accuracy collapses as soon as Fashion-MNIST training starts; with metaplasticity more
# of it survives, and more the larger $m$, at some cost on the second task (fewer free
# weights are left to learn it). $m$ is the stability-plasticity knob; the benchmark
# chooses it on a validation split
# (`python -m benchmarks run metaplastic-validation`), for its own network size and
# number of updates, so the best value here differs.
#
# ## Device reprogrammings
#
# Every change of a weight's level is a write of its RRAM cell. `hist["counts"]` holds
# these counts, one array per layer:

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
for label, (_, hist) in runs.items():
    c = np.concatenate([a.ravel() for a in hist["counts"]])
    print(
        f"{label}: {c.mean():.2f} level changes per weight on average, max {c.max()}, never changed: {np.mean(c == 0):.1%}"
    )
    ax.hist(c, bins=np.arange(0, c.max() + 2) - 0.5, histtype="step", lw=1.5, label=label)
ax.set(xlabel="level changes per weight over both tasks", ylabel="weights", yscale="log")
ax.legend()
fig.tight_layout()

# %% [markdown]
# A consolidated weight stops crossing boundaries, so metaplasticity also reduces the
# wear of the cells: the larger $m$, the fewer level changes per weight and the more
# cells never rewritten over the whole stream. When the cells are written after each
# epoch rather than after each step, only the net level change of that epoch costs a
# write; the `metaplastic-mnist-fmnist` benchmark counts those program-and-verify pulses
# as well.
#
# ## What to try next
#
# - Scan `m` more finely (e.g. 1 to 10) and plot both tasks' final accuracy against it:
#   the stability-plasticity trade-off.
# - Add elastic weight consolidation as a second contrast: `train_continual(...,
#   ewc_lambda=1000.0)` with `m = 0`.
# - Write the trained levels into RRAM cells and run the network on what is read back:
#   `program_levels(device, key, device.sample_devices(key, lv.shape), lv, None, N_LEVELS)`
#   for each layer's `lv` in `model.levels()`, then `read_device_weights` and
#   `evaluate_task(..., weights=...)` (all in `memjax.models.metaplastic`; wrap the
#   programming in `eqx.filter_jit`).
# - Use more levels (`N_LEVELS = 8`) or noisier cells (`MultiLevelRRAM(write_sigma=0.05,
#   p_stuck_lrs=0.01)`), as the `metaplastic-devices` benchmark does.
# - Set `FULL = True` for the benchmark-sized run, and compare with the numbers in
#   [Reproducing the papers](../papers.md).
# - The [metaplasticity guide](../metaplasticity.md) describes the rule for binarized
#   networks (permuted MNIST) and the memory accounting.
