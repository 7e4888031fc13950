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
# # A first memristor
#
# A memristor is a resistor whose resistance depends on the charge that has flowed
# through it. This tutorial builds the best-known compact model, the HP linear ion drift
# device, drives it with a sine, and looks at the fingerprint every memristor shares: a
# current-voltage loop pinched at the origin that shrinks as the frequency rises. Then it
# simulates 10,000 slightly different devices at once, because real devices are never
# identical and a network of them inherits their spread.
#
# You will use `memjax.devices` (the compact models), `memjax.waveforms` (drives) and
# `memjax.simulate` / `memjax.sample_population`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import memjax as mj
from memjax.devices import Biolek, HPMemristor
from memjax.waveforms import Sine

# %% [markdown]
# ## The model
#
# Strukov et al. (Nature 453, 80, 2008) describe a TiO$_2$ film of thickness $D$ with a
# doped, conducting region of width $w$. With the state $x = w/D \in [0, 1]$:
#
# $$ v = \big(R_\mathrm{on}\,x + R_\mathrm{off}\,(1 - x)\big)\, i, \qquad
#    \frac{dx}{dt} = \frac{\mu_v R_\mathrm{on}}{D^2}\, i\, F(x, i). $$
#
# The first equation is the *port equation* (what a circuit sees), the second the *state
# equation* (how the device remembers). The window $F$ slows the drift near the film's
# edges so $x$ stays inside $[0, 1]$. Biolek's window (Radioengineering 18, 210, 2009),
# $F(x, i) = 1 - (x - \mathrm{stp}(-i))^{2p}$, depends on the sign of the current, so a
# device pushed to one boundary can always leave it again, which the older Joglekar
# window does not allow.
#
# A model is an `eqx.Module` whose fields are the parameters in SI units. Construction
# validates them, so a typo gives an error naming the parameter rather than a silent NaN
# a thousand steps later:

# %%
device = HPMemristor(window=Biolek(p=2))
print(device)

try:
    HPMemristor(R_on=20e3)  # R_on must stay below R_off
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## Driving it with a sine
#
# `mj.simulate` integrates the state equation with a fixed-step solver (RK4 by default)
# inside one `jax.lax.scan`, samples the drive every `dt` seconds and clips the state to
# its bounds after each step. `substeps` subdivides each sample interval: the output stays
# at `n_steps` samples while the integration error shrinks. We simulate two periods at
# each of three frequencies, always with 1,000 samples per period.
#
# Why a fixed step and not an adaptive solver? A fixed step gives the same number of
# operations for every device and every input, so `jit` compiles it once, `vmap` batches
# it, and `grad` runs backwards through it at a known memory cost. The adaptive reference
# exists too (tutorial 2 uses it to check a model).

# %%
frequencies = [0.5, 1.0, 4.0]  # Hz
samples_per_period = 1000


def run(device, frequency):
    drive = Sine(amplitude=1.0, frequency=frequency)
    dt = 1.0 / (frequency * samples_per_period)
    return mj.simulate(device, drive, dt=dt, n_steps=2 * samples_per_period, substeps=4)


trajectories = {f: run(device, f) for f in frequencies}

fig, (ax_iv, ax_x) = plt.subplots(1, 2, figsize=(10, 4))
for f, traj in trajectories.items():
    ax_iv.plot(traj.v, 1e3 * traj.i, label=f"{f:g} Hz")
    ax_x.plot(traj.t * f, traj.x, label=f"{f:g} Hz")
ax_iv.set(xlabel="voltage (V)", ylabel="current (mA)", title="pinched hysteresis loops")
ax_x.set(xlabel="time (periods)", ylabel="state x = w/D", title="internal state")
ax_iv.legend()
ax_x.legend()
fig.tight_layout()

# %% [markdown]
# Three things to read off the figure:
#
# - every loop passes through the origin: at $v = 0$ the current is $0$ whatever the
#   state, because the device is a resistor, not a battery or a capacitor;
# - the loop is wide at 0.5 Hz and almost a line at 4 Hz: at a higher frequency less charge
#   flows per half-period, so $x$ moves less, and the device looks like a fixed resistor;
# - the state does not come back to where it started: the device starts at $x_0 = 0.1$,
#   off its periodic orbit, and drifts toward the orbit over the first periods (most
#   visibly at 0.5 Hz, where each half-period moves the state furthest).
#
# The area enclosed by the loop, $\oint i\,dv$, measures how much the device "remembers"
# per cycle (it is zero for a plain resistor):

