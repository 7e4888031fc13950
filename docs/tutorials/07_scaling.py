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
# # Scaling up
#
# The tutorials so far fit in a laptop's memory and run in seconds. Real experiments grow
# in two directions: **longer time windows** (a spiking network simulated for thousands
# of steps, trained by backpropagation through all of them) and **more data** (the full
# data set, many epochs). This tutorial covers the memjax tools for both:
#
# 1. memory-bounded BPTT with checkpointing (`memjax.checkpointed_scan`, the
#    `checkpoint` option of `MEMprop`), measured from XLA's compiled memory;
# 2. data-parallel training over several devices with `jax.sharding`
#    (`memjax.distributed.data_mesh`, `fit(mesh=...)`);
# 3. what changes on a GPU.
#
# ## Several devices on one CPU
#
# JAX fixes its list of devices when it starts. To try data parallelism without a
# cluster, XLA can split the host CPU into several logical devices; the flag must be set
# *before* JAX is imported, which is why it is the first thing this notebook does (in a
# script: `XLA_FLAGS=--xla_force_host_platform_device_count=4 python train.py`). The
# four "devices" share the same cores, so this demonstrates correctness, not speed.

# %%
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)
# XLA's C++ warnings off (see "Data-parallel training" below for the one this hides)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import memjax as mj
import memjax.data as D
from memjax.distributed import data_mesh, shard_batch
from memjax.models import MEMprop
from memjax.models.memprop import memprop_loss, project

print(jax.devices())

FULL = False  # True: longer windows in the memory sweep and the full MNIST training set

# %% [markdown]
# ## Why BPTT runs out of memory
#
# Reverse-mode differentiation of a time loop $s_{t+1} = f(s_t, x_t; \theta)$ needs, in
# the backward pass, every $s_t$ and everything $f$ computed from it (the Jacobians are
# evaluated at the forward values). A plain `lax.scan` therefore stores all intermediates
# of all $T$ steps: memory grows as $O(T)$ times the size of one step's intermediates,
# which for the MIF equations (exponentials, logistic switching probabilities, two
# memristors per neuron) is many arrays per step.
#
# Rematerialisation trades compute for memory (Griewank & Walther, *Evaluating
# Derivatives*, 2008; Chen et al., arXiv:1604.06174, 2016). `checkpointed_scan` offers
# three modes:
#
# | mode | stores | memory | extra compute |
# |---|---|---|---|
# | `"none"` | every intermediate of every step | $O(T \cdot$ step$)$ | none |
# | `"step"` | the carry (state) of every step, recomputes each step backwards | $O(T \cdot$ state$)$ | one forward |
# | `"sqrt"` | the carry at the start of each of $\sqrt T$ segments | $O(\sqrt T \cdot$ state$)$ | about two forwards |
#
# One caveat is on the user side: the stacked per-step outputs `ys` of a scan are kept in
# full in every mode, so reduce what you need in the carry (a running sum of the
# readout), as `MEMprop` does.
#
# ## Measuring it
#
# We differentiate a layer of 128 MIF neurons driven through a 784 × 128 weight matrix,
# for a batch of 32 images, with the loss reduced in the carry. `jax.jit(f).lower(...)
# .compile()` compiles without running, and `memory_analysis()` reports the buffers XLA
# allocated for the program: `temp_size_in_bytes` is the working memory of the
# backward pass (arguments and outputs excluded).

# %%
neuron = mj.MIF()
batch, n_in, n_hidden = 32, 784, 128
x = jnp.asarray(np.random.default_rng(0).uniform(size=(batch, n_in)), jnp.float32)
w = 1e-6 * jax.random.normal(jax.random.key(0), (n_in, n_hidden))


def loss(w, x, T, mode):
    """Mean squared membrane voltage over T steps of 0.1 ms (a stand-in for a readout)."""
    i_in = 2.0 * (x @ w)  # input currents (A), held over the window
    state0 = neuron.init_state(i_in.shape)

    def body(carry, _):
        state, acc = carry
        state = neuron.step(state, i_in, 1e-4)
        return (state, acc + jnp.mean(state.v**2)), None

    (_, acc), _ = mj.checkpointed_scan(body, (state0, jnp.zeros(())), length=T, checkpoint=mode)
    return acc / T


Ts = [100, 1000, 10000] if FULL else [100, 300, 1000]
modes = ["none", "step", "sqrt"]
temp_mb = {m: [] for m in modes}
compiled = {}
for T in Ts:
    for mode in modes:
        grad_fn = jax.jit(jax.grad(loss), static_argnums=(2, 3))
        compiled[T, mode] = grad_fn.lower(w, x, T, mode).compile()
        temp_mb[mode].append(compiled[T, mode].memory_analysis().temp_size_in_bytes / 1e6)
for mode in modes:
    print(f"{mode:>5}: " + ", ".join(f"T={T}: {mb:7.2f} MB" for T, mb in zip(Ts, temp_mb[mode])))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.8))
for mode in modes:
    ax.loglog(Ts, temp_mb[mode], "o-", label=f'checkpoint="{mode}"')
ax.set(
    xlabel="time steps T",
    ylabel="compiled temp memory (MB)",
    title="BPTT memory of one MIF layer",
)
ax.legend()
fig.tight_layout()

# %% [markdown]
# All three modes compute the same gradient (the compiled functions can be called
# directly):

# %%
T = Ts[0]
g = {mode: compiled[T, mode](w, x) for mode in modes}
scale = float(jnp.max(jnp.abs(g["none"])))
for mode in ("step", "sqrt"):
    diff = float(jnp.max(jnp.abs(g[mode] - g["none"])))
    print(f'max |grad("{mode}") - grad("none")| = {diff:.2e} (gradient scale {scale:.2e})')

