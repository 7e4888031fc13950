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
# # An snnTorch network, through NIR, onto memristive hardware
#
# Spiking networks are trained in snnTorch, Norse, Spyx, ... and exchanged as NIR graphs
# (the Neuromorphic Intermediate Representation). This tutorial takes a 784-256-10 LIF
# network trained on MNIST **in snnTorch** (the `nir-deploy` benchmark's network,
# committed as `benchmarks/nir/mnist_lif.nir`), imports it into memjax, and asks what it
# does on RRAM crossbars: 16 conductance levels, 5 % programming noise, 2 % read noise,
# 1 % stuck cells, drift and wire resistance. Then it fine-tunes the deployed network
# hardware-aware and writes it back to the same chip. No torch is needed here: the NIR
# file is all memjax reads. Guides: docs/nir.md, docs/hardware.md.

# %%
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import memjax.data as D
from memjax import hardware as hw
from memjax.nir import from_nir, to_nir

t_start = time.perf_counter()
here = Path.cwd().resolve()
root = next(p for p in [here, *here.parents] if (p / "benchmarks" / "nir").is_dir())
nir_file = root / "benchmarks" / "nir" / "mnist_lif.nir"

# %% [markdown]
# ## Import
#
# `from_nir` builds a `NIRNetwork`: the graph's nodes as memjax modules, run over time in
# one `lax.scan`. NIR's neurons are continuous-time; snnTorch exported its `Leaky`
# neurons with a time step of 0.1 ms (`tau = dt / (1 - beta)`), memjax's default `dt`, so
# the network runs step for step as in snnTorch. The input is the image as a constant
# current for 15 steps; the class is the output neuron with the most spikes.

# %%
net = from_nir(nir_file)
print({name: type(node).__name__ for name, node in net.nodes.items()})
N_STEPS = 15
flat = lambda a: (a.reshape(len(a), -1) / np.float32(255.0)).astype(np.float32)  # noqa: E731
xs, ys = D.load("mnist", "test", source="sample")  # the 2,000 bundled images
x_test, y_test = flat(xs[:400]), ys[:400].astype(np.int32)
xt, yt = D.load("mnist", "train", source="sample")
x_train, y_train = flat(xt[:600]), yt[:600].astype(np.int32)
ideal = hw.spike_accuracy(net, x_test, y_test, N_STEPS)
print(f"imported network, ideal weights: {ideal:.3f}")

# %% [markdown]
# ## Deploy
#
# `deploy` maps every `Affine` weight to differential pairs of RRAM conductances, each
# layer's largest weight at the full conductance range, and programs them: targets
# rounded to 16 levels, one write with a 5 % error, 1 % of the cells stuck. Every read
# adds fresh 2 % noise (the `key`).

# %%
cfg = hw.rram_16level()
chip = hw.deploy(net, cfg, jax.random.key(0))
deployed = hw.spike_accuracy(chip, x_test, y_test, N_STEPS, key=jax.random.key(1))
print(f"deployed on 16-level RRAM: {deployed:.3f}")

# %% [markdown]
# ## Fine-tune on the chip's model, write it back
#
# `finetune` trains the conductances and the digital biases by BPTT through the crossbar
# model: levels (straight-through), a fresh programming error per batch, the chip's stuck
# cells and read noise in the forward pass. `reprogram` writes the result into the same
# array (new write noise, the same faulty cells): the fine-tuning is for this chip's own
# faults. Here one short epoch on 600 bundled training images; the benchmark uses the
# full training split and chooses the learning rate and the injected-noise strength
# (`noise_scale`) on a validation split.

# %%
ft, hist = hw.finetune(chip, (x_train, y_train), n_steps=N_STEPS, epochs=1, batch_size=100)
chip_ft = hw.reprogram(ft, jax.random.key(2))
finetuned = hw.spike_accuracy(chip_ft, x_test, y_test, N_STEPS, key=jax.random.key(3))
print(f"fine-tuned and re-programmed: {finetuned:.3f}")

# %% [markdown]
# ## Drift and IR drop
#
# `with_config` changes read-time settings of a programmed chip: the time since
# programming (power-law drift `G (t / 1 s)^-0.01`) or the wire resistance per cell.
# With `r_wire` the resistive network of every 128 x 128 array is solved (here the fast
# one-sweep mode; `ir_mode="exact"` solves to convergence with an implicit gradient).

# %%
times = [3600.0, 86400.0, 3.156e7]
drift = [
    hw.spike_accuracy(hw.with_config(chip, drift_time=t), x_test, y_test, N_STEPS) for t in times
]
ir = {
    r: hw.spike_accuracy(hw.with_config(chip, r_wire=r, ir_mode="fast"), x_test, y_test, N_STEPS)
    for r in (2.5,)
}
print("drift:", dict(zip(["1 h", "1 d", "1 y"], np.round(drift, 3))))
print("IR drop (ohm per cell):", ir)

fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(times, drift, "o-")
ax.axhline(ideal, color="k", ls="--", lw=0.8, label="ideal weights")
ax.set_xlabel("time since programming (s)")
ax.set_ylabel("accuracy (400 sample images)")
ax.legend()
plt.show()

# %% [markdown]
# ## Export
#
# `to_nir` writes the deployed network back as NIR, its crossbar layers as `Affine`
# nodes with the weights the chip actually realises, for any other NIR tool to run.

# %%
graph = to_nir(chip)
print(type(graph.nodes["0"]).__name__, graph.nodes["0"].weight.shape)
print(f"tutorial ran in {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## What to try next
#
# - `hw.substitute_mif(net, n_steps=15)`: the LIF neurons replaced by memristive MIF
#   neurons, then `hw.finetune` through their device equations.
# - `hw.neurosim_rram()`: weights written by pulses on a nonlinear, asymmetric cell;
#   compare `pulse_aware=True`.
# - `python -m benchmarks run nir-deploy --quick` for the benchmark's sweeps.
