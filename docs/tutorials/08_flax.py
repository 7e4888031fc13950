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
# # memjax inside Flax
#
# memjax's layers are [equinox](https://docs.kidger.site/equinox/) modules. If your
# project is written in [Flax NNX](https://flax.readthedocs.io/), you do not have to
# switch: `memjax.interop.to_nnx` wraps any memjax module (a crossbar, a MIF layer, a
# whole network) as an `nnx.Module`, so it sits in an NNX model next to `nnx.Linear` and
# trains with `nnx.Optimizer`, `nnx.jit` and `nnx.value_and_grad` like any other layer.
#
# This tutorial builds a small MNIST classifier whose readout is an RRAM crossbar,
# trains it with Flax's own tools, then reads the trained conductances back through a
# less ideal array (quantised levels, read noise) to see what they cost.

# %%
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx

import memjax as mj
from memjax.interop import to_nnx

# %% [markdown]
# ## The crossbar layer
#
# A `memjax.Crossbar` stores each weight as a differential pair of RRAM cells with
# normalised conductances $u_\pm \in [0, 1]$, $G_\pm = G_\mathrm{min} + u_\pm
# (G_\mathrm{max} - G_\mathrm{min})$. Row voltages $v_i$ give column currents by Ohm's and
# Kirchhoff's laws,
#
# $$ I_j = \sum_i v_i \,(G_{+,ij} - G_{-,ij}), $$
#
# a matrix-vector product computed by the physics of the array. The trainable leaves are
# $u_+$ and $u_-$; the device and the non-idealities (quantisation, noise, converters)
# live in a static `CrossbarConfig`. `to_nnx` turns each trainable leaf into an
# `nnx.Param` and keeps the rest as a static attribute; calling the wrapper calls the
# crossbar.

# %%
key = jax.random.key(0)
config = mj.CrossbarConfig(device=mj.MultiLevelRRAM())
layer = to_nnx(mj.Crossbar.init(key, 64, 10, config))
print(type(layer).__name__, [p.get_value().shape for p in layer.params])
print("the wrapped crossbar:", type(layer.module).__name__)

# %% [markdown]
# ## An NNX model with a memristive readout
#
# A digital `nnx.Linear` layer maps the 784 pixels to 64 features; a sigmoid scaled to
# 0-0.2 V turns them into row voltages (the crossbar's read voltage, small enough not to
# disturb the cells); the crossbar's column currents, of the order of microamperes, are
# scaled to logits.

# %%
V_READ = 0.2  # V
I_SCALE = 1e5  # 1/A: 10 uA -> logit 1


class Net(nnx.Module):
    def __init__(self, key, rngs: nnx.Rngs):
        self.lin = nnx.Linear(784, 64, rngs=rngs)
        self.xb = to_nnx(mj.Crossbar.init(key, 64, 10, config))

    def __call__(self, x):
        v = V_READ * jax.nn.sigmoid(self.lin(x))
        return I_SCALE * self.xb(v)


# %% [markdown]
# ## Data
#
# The bundled MNIST sample (2,000 training and 1,000 test images); `FULL = True` takes
# the full set.

# %%
FULL = False

source = "auto" if FULL else "sample"
x_train, y_train = mj.data.load("mnist", "train", source=source)
x_test, y_test = mj.data.load("mnist", "test", source=source)
x_train = mj.data.normalize(x_train, flatten=True)
x_test = mj.data.normalize(x_test, flatten=True)
print(x_train.shape, x_test.shape)

# %% [markdown]
# ## Training with `nnx.Optimizer`
#
# `nnx.Optimizer(model, optax.adam(...), wrt=nnx.Param)` holds Adam's state for every
# `nnx.Param` of the model, the crossbar's included. The step is the usual NNX one under
# `nnx.jit`, with one addition: a conductance cannot leave $[G_\mathrm{min},
# G_\mathrm{max}]$, so after each update the crossbar's $u_\pm$ are clipped back to
# $[0, 1]$ (what `Crossbar.project` does for an equinox model). `nnx.jit` propagates the
# in-place updates of the model and the optimizer out of the compiled function.

# %%
EPOCHS = 10 if FULL else 8
BATCH_SIZE = 100

model = Net(key, nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)


