"""Window functions for the HP linear-ion-drift model, in their published forms.

A window ``F(x)`` multiplies the drift velocity so the normalised doped-region width
``x = w / D`` stays in [0, 1] and slows near the boundaries.

- Joglekar & Wolf, Eur. J. Phys. 30, 661 (2009), eq. (7): ``F(x) = 1 - (2x - 1)^(2p)``.
  F(0) = F(1) = 0, F(1/2) = 1.
- Biolek, Biolek & Biolkova, Radioengineering 18, 210 (2009), eq. (9):
  ``F(x, i) = 1 - (x - stp(-i))^(2p)`` with ``stp(i) = 1 for i >= 0, else 0``.
  Current that drives x up (i > 0) sees ``1 - x^(2p)`` (0 at x = 1, 1 at x = 0); current
  that drives x down sees ``1 - (x - 1)^(2p)`` (0 at x = 0, 1 at x = 1). This removes
  Joglekar's "stuck at the boundary" problem.
- Prodromakis, Peh, Papavassiliou & Toumazou, IEEE TED 58, 3099 (2011), eq. (11):
  ``F(x) = j (1 - ((x - 1/2)^2 + 3/4)^p)``. F(0) = F(1) = 0, F(1/2) = j (1 - 0.75^p).

Even powers are computed as ``(u^2)^p`` with :func:`memjax._math.safe_pow`, so that a
non-integer ``p`` never takes a fractional power of a negative number and the gradient
stays finite (zero) where ``u = 0`` even for ``p < 1`` (Joglekar at x = 1/2, Biolek at
the boundary it is moving away from).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._math import safe_pow, step
from .._validation import check_positive

__all__ = [
    "AbstractWindow",
    "NoWindow",
    "Joglekar",
    "Biolek",
    "Prodromakis",
    "joglekar",
    "biolek",
    "prodromakis",
]


def joglekar(x, p):
    """Joglekar window ``1 - (2x - 1)^(2p)``."""
    return 1.0 - safe_pow((2.0 * x - 1.0) ** 2, p)


def biolek(x, i, p):
    """Biolek window ``1 - (x - stp(-i))^(2p)``; ``i`` is the current (sign matters)."""
    return 1.0 - safe_pow((x - step(-i)) ** 2, p)


def prodromakis(x, p, j=1.0):
    """Prodromakis window ``j (1 - ((x - 1/2)^2 + 3/4)^p)``."""
    return j * (1.0 - ((x - 0.5) ** 2 + 0.75) ** p)


class AbstractWindow(eqx.Module):
    """A window ``F(x, i)``; ``i`` is the device current (only Biolek's uses it)."""

    @abc.abstractmethod
    def __call__(
        self, x: Float[ArrayLike, "..."], i: Float[ArrayLike, "..."]
    ) -> Float[Array, "..."]:
        raise NotImplementedError


class NoWindow(AbstractWindow):
    """``F = 1`` (the original Strukov et al. 2008 model; bounds enforced by clipping)."""

    def __call__(self, x, i):
        return jnp.ones_like(jnp.asarray(x, dtype=float))


class Joglekar(AbstractWindow):
    """Joglekar window, ``F(x) = 1 - (2x - 1)^(2p)``, p > 0 (integer in the paper)."""

    p: Float[ArrayLike, ""] = 1.0

    def __check_init__(self):
        check_positive("Joglekar", "p", self.p)

    def __call__(self, x, i):
        return joglekar(x, self.p)


class Biolek(AbstractWindow):
    """Biolek window, ``F(x, i) = 1 - (x - stp(-i))^(2p)``, p > 0."""

    p: Float[ArrayLike, ""] = 1.0

    def __check_init__(self):
        check_positive("Biolek", "p", self.p)

    def __call__(self, x, i):
        return biolek(x, i, self.p)


class Prodromakis(AbstractWindow):
    """Prodromakis window, ``F(x) = j (1 - ((x - 1/2)^2 + 3/4)^p)``, p > 0, j > 0."""

    p: Float[ArrayLike, ""] = 1.0
    j: Float[ArrayLike, ""] = 1.0

    def __check_init__(self):
        check_positive("Prodromakis", "p", self.p)
        check_positive("Prodromakis", "j", self.j)

    def __call__(self, x, i):
        return prodromakis(x, self.p, self.j)
