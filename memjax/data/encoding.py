"""Spike and current encoders: static images -> input over ``T`` time steps.

All encoders take intensities ``x`` in [0, 1] (`scale_images` scales uint8 images) of any
shape, typically ``(batch, features)``, and return arrays of shape ``(T, *x.shape)``
(``(T, batch, features)``), time first, ready for `lax.scan`. They are pure JAX
functions: `jit` them with ``n_steps`` static (``jax.jit(f, static_argnames="n_steps")``).

* direct (current) injection: ``I_t = offset + gain * x`` at every step;
* rate coding: independent Bernoulli spikes per step with
  ``P(spike) = x * max_rate * dt`` (the per-step approximation of a Poisson process of
  rate ``x * max_rate``; requires ``max_rate * dt <= 1``);
* latency (time-to-first-spike) coding: one spike per pixel, earlier for brighter
  pixels; pixels of intensity 0 (or below ``threshold``) never spike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._validation import check_int, check_positive, check_range

__all__ = ["scale_images", "normalize", "direct", "rate", "latency", "latency_steps"]


def scale_images(
    images: ArrayLike, *, flatten: bool = False, owner: str = "scale_images"
) -> np.ndarray:
    """Images as float32 intensities in [0, 1], the input every memjax model expects.

    uint8 images (0..255) are divided by 255; floating images must already lie in
    [0, 1] and are only cast (``ValueError`` otherwise, e.g. for float images in
    0..255, naming ``owner``); other dtypes raise ``TypeError``. ``flatten`` reshapes
    ``(N, ...)`` to ``(N, features)``.
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        if x.size and not (np.min(x) >= 0.0 and np.max(x) <= 1.0):
            raise ValueError(
                f"{owner}: images must be uint8 (0..255) or floats scaled to [0, 1]; got floats in "
                f"[{float(np.min(x))}, {float(np.max(x))}] (divide 0..255 images by 255)"
            )
        x = x.astype(np.float32)
    else:
        raise TypeError(
            f"{owner}: images must be uint8 (0..255) or floats in [0, 1]; got {x.dtype}"
        )
    return x.reshape(x.shape[0], -1) if flatten else x


#: Alias of :func:`scale_images`.
normalize = scale_images


def _steps(n_steps) -> int:
    check_int("encoding: n_steps", n_steps, 1)
    return int(n_steps)


def direct(
    x: Float[ArrayLike, "*shape"],
    n_steps: int | None = None,
    *,
    gain: float = 1.0,
    offset: float = 0.0,
) -> Float[Array, "T *shape"] | Float[Array, "*shape"]:  # noqa: F821 (jaxtyping shape)
    """Direct current injection ``I = offset + gain * x``.

    Returns the static current (shape of `x`) when ``n_steps`` is None, else the same
    current repeated over time, ``(n_steps, *x.shape)`` (a broadcast, no copies under jit).
    `gain` is in the units of the current you want (e.g. amperes per unit intensity).
    """
    current = offset + gain * jnp.asarray(x)
    if n_steps is None:
        return current
    return jnp.broadcast_to(current, (_steps(n_steps),) + current.shape)


def rate(
    key: PRNGKeyArray,
    x: Float[ArrayLike, "*shape"],
    n_steps: int,
    *,
    max_rate: float = 100.0,
    dt: float = 1e-3,
    dtype=jnp.float32,
) -> Float[Array, "T *shape"]:  # noqa: F821 (jaxtyping shape)
    """Rate (Bernoulli) coding: ``s_t ~ Bernoulli(clip(x, 0, 1) * max_rate * dt)``.

    Args:
        key: PRNG key.
        x: intensities in [0, 1].
        n_steps: number of time steps ``T``.
        max_rate: firing rate of a pixel of intensity 1, Hz.
        dt: time step, s. ``max_rate * dt`` must be <= 1.

    Returns:
        0/1 spikes of shape ``(T, *x.shape)`` in `dtype`; each step independent, so the
        expected count of a pixel over ``T`` steps is ``T * x * max_rate * dt``.
    """
    check_positive("rate", "max_rate", max_rate, "Hz")
    check_positive("rate", "dt", dt, "s")
    check_range("rate", "max_rate*dt", max_rate * dt, 0.0, 1.0)
    x = jnp.asarray(x)
    p = jnp.clip(x, 0.0, 1.0) * (max_rate * dt)
    u = jax.random.uniform(key, (_steps(n_steps),) + x.shape, dtype=p.dtype)
    return (u < p[None]).astype(dtype)


def latency_steps(
    x: Float[ArrayLike, "*shape"],
    n_steps: int,
    *,
    method: str = "linear",
    tau: float = 5.0,
    threshold: float = 0.01,
) -> Array:
    """Spike step of each pixel for `latency` (int32; ``n_steps`` = never spikes).

    * ``"linear"``: ``k = round((1 - x) * (T - 1))`` for ``x > 0``: intensity 1 fires
      at step 0, intensities near 0 at step ``T - 1``.
    * ``"log"``: time for an RC membrane (time constant ``tau`` steps) driven by
      current ``x`` to reach ``threshold``: ``k = round(tau * ln(x / (x - threshold)))``
      for ``x > threshold`` (the form used by snnTorch's ``spikegen.latency``); steps
      ``>= T`` are dropped.
    """
    T = _steps(n_steps)
    x = jnp.clip(jnp.asarray(x), 0.0, 1.0)
    if method == "linear":
        active = x > 0
        k = jnp.round((1.0 - x) * (T - 1))
    elif method == "log":
        check_positive("latency", "tau", tau, "steps")
        check_range("latency", "threshold", threshold, 0.0, 1.0, lo_open=True, hi_open=True)
        active = x > threshold
        safe = jnp.where(active, x, 1.0)
        k = jnp.round(tau * jnp.log(safe / (safe - threshold)))
        active = active & (k < T)
    else:
        raise ValueError(f"latency: method must be 'linear' or 'log'; got {method!r}")
    return jnp.where(active, k, T).astype(jnp.int32)


def latency(
    x: Float[ArrayLike, "*shape"],
    n_steps: int,
    *,
    method: str = "linear",
    tau: float = 5.0,
    threshold: float = 0.01,
    dtype=jnp.float32,
) -> Float[Array, "T *shape"]:  # noqa: F821 (jaxtyping shape)
    """Latency coding: at most one spike per pixel, at step `latency_steps` (see there).

    Returns 0/1 spikes of shape ``(T, *x.shape)``; brighter pixels spike no later than
    dimmer ones, and pixels of intensity 0 never spike.
    """
    k = latency_steps(x, n_steps, method=method, tau=tau, threshold=threshold)
    t = jnp.arange(_steps(n_steps)).reshape((-1,) + (1,) * k.ndim)
    return (t == k[None]).astype(dtype)
