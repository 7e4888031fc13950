"""Interoperability with Flax.

memjax models are equinox modules. Two bridges cover what a Flax user needs (import
``memjax.interop`` explicitly; it is kept out of ``import memjax`` for start-up time):

- :class:`NNXWrapper` / :func:`to_nnx`: put any memjax module (a crossbar, a MIF layer, a
  whole network) inside a `flax.nnx` model. Its trainable leaves become one
  ``nnx.Param`` and its static parts stay Python attributes, so ``nnx.Optimizer``,
  ``nnx.jit`` and ``nnx.grad`` train it like any other NNX layer. `flax.nnx.bridge.ToLinen`
  takes it on into Linen code.
- :class:`LinenWrapper` / :func:`from_linen`: bring a `flax.linen` module with its
  variables into memjax (e.g. a Flax CNN feature extractor in front of a memristive
  layer), as an equinox module whose parameters are pytree leaves, so
  :func:`memjax.training.fit` trains it.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
from flax import nnx

__all__ = ["NNXWrapper", "to_nnx", "LinenWrapper", "from_linen"]


class NNXWrapper(nnx.Module):
    """A memjax / equinox module as a `flax.nnx.Module`.

    Each array leaf selected by ``filter_spec`` becomes its own ``nnx.Param`` (in the
    ``nnx.List`` ``params``, in `jax.tree` leaf order); the tree structure and the rest
    of the module are kept as a static Python attribute (outside NNX's graph state, so
    `nnx.split`/`merge` carry it unchanged). NNX's state then holds plain arrays only,
    so an optimiser's state (Adam's moments) has the same structure as the gradients
    at every step, eagerly and under `nnx.jit`, at top level or nested in a larger
    ``nnx.Module``. Calling the wrapper recombines both and calls the module.
    """

    def __init__(self, module: eqx.Module, filter_spec: Any = eqx.is_inexact_array):
        if not isinstance(module, eqx.Module):
            raise TypeError(f"to_nnx: module must be an equinox Module; got {type(module)}")
        params, static = eqx.partition(module, filter_spec)
        leaves, treedef = jax.tree.flatten(params)
        self.params = nnx.List([nnx.Param(leaf) for leaf in leaves])
        object.__setattr__(self, "_memjax_static", (treedef, static))

    @property
    def module(self) -> eqx.Module:
        """The wrapped module with the current parameter values."""
        treedef, static = self._memjax_static  # type: ignore[attr-defined]  # set in __init__
        leaves = [p.get_value() for p in self.params]
        return eqx.combine(jax.tree.unflatten(treedef, leaves), static)

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)  # type: ignore[operator]  # a callable Module


def to_nnx(module: eqx.Module, filter_spec: Any = eqx.is_inexact_array) -> NNXWrapper:
    """Wrap an equinox/memjax module as a `flax.nnx.Module` (see :class:`NNXWrapper`).

    Example::

        from flax import nnx
        layer = memjax.interop.to_nnx(memjax.Crossbar.init(key, 784, 128, config))
        opt = nnx.Optimizer(layer, optax.adam(1e-3), wrt=nnx.Param)
    """
    return NNXWrapper(module, filter_spec)


class LinenWrapper(eqx.Module):
    """A `flax.linen` module and its variables as an equinox module.

    ``variables`` (the ``{"params": ...}`` dict from ``module.init``) are pytree leaves and
    trainable with memjax's ``fit``; ``module`` (the Linen definition) is static.
    ``__call__(*args)`` is ``module.apply(variables, *args, **apply_kwargs)``.
    """

    variables: Any
    module: Any = eqx.field(static=True)
    apply_kwargs: dict = eqx.field(static=True, default_factory=dict)

    def __call__(self, *args, **kwargs):
        return self.module.apply(self.variables, *args, **{**self.apply_kwargs, **kwargs})


def from_linen(
    module: Any,
    key: jax.Array | None = None,
    *example_args: Any,
    variables: Any = None,
    **apply_kwargs: Any,
) -> LinenWrapper:
    """Wrap a Linen module: either pass ``variables`` you already have, or a ``key`` and
    example inputs to initialise them (``module.init(key, *example_args)``)."""
    if variables is None:
        if key is None or not example_args:
            raise ValueError(
                "from_linen: pass variables=..., or a key and example inputs to initialise them"
            )
        variables = module.init(key, *example_args)
    if not hasattr(module, "apply"):
        raise TypeError(f"from_linen: module must be a flax.linen Module; got {type(module)}")
    return LinenWrapper(variables=variables, module=module, apply_kwargs=dict(apply_kwargs))
