"""A plain hand-written JAX reference for the ``speed-lif`` benchmark (no memjax).

The 784-H-10 surrogate-gradient LIF network written the way one would write it directly
in JAX: a dict of arrays, one `lax.scan` over time, optax Adam, `jax.jit`. It is the
yardstick for memjax's abstraction overhead (``ratio_vs_hand_jax``), so it is written
competently rather than naively: for a static image the input projection ``x W1`` is
computed once outside the scan (and its gradient is one matmul, not ``T``); a spike
sequence is projected step by step inside the scan (on this CPU that measured ~20 %
faster for the whole training step than one ``[T B, n_in] x [n_in, H]`` matmul before
the scan, whose 40 MB operands no longer stay in cache at T = 100).

Network (per layer, ``u = v - theta``; Heaviside ``H`` with the fast-sigmoid surrogate
``dH/du = 1 / (1 + k |u|)^2``, Zenke & Ganguli 2018)::

    reset="immediate"  (memjax.neurons.lif):   v = beta v + I;  s = H(v - theta);
                                               v = v - theta sg(s)
    reset="delayed"    (snnTorch Leaky defaults, reset_delay=True):
                                               r = sg(H(v - theta));  v = beta v + I - theta r;
                                               s = H(v - theta)

with ``sg`` = stop-gradient; ``I1 = x W1 + b1``, ``I2 = s1 W2 + b2``; logits = the output
layer's membrane averaged over time; loss = mean softmax cross-entropy. The ``delayed``
variant exists so the tests can check snnTorch against an exact JAX twin.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["init_params", "logits", "loss", "make_train_step", "heaviside"]


@jax.custom_jvp
def _h(u, slope):
    return (u > 0).astype(u.dtype)


@_h.defjvp
def _h_jvp(primals, tangents):
    u, slope = primals
    du, _ = tangents
    return _h(u, slope), du / (1.0 + slope * jnp.abs(u)) ** 2


def heaviside(u, slope: float = 25.0):
    """Spike ``H(u)`` with the fast-sigmoid surrogate derivative."""
    return _h(u, jnp.asarray(slope, u.dtype))


def init_params(key, n_in: int = 784, n_hidden: int = 128, n_out: int = 10) -> dict:
    """``W ~ N(0, 1 / fan_in)``, zero biases (the same draws as ``LIFNet.init``)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (n_in, n_hidden)) / jnp.sqrt(n_in),
        "w2": jax.random.normal(k2, (n_hidden, n_out)) / jnp.sqrt(n_hidden),
        "b1": jnp.zeros(n_hidden),
        "b2": jnp.zeros(n_out),
    }


def time_step(params, carry, inp, *, seq: bool, beta=0.9, theta=1.0, slope=25.0, reset="immediate"):
    """One step of the time loop: ``(v1, v2)`` and the step's input (layer 1's current
    for a static input, the step's spikes ``[B, n_in]`` for a sequence) ->
    ``((v1, v2), v2)``."""
    w1, b1, w2, b2 = params["w1"], params["b1"], params["w2"], params["b2"]

    def lif(v, cur):
        if reset == "immediate":
            v = beta * v + cur
            s = heaviside(v - theta, slope)
            return v - theta * jax.lax.stop_gradient(s), s
        r = jax.lax.stop_gradient(heaviside(v - theta, slope))
        v = beta * v + cur - theta * r
        return v, heaviside(v - theta, slope)

    v1, v2 = carry
    v1, s1 = lif(v1, inp @ w1 + b1[None] if seq else inp)
    v2, _ = lif(v2, s1 @ w2 + b2[None])
    return (v1, v2), v2


def logits(params, x, *, n_steps: int, **kw):
    """Logits ``[B, n_out]``; ``x`` is ``[B, n_in]`` (static current, ``n_steps`` steps)
    or ``[T, B, n_in]`` (a spike sequence, ``T == n_steps``); ``kw``: the LIF settings
    of :func:`time_step`."""
    w1, w2 = params["w1"], params["w2"]
    seq = x.ndim == 3
    if seq:
        assert x.shape[0] == n_steps, (x.shape, n_steps)
        xs = x  # projected step by step inside the scan
    else:
        cur1 = x @ w1 + params["b1"][None]  # held over the window
        xs = None
    B = x.shape[-2]

    def body(carry, xt):
        return time_step(params, carry, xt if seq else cur1, seq=seq, **kw)

    z1, z2 = jnp.zeros((B, w1.shape[1]), x.dtype), jnp.zeros((B, w2.shape[1]), x.dtype)
    _, v2s = jax.lax.scan(body, (z1, z2), xs, length=n_steps)
    return jnp.mean(v2s, axis=0)


def loss(params, x, y, **kw):
    """Mean softmax cross-entropy of :func:`logits` against integer labels ``y``."""
    lg = logits(params, x, **kw)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(lg), y[:, None], axis=-1))


def make_train_step(optimizer, **kw):
    """A jitted ``step(params, opt_state, x, y) -> (params, opt_state, loss)``:
    forward, BPTT (`jax.value_and_grad`), the optax update."""

    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y, **kw)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def adam(lr: float = 1e-3):
    return optax.adam(lr)
