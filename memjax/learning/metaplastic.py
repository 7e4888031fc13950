"""Synaptic metaplasticity as an optax transformation, for binarized and quantized weights.

**BNN form** (Laborieux, Ernoult, Hirtzlin & Querlioz, "Synaptic metaplasticity in
binarized neural networks", Nat. Commun. 12, 2549 (2021); the Adam variant of the
authors' public code). The forward pass uses ``sign(W_h)`` of a hidden weight ``W_h``;
Adam's step ``s = -lr m_t / (sqrt(v_t) + eps)`` is scaled per weight by

    f_meta = 1 - tanh^2(m |W_h|)     where sign(W_h) s < 0  (the step shrinks |W_h|),
    f_meta = 1                       otherwise               (the step grows |W_h|).

A weight that has grown large (consolidated) can hardly move back toward a sign change;
``m = 0`` is plain Adam.

**QNN form** (multi-level weights; this project's design, since the meta-function of
D'Agostino et al., AICAS 2023, arXiv 2306.12142, could not be read). Weights are
quantised to ``k = n_levels`` uniform levels on ``[-w_max, w_max]`` (spacing ``Delta =
2 w_max / (k - 1)``, boundaries half-way between levels, see
:mod:`memjax.learning.quantize`). Let ``b*`` be the level boundary *nearest* to ``W_h``
(of the one or two boundaries of its quantisation interval; the extreme intervals have
one) and ``d = |W_h - b*|``. A step moving ``W_h`` toward ``b*`` is scaled by

    f_meta = 1 - tanh^2(m d / h),    h = Delta / 2 = w_max / (k - 1),

and a step moving away from ``b*`` is not scaled. The distance is measured in units of
the half-spacing ``h``, so ``m`` means the same thing for every ``k``. Within an interior
interval the weight moves freely toward its level (the interval's centre) and is slowed
as it leaves it: consolidation is closeness to the level, at most ``1 - tanh^2(m)`` at
the centre; in the two extreme intervals the hidden weight may grow past ``+-w_max`` and
consolidation is unbounded, as in a BNN. For ``k = 2`` (levels ``+-w_max``, one boundary
at 0) this *is* the BNN form: ``b* = 0``, ``d = |W_h|``, ``h = w_max``.

Why not "distance to the boundary in the direction of motion": a weight that has just
crossed into an interior interval would then be slowed moving on toward its new level
(the far boundary is a whole ``Delta`` away) but free to cross back, so weights pile up
and chatter at boundaries, reprogramming the devices far more often than plain Adam
(docs/metaplasticity.md).

Use it between Adam's scaling and the learning rate (it needs the hidden weights):

    opt = optax.chain(optax.scale_by_adam(), metaplastic(1.35), optax.scale(-lr))
    updates, state = opt.update(grads, state, params)

or :func:`metaplastic_adam`. Only the leaves selected by ``mask`` are affected (e.g.
:func:`weight_matrices`: not batch-norm parameters or biases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float

from .quantize import check_levels, level_index

__all__ = [
    "MetaplasticState",
    "MetaplasticScheduleState",
    "meta_factor",
    "metaplastic",
    "metaplastic_adam",
    "weight_matrices",
    "LevelChangeState",
    "count_level_changes",
]


class MetaplasticState(NamedTuple):
    """:func:`metaplastic` with a constant ``m`` keeps no state of its own (its memory is
    the hidden weights)."""


class MetaplasticScheduleState(NamedTuple):
    """:func:`metaplastic` with ``m`` a schedule: the number of updates so far."""

    count: Any


def _check_m(owner: str, m, name: str = "m") -> None:
    if isinstance(m, jax.core.Tracer):
        return  # traced: validated by the caller
    try:
        arr = np.asarray(m, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0; got {m!r}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{owner}: {name} must be finite and >= 0; got {m!r}")


def _phi(x):
    """``1 - tanh^2(x)`` as ``4 a / (1 + a)^2``, ``a = exp(-2|x|)``: no cancellation for
    large ``x`` (float32 ``1 - tanh^2`` loses all digits), no overflow, exactly 1 at 0."""
    a = jnp.exp(-2.0 * jnp.abs(x))
    return 4.0 * a / ((1.0 + a) * (1.0 + a))


def meta_factor(
    w: Float[ArrayLike, "..."],
    step: Float[ArrayLike, "..."],
    m: float | Float[ArrayLike, ""],
    n_levels: int = 2,
    w_max: float = 1.0,
) -> Float[Array, "..."]:
    """The factor ``f_meta`` (module docstring) for a parameter step ``step`` (the signed
    change about to be added to the hidden weight ``w``; only its sign matters).

    ``1 - tanh^2(m d / h)`` where ``step`` moves ``w`` toward its nearest level boundary,
    ``d`` the distance to it (``h = w_max / (n_levels - 1)``); 1 where the step moves away
    from it or ``step == 0``. At a level centre (equidistant) both directions count as
    toward. ``n_levels = 2``, ``w_max = 1``: ``1 - tanh^2(m |w|)``
    where ``sign(w) step < 0``, else 1.
    """
    check_levels("meta_factor", n_levels, w_max)
    _check_m("meta_factor", m)
    w = jnp.asarray(w)
    step = jnp.asarray(step)
    k = n_levels
    h = w_max / (k - 1)
    j = level_index(w, k, w_max).astype(w.dtype)
    q = -w_max + 2.0 * h * j  # the current level
    inf = jnp.asarray(jnp.inf, w.dtype)
    d_up = jnp.where(j < k - 1, q + h - w, inf)  # to the boundary above, if any
    d_lo = jnp.where(j > 0, w - (q - h), inf)  # to the boundary below, if any
    toward_up = (step > 0) & (d_up <= d_lo) & (j < k - 1)
    toward_lo = (step < 0) & (d_lo <= d_up) & (j > 0)
    has_boundary = toward_up | toward_lo
    d = jnp.where(toward_up, d_up, jnp.where(toward_lo, d_lo, 0.0))
    f = _phi(jnp.asarray(m, w.dtype) * d / h)
    return jnp.where(has_boundary, f, jnp.ones_like(f)).astype(w.dtype)


def weight_matrices(params) -> Any:
    """Mask selecting the leaves with ``ndim >= 2`` (weight matrices; not BN vectors)."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def metaplastic(
    m: float | optax.Schedule,
    n_levels: int = 2,
    w_max: float = 1.0,
    *,
    mask: Any | Callable[[Any], Any] | None = None,
    m_scale: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """Metaplastic attenuation of updates that would move a hidden weight toward a change
    of its binary sign / quantisation level.

    Args:
        m: metaplasticity strength (>= 0; 0 leaves updates bit-for-bit unchanged), or a
            schedule (as optax's learning-rate schedules) giving ``m`` as a function of
            the number of updates so far, e.g. a consolidation warm-up
            ``optax.join_schedules([optax.constant_schedule(0.), optax.constant_schedule(
            2.5)], [600])``; a schedule must return values >= 0 (``-m`` acts as ``m``).
        n_levels: quantisation levels of the weights (2: binarized, ``sign``).
        w_max: the levels span ``[-w_max, w_max]``.
        mask: pytree of bools or a function of the params (as in `optax.masked`); only
            the selected leaves are attenuated. Default: every leaf.
        m_scale: per-leaf factors on ``m`` (a pytree of numbers >= 0 with the structure
            of the params, or a function of the params returning one): leaf ``i`` uses
            ``m_scale_i * m``, e.g. ``(1.0, 2.0)`` to protect the readout of a two-layer
            network twice as strongly (0: that leaf is not attenuated, so it can stand in
            for ``mask``; give one or the other). Default: 1 for every leaf.

    Returns:
        A `GradientTransformation` whose ``update(updates, state, params)`` needs the
        hidden weights ``params``. Incoming ``updates`` are in *gradient* direction (as
        after `optax.scale_by_adam`, before `optax.scale(-lr)`): an update ``u`` moves the
        weight by a step of sign ``-sign(u)``, and is multiplied by :func:`meta_factor`
        of that step. The factor uses the sign of ``u`` only, so it is the authors'
        ``sign(W_h) m_t > 0`` test for Adam.

    Reference: Laborieux et al., Nat. Commun. 12, 2549 (2021) (BNN form); the QNN form
    is this project's (module docstring).
    """
    scheduled = callable(m)
    if not scheduled:
        _check_m("metaplastic", m)
    check_levels("metaplastic", n_levels, w_max)
    if m_scale is not None and mask is not None:
        raise ValueError(
            "metaplastic: pass mask or m_scale, not both (an m_scale of 0 "
            "leaves a leaf unattenuated)"
        )
    if m_scale is not None and not callable(m_scale):
        for c in jax.tree.leaves(m_scale):
            _check_m("metaplastic", c, "m_scale")

    def init_fn(params):
        del params
        if scheduled:
            return MetaplasticScheduleState(jnp.zeros([], jnp.int32))
        return MetaplasticState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("metaplastic: update needs the hidden weights (params)")
        m_now = m(state.count) if callable(m) else m
        if m_scale is None:
            scales = jax.tree.map(lambda _: 1.0, params)  # 1.0 * m is m exactly
        else:
            scales = m_scale(params) if callable(m_scale) else m_scale
            if jax.tree.structure(scales) != jax.tree.structure(params):  # type: ignore[operator]
                raise ValueError(
                    "metaplastic: m_scale must have the structure of the "
                    f"params ({jax.tree.structure(params)}); got "
                    f"{jax.tree.structure(scales)}"
                )
        new = jax.tree.map(
            lambda u, w, c: u * meta_factor(w, -u, c * m_now, n_levels, w_max).astype(u.dtype),
            updates,
            params,
            scales,
        )
        if scheduled:
            state = MetaplasticScheduleState(optax.safe_increment(state.count))
        return new, state

    tx = optax.GradientTransformation(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


def metaplastic_adam(
    learning_rate: float | optax.Schedule,
    m: float | optax.Schedule,
    n_levels: int = 2,
    w_max: float = 1.0,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    mask: Any | Callable[[Any], Any] | None = None,
    m_scale: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """Adam with metaplasticity: ``chain(scale_by_adam(b1, b2, eps), metaplastic(m,
    n_levels, w_max, mask=mask, m_scale=m_scale),
    scale_by_learning_rate(learning_rate))``.

    With ``m = 0`` its updates equal ``optax.adam(learning_rate, b1, b2, eps)``'s bit for
    bit. Laborieux et al. used ``learning_rate = 0.005`` and ``m`` about 1.35 (permuted
    MNIST) or 1.5 (MNIST then Fashion-MNIST). Reset its state at each new task.
    """
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        metaplastic(m, n_levels, w_max, mask=mask, m_scale=m_scale),
        optax.scale_by_learning_rate(learning_rate),
    )


class LevelChangeState(NamedTuple):
    """Per-weight count of quantisation-level changes (int32, one array per leaf)."""

    counts: Any


def count_level_changes(
    n_levels: int = 2,
    w_max: float = 1.0,
    *,
    mask: Any | Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """Pass updates through unchanged and count, per weight, the steps after which its
    quantised level differs from before (``level_index(params + updates) !=
    level_index(params)``): the reprogramming events of the device storing it.

    Put it *last* in a chain (it must see the final updates). The counts live in the
    optimizer state (``LevelChangeState.counts``), so they survive checkpoints; leaves
    outside ``mask`` keep count 0.
    """
    check_levels("count_level_changes", n_levels, w_max)

    def init_fn(params):
        return LevelChangeState(jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.int32), params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("count_level_changes: update needs the params")
        sel = (
            jax.tree.map(lambda _: True, params)
            if mask is None
            else (mask(params) if callable(mask) else mask)
        )

        def one(c, u, w, s):
            if not s:
                return c
            changed = level_index(w + u, n_levels, w_max) != level_index(w, n_levels, w_max)
            return c + changed.astype(jnp.int32)

        counts = jax.tree.map(one, state.counts, updates, params, sel)
        return updates, LevelChangeState(counts)

    return optax.GradientTransformation(init_fn, update_fn)
