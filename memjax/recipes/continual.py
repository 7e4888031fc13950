"""Continual learning of a :class:`~memjax.models.metaplastic.MetaplasticMLP`: a stream of
tasks trained one after the other (no replay) on the one loop
(`memjax.training.loop.run_epochs`).

Each task is one phase of the loop with its own hooks:

- at the task start, the optimizer state is re-initialised or carried over
  (``reset_optimizer``) and per-task affine BN parameters start from the previous task's;
- the compiled step: forward with batch statistics, cross-entropy (plus the EWC penalty
  of every finished task, Kirkpatrick et al., PNAS 114, 3521 (2017), eq. 3), metaplastic
  Adam on the hidden weights (Laborieux et al., Nat. Commun. 12, 2549 (2021)), optional
  fixed-point storage of the hidden weights, and the per-weight count of
  quantisation-level changes (the device reprogramming events) as a step metric;
- after each epoch: BN calibration on the task's training inputs, evaluation of every
  task, the caller's ``on_epoch``, the Fisher information at a task's end (EWC) and a
  verified checkpoint (`memjax.training.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from .._validation import check_int, is_int
from ..data.encoding import scale_images
from ..learning.ewc import ewc_penalty, fisher_diagonal
from ..learning.metaplastic import _check_m, metaplastic_adam
from ..learning.quantize import fixed_point, level_index
from ..losses import accuracy, cross_entropy
from ..models.metaplastic import MetaplasticMLP, calibrate_bn, evaluate_task
from ..training.checkpoint import Checkpointer, data_identity, fingerprint, optimizer_identity
from ..training.loop import EpochResult, epoch_permutation, run_epochs

__all__ = ["Task", "train_continual", "level_changes"]


class Task(NamedTuple):
    """One task of a stream: training and test data (images or flat vectors) and an
    optional pixel permutation (permuted MNIST), applied to flattened inputs."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    perm: np.ndarray | None = None

    def inputs(self, x: np.ndarray) -> Array:
        """Flattened float32 inputs in [0, 1], permuted if the task says so."""
        x = scale_images(x, flatten=True, owner="Task.inputs")
        if self.perm is not None:
            x = x[:, self.perm]
        return jnp.asarray(x, jnp.float32)


# --------------------------------------------------------------------------------------
# The compiled step


def _with_params(model, ws, affine):
    model = eqx.tree_at(lambda t: t.weights, model, tuple(ws))
    if model.bn_affine:
        model = eqx.tree_at(lambda t: (t.bn_scale, t.bn_shift), model, affine)
    return model


def _affine(model):
    return (model.bn_scale, model.bn_shift) if model.bn_affine else ((), ())


def _loss(params, model, x, y, task, ewc):
    ws, affine = params
    logits = _with_params(model, ws, affine)(x, task, train=True)
    loss = cross_entropy(logits, y)
    if ewc is not None:
        lam, anchors, fishers = ewc
        for a, f in zip(anchors, fishers):
            loss = loss + ewc_penalty(tuple(ws), a, f, lam)
    return loss, accuracy(logits, y)


def level_changes(counts, new, old, n_levels: int, w_max: float):
    """Step metric: add 1 to the count of every weight whose quantisation level differs
    between ``old`` and ``new`` hidden weights."""
    return tuple(
        c + (level_index(a, n_levels, w_max) != level_index(b, n_levels, w_max)).astype(jnp.int32)
        for c, a, b in zip(counts, new, old)
    )


