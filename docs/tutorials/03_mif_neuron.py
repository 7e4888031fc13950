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
# # The MIF neuron on its own
#
# The memristive integrate-and-fire (MIF) neuron of MEMprop (Zhou, Eshraghian et al.,
# IEEE JETCAS 2022, arXiv:2206.12992) is a spiking neuron built from a capacitor, two
# memristors and two batteries, with no threshold comparator and no reset circuit: the
# spike *is* the switching of the memristors. Before it goes into a network (tutorial
# 4), this tutorial looks at one neuron alone: how it is built from SI parameters, what
# a current pulse does to its membrane voltage and to the memristor states, how the
# orientation of the memristors and the initial state matter, how small the time step
# must be, and whether a circuit simulator (ngspice) agrees.
#
# You will use `memjax.MIF`, `memjax.neurons.simulate` and `memjax.neurons.mif_vector_field`.

# %%
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import memjax as mj
from memjax.devices import MMSSMemristor
from memjax.neurons import simulate

# %% [markdown]
# ## The circuit
#
# A membrane capacitor $C$ sits in parallel with two branches, each a mean-metastable-
# switch (MMSS) memristor $M_k$ in series with a battery $E_k$. The input current
# $i_\mathrm{in}$ reaches the membrane through an alpha-shaped synaptic filter:
#
# $$ \tau_a \dot a = i_\mathrm{in} - a, \qquad \tau_a \dot I = a - I, \qquad
#    C \dot v = I - G_1(x_1)\,(v - E_1) - G_2(x_2)\,(v - E_2). $$
#
# Each memristor is an ensemble of two-state switches; $x_k \in [0, 1]$ is the fraction
# that is ON (Molter & Nugent, arXiv:1608.04659):
#
# $$ G_k(x) = \frac{x}{R_\mathrm{on}} + \frac{1 - x}{R_\mathrm{off}}, \qquad
#    \tau\,\dot x_k = (1 - x_k)\,P_\mathrm{on}(V_k) - x_k\,P_\mathrm{off}(V_k), $$
#
# with logistic switching probabilities $P_\mathrm{on}(V) = \sigma\big((V - V_\mathrm{on})/v_T\big)$,
# $P_\mathrm{off}(V) = 1 - \sigma\big((V + V_\mathrm{off})/v_T\big)$, and $V_k = s_k\,(v - E_k)$
# the voltage across memristor $k$ in its orientation $s_k = \pm 1$.
#
# Why this spikes: input charges $C$; once $v - E_1$ exceeds $V_\mathrm{on}$, $M_1$
# switches ON, its conductance rises 100-fold and it pulls $v$ down towards $E_1$
# (the downstroke); near $E_1$ the voltage across it is small, so it relaxes OFF again
# (recovery). The spike's height and width are set by the devices, not by a threshold
# parameter, and every step of it is differentiable.
#
# The defaults of `MIF` are the authors' prototype in SI units (their discrete map has one
# step of 10 µs absorbed into its constants: `C` = 1 nF, `tau = tau_a` = 1 ms; see the
# [MIF guide](../mif.md) for the table and for every default that differs from the
# literal circuit). Each memristor is an `MMSSMemristor`; everything is an ordinary field:

# %%
neuron = mj.MIF()
print(
    "C =",
    neuron.C,
    "F;  E1, E2 =",
    neuron.E1,
    neuron.E2,
    "V;  tau_a =",
    neuron.tau_a,
    "s",
)
print("M1:", neuron.m1)
print("polarities s1, s2 =", neuron.polarity1, neuron.polarity2)

# A neuron built explicitly from SI parameters (here: the same values written out)
memristor = MMSSMemristor(
    R_on=1e3, R_off=100e3, V_on=0.110, V_off=-0.005, tau=1e-3, v_t=0.015, x0=0.0238
)
neuron = mj.MIF(C=1e-9, E1=-0.025, E2=0.025, tau_a=1e-3, m1=memristor, m2=memristor)

