"""A generic training loop with deterministic shuffling, progress and checkpoint/resume.

Every benchmark that trains (MEMprop, metaplastic and SFA networks, the ReLU baseline)
goes through `fit`:

- one `eqx.filter_jit`-compiled train step: forward, `jax.value_and_grad`, the optax
  update, then an optional `project` (e.g. clipping conductances to the device window);
- mini-batches drawn from a permutation of the training set that depends only on
  ``(seed, epoch)``; the final partial batch of each epoch is dropped, so every step sees
  the same shapes and nothing recompiles;
- a fresh PRNG key per step (split from the key carried in the state), handed to
  ``loss_fn`` so stochastic models (read noise, rate coding) draw new noise each step;
- after every epoch an optional evaluation and an orbax checkpoint of the model arrays,
  the optimizer state, the epoch and step counters, the key and the history. ``fit``
  called again with the same ``checkpoint_dir`` resumes after the last completed epoch
  and produces bit-identical parameters and history to an uninterrupted run.

The loss has the signature ``loss_fn(model, x, y, key) -> (loss, aux)`` where ``aux`` is a
dict (possibly empty) of scalar diagnostics; their epoch means are recorded in the history
as ``"train_<name>"``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = ["TrainState", "fit", "evaluate", "accuracy", "restore_checkpoint"]

_FORMAT = 1  # checkpoint layout version, stored in the JSON part


class TrainState(eqx.Module):
    """Everything needed to continue training exactly where it stopped.

    ``epoch`` and ``step`` count completed epochs and optimizer steps; ``key`` is the
    PRNG key the next step splits from; ``history`` maps ``"epoch"``, ``"train_loss"``,
    ``"seconds"`` and each evaluation metric to one value per completed epoch.
    """

    model: Any
    opt_state: Any
    epoch: int
    step: int
    key: PRNGKeyArray
    history: dict[str, list[float]]


def accuracy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Array:
    """Fraction of rows of ``logits`` whose argmax equals ``labels``."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


# --------------------------------------------------------------------------------------
# Argument checks


