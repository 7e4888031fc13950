"""Quantisers with straight-through estimators (STE) for binarized and quantized networks.

**Uniform k-level grid** on ``[-w_max, w_max]`` (``k = n_levels >= 2``):

    q_j = -w_max + j Delta,   Delta = 2 w_max / (k - 1),   j = 0 .. k - 1

A hidden weight ``w`` maps to the nearest level: ``j(w)`` is the number of decision
boundaries ``b_i = w_max (2 i + 2 - k) / (k - 1)`` (i = 0 .. k - 2, half-way between
levels) with ``w >= b_i``. Each boundary is compared exactly, so a weight gets the level
of its own side however close to a boundary it is (in a BNN a hidden weight of ``-1e-20``
reads ``-1``, as ``torch.sign`` reads it).
With ``k = 2`` the levels are ``+-w_max`` and the only boundary is 0: the quantiser is
``w_max sign(w)``. Ties (``w`` exactly on a boundary) go to the upper level, so
``sign(0) = +1`` here (a weight is never 0 in a BNN).

**Straight-through estimators** (Courbariaux et al. 2016; Hubara et al., JMLR 18, 2018;
the forms used by Laborieux et al., Nat. Commun. 12, 2549 (2021)):

- weights: forward ``sign(w)`` (or the k-level quantiser), backward identity,
  everywhere (hidden weights beyond ``+-w_max`` keep receiving gradients, which is what
  lets metaplastic weights grow and consolidate);
- activations: forward ``sign(x)``, backward ``1`` where ``|x| <= 1`` and ``0`` elsewhere
  (the derivative of ``hardtanh``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._validation import check_int

__all__ = [
    "check_levels",
    "level_index",
    "level_value",
    "quantize_levels",
    "sign_ste",
    "sign_hardtanh_ste",
    "fixed_point",
]


def check_levels(owner: str, n_levels, w_max=1.0) -> None:
    """Raise ``ValueError`` naming ``owner.n_levels`` / ``owner.w_max`` when invalid."""
    check_int(f"{owner}.n_levels", n_levels, 2)
    try:
        ok = np.isfinite(float(w_max)) and float(w_max) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{owner}.w_max must be finite and > 0; got {w_max!r}")


def level_index(w: Float[ArrayLike, "..."], n_levels: int, w_max: float = 1.0) -> Int[Array, "..."]:
    """Index ``j`` (int32, 0 .. n_levels - 1) of the level nearest to ``w`` (ties up)."""
    check_levels("level_index", n_levels, w_max)
    w = jnp.asarray(w)
    k = n_levels
    delta = 2.0 * w_max / (k - 1)
    # Nearest level by rounding, then corrected against the exact boundaries next to it.
    j = jnp.floor(jnp.clip((w + w_max) / delta, 0.0, k - 1) + 0.5).astype(jnp.int32)
    below = lambda i: (w_max * (2 * i - k).astype(w.dtype)) / (k - 1)  # b_{i-1}, under level i
    j = j - ((j > 0) & (w < below(j))).astype(jnp.int32)
    j = j + ((j < k - 1) & (w >= below(j + 1))).astype(jnp.int32)
    return j


def level_value(
    j: Int[ArrayLike, "..."], n_levels: int, w_max: float = 1.0, dtype=None
) -> Float[Array, "..."]:
    """Level ``q_j = -w_max + j Delta``."""
    check_levels("level_value", n_levels, w_max)
    dtype = jnp.result_type(float) if dtype is None else dtype
    delta = 2.0 * w_max / (n_levels - 1)
    return (-w_max + jnp.asarray(j).astype(dtype) * delta).astype(dtype)


def quantize_levels(
    w: Float[ArrayLike, "..."], n_levels: int, w_max: float = 1.0
) -> Float[Array, "..."]:
    """Nearest of the ``n_levels`` uniform levels on ``[-w_max, w_max]``; identity STE.

    Forward ``q_{j(w)}``; ``d/dw = 1`` everywhere. ``n_levels = 2`` is ``w_max sign(w)``.
    ``w`` must be floating point (the levels are fractions of ``w_max``).
    """
    check_levels("quantize_levels", n_levels, w_max)
    w = jnp.asarray(w)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"quantize_levels: w must be floating point; got dtype {w.dtype}")
    return _quantize(w, n_levels, float(w_max))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _quantize(w, n_levels, w_max):
    # custom_jvp rather than ``w + stop_gradient(q - w)``: the forward value is q exactly
    return level_value(level_index(w, n_levels, w_max), n_levels, w_max, w.dtype)


@_quantize.defjvp
def _quantize_jvp(n_levels, w_max, primals, tangents):
    (w,), (t,) = primals, tangents
    return _quantize(w, n_levels, w_max), t


def sign_ste(x: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """``+1`` where ``x >= 0`` else ``-1``; identity gradient (the weight STE)."""
    x = jnp.asarray(x)
    s = jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)
    return x + jax.lax.stop_gradient(s - x)


@jax.custom_jvp
def sign_hardtanh_ste(x: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """``+1`` where ``x >= 0`` else ``-1``; gradient ``1`` where ``|x| <= 1``, else 0
    (the hardtanh STE of binarized activations)."""
    x = jnp.asarray(x)
    return jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


@sign_hardtanh_ste.defjvp
def _sign_hardtanh_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    x = jnp.asarray(x)
    y = sign_hardtanh_ste(x)
    return y, jnp.where(jnp.abs(x) <= 1.0, t, jnp.zeros_like(t))


def fixed_point(x: Float[ArrayLike, "..."], bits: int | None, x_max: float) -> Float[Array, "..."]:
    """Signed fixed-point storage of ``x`` with ``bits`` bits on ``[-x_max, x_max)``:
    step ``x_max / 2^(bits - 1)``, round to nearest, clip to ``[-x_max, x_max - step]``.
    ``bits=None``: unchanged (float storage). Not differentiable (storage, not forward)."""
    x = jnp.asarray(x)
    if bits is None:
        return x
    check_int("fixed_point: bits", bits, 2, 32, none_ok=True)
    if not (np.isfinite(float(x_max)) and float(x_max) > 0):
        raise ValueError(f"fixed_point: x_max must be finite and > 0; got {x_max!r}")
    step = x_max / 2 ** (bits - 1)
    return jnp.clip(jnp.round(x / step) * step, -x_max, x_max - step).astype(x.dtype)