# %% [markdown]
# The time constants follow from these numbers: with both memristors OFF the membrane
# relaxes with $R_\mathrm{off} C / 2$ = 50 µs, with one ON with $R_\mathrm{on} C$ = 1 µs,
# while the memristors themselves switch in about $\tau$ = 1 ms. The membrane is fast
# and stiff, the memory is slow.
#
# ## Initial state: the rest point
#
# `init_state()` returns the state the neuron settles into without input: $v$ between
# the batteries where the two branch currents cancel, each $x_k$ at its equilibrium
# $P_\mathrm{on}/(P_\mathrm{on} + P_\mathrm{off})$. `init_state(at_rest=False)` starts instead
# from $v = 0$ and $x_k$ = `m.x0` (the prototype's 0.0238), which is not an equilibrium.

# %%
rest = neuron.init_state()
raw = neuron.init_state(at_rest=False)
print(
    f"rest point: v = {1e3 * float(rest.v):.3f} mV, x1 = {float(rest.x1):.4f}, x2 = {float(rest.x2):.4f}"
)
print(
    f"at_rest=False: v = {1e3 * float(raw.v):.3f} mV, x1 = {float(raw.x1):.4f}, x2 = {float(raw.x2):.4f}"
)

# %% [markdown]
# ## A current pulse
#
# `simulate(neuron, state0, inputs, dt)` runs `neuron.step` in one `lax.scan`. The input
# `inputs[k]` is held over $[k\,dt, (k+1)\,dt)$; `states[k]` is the state at $k\,dt$
# (`states[0]` is `state0`), and the returned `final` state is the one at $T\,dt$.
# The step is an exponential splitting that solves each sub-flow exactly, so it stays
# stable however stiff the membrane gets (forward Euler would diverge as soon as a
# memristor switches ON at any $dt > 2 R_\mathrm{on} C$ = 2 µs).
#
# We inject rectangular pulses of three amplitudes from 1 ms to 6 ms, with 10 µs steps.

# %%
dt = 10e-6  # s
T = 1500  # 15 ms
t = dt * np.arange(T)
t_on, t_off = 1e-3, 6e-3


def pulse(amplitude):
    """Input current (A) per step: ``amplitude`` during [t_on, t_off)."""
    return jnp.where((t >= t_on - 1e-12) & (t < t_off - 1e-12), amplitude, 0.0)


amplitudes = [3e-6, 10e-6, 30e-6]
runs = {a: simulate(neuron, rest, pulse(a), dt)[1] for a in amplitudes}

fig, (ax_v, ax_x) = plt.subplots(1, 2, figsize=(11, 4))
for a, st in runs.items():
    (line,) = ax_v.plot(1e3 * t, 1e3 * st.v, label=f"{1e6 * a:.0f} µA")
    ax_x.plot(1e3 * t, st.x1, color=line.get_color(), label=f"x1, {1e6 * a:.0f} µA")
    ax_x.plot(1e3 * t, st.x2, color=line.get_color(), ls=":", label=f"x2, {1e6 * a:.0f} µA")
for ax in (ax_v, ax_x):
    ax.axvspan(1e3 * t_on, 1e3 * t_off, color="0.92")
ax_v.set(xlabel="t (ms)", ylabel="v (mV)", title="membrane voltage")
ax_x.set(xlabel="t (ms)", ylabel="ON fraction", title="memristor states")
ax_v.legend()
ax_x.legend(fontsize=7, ncol=3)
fig.tight_layout()

