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
# # Train a fully memristive network (MEMprop)
#
# MEMprop (Zhou, Eshraghian et al., IEEE JETCAS 2022, arXiv:2206.12992) trains a spiking
# network in which *everything* is a device: the synapses are RRAM crossbars, the
# neurons are the MIF circuits of [tutorial 3](03_mif_neuron.ipynb), and the gradient is
# backpropagation through time (BPTT) through the device equations themselves. There is
# no surrogate gradient: the MIF neuron has no threshold, so its dynamics are smooth and
# `jax.grad` differentiates them exactly.
#
# This tutorial trains a small network on MNIST, writes the trained weights into noisy
# RRAM cells, and measures how much accuracy survives programming and read noise. It runs
# on the 2,000-image sample bundled with memjax; set `FULL = True` (and
# `MEMJAX_DATA_DIR`, or let memjax download MNIST) for the full data set.

# %%
import dataclasses
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import memjax as mj
import memjax.data as D
from memjax.crossbar import Crossbar, CrossbarConfig
from memjax.devices import MultiLevelRRAM
from memjax.models import MEMprop
from memjax.models.memprop import memprop_eval, memprop_loss, project

FULL = False  # True: the full 60,000 / 10,000 images, a 512-neuron hidden layer, 10 epochs

# %% [markdown]
# ## The data
#
# `memjax.data.load` returns uint8 images and int labels. It takes the IDX files from
# `$MEMJAX_DATA_DIR` when set, else the download cache; here, with `download=False` and
# no data folder, it falls back to the bundled sample (2,000 training and 1,000 test
# images, class-stratified). `normalize` scales to $[0, 1]$: MEMprop reads pixel
# intensities as voltages, so they must be fractions of the full-scale read voltage.

# %%
limit = None if FULL else 2000
# the fallback to the sample warns; we print the source instead
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    x_train, y_train = D.load("mnist", "train", limit=limit, download=FULL)
    x_test, y_test = D.load("mnist", "test", limit=None if FULL else 1000, download=FULL)
print(
    "source:",
    D.last_source()["source"],
    "| train",
    x_train.shape,
    "| test",
    x_test.shape,
)
x_train, x_test = D.normalize(x_train, flatten=True), D.normalize(x_test, flatten=True)

# %% [markdown]
# ## The network
#
# `MEMprop.init` builds crossbar → MIF → crossbar → MIF:
#
# 1. a pixel of intensity $p$ becomes the row voltage $p\,v_\mathrm{read}$ (a DAC,
#    $v_\mathrm{read}$ = 0.2 V);
# 2. crossbar 1 (784 × H) gives column currents by Ohm's and Kirchhoff's laws,
#    $I_j = \sum_i v_i\,(G^+_{ij} - G^-_{ij})$: each weight is a *pair* of RRAM
#    conductances in $[G_\mathrm{min}, G_\mathrm{max}]$ = [0.476, 10] µS, so it can be
#    negative;
# 3. the currents (times a gain $g_1$) drive H hidden MIF neurons; their membrane voltages,
#    amplified by $a_v$, are the row voltages of crossbar 2 (H × 10), whose currents
#    drive 10 output MIF neurons;
# 4. the logits are the output membranes averaged over the window, times a trained gain.
#
# The window is `n_steps` steps of `dt`: by default 100 steps of 50 µs (5 ms, half the
# prototype's 1000 × 10 µs sample), the step at which the circuit's integration has
# converged. To stay within a minute this tutorial trains a coarse 10 × 500 µs map of
# the same window and then evaluates the trained weights on the converged circuit. The
# trained parameters are the normalised conductances $u^\pm \in [0, 1]$,
# $G^\pm = G_\mathrm{min} + u^\pm (G_\mathrm{max} - G_\mathrm{min})$; the neurons' own
# parameters are fixed (`train_neurons=False`).

