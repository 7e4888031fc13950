"""The ``phi2`` weight of the MIF exponential integrator and its series, shared by the
step (:mod:`memjax.neurons.mif`) and its hand-derived adjoint
(:mod:`memjax.neurons._mif_adjoint`)."""

from __future__ import annotations

import math

import jax.numpy as jnp

__all__ = ["series", "PHI2", "phi2"]


def series(z, coeffs):
    """Horner evaluation of ``sum_n coeffs[n] z^n``."""
    out = jnp.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        out = c + z * out
    return out


#: Taylor coefficients of phi2(z) = (z - 1 + exp(-z)) / z^2 = sum_n (-z)^n / (n + 2)!
PHI2 = tuple((-1) ** n / math.factorial(n + 2) for n in range(6))


def phi2(z, m):
    """``phi2(z) = (z - 1 + exp(-z)) / z^2`` (``1/2`` at 0) for ``z >= 0``, given
    ``m = 1 - exp(-z)``; the 6-term series below a cut (truncation below rounding
    there, and the cancellation of the closed form above it costs at most ~eps / cut
    relative), so value and gradient are finite everywhere."""
    small = z < (0.005 if z.dtype == jnp.float64 else 0.1)
    zs = jnp.where(small, 1.0, z)
    ms = jnp.where(small, 0.5, m)
    return jnp.where(small, series(z, PHI2), (zs - ms) / (zs * zs))