@eqx.filter_jit
def _train_step(
    model,
    opt_state,
    counts,
    x,
    y,
    task,
    optimizer,
    affine_optimizer,
    hidden_bits,
    hidden_range,
    ewc,
    metric=level_changes,
):
    ws, affine = model.weights, _affine(model)
    w_state, a_state = opt_state
    (loss, acc), (gw, ga) = jax.value_and_grad(_loss, has_aux=True)(
        (ws, affine), model, x, y, task, ewc
    )
    updates, w_state = optimizer.update(gw, w_state, ws)
    new = optax.apply_updates(ws, updates)
    if hidden_bits is not None:
        new = tuple(fixed_point(w, hidden_bits, hidden_range) for w in new)
    counts = metric(counts, new, ws, model.n_levels, model.w_max)
    if model.bn_affine:
        au, a_state = affine_optimizer.update(ga, a_state, affine)
        # Only the current task's slot moves (Adam momentum carried over from an
        # earlier task must not move that task's slot).
        row = (jnp.arange(model.n_slots) == model.slot_index(task))[:, None]
        affine = optax.apply_updates(affine, jax.tree_util.tree_map(lambda u: u * row, au))
    model = _with_params(model, new, affine)
    return model, (w_state, a_state), counts, loss, acc


def _log_likelihood(model, task):
    def ll(ws, x, y):
        m = _with_params(model, ws, _affine(model))
        return jax.nn.log_softmax(m(x[None], task)[0])[y]

    return ll


# --------------------------------------------------------------------------------------
# Arguments, optimizers, checkpoints


def _check_number(name, value):
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.floating)) and np.isfinite(value) and value >= 0
    ):
        raise ValueError(f"train_continual: {name} must be a finite number >= 0; got {value!r}")


def _check_args(model, tasks, m, m_scale, epochs, adam_eps, optimizer):
    epochs = [epochs] * len(tasks) if is_int(epochs) else list(epochs)
    if len(epochs) != len(tasks):
        raise ValueError("train_continual: epochs must be an int or one int per task")
    for e in epochs:
        check_int("train_continual: epochs", e, 1)
    if model.bn == "per_task" and model.n_slots < len(tasks):
        raise ValueError(
            f"train_continual: the model has {model.n_slots} BN slots for {len(tasks)} tasks "
            "(build it with n_tasks=len(tasks))"
        )
    ms = [m] * len(tasks) if callable(m) or np.ndim(m) == 0 else list(m)
    if len(ms) != len(tasks):
        raise ValueError(
            f"train_continual: m must be a number, a schedule or one of those "
            f"per task ({len(tasks)}); got {m!r}"
        )
    for mi in ms:
        if not callable(mi):
            _check_m("train_continual", mi)
    for name, value in (("adam_eps", adam_eps), ("m_scale", m_scale)):
        if value is not None and optimizer is not None:
            raise ValueError(
                f"train_continual: {name} is for the default optimizer; "
                "pass it to your own optimizer instead"
            )
    if adam_eps is not None:
        _check_number("adam_eps", adam_eps)
    if m_scale is not None:
        m_scale = tuple(m_scale)
        if len(m_scale) != len(model.weights):
            raise ValueError(
                f"train_continual: m_scale must give one factor per layer "
                f"({len(model.weights)}); got {m_scale!r}"
            )
        # Its values are checked by metaplastic() when the optimizer is built.
    for t in tasks:
        y = np.asarray(t.y_train)
        if not np.issubdtype(y.dtype, np.integer) or (
            len(y) and (y.min() < 0 or y.max() >= model.sizes[-1])
        ):
            raise ValueError(
                f"train_continual: task {t.name!r} labels must be integers in "
                f"[0, {model.sizes[-1]})"
            )
    return epochs, ms, m_scale


def _optimizers(model, ms, optimizer, learning_rate, adam_eps, m_scale):
    """One transformation per distinct m (one compilation each, one state structure for
    every m so that the state can carry over)."""
    if optimizer is not None:
        return dict.fromkeys(ms, optimizer())
    as_sched = any(callable(mi) for mi in ms)

    def m_arg(mi):
        return optax.constant_schedule(float(mi)) if as_sched and not callable(mi) else mi

    return {
        mi: metaplastic_adam(
            learning_rate,
            m_arg(mi),
            model.n_levels,
            model.w_max,
            eps=1e-8 if adam_eps is None else float(adam_eps),
            m_scale=m_scale,
        )
        for mi in dict.fromkeys(ms)
    }


