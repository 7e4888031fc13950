"""Overflow-safe elementwise functions used by the device equations.

Switching kinetics are exponential in voltage, field or temperature. Written naively
they overflow float32 (``exp(89) = inf``) and the gradient of an overflowed branch in a
``jnp.where`` is NaN even when that branch is not selected. These helpers clamp the
exponent to a finite range (``EXP_MAX``) so values and gradients stay finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["EXP_MAX", "safe_exp", "safe_sinh", "sigmoid", "safe_pow", "step"]

#: Largest exponent used anywhere: exp(60) ~ 1.1e26, finite in float32 and with room for
#: multiplication by device constants.
EXP_MAX = 60.0


def safe_exp(x):
    """``exp(min(x, EXP_MAX))``: finite value and finite gradient for any finite x."""
    return jnp.exp(jnp.minimum(x, EXP_MAX))


def safe_sinh(x):
    """``sinh`` with its argument clamped to ``[-EXP_MAX, EXP_MAX]``."""
    return jnp.sinh(jnp.clip(x, -EXP_MAX, EXP_MAX))


def sigmoid(x):
    """Logistic ``1 / (1 + exp(-x))``, stable for any x (no overflow, exact tails)."""
    return jax.nn.sigmoid(x)


def safe_pow(base, exponent):
    """``base ** exponent`` for ``base >= 0`` with a finite gradient at ``base = 0``."""
    base = jnp.asarray(base)
    pos = base > 0
    safe = jnp.where(pos, base, 1.0)
    return jnp.where(pos, safe**exponent, 0.0)


def step(x):
    """Heaviside step, 1 for x >= 0 and 0 otherwise (Biolek's ``stp``)."""
    return jnp.where(x >= 0, 1.0, 0.0)
