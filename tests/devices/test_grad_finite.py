"""Property: wherever a simulation's forward value is finite, its gradient is finite.

A seeded sweep over drive amplitude (from a tenth of each model's nominal drive to a
hundred times it, deep into saturation), drive frequency and the model's parameters
(each scaled by up to a factor 2 either way), for every compact model, every fixed-step
solver, in float32 and float64. The gradient is taken with respect to the amplitude, the
frequency and the parameter scales together; the loss is the mean power plus the mean
state, so both the port and the state equations are differentiated.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax.devices as md
from memjax.integrate import RK4, Euler, Heun

N_DRAWS = 8
N_STEPS = 64


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    make: Callable[[], md.AbstractMemristor]
    amplitude: float  # nominal drive (V)
    f0: float  # nominal frequency (Hz)
    params: tuple[str, ...]  # fields scaled in the sweep
    substeps: int = 1


MODELS = [
    Model("HP-Joglekar", lambda: md.HPMemristor(x0=0.5), 1.0, 1.0, ("R_on", "R_off", "mu_v")),
    Model(
        "HP-Joglekar-p2",
        lambda: md.HPMemristor(window=md.Joglekar(p=2.0)),
        1.0,
        1.0,
        ("R_on", "R_off", "mu_v"),
    ),
    Model(
        "HP-Joglekar-p0.5",
        lambda: md.HPMemristor(window=md.Joglekar(p=0.5)),
        1.0,
        1.0,
        ("R_on", "mu_v"),
    ),
    Model(
        "HP-Biolek",
        lambda: md.HPMemristor(window=md.Biolek(p=1.0)),
        1.0,
        1.0,
        ("R_on", "R_off", "mu_v"),
    ),
    Model(
        "HP-Prodromakis",
        lambda: md.HPMemristor(window=md.Prodromakis(p=2.0)),
        1.0,
        1.0,
        ("R_on", "R_off", "mu_v"),
    ),
    Model(
        "HP-NoWindow",
        lambda: md.HPMemristor(window=md.NoWindow()),
        1.0,
        1.0,
        ("R_on", "R_off", "mu_v"),
    ),
    Model(
        "TEAM", lambda: md.TEAMMemristor(x0=0.95), 1.0, 1.0, ("R_on", "R_off", "k_off"), substeps=4
    ),
    Model("VTEAM", lambda: md.VTEAMMemristor(), 0.3, 3e6, ("R_on", "R_off", "k_off")),
    Model("Yakopcic", lambda: md.YakopcicMemristor(), 0.5, 1e3, ("a1", "a2", "A_p", "A_n")),
    Model("StanfordPKU", lambda: md.StanfordPKURRAM(x0=0.5e-9), 1.5, 3e7, ("I0", "v0", "g0")),
    Model("MMSS", lambda: md.MMSSMemristor(), 0.5, 1e3, ("R_on", "R_off", "tau")),
    Model("MMSS-Schottky", lambda: md.MMSSMemristor(phi=0.5), 0.5, 1e3, ("R_on", "tau", "a_f")),
    Model("VO2", lambda: md.VO2ThresholdSwitch(), 10.0, 2e4, ("R0", "C_th", "R_th"), substeps=4),
]
SOLVERS = {"Euler": Euler(), "Heun": Heun(), "RK4": RK4()}


def _draws(model: Model, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    amp = model.amplitude * 10.0 ** rng.uniform(-1.0, 2.0, N_DRAWS)
    amp[0] = 100.0 * model.amplitude  # always include deep saturation
    freq = model.f0 * 10.0 ** rng.uniform(-0.5, 0.5, N_DRAWS)
    scales = 2.0 ** rng.uniform(-1.0, 1.0, (N_DRAWS, len(model.params)))
    return tuple(jnp.asarray(a, dtype) for a in (amp, freq, scales))


def _loss_and_grad(model: Model, solver, dtype):
    base = model.make()
    base = jax.tree.map(
        lambda a: jnp.asarray(a, dtype) if eqx.is_inexact_array_like(a) else a,
        base,
        is_leaf=lambda a: isinstance(a, float),
    )
    dt = 2.0 / (model.f0 * N_STEPS)  # two nominal periods

    def loss(amp, freq, scales):
        dev = eqx.tree_at(
            lambda d: [getattr(d, n) for n in model.params],
            base,
            [getattr(base, n) * s for n, s in zip(model.params, scales)],
        )
        drive = lambda t: amp * jnp.sin(2 * jnp.pi * freq * t)
        tr = md.simulate(dev, drive, dt=dt, n_steps=N_STEPS, solver=solver, substeps=model.substeps)
        lo, hi = dev.state_bounds()
        scale = jnp.where(jnp.isfinite(hi), hi, 1.0)
        return jnp.mean(tr.v * tr.i) + jnp.mean(tr.x / scale)

    return jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1, 2))))


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
@pytest.mark.parametrize("solver", list(SOLVERS), ids=list(SOLVERS))
@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_gradient_finite_where_forward_finite(model, solver, x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        value, grads = _loss_and_grad(model, SOLVERS[solver], dtype)(*_draws(model, dtype))
        value = np.asarray(value)
        assert np.isfinite(value).sum() >= N_DRAWS // 2, f"forward mostly non-finite: {value}"
        for g in grads:
            g = np.asarray(g).reshape(N_DRAWS, -1)
            bad = np.isfinite(value) & ~np.all(np.isfinite(g), axis=1)
            assert not bad.any(), (
                f"{model.name}/{solver}/{dtype.__name__}: non-finite gradient with a finite "
                f"forward value at draws {np.flatnonzero(bad)}: {g[bad]}"
            )


@pytest.mark.parametrize(
    "make, amplitude, solver",
    [
        (lambda: md.HPMemristor(x0=0.5), 2.0, RK4()),
        (lambda: md.HPMemristor(window=md.Joglekar(p=2.0)), 1.0, RK4()),
        (lambda: md.YakopcicMemristor(), 50.0, RK4()),
        (lambda: md.YakopcicMemristor(), 5.0, Euler()),
    ],
    ids=["HP-2V", "Joglekar-p2-1V", "Yakopcic-50V", "Yakopcic-5V-Euler"],
)
def test_saturating_sine_gradient_finite(make, amplitude, solver):
    """The reported cases: 1 Hz sine, dt = 2.5 ms, 400 steps, mean power."""
    dev = make()

    def loss(a):
        tr = md.simulate(
            dev, lambda t: a * jnp.sin(2 * jnp.pi * t), dt=2.5e-3, n_steps=400, solver=solver
        )
        return jnp.mean(tr.v * tr.i)

    value, grad = jax.value_and_grad(loss)(jnp.float32(amplitude))
    assert np.isfinite(value) and np.isfinite(grad), (value, grad)


def test_clamp_holds_a_state_on_its_bound():
    """On a bound the projection's derivative is 0 (the state is held), inside it is 1."""
    g = jax.vmap(jax.grad(lambda x: md.clamp(x, 0.0, 1.0)))(jnp.array([-0.5, 0.0, 0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 0.0, 1.0, 0.0, 0.0])


def test_rram_read_and_drift_gradients_finite(getkey):
    """The behavioural RRAM cell: drift and read are differentiable in G, t and nu,
    also before t0 and with nu = 0."""
    cell = md.MultiLevelRRAM(nu=0.05)
    state = cell.sample_devices(getkey(), (16,), G0=5e-6)

    def loss(G, t, nu):
        c = cell.replace(nu=nu)
        s = dataclasses.replace(state, G=G)
        return jnp.sum(c.read(None, s, t)) + jnp.sum(c.drift(G, t))

    for t in (0.0, 1.0, 1e4):
        for nu in (0.0, 0.05):
            grads = jax.grad(loss, argnums=(0, 1, 2))(
                state.G, jnp.asarray(t, jnp.float32), jnp.asarray(nu, jnp.float32)
            )
            assert all(np.all(np.isfinite(np.asarray(g))) for g in grads), (t, nu, grads)
