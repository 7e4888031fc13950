"""Stanford-PKU metal-oxide RRAM model (tunnelling-gap model with Joule heating).

Guan, Yu & Wong, "A SPICE compact model of metal oxide resistive switching memory with
variations", IEEE EDL 33(10), 1405 (2012); Jiang, Yu, Wu, et al., "A compact model for
metal-oxide resistive random access memory with experiment verification", IEEE TED 63(5),
1884 (2016). Equations and defaults follow the public Verilog-A "Stanford RRAM model"
v1.0.0 (Jiang & Wong, nanoHUB 2014, doi:10.4231/D37H1DN48), file ``rram_v_1_0_0.va``.

The state is the tunnelling gap g (m) between the conductive filament tip and the
electrode, g in [g_min, g_max]:

    I     = I0 exp(-g / g0) sinh(V / V0)
    T     = min(T0 + |V I| R_th, T_max)
    gamma = gamma0 - beta (g / g1)^alpha          (gamma0 -> gamma0_reset for V < 0)
    gamma = 0   where gamma |V| / t_ox < F_min    (no gap change below the minimum field)
    dg/dt = -v0 exp(-q E_a / (k_B T)) sinh(gamma a0 q V / (t_ox k_B T))

Positive V closes the gap (SET, low resistance), negative V opens it (RESET). A single
activation energy E_a serves both directions, as in the Verilog-A v1.0.0 (which also
hard-codes ``gamma0 = 16`` for V < 0: here the field ``gamma0_reset``, default 16).

Temperature: the Verilog-A has no thermal capacitance; it sets T from |V I| of the last
time point, i.e. the steady state of C_th dT/dt = |V I| - (T - T0)/R_th, assuming the
thermal time constant R_th C_th is short against the (ns and longer) switching. With one
scalar state per device this module does the same in continuous time: T is computed
explicitly from I(g, V) at the present state (I depends on g and V only).
``T_max`` (default 1e4 K) is a numerical guard of this implementation, not in the
Verilog-A: it keeps values and float32 gradients finite at absurd voltages (the model's
own T at 2 V in the low-resistance state is about 3.1e3 K, below the guard).

Omitted: the stochastic gap term of the Verilog-A (``model_switch = 1``:
``deltaGap0 * N(0, 1) / (1 + exp((T_crit - T) / T_smth))``); device-to-device spread is
handled by :mod:`memjax.populations`. The gate at F_min is a hard switch, as published.
The Verilog-A clips the *output* of ``idt`` to [g_min, g_max]; here dg/dt is set to zero
where it would push g out of its bounds (hard stops), so the integrated state itself never
winds up beyond them, with any integrator.
All exponentials use :func:`memjax._math.safe_exp` / :func:`~memjax._math.safe_sinh`.

With the defaults the F_min gate holds the state for |V| below 1.05 V (at g_min) to
1.39 V (at g_max); a 1.6 V, 1 MHz sine from g_max sets fully in the positive and resets
fully in the negative half-cycle (see the tests).

Defaults (Verilog-A v1.0.0 parameter defaults): g0 = 0.25 nm, V0 = 0.25 V, I0 = 1 mA,
v0 (``Vel0``) = 10 m/s, beta = 0.8, gamma0 = 16, alpha = 3, E_a = 0.6 eV, a0 = 0.25 nm,
T0 = 298 K, F_min = 1.4 GV/m, g_min = 0.2 nm, g_max = 1.7 nm, g(0) = 0.2 nm,
R_th = 2.1 kK/W, t_ox = 12 nm; g1 = 1 nm is the literal normalisation in the code.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._math import safe_exp, safe_pow, safe_sinh
from .._validation import check_less, check_nonnegative, check_positive, concrete
from ._base import AbstractMemristor
from .mmss import K_B, Q_E

__all__ = ["StanfordPKURRAM"]


@jax.custom_jvp
def _ratio(a, b):
    """``a / b`` with the derivative ``(da - (a / b) db) / b``.

    JAX's own rule multiplies the cotangent by ``b^-2`` first: for lengths in metres
    (``(1 / 0.25 nm)^2 ~ 1.6e19``) times a current on the sinh clamp (~1e22 A) that
    overflows float32 although the gradient itself is finite. The value is unchanged.
    """
    return a / b


@_ratio.defjvp
def _ratio_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    r = a / b
    return r, (da - r * db) / b


class StanfordPKURRAM(AbstractMemristor):
    """Stanford-PKU RRAM: tunnelling gap g with field- and heat-driven drift.

    **Fields** (SI units; defaults of the Verilog-A v1.0.0):

    - `I0` (A), `g0` (m), `V0` (V): current prefactor, gap and voltage scales of
      ``I = I0 exp(-g/g0) sinh(V/V0)``. Defaults 1e-3, 0.25e-9, 0.25.
    - `v0`: gap velocity prefactor (m/s), ``Vel0`` in the code. Default 10.
    - `E_a`: activation energy (eV). Default 0.6.
    - `gamma0`, `gamma0_reset`: field enhancement factor for V >= 0 and V < 0. 16, 16.
    - `beta`, `alpha`, `g1`: ``gamma = gamma0 - beta (g/g1)^alpha``. 0.8, 3, 1e-9 m.
    - `a0`: atomic hopping distance (m). Default 0.25e-9.
    - `t_ox`: oxide thickness (m). Default 12e-9.
    - `F_min`: minimum field for gap change (V/m); 0 disables the gate. Default 1.4e9.
    - `T0`: ambient temperature (K). Default 298.
    - `R_th`: thermal resistance (K/W). Default 2.1e3.
    - `T_max`: numerical ceiling on T (K), not in the Verilog-A. Default 1e4.
    - `g_min`, `g_max`: gap bounds (m), 0 < g_min < g_max. Defaults 0.2e-9, 1.7e-9.
    - `x0`: initial gap (m) in [g_min, g_max]. Default 0.2e-9 (low resistance).
    """

    state_name: ClassVar[str] = "gap g"
    state_unit: ClassVar[str] = "m"

    I0: Float[ArrayLike, "..."] = 1e-3
    g0: Float[ArrayLike, "..."] = 0.25e-9
    V0: Float[ArrayLike, "..."] = 0.25
    v0: Float[ArrayLike, "..."] = 10.0
    E_a: Float[ArrayLike, "..."] = 0.6
    gamma0: Float[ArrayLike, "..."] = 16.0
    gamma0_reset: Float[ArrayLike, "..."] = 16.0
    beta: Float[ArrayLike, "..."] = 0.8
    alpha: Float[ArrayLike, "..."] = 3.0
    g1: Float[ArrayLike, "..."] = 1e-9
    a0: Float[ArrayLike, "..."] = 0.25e-9
    t_ox: Float[ArrayLike, "..."] = 12e-9
    F_min: Float[ArrayLike, "..."] = 1.4e9
    T0: Float[ArrayLike, "..."] = 298.0
    R_th: Float[ArrayLike, "..."] = 2.1e3
    T_max: Float[ArrayLike, "..."] = 1e4
    g_min: Float[ArrayLike, "..."] = 0.2e-9
    g_max: Float[ArrayLike, "..."] = 1.7e-9
    x0: Float[ArrayLike, "..."] = 0.2e-9

    def __check_init__(self):
        n = "StanfordPKURRAM"
        check_positive(n, "I0", self.I0, "A")
        check_positive(n, "g0", self.g0, "m")
        check_positive(n, "V0", self.V0, "V")
        check_positive(n, "v0", self.v0, "m/s")
        check_nonnegative(n, "E_a", self.E_a, "eV")
        check_nonnegative(n, "gamma0", self.gamma0)
        check_nonnegative(n, "gamma0_reset", self.gamma0_reset)
        check_nonnegative(n, "beta", self.beta)
        check_positive(n, "alpha", self.alpha)
        check_positive(n, "g1", self.g1, "m")
        check_positive(n, "a0", self.a0, "m")
        check_positive(n, "t_ox", self.t_ox, "m")
        check_nonnegative(n, "F_min", self.F_min, "V/m")
        check_positive(n, "T0", self.T0, "K")
        check_nonnegative(n, "R_th", self.R_th, "K/W")
        check_positive(n, "T_max", self.T_max, "K")
        check_less(n, "T0", self.T0, "T_max", self.T_max)
        check_positive(n, "g_min", self.g_min, "m")
        check_positive(n, "g_max", self.g_max, "m")
        check_less(n, "g_min", self.g_min, "g_max", self.g_max)
        check_less(n, "g_max", self.g_max, "t_ox", self.t_ox)
        check_positive(n, "x0", self.x0, "m")
        x0, lo, hi = concrete(self.x0), concrete(self.g_min), concrete(self.g_max)
        if x0 is not None and lo is not None and hi is not None:
            if np.any(x0 < lo * (1 - 1e-6)) or np.any(x0 > hi * (1 + 1e-6)):
                raise ValueError(
                    f"{n}.x0 must lie in [g_min, g_max] = [{np.min(lo):g}, {np.max(hi):g}] m;"
                    f" got {np.min(x0):g} .. {np.max(x0):g}"
                )

    def current(self, x, v) -> Float[Array, "..."]:
        """``I = I0 exp(-g/g0) sinh(V/V0)`` (A)."""
        return self.I0 * safe_exp(-_ratio(x, self.g0)) * safe_sinh(v / self.V0)

    def temperature(self, x, v) -> Float[Array, "..."]:
        """Steady-state filament temperature ``min(T0 + |V I| R_th, T_max)`` (K)."""
        T = self.T0 + jnp.abs(v) * jnp.abs(self.current(x, v)) * self.R_th
        return jnp.minimum(T, self.T_max)

    def enhancement(self, x, v) -> Float[Array, "..."]:
        """Field enhancement ``gamma`` with the F_min gate applied."""
        g_ini = jnp.where(v < 0, self.gamma0_reset, self.gamma0)
        gamma = g_ini - self.beta * safe_pow(x / self.g1, self.alpha)
        return jnp.where(gamma * jnp.abs(v) / self.t_ox < self.F_min, 0.0, gamma)

    def rate(self, x, v):
        # Work with the thermal voltage k_B T / q (V), not k_B T (J): (k_B T)^2 ~ 1e-41
        # underflows float32 in the gradient.
        v_th = (K_B / Q_E) * self.temperature(x, v)
        gamma = self.enhancement(x, v)
        arrhenius = safe_exp(-jnp.asarray(self.E_a) / v_th)
        drive = safe_sinh(gamma * (self.a0 / self.t_ox) * v / v_th)
        dg = -jnp.asarray(self.v0) * arrhenius * drive
        # Hard stops: the gap neither shrinks below g_min nor grows above g_max, so the
        # ODE itself (not only the clipped output) respects the bounds.
        blocked = ((x <= self.g_min) & (dg < 0)) | ((x >= self.g_max) & (dg > 0))
        return jnp.where(blocked, 0.0, dg)

    def state_bounds(self):
        return self.g_min, self.g_max