# %% [markdown]
# What the figure shows (the grey band is the pulse):
#
# - the input charges the membrane within about a millisecond (the synaptic filter's
#   $\tau_a$) until $v - E_1$ approaches $V_\mathrm{on}$; then $M_1$ switches ON over about a
#   millisecond ($x_1$ rises, further for stronger pulses) and its growing conductance
#   pulls $v$ down while the input is still on: the falling plateau is the memristor at
#   work, not a fixed leak;
# - when the input stops, $M_1$ is still partly ON and pulls $v$ below rest, towards
#   $E_1$ = -25 mV: an undershoot during which the neuron is harder to excite, until
#   $x_1$ has relaxed over several milliseconds (the neuron's refractory memory);
# - $M_2$ is reverse-biased while $v$ is up ($V_2 = E_2 - v < 0$), so it turns further
#   OFF; it switches ON only when $v$ drops below $E_2 - V_\mathrm{on}$ = -85 mV (next
#   section);
# - the response is graded, not all-or-nothing: the logistic switching with
#   $v_T$ = 15 mV is soft, so the peak grows with the input.
#
# The output of the neuron for a network is the analog voltage $v$
# (`neuron.output(state)`); there is no binary spike to pass on.

# %% [markdown]
# ## Polarity: why $M_2$ is inserted in reverse
#
# An MMSS device switches ON only for a positive voltage across it. With the literal
# orientation ($s_2 = +1$, `MIF(polarity2=+1.0)`) $M_2$ would see $v - E_2 < 0$ during a
# hyperpolarisation and never switch ON, so nothing limits negative excursions. Reversed
# (the default, $s_2 = -1$), $M_2$ switches ON when $v$ drops below $E_2 - V_\mathrm{on}$ and
# pulls $v$ back up to $E_2$. A negative pulse shows the difference:

# %%
literal = mj.MIF(polarity2=+1.0)
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, n in [("default (s2 = -1)", neuron), ("literal (s2 = +1)", literal)]:
    _, st = simulate(n, n.init_state(), pulse(-30e-6), dt)
    ax.plot(1e3 * t, 1e3 * st.v, label=name)
    print(f"{name}: min v = {1e3 * float(st.v.min()):.1f} mV, max x2 = {float(st.x2.max()):.3f}")
ax.axvspan(1e3 * t_on, 1e3 * t_off, color="0.92")
ax.set(xlabel="t (ms)", ylabel="v (mV)", title="a -30 µA pulse")
ax.legend()
fig.tight_layout()

# %% [markdown]
# Starting away from rest is the other choice that changes what a network sees: from
# `at_rest=False` the memristors first relax from $x_0$ to their equilibrium during the
# first milliseconds, with no input at all. In MEMprop each sample window is only 10 ms,
# so the default starts every sample at rest.

# %%
_, st_raw = simulate(neuron, raw, jnp.zeros(T), dt)
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(1e3 * t, st_raw.x1, label="x1 from x0 (at_rest=False)")
ax.axhline(float(rest.x1), color="k", ls="--", lw=1, label="rest point")
ax.set(xlabel="t (ms)", ylabel="ON fraction", title="no input: relaxation to rest")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## How small must $dt$ be?
#
# `mif_step` solves each sub-flow exactly (the synaptic filter; $v$ over each half step
# for frozen conductances; each $x_k$ for the voltage across it frozen at mid-step) and
# evaluates the memristors at the mid-step voltage of the predicted mid-step
# conductances. While the membrane is stiff ($dt$ above ~20 µs, where $v$ follows its
# quasi-static value) that is a midpoint rule: second order; at smaller steps it is first
# order with a small constant. `substeps` refines the integration without changing the
# output grid, so we compare each step size against a float64 run with 200 times finer
# steps, on the 10 µA pulse, sampled at the same 10 µs points.


# %%
def vmax_error(h, v_ref, stride=1, substeps=1):
    """Max |v - v_ref| of a run with step h (s) and ``substeps``, on the output grid."""
    _, st = simulate(neuron, rest64, pulse(10e-6)[::stride], h, substeps=substeps)
    return float(jnp.max(jnp.abs(st.v - v_ref[::stride])))


