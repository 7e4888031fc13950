"""IR drop: the resistive network of a crossbar with wire resistance, solved exactly.

An ``m x n`` array (rows = inputs, columns = outputs): row ``i`` is driven by its DAC at
voltage ``v_i`` at the column-0 end; column ``j`` ends after row ``m - 1`` in a
transimpedance amplifier held at virtual ground (0 V). Every wire segment between two
neighbouring cells, between the driver and the first cell, and between the last cell and
the amplifier has resistance ``r_wire`` (conductance ``g = 1 / r_wire``). With ``a_ij``
the row-wire and ``b_ij`` the column-wire voltage at cell ``(i, j)``, Kirchhoff's current
law at every node gives the linear system (the wire-parasitics network of analog
crossbar simulators such as Sandia's CrossSim, here solved without approximation)

    g (a_i,j-1 - a_ij) + g (a_i,j+1 - a_ij) + G_ij (b_ij - a_ij) = 0     (a_i,-1 = v_i)
    g (b_i-1,j - b_ij) + g (b_i+1,j - b_ij) + G_ij (a_ij - b_ij) = 0     (b_m,j = 0)

(no ``a_i,n`` or ``b_-1,j`` term at the open wire ends), and the column current
``I_j = g b_m-1,j``. In the row drops ``d_ij = v_i - a_ij`` it is the symmetric
positive-definite system ``T_a d + G b = G v``, ``T_b b + G d = G v`` with the
tridiagonal wire Laplacians ``T_a`` (along each row) and ``T_b`` (along each column),
``G`` on their diagonals. :func:`solve` solves it by block Gauss-Seidel (alternating
exact tridiagonal solves of every row and every column) until the column voltages change
by less than ``tol`` (relative), inside `jax.lax.custom_linear_solve`, so gradients
with respect to ``G`` and ``v`` come from the implicit function theorem (one more
solve) rather than from unrolling the iterations. ``sweeps=k`` instead runs ``k`` sweeps
from ``b = 0`` and differentiates through them (the fast approximate mode; one sweep is
the first-order correction: row drops with the columns grounded, then column voltages).

The network is linear in ``v``: :func:`effective_conductance` solves it once for every
unit input to get the ``m x n`` matrix ``M`` with ``I = v M`` exactly (``M = G`` at
``r_wire = 0``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["solve", "column_currents", "effective_conductance", "tiled_effective_conductance"]


def _tri_solve(diag, g, rhs):
    """Solve tridiag(-g, diag, -g) x = rhs along the last axis of diag [..., N]; rhs
    [K, ..., N] (K right-hand sides), by the Thomas algorithm (two `jax.lax.scan` passes
    over N; stable without pivoting because the matrix is diagonally dominant, diag >=
    2 g). Written in jnp rather than `jax.lax.linalg.tridiagonal_solve`, whose CPU
    LAPACK call inside `vmap` + `lax.map` was seen to block without returning."""
    diag = jnp.broadcast_to(diag, rhs.shape)
    d_t = jnp.moveaxis(diag, -1, 0)  # [N, K, ...]
    r_t = jnp.moveaxis(rhs, -1, 0)

    def fwd(carry, dr):
        c_prev, y_prev = carry
        d, r = dr
        den = d + g * c_prev  # d - (-g) c'_{i-1}
        c = -g / den
        y = (r + g * y_prev) / den
        return (c, y), (c, y)

    zero = jnp.zeros_like(r_t[0])
    _, (c, y) = jax.lax.scan(fwd, (zero, zero), (d_t, r_t))

    def bwd(x_next, cy):
        ci, yi = cy
        x = yi - ci * x_next
        return x, x

    _, x = jax.lax.scan(bwd, zero, (c, y), reverse=True)
    return jnp.moveaxis(x, 0, -1)


def _tri_matvec(diag, g, x):
    """tridiag(-g, diag, -g) x along the last axis (x [K, ..., N])."""
    left = jnp.pad(x[..., :-1], [(0, 0)] * (x.ndim - 1) + [(1, 0)])
    right = jnp.pad(x[..., 1:], [(0, 0)] * (x.ndim - 1) + [(0, 1)])
    return diag[None] * x - g * (left + right)


def _diags(G, g):
    m, n = G.shape
    open_end_row = jnp.where(jnp.arange(n) < n - 1, 2.0, 1.0).astype(G.dtype)
    open_end_col = jnp.where(jnp.arange(m) > 0, 2.0, 1.0).astype(G.dtype)
    d_a = g * open_end_row[None, :] + G  # [m, n], tridiagonal along n
    d_b = (g * open_end_col[:, None] + G).T  # [n, m], tridiagonal along m
    return d_a, d_b


def _sweep(G, g, d_a, d_b, Gv, b):
    d = _tri_solve(d_a, g, Gv - G[None] * b)
    rhs_b = jnp.swapaxes(Gv - G[None] * d, -1, -2)
    b = jnp.swapaxes(_tri_solve(d_b, g, rhs_b), -1, -2)
    return d, b


def solve(
    G: Float[Array, "m n"],
    v: Float[Array, "k m"],
    r_wire: float,
    *,
    sweeps: int | None = None,
    tol: float = 1e-6,
    max_sweeps: int = 500,
) -> tuple[Float[Array, "k m n"], Float[Array, "k m n"]]:
    """Row drops ``d`` and column voltages ``b`` (V) of the network of the module
    docstring for ``k`` input vectors ``v`` (V) and conductances ``G`` (S).

    ``sweeps=None`` (exact): block Gauss-Seidel to relative tolerance ``tol`` with an
    implicit gradient; a solve that has not converged after ``max_sweeps`` raises an
    error (`eqx.error_if`) instead of returning an unconverged answer. ``sweeps=k``:
    ``k`` sweeps, differentiated through (approximate).
    """
    if not r_wire > 0:
        raise ValueError(f"ir_drop.solve: r_wire must be > 0 (ohm); got {r_wire}")
    g = 1.0 / r_wire
    d_a, d_b = _diags(G, g)
    Gv = G[None] * v[:, :, None]
    zeros = jnp.zeros_like(Gv)
    if sweeps is not None:
        body = lambda _, c: _sweep(G, g, d_a, d_b, Gv, c[1])  # noqa: E731
        return jax.lax.fori_loop(0, int(sweeps), body, (zeros, zeros))

    def matvec(x):
        d, b = x
        row = _tri_matvec(d_a, g, d) + G[None] * b
        col = jnp.swapaxes(_tri_matvec(d_b, g, jnp.swapaxes(b, -1, -2)), -1, -2) + G[None] * d
        return row, col

    def gs_solve(_matvec, rhs):
        r_a, r_b = rhs

        def body(c):
            d, b, _, it = c
            d_new = _tri_solve(d_a, g, r_a - G[None] * b)
            b_new = jnp.swapaxes(
                _tri_solve(d_b, g, jnp.swapaxes(r_b - G[None] * d_new, -1, -2)), -1, -2
            )
            err = jnp.max(jnp.abs(b_new - b)) / (jnp.max(jnp.abs(b_new)) + 1e-30)
            return d_new, b_new, err, it + 1

        cond = lambda c: (c[2] > tol) & (c[3] < max_sweeps)  # noqa: E731
        init = (jnp.zeros_like(r_a), jnp.zeros_like(r_b), jnp.asarray(jnp.inf, G.dtype), 0)
        d, b, err, _ = jax.lax.while_loop(cond, body, init)
        b = eqx.error_if(
            b,
            err > tol,
            "ir_drop.solve: block Gauss-Seidel did not converge within max_sweeps; "
            "raise max_sweeps or tol, or use smaller arrays / wire resistance",
        )
        return d, b

    return jax.lax.custom_linear_solve(matvec, (Gv, Gv), gs_solve, symmetric=True)


def column_currents(
    G: Float[Array, "m n"], v: Float[Array, "k m"], r_wire: float, **kw
) -> Float[Array, "k n"]:
    """Column currents ``I_j = b_m-1,j / r_wire`` (A) into the virtual ground."""
    _, b = solve(G, v, r_wire, **kw)
    return b[:, -1, :] / r_wire


def effective_conductance(
    G: Float[Array, "m n"], r_wire: float, *, chunk: int = 64, **kw
) -> Float[Array, "m n"]:
    """``M`` with ``I = v M`` for the array with wire resistance (S): one solve per unit
    input, ``chunk`` inputs at a time."""
    m = G.shape[0]
    eye = jnp.eye(m, dtype=G.dtype)
    pad = (-m) % chunk
    eye = jnp.pad(eye, ((0, pad), (0, 0))).reshape(-1, chunk, m)
    out = jax.lax.map(lambda e: column_currents(G, e, r_wire, **kw), eye)
    return out.reshape(-1, G.shape[1])[:m]


def tiled_effective_conductance(
    G: Float[Array, "n_in n_out"], r_wire: float, tile: tuple[int, int], **kw
) -> Float[Array, "n_in n_out"]:
    """:func:`effective_conductance` of a weight matrix split into arrays of at most
    ``tile = (rows, cols)`` cells, each with its own drivers and amplifiers (partial
    column currents of the arrays of one column block are summed after their
    amplifiers). All arrays are solved in one `vmap`; the last, partial array of a
    column block is padded with empty cells (G = 0) on rows before its first row and
    on columns after its last, at the open wire ends where no current flows, so the
    padding changes nothing."""
    n_in, n_out = G.shape
    tr, tc = min(tile[0], n_in), min(tile[1], n_out)
    pr, pc = (-n_in) % tr, (-n_out) % tc
    q = n_in - (n_in % tr if pr else 0)  # rows in full arrays
    Gp = jnp.concatenate([G[:q], jnp.zeros((pr, n_out), G.dtype), G[q:]])
    Gp = jnp.pad(Gp, ((0, 0), (0, pc)))
    R, C = Gp.shape[0] // tr, Gp.shape[1] // tc
    blocks = Gp.reshape(R, tr, C, tc).transpose(0, 2, 1, 3).reshape(R * C, tr, tc)
    M = jax.vmap(lambda b: effective_conductance(b, r_wire, **kw))(blocks)
    M = M.reshape(R, C, tr, tc).transpose(0, 2, 1, 3).reshape(R * tr, C * tc)
    return jnp.concatenate([M[:q], M[q + pr :]])[:, :n_out]