# %%
n_hidden = 512 if FULL else 128
model = MEMprop.init(jax.random.key(0), 784, n_hidden, 10, dt=5e-4, n_steps=10)
print(
    f"crossbars {model.syn1.u_pos.shape} and {model.syn2.u_pos.shape}; "
    f"{model.n_steps} steps of {1e3 * model.dt:g} ms; v_read = {model.v_read} V"
)

# %% [markdown]
# ## Training: BPTT through the device equations
#
# The loss is the cross-entropy of the logits; its gradient flows back through the time
# loop (`lax.scan`), through every MIF step (the exponential splitting of tutorial 3,
# including the memristor state updates) and through both crossbars into $u^\pm$. Two
# details make this work on hardware-shaped parameters:
#
# - `project` clips every $u$ back into $[0, 1]$ after each optimiser step: a
#   conductance cannot leave the device window (projected gradient descent);
# - the time loop is rematerialised per step (`MEMprop(checkpoint="step")`, the default),
#   so BPTT stores one neuron state per step rather than every intermediate of the
#   device equations ([tutorial 7](07_scaling.ipynb) measures this).
#
# `memjax.fit` is the library's one training loop: mini-batches, a jitted step,
# evaluation after each epoch, optional checkpoints and data-parallel meshes.
# `memprop_loss` returns `(loss, {"accuracy": ...})`; `memprop_eval` evaluates without
# read noise. The first epoch includes compiling the training step.

# %%
epochs, batch_size = (10, 128) if FULL else (8, 50)
steps = epochs * (len(x_train) // batch_size)
optimizer = optax.adam(optax.cosine_decay_schedule(4e-3, steps, alpha=0.01))
model, history = mj.fit(
    model,
    memprop_loss,
    optimizer,
    (x_train, y_train),
    epochs=epochs,
    batch_size=batch_size,
    eval_fn=memprop_eval,
    eval_data=(x_test, y_test),
    project=project,
    progress=False,
)
for e, tl, acc, sec in zip(
    history["epoch"], history["train_loss"], history["accuracy"], history["seconds"]
):
    print(f"epoch {e}: train loss {tl:.3f}, test accuracy {acc:.3f} ({sec:.1f} s)")

# %%
fig, (ax_acc, ax_v) = plt.subplots(1, 2, figsize=(11, 3.8))
ax_acc.plot(history["epoch"], history["train_accuracy"], "o-", label="train (running)")
ax_acc.plot(history["epoch"], history["accuracy"], "o-", label="test (ideal crossbars)")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="training")
ax_acc.legend()
_, (v_hidden, v_out) = model(x_test[0], traces=True)
t_ms = 1e3 * model.dt * np.arange(1, model.n_steps + 1)
for j in range(10):
    lw = 3 if j == y_test[0] else 1
    ax_v.plot(t_ms, 1e3 * v_out[:, j], "o-", ms=3, lw=lw, label=str(j))
ax_v.set(xlabel="t (ms)", ylabel="v (mV)", title=f"output membranes, a test '{y_test[0]}'")
ax_v.legend(ncol=5, fontsize=7)
fig.tight_layout()

# %% [markdown]
# The output neuron of the true class (thick line) is driven highest; the readout is
# the time average of these ten traces. On 2,000 training images the network fits its
# training set almost perfectly while the test accuracy levels off: more data
# (`FULL = True`) is what raises it.
#
# The same weights on the converged circuit (100 steps of 50 µs over the same 5 ms): the
# accuracy, and how many predictions the coarse map shares with it. (The benchmark
# fine-tunes the last epoch at the converged step; `benchmarks.memprop`.)

# %%
circuit = dataclasses.replace(model, dt=5e-5, n_steps=100)
pred_coarse = jnp.argmax(eqx.filter_jit(lambda m, x: m(x))(model, x_test), -1)
pred_circuit = jnp.argmax(eqx.filter_jit(lambda m, x: m(x))(circuit, x_test), -1)
print(
    f"converged circuit: test accuracy {float(jnp.mean(pred_circuit == y_test)):.3f}, "
    f"agreement with the coarse map {float(jnp.mean(pred_circuit == pred_coarse)):.3f}"
)