def _fingerprint(model, tasks, opts, opt_state, seed, batch_size, settings):
    data = {}
    for t, task in enumerate(tasks):
        data[f"{t}.{task.name}.train"] = (task.x_train, task.y_train)
        data[f"{t}.{task.name}.test"] = (task.x_test, task.y_test)
    perms = [None if t.perm is None else data_identity(t.perm) for t in tasks]
    return fingerprint(
        model=model,
        opt_state=opt_state,
        seed=seed,
        batch_size=batch_size,
        data=data,
        settings={**settings, "perms": perms},
    ) | {"optimizer": optimizer_identity(tuple(opts.values()))}


class _Position(NamedTuple):
    task: int  # task to continue in
    epoch: int  # first epoch to run in it
    opt_state: Any  # optimizer state to continue with (None: per reset_optimizer)


def _resume(ckpt, model, init_state, counts, epochs, reset_optimizer, log):
    def template(meta):
        n_a = int(meta["n_anchors"])
        return (model, init_state(model), counts, (model.weights,) * n_a, (model.weights,) * n_a)

    got = ckpt.restore(template)
    if got is None:
        return None
    (model, opt_state, counts, anchors, fishers), meta = got
    t0, e0 = int(meta["task"]), int(meta["epoch"])
    if log is not None:
        log(f"resumed from {ckpt.directory}: task {t0 + 1}, epoch {e0 + 1} done")
    if e0 + 1 < epochs[t0]:
        pos = _Position(t0, e0 + 1, opt_state)
    else:
        pos = _Position(t0 + 1, 0, None if reset_optimizer else opt_state)
    hist = {k: list(v) for k, v in meta["history"].items()}
    return model, tuple(counts), list(anchors), list(fishers), hist, pos


# --------------------------------------------------------------------------------------
# The recipe


