"""The hand-derived adjoint of the MIF step (memjax.neurons._mif_adjoint): gradients of a
loss over a multi-step simulation w.r.t. the neuron's parameters, the input current and
the initial state equal JAX's autodiff of the same step to float32 round-off, and match
float64 central finite differences (directional, in random directions)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.integrate import checkpointed_scan
from memjax.neurons.mif import MIF, mif_step

T = 40
SHAPE = (3, 4)
PARAMS = ("C", "E1", "E2", "tau_a") + tuple(
    f"{m}.{f}" for m in ("m1", "m2") for f in ("R_on", "R_off", "V_on", "V_off", "tau", "v_t")
)
# (dt, substeps, drive in A): the converged MEMprop step, sub-stepped, and a stiff case
# (a drive 30x a spiking one at 4x the step: lambda dt ~ 50 with a memristor ON)
CASES = {
    "dt50us": (5e-5, 1, 3e-5),
    "substeps3": (1e-4, 3, 3e-5),
    "stiff": (2e-4, 1, 1e-3),
}


def _get(p, name):
    for part in name.split("."):
        p = getattr(p, part)
    return p


def _params(dtype, per_neuron: bool):
    """A MIF whose fields are float arrays (scalars, or per-neuron ``[4]`` arrays)."""
    base = MIF()
    rng = np.random.default_rng(1)
    vals = []
    for n in PARAMS:
        v = float(_get(base, n))
        vals.append(jnp.asarray(v * (1.0 + 0.1 * rng.uniform(-1, 1, SHAPE[-1])), dtype))
        vals[-1] = vals[-1] if per_neuron else vals[-1][0]
    return eqx.tree_at(lambda p: tuple(_get(p, n) for n in PARAMS), base, tuple(vals))


def _loss(adjoint, dt, substeps, checkpoint="none"):
    def loss(p, u, s0):
        p = dataclasses.replace(p, adjoint=adjoint)

        def body(s, ut):
            s = mif_step(p, s, ut, dt, substeps=substeps)
            return s, s

        _, st = checkpointed_scan(body, s0, u, checkpoint=checkpoint)
        # every state variable enters, on comparable scales
        return (
            jnp.sum(st.v * 10.0)
            + jnp.sum(st.x1)
            + jnp.sum(st.x2 * 3.0)
            + 1e4 * jnp.sum(st.i)
            + 1e4 * jnp.sum(st.a)
        )

    return loss


def _inputs(dtype, drive, per_neuron=False):
    p = _params(dtype, per_neuron)
    rng = np.random.default_rng(0)
    on = (np.arange(T) < 3 * T // 4)[:, None, None]
    u = jnp.asarray(drive * on * rng.uniform(0.2, 1.0, (T,) + SHAPE), dtype)
    s0 = p.init_state(SHAPE, dtype)
    # start away from rest (a state with one memristor partly ON)
    s0 = dataclasses.replace(s0, x1=s0.x1 + 0.3, v=s0.v + 0.01)
    return p, u, s0


def _max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-300))


@pytest.mark.parametrize("per_neuron", [False, True], ids=["scalar_params", "per_neuron"])
@pytest.mark.parametrize("case", list(CASES))
def test_hand_adjoint_equals_autodiff_float32(case, per_neuron):
    dt, substeps, drive = CASES[case]
    with jax.numpy_rank_promotion("allow"):  # per-neuron [4] parameters, [3, 4] states
        _check_equal(dt, substeps, drive, per_neuron)


def _check_equal(dt, substeps, drive, per_neuron):
    p, u, s0 = _inputs(jnp.float32, drive, per_neuron)
    ga = jax.jit(jax.grad(_loss("autodiff", dt, substeps), argnums=(0, 1, 2)))(p, u, s0)
    gh = jax.jit(jax.grad(_loss("hand", dt, substeps), argnums=(0, 1, 2)))(p, u, s0)
    la, lh = jax.tree.leaves(ga), jax.tree.leaves(gh)
    assert len(la) == len(lh)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in lh)
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(ga)]
    nonzero = 0
    for name, a, h in zip(paths, la, lh):
        assert a.shape == h.shape and a.dtype == h.dtype, name
        if np.max(np.abs(np.asarray(a))) > 0:
            nonzero += 1
        # float32 round-off, amplified over T steps of a stiff recurrence
        assert _max_rel(a, h) < 2e-5, (name, _max_rel(a, h))
    # every trained parameter, the input and all five state variables get a gradient
    assert nonzero >= len(PARAMS) + 1 + 5


@pytest.mark.parametrize("case", list(CASES))
def test_hand_adjoint_matches_float64_finite_differences(case):
    dt, substeps, drive = CASES[case]
    with jax.enable_x64(True), jax.numpy_rank_promotion("allow"):
        p, u, s0 = _inputs(jnp.float64, drive, per_neuron=True)
        loss = _loss("hand", dt, substeps)
        g = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(p, u, s0)
        rng = np.random.default_rng(2)
        args = (p, u, s0)
        flat = [jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array)) for a in args]
        for k in range(3):  # parameters, input, initial state: one direction each
            dirs = [jnp.asarray(rng.standard_normal(x.shape)) for x in flat[k]]
            # relative perturbation of each leaf: x (1 + eps d)
            mask = jax.tree.map(eqx.is_inexact_array, args[k])
            gk = jax.tree.leaves(eqx.filter(g[k], mask))
            assert len(gk) == len(flat[k])
            scale = [jnp.maximum(jnp.abs(x), 1e-3 * jnp.max(jnp.abs(x)) + 1e-12) for x in flat[k]]
            exact = sum(float(jnp.sum(gi * d * s)) for gi, d, s in zip(gk, dirs, scale))

            def shifted(eps, k=k, dirs=dirs, scale=scale):
                leaves = [x + eps * d * s for x, d, s in zip(flat[k], dirs, scale)]
                arr, static = eqx.partition(args[k], eqx.is_inexact_array)
                new = eqx.combine(jax.tree.unflatten(jax.tree.structure(arr), leaves), static)
                a = list(args)
                a[k] = new
                return float(loss(*a))

            eps = 1e-6
            fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
            assert abs(fd - exact) <= 1e-5 * abs(exact) + 1e-9, (case, k, fd, exact)


@pytest.mark.parametrize("checkpoint", ["step", "sqrt"])
def test_hand_adjoint_under_checkpointing(checkpoint):
    dt, substeps, drive = CASES["substeps3"]
    p, u, s0 = _inputs(jnp.float32, drive)
    g0 = jax.grad(_loss("hand", dt, substeps), argnums=(0, 1, 2))(p, u, s0)
    g1 = jax.grad(_loss("hand", dt, substeps, checkpoint), argnums=(0, 1, 2))(p, u, s0)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        assert _max_rel(a, b) < 1e-5  # float32, summation order of the segments


def test_hand_adjoint_forward_equals_autodiff_forward():
    dt, substeps, drive = CASES["stiff"]
    p, u, s0 = _inputs(jnp.float32, drive)
    f = jax.jit(lambda p, u, s0, a: mif_step(p, s0, u[0], dt, adjoint=a), static_argnums=3)
    for a, b in zip(jax.tree.leaves(f(p, u, s0, "hand")), jax.tree.leaves(f(p, u, s0, "autodiff"))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-6, atol=1e-12)


def test_adjoint_choice_is_checked():
    with pytest.raises(ValueError, match="adjoint"):
        MIF(adjoint="fast")
    p = MIF()
    with pytest.raises(ValueError, match="adjoint"):
        mif_step(p, p.init_state(()), 0.0, 1e-5, adjoint="reverse")
    assert MIF().adjoint == "hand"
