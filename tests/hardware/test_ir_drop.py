"""IR-drop solver: limits, KCL, gradients, fast mode, tiling, and ngspice up to 64x64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.hardware import ir_drop, spice


def _G(m, n, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(1e-6, 1e-4, (m, n)), jnp.float32)


def test_small_wire_resistance_recovers_ohm_and_kirchhoff():
    G = _G(6, 5)
    v = jnp.asarray(np.random.default_rng(1).uniform(0, 0.2, (3, 6)), jnp.float32)
    I = ir_drop.column_currents(G, v, 1e-6)
    np.testing.assert_allclose(np.asarray(I), np.asarray(v @ G), rtol=1e-4)
    # Wire resistance only removes current, never adds (all G, v >= 0).
    I2 = ir_drop.column_currents(G, v, 5.0)
    assert np.all(np.asarray(I2) < np.asarray(v @ G))


def test_effective_conductance_is_the_linear_map():
    G = _G(12, 7)
    v = jnp.asarray(np.random.default_rng(2).uniform(0, 0.2, (4, 12)), jnp.float32)
    M = ir_drop.effective_conductance(G, 3.0, chunk=5)
    np.testing.assert_allclose(
        np.asarray(v @ M), np.asarray(ir_drop.column_currents(G, v, 3.0)), rtol=1e-4
    )


def test_implicit_gradient_matches_unrolled_and_finite_difference(x64):
    G = jnp.asarray(np.random.default_rng(3).uniform(1e-6, 1e-4, (10, 6)))
    v = jnp.asarray(np.random.default_rng(4).uniform(0, 0.2, (2, 10)))
    f = lambda G: jnp.sum(ir_drop.column_currents(G, v, 5.0, tol=1e-12) ** 2)  # noqa: E731
    g = jax.grad(f)(G)
    g_unrolled = jax.grad(lambda G: jnp.sum(ir_drop.column_currents(G, v, 5.0, sweeps=60) ** 2))(G)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_unrolled), rtol=1e-6)
    e = jnp.zeros_like(G).at[4, 2].set(1e-7)
    fd = (f(G + e) - f(G - e)) / 2e-7
    np.testing.assert_allclose(float(g[4, 2]), float(fd), rtol=1e-5)


def test_tiling_equals_separate_arrays():
    G = _G(70, 40, seed=5)
    M = ir_drop.tiled_effective_conductance(G, 2.0, (32, 32))
    blocks = [
        [ir_drop.effective_conductance(G[r : r + 32, c : c + 32], 2.0) for c in range(0, 40, 32)]
        for r in range(0, 70, 32)
    ]
    ref = jnp.concatenate([jnp.concatenate(b, 1) for b in blocks], 0)
    np.testing.assert_allclose(np.asarray(M), np.asarray(ref), rtol=1e-4, atol=1e-12)


def test_bad_wire_resistance():
    with pytest.raises(ValueError, match="r_wire must be > 0"):
        ir_drop.solve(_G(2, 2), jnp.ones((1, 2)), 0.0)


@pytest.mark.skipif(not spice.have_ngspice(), reason="ngspice not on PATH")
@pytest.mark.parametrize("n", [8, 64])
def test_against_ngspice(n):
    rng = np.random.default_rng(n)
    G = rng.uniform(1e-6, 1e-4, (n, n))
    v = rng.uniform(0, 0.2, n)
    ref = spice.ngspice_currents(G, v, 2.0)
    Gj, vj = jnp.asarray(G, jnp.float32), jnp.asarray(v, jnp.float32)[None]
    exact = np.asarray(ir_drop.column_currents(Gj, vj, 2.0))[0]
    fast = np.asarray(ir_drop.column_currents(Gj, vj, 2.0, sweeps=1))[0]
    scale = np.abs(ref).max()
    assert np.abs(exact - ref).max() / scale < 1e-4
    ideal_err = np.abs(v @ G - ref).max() / scale
    assert ideal_err > 1e-3  # the drop is real at this size and resistance
    assert np.abs(fast - ref).max() / scale < ideal_err


def test_tridiagonal_solve_matches_dense():
    rng = np.random.default_rng(3)
    g = 0.7
    diag = jnp.asarray(2 * g + rng.uniform(0.01, 1.0, (3, 9)), jnp.float32)
    rhs = jnp.asarray(rng.normal(size=(4, 3, 9)), jnp.float32)
    x = np.asarray(ir_drop._tri_solve(diag, g, rhs))
    for r in range(3):
        A = np.diag(np.asarray(diag[r])) - g * (np.eye(9, k=1) + np.eye(9, k=-1))
        ref = np.linalg.solve(A, np.asarray(rhs[:, r]).T).T
        np.testing.assert_allclose(x[:, r], ref, rtol=1e-4, atol=1e-5)


def test_unconverged_exact_solve_raises_instead_of_returning():
    G = _G(32, 32)
    v = jnp.full((1, 32), 0.2, jnp.float32)
    with pytest.raises(Exception, match="did not converge"):
        jax.block_until_ready(ir_drop.column_currents(G * 1e3, v, 50.0, max_sweeps=2))


def test_fast_and_exact_modes_in_a_jitted_tiled_network_agree():
    """Both modes inside one jitted call on two tiled layers (each solved in `vmap` over
    arrays and `lax.map` over unit inputs): it returns, and the one-sweep fast mode is
    close to the exact solve at a small wire resistance."""
    G1, G2 = _G(70, 40, 1), _G(40, 10, 2)

    @jax.jit
    def both(G1, G2):
        out = []
        for kw in ({}, {"sweeps": 1}):
            out.append(
                (
                    ir_drop.tiled_effective_conductance(G1, 1.0, (32, 32), **kw),
                    ir_drop.tiled_effective_conductance(G2, 1.0, (32, 32), **kw),
                )
            )
        return out

    (e1, e2), (f1, f2) = both(G1, G2)
    for e, f, G in ((e1, f1, G1), (e2, f2, G2)):
        assert np.all(np.isfinite(np.asarray(f)))
        scale = float(np.max(np.abs(np.asarray(e))))
        np.testing.assert_allclose(np.asarray(f), np.asarray(e), rtol=0, atol=2e-3 * scale)
        assert np.max(np.abs(np.asarray(e - G))) > 0  # the wires do drop voltage