# %% [markdown]
#
# ## Programming the weights into noisy RRAM
#
# Training used ideal crossbars: $u^\pm$ is exactly what the forward pass reads. A chip
# is different in three ways, each a switch of `CrossbarConfig` and a size of the
# `MultiLevelRRAM` cell (defaults from NeuroSim's RRAM device and aihwkit):
#
# - **levels**: a cell holds one of 32 conductances (`quantize_levels`);
# - **programming noise**: each write pulse lands at the target plus Gaussian noise of
#   `write_sigma` = 0.5 % of the range; program-and-verify re-pulses a cell until it is
#   within `verify_tol` = 1 % of its target, at most `max_iterations` = 20 times
#   (`program_noise`);
# - **read noise**: every read multiplies every conductance by $1 + \sigma_r z$,
#   $\sigma_r$ = 1 %, fresh per read (`read_noise`).
#
# `Crossbar.program(key)` performs the writing and returns the crossbar holding the
# conductances that actually landed. The two helpers below apply a config to every
# crossbar of the model and program each crossbar with its own key.

# %%
is_crossbar = lambda c: isinstance(c, Crossbar)


def with_config(model, config):
    """The model with every crossbar's config replaced by ``config``."""
    return jax.tree.map(
        lambda c: Crossbar(c.u_pos, c.u_neg, config) if is_crossbar(c) else c,
        model,
        is_leaf=is_crossbar,
    )


def program(model, key):
    """Write every crossbar of ``model`` into RRAM cells (``Crossbar.program``)."""
    leaves, treedef = jax.tree.flatten(model, is_leaf=is_crossbar)
    keys = jax.random.split(key, len(leaves))
    leaves = [c.program(k)[0] if is_crossbar(c) else c for c, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, leaves)


@eqx.filter_jit
def test_accuracy(model, key):
    """Accuracy on the test set; ``key`` draws fresh read noise where it is enabled."""
    return mj.accuracy(model(x_test, key), y_test)


device = MultiLevelRRAM()
chip = CrossbarConfig(device=device, quantize_levels=True, program_noise=True, read_noise=True)
# reading needs only the read-noise switch: evaluate every programmed chip with this
# config (each distinct config compiles the evaluation anew, see below)
read_1pc = CrossbarConfig(device=device, read_noise=True)
key = jax.random.key(1)
acc_ideal = float(test_accuracy(model, None))
accs = [
    float(test_accuracy(with_config(program(with_config(model, chip), k1), read_1pc), k2))
    for k1, k2 in jax.random.split(key, (3, 2))
]
print(f"ideal crossbars: {acc_ideal:.3f}")
print(
    f"programmed (32 levels, program-and-verify, 1 % read noise), 3 chips: "
    f"{np.mean(accs):.3f} +- {np.std(accs):.3f}"
)

# %% [markdown]
# ## How much noise can the network take?
#
# Two sweeps, each non-ideality alone:
#
# - **programming noise, one shot**: no verify loop (`max_iterations=1`), so the
#   write noise `write_sigma` lands in the weights unchecked; read ideal;
# - **read noise**: ideal programming, a fresh relative error $\sigma_r$ on every read.
#
# A crossbar's config is a static field: every distinct config compiles the evaluation
# anew. The programmed models are therefore given one common (ideal) read config, so the
# programming sweep compiles once; every read-noise level compiles once.

# %%
write_sigmas = [0.0, 0.02, 0.05, 0.1, 0.2]
read_sigmas = [0.0, 0.01, 0.1, 0.3]  # 0.01: the default, shares the config above
n_chips = 2
ideal = CrossbarConfig(device=device)


def program_one_shot(write_sigma, k):
    """The trained model written with one unverified pulse per cell, then read ideally."""
    one_shot = device.replace(write_sigma=write_sigma, max_iterations=1, verify_tol=1e-6)
    m = program(with_config(model, CrossbarConfig(device=one_shot, program_noise=True)), k)
    return with_config(m, ideal)


