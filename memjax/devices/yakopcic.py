"""Yakopcic generalised memristor model.

Yakopcic, Taha, Subramanyam, Pino & Rogers, "A memristor device model", IEEE EDL 32(10),
1436-1438 (2011); generalised in Yakopcic, Taha, Subramanyam & Pino, "Generalized
memristive device SPICE model and its application in circuit design", IEEE TCAD 32(8),
1201-1214 (2013). The state x in [0, 1] scales a metal-insulator-metal tunnelling current:

    I = a1 x sinh(b V)                          V >= 0          (EDL 2011, eq. 1)
        a2 x sinh(b V)                          V < 0
    dx/dt = eta g(V) f(x)                                       (eq. 2; eta = +-1)
    g(V) =  A_p (e^V - e^V_p)                   V > V_p         (threshold, eq. 3)
           -A_n (e^-V - e^V_n)                  V < -V_n
            0                                   otherwise
    f(x) = e^(-alpha_p (x - x_p)) w_p(x)        eta V >= 0, x >= x_p    (motion, eq. 4)
           e^(alpha_n (x + x_n - 1)) w_n(x)     eta V < 0,  x <= 1 - x_n
           1                                    otherwise
    w_p(x) = (x_p - x)/(1 - x_p) + 1,   w_n(x) = x / (1 - x_n)      (eq. 5)

f is continuous (1 at x = x_p and at x = 1 - x_n) and vanishes at x = 1 (for motion
towards 1) and at x = 0 (towards 0), which keeps x in [0, 1]. V is in volts inside the
exponentials, as published. The branch on ``eta V`` follows Yakopcic's SPICE subcircuit
(the EDL paper's ``V > 0`` / ``V <= 0`` for eta = 1; g = 0 at V = 0 either way).

Defaults: the EDL 2011 fit to the Ag-chalcogenide device of Oblea et al. (also the
default of Yakopcic's published SPICE subcircuit): a1 = a2 = 0.17 A, b = 0.05 /V,
V_p = 0.16 V, V_n = 0.15 V, A_p = A_n = 4000 /s, x_p = 0.3, x_n = 0.5, alpha_p = 1,
alpha_n = 5, x0 = 0.11, eta = 1. ``e^V`` and ``sinh(bV)`` are clamped (see
:mod:`memjax._math`) so any finite voltage gives a finite rate, current and gradient.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._math import safe_exp, safe_sinh
from .._validation import check_nonnegative, check_positive, check_range, concrete
from ._base import AbstractMemristor

__all__ = ["YakopcicMemristor", "yakopcic_g", "yakopcic_f"]


def yakopcic_g(v, V_p, V_n, A_p, A_n):
    """Threshold function g(V) (Yakopcic 2011, eq. 3)."""
    up = A_p * (safe_exp(v) - jnp.exp(V_p))
    down = -A_n * (safe_exp(-v) - jnp.exp(V_n))
    return jnp.where(v > V_p, up, jnp.where(v < -V_n, down, 0.0))


def yakopcic_f(x, v, x_p, x_n, alpha_p, alpha_n, eta=1.0):
    """State-motion function f(x) for drive direction ``eta v`` (eqs. 4-5)."""
    w_p = (x_p - x) / (1.0 - x_p) + 1.0
    w_n = x / (1.0 - x_n)
    f_p = jnp.where(x >= x_p, safe_exp(-alpha_p * (x - x_p)) * w_p, 1.0)
    f_n = jnp.where(x <= 1.0 - x_n, safe_exp(alpha_n * (x + x_n - 1.0)) * w_n, 1.0)
    return jnp.where(eta * v >= 0, f_p, f_n)


class YakopcicMemristor(AbstractMemristor):
    """Yakopcic memristor (sinh tunnelling I-V, exponential thresholds).

    **Fields** (SI units, V in volts):

    - `a1`, `a2`: current prefactors for V >= 0 and V < 0 (A), > 0.
    - `b`: sinh slope (1/V), > 0.
    - `V_p`, `V_n`: positive / negative switching thresholds (V), >= 0 (the negative
      threshold is at -V_n).
    - `A_p`, `A_n`: state-motion magnitudes (1/s), > 0.
    - `x_p`, `x_n`: where motion starts to decay, in [0, 1).
    - `alpha_p`, `alpha_n`: decay rates of the motion, >= 0.
    - `eta`: direction of motion relative to the voltage, +1 or -1.
    - `x0`: initial state in [0, 1].
    """

    state_name: ClassVar[str] = "x"

    a1: Float[ArrayLike, "..."] = 0.17
    a2: Float[ArrayLike, "..."] = 0.17
    b: Float[ArrayLike, "..."] = 0.05
    V_p: Float[ArrayLike, "..."] = 0.16
    V_n: Float[ArrayLike, "..."] = 0.15
    A_p: Float[ArrayLike, "..."] = 4000.0
    A_n: Float[ArrayLike, "..."] = 4000.0
    x_p: Float[ArrayLike, "..."] = 0.3
    x_n: Float[ArrayLike, "..."] = 0.5
    alpha_p: Float[ArrayLike, "..."] = 1.0
    alpha_n: Float[ArrayLike, "..."] = 5.0
    eta: Float[ArrayLike, "..."] = 1.0
    x0: Float[ArrayLike, "..."] = 0.11

    def __check_init__(self):
        n = "YakopcicMemristor"
        check_positive(n, "a1", self.a1, "A")
        check_positive(n, "a2", self.a2, "A")
        check_positive(n, "b", self.b, "1/V")
        check_nonnegative(n, "V_p", self.V_p, "V")
        check_nonnegative(n, "V_n", self.V_n, "V")
        check_positive(n, "A_p", self.A_p, "1/s")
        check_positive(n, "A_n", self.A_n, "1/s")
        check_range(n, "x_p", self.x_p, 0.0, 1.0, hi_open=True)
        check_range(n, "x_n", self.x_n, 0.0, 1.0, hi_open=True)
        check_nonnegative(n, "alpha_p", self.alpha_p)
        check_nonnegative(n, "alpha_n", self.alpha_n)
        eta = concrete(self.eta)
        if eta is not None and not np.all(np.abs(eta) == 1.0):
            raise ValueError(f"{n}.eta must be +1 or -1; got {eta}")
        check_range(n, "x0", self.x0, 0.0, 1.0)

    def g(self, v):
        """Threshold function g(V) (1/s)."""
        return yakopcic_g(v, self.V_p, self.V_n, self.A_p, self.A_n)

    def f(self, x, v):
        """Motion function f(x) for the direction of ``v``."""
        return yakopcic_f(x, v, self.x_p, self.x_n, self.alpha_p, self.alpha_n, self.eta)

    def rate(self, x, v):
        return self.eta * self.g(v) * self.f(x, v)

    def current(self, x, v):
        a = jnp.where(v >= 0, self.a1, self.a2)
        return a * x * safe_sinh(self.b * v)

    def state_bounds(self):
        return 0.0, 1.0
