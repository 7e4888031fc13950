"""Memristive integrate-and-fire (MIF) neuron: a capacitor and two MMSS memristors.

Zhou, Eshraghian, Choi, Lu, Kang, "Gradient-based learning on dynamical RRAM arrays"
(MEMprop), IEEE JETCAS 2022 (arXiv:2206.12992); the same neuron as SPICEprop
(arXiv:2203.01426). A membrane capacitor ``C`` in parallel with two mean-metastable-switch
memristors ``M1``, ``M2``, each in series with a battery ``E1``, ``E2``:

    C dv/dt  = I - G1(x1) (v - E1) - G2(x2) (v - E2)
    V_k      = s_k (v - E_k)                 voltage across memristor k, s_k = +-1
    dx_k/dt  = [(1 - x_k) P_on(V_k) - x_k P_off(V_k)] / tau   (MMSS, :mod:`memjax.devices.mmss`)
    G_k(x_k) = x_k / R_on + (1 - x_k) / R_off

and an alpha-shaped synaptic filter from the injected current ``i_in`` (A) to ``I``:

    tau_a da/dt = i_in - a,        tau_a dI/dt = a - I

(the paper's ``da/dt = -a/tau_a + input`` with ``input = i_in / tau_a``, so the filter has
unit DC gain and every quantity is a current in A). There is no threshold, no reset and
no surrogate: input depolarises ``v``; once ``V_k`` passes ``V_on`` memristor ``k``
switches ON and pulls ``v`` to its battery (hyperpolarisation); near its battery the
memristor relaxes OFF again (recovery). The output is the analog membrane voltage ``v``,
and `jax.grad` differentiates these device dynamics directly.

**Polarity** ``s_k`` (the fields `polarity1`, `polarity2`) is the orientation in which
memristor ``k`` is inserted; its ohmic current ``G_k (v - E_k)`` does not depend on it,
only the voltage its state equation sees. The paper's description is symmetric ("when
``|v - E_k|`` passes ``v_on``, memristor ``k`` switches on"); a single-polarity MMSS
device turns ON only for positive voltage, so memristor 2 is inserted reversed by default
(``s_2 = -1``): M1 switches on for depolarisation (``v > E1 + V_on`` ~ +85 mV) and pulls
``v`` down to ``E1``, M2 switches on for hyperpolarisation (``v < E2 - V_on`` ~ -85 mV)
and pulls ``v`` up to ``E2``. ``polarity2=+1`` gives the literal ``V_k = v - E_k`` for
both (then nothing limits negative excursions: the membrane is linear below rest). This
orientation is the project's choice (docs/mif.md lists every default that differs from
the literal circuit and how to get the literal one).

**Integration (why not forward Euler).** For frozen conductances the ``v`` equation is
linear with rate ``lambda = (G1 + G2) / C``; forward Euler on it diverges once
``lambda dt > 2``, i.e. as soon as a memristor switches ON with the prototype's
constants. :func:`mif_step` advances the state over ``h = dt`` by an exponential
midpoint splitting whose sub-flows are solved exactly (the exponential-integrator
idea of Hochbruck & Ostermann, "Exponential integrators", Acta Numerica 2010):

1. the synaptic filter over ``h/2`` and ``h``, exactly for ``i_in`` held (closed form,
   with ``1 - exp(-h/tau_a)`` as ``-expm1`` so float32 keeps its precision at
   ``h << tau_a``); ``I`` at 0, ``h/2``, ``h``;
2. a predictor of the memristor states at mid-step, ``x_m = clip(x + (h/2) rate(x,
   V(v)), 0, 1)``;
3. ``v`` over the first half step with the conductances ``G(x_m)`` frozen and ``I``
   linear in time between its values at 0 and ``h/2`` (exactly: ``v' = v + (v_inf - v)
   (1 - e^-z) + Delta I (h/2) / C phi2(z)`` with ``z = lambda h/2``, ``v_inf =
   (I + G1 E1 + G2 E2) / (G1 + G2)``, ``phi2(z) = (z - 1 + e^-z) / z^2``): the
   mid-step voltage, with no delay between the synaptic current and the membrane;
4. ``x_k`` over the whole step with ``V_k`` frozen at its mid-step value (the MMSS
   rate is linear in ``x``): ``x' = x + h rate(x, V) phi1(h (P_on + P_off) / tau)``,
   i.e. ``x_inf + (x - x_inf) exp(-h (P_on + P_off) / tau)``;
5. ``v`` over the second half step with the end-of-step conductances ``G(x')``.

with ``phi1(z) = (1 - exp(-z)) / z``. Every sub-step is a convex combination of the old
value and a bounded target (plus the bounded linear-current term), so ``v`` stays
bounded and ``x`` in ``[0, 1]`` for any ``dt`` and any input: no NaN, no blow-up. The
membrane is stiff at every practical step (``R_off C / 2 = 50 us``, ``R_on C = 1 us``),
so ``v`` sits on its quasi-static value ``v_inf(I, G(x))``; evaluating the memristor
flow at the mid-step voltage of the mid-step conductances makes the scheme second order
in that regime (an exponential midpoint rule for ``x``), where a splitting that freezes
``v`` at one end of the step is first order. docs/mif.md shows its error against the
diffrax reference over the operating range; ``substeps`` (a `lax.fori_loop`) refines it.

**SI parameters and the prototype.** The authors' prototype is a discrete map with one
step = 10 us absorbed into its constants (``R_on = 1 kOhm, R_off = 100 kOhm, v_on = 110
mV, v_off = 5 mV, k_th = 15 mV, tau = tau_a = 100 steps, C = 100 uF, E1/E2 = -25/+25 mV,
x(0) = 0.0238``, 1000 steps per sample). The defaults here map them to SI as follows:

================  ==================  ==========================================
field             default             from the prototype
================  ==================  ==========================================
``m*.R_on``       1 kOhm              same
``m*.R_off``      100 kOhm            same
``m*.V_on``       110 mV              ``v_on``
``m*.V_off``      -5 mV               ``v_off``; MMSS turns OFF below ``-V_off``,
                                      the prototype below ``+v_off``
``m*.v_t``        15 mV               ``k_th = 0.6 x 25 mV``
``m*.tau``        1 ms                100 steps x 10 us
``tau_a``         1 ms                100 steps x 10 us
``C``             1 nF                ``C`` x step: the map ``v += (I - G v) / C``
                                      is ``C_SI = 100e-6 x 10 us``
``E1``, ``E2``    -25 mV, +25 mV      same
``m*.x0``         0.0238              same (the initial state used by
                                      :meth:`MIF.init_state` is the rest point)
================  ==================  ==========================================

With these values the membrane time constant is ``R_off C / 2 = 50 us`` with both
memristors OFF and ``R_on C = 1 us`` with one ON, the switching time 1 ms, and the rest
point v = 0 V, x1 = x2 = 0.0163. `memjax.models.memprop.MEMprop` integrates a 5 ms
window (500 prototype steps) in 100 steps of 50 us (5 prototype steps each), the step at
which the integration converges (docs/mif.md).

**What goes through what.** :class:`MIF` implements the neuron interface
(:class:`memjax.neurons.AbstractNeuron`): :meth:`MIF.step` is :func:`mif_step`, this
module's own exponential integrator (it does not go through `memjax.integrate.odeint`);
:func:`mif_simulate` is :func:`memjax.neurons.simulate` over it (time base: ``states[k]``
at ``k dt``, the initial state first). :meth:`MIF.vector_field` (:func:`mif_vector_field`)
gives the same equations to `memjax.integrate.odeint` and the diffrax
`memjax.integrate.odeint_reference`, which the tests hold the integrator against.

**Inputs.** ``dt`` must be finite and > 0 (a ``ValueError`` for a concrete value, an
`eqx.error_if` error under `jit`); ``substeps`` an integer >= 1. Inputs and states in
float16 are promoted to float32 (the constants, e.g. ``C = 1e-9``, and the currents
in uA underflow in float16's exponent range; bfloat16, with float32's range, is kept);
integer inputs to the default float.
The memristors' Schottky branch (``MMSSMemristor.phi < 1``) is not implemented in the
neuron: :class:`MIF` rejects such memristors.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validation import check_positive, concrete, guard_time
from ..devices.mmss import MMSSMemristor
from ._base import AbstractNeuron, _state_dtype, check_dt, check_substeps, simulate
from ._mif_adjoint import mif_step_adjoint
from ._phi import phi2 as _phi2

__all__ = [
    "MIF",
    "MIFState",
    "mif_step",
    "mif_simulate",
    "mif_vector_field",
    "phi1",
    "default_memristor",
]


@jax.custom_jvp
def phi1(z):
    """``(1 - exp(-z)) / z`` with ``phi1(0) = 1``: exact exponential-integrator weight.

    Finite value and gradient for every ``z >= 0`` (series near 0, `expm1` elsewhere).
    The derivative ``phi1'(z) = (1 - (1 + z) phi1(z)) / z`` (its Taylor series for
    small ``z``) is given as a custom JVP: the same values as differentiating the two
    branches, with a smaller backward graph (docs/performance.md).
    """
    z = jnp.asarray(z)
    small = z < 1e-4
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 - 0.5 * z + z * z / 6.0, -jnp.expm1(-zs) / zs)


@phi1.defjvp
def _phi1_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    z = jnp.asarray(z)
    f = phi1(z)
    # below the cut the series is exact to rounding; above it the cancellation in
    # 1 - (1 + z) phi1 costs at most eps / cut relative
    small = z < (0.01 if z.dtype == jnp.float64 else 0.1)
    zs = jnp.where(small, 1.0, z)
    # series of phi1'(z) = sum_n (-1)^(n+1) (n + 1) z^n / (n + 2)!, truncation < 2e-10
    series = -0.5 + z * (1 / 3 + z * (-1 / 8 + z * (1 / 30 + z * (-1 / 144 + z / 840))))
    df = jnp.where(small, series, (1.0 - (1.0 + zs) * f) / zs)
    return f, df * dz


#: How :func:`mif_step` is differentiated (:attr:`MIF.adjoint`).
ADJOINTS = ("hand", "autodiff")


def default_memristor() -> MMSSMemristor:
    """MEMprop prototype memristor in SI units (see the module table)."""
    return MMSSMemristor(
        R_on=1e3, R_off=1e5, V_on=0.110, V_off=-0.005, tau=1e-3, v_t=0.015, x0=0.0238
    )


class MIFState(eqx.Module):
    """State of a layer of MIF neurons (all arrays of one shape, e.g. ``[batch, n]``).

    ``a``, ``i``: synaptic filter currents (A); ``v``: membrane voltage (V);
    ``x1``, ``x2``: ON fractions of the two memristors.
    """

    a: Float[Array, "..."]
    i: Float[Array, "..."]
    v: Float[Array, "..."]
    x1: Float[Array, "..."]
    x2: Float[Array, "..."]


class MIF(AbstractNeuron):
    """Parameters of (a layer of) MIF neurons; see the module docstring for the model.

    **Fields** (SI units; scalars, or arrays of shape ``[n]`` for per-neuron values, e.g.
    from ``memjax.populations.sample_population(MIF(), key, n, {"C": 0.1, "m1.R_on": 0.1})``):

    - `C`: membrane capacitance (F).
    - `E1`, `E2`: battery voltages in series with ``m1``, ``m2`` (V).
    - `tau_a`: synaptic (alpha) filter time constant (s).
    - `m1`, `m2`: the two `MMSSMemristor` channels. The channel current is ``G_m(x)
      (v - E)``: their ``phi`` must be 1 (the Schottky branch, ``phi < 1``, is not
      implemented in the neuron and is rejected).
    - `polarity1`, `polarity2`: orientation ``s_k = +-1`` of each memristor (static);
      default ``+1``, ``-1`` (see the module docstring).
    - `adjoint`: how reverse mode differentiates the step (static): ``"hand"``
      (default; the hand-derived adjoint) or ``"autodiff"`` (see :func:`mif_step`).

    The fields are ordinary pytree leaves. Whether they are trained is the model's
    choice: `memjax.models.memprop.MEMprop` stops their gradient unless built with
    ``train_neurons=True`` (then give them as float arrays so ``eqx.is_inexact_array``
    filters select them).
    """

    C: Float[ArrayLike, "..."] = 1e-9
    E1: Float[ArrayLike, "..."] = -0.025
    E2: Float[ArrayLike, "..."] = 0.025
    tau_a: Float[ArrayLike, "..."] = 1e-3
    m1: MMSSMemristor = eqx.field(default_factory=default_memristor)
    m2: MMSSMemristor = eqx.field(default_factory=default_memristor)
    polarity1: float = eqx.field(static=True, default=1.0)
    polarity2: float = eqx.field(static=True, default=-1.0)
    adjoint: str = eqx.field(static=True, default="hand")

    def __check_init__(self):
        check_positive("MIF", "C", self.C, "F")
        check_positive("MIF", "tau_a", self.tau_a, "s")
        for name, m in (("m1", self.m1), ("m2", self.m2)):
            if not isinstance(m, MMSSMemristor):
                raise ValueError(f"MIF.{name} must be an MMSSMemristor; got {type(m).__name__}")
            phi = concrete(m.phi)
            if phi is not None and np.any(phi != 1.0):
                raise ValueError(
                    f"MIF.{name}.phi must be 1: the MIF neuron models the memristive channel "
                    f"only (current G(x) (v - E)); the Schottky branch (phi < 1) is not "
                    f"implemented; got phi = {m.phi!r}"
                )
        for name in ("polarity1", "polarity2"):
            if getattr(self, name) not in (1.0, -1.0):
                raise ValueError(f"MIF.{name} must be +1 or -1; got {getattr(self, name)}")
        if self.adjoint not in ADJOINTS:
            raise ValueError(f"MIF.adjoint must be one of {ADJOINTS}; got {self.adjoint!r}")

    continuous: ClassVar[bool] = True

    def step(self, state: MIFState, i_in, dt: float | None = None, *, key=None) -> MIFState:
        """:func:`mif_step` with these parameters (``dt`` in s, required; ``key`` unused)."""
        if dt is None:
            raise ValueError("MIF.step: dt (s) is required for a continuous-time neuron")
        return mif_step(self, state, i_in, dt, adjoint=self.adjoint)

    def output(self, state: MIFState) -> Float[Array, "..."]:
        """The analog membrane voltage ``v`` (V)."""
        return state.v

    def vector_field(self, i_in):
        """:func:`mif_vector_field` with these parameters."""
        return mif_vector_field(self, i_in)

    def init_state(self, shape=(), dtype=None, *, at_rest: bool = True) -> MIFState:
        """Zero synaptic currents and ``v``, ``x`` at the resting point (no input).

        The rest point solves ``v = (G1 E1 + G2 E2) / (G1 + G2)`` with each ``x_k`` at
        its own equilibrium ``P_on / (P_on + P_off)``; found by 100 fixed-point
        iterations from ``x0``. ``at_rest=False`` starts from ``v = 0``, ``x = x0``.
        ``dtype`` float16 is promoted to float32 (module docstring).
        """
        dtype = jnp.result_type(float) if dtype is None else _state_dtype(dtype)
        z = jnp.zeros(shape, dtype)
        # The rest point depends on the parameters only: solve it at their own shape
        # (a scalar, or [n] for a population) and broadcast to the requested shape.
        x1 = jnp.asarray(self.m1.x0, dtype) + jnp.zeros(jnp.shape(self.m1.R_on), dtype)
        x2 = jnp.asarray(self.m2.x0, dtype) + jnp.zeros(jnp.shape(self.m2.R_on), dtype)
        v = jnp.zeros((), dtype)
        if at_rest:

            def it(_, c):
                x1, x2 = c
                g1, g2 = self.m1.memductance(x1), self.m2.memductance(x2)
                v = (g1 * self.E1 + g2 * self.E2) / (g1 + g2)
                return (
                    _x_inf(self.m1, self.polarity1 * (v - self.E1)),
                    _x_inf(self.m2, self.polarity2 * (v - self.E2)),
                )

            x1, x2 = jax.lax.fori_loop(0, 100, it, (x1, x2))
            g1, g2 = self.m1.memductance(x1), self.m2.memductance(x2)
            v = (g1 * self.E1 + g2 * self.E2) / (g1 + g2)
        x1, x2, v = (z + q for q in (x1, x2, v))
        return MIFState(a=z, i=z, v=v.astype(dtype), x1=x1.astype(dtype), x2=x2.astype(dtype))


def _x_inf(m: MMSSMemristor, V):
    p_on, p_off = m.p_on(V), m.p_off(V)
    return p_on / (p_on + p_off)


def _x_update(m: MMSSMemristor, x, V, dt):
    """Exact update of the MMSS state over ``dt`` for frozen ``V`` (linear in ``x``)."""
    k = (m.p_on(V) + m.p_off(V)) * (dt / m.tau)
    return jnp.clip(x + dt * m.rate(x, V) * phi1(k), 0.0, 1.0)


def _filter(p: MIF, a, i, u, h):
    """The alpha filter over ``h`` for ``u`` held: exact, in increment form
    (``1 - exp(-h / tau_a)`` as ``-expm1``, accurate in float32 for ``h << tau_a``)."""
    r = h / p.tau_a
    em = -jnp.expm1(-r)
    return a + (u - a) * em, i + (u - i) * em + (a - u) * (r * (1.0 - em))


def _membrane(p: MIF, v, i0, i1, x1, x2, h):
    """``v`` over ``h`` for frozen conductances and the synaptic current linear in time
    from ``i0`` to ``i1``, exactly (module docstring)."""
    g1 = p.m1.memductance(x1)
    g2 = p.m2.memductance(x2)
    g = g1 + g2
    z = g * (h / p.C)
    m = -jnp.expm1(-z)  # 1 - exp(-z) = z phi1(z), without cancellation
    v_0 = (i0 + g1 * p.E1 + g2 * p.E2) / g
    return v + (v_0 - v) * m + (i1 - i0) * (h / p.C) * _phi2(z, m)


def _step(p: MIF, s: MIFState, u, h) -> MIFState:
    """One exponential-midpoint step (module docstring), differentiated by autodiff."""
    a_m, i_m = _filter(p, s.a, s.i, u, 0.5 * h)
    a_e, i_e = _filter(p, a_m, i_m, u, 0.5 * h)
    # predictor: memristor states at mid-step (an Euler half step, clipped to [0, 1])
    xm1 = jnp.clip(s.x1 + (0.5 * h) * p.m1.rate(s.x1, p.polarity1 * (s.v - p.E1)), 0.0, 1.0)
    xm2 = jnp.clip(s.x2 + (0.5 * h) * p.m2.rate(s.x2, p.polarity2 * (s.v - p.E2)), 0.0, 1.0)
    # first half of the membrane with the mid-step conductances: mid-step voltages
    v = _membrane(p, s.v, s.i, i_m, xm1, xm2, 0.5 * h)
    # memristors over the whole step for the mid-step voltages across them
    x1 = _x_update(p.m1, s.x1, p.polarity1 * (v - p.E1), h)
    x2 = _x_update(p.m2, s.x2, p.polarity2 * (v - p.E2), h)
    # second half of the membrane with the end-of-step conductances
    v = _membrane(p, v, i_m, i_e, x1, x2, 0.5 * h)
    return MIFState(a=a_e, i=i_e, v=v, x1=x1, x2=x2)


def mif_step(
    params: MIF,
    state: MIFState,
    i_in: Float[ArrayLike, "..."],
    dt: float,
    *,
    substeps: int = 1,
    adjoint: str | None = None,
) -> MIFState:
    """Advance MIF neurons by ``dt`` (s) with input current ``i_in`` (A) held over the step.

    Exponential midpoint splitting (module docstring): the exact synaptic filter, the
    membrane over half a step with the predicted mid-step conductances, the memristors
    over the step at the mid-step voltages, the membrane's second half. Stable and
    bounded for any ``dt > 0`` and input; differentiable everywhere. ``substeps`` (an
    integer >= 1) splits the step into that many equal sub-steps in a `lax.fori_loop`
    (compile time independent of it). ``dt`` must be finite and > 0 (``ValueError``;
    under `jit` an `eqx.error_if` error); a float16 input is promoted to float32.

    ``adjoint`` (default: ``params.adjoint``) chooses how reverse mode differentiates
    the step: ``"hand"`` is the hand-derived adjoint of
    :mod:`memjax.neurons._mif_adjoint` (a `jax.custom_vjp` that reuses the forward's
    exponentials), ``"autodiff"`` JAX's differentiation of the same arithmetic. The
    two agree to float32 round-off (tests/neurons/test_mif_adjoint.py).
    """
    check_dt("mif_step", dt)
    check_substeps("mif_step", substeps)
    adjoint = params.adjoint if adjoint is None else adjoint
    if adjoint not in ADJOINTS:
        raise ValueError(f"mif_step: adjoint must be one of {ADJOINTS}; got {adjoint!r}")
    one = _step if adjoint == "autodiff" else mif_step_adjoint
    i_in = jnp.asarray(i_in)
    i_in = i_in.astype(_state_dtype(i_in.dtype))
    dt = guard_time("mif_step: dt", dt)
    if substeps == 1:
        return one(params, state, i_in, dt)
    h = dt / substeps
    return jax.lax.fori_loop(0, substeps, lambda _, s: one(params, s, i_in, h), state)


def mif_vector_field(params: MIF, i_in):
    """The continuous MIF equations ``f(t, state)`` for an input ``i_in(t)`` (A):
    for :func:`memjax.integrate.odeint_reference` (the diffrax yardstick) and tests."""
    p = params

    def f(t, s: MIFState) -> MIFState:
        u = i_in(t)
        g1 = p.m1.memductance(s.x1)
        g2 = p.m2.memductance(s.x2)
        return MIFState(
            a=(u - s.a) / p.tau_a,
            i=(s.a - s.i) / p.tau_a,
            v=(s.i - g1 * (s.v - p.E1) - g2 * (s.v - p.E2)) / p.C,
            x1=p.m1.rate(s.x1, p.polarity1 * (s.v - p.E1)),
            x2=p.m2.rate(s.x2, p.polarity2 * (s.v - p.E2)),
        )

    return f


def mif_simulate(
    params: MIF,
    i_in: Float[ArrayLike, "T *shape"],  # noqa: F821 (jaxtyping shape)
    dt: float,
    *,
    state: MIFState | None = None,
    substeps: int = 1,
) -> tuple[MIFState, MIFState]:
    """:func:`memjax.neurons.simulate` of MIF neurons over an input sequence (time on
    axis 0), one `lax.scan`.

    Returns ``(final_state, states)`` with every leaf of ``states`` of shape
    ``[T, *shape]``: ``states[k]`` is the state at ``k dt`` (``states[0]`` the initial
    state, at rest by default), ``final_state`` the state at ``T dt`` (the time base of
    :func:`memjax.integrate.odeint`). ``substeps`` (an integer >= 1) splits each step
    into that many equal sub-steps with the same held input. ``dt`` must be finite and
    > 0. Float16 inputs are promoted to float32.
    """
    check_dt("mif_simulate", dt)
    check_substeps("mif_simulate", substeps)
    return simulate(params, state, i_in, dt, substeps=substeps)
