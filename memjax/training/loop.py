"""The one training loop: epochs of mini-batches through a compiled step, with hooks.

:func:`run_epochs` is the loop every trainer in memjax is built on (`memjax.training.fit`
and the recipes in `memjax.recipes`):

- each epoch visits the training set in the order ``order(epoch)`` (a permutation that
  depends only on the caller's seed and position, so a resumed run sees the same batches)
  in ``len(x) // batch_size`` full batches (the remainder of the permutation is skipped:
  every step has the same shapes and nothing recompiles);
- each batch goes through ``batch(x_idx, y_idx)`` (NumPy slices to model inputs, outside
  the compiled step) and ``step(carry, xb, yb) -> (carry, loss, aux)``, the caller's
  jit-compiled update of whatever it carries (parameters, optimizer state, key, counters);
- a NaN or infinite loss stops training with :class:`NonFiniteStateError` naming the
  epoch and step (``on_nonfinite="raise"``, the default), or is counted
  (``on_nonfinite="skip"``, for steps that already leave the state unchanged then);
- after each epoch the hooks ``on_epoch`` run in order, each ``hook(result) -> carry or
  None`` (a new carry replaces the old one: calibration, evaluation, checkpoints and
  metrics are hooks).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .checkpoint import NonFiniteStateError

__all__ = ["EpochResult", "run_epochs", "epoch_permutation", "check_labels"]

_NONFINITE = ("raise", "skip")


@dataclass
class EpochResult:
    """What an epoch hook receives: the 0-based ``epoch``, the ``carry`` after its last
    step, the per-step ``losses`` (a device array), the per-step ``aux`` dicts, the
    number of ``steps``, the training ``seconds`` and the count of ``skipped``
    (non-finite) steps."""

    epoch: int
    carry: Any
    losses: jax.Array
    aux: list[Any]
    steps: int
    seconds: float
    skipped: int = 0

    def aux_means(self) -> dict[str, float]:
        """Epoch means of the scalar entries of the per-step ``aux`` dicts."""
        out = {}
        for k in self.aux[0] if self.aux and isinstance(self.aux[0], dict) else ():
            vals = [a[k] for a in self.aux]
            if all(jnp.ndim(v) == 0 for v in vals):
                out[k] = float(np.mean(jax.device_get(jnp.stack(vals))))
        return out


def epoch_permutation(*seed: int, n: int) -> np.ndarray:
    """Sample order from ``np.random.default_rng(list(seed))``: a function of the seed
    words (e.g. ``(seed, epoch)`` or ``(seed, task, epoch)``) only."""
    return np.random.default_rng(list(seed)).permutation(n)


def check_labels(owner: str, y: np.ndarray, n_classes: int | None) -> None:
    """Integer labels in ``[0, n_classes)`` (only non-negativity without ``n_classes``)."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{owner}: labels must be integers (class indices); got dtype {y.dtype}")
    if y.size == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        rng = "[0, ...)" if n_classes is None else f"[0, {n_classes})"
        raise ValueError(f"{owner}: labels must be in {rng}; got values from {lo} to {hi}")


def _first_bad(losses: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(losses))
    return int(bad[0]) if len(bad) else None


def run_epochs(
    carry: Any,
    step: Callable[[Any, Any, Any], tuple[Any, jax.Array, Any]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: Sequence[int],
    batch_size: int,
    order: Callable[[int], np.ndarray],
    batch: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]] | None = None,
    on_epoch: Sequence[Callable[[EpochResult], Any]] = (),
    on_nonfinite: str = "raise",
    step_offset: int = 0,
    progress: bool = False,
    desc: Callable[[int], str] = lambda e: f"epoch {e + 1}",
    owner: str = "train",
) -> Any:
    """Run ``epochs`` (0-based indices, e.g. ``range(start, stop)``) of ``step`` over
    ``(x, y)`` (module docstring); returns the final carry.

    ``step_offset``: optimizer steps already taken, for the global step in messages.
    """
    if on_nonfinite not in _NONFINITE:
        raise ValueError(f"{owner}: on_nonfinite must be one of {_NONFINITE}; got {on_nonfinite!r}")
    if batch is None:

        def batch(xb, yb):
            return jnp.asarray(xb), jnp.asarray(yb)

    n_steps = len(x) // batch_size
    refresh = max(1, n_steps // 50)
    done = step_offset
    for epoch in epochs:
        perm = order(epoch)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=n_steps, desc=desc(epoch), leave=False, dynamic_ncols=True, file=sys.stderr
            )
        t0 = time.perf_counter()
        losses, auxes = [], []
        for i in range(n_steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb, yb = batch(x[idx], y[idx])
            carry, loss, aux = step(carry, xb, yb)
            losses.append(loss)
            auxes.append(aux)
            if bar is not None:
                bar.update(1)
                if (i + 1) % refresh == 0:
                    bar.set_postfix(loss=f"{float(jnp.mean(jnp.stack(losses[-refresh:]))):.4f}")
        stacked = jnp.stack(losses)
        host = np.asarray(jax.device_get(stacked))
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        bad = _first_bad(host)
        if bad is not None and on_nonfinite == "raise":
            raise NonFiniteStateError(
                f"{owner}: non-finite training loss ({host[bad]}) at epoch {epoch + 1}, "
                f"step {bad + 1} of {n_steps} (optimizer step {done + bad + 1}); training "
                "stopped, nothing saved from this epoch"
            )
        done += n_steps
        result = EpochResult(
            epoch, carry, stacked, auxes, n_steps, seconds, int(np.sum(~np.isfinite(host)))
        )
        for hook in on_epoch:
            new = hook(result)
            if new is not None:
                carry = result.carry = new
    return carry
