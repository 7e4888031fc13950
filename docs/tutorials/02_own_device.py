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
# # Your own device model
#
# memjax's compact models are small `eqx.Module`s with three methods. Anything that
# implements them can be simulated, batched into a population, differentiated and put
# into a network like the built-in models. This tutorial writes a new model from scratch,
# then does what every model in `memjax.devices` went through before it was trusted:
#
# 1. validate its parameters at construction;
# 2. check the fast fixed-step simulation against an adaptive-step reference solver;
# 3. check its gradients against float64 finite differences;
# 4. use it in a population with device-to-device spread.

# %%
from typing import ClassVar

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float

import memjax as mj
from memjax.devices import AbstractMemristor
from memjax.waveforms import Sine

# %% [markdown]
# ## The model
#
# Ions in an oxide hop over energy barriers; an applied field lowers the barrier in one
# direction and raises it in the other, so the drift speed grows as $\sinh$ of the
# voltage rather than linearly (Strukov & Williams, Appl. Phys. A 94, 515, 2009). We
# combine that switching kinetics with a conductance that interpolates between an ON
# and an OFF value, and a parabolic window that stops the state at the edges:
#
# $$ i = \big(G_\mathrm{off} + (G_\mathrm{on} - G_\mathrm{off})\,x\big)\,v, \qquad
#    \frac{dx}{dt} = k\,\sinh\!\left(\frac{v}{v_0}\right)\,4x(1 - x) + \epsilon\,(1 - 2x)\,|\sinh(v/v_0)|, $$
#
# with $x \in [0, 1]$. The small $\epsilon$ term keeps a device that sits exactly at a
# bound from being stuck there forever (the window is zero at both edges). The ``sinh``
# gives the model a soft threshold: at $|v| \ll v_0$ it barely moves (reading does not
# disturb the stored state), at $|v| \gg v_0$ it switches fast.
#
# ## Writing it
#
# Subclass `AbstractMemristor` (in `memjax.devices`) and provide:
#
# - the parameters as fields, in SI units, with defaults, and the initial state `x0`;
# - `rate(x, v)`: the state equation $dx/dt$;
# - `current(x, v)`: the port equation $i$;
# - `state_bounds()`: where the simulator clips the state;
# - `__check_init__`: equinox calls it after construction; raise a `ValueError` that
#   names the parameter and its allowed range.
#
# Write the equations with `jnp` and no Python `if` on values, so one model instance
# whose fields are arrays *is* a population, and `jit`, `vmap` and `grad` work.
# Validation must skip traced values (inside `jit` there is nothing concrete to check);
# the helper below does that.


# %%
def _check(name, ok, allowed, *values):
    """Raise if ``ok(*values)`` fails; skip traced values (nothing concrete to check)."""
    if any(isinstance(v, jax.core.Tracer) for v in values):
        return
    arrays = [np.asarray(v, dtype=float) for v in values]
    if not np.all(ok(*arrays)):
        raise ValueError(f"SinhDrift.{name} must be {allowed}; got {values[0]}")


class SinhDrift(AbstractMemristor):
    """Sinh-drift memristor: ``i = (G_off + (G_on - G_off) x) v``,
    ``dx/dt = k sinh(v / v0) 4 x (1 - x) + eps (1 - 2x) |sinh(v / v0)|``."""

    state_name: ClassVar[str] = "x"

    G_on: Float[ArrayLike, "..."] = 1e-3  # S
    G_off: Float[ArrayLike, "..."] = 1e-5  # S
    k: Float[ArrayLike, "..."] = 0.2  # 1/s
    v0: Float[ArrayLike, "..."] = 0.25  # V
    eps: Float[ArrayLike, "..."] = 1e-3  # 1/s
    x0: Float[ArrayLike, "..."] = 0.1

    def __check_init__(self):
        positive = lambda a: np.isfinite(a) & (a > 0)
        for name in ("G_on", "G_off", "k", "v0"):
            _check(name, positive, "finite and > 0", getattr(self, name))
        _check("eps", lambda a: np.isfinite(a) & (a >= 0), "finite and >= 0", self.eps)
        _check("G_off", lambda off, on: off < on, "< G_on", self.G_off, self.G_on)
        _check("x0", lambda a: (a >= 0) & (a <= 1), "in [0, 1]", self.x0)

    def current(self, x, v):
        return (self.G_off + (self.G_on - self.G_off) * x) * v

    def rate(self, x, v):
        drive = jnp.sinh(v / self.v0)
        return self.k * drive * 4 * x * (1 - x) + self.eps * (1 - 2 * x) * jnp.abs(drive)

    def state_bounds(self):
        return 0.0, 1.0


device = SinhDrift()
for bad in ({"v0": -0.1}, {"G_off": 2e-3}, {"x0": 1.5}):
    try:
        SinhDrift(**bad)
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# ## A first simulation
#
# The new model plugs straight into `mj.simulate`. A 1 V sine at 1 Hz, 2,000 samples:

