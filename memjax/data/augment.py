"""Random image augmentations for contrastive (SimCLR-style) training, as pure JAX
functions of a key: each call draws one random view of every image of a batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_int, check_range

__all__ = ["augment_images"]


def augment_images(
    key: PRNGKeyArray,
    images: Float[Array, "N H W"],
    *,
    max_shift: int = 3,
    cutout: int = 10,
    cutout_prob: float = 0.5,
    noise: float = 0.1,
) -> Float[Array, "N H W"]:
    """One random view of each image in [0, 1]: a translation, a cutout and pixel noise.
    Images of another dtype or range are refused (noise and clipping assume [0, 1]).

    Each image is shifted by integers ``(dy, dx)`` drawn uniformly from
    ``[-max_shift, max_shift]`` (zeros enter at the border); with probability
    ``cutout_prob`` a ``cutout x cutout`` square at a uniform position inside the image
    is set to 0 (DeVries & Taylor, 2017); Gaussian noise of standard deviation
    ``noise`` is added and the result clipped to [0, 1]. ``cutout = 0`` or ``noise = 0``
    switch those parts off.
    """
    check_int("augment_images: max_shift", max_shift, 0)
    check_range("augment_images", "cutout_prob", cutout_prob, 0.0, 1.0)
    check_range("augment_images", "noise", noise, 0.0, float("inf"), hi_open=True)
    if images.ndim != 3:
        raise ValueError(f"augment_images: images must be (N, H, W); got {tuple(images.shape)}")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(
            "augment_images: images must be floating point in [0, 1] "
            f"(memjax.data.scale_images); got dtype {images.dtype}"
        )
    check_range("augment_images", "images", images, 0.0, 1.0)
    n, h, w = images.shape
    check_int("augment_images: cutout", cutout, 0, min(h, w))
    k_shift, k_pos, k_cut, k_noise = jax.random.split(key, 4)
    s = max_shift
    padded = jnp.pad(images, ((0, 0), (s, s), (s, s)))
    start = jax.random.randint(k_shift, (n, 2), 0, 2 * s + 1)
    x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1]), (h, w)))(padded, start)
    if cutout:
        top = jnp.array([h, w]).reshape(1, 2, 1, 1) - cutout + 1
        corner = jax.random.randint(k_pos, (n, 2, 1, 1), 0, top)
        rows = jnp.arange(h)[None, :, None]
        cols = jnp.arange(w)[None, None, :]
        inside = (rows >= corner[:, 0]) & (rows < corner[:, 0] + cutout)
        inside &= (cols >= corner[:, 1]) & (cols < corner[:, 1] + cutout)
        x = jnp.where(inside & jax.random.bernoulli(k_cut, cutout_prob, (n, 1, 1)), 0.0, x)
    if noise:
        x = x + noise * jax.random.normal(k_noise, x.shape, x.dtype)
    return jnp.clip(x, 0.0, 1.0)
