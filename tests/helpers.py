"""Shared test utilities."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def central_fd(fn, x, eps=1e-6):
    """Central finite-difference gradient of scalar ``fn`` at array ``x`` (float64)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for k in range(flat.size):
        h = eps * max(1.0, abs(flat[k]))
        xp = flat.copy()
        xp[k] += h
        xm = flat.copy()
        xm[k] -= h
        gf[k] = (
            float(fn(jnp.asarray(xp.reshape(x.shape))))
            - float(fn(jnp.asarray(xm.reshape(x.shape))))
        ) / (2 * h)
    return g


def tree_allclose(x, y, *, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether pytrees ``x`` and ``y`` have the same structure and close leaves.

    Array leaves (PRNG keys by their key data) must have equal shapes and be close as in
    `np.allclose`; ``rtol=0, atol=0`` asks for equality. Other leaves must be equal.
    """
    if jax.tree.structure(x) != jax.tree.structure(y):
        return False
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
        if eqx.is_array_like(a) and eqx.is_array_like(b):
            a, b = (
                np.asarray(jax.random.key_data(c))
                if jax.dtypes.issubdtype(jnp.asarray(c).dtype, jax.dtypes.prng_key)
                else np.asarray(c)
                for c in (a, b)
            )
            if a.shape != b.shape or not np.allclose(
                a, b, rtol=rtol, atol=atol, equal_nan=equal_nan
            ):
                return False
        elif a != b:
            return False
    return True


def rel_err(a, b, floor=1e-30):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


@eqx.filter_jit
def device_outputs_finite(dev, x, v):
    """Rate, current and their gradients (w.r.t. x, v and every parameter) are finite."""
    outs = [dev.rate(x, v), dev.current(x, v)]
    outs += jax.vmap(jax.grad(dev.rate, argnums=(0, 1)), in_axes=(0, None))(x, v)
    outs += jax.vmap(jax.grad(dev.current, argnums=(0, 1)), in_axes=(0, None))(x, v)
    outs += jax.tree.leaves(eqx.filter_grad(lambda d: jnp.sum(d.rate(x, v) + d.current(x, v)))(dev))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(o)) for o in outs]))
