"""Nonlinear, asymmetric pulse programming of a conductance (potentiation/depression).

Identical pulses move an RRAM (or other analog synaptic) cell along a saturating curve
(the NeuroSim device model: Chen, Peng & Yu, "NeuroSim: a circuit-level macro model for
benchmarking neuro-inspired architectures in online learning", IEEE TCAD 2018):

    potentiation  G(P) = B_p (1 - exp(-P / A_p)) + G_min
    depression    G(P) = G_max - B_d (1 - exp((P - P_max) / A_d))
    B_x = (G_max - G_min) / (1 - exp(-P_max / A_x))

with ``P`` the pulse number in [0, P_max]. A small ``A`` is a strongly nonlinear cell
(big first steps, saturating); ``A >> P_max`` is the linear limit. ``A_p != A_d`` makes
the potentiation and depression branches asymmetric. A cell at conductance ``G`` sits at
the pulse number where its branch passes through ``G``; ``n`` more pulses move it along
that branch. Every pulse adds cycle-to-cycle noise of standard deviation ``c2c_sigma
(G_max - G_min)`` (so ``n`` pulses add ``c2c_sigma (G_max - G_min) sqrt(|n|)``), and
the result is clipped to [G_min, G_max].
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._validation import check_int, check_less, check_nonnegative, check_positive

__all__ = ["PulseDevice"]


class PulseDevice(eqx.Module):
    """Pulse response of a cell (see the module docstring).

    **Fields:** `G_min`, `G_max` (S), `n_pulses` (``P_max``: pulses from ``G_min`` to
    ``G_max``), `A_p`, `A_d` (pulses, > 0), `c2c_sigma` (fraction of the range per pulse).
    """

    G_min: float = 0.476e-6
    G_max: float = 10e-6
    n_pulses: int = eqx.field(static=True, default=31)
    A_p: float = 8.0
    A_d: float = 4.0
    c2c_sigma: float = 0.005

    def __check_init__(self):
        n = "PulseDevice"
        check_positive(n, "G_min", self.G_min, "S")
        check_less(n, "G_min", self.G_min, "G_max", self.G_max)
        check_int(f"{n}.n_pulses", self.n_pulses, 1)
        check_positive(n, "A_p", self.A_p, "pulses")
        check_positive(n, "A_d", self.A_d, "pulses")
        check_nonnegative(n, "c2c_sigma", self.c2c_sigma)

    @property
    def _range(self):
        return self.G_max - self.G_min

    def _B(self, A):
        return self._range / (1.0 - jnp.exp(-self.n_pulses / A))

    def g_ltp(self, P: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """Potentiation branch ``G(P)`` (S)."""
        return self._B(self.A_p) * (1.0 - jnp.exp(-jnp.asarray(P) / self.A_p)) + self.G_min

    def g_ltd(self, P: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """Depression branch ``G(P)`` (S) (``P = P_max`` at ``G_max``)."""
        x = (jnp.asarray(P) - self.n_pulses) / self.A_d
        return self.G_max - self._B(self.A_d) * (1.0 - jnp.exp(x))

    def p_ltp(self, G: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """Pulse number of ``G`` on the potentiation branch."""
        f = jnp.clip((jnp.asarray(G) - self.G_min) / self._B(self.A_p), 0.0, 1.0 - 1e-7)
        return -self.A_p * jnp.log1p(-f)

    def p_ltd(self, G: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """Pulse number of ``G`` on the depression branch."""
        f = jnp.clip((self.G_max - jnp.asarray(G)) / self._B(self.A_d), 0.0, 1.0 - 1e-7)
        return self.n_pulses + self.A_d * jnp.log1p(-f)

    def apply_pulses(
        self, key: PRNGKeyArray | None, G: Float[ArrayLike, "..."], n: Float[ArrayLike, "..."]
    ) -> Float[Array, "..."]:
        """Conductances after ``n`` pulses (``n > 0`` potentiating, ``n < 0``
        depressing; integers), with cycle-to-cycle noise when ``key`` is given."""
        G = jnp.asarray(G)
        n = jnp.asarray(n, G.dtype)
        P_up = jnp.clip(self.p_ltp(G) + n, 0.0, self.n_pulses)
        P_dn = jnp.clip(self.p_ltd(G) + n, 0.0, self.n_pulses)
        G_new = jnp.where(n > 0, self.g_ltp(P_up), jnp.where(n < 0, self.g_ltd(P_dn), G))
        if key is not None and self.c2c_sigma > 0:
            z = jax.random.normal(key, G.shape, G.dtype)
            G_new = G_new + self.c2c_sigma * self._range * jnp.sqrt(jnp.abs(n)) * z
        return jnp.clip(G_new, self.G_min, self.G_max)

    def program(
        self, key: PRNGKeyArray | None, G_target: Float[ArrayLike, "..."], *, aware: bool = False
    ) -> Float[Array, "..."]:
        """Open-loop write from the reset state ``G_min`` with potentiating pulses.

        ``aware=False``: the pulse count a linear device would need, ``round((G_target -
        G_min) / (G_max - G_min) P_max)`` (the nonlinearity then bends every weight);
        ``aware=True``: the count that inverts the potentiation branch, ``round(p_ltp(
        G_target))`` (only the pulse rounding and the C2C noise remain).
        """
        G_target = jnp.asarray(G_target)
        if aware:
            n = jnp.round(self.p_ltp(G_target))
        else:
            n = jnp.round((G_target - self.G_min) / self._range * self.n_pulses)
        return self.apply_pulses(key, jnp.full_like(G_target, self.G_min), n)

    def update(
        self, key: PRNGKeyArray | None, G: Float[ArrayLike, "..."], dG: Float[ArrayLike, "..."]
    ) -> Float[Array, "..."]:
        """Write a desired change ``dG`` (S) by ``round(dG / step)`` pulses of the
        nominal linear step ``(G_max - G_min) / P_max`` (potentiation for ``dG > 0``,
        depression for ``dG < 0``), as an online-training weight update does."""
        n = jnp.round(jnp.asarray(dG) / (self._range / self.n_pulses))
        return self.apply_pulses(key, G, n)