# %% [markdown]
# The slopes tell the story: `"none"` and `"step"` grow linearly in $T$ (`"step"` with a
# much smaller constant: one state per step instead of every intermediate), `"sqrt"`
# grows as $\sqrt T$. `MEMprop` uses the same function: `MEMprop.init(...,
# checkpoint="step")` is its default, `checkpoint="sqrt"` (or an integer segment length)
# bounds memory for long windows, at the cost of one more forward pass. The benchmark
# `memory-bptt` measures full training steps (peak RSS and time, as well as XLA's
# numbers) for windows up to 2,000 steps.
#
# ## Data-parallel training
#
# With more data, the batch is the natural thing to split: each device computes the
# forward and backward pass on its slice, and the batch-mean gradient is an all-reduce.
# In JAX this needs no new program. A `jax.sharding.Mesh` names the devices, arrays are
# *placed* with a `NamedSharding`, and `jit` partitions the same step accordingly
# (GSPMD). `memjax.distributed` has the three pieces: `data_mesh()` (a 1-D mesh with
# axis `"data"`), `replicate` (parameters on every device) and `shard_batch` (each
# batch split along its first axis).

# %%
mesh = data_mesh()
print(mesh)
xb = shard_batch(jnp.asarray(x), mesh)
print("a batch of", xb.shape, "sharded as", xb.sharding.spec)
for shard in xb.addressable_shards:
    print(f"  {shard.device}: rows {shard.index[0].start}..{shard.index[0].stop - 1}")

# %% [markdown]
# `fit(..., mesh=mesh)` does the placement itself: parameters, optimiser state and key
# replicated, every batch sharded (the batch size must be divisible by the number of
# devices). We train the same small MEMprop network for two epochs on one device and on
# the four-device mesh:

# %%
with warnings.catch_warnings():  # without a data folder this is the bundled sample
    warnings.simplefilter("ignore", UserWarning)
    x_train, y_train = D.load("mnist", "train", limit=None if FULL else 1024, download=FULL)
x_train = D.normalize(x_train, flatten=True)

histories = {}
for name, m in [("1 device", None), ("4 devices", mesh)]:
    model = MEMprop.init(jax.random.key(0), 784, 64, 10)
    _, histories[name] = mj.fit(
        model,
        memprop_loss,
        optax.adam(2e-3),
        (x_train, y_train),
        epochs=2,
        batch_size=64,
        project=project,
        progress=False,
        mesh=m,
    )
    print(f"{name}: train loss per epoch {np.round(histories[name]['train_loss'], 6)}")
diff = np.max(np.abs(np.subtract(*[h["train_loss"] for h in histories.values()])))
print(f"largest difference of the epoch losses: {diff:.1e}")

# %% [markdown]
# The two runs agree up to floating-point summation order: sharding changes where the
# arithmetic happens, not what is computed. (Under a mesh XLA logs the warning "Involuntary
# full rematerialization" for MEMprop's check that the images lie in $[0, 1]$, which
# makes the partitioner copy the batch once per step; the result is unchanged. The
# first cell hides XLA's warnings with `TF_CPP_MIN_LOG_LEVEL=2`.) On one CPU the four logical devices share
# two cores, so nothing is faster here; on a machine with several GPUs (or several
# hosts after `jax.distributed.initialize`, see the
# [performance guide](../performance.md)) the same call scales the batch.
#
# ## What changes on a GPU
#
# Nothing in the code. Install the CUDA build of JAX and memjax runs its arrays on the
# GPU:
#
# ```bash
# pip install -U "jax[cuda12]"
# python -c "import jax; print(jax.devices())"   # [CudaDevice(id=0), ...]
# ```
#
# What to expect and adjust:
#
# - **Batch and network size**: the MIF updates are elementwise and the crossbars are
#   matmuls, so a GPU pays off with large batches and layers; tiny problems are bound
#   by kernel launches, and a CPU can be as fast.
# - **Memory**: GPU memory is smaller than host memory, which is where the checkpoint
#   modes above matter; `memory_analysis()` reports the same numbers for a GPU program.
#   JAX preallocates 75 % of GPU memory by default
#   (`XLA_PYTHON_CLIENT_PREALLOCATE=false` turns that off when sharing a GPU).
# - **Precision**: float32 is the default and agrees with float64 to rounding; float16
#   inputs are promoted to float32 (the capacitance of 1 nF and currents in µA
#   underflow float16's exponent range). bfloat16 (float32's range) is kept: mixed
#   precision, with float32 master weights and the optimiser and a bfloat16 forward, is
#   an option on accelerators with bfloat16 units, where it saves memory and bandwidth
#   (XLA's CPU backend has no bfloat16 arithmetic, so it is not faster on CPU).
# - **Several GPUs**: `data_mesh()` uses every visible GPU; `fit(mesh=...)` as above.
#
# ## What to try next
#
# - Set `FULL = True`: windows of 10,000 steps in the memory sweep, and the full MNIST
#   training set (`MEMJAX_DATA_DIR`, or let memjax download it).
# - Train `MEMprop` with `n_steps=200, checkpoint="sqrt"` and compare the step time with
#   `"step"`: the price of the lower memory.
# - An integer segment length, `checkpoint=25`, chooses the point between `"step"`
#   and `"sqrt"` yourself.
# - The benchmarks `memory-bptt` and `scale-out` (`python -m benchmarks list`) measure
#   both topics at full size; the [performance guide](../performance.md) explains the
#   results.
