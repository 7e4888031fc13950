"""HP linear ion drift model (Strukov, Snider, Stewart & Williams, Nature 453, 80 (2008)).

A TiO2 film of thickness D holds a doped (low-resistance) region of width w. With the
normalised state x = w / D in [0, 1]:

    v(t)  = [R_on x + R_off (1 - x)] i(t)                     (Strukov 2008, eq. 1)
    dx/dt = (mu_v R_on / D^2) i(t) F(x, i)                     (eq. 2 with a window F)

mu_v is the dopant mobility. The original paper has F = 1; windows of Joglekar, Biolek
and Prodromakis (:mod:`memjax.devices.windows`) keep x in [0, 1] smoothly.
Defaults: the paper's Fig. 2 device (R_on = 100 Ohm, R_off = 16 kOhm, D = 10 nm,
mu_v = 1e-14 m^2 s^-1 V^-1).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float

from .._validation import check_less, check_positive, check_range
from ._base import AbstractMemristor
from .windows import AbstractWindow, Joglekar

__all__ = ["HPMemristor"]


class HPMemristor(AbstractMemristor):
    """HP linear ion drift memristor with a window function.

    **Fields** (SI units):

    - `R_on`: resistance when fully doped, x = 1 (Ohm). Default 100.
    - `R_off`: resistance when undoped, x = 0 (Ohm), > R_on. Default 16e3.
    - `D`: film thickness (m). Default 10e-9.
    - `mu_v`: dopant mobility (m^2 s^-1 V^-1). Default 1e-14.
    - `window`: the window F(x, i). Default :class:`Joglekar` with p = 1.
    - `x0`: initial state w/D in [0, 1]. Default 0.1.
    """

    state_name: ClassVar[str] = "w/D"

    R_on: Float[ArrayLike, "..."] = 100.0
    R_off: Float[ArrayLike, "..."] = 16e3
    D: Float[ArrayLike, "..."] = 10e-9
    mu_v: Float[ArrayLike, "..."] = 1e-14
    window: AbstractWindow = eqx.field(default_factory=Joglekar)
    x0: Float[ArrayLike, "..."] = 0.1

    def __check_init__(self):
        check_positive("HPMemristor", "R_on", self.R_on, "Ohm")
        check_positive("HPMemristor", "R_off", self.R_off, "Ohm")
        check_less("HPMemristor", "R_on", self.R_on, "R_off", self.R_off)
        check_positive("HPMemristor", "D", self.D, "m")
        check_positive("HPMemristor", "mu_v", self.mu_v, "m^2/(V s)")
        check_range("HPMemristor", "x0", self.x0, 0.0, 1.0)

    def memristance(self, x) -> Float[Array, "..."]:
        """``M(x) = R_on x + R_off (1 - x)`` (Ohm)."""
        return self.R_on * x + self.R_off * (1.0 - x)

    def current(self, x, v):
        return v / self.memristance(x)

    def rate(self, x, v):
        i = self.current(x, v)
        return self.mu_v * self.R_on / self.D**2 * i * self.window(x, i)

    def state_bounds(self):
        return 0.0, 1.0