with jax.enable_x64(True):  # the reference must be more accurate than the errors it measures
    rest64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), rest)
    fine = simulate(neuron, rest64, pulse(10e-6), dt, substeps=200)[1]  # 50 ns steps
    steps = [1000e-6, 200e-6, 50e-6, 10e-6, 2e-6, 0.5e-6]  # s
    errors = [
        vmax_error(h, fine.v, stride=round(h / dt))
        if h >= dt
        else vmax_error(dt, fine.v, substeps=round(dt / h))
        for h in steps
    ]
for h, e in zip(steps, errors):
    print(f"dt = {1e6 * h:6.1f} µs: max |v - v_fine| = {1e3 * e:.4f} mV")

fig, ax = plt.subplots(figsize=(5, 3.6))
ax.loglog(np.array(steps) * 1e6, np.array(errors) * 1e3, "o-", label="exponential midpoint")
for order, ls in ((1, "k--"), (2, "k:")):
    ref = errors[2] * 1e3 * (np.array(steps) / steps[2]) ** order
    ax.loglog(np.array(steps) * 1e6, ref, ls, lw=1, label=f"slope {order}")
ax.set(xlabel="dt (µs)", ylabel="max error of v (mV)", title="convergence")
ax.legend()
fig.tight_layout()

# %% [markdown]
# A step of 1 ms misses the shape of a single spike, yet stays bounded and finite. The
# MEMprop network integrates 50 µs steps, where the error over 1-300 µA stays below 2 %
# of the largest $|v|$ (the convergence study in docs/mif.md); for waveforms, use
# $dt \le 10$ µs.
#
# The same equations are also available as a vector field, `mif_vector_field(neuron,
# i_in)` (or `neuron.vector_field`), for the adaptive diffrax solver
# `memjax.integrate.odeint_reference`; the test suite holds the splitting against it.
# Here, a float64 adaptive reference (Tsit5 with error control) on the first 3 ms
# (input switched on at 1 ms) against the fine splitting run:

# %%
with jax.enable_x64(True):
    i_fn = lambda s: jnp.where(s >= t_on, 10e-6, 0.0)
    f = mj.neurons.mif_vector_field(neuron, i_fn)
    ts = jnp.asarray(t[:300], jnp.float64)
    ref = mj.integrate.odeint_reference(f, rest64, ts, rtol=1e-8, atol=1e-12)
    gap = jnp.max(jnp.abs(ref.v - fine.v[:300]))
print(f"splitting at 50 ns vs adaptive Tsit5 (float64): max |dv| = {1e6 * float(gap):.2f} µV")

# %% [markdown]
# ## The same neuron in ngspice
#
# A circuit simulator is an independent check of the model: it integrates the same
# equations with its own adaptive trapezoidal rule. ngspice has no MMSS element, so
# the netlist builds one from behavioural sources: each state $x_k$ is the voltage of a
# 1 F capacitor charged by a current equal to $\dot x_k$ (the integrator trick of
# Knowm's MSS SPICE model), each memristor is a B-source whose current is
# $G_k(x_k)\,(v - E_k)$, the batteries are voltage sources, and the synaptic filter
# currents (in µA) are two more integrator nodes. The netlist starts from the same rest
# point (`uic` with initial conditions).