def train_continual(
    model: MetaplasticMLP,
    tasks: Sequence[Task],
    *,
    m: float | optax.Schedule | Sequence[float | optax.Schedule] = 1.35,
    m_scale: Sequence[float] | None = None,
    epochs: int | Sequence[int] = 20,
    batch_size: int = 100,
    learning_rate: float = 0.005,
    adam_eps: float | None = None,
    seed: int = 0,
    optimizer: Callable[[], optax.GradientTransformation] | None = None,
    hidden_bits: int | None = None,
    hidden_range: float = 4.0,
    ewc_lambda: float = 0.0,
    ewc_samples: int = 1000,
    calib_samples: int | None = 10000,
    eval_every_epoch: bool = True,
    on_epoch: Callable[[MetaplasticMLP, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    on_mismatch: str = "raise",
    reset_optimizer: bool = True,
) -> tuple[MetaplasticMLP, dict[str, Any]]:
    """Train on ``tasks`` one after the other (no replay), Adam + metaplasticity.

    Adam with metaplasticity (``metaplastic_adam(learning_rate, m, n_levels, w_max,
    eps=adam_eps)``, or ``optimizer()`` if given; ``m`` a number, a schedule of the
    metaplastic transformation's update count (it restarts at each task with
    ``reset_optimizer``), or one of those per task); ``m_scale`` one factor on ``m`` per
    layer (``metaplastic(m_scale=...)``); affine BN parameters, if any, with plain Adam.
    Mini-batches of ``batch_size`` from a permutation that depends only on ``(seed, task,
    epoch)``; the last partial batch is dropped. After each epoch the current task's BN
    statistics are estimated on ``calib_samples`` of its training inputs (all if None)
    and, if ``eval_every_epoch``, every task's test accuracy is measured (module
    docstring). ``ewc_lambda > 0`` adds the EWC penalty of every finished task (Fisher
    over ``ewc_samples`` training examples). ``on_epoch(model, task, epoch)`` is called
    after each epoch (not replayed for restored epochs).

    ``reset_optimizer``: re-initialise the optimizer state (Adam's moments) at each new
    task, as Laborieux et al. do (default); ``False`` carries it over.

    ``adam_eps``: Adam's ``eps`` for the hidden weights (the step is ``lr m_t /
    (sqrt(v_t) + eps)``; None: optax's 1e-8). An ``eps`` of the order of the gradient rms
    of the weights that matter slows the rest, which then stay plastic for later tasks
    (docs/metaplasticity.md). The affine BN parameters keep optax's default.

    ``checkpoint_dir``: after every epoch a verified checkpoint (the last two kept) of the
    model arrays, optimizer state, level-change counters, EWC anchors and Fishers and the
    history; with ``resume`` a later call of the same run continues after the last saved
    epoch and returns what an uninterrupted run returns. A checkpoint of another run
    (model, data, seed, settings) raises an error naming the differences unless
    ``on_mismatch="restart"``; ``resume=False`` moves old checkpoints aside.

    Returns ``(model, history)``: ``history["acc"]`` is a list of per-epoch rows (one
    accuracy per task), ``history["task"]`` the task trained in each row, ``"loss"``,
    ``"seconds"`` (training time per epoch, excluding evaluation), ``"counts"`` (per
    weight level changes over the whole stream, NumPy int arrays) and ``"final_acc"``.
    """
    epochs, ms, m_scale = _check_args(model, tasks, m, m_scale, epochs, adam_eps, optimizer)
    opts = _optimizers(model, ms, optimizer, learning_rate, adam_eps, m_scale)
    affine_t = optax.adam(learning_rate)  # the BN gains and offsets: plain Adam

    def init_state(model):
        return opts[ms[0]].init(model.weights), affine_t.init(_affine(model))

    counts = tuple(jnp.zeros(w.shape, jnp.int32) for w in model.weights)
    hist: dict[str, Any] = {"acc": [], "task": [], "loss": [], "seconds": []}
    anchors, fishers = [], []
    pos, opt_state, ckpt = _Position(0, 0, None), None, None
    if checkpoint_dir is not None:
        settings = dict(
            m=[optimizer_identity(mi) if callable(mi) else mi for mi in ms],
            m_scale=m_scale,
            epochs=epochs,
            learning_rate=learning_rate,
            adam_eps=adam_eps,
            hidden_bits=hidden_bits,
            hidden_range=hidden_range,
            ewc_lambda=ewc_lambda,
            ewc_samples=ewc_samples,
            calib_samples=calib_samples,
            eval_every_epoch=eval_every_epoch,
            reset_optimizer=reset_optimizer,
        )
        fp = _fingerprint(model, tasks, opts, init_state(model), seed, batch_size, settings)
        ckpt = Checkpointer(
            checkpoint_dir,
            fp,
            resume=resume,
            on_mismatch=on_mismatch,
            owner="train_continual",
            log=log,
        )
        got = _resume(ckpt, model, init_state, counts, epochs, reset_optimizer, log)
        if got is not None:
            model, counts, anchors, fishers, hist, pos = got
    try:
        for t in range(pos.task, len(tasks)):
            # Per-task optimizer state: restored, reset, or carried over.
            if t == pos.task and pos.opt_state is not None:
                opt_state = pos.opt_state
            elif reset_optimizer or opt_state is None:
                opt_state = init_state(model)
            first = pos.epoch if t == pos.task else 0
            if t > 0 and first == 0 and model.bn == "per_task":
                model = model.copy_slot(t - 1, t)
            ewc = (
                (ewc_lambda, tuple(anchors), tuple(fishers)) if ewc_lambda > 0 and anchors else None
            )
            model, opt_state, counts = _train_task(
                (model, opt_state, counts),
                t,
                tasks,
                first,
                epochs,
                step_args=(opts[ms[t]], affine_t, hidden_bits, hidden_range, ewc),
                batch_size=batch_size,
                seed=seed,
                calib_samples=calib_samples,
                eval_every_epoch=eval_every_epoch,
                hist=hist,
                log=log,
                on_epoch=on_epoch,
                ewc_lambda=ewc_lambda,
                ewc_samples=ewc_samples,
                anchors=anchors,
                fishers=fishers,
                ckpt=ckpt,
            )
    finally:
        if ckpt is not None:
            ckpt.close()
    hist["final_acc"] = hist["acc"][-1]
    hist["counts"] = [np.asarray(c) for c in counts]
    return model, hist


def _train_task(
    carry,
    t,
    tasks,
    first,
    epochs,
    *,
    step_args,
    batch_size,
    seed,
    calib_samples,
    eval_every_epoch,
    hist,
    log,
    on_epoch,
    ewc_lambda,
    ewc_samples,
    anchors,
    fishers,
    ckpt,
):
    """One task: a phase of the loop with its epoch hooks."""
    task = tasks[t]
    n = len(task.x_train)

    def step(c, xb, yb):
        model, opt_state, counts = c
        optimizer, affine_optimizer, hidden_bits, hidden_range, ewc = step_args
        model, opt_state, counts, loss, acc = _train_step(
            model,
            opt_state,
            counts,
            xb,
            yb,
            jnp.asarray(t),
            optimizer,
            affine_optimizer,
            hidden_bits,
            hidden_range,
            ewc,
        )
        return (model, opt_state, counts), loss, acc

    def calibrate(r: EpochResult):
        model, opt_state, counts = r.carry
        xc = task.x_train if calib_samples is None else task.x_train[:calib_samples]
        return calibrate_bn(model, xc, t, preprocess=task.inputs), opt_state, counts

    def record(r: EpochResult):
        model, e = r.carry[0], r.epoch
        loss = float(jnp.mean(r.losses))
        row = []
        if eval_every_epoch or e == epochs[t] - 1:
            row = [
                evaluate_task(model, tk.x_test, tk.y_test, j, preprocess=tk.inputs)
                for j, tk in enumerate(tasks)
            ]
        hist["acc"].append(row)
        hist["task"].append(t)
        hist["loss"].append(loss)
        hist["seconds"].append(r.seconds)
        if log is not None:
            accs = " ".join(f"{tk.name} {a:.4f}" for tk, a in zip(tasks, row))
            log(
                f"task {t + 1}/{len(tasks)} ({task.name}) epoch {e + 1}/{epochs[t]}: "
                f"loss {loss:.4f}, {r.seconds:.1f} s; {accs}"
            )
        if on_epoch is not None:
            on_epoch(model, t, e)

    def ewc_fisher(r: EpochResult):
        model = r.carry[0]
        if ewc_lambda > 0 and t < len(tasks) - 1 and r.epoch == epochs[t] - 1:
            xs = task.inputs(task.x_train[:ewc_samples])
            ys = jnp.asarray(task.y_train[:ewc_samples])
            fishers.append(
                fisher_diagonal(_log_likelihood(model, model.slot(t)), model.weights, xs, ys)
            )
            anchors.append(model.weights)

    def save(r: EpochResult):
        if ckpt is not None:
            model, opt_state, counts = r.carry
            ckpt.save(
                sum(epochs[:t]) + r.epoch,
                (model, opt_state, counts, tuple(anchors), tuple(fishers)),
                {"task": t, "epoch": r.epoch, "n_anchors": len(anchors), "history": hist},
            )

    return run_epochs(
        carry,
        step,
        task.x_train,
        task.y_train,
        epochs=range(first, epochs[t]),
        batch_size=batch_size,
        order=lambda e: epoch_permutation(seed, t, e, n=n),
        batch=lambda xb, yb: (task.inputs(xb), jnp.asarray(yb)),
        on_epoch=[calibrate, record, ewc_fisher, save],
        owner="train_continual",
    )
