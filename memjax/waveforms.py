"""Driving waveforms: pure callables ``v(t)`` (volts or amperes, t in seconds).

Each waveform is an `eqx.Module`, so its amplitudes are pytree leaves: `grad` with respect
to a drive works, and `vmap` over a stacked waveform drives a population with a
different input per device.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._validation import check_fields, check_nonnegative, check_positive, check_real, check_shape

__all__ = ["Sine", "Triangle", "PulseTrain", "Constant", "Sampled"]


class Sine(eqx.Module):
    """``v(t) = offset + amplitude * sin(2 pi frequency t + phase)``."""

    amplitude: Float[ArrayLike, "..."]
    frequency: Float[ArrayLike, "..."]  # Hz
    phase: Float[ArrayLike, "..."] = 0.0  # rad
    offset: Float[ArrayLike, "..."] = 0.0

    def __check_init__(self):
        check_fields("Sine", self)
        check_positive("Sine", "frequency", self.frequency, "Hz")

    def __call__(self, t):
        return self.offset + self.amplitude * jnp.sin(2 * jnp.pi * self.frequency * t + self.phase)


class Triangle(eqx.Module):
    """Symmetric triangle wave of peak ``amplitude``, starting at 0 and rising."""

    amplitude: Float[ArrayLike, "..."]
    frequency: Float[ArrayLike, "..."]  # Hz

    def __check_init__(self):
        check_fields("Triangle", self)
        check_positive("Triangle", "frequency", self.frequency, "Hz")

    def __call__(self, t):
        phase = jnp.mod(t * self.frequency + 0.25, 1.0)
        return self.amplitude * (1 - 4 * jnp.abs(phase - 0.5))


class PulseTrain(eqx.Module):
    """Rectangular pulses: ``amplitude`` for ``width`` seconds every ``period`` seconds,
    starting at ``delay``; ``base`` otherwise."""

    amplitude: Float[ArrayLike, "..."]
    width: Float[ArrayLike, "..."]  # s
    period: Float[ArrayLike, "..."]  # s
    delay: Float[ArrayLike, "..."] = 0.0  # s
    base: Float[ArrayLike, "..."] = 0.0

    def __check_init__(self):
        check_fields("PulseTrain", self)
        check_positive("PulseTrain", "period", self.period, "s")
        check_positive("PulseTrain", "width", self.width, "s")
        check_nonnegative("PulseTrain", "delay", self.delay, "s")

    def __call__(self, t):
        tau = t - self.delay
        on = (tau >= 0) & (jnp.mod(tau, self.period) < self.width)
        return jnp.where(on, self.amplitude, self.base)


class Constant(eqx.Module):
    """``v(t) = value``."""

    value: Float[ArrayLike, "..."]

    def __check_init__(self):
        check_fields("Constant", self)

    def __call__(self, t):
        return self.value + 0.0 * t


class Sampled(eqx.Module):
    """A sampled waveform ``values[k]`` at ``t0 + k dt``, linearly interpolated between
    samples and held constant outside the record."""

    values: Float[Array, " T"]
    dt: float = eqx.field(static=True)
    t0: float = eqx.field(static=True, default=0.0)

    def __init__(self, values, dt: float, t0: float = 0.0):
        check_real("Sampled", "values", values)
        values = jnp.asarray(values)
        check_shape("Sampled", "values", values, (None,))
        if not bool(jnp.all(jnp.isfinite(values))):
            raise ValueError("Sampled.values must be finite; got NaN or inf")
        check_positive("Sampled", "dt", dt, "s")
        check_real("Sampled", "t0", t0)
        self.values = values
        self.dt = float(dt)
        self.t0 = float(t0)

    def __call__(self, t):
        pos = (t - self.t0) / self.dt
        n = self.values.shape[0]
        pos = jnp.clip(pos, 0.0, n - 1.0)
        k = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, max(n - 2, 0))
        frac = pos - k
        v0 = self.values[k]
        v1 = self.values[jnp.minimum(k + 1, n - 1)]
        return v0 + frac * (v1 - v0)