# %%
drive = Sine(amplitude=1.0, frequency=1.0)
traj = mj.simulate(device, drive, dt=1e-3, n_steps=2000, substeps=4)

fig, (ax_iv, ax_x) = plt.subplots(1, 2, figsize=(10, 4))
ax_iv.plot(traj.v, 1e3 * traj.i)
ax_iv.set(xlabel="voltage (V)", ylabel="current (mA)", title="I-V loop")
ax_x.plot(traj.t, traj.x)
ax_x.set(xlabel="time (s)", ylabel="state x", title="state")
fig.tight_layout()

# %% [markdown]
# ## Check 1: against the adaptive reference
#
# `mj.simulate` takes fixed steps: fast and differentiable, but only as accurate as the
# step. `mj.simulate_reference` solves the same problem with diffrax's adaptive solver
# at tight tolerances. Run both in float64 so the comparison measures the integration
# error, not rounding. If they disagree, the step is too coarse for your model's time
# scale (raise `substeps`), or the model has a discontinuity the fixed step cannot see.

# %%
with jax.enable_x64(True):
    dev64 = SinhDrift(x0=jnp.float64(0.1))
    fast = mj.simulate(dev64, drive, dt=1e-3, n_steps=2000, substeps=4)
    ref = mj.simulate_reference(dev64, drive, fast.t, rtol=1e-10)
    err_x = float(jnp.max(jnp.abs(fast.x - ref.x)))
    err_i = float(jnp.max(jnp.abs(fast.i - ref.i)) / jnp.max(jnp.abs(ref.i)))
print(f"max |x - x_ref| = {err_x:.2e}; max current error relative to the peak = {err_i:.2e}")
assert err_i < 1e-4, "the fixed-step path disagrees with the reference"

# %% [markdown]
# ## Check 2: gradients against finite differences
#
# Training a network of these devices, or fitting the model to measurements, needs
# gradients through the whole simulation. `jax.grad` differentiates the scan exactly; a
# central finite difference in float64 is an independent estimate. Here: the derivative
# of the final state with respect to each parameter.

# %%
params = ("G_on", "G_off", "k", "v0")


def final_state(values):
    dev = SinhDrift(**dict(zip(params, values)), x0=jnp.float64(0.1))
    return mj.simulate(dev, drive, dt=1e-3, n_steps=500, substeps=4).x[-1]


with jax.enable_x64(True):
    p0 = jnp.array([1e-3, 1e-5, 0.2, 0.25], dtype=jnp.float64)
    exact = jax.jit(jax.grad(final_state))(p0)
    f = jax.jit(final_state)
    for n, name in enumerate(params):
        h = 1e-6 * p0[n]
        step = jnp.zeros_like(p0).at[n].set(h)
        fd = (f(p0 + step) - f(p0 - step)) / (2 * h)
        rel = abs(float(exact[n] - fd)) / max(abs(float(fd)), 1e-30)
        print(
            f"d x_final / d {name:5s}: grad {float(exact[n]): .6e}   finite diff {float(fd): .6e}   rel. diff {rel:.1e}"
        )

# %% [markdown]
# The conductances do not enter the state equation, so their derivatives are zero both
# ways: a good sanity check that the gradient does not leak through the port equation.
# `k` and `v0` set the switching speed and agree to many digits.
#
# ## Use it in a population
#
# Because the fields are arrays and the equations elementwise, `mj.sample_population`
# works unchanged: it broadcasts every float field to 1,000 devices, perturbs the ones you
# name, and runs `__check_init__` again on the drawn values.

# %%
population = mj.sample_population(device, jax.random.key(1), 1000, {"k": 0.3, "v0": 0.1})
pop_traj = jax.jit(lambda pop: mj.simulate(pop, drive, dt=1e-3, n_steps=2000, substeps=4))(
    population
)

fig, (ax_iv, ax_h) = plt.subplots(1, 2, figsize=(10, 4))
for n in range(8):
    ax_iv.plot(pop_traj.v, 1e3 * pop_traj.i[n], lw=0.8)
ax_iv.set(xlabel="voltage (V)", ylabel="current (mA)", title="eight devices of the population")
ax_h.hist(pop_traj.x.max(axis=1), bins=40)
ax_h.set(xlabel="largest state reached", ylabel="devices", title="1,000 devices")
fig.tight_layout()

# %% [markdown]
# ## What to try next
#
# - Make the model asymmetric: separate `k_set` and `k_reset`, as real devices switch
#   faster in one direction (compare `memjax.devices.TEAMMemristor`).
# - Add a second, read-disturb check: how many 0.1 V read pulses (`memjax.waveforms.PulseTrain`)
#   change the state by 1 %?
# - Replace the window with one of `memjax.devices.windows` and see which the reference
#   check likes best at a coarse step.
# - Look at how `memjax.devices.HPMemristor` is written (the [API reference](../api/devices.md)
#   shows every model's equations and sources), and at [tutorial 1](01_first_memristor.ipynb)
#   for populations at scale.