# %%
def mif_netlist(n, state0, amplitude, out):
    """ngspice netlist of one MIF neuron ``n`` under the rectangular pulse."""
    m1, m2 = n.m1, n.m2
    G = lambda m, x: f"({x}/{m.R_on} + (1 - {x})/{m.R_off})"
    rate = lambda m, s, vk, x: (
        f"((1 - {x})/(1 + exp(-({s}*{vk} - {m.V_on})/{m.v_t}))"
        f" - {x}/(1 + exp(({s}*{vk} + {m.V_off})/{m.v_t})))/{m.tau}"
    )
    return f"""* one MIF neuron (memjax tutorial 3)
Vin u 0 PWL(0 0 {t_on} 0 {t_on + 1e-9} {1e6 * amplitude} {t_off} {1e6 * amplitude} {t_off + 1e-9} 0)
Ca a 0 1 IC=0
Ba 0 a I={{(v(u) - v(a))/{n.tau_a}}}
Ci i 0 1 IC=0
Bi 0 i I={{(v(a) - v(i))/{n.tau_a}}}
Cm m 0 {n.C} IC={float(state0.v)!r}
Bin 0 m I={{1e-6*v(i)}}
V1 b1 0 DC {n.E1}
V2 b2 0 DC {n.E2}
B1 m b1 I={{{G(m1, "v(x1)")}*v(m,b1)}}
B2 m b2 I={{{G(m2, "v(x2)")}*v(m,b2)}}
Cx1 x1 0 1 IC={float(state0.x1)!r}
Bx1 0 x1 I={{{rate(m1, n.polarity1, "v(m,b1)", "v(x1)")}}}
Cx2 x2 0 1 IC={float(state0.x2)!r}
Bx2 0 x2 I={{{rate(m2, n.polarity2, "v(m,b2)", "v(x2)")}}}
.tran {dt} {T * dt} 0 {dt / 10} uic
.control
set wr_singlescale
set wr_vecnames
run
wrdata {out} v(m) v(x1) v(x2)
quit
.endc
.end
"""


if shutil.which("ngspice") is None:
    print(
        "ngspice is not on PATH: skipping the SPICE comparison (install it, e.g. `apt install ngspice`)"
    )
else:
    amplitude = 10e-6
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mif.txt"
        cir = Path(tmp) / "mif.cir"
        cir.write_text(mif_netlist(neuron, rest, amplitude, out))
        subprocess.run(["ngspice", "-b", str(cir)], capture_output=True, check=True, cwd=tmp)
        data = np.loadtxt(out, skiprows=1)
    t_sp, v_sp, x1_sp = (
        data[:, 0],
        data[:, 1],
        data[:, 2],
    )  # columns: time, then the vectors
    st = runs[amplitude]
    fig, (ax_v, ax_x) = plt.subplots(1, 2, figsize=(11, 4))
    ax_v.plot(1e3 * t_sp, 1e3 * v_sp, lw=3, alpha=0.5, label="ngspice")
    ax_v.plot(1e3 * t, 1e3 * st.v, "k", lw=1, label="memjax, dt = 10 µs")
    ax_x.plot(1e3 * t_sp, x1_sp, lw=3, alpha=0.5, label="ngspice")
    ax_x.plot(1e3 * t, st.x1, "k", lw=1, label="memjax")
    ax_v.set(xlabel="t (ms)", ylabel="v (mV)", title="membrane voltage, 10 µA pulse")
    ax_x.set(xlabel="t (ms)", ylabel="x1", title="state of M1")
    ax_v.legend()
    ax_x.legend()
    fig.tight_layout()
    v_sp_on_grid = np.interp(t, t_sp, v_sp)
    print(
        f"{len(t_sp)} ngspice time points; max |v_memjax - v_ngspice| = "
        f"{1e3 * np.max(np.abs(np.asarray(st.v) - v_sp_on_grid)):.3f} mV "
        f"(peak v {1e3 * float(st.v.max()):.1f} mV)"
    )

# %% [markdown]
# The two agree to within the first-order splitting error at 10 µs found above; the
# benchmark `speed-devices` repeats this comparison on populations of up to 1,000
# neurons and measures the speed of both.
#
# ## What to try next
#
# - Vary one device: `mj.MIF(m1=dataclasses.replace(memristor, V_on=0.08))` lowers the
#   switching threshold of $M_1$ (any field, e.g. `C` or `tau_a`, changes the same way).
# - A population: `mj.sample_population(mj.MIF(), key, 1000, {"C": 0.1, "m1.R_on": 0.1})`
#   gives per-neuron parameters; `init_state((1000,))` and `simulate` run them all at once.
# - Differentiate: `jax.grad` of the peak voltage with respect to `C` through `simulate`.
# - Put the neuron in a network and train it: [tutorial 4](04_memprop.ipynb).
