"""Fixed-step solvers against closed forms and the diffrax reference; NaN debug switch;
checkpointed_scan (values, gradients, memory)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err

import memjax as mj
from memjax.integrate import checkpointed_scan, odeint, odeint_reference


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
    _, energy = odeint(
        f,
        {"q": 1.0, "p": 0.0},
        dt=0.1,
        n_steps=64,
        substeps=4,
        output=lambda t, y: 0.5 * (y["q"] ** 2 + y["p"] ** 2),
    )
    np.testing.assert_allclose(energy, 0.5, atol=1e-7)


def test_projection_respects_bounds():
    f = lambda t, y: jnp.ones_like(y) * 10.0
    _, ys = odeint(
        f,
        jnp.zeros(3),
        dt=0.1,
        n_steps=20,
        solver=mj.Euler(),
        project=lambda y: jnp.clip(y, 0.0, 1.0),
    )
    assert float(ys.max()) == 1.0


def test_reference_matches_closed_form(x64):
    f = lambda t, y: -2.0 * y
    ts = jnp.linspace(0.0, 1.0, 11)
    ys = odeint_reference(f, 1.0, ts)
    np.testing.assert_allclose(ys, np.exp(-2.0 * np.asarray(ts)), rtol=1e-8)


def test_checkpoint_gives_same_gradient(x64):
    def loss(a, checkpoint):
        _, ys = odeint(
            lambda t, y: -a * y + jnp.cos(t),
            0.3,
            dt=0.05,
            n_steps=40,
            substeps=3,
            checkpoint=checkpoint,
        )
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


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=5, substeps=0), "substeps"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        odeint(lambda t, y: y, 1.0, dt=0.1, **kwargs)


# checkpointed_scan

MODES = ["none", "step", "sqrt", 4, 50]


def _f(c, x):
    c = jnp.tanh(c * x[0]) + 0.3 * c * x[1]
    return c, jnp.sum(c**2)


def _numpy_scan(c, xs):
    ys = []
    for x in xs:
        c = np.tanh(c * x[0]) + 0.3 * c * x[1]
        ys.append(np.sum(c**2))
    return c, np.asarray(ys)


@pytest.mark.parametrize("T", [1, 17])
def test_checkpointed_scan_values_and_grads(x64, getkey, T):
    c0 = jax.random.normal(getkey(), (3,))
    xs = jax.random.uniform(getkey(), (T, 2, 3), minval=0.5, maxval=1.5)
    c_ref, ys_ref = _numpy_scan(np.asarray(c0), np.asarray(xs))

    def loss(c0, xs, mode):
        c, ys = checkpointed_scan(_f, c0, xs, checkpoint=mode)
        return jnp.sum(c) + jnp.sum(jnp.cos(ys))

    @jax.jit
    def run(c0, xs):
        out = {}
        for mode in MODES:
            c, ys = checkpointed_scan(_f, c0, xs, checkpoint=mode)
            out[str(mode)] = (c, ys, jax.grad(loss, argnums=(0, 1))(c0, xs, mode))
        return out

    out = run(c0, xs)
    g_ref = out["none"][2]
    for mode, (c, ys, g) in out.items():
        np.testing.assert_allclose(c, c_ref, rtol=1e-12)
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-12)
        assert rel_err(g[0], g_ref[0]) < 1e-12 and rel_err(g[1], g_ref[1]) < 1e-12, mode


def test_checkpointed_scan_length_only_and_errors(x64):
    f = lambda c, _: (0.9 * c + 1.0, c)
    ref = 10.0 * (1 - 0.9 ** np.arange(23))
    for mode in MODES:
        c, ys = checkpointed_scan(f, jnp.float64(0.0), None, 23, checkpoint=mode)
        np.testing.assert_allclose(ys, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="checkpoint must be"):
        checkpointed_scan(f, 0.0, None, 5, checkpoint="everything")
    with pytest.raises(ValueError, match="segment length"):
        checkpointed_scan(f, 0.0, None, 5, checkpoint=0)


def _temp_bytes(mode, T, n=2048):
    def loss(c0, w):
        c, ys = checkpointed_scan(
            lambda c, _: (jnp.sin(c * w) + 0.5 * jnp.cos(c), None), c0, None, T, checkpoint=mode
        )
        return jnp.sum(c)

    args = (jnp.ones(n, jnp.float32), jnp.float32(1.1))
    comp = jax.jit(jax.grad(loss, argnums=1)).lower(*args).compile()
    return comp.memory_analysis().temp_size_in_bytes


def test_sqrt_checkpointing_is_sublinear():
    # Residuals of a 2048-float state over T steps: "step" keeps T states, "sqrt" about
    # 2 sqrt(T); growing T 16x grows "step" ~16x and "sqrt" ~4x.
    t_step = [_temp_bytes("step", T) for T in (64, 1024)]
    t_sqrt = [_temp_bytes("sqrt", T) for T in (64, 1024)]
    assert t_step[1] / t_step[0] > 10
    assert t_sqrt[1] / t_sqrt[0] < 6
    assert t_sqrt[1] < t_step[1] / 5


# ---- argument checks (a bad dt, n_steps or dtype is an error, never a silent result) ----
import equinox as _eqx  # noqa: E402

from memjax.devices import HPMemristor as _HP  # noqa: E402
from memjax.devices import simulate as _simulate  # noqa: E402


@pytest.mark.parametrize("dt", [-1e-3, 0.0, float("nan"), float("inf"), -float("inf")])
def test_simulate_rejects_bad_dt(dt):
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        _simulate(_HP(), lambda t: jnp.sin(t), dt=dt, n_steps=4)


def test_simulate_rejects_bad_dt_under_jit():
    f = _eqx.filter_jit(lambda dt: _simulate(_HP(), lambda t: jnp.sin(t), dt=dt, n_steps=4).x)
    assert np.all(np.isfinite(np.asarray(f(jnp.float32(1e-3)))))
    with pytest.raises(Exception, match="dt must be finite and > 0"):
        jax.block_until_ready(f(jnp.float32(-1e-3)))


@pytest.mark.parametrize("n_steps", [2.5, 3.0, True, "3"])
def test_simulate_rejects_non_integer_n_steps(n_steps):
    with pytest.raises(TypeError, match="n_steps must be an integer"):
        _simulate(_HP(), lambda t: jnp.sin(t), dt=1e-3, n_steps=n_steps)


@pytest.mark.parametrize("substeps", [0, -1])
def test_simulate_rejects_bad_substeps(substeps):
    with pytest.raises(ValueError, match="substeps must be an integer >= 1"):
        _simulate(_HP(), lambda t: jnp.sin(t), dt=1e-3, n_steps=3, substeps=substeps)


@pytest.mark.parametrize("t0", [float("nan"), float("inf")])
def test_odeint_rejects_non_finite_t0(t0):
    with pytest.raises(ValueError, match="t0 must be finite"):
        odeint(lambda t, y: -y, jnp.ones(()), dt=0.1, n_steps=3, t0=t0)


@pytest.mark.parametrize("half", [jnp.bfloat16, jnp.float16])
def test_half_precision_state_is_promoted_to_float32(half):
    """A half-precision x0 would round the time grid (bfloat16: 1.001 -> 1.0); it is
    integrated in float32 instead, as documented."""
    tr = _simulate(
        _HP(), lambda t: jnp.sin(t), dt=1e-3, n_steps=5, t0=1.0, x0=jnp.asarray(0.1, half)
    )
    assert tr.t.dtype == jnp.float32 and tr.x.dtype == jnp.float32
    np.testing.assert_allclose(np.diff(np.asarray(tr.t)), 1e-3, rtol=1e-3)


@pytest.mark.parametrize("x0", [1.5, -0.1, float("nan")])
def test_simulate_rejects_initial_state_outside_bounds(x0):
    with pytest.raises(
        ValueError, match=r"x0 must be finite and inside HPMemristor's state bounds"
    ):
        _simulate(_HP(), lambda t: jnp.sin(t), dt=1e-3, n_steps=3, x0=x0)


def test_simulate_rejects_non_real_initial_state():
    with pytest.raises(TypeError, match="x0"):
        _simulate(_HP(), lambda t: jnp.sin(t), dt=1e-3, n_steps=3, x0=0.5 + 0.1j)