def read_noisy(read_sigma):
    """The trained (ideally programmed) model read with relative noise ``read_sigma``."""
    if read_sigma == 0:
        return model
    noisy = CrossbarConfig(device=device.replace(read_sigma=read_sigma), read_noise=True)
    return with_config(model, noisy)


chips = lambda i: jax.random.split(jax.random.fold_in(key, i), n_chips)
prog_acc = np.array(
    [
        [test_accuracy(program_one_shot(w, k), None) for k in chips(i)]
        for i, w in enumerate(write_sigmas)
    ]
)
read_acc = np.array(
    [[test_accuracy(read_noisy(r), k) for k in chips(100 + i)] for i, r in enumerate(read_sigmas)]
)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, xs, accs_, label in [
    (axes[0], write_sigmas, prog_acc, "write noise sigma (fraction of G range)"),
    (axes[1], read_sigmas, read_acc, "read noise sigma (relative to G)"),
]:
    ax.errorbar(xs, accs_.mean(1), yerr=accs_.std(1), fmt="o-", capsize=3)
    ax.axhline(acc_ideal, color="gray", ls="--", lw=1, label="ideal")
    ax.axhline(0.1, color="gray", ls=":", lw=1, label="chance")
    ax.set(xlabel=label, ylabel="test accuracy")
    ax.legend()
axes[0].set_title("programming noise, one shot")
axes[1].set_title("read noise")
fig.tight_layout()
for w, a in zip(write_sigmas, prog_acc.mean(1)):
    print(f"write_sigma {w:4.2f}: accuracy {a:.3f}")
for r, a in zip(read_sigmas, read_acc.mean(1)):
    print(f"read_sigma  {r:4.2f}: accuracy {a:.3f}")

# %% [markdown]
# Reading the figure: a write error is *frozen* into the weights, and it is measured in
# units of the whole conductance range, so it hits the small weights of a trained
# network hardest; read noise is fresh on every read and relative to each conductance,
# and averages out over the many inputs of a column (784 for the first crossbar) and,
# in the second crossbar, which is read at every step, over the time window. This is why
# program-and-verify matters: a cell whose pulse landed further than `verify_tol` (1 %
# of the range) from its target is pulsed again, so the programming error stays within
# the tolerance as long as the loop converges within `max_iterations`, and the
# programmed chip above stays close to the ideal one.
#
# ## The same three lines with the full data set
#
# Everything above scales by `FULL = True` at the top. The three lines that matter are
# the same; only sizes change:
#
# ```python
# x_train, y_train = D.load("mnist", "train")       # $MEMJAX_DATA_DIR or a download
# model = MEMprop.init(jax.random.key(0), 784, 512, 10)
# model, history = mj.fit(model, memprop_loss, optimizer, (D.normalize(x_train, flatten=True),
#                         y_train), epochs=10, batch_size=128, project=project)
# ```
#
# On two CPU cores that takes tens of minutes; on a GPU, minutes. The benchmark
# `python -m benchmarks memprop-mnist` runs exactly this, with the surrogate-LIF and
# ReLU baselines of the same size, and `memprop-robustness` the full sweeps (also stuck
# cells), with results in [Reproducing the papers](../papers.md).
#
# ## What to try next
#
# - Compare the synapse: `MEMprop.init(..., synapse="dense")` trains unconstrained
#   weights in siemens with the same neurons: how much does the conductance window cost?
# - Rate coding: `MEMprop.init(..., encoding="rate")` feeds Bernoulli spikes instead of
#   static currents (needs a key per call; `memprop_loss` passes one).
# - More non-idealities: `CrossbarConfig(stuck_faults=True, device=device.replace(p_stuck_hrs=0.05))`,
#   `drift_time`, `dac_bits`, `adc_bits` (the [crossbar guide](../crossbar.md)).
# - Train the neurons too: `train_neurons=True` with float-array MIF fields.
# - Longer windows and bigger batches need the memory tools of [tutorial 7](07_scaling.ipynb).