# %%
for f, traj in trajectories.items():
    last = slice(samples_per_period, None)  # second period, on the periodic orbit
    area = jnp.abs(jnp.trapezoid(traj.i[last], traj.v[last]))
    print(
        f"{f:4.1f} Hz: x swings {float(traj.x[last].min()):.2f}..{float(traj.x[last].max()):.2f},"
        f" loop area {1e6 * float(area):.1f} uA V"
    )

# %% [markdown]
# ## 10,000 devices with device-to-device spread
#
# Fabricated devices differ: film thickness, mobility and the off resistance all vary
# from device to device. `mj.sample_population` draws a population around a nominal
# device: every floating-point parameter gets a leading axis of length `n`, and the ones
# named in `spread` are perturbed per device (log-normal by default, `sigma` relative).
# The population is *the same model class*, so the same `simulate` runs all of it: the
# `mj.simulate_population` maps `simulate` over the population's leading axis with `vmap`,
# so each device is simulated by the code written for one device. (The built-in models'
# equations are elementwise, so calling `mj.simulate(population, ...)` directly gives the
# same result without the batching transform.) The drawn devices are validated again, so
# a spread that produced an unphysical device would raise.
#
# We compile with `eqx.filter_jit` rather than `jax.jit`: it traces only the array
# leaves of the model and keeps plain Python values such as the window exponent `p=2`
# static, which `vmap` over the population needs.

# %%
n_devices = 10_000  # scale up freely: memory grows as n_devices * n_steps
population = mj.sample_population(
    device, jax.random.key(0), n_devices, {"R_off": 0.1, "mu_v": 0.2, "D": 0.05}
)
print("R_off of the first three devices:", population.R_off[:3])

simulate_all = eqx.filter_jit(
    lambda pop: mj.simulate_population(
        mj.simulate, pop, Sine(1.0, 1.0), dt=1e-3, n_steps=2000, substeps=4
    )
)
pop_traj = simulate_all(population)
print("current array:", pop_traj.i.shape, "(devices, samples)")

# %% [markdown]
# Plotting 10,000 loops would be a solid blob; instead we plot the median current at each
# time sample and the band that holds the central 90 % of the devices, against the
# (shared) drive voltage of the second period, and the distribution of the state swing.

# %%
second = slice(1000, 2000)
i_ma = 1e3 * pop_traj.i[:, second]
lo, med, hi = jnp.percentile(i_ma, jnp.array([5.0, 50.0, 95.0]), axis=0)
v = pop_traj.v[0, second]  # the drive, the same for every device
swing = pop_traj.x[:, second].max(axis=1) - pop_traj.x[:, second].min(axis=1)

fig, (ax_band, ax_hist) = plt.subplots(1, 2, figsize=(10, 4))
ax_band.fill_between(jnp.arange(v.size), lo, hi, alpha=0.3, label="5-95 % of devices")
ax_band.plot(med, label="median device")
ax_band.set(xlabel="sample (1 ms each)", ylabel="current (mA)", title="current over one period")
ax_band.legend()
for k in range(5):
    ax_hist.plot(v, i_ma[k], lw=0.8)
ax_hist.set(xlabel="voltage (V)", ylabel="current (mA)", title="loops of five devices")
fig.tight_layout()

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.hist(swing, bins=60)
ax.set(xlabel="state swing over one period", ylabel="devices", title="spread of the memory effect")
fig.tight_layout()
print(
    f"state swing: median {float(jnp.median(swing)):.3f}, "
    f"5-95 % range {float(jnp.percentile(swing, 5)):.3f}..{float(jnp.percentile(swing, 95)):.3f}"
)

# %% [markdown]
# The swing depends on $\mu_v / D^2$ and on the current, which $R_\mathrm{off}$ sets at the
# start of the loop, so modest spreads in three parameters widen the memory effect
# considerably. This is the variability a crossbar of these devices has to tolerate.
#
# ## What to try next
#
# - Swap the window: `Joglekar(p=1)` or `Prodromakis(p=7)` from `memjax.devices`, and drive
#   the device into a boundary with a larger amplitude to see why Biolek's window exists.
# - Other compact models share the same interface: `TEAMMemristor`, `YakopcicMemristor`,
#   `StanfordPKURRAM`, `MMSSMemristor` (see the [devices guide](../devices.md)).
# - Differentiate through the simulation: `jax.grad` of the loop area with respect to
#   `R_off` (the [API reference](../api/devices.md) lists what each model exposes).
# - Write your own model: [tutorial 2](02_own_device.ipynb).
