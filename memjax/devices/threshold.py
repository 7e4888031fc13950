"""Volatile thermal threshold switch: a VO2 device with Newton cooling.

A Mott insulator (VO2) turns metallic when Joule heating takes it across its
insulator-metal transition (IMT, ~340 K). The state is the device temperature T (K):

    C_th dT/dt = V^2 / R(T) - (T - T_amb) / R_th          (lumped heat balance)
    I          = V / R(T)
    R(T)       = R0 exp(E_a / (k_B T_c)) g(T_c) + R_m,   T_c = clip(T, T_lo, T_hi)
    g(T)       = 1/2 + 1/2 tanh(beta (delta w/2 + T_tr - T))   (insulating fraction)

Under a voltage drive the heat balance is bistable between V_low and V_high: once V^2/R
heats the film into the transition, R drops, the power V^2/R rises and T runs away to
the metallic branch (threshold switching, current jumps by ~R_ins/R_m); lowering V makes
it jump back at a lower voltage; at V = 0 the device cools with the time constant
R_th C_th (~0.24 us) back to the insulating state (volatile). With the defaults (measured
from the steady-state heat balance, no hysteresis): bistable for 2.29 V <= V <= 5.91 V,
R = 51 kOhm at 325 K and R_m = 1.29 kOhm when metallic.

Source: the thermal neuristor model of Zhang, Sipling, Qiu, Schuller & Di Ventra,
"Collective dynamics and long-range order in thermal neuristor networks", Nature
Communications (2024), arXiv:2312.12899, their eqs. (1)-(2); authors' code:
github.com/yuanhangzhang98/collective_dynamics_neuristor, ``model.py``; fitted to the VO2
devices of Qiu et al.,
"Reconfigurable cascaded thermal neuristors for neuromorphic computing", Adv. Mater.
(2023); the R(T) law is the hysteresis model of de Almeida et al. they use. Defaults are
the values in that code: R0 = 5.35882879 mOhm, E_a / k_B = 5220.47417 K,
R_m = 262.5 x 4.90025335 Ohm, T_tr = 332.805839 K, w = 7.19357064 K,
beta = 0.252796285 / K, C_th = 49.62776831 mW ns / K, 1/R_th = 0.20558726 mW / K,
T_amb = 325 K (their substrate temperature) and the clip [305, 370] K of the R(T) input.

Project's choices (documented, not in the source): the source tracks the hysteresis
branch delta = +-1 (heating / cooling) and minor loops with extra memory; with one
scalar state per device this module uses delta = 0 (the centre of the loop) by default,
or, with ``hysteresis=True``, the smooth explicit branch
``delta = tanh(H / P_h)`` where H is the net heating power V^2/R - (T - T_amb)/R_th
evaluated on the centre curve (heating -> +1, cooling -> -1). The electrical load
(series resistor, parallel capacitor) of the neuristor circuit is not part of the
device; the device is driven by the voltage across it, as every model here.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._math import safe_exp
from .._validation import check_less, check_nonnegative, check_positive
from ._base import AbstractMemristor

__all__ = ["VO2ThresholdSwitch"]


class VO2ThresholdSwitch(AbstractMemristor):
    """VO2 thermal threshold switch (volatile); state = device temperature (K).

    **Fields** (SI units; defaults from Zhang et al. 2024, see the module docstring):

    - `R0` (Ohm), `E_a_over_k` (K): insulating resistance prefactor and activation
      temperature, ``R0 exp(E_a_over_k / T)``. 5.35882879e-3, 5220.47417.
    - `R_m`: metallic resistance (Ohm). 1286.3165.
    - `T_tr`: transition temperature (K). 332.805839.
    - `w`: hysteresis width (K). 7.19357064.
    - `beta`: transition sharpness (1/K). 0.252796285.
    - `C_th`: heat capacity (J/K). 4.962776831e-11.
    - `R_th`: thermal resistance to the bath (K/W). 1 / 0.20558726e-3.
    - `T_amb`: bath temperature (K). 325.
    - `T_lo`, `T_hi`: range the R(T) law is evaluated on (K). 305, 370.
    - `hysteresis`: use the smooth heating/cooling branch (static). False.
    - `P_h`: power scale of that branch selection (W). 1e-6.
    - `x0`: initial temperature (K). 325.
    """

    volatile: ClassVar[bool] = True
    state_name: ClassVar[str] = "temperature T"
    state_unit: ClassVar[str] = "K"

    R0: Float[ArrayLike, "..."] = 5.35882879e-3
    E_a_over_k: Float[ArrayLike, "..."] = 5.22047417e3
    R_m: Float[ArrayLike, "..."] = 262.5 * 4.90025335
    T_tr: Float[ArrayLike, "..."] = 3.32805839e2
    w: Float[ArrayLike, "..."] = 7.19357064
    beta: Float[ArrayLike, "..."] = 2.52796285e-1
    C_th: Float[ArrayLike, "..."] = 49.62776831e-12
    R_th: Float[ArrayLike, "..."] = 1.0 / 0.20558726e-3
    T_amb: Float[ArrayLike, "..."] = 325.0
    T_lo: Float[ArrayLike, "..."] = 305.0
    T_hi: Float[ArrayLike, "..."] = 370.0
    hysteresis: bool = eqx.field(static=True, default=False)
    P_h: Float[ArrayLike, "..."] = 1e-6
    x0: Float[ArrayLike, "..."] = 325.0

    def __check_init__(self):
        n = "VO2ThresholdSwitch"
        check_positive(n, "R0", self.R0, "Ohm")
        check_nonnegative(n, "E_a_over_k", self.E_a_over_k, "K")
        check_positive(n, "R_m", self.R_m, "Ohm")
        check_positive(n, "T_tr", self.T_tr, "K")
        check_nonnegative(n, "w", self.w, "K")
        check_positive(n, "beta", self.beta, "1/K")
        check_positive(n, "C_th", self.C_th, "J/K")
        check_positive(n, "R_th", self.R_th, "K/W")
        check_positive(n, "T_amb", self.T_amb, "K")
        check_positive(n, "T_lo", self.T_lo, "K")
        check_less(n, "T_lo", self.T_lo, "T_hi", self.T_hi)
        check_positive(n, "P_h", self.P_h, "W")
        check_positive(n, "x0", self.x0, "K")

    def insulating_fraction(self, T, delta=0.0) -> Float[Array, "..."]:
        """``g = 1/2 + 1/2 tanh(beta (delta w/2 + T_tr - T))`` on branch ``delta``."""
        T = jnp.clip(T, self.T_lo, self.T_hi)
        return 0.5 + 0.5 * jnp.tanh(self.beta * (delta * self.w / 2 + self.T_tr - T))

    def _resistance(self, T, delta):
        Tc = jnp.clip(T, self.T_lo, self.T_hi)
        r_ins = self.R0 * safe_exp(self.E_a_over_k / Tc)
        return r_ins * self.insulating_fraction(T, delta) + self.R_m

    def branch(self, T, v) -> Float[Array, "..."]:
        """Hysteresis branch delta in [-1, 1]: 0 without hysteresis."""
        if not self.hysteresis:
            return jnp.zeros_like(jnp.asarray(T + v))
        heat = v * v / self._resistance(T, 0.0) - (T - self.T_amb) / self.R_th
        return jnp.tanh(heat / self.P_h)

    def device_resistance(self, T, v=0.0) -> Float[Array, "..."]:
        """``R(T)`` (Ohm) on the branch selected at drive ``v``."""
        return self._resistance(T, self.branch(T, v))

    def current(self, x, v):
        return v / self.device_resistance(x, v)

    def rate(self, x, v):
        joule = v * v / self.device_resistance(x, v)
        return (joule - (x - self.T_amb) / self.R_th) / self.C_th

    def state_bounds(self):
        return 0.0, jnp.inf
