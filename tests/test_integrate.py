"""Fixed-step solvers against closed forms and the diffrax reference; NaN debug switch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax as mj
from memjax.integrate import odeint, odeint_reference


@pytest.mark.parametrize("solver,order", [(mj.Euler(), 1), (mj.Heun(), 2), (mj.RK4(), 4)])
def test_convergence_order(x64, solver, order):
    # dy/dt = -y + sin(t): closed form y = (3/2) e^-t + (sin t - cos t)/2 with y0 = 1.
    f = lambda t, y: -y + jnp.sin(t)
    exact = lambda t: 1.5 * np.exp(-t) + 0.5 * (np.sin(t) - np.cos(t))
    errs = []
    for sub in (8, 16):
        ts, ys = odeint(f, 1.0, dt=0.5, n_steps=9, solver=solver, substeps=sub)
        errs.append(np.max(np.abs(np.asarray(ys) - exact(np.asarray(ts)))))
    observed = np.log2(errs[0] / errs[1])
    assert abs(observed - order) < 0.3, (errs, observed)


def test_pytree_state_and_output(x64):
    # Harmonic oscillator as a dict state: energy conserved to RK4 accuracy.
    f = lambda t, y: {"q": y["p"], "p": -y["q"]}
    ts, ys = odeint(f, {"q": 1.0, "p": 0.0}, dt=0.1, n_steps=64, substeps=4)
    np.testing.assert_allclose(ys["q"], np.cos(np.asarray(ts)), atol=1e-7)
    _, energy = odeint(f, {"q": 1.0, "p": 0.0}, dt=0.1, n_steps=64, substeps=4,
                       output=lambda t, y: 0.5 * (y["q"] ** 2 + y["p"] ** 2))
    np.testing.assert_allclose(energy, 0.5, atol=1e-7)


def test_projection_respects_bounds():
    f = lambda t, y: jnp.ones_like(y) * 10.0
    _, ys = odeint(f, jnp.zeros(3), dt=0.1, n_steps=20, solver=mj.Euler(),
                   project=lambda y: jnp.clip(y, 0.0, 1.0))
    assert float(ys.max()) == 1.0


def test_reference_matches_closed_form(x64):
    f = lambda t, y: -2.0 * y
    ts = jnp.linspace(0.0, 1.0, 11)
    ys = odeint_reference(f, 1.0, ts)
    np.testing.assert_allclose(ys, np.exp(-2.0 * np.asarray(ts)), rtol=1e-8)


def test_checkpoint_gives_same_gradient(x64):
    def loss(a, checkpoint):
        _, ys = odeint(lambda t, y: -a * y + jnp.cos(t), 0.3, dt=0.05, n_steps=40,
                       substeps=3, checkpoint=checkpoint)
        return jnp.sum(ys**2)

    g0 = jax.grad(loss)(0.7, False)
    g1 = jax.grad(loss)(0.7, True)
    np.testing.assert_allclose(g0, g1, rtol=1e-12)


def test_debug_raises_with_step():
    # dy/dt = y^2 from y0 = 1 blows up at t = 1: Euler with dt = 0.25 overflows.
    f = lambda t, y: y * y * 1e3
    with pytest.raises(Exception, match="non-finite state .* output step"):
        jax.block_until_ready(odeint(f, 1.0, dt=0.25, n_steps=12, solver=mj.Euler(), debug=True))
    # Also under jit.
    run = jax.jit(lambda y0: odeint(f, y0, dt=0.25, n_steps=12, solver=mj.Euler(), debug=True))
    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(run(1.0))


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_steps=0), "n_steps"),
    (dict(n_steps=5, substeps=0), "substeps"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        odeint(lambda t, y: y, 1.0, dt=0.1, **kwargs)
