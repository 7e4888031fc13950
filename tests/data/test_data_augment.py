"""Random views for contrastive training: shift, cutout and noise, each checked alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.data import augment_images


def _shifted(im, dy, dx):
    """``im`` translated by (dy, dx) with zeros entering at the border."""
    h, w = im.shape
    out = np.zeros_like(im)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = im[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_shift_only_views_are_translations_within_max_shift():
    x = np.asarray(jax.random.uniform(jax.random.key(0), (16, 12, 10)))
    y = np.asarray(augment_images(jax.random.key(1), jnp.asarray(x), cutout=0, noise=0.0))
    seen = set()
    for im, view in zip(x, y):
        shifts = [
            (dy, dx)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if np.array_equal(view, _shifted(im, dy, dx))
        ]
        assert len(shifts) == 1, "each view is exactly one translation within +-3 px"
        seen.add(shifts[0])
    assert len(seen) > 3, "shifts are drawn per image"


def test_cutout_zeroes_one_square_with_the_given_probability():
    x = jnp.ones((400, 28, 28))
    always = augment_images(jax.random.key(2), x, max_shift=0, noise=0.0, cutout_prob=1.0)
    zeros = np.asarray((always == 0).sum(axis=(1, 2)))
    assert np.all(zeros == 10 * 10)
    half = augment_images(jax.random.key(3), x, max_shift=0, noise=0.0, cutout_prob=0.5)
    frac = float(np.mean(np.asarray((half == 0).any(axis=(1, 2)))))
    assert 0.4 < frac < 0.6
    never = augment_images(jax.random.key(4), x, max_shift=0, noise=0.0, cutout_prob=0.0)
    assert np.array_equal(np.asarray(never), np.asarray(x))


def test_noise_has_the_given_spread_and_stays_in_unit_range():
    x = jnp.full((50, 28, 28), 0.5)
    y = augment_images(jax.random.key(5), x, max_shift=0, cutout=0, noise=0.1)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    np.testing.assert_allclose(float(jnp.std(y - x)), 0.1, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_shift=-1), "max_shift must be an integer >= 0"),
        (dict(cutout=29), r"cutout must be an integer in \[0, 28\]"),
        (dict(cutout_prob=1.5), r"cutout_prob must lie in \[0, 1\]"),
        (dict(noise=-0.1), "noise must lie in"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        augment_images(jax.random.key(0), jnp.zeros((2, 28, 28)), **kwargs)


def test_images_must_be_a_stack_of_2d_images():
    with pytest.raises(ValueError, match=r"images must be \(N, H, W\)"):
        augment_images(jax.random.key(0), jnp.zeros((2, 784)))


def test_images_outside_the_unit_range_or_not_float_are_refused():
    with pytest.raises(TypeError, match="floating point in \\[0, 1\\]"):
        augment_images(jax.random.key(0), jnp.zeros((2, 28, 28), jnp.uint8))
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        augment_images(jax.random.key(0), jnp.full((2, 28, 28), 255.0))
