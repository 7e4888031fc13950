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