def project(wrapper):
    """Keep the crossbar's normalised conductances in [0, 1]."""
    for p in wrapper.params:
        p.set_value(jnp.clip(p.get_value(), 0.0, 1.0))


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        logits = model(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    project(model.xb)
    return loss


@nnx.jit
def predict(model, x):
    return jnp.argmax(model(x), axis=-1)


def accuracy(model, x, y):
    return float(np.mean(np.asarray(predict(model, x)) == y))


rng = np.random.default_rng(0)
step_loss, test_acc = [], []
t0 = time.perf_counter()
for epoch in range(EPOCHS):
    perm = rng.permutation(len(x_train))
    for s in range(0, len(perm) - BATCH_SIZE + 1, BATCH_SIZE):
        b = perm[s : s + BATCH_SIZE]
        step_loss.append(float(train_step(model, optimizer, x_train[b], y_train[b])))
    test_acc.append(accuracy(model, x_test, y_test))
    print(
        f"epoch {epoch + 1}: loss {np.mean(step_loss[-len(perm) // BATCH_SIZE :]):.3f}, test accuracy {test_acc[-1]:.3f}"
    )
print(f"training took {time.perf_counter() - t0:.1f} s")

# %%
fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.5))
steps_per_epoch = len(x_train) // BATCH_SIZE
ax_l.plot(np.arange(1, len(step_loss) + 1) / steps_per_epoch, step_loss, lw=0.8)
ax_l.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
ax_a.plot(np.arange(1, EPOCHS + 1), test_acc, marker="o")
ax_a.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
for ax in (ax_l, ax_a):
    ax.grid(alpha=0.3)
fig.tight_layout()

# %% [markdown]
# ## Back to memjax: the trained crossbar on devices
#
# `model.xb.module` is a plain `memjax.Crossbar` again, with the trained conductances, so
# everything memjax offers for crossbars applies. Here: the same conductances on a
# less ideal array, where each cell holds one of the device's 32 levels
# (`quantize_levels`) and every read multiplies each conductance by
# $1 + \sigma_\mathrm{read} z$, $z \sim \mathcal{N}(0, 1)$, fresh per read
# (`read_noise`; $\sigma_\mathrm{read}$ = 1 % by default). Five noisy reads of the test
# set, against the ideal layer:

# %%
trained = model.xb.module
real_config = mj.CrossbarConfig(device=mj.MultiLevelRRAM(), quantize_levels=True, read_noise=True)
on_chip = mj.Crossbar(u_pos=trained.u_pos, u_neg=trained.u_neg, config=real_config)

features = V_READ * jax.nn.sigmoid(model.lin(x_test))
read = eqx.filter_jit(lambda xb, v, k: jnp.argmax(xb(v, key=k), axis=-1))
reads = [
    float(np.mean(np.asarray(read(on_chip, features, jax.random.key(10 + r))) == y_test))
    for r in range(5)
]
print(
    f"ideal crossbar: {accuracy(model, x_test, y_test):.3f}; 32 levels and read noise: {np.mean(reads):.3f} +- {np.std(reads):.3f}"
)

# %% [markdown]
# Differential pairs of 32-level cells hold these weights closely enough that the
# accuracy barely moves. To put a modified crossbar back into the NNX model, wrap it
# again: `model.xb = to_nnx(on_chip)`. Switch on more non-idealities in `CrossbarConfig`
# (`dac_bits`, `adc_bits`, `stuck_faults`) during training as well, and the network
# learns to tolerate them.
#
# ## What to try next
#
# - Write the trained conductances into cells by program-and-verify with write noise:
#   `Crossbar.program(key)` with `program_noise=True` in the config (wrap it in
#   `eqx.filter_jit`), then count the pulses in the returned cell state.
# - Train with the non-idealities on: `mj.CrossbarConfig(quantize_levels=True,
#   dac_bits=4, adc_bits=6)` (straight-through gradients, see the
#   [crossbar guide](../crossbar.md)).
# - Wrap a spiking layer instead: any equinox module works with `to_nnx`, e.g. a MIF
#   network from `memjax.models`; `to_nnx(module, filter_spec)` chooses which leaves
#   become `nnx.Param`s.
# - Go the other way: `memjax.interop.from_linen` brings a `flax.linen` module (a CNN
#   feature extractor) into an equinox model trained by `memjax.fit`.
# - `flax.nnx.bridge.ToLinen` takes the wrapped layer on into Linen code.
# - Set `FULL = True` to train on the full 60,000 images.
