"""`fit`: supervised training of any equinox model on the one loop, with checkpoints.

- one `eqx.filter_jit`-compiled train step: forward, `jax.value_and_grad`, the optax
  update, then an optional `project` (e.g. clipping conductances to the device window);
- mini-batches from a permutation of the training set that depends only on
  ``(seed, epoch)`` (`memjax.training.loop.run_epochs`);
- a fresh PRNG key per step (split from the key carried in the state), handed to
  ``loss_fn`` so stochastic models (read noise, rate coding) draw new noise each step;
- after every epoch an optional evaluation, the caller's ``callbacks`` and a verified
  checkpoint (`memjax.training.checkpoint`) of the model arrays, the optimizer state,
  the counters, the key and the history. ``fit`` called again with the same
  ``checkpoint_dir`` and the same run (same fingerprint) resumes after the last completed
  epoch and produces bit-identical parameters and history to an uninterrupted run.

The loss has the signature ``loss_fn(model, x, y, key) -> (loss, aux)`` where ``aux`` is a
dict (possibly empty) of scalar diagnostics; their epoch means are recorded in the history
as ``"train_<name>"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from .._validation import check_int
from ..losses import accuracy
from .checkpoint import Checkpointer, fingerprint
from .loop import EpochResult, check_labels, epoch_permutation, run_epochs

__all__ = ["TrainState", "fit", "fit_fingerprint", "evaluate", "accuracy", "restore_checkpoint"]


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


# --------------------------------------------------------------------------------------
# Argument checks


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


def _infer_classes(model, xb) -> int | None:
    """Number of logits of ``model(xb)`` (shape ``(batch, classes)``), if it has that form."""
    try:
        out = jax.eval_shape(lambda m, a: m(a), model, xb)
    except Exception:  # models with other call signatures: no inference
        return None
    shape = getattr(out, "shape", None)
    return int(shape[-1]) if shape is not None and len(shape) == 2 and shape[0] == len(xb) else None


def _check_fit_labels(model, x, y, ey, n_classes, preprocess) -> None:
    if n_classes is not None:
        check_int("fit: n_classes", n_classes, 1)
    elif not np.issubdtype(y.dtype, np.integer):
        return  # not class indices (e.g. regression targets)
    else:
        n_classes = _infer_classes(model, _as_input(x[:2], preprocess))
    check_labels("fit: train_data", y, n_classes)
    if ey is not None:
        check_labels("fit: eval_data", ey, n_classes)


# --------------------------------------------------------------------------------------
# The compiled step and evaluation


@eqx.filter_jit
def _train_step(
    params,
    static,
    opt_state,
    key,
    x,
    y,
    loss_fn,
    optimizer,
    project,
    filter_spec,
    skip_nonfinite=False,
):
    key, sub = jax.random.split(key)

    def f(p):
        return loss_fn(eqx.combine(p, static), x, y, sub)

    (loss, aux), grads = jax.value_and_grad(f, has_aux=True)(params)
    updates, new_opt = optimizer.update(grads, opt_state, params)
    new = eqx.apply_updates(params, updates)
    if project is not None:
        model = project(eqx.combine(new, static))
        new, _ = eqx.partition(model, filter_spec)
    if skip_nonfinite:
        ok = jnp.isfinite(loss)
        new, new_opt = jax.tree_util.tree_map(
            lambda a, b: jnp.where(ok, a, b), (new, new_opt), (params, opt_state)
        )
    return new, new_opt, key, loss, aux


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
            f"evaluate: x and y must have the same number of samples; got {len(x)} and {len(y)}"
        )
    if len(x) == 0:
        raise ValueError("evaluate: x is empty")
    check_int("fit: eval_batch_size", batch_size, 1)
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
# State and checkpoints


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


def _save_tree(state: TrainState):
    return state.model, state.opt_state, state.key


def _from_saved(template: TrainState, tree, meta) -> TrainState:
    model, opt_state, key = tree
    history = {k: list(v) for k, v in meta["history"].items()}
    return TrainState(model, opt_state, int(meta["epoch"]), int(meta["step"]), key, history)


def restore_checkpoint(
    checkpoint_dir,
    model,
    optimizer: optax.GradientTransformation,
    *,
    seed: int = 0,
    filter_spec=eqx.is_inexact_array,
) -> TrainState | None:
    """The `TrainState` of the newest intact checkpoint in ``checkpoint_dir``, or ``None``.

    ``model`` and ``optimizer`` give the structure (and every non-array field); only the
    arrays, counters, key and history come from disk, verified as by `fit` (the model
    and optimizer-state structure must match; data, seed and settings are not compared).
    Use it to reload a trained model: ``restore_checkpoint(d, build(), optax.adam(1e-3)).model``.
    """
    if not Path(checkpoint_dir).is_dir():
        return None
    template = _initial_state(model, optimizer, seed, filter_spec)
    fp = fingerprint(model=template.model, opt_state=template.opt_state)
    ckpt = Checkpointer(checkpoint_dir, fp, owner="restore_checkpoint", partial=True)
    try:
        out = ckpt.restore(_save_tree(template))
    finally:
        ckpt.close()
    return None if out is None else _from_saved(template, *out)


# --------------------------------------------------------------------------------------
# fit


def _default_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _epoch_hook(
    *,
    epochs,
    static,
    eval_fn,
    ex,
    ey,
    eval_batch_size,
    preprocess,
    history,
    callbacks,
    log,
    ckpt,
    config,
    state_box,
):
    """After each epoch: history record, evaluation, callbacks, log line, checkpoint."""

    def hook(r: EpochResult):
        params, opt_state, key = r.carry
        record = {
            "epoch": r.epoch + 1,
            "train_loss": float(np.asarray(jax.device_get(r.losses), np.float64).mean()),
        }
        record.update({f"train_{k}": v for k, v in r.aux_means().items()})
        if r.skipped:
            record["train_skipped_steps"] = r.skipped
        record["seconds"] = r.seconds
        model = eqx.combine(params, static)
        if eval_fn is not None:
            metrics = evaluate(model, eval_fn, ex, ey, eval_batch_size, preprocess=preprocess)
            clash = sorted(set(metrics) & set(record))
            if clash:
                raise ValueError(f"fit: eval_fn metric names {clash} clash with the history's")
            record.update(metrics)
        for k, v in record.items():
            history.setdefault(k, []).append(float(v) if k != "epoch" else int(v))
        for cb in callbacks:
            cb(model, r.epoch, record)
        if log is not None:
            log(
                f"epoch {r.epoch + 1}/{epochs}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch")
            )
        step = state_box[0].step + r.steps
        state_box[0] = TrainState(model, opt_state, r.epoch + 1, step, key, history)
        if ckpt is not None:
            ckpt.save(
                r.epoch + 1,
                _save_tree(state_box[0]),
                {"epoch": r.epoch + 1, "step": step, "history": history, "config": config},
            )

    return hook


def fit_fingerprint(
    model,
    optimizer: optax.GradientTransformation,
    train_data: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    batch_size: int,
    eval_data: tuple[np.ndarray, np.ndarray] | None = None,
    settings: Mapping[str, Any] | None = None,
    filter_spec=eqx.is_inexact_array,
) -> dict[str, str]:
    """The checkpoint fingerprint `fit` gives this run (same arguments as `fit`); with
    `memjax.training.checkpoint.fingerprint_digest` a key for its checkpoint folder."""
    params, _ = eqx.partition(model, filter_spec)
    data: dict[str, Any] = {"train": tuple(train_data)}
    if eval_data is not None:
        data["eval"] = tuple(eval_data)
    return fingerprint(
        model=model,
        optimizer=optimizer,
        opt_state=optimizer.init(params),
        seed=seed,
        batch_size=batch_size,
        data=data,
        settings=settings,
    )


def _open_checkpoint(checkpoint_dir, state, *, resume, on_mismatch, max_to_keep, fp, log, epochs):
    ckpt = Checkpointer(
        checkpoint_dir,
        fp,
        max_to_keep=max_to_keep,
        resume=resume,
        on_mismatch=on_mismatch,
        owner="fit",
        log=log,
    )
    out = ckpt.restore(_save_tree(state))
    if out is not None:
        state = _from_saved(state, *out)
        if log is not None:
            done = " (nothing left to train)" if state.epoch >= epochs else ""
            log(f"resumed from {checkpoint_dir} after epoch {state.epoch}{done}")
    return ckpt, state


def _open_fit_checkpoint(
    checkpoint_dir,
    state,
    model,
    optimizer,
    train_data,
    eval_data,
    *,
    seed,
    batch_size,
    settings,
    filter_spec,
    resume,
    on_mismatch,
    max_to_keep,
    log,
    epochs,
):
    """``(checkpointer or None, state)``: `fit`'s checkpoint folder opened under the
    run's fingerprint, and the state to start from (restored or ``state``)."""
    if checkpoint_dir is None:
        return None, state
    fp = fit_fingerprint(
        model,
        optimizer,
        train_data,
        seed=seed,
        batch_size=batch_size,
        eval_data=eval_data,
        settings=settings,
        filter_spec=filter_spec,
    )
    return _open_checkpoint(
        checkpoint_dir,
        state,
        resume=resume,
        on_mismatch=on_mismatch,
        max_to_keep=max_to_keep,
        fp=fp,
        log=log,
        epochs=epochs,
    )


