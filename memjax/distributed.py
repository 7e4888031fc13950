"""Data-parallel training over several JAX devices with `jax.sharding`.

The batch is split along its first axis over a one-dimensional device mesh and the
parameters (and optimizer state) are replicated on every device; the compiled train step
is then partitioned by XLA (GSPMD): each device runs the forward and backward pass on its
slice of the batch and the gradient's batch mean becomes an all-reduce. Nothing here is
a runtime of its own: it is `jax.sharding.Mesh` + `NamedSharding` placement, so the same
code runs on

- one process with several devices (GPUs, or CPU devices made with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` set before JAX starts), and
- several processes/hosts after ``jax.distributed.initialize(...)``, where
  ``jax.devices()`` lists every process's devices (docs/performance.md, "scale-out").

`memjax.train.fit` takes ``mesh=`` and does this placement itself::

    mesh = data_mesh()                      # all devices, axis "data"
    model, hist = fit(model, loss_fn, opt, train, epochs=1, batch_size=128, mesh=mesh)

Placement uses `jax.make_array_from_callback`: every process holds the same global
batch (``fit``'s permutation depends only on ``(seed, epoch)``) and hands over the
slices its own devices own, so the single- and multi-process paths are the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["data_mesh", "replicate", "shard_batch", "batch_divisor"]

AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None, axis: str = AXIS) -> Mesh:
    """A one-dimensional `Mesh` named ``axis`` over ``devices`` (default: `jax.devices()`,
    i.e. every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh: no devices")
    return Mesh(np.asarray(devices), (axis,))


def batch_divisor(mesh: Mesh, axis: str = AXIS) -> int:
    """Number of slices a batch is split into (the mesh's size along ``axis``)."""
    if axis not in mesh.shape:
        raise ValueError(f"mesh has no axis {axis!r}; axes: {tuple(mesh.shape)}")
    return int(mesh.shape[axis])


def _place(x, sharding):
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return x  # Python scalars and other non-array leaves stay as they are
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_place(jax.random.key_data(x), sharding), impl=impl)
    arr = np.asarray(x)
    return jax.make_array_from_callback(arr.shape, sharding, lambda idx: arr[idx])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of ``tree`` copied to all devices of ``mesh`` (sharding ``P()``).

    PRNG-key arrays are placed like any other array."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: _place(x, sharding), tree)


def shard_batch(tree: Any, mesh: Mesh, axis: str = AXIS) -> Any:
    """Every array leaf of ``tree`` split along its first dimension over ``axis``.

    Each leaf's first dimension must be divisible by the mesh size along ``axis``.
    """
    n = batch_divisor(mesh, axis)
    sharding = NamedSharding(mesh, PartitionSpec(axis))

    def place(x):
        shape = np.shape(x)
        if not shape or shape[0] % n:
            raise ValueError(
                f"shard_batch: leading dimension must be divisible by the {n} devices of "
                f"mesh axis {axis!r}; got shape {shape}"
            )
        return _place(x, sharding)

    return jax.tree.map(place, tree)
