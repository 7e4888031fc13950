"""Waveforms against their closed forms; bad parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.waveforms import Constant, PulseTrain, Sampled, Sine, Triangle


def test_sine_closed_form():
    t = np.linspace(0, 2, 101)
    w = Sine(amplitude=1.5, frequency=3.0, phase=0.2, offset=0.1)
    np.testing.assert_allclose(
        w(t), 0.1 + 1.5 * np.sin(2 * np.pi * 3 * t + 0.2), rtol=1e-5, atol=1e-5
    )  # float32


def test_triangle_values():
    w = Triangle(amplitude=2.0, frequency=1.0)
    np.testing.assert_allclose(
        w(jnp.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.125])), [0.0, 2.0, 0.0, -2.0, 0.0, 1.0], atol=1e-6
    )


def test_pulse_train():
    w = PulseTrain(amplitude=1.0, width=0.2, period=1.0, delay=0.5, base=-0.1)
    t = jnp.array([0.0, 0.49, 0.5, 0.69, 0.71, 1.5, 1.75])
    np.testing.assert_allclose(w(t), [-0.1, -0.1, 1.0, 1.0, -0.1, 1.0, -0.1])


def test_constant_and_grad():
    assert float(Constant(0.3)(jnp.array(5.0))) == pytest.approx(0.3)
    g = jax.grad(lambda a: Sine(a, 1.0)(0.25))(2.0)
    assert float(g) == pytest.approx(1.0, abs=1e-6)


def test_sampled_interpolates_and_holds():
    w = Sampled(jnp.array([0.0, 1.0, 4.0]), dt=0.5)
    np.testing.assert_allclose(
        w(jnp.array([-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 3.0])), [0.0, 0.0, 0.5, 1.0, 2.5, 4.0, 4.0]
    )


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: Sine(1.0, -1.0), "Sine.frequency"),
        (lambda: Triangle(1.0, 0.0), "Triangle.frequency"),
        (lambda: PulseTrain(1.0, width=0.0, period=1.0), "PulseTrain.width"),
        (lambda: PulseTrain(1.0, width=0.1, period=-1.0), "PulseTrain.period"),
        (lambda: Sampled(jnp.ones((2, 2)), dt=0.1), "values must have shape"),
        (lambda: Sampled(jnp.ones(3), dt=0.0), "Sampled.dt"),
    ],
)
def test_bad_parameters(make, field):
    with pytest.raises(ValueError, match=field):
        make()


# ---- inputs: non-real values and shapes that do not broadcast are named errors ----------
import numpy as _np  # noqa: E402

from memjax.waveforms import Constant as _Constant  # noqa: E402
from memjax.waveforms import PulseTrain as _PulseTrain  # noqa: E402
from memjax.waveforms import Sampled as _Sampled  # noqa: E402
from memjax.waveforms import Sine as _Sine  # noqa: E402
from memjax.waveforms import Triangle as _Triangle  # noqa: E402


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda b: _Sine(b, 1.0), "Sine.amplitude"),
        (lambda b: _Sine(1.0, 1.0, phase=b), "Sine.phase"),
        (lambda b: _Triangle(b, 1.0), "Triangle.amplitude"),
        (lambda b: _PulseTrain(b, 1e-3, 1e-2), "PulseTrain.amplitude"),
        (lambda b: _Constant(b), "Constant.value"),
        (lambda b: _Sampled(_np.array([1.0, b]), 1e-3), "Sampled.values"),
    ],
)
@pytest.mark.parametrize("bad", ["1.0", 1.0 + 1.0j])
def test_waveform_rejects_non_real(make, field, bad):
    with pytest.raises(TypeError, match=rf"{field} must be a real number"):
        make(bad)


def test_waveform_shapes_must_broadcast():
    with pytest.raises(ValueError, match=r"do not broadcast"):
        _Sine(_np.ones(3), _np.ones(4))


def test_sampled_rejects_non_finite_values():
    with pytest.raises(ValueError, match="Sampled.values must be finite"):
        _Sampled(_np.array([0.0, _np.nan, 1.0]), 1e-3)
