"""The MEMprop training step timed by the performance benchmarks, built in one place.

One step = ``jax.value_and_grad`` of a loss of the network over its whole time window
(BPTT), an optax update, and (optionally) the projection of the conductances to their
range (`memjax.models.memprop.project`), compiled with ``jax.jit`` over the inexact
arrays of the model (``eqx.partition``).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from memjax.models.memprop import project as project_model

__all__ = ["CHECKPOINT_MODES", "make_train_step", "random_batch"]

#: The checkpoint modes of `MEMprop` (how BPTT stores or recomputes the time steps).
CHECKPOINT_MODES = ("none", "step", "sqrt")


def make_train_step(
    static,
    opt: optax.GradientTransformation,
    loss: Callable,
    *,
    project: bool = False,
    has_aux: bool = False,
    return_grads: bool = False,
) -> Callable:
    """``step(params, opt_state, *batch) -> (params, opt_state, loss[, aux][, grads])``.

    ``loss(model, *batch)`` returns the scalar loss (``(loss, aux)`` with ``has_aux``),
    ``model = eqx.combine(params, static)``. With ``project`` the updated model's
    conductances are projected to their range. Not jitted: the caller compiles it.
    """

    def step(params, opt_state, *batch):
        out, grads = jax.value_and_grad(
            lambda p: loss(eqx.combine(p, static), *batch), has_aux=has_aux
        )(params)
        value, aux = out if has_aux else (out, None)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if project:
            params = eqx.filter(project_model(eqx.combine(params, static)), eqx.is_inexact_array)
        res = (params, opt_state, value)
        res += (aux,) if has_aux else ()
        res += (grads,) if return_grads else ()
        return res

    return step


def random_batch(batch: int, n_in: int, n_classes: int, seed: int, dtype=jnp.float32):
    """``(x, y)``: uniform random intensities in [0, 1) and labels (the memory and time
    of a step do not depend on the values)."""
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.uniform(size=(batch, n_in)), dtype),
        jnp.asarray(rng.integers(0, n_classes, batch), jnp.int32),
    )
