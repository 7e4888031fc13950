"""Device-to-device variability: populations of devices as batched `eqx.Module`s.

A population is the same model class with every floating-point parameter broadcast to a
leading axis of length ``n`` and the chosen parameters perturbed per device. Because a
model is a pytree, ``jax.vmap`` over that leading axis runs the whole population in one
call (see :func:`simulate_population`).

Spread models (per parameter, ``sigma`` is the relative spread):

- ``"lognormal"`` (the default): ``p_i = p * exp(sigma * z_i)``, z ~ N(0, 1): ``ln p_i``
  is normal with mean ``ln p`` and standard deviation ``sigma``. The **median** of the
  drawn values is the nominal ``p`` (their mean is ``p exp(sigma^2 / 2)``), and for small
  ``sigma`` the relative standard deviation is ``sigma``
  (exactly ``sqrt(exp(sigma^2) - 1)``). Every draw has the sign of ``p``: positive
  parameters stay positive at any spread; the usual choice for resistances,
  mobilities, time constants.
- ``"normal"``: ``p_i = p * (1 + sigma * z_i)`` (mean = nominal; crosses zero with
  probability ``Phi(-1 / sigma)``).
- ``"uniform"``: ``p_i = p * (1 + sigma * u_i)``, u ~ U(-1, 1) (crosses zero for
  ``sigma > 1``).

Every drawn population is validated by its model's own checks: eagerly they raise the
model's `ValueError`; inside `jit` (traced values) ``check=True`` turns the same checks
into `equinox.error_if` conditions, so an invalid draw (a negative resistance from a
wide normal spread, ``R_on >= R_off``) raises at run time instead of running silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ._validation import traced_checks

__all__ = ["sample_population", "population_size", "simulate_population", "index"]

M = TypeVar("M", bound=eqx.Module)
Spread = Literal["lognormal", "normal", "uniform"]


def _field_path(module: eqx.Module, name: str):
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"sample_population: {type(module).__name__} has no parameter {name!r}"
            )
        obj = getattr(obj, part)
    return obj


def _get(name: str):
    def where(m):
        obj = m
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    return where


def sample_population(
    device: M,
    key: PRNGKeyArray,
    n: int,
    spread: Mapping[str, float] | None = None,
    *,
    distribution: Spread | Mapping[str, Spread] = "lognormal",
    check: bool = True,
) -> M:
    """Draw ``n`` devices around ``device``.

    **Arguments:**

    - `device`: the nominal device (any `eqx.Module` with scalar float parameters).
    - `key`: PRNG key.
    - `n`: population size.
    - `spread`: relative spread (sigma) per parameter name; nested fields with dots
      (``"window.p"``). Parameters not named are copied to every device.
    - `distribution`: one spread model for all, or one per parameter name.
    - `check`: validate the drawn values under `jit` too (`equinox.error_if`).

    **Returns:** a module of the same class whose float leaves have leading axis ``n``.
    The perturbed devices are re-validated (every ``__check_init__`` of the module and
    its sub-modules), so a spread that produced, say, a negative resistance or
    R_on >= R_off raises the model's `ValueError`; inside `jit` with ``check=True`` it
    raises an `equinox` runtime error (a `jax.errors.JaxRuntimeError` under `jax.jit`)
    carrying the same message, the first failing check's.
    """
    if n < 1:
        raise ValueError(f"sample_population: n must be >= 1; got {n}")
    spread = dict(spread or {})
    for name, sigma in spread.items():
        _field_path(device, name)
        if not (sigma >= 0):
            raise ValueError(f"sample_population: spread[{name!r}] must be >= 0; got {sigma}")

    def bcast(leaf):
        if eqx.is_inexact_array_like(leaf) and not isinstance(leaf, bool):
            leaf = jnp.asarray(leaf, dtype=jnp.result_type(leaf, float))
            return jnp.broadcast_to(leaf, (n,) + leaf.shape)
        return leaf

    pop = jax.tree.map(bcast, device)
    keys = jax.random.split(key, max(len(spread), 1))
    for k, (name, sigma) in zip(keys, sorted(spread.items())):
        dist = (
            distribution if isinstance(distribution, str) else distribution.get(name, "lognormal")
        )
        base = _get(name)(pop)
        if dist == "lognormal":
            new = base * jnp.exp(sigma * jax.random.normal(k, base.shape, base.dtype))
        elif dist == "normal":
            new = base * (1 + sigma * jax.random.normal(k, base.shape, base.dtype))
        elif dist == "uniform":
            new = base * (1 + sigma * jax.random.uniform(k, base.shape, base.dtype, -1.0, 1.0))
        else:
            raise ValueError(
                f"sample_population: distribution for {name!r} must be one of "
                f"'lognormal', 'normal', 'uniform'; got {dist!r}"
            )
        pop = eqx.tree_at(_get(name), pop, new)
    # Re-run the models' own validation on the drawn values: eagerly each check raises;
    # on traced values the checks are collected and raised at run time.
    with traced_checks() as found:
        _run_checks(pop)
    if check and found:
        bad = jnp.stack([b for b, _ in found])
        msgs = [f"sample_population: a drawn device is invalid: {m}" for _, m in found]
        pred, which = jnp.any(bad), jnp.argmax(bad)
        pop = jax.tree.map(
            lambda x: eqx.branched_error_if(x, pred, which, msgs) if eqx.is_inexact_array(x) else x,
            pop,
        )
    return pop


def _run_checks(module) -> None:
    """Every ``__check_init__`` in the class hierarchy of ``module`` and of its
    sub-modules (as equinox runs them at construction)."""
    if not isinstance(module, eqx.Module):
        return
    for cls in type(module).__mro__:
        fn = vars(cls).get("__check_init__")
        if fn is not None:
            fn(module)
    for f in dataclasses.fields(module):
        _run_checks(getattr(module, f.name, None))


def population_size(pop: eqx.Module) -> int:
    """Leading-axis length of a population built by :func:`sample_population`."""
    leaves = [x for x in jax.tree.leaves(pop) if eqx.is_array(x) and x.ndim > 0]
    if not leaves:
        raise ValueError("population_size: module has no batched array parameters")
    return leaves[0].shape[0]


def index(pop: M, i) -> M:
    """Device ``i`` (or a slice of devices) of a population."""
    return jax.tree.map(lambda x: x[i] if eqx.is_array(x) and x.ndim > 0 else x, pop)


def simulate_population(simulate_fn: Callable, pop: eqx.Module, *args, out_axes=0, **kwargs):
    """``vmap`` ``simulate_fn(device, *args, **kwargs)`` over a population's leading axis.

    Every floating array leaf of ``pop`` with a leading axis is mapped; integer and
    scalar leaves are shared, so this also works under `jax.jit` for a device with an
    integer field (e.g. ``Biolek(p=2)``). ``args``/``kwargs`` are shared; ``out_axes``
    is passed to `eqx.filter_vmap` (``None`` for outputs shared by all devices). For
    models whose equations are elementwise (all built-in compact models), calling
    ``simulate(pop, ...)`` directly is equivalent and avoids the batching transform.
    Example::

        pop = sample_population(HPMemristor(), key, 100_000, {"R_off": 0.1})
        traj = simulate_population(simulate, pop, Sine(1.0, 1.0), dt=1e-3, n_steps=1000)
        traj.x.shape  # (100_000, 1000)
    """

    mapped, shared = eqx.partition(pop, _has_population_axis)

    def one(dev_mapped, dev_shared):
        return simulate_fn(eqx.combine(dev_mapped, dev_shared), *args, **kwargs)

    return eqx.filter_vmap(one, in_axes=(0, None), out_axes=out_axes)(mapped, shared)


def _has_population_axis(leaf) -> bool:
    """Floating array leaves of rank >= 1 carry the population axis; integer leaves
    (e.g. a window exponent ``p``) and scalars, also as tracers under `jit`, are shared."""
    return eqx.is_inexact_array(leaf) and jnp.ndim(leaf) >= 1
