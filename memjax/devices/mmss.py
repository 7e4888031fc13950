"""Mean metastable switch (MMSS) memristor, with the generalised Schottky branch.

Molter & Nugent, "The generalized metastable switch memristor model", CNNA 2016
(arXiv:1608.04659); Nugent & Molter, PLoS ONE 9, e85175 (2014). The device is an
ensemble of metastable switches; x in [0, 1] is the fraction in the ON state:

    dx/dt = (1/tau) [ (1 - x) P_on(V) - x P_off(V) ]
    P_on(V)  = sigmoid((V - V_on) / V_T)                    switching ON above +V_on
    P_off(V) = 1 - sigmoid((V + V_off) / V_T)               switching OFF below -V_off
    G_m(x)   = x / R_on + (1 - x) / R_off
    I        = phi V G_m(x) + (1 - phi) (a_f exp(b_f V) - a_r exp(-b_r V))

V_T = k_B T / q is the thermal voltage of the switches (the "beta = q / kT" of the paper);
MEMprop's prototype uses V_T = 0.6 x 25 mV. ``phi = 1`` is the plain MSS model (the
Knowm SPICE subcircuit); ``phi < 1`` adds the Schottky diode current of the generalised
model. Both probabilities are logistic functions, so they neither overflow nor produce
NaN gradients for any voltage; the diode exponentials are clamped (see
:mod:`memjax._math`).

Defaults are the Knowm SPICE subcircuit's (``memristor_knowm.sub``, Knowm's
memristor-models-4-all): R_on = 500 Ohm, R_off = 1.5 kOhm, V_on = V_off = 0.27 V,
tau = 0.1 ms, T = 298.5 K.
"""

from __future__ import annotations

from typing import ClassVar

from jaxtyping import ArrayLike, Float

from .._math import safe_exp, sigmoid
from .._validation import check_less, check_nonnegative, check_positive, check_range
from ._base import AbstractMemristor

__all__ = ["MMSSMemristor", "thermal_voltage", "K_B", "Q_E"]

#: Boltzmann constant (J/K) and elementary charge (C), CODATA 2018 exact values.
K_B = 1.380649e-23
Q_E = 1.602176634e-19


def thermal_voltage(T):
    """``k_B T / q`` (V)."""
    return K_B * T / Q_E


class MMSSMemristor(AbstractMemristor):
    """Mean metastable switch memristor (Knowm), optionally with the Schottky branch.

    **Fields** (SI units):

    - `R_on`, `R_off`: resistance of the all-ON / all-OFF ensemble (Ohm), R_on < R_off.
    - `V_on`: voltage above which switches turn ON (V). `V_off`: turn-OFF threshold
      (V); switches turn OFF when ``V < -V_off`` (a negative ``V_off`` moves that
      threshold to positive voltages, as in MEMprop's neuron).
    - `tau`: characteristic switching time (s).
    - `v_t`: thermal voltage k_B T / q that sets the sharpness of switching (V).
    - `phi`: fraction of current through the memristive channel, in [0, 1].
    - `a_f`, `b_f`, `a_r`, `b_r`: Schottky forward/reverse prefactors (A) and
      exponents (1/V); used only when phi < 1.
    - `x0`: initial ON fraction in [0, 1].
    """

    state_name: ClassVar[str] = "ON fraction x"

    R_on: Float[ArrayLike, "..."] = 500.0
    R_off: Float[ArrayLike, "..."] = 1500.0
    V_on: Float[ArrayLike, "..."] = 0.27
    V_off: Float[ArrayLike, "..."] = 0.27
    tau: Float[ArrayLike, "..."] = 1e-4
    v_t: Float[ArrayLike, "..."] = thermal_voltage(298.5)
    phi: Float[ArrayLike, "..."] = 1.0
    a_f: Float[ArrayLike, "..."] = 1e-6
    b_f: Float[ArrayLike, "..."] = 3.0
    a_r: Float[ArrayLike, "..."] = 1e-6
    b_r: Float[ArrayLike, "..."] = 3.0
    x0: Float[ArrayLike, "..."] = 0.0

    def __check_init__(self):
        n = "MMSSMemristor"
        check_positive(n, "R_on", self.R_on, "Ohm")
        check_positive(n, "R_off", self.R_off, "Ohm")
        check_less(n, "R_on", self.R_on, "R_off", self.R_off)
        check_positive(n, "tau", self.tau, "s")
        check_positive(n, "v_t", self.v_t, "V")
        check_range(n, "phi", self.phi, 0.0, 1.0)
        check_nonnegative(n, "a_f", self.a_f, "A")
        check_nonnegative(n, "a_r", self.a_r, "A")
        check_nonnegative(n, "b_f", self.b_f, "1/V")
        check_nonnegative(n, "b_r", self.b_r, "1/V")
        check_range(n, "x0", self.x0, 0.0, 1.0)

    def p_on(self, v):
        """Probability rate factor of OFF -> ON, ``sigmoid((V - V_on) / V_T)``."""
        return sigmoid((v - self.V_on) / self.v_t)

    def p_off(self, v):
        """Probability rate factor of ON -> OFF, ``1 - sigmoid((V + V_off) / V_T)``."""
        return sigmoid(-(v + self.V_off) / self.v_t)

    def memductance(self, x):
        """``G_m(x) = x / R_on + (1 - x) / R_off`` (S)."""
        return x / self.R_on + (1.0 - x) / self.R_off

    def rate(self, x, v):
        return ((1.0 - x) * self.p_on(v) - x * self.p_off(v)) / self.tau

    def current(self, x, v):
        i_mem = v * self.memductance(x)
        reverse = safe_exp(-self.b_r * v)  # type: ignore[operator]
        i_diode = self.a_f * safe_exp(self.b_f * v) - self.a_r * reverse
        return self.phi * i_mem + (1.0 - self.phi) * i_diode

    def state_bounds(self):
        return 0.0, 1.0