def _check_int(name: str, value: Any, lo: int, hi: int | None = None, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"fit: {name} must be an integer; got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]{what}"
        raise ValueError(f"fit: {name} must be {rng}; got {value}")


def _check_data(name: str, data: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError(f"fit: {name} must be a pair (x, y) of arrays") from None
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y):
        raise ValueError(
            f"fit: {name} x and y must have the same number of samples; got x with shape "
            f"{x.shape} and y with shape {y.shape}"
        )
    if len(x) == 0:
        raise ValueError(f"fit: {name} is empty")
    return x, y


# --------------------------------------------------------------------------------------
# The compiled step and evaluation


@eqx.filter_jit
def _train_step(params, static, opt_state, key, x, y, loss_fn, optimizer, project, filter_spec):
    key, sub = jax.random.split(key)

    def f(p):
        return loss_fn(eqx.combine(p, static), x, y, sub)

    (loss, aux), grads = jax.value_and_grad(f, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = eqx.apply_updates(params, updates)
    if project is not None:
        model = project(eqx.combine(params, static))
        params, _ = eqx.partition(model, filter_spec)
    return params, opt_state, key, loss, aux


@eqx.filter_jit
def _eval_batch(model, x, y, eval_fn):
    return eval_fn(model, x, y)


def _as_input(x: np.ndarray, preprocess) -> Any:
    return jnp.asarray(x) if preprocess is None else preprocess(x)


def evaluate(
    model,
    eval_fn: Callable[[Any, Any, Any], dict[str, Any]],
    x,
    y,
    batch_size: int = 1000,
    *,
    preprocess: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, float]:
    """Evaluate ``eval_fn(model, x_batch, y_batch) -> {name: batch mean}`` over all of x.

    Batches of ``batch_size`` (the last one may be smaller: every sample counts once);
    each metric is averaged weighted by the number of samples in its batch. ``eval_fn``
    is jit-compiled (at most two shapes: full and final batch).
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(
            f"evaluate: x and y must have the same number of samples; got {len(x)} and "
            f"{len(y)}"
        )
    if len(x) == 0:
        raise ValueError("evaluate: x is empty")
    _check_int("eval_batch_size", batch_size, 1)
    sums: dict[str, Any] = {}
    for start in range(0, len(x), batch_size):
        xb = _as_input(x[start : start + batch_size], preprocess)
        yb = jnp.asarray(y[start : start + batch_size])
        n = len(y[start : start + batch_size])
        out = _eval_batch(model, xb, yb, eval_fn)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + jnp.asarray(v, jnp.float32) * n
    return {k: float(v) / len(x) for k, v in sums.items()}


# --------------------------------------------------------------------------------------
# Checkpoints (orbax CheckpointManager: arrays via StandardSave, counters via JsonSave)


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _array_leaves(state: TrainState) -> list[Any]:
    """All array leaves of (model, opt_state, key), PRNG keys as their raw uint32 data."""
    tree = eqx.filter((state.model, state.opt_state, state.key), eqx.is_array)
    leaves = jax.tree_util.tree_leaves(tree)
    return [jax.random.key_data(v) if _is_key(v) else jnp.asarray(v) for v in leaves]


def _with_array_leaves(state: TrainState, leaves: list[Any]) -> TrainState:
    tree = (state.model, state.opt_state, state.key)
    arrays, static = eqx.partition(tree, eqx.is_array)
    flat, treedef = jax.tree_util.tree_flatten(arrays)
    new = [
        jax.random.wrap_key_data(v, impl=jax.random.key_impl(old)) if _is_key(old) else v
        for old, v in zip(flat, leaves)
    ]
    model, opt_state, key = eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)
    return eqx.tree_at(lambda s: (s.model, s.opt_state, s.key), state, (model, opt_state, key))


def _manager(directory, max_to_keep: int = 2):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _save(mngr, state: TrainState, config: dict[str, Any]) -> None:
    import orbax.checkpoint as ocp

    meta = {
        "format": _FORMAT,
        "epoch": int(state.epoch),
        "step": int(state.step),
        "history": state.history,
        "config": config,
    }
    leaves = {f"{i:05d}": v for i, v in enumerate(_array_leaves(state))}
    mngr.save(
        int(state.epoch),
        args=ocp.args.Composite(
            arrays=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)
        ),
    )
    mngr.wait_until_finished()


def _restore(mngr, template: TrainState) -> tuple[TrainState, dict[str, Any]] | None:
    import orbax.checkpoint as ocp

    latest = mngr.latest_step()
    if latest is None:
        return None
    template_leaves = _array_leaves(template)
    abstract = {
        f"{i:05d}": jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding)
        for i, v in enumerate(template_leaves)
    }
    try:
        restored = mngr.restore(
            latest,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
    except Exception as e:  # structure mismatch surfaces as assorted orbax errors
        raise ValueError(
            f"fit: the checkpoint at {mngr.directory} (epoch {latest}) does not match the "
            f"model/optimizer being trained ({len(template_leaves)} array leaves); use "
            f"another checkpoint_dir or resume=False. Orbax said: {e}"
        ) from e
    meta = restored["meta"]
    arrays = restored["arrays"]
    if meta.get("format") != _FORMAT or len(arrays) != len(template_leaves):
        raise ValueError(
            f"fit: the checkpoint at {mngr.directory} has an incompatible layout "
            f"(format {meta.get('format')}, {len(arrays)} arrays; expected format "
            f"{_FORMAT}, {len(template_leaves)} arrays)"
        )
    leaves = [arrays[k] for k in sorted(arrays)]
    for i, (old, new) in enumerate(zip(template_leaves, leaves)):
        if old.shape != new.shape or old.dtype != new.dtype:
            raise ValueError(
                f"fit: checkpoint array {i} has shape {new.shape} {new.dtype}; the model "
                f"being trained expects {old.shape} {old.dtype}"
            )
    state = _with_array_leaves(template, leaves)
    state = eqx.tree_at(
        lambda s: (s.epoch, s.step, s.history),
        state,
        (int(meta["epoch"]), int(meta["step"]), {k: list(v) for k, v in meta["history"].items()}),
    )
    return state, meta.get("config", {})


def _initial_state(model, optimizer, seed: int, filter_spec) -> TrainState:
    params, _ = eqx.partition(model, filter_spec)
    return TrainState(
        model=model,
        opt_state=optimizer.init(params),
        epoch=0,
        step=0,
        key=jax.random.key(seed),
        history={},
    )


def restore_checkpoint(
    checkpoint_dir,
    model,
    optimizer: optax.GradientTransformation,
    *,
    seed: int = 0,
    filter_spec=eqx.is_inexact_array,
) -> TrainState | None:
    """The `TrainState` of the latest checkpoint in ``checkpoint_dir``, or ``None``.

    ``model`` and ``optimizer`` give the structure (and every non-array field); only the
    arrays, counters, key and history come from disk. Use it to reload a trained model,
    e.g. ``restore_checkpoint(d, build_model(), optax.adam(1e-3)).model``.
    """
    if not Path(checkpoint_dir).is_dir():
        return None
    out = _restore(_manager(checkpoint_dir), _initial_state(model, optimizer, seed, filter_spec))
    return None if out is None else out[0]


# --------------------------------------------------------------------------------------
# The loop


def _default_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of ``epoch`` (0-based): a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def fit(
    model,
    loss_fn: Callable[[Any, Any, Any, PRNGKeyArray], tuple[Array, dict[str, Array]]],
    optimizer: optax.GradientTransformation,
    train_data: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    eval_fn: Callable[[Any, Any, Any], dict[str, Any]] | None = None,
    eval_data: tuple[np.ndarray, np.ndarray] | None = None,
    eval_batch_size: int = 1000,
    project: Callable[[Any], Any] | None = None,
    checkpoint_dir=None,
    resume: bool = True,
    progress: bool = True,
    preprocess: Callable[[np.ndarray], Any] | None = None,
    filter_spec=eqx.is_inexact_array,
    log: Callable[[str], None] | None = None,
    max_to_keep: int = 2,
    mesh=None,
) -> tuple[Any, dict[str, list[float]]]:
    """Train ``model`` for ``epochs`` epochs of mini-batch ``optimizer`` steps.

    Args:
        model: an equinox module (any pytree); leaves selected by ``filter_spec`` are
            trained, the rest are held fixed.
        loss_fn: ``(model, x_batch, y_batch, key) -> (loss, aux_dict)``.
        optimizer: an optax transformation, initialised on the trained leaves.
        train_data: ``(x, y)`` NumPy arrays with the same first dimension.
        epochs: total number of epochs (including those already in a checkpoint).
        batch_size: samples per step, ``1 <= batch_size <= len(x)``. Each epoch runs
            ``len(x) // batch_size`` steps; the remaining ``len(x) % batch_size`` samples
            of that epoch's permutation are skipped (a different subset every epoch).
        seed: seeds the per-epoch permutations and the per-step keys.
        eval_fn, eval_data, eval_batch_size: if given, ``evaluate`` runs after every
            epoch and its metrics join the history under their own names.
        project: ``model -> model`` applied after every optimizer step, inside the
            compiled step (e.g. clip conductances into the device window).
        checkpoint_dir: save after every epoch (orbax, keeping the last ``max_to_keep``);
            with ``resume=True`` continue from the latest checkpoint found there. With
            ``resume=False`` existing checkpoints in the folder are deleted first.
        progress: a tqdm bar per epoch (running loss) and a summary line per epoch.
        preprocess: ``x_batch (NumPy) -> model input``, applied to each batch outside
            the compiled step (e.g. scaling uint8 images to [0, 1]).
        filter_spec: which leaves are trained (`eqx.partition` filter or pytree of bools).
        log: where summary lines go (default: stderr when ``progress``, else nowhere).
        max_to_keep: checkpoints kept in ``checkpoint_dir``.
        mesh: a `jax.sharding.Mesh` with a ``"data"`` axis (`memjax.distributed.data_mesh`)
            for data-parallel training: the model, optimizer state and key are
            replicated on its devices and every batch is split over them
            (``batch_size`` must be divisible by the number of devices). Same updates as
            one device up to floating-point summation order.

    Returns:
        ``(model, history)`` with history keys ``"epoch"`` (1-based), ``"train_loss"``
        (epoch mean), ``"train_<aux>"``, ``"seconds"`` (training time of the epoch,
        excluding evaluation and checkpointing) and the evaluation metrics.
    """
    x, y = _check_data("train_data", train_data)
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1, len(x), f" (train_data has {len(x)} samples)")
    _check_int("eval_batch_size", eval_batch_size, 1)
    _check_int("seed", seed, 0)
    _check_int("max_to_keep", max_to_keep, 1)
    if (eval_fn is None) != (eval_data is None):
        raise ValueError("fit: eval_fn and eval_data must be given together")
    if eval_data is not None:
        ex, ey = _check_data("eval_data", eval_data)
    if log is None and progress:
        log = _default_log
    if mesh is not None:
        from .distributed import batch_divisor, replicate, shard_batch

        n_dev = batch_divisor(mesh)
        if batch_size % n_dev:
            raise ValueError(
                f"fit: batch_size must be divisible by the {n_dev} devices of mesh; got "
                f"{batch_size}"
            )

    state = _initial_state(model, optimizer, seed, filter_spec)
    config = {"seed": seed, "batch_size": batch_size, "n_train": len(x)}
    mngr = None
    if checkpoint_dir is not None:
        mngr = _manager(checkpoint_dir, max_to_keep)
        if resume:
            out = _restore(mngr, state)
            if out is not None:
                state, saved = out
                if saved != config and log is not None:
                    log(f"warning: resuming with {config}, checkpoint was written with {saved}")
                if log is not None:
                    done = " (nothing left to train)" if state.epoch >= epochs else ""
                    log(f"resumed from {checkpoint_dir} after epoch {state.epoch}{done}")
        else:
            for s in mngr.all_steps():
                mngr.delete(s)

    params, static = eqx.partition(state.model, filter_spec)
    opt_state, key, step = state.opt_state, state.key, state.step
    if mesh is not None:
        params, static, opt_state, key = replicate((params, static, opt_state, key), mesh)
    history = {k: list(v) for k, v in state.history.items()}
    steps_per_epoch = len(x) // batch_size
    refresh = max(1, steps_per_epoch // 50)

    for epoch in range(state.epoch, epochs):
        perm = _epoch_permutation(seed, epoch, len(x))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                dynamic_ncols=True, file=sys.stderr,
            )
        t0 = time.perf_counter()
        losses, auxes = [], []
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb, yb = _as_input(x[idx], preprocess), jnp.asarray(y[idx])
            if mesh is not None:
                xb, yb = shard_batch((xb, yb), mesh)
            params, opt_state, key, loss, aux = _train_step(
                params, static, opt_state, key, xb, yb, loss_fn, optimizer, project,
                filter_spec,
            )
            losses.append(loss)
            auxes.append(aux)
            if bar is not None:
                bar.update(1)
                if (i + 1) % refresh == 0:
                    bar.set_postfix(loss=f"{float(jnp.mean(jnp.stack(losses[-refresh:]))):.4f}")
        losses = np.asarray(jax.device_get(jnp.stack(losses)), dtype=np.float64)
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        step += steps_per_epoch
        record = {"epoch": epoch + 1, "train_loss": float(losses.mean())}
        for k in auxes[0] if auxes and isinstance(auxes[0], dict) else ():
            vals = [a[k] for a in auxes]
            if all(jnp.ndim(v) == 0 for v in vals):
                record[f"train_{k}"] = float(np.mean(jax.device_get(jnp.stack(vals))))
        if not math.isfinite(record["train_loss"]) and log is not None:
            log(f"warning: non-finite training loss in epoch {epoch + 1}")
        record["seconds"] = seconds
        model_now = eqx.combine(params, static)
        if eval_fn is not None:
            metrics = evaluate(model_now, eval_fn, ex, ey, eval_batch_size,
                               preprocess=preprocess)
            clash = sorted(set(metrics) & set(record))
            if clash:
                raise ValueError(f"fit: eval_fn metric names {clash} clash with the history's")
            record.update(metrics)
        for k, v in record.items():
            history.setdefault(k, []).append(float(v) if k != "epoch" else int(v))
        if log is not None:
            log(
                f"epoch {epoch + 1}/{epochs}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch")
            )
        state = TrainState(model_now, opt_state, epoch + 1, step, key, history)
        if mngr is not None:
            _save(mngr, state, config)

    if mngr is not None:
        mngr.close()
    return eqx.combine(params, static), history