def _check_fit_args(
    model,
    train_data,
    eval_data,
    eval_fn,
    preprocess,
    n_classes,
    *,
    epochs,
    batch_size,
    eval_batch_size,
    seed,
    max_to_keep,
    on_mismatch,
    on_nonfinite,
):
    """`fit`'s argument checks; returns the checked ``(x, y, eval_x, eval_y)``."""
    x, y = _check_data("train_data", train_data)
    check_int("fit: epochs", epochs, 1)
    check_int("fit: batch_size", batch_size, 1, len(x), note=f" (train_data has {len(x)} samples)")
    check_int("fit: eval_batch_size", eval_batch_size, 1)
    check_int("fit: seed", seed, 0)
    check_int("fit: max_to_keep", max_to_keep, 1)
    if (eval_fn is None) != (eval_data is None):
        raise ValueError("fit: eval_fn and eval_data must be given together")
    if on_mismatch not in ("raise", "restart"):
        raise ValueError(f"fit: on_mismatch must be 'raise' or 'restart'; got {on_mismatch!r}")
    if on_nonfinite not in ("raise", "skip"):
        raise ValueError(f"fit: on_nonfinite must be 'raise' or 'skip'; got {on_nonfinite!r}")
    ex = ey = None
    if eval_data is not None:
        ex, ey = _check_data("eval_data", eval_data)
    _check_fit_labels(model, x, y, ey, n_classes, preprocess)
    return x, y, ex, ey


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
    on_mismatch: str = "raise",
    settings: Mapping[str, Any] | None = None,
    on_nonfinite: str = "raise",
    n_classes: int | None = None,
    callbacks: Sequence[Callable[[Any, int, dict[str, float]], None]] = (),
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
        checkpoint_dir: save after every epoch (keeping the last ``max_to_keep``); with
            ``resume=True`` continue from the newest intact checkpoint there if it was
            written by the same run (`memjax.training.checkpoint`). ``resume=False``
            moves existing checkpoints into a ``superseded-<time>`` sub-folder and
            starts afresh (nothing is deleted).
        on_mismatch: ``"raise"`` (a checkpoint of another run — model, optimizer, seed,
            batch size, data or ``settings`` — raises an error naming the differences)
            or ``"restart"`` (move it aside and start afresh).
        settings: JSON-serialisable choices of the caller that the model, optimizer and
            data do not show; part of the checkpoint fingerprint.
        on_nonfinite: ``"raise"``: a NaN or infinite loss stops training with
            `NonFiniteStateError` naming the epoch and step (the newest checkpoint is
            the last good one); ``"skip"``: such steps leave the parameters and optimizer
            state unchanged and are counted in ``"train_skipped_steps"``.
        n_classes: labels must be integers in ``[0, n_classes)``. Default: integer labels
            are checked against the number of logits of ``model(x)`` when the model
            returns ``(batch, classes)``, else only for being non-negative.
        callbacks: ``callback(model, epoch, record)`` after each epoch (0-based epoch,
            the epoch's history record).
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
    x, y, ex, ey = _check_fit_args(
        model,
        train_data,
        eval_data,
        eval_fn,
        preprocess,
        n_classes,
        epochs=epochs,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        max_to_keep=max_to_keep,
        on_mismatch=on_mismatch,
        on_nonfinite=on_nonfinite,
    )
    if log is None and progress:
        log = _default_log
    batch = _batcher(preprocess, mesh, batch_size)

    state = _initial_state(model, optimizer, seed, filter_spec)
    config = {"seed": seed, "batch_size": batch_size, "n_train": len(x)}
    ckpt, state = _open_fit_checkpoint(
        checkpoint_dir,
        state,
        model,
        optimizer,
        (x, y),
        eval_data,
        seed=seed,
        batch_size=batch_size,
        settings=settings,
        filter_spec=filter_spec,
        resume=resume,
        on_mismatch=on_mismatch,
        max_to_keep=max_to_keep,
        log=log,
        epochs=epochs,
    )
    params, static = eqx.partition(state.model, filter_spec)
    carry = (params, state.opt_state, state.key)
    if mesh is not None:
        from ..distributed import replicate

        params, static, *rest = replicate((params, static, *carry[1:]), mesh)
        carry = (params, *rest)
    history = {k: list(v) for k, v in state.history.items()}
    box = [state]
    hook = _epoch_hook(
        epochs=epochs,
        static=static,
        eval_fn=eval_fn,
        ex=ex,
        ey=ey,
        eval_batch_size=eval_batch_size,
        preprocess=preprocess,
        history=history,
        callbacks=tuple(callbacks),
        log=log,
        ckpt=ckpt,
        config=config,
        state_box=box,
    )
    skip = on_nonfinite == "skip"

    def step(c, xb, yb):
        params, opt_state, key = c
        p, o, k, loss, aux = _train_step(
            params, static, opt_state, key, xb, yb, loss_fn, optimizer, project, filter_spec, skip
        )
        return (p, o, k), loss, aux

    try:
        carry = run_epochs(
            carry,
            step,
            x,
            y,
            epochs=range(state.epoch, epochs),
            batch_size=batch_size,
            order=lambda e: epoch_permutation(seed, e, n=len(x)),
            batch=batch,
            on_epoch=[hook],
            on_nonfinite=on_nonfinite,
            step_offset=state.step,
            progress=progress,
            desc=lambda e: f"epoch {e + 1}/{epochs}",
            owner="fit",
        )
    finally:
        if ckpt is not None:
            ckpt.close()
    return eqx.combine(carry[0], static), history


def _batcher(preprocess, mesh, batch_size):
    shard = None
    if mesh is not None:
        from ..distributed import batch_divisor, shard_batch

        n_dev = batch_divisor(mesh)
        if batch_size % n_dev:
            raise ValueError(
                f"fit: batch_size must be divisible by the {n_dev} devices of mesh; got "
                f"{batch_size}"
            )
        shard = shard_batch

    def batch(xb, yb):
        out = _as_input(xb, preprocess), jnp.asarray(yb)
        return out if shard is None else shard(out, mesh)

    return batch
