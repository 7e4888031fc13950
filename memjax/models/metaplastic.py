"""Metaplastic binarized (BNN) and quantized (QNN) perceptrons, their continual-learning
loop, their mapping onto multi-level RRAM and their memory cost.

**Network** (Laborieux et al., Nat. Commun. 12, 2549 (2021), from the authors' code):

    h_0 = x (real, not binarised),   z_l = BN_l(h_{l-1} Q(W_l)),   h_l = sign(z_l)  (l < L),
    logits = z_L

no biases, batch norm after every layer (optionally affine, per task), ``Q`` the weight
quantiser (``sign`` for ``n_levels = 2``, else
:func:`~memjax.learning.quantize.quantize_levels` on ``[-w_max, w_max]``), sign
activations with the hardtanh straight-through gradient. The trained parameters are the
hidden weights ``W_l`` (and the affine BN parameters, if any).

**Batch norm**: by default no affine parameters; ``bn_affine=True`` adds a learned gain
and offset per neuron and per task slot (the authors' ``affine=True`` batch norm, whose
state their code saves after each task and restores to test it), trained with plain Adam
on its own task only. Training uses batch statistics. Inference uses
*per-task* population statistics (``bn="per_task"``, the default): at the end of each
epoch on task t the mean and variance of every layer's pre-activations over task t's
training inputs are stored in slot t, and frozen when the next task starts (task t's
data is no longer available); evaluating task t uses slot t, so inference needs the task
identity. ``bn="shared"``: one slot, re-estimated on the current task (earlier tasks
are then evaluated with the latest task's statistics).

**Hardware mapping** (D'Agostino et al., AICAS 2023: quantized weights in multi-level
HfO2 RRAM, hidden weights in digital memory). Offset mapping, one cell per weight: level
``j`` of ``k`` is stored as the conductance

    G_j = G_min + j (G_max - G_min) / (k - 1),     w = w_max (2 (G - G_min) / (G_max - G_min) - 1)

(a reference column of mid-range cells supplies the offset current, one column per
array, not counted per weight). Cells are written with program-and-verify
(:meth:`memjax.devices.rram.MultiLevelRRAM.program`) and only where the weight's level
changed since the cell was last written (:func:`program_levels`). Hidden weights may be
held at a fixed-point precision (``hidden_bits`` on ``[-hidden_range, hidden_range)``).

**Memory** (:func:`memory_bits`): ``sum_l n_in,l n_out,l (c ceil(log2 k) + b_h)`` bits
with ``c`` cells per weight (1 here, 2 for a differential pair) and ``b_h`` hidden bits.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..devices.rram import MultiLevelRRAM, RRAMState
from ..learning.ewc import ewc_penalty, fisher_diagonal
from ..learning.metaplastic import _check_m, metaplastic_adam
from ..learning.quantize import (
    check_levels,
    fixed_point,
    level_index,
    level_value,
    quantize_levels,
    sign_hardtanh_ste,
)
from ..train import accuracy

__all__ = [
    "MetaplasticMLP",
    "Task",
    "train_continual",
    "evaluate_task",
    "calibrate_bn",
    "level_conductances",
    "conductance_weights",
    "program_levels",
    "read_device_weights",
    "memory_bits",
    "memory_reduction",
    "REFERENCE_BNN_SIZES",
]

REFERENCE_BNN_SIZES = (784, 4096, 4096, 10)
_BN_MODES = ("per_task", "shared")
_ACTIVATIONS = ("sign", "hardtanh")
_INITS = ("uniform", "boundary")


def _check_int(owner, name, value, lo):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{owner}.{name} must be an integer >= {lo}; got {value!r}")


class MetaplasticMLP(eqx.Module):
    """Binarized / quantized MLP with batch norm and sign activations (module docstring).

    - `weights`: hidden weights ``(n_in, n_out)`` per layer (the trained leaves).
    - `bn_mean`, `bn_var`: inference statistics per layer, ``(n_slots, n_out)``.
    - `bn_scale`, `bn_shift`: learned BN gain and offset per layer, ``(n_slots,
      n_out)``, if ``bn_affine`` (else empty tuples): slot ``t`` is trained on task
      ``t`` only, with plain Adam (never metaplastic), as the authors' ``affine=True``
      batch norm whose parameters they save and restore per task.
    - `sizes`, `n_levels`, `w_max`, `bn`, `bn_eps`, `bn_affine`: static settings.
    - `activation`: ``"sign"`` (binary, hardtanh STE; the BNN) or ``"hardtanh"``
      (real-valued ``clip(z, -1, 1)``).
    - `logit_scale`: fixed factor on the normalised output (the output BN has no
      learned scale, so without it logits have unit variance and the softmax stays soft).

    Call ``model(x, task)`` (inference, slot ``task``) or ``model(x, train=True)``.
    """

    weights: tuple[Float[Array, "n_in n_out"], ...]
    bn_mean: tuple[Float[Array, "slots n_out"], ...]
    bn_var: tuple[Float[Array, "slots n_out"], ...]
    bn_scale: tuple[Float[Array, "slots n_out"], ...]
    bn_shift: tuple[Float[Array, "slots n_out"], ...]
    sizes: tuple[int, ...] = eqx.field(static=True)
    n_levels: int = eqx.field(static=True)
    w_max: float = eqx.field(static=True)
    bn: str = eqx.field(static=True)
    bn_eps: float = eqx.field(static=True)
    bn_affine: bool = eqx.field(static=True)
    logit_scale: float = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        sizes: Sequence[int] = (784, 1024, 1024, 10),
        n_levels: int = 2,
        w_max: float = 1.0,
        *,
        n_tasks: int = 1,
        bn: str = "per_task",
        init: str = "uniform",
        init_scale: float | None = None,
        bn_eps: float = 1e-5,
        bn_affine: bool = False,
        logit_scale: float = 1.0,
        activation: str = "sign",
        key: PRNGKeyArray,
    ):
        """Initial hidden weights, by ``init``:

        - ``"uniform"``: ``U(-a, a)``, ``a = init_scale``, default ``1 / sqrt(n_in)`` for a
          BNN (PyTorch's Linear default, as the authors) and ``w_max`` for a QNN (every
          level populated, each weight anywhere in its interval);
        - ``"boundary"``: each weight next to one of the ``n_levels - 1`` level
          boundaries ``b_j = -w_max + (2 j - 1) h`` (``h = w_max / (n_levels - 1)``, ``j``
          uniform), ``W = b_j + U(-a, a)``, ``a = init_scale``, default ``0.05 h``: every
          synapse starts unconsolidated (the meta factor is about 1 in both directions),
          as a BNN's small hidden weights start next to its one boundary, 0 (for
          ``n_levels = 2`` both draw ``U(-a, a)``).
        """
        n = "MetaplasticMLP"
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"{n}.sizes must list at least input and output sizes; got {sizes}")
        for s in sizes:
            _check_int(n, "sizes", s, 1)
        check_levels(n, n_levels, w_max)
        _check_int(n, "n_tasks", n_tasks, 1)
        if bn not in _BN_MODES:
            raise ValueError(f"{n}.bn must be one of {_BN_MODES}; got {bn!r}")
        if init_scale is not None and not (np.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"{n}.init_scale must be finite and > 0; got {init_scale!r}")
        if init not in _INITS:
            raise ValueError(f"{n}.init must be one of {_INITS}; got {init!r}")
        slots = n_tasks if bn == "per_task" else 1
        keys = jax.random.split(key, len(sizes) - 1)
        h = w_max / (n_levels - 1)
        ws = []
        for k, a, b in zip(keys, sizes[:-1], sizes[1:]):
            if init == "boundary":
                s = init_scale if init_scale is not None else 0.05 * h
                kb, ko = jax.random.split(k)
                j = jax.random.randint(kb, (a, b), 1, n_levels)
                w = -w_max + (2 * j - 1) * h + jax.random.uniform(ko, (a, b), minval=-s, maxval=s)
            else:
                s = init_scale if init_scale is not None else (
                    1.0 / math.sqrt(a) if n_levels == 2 else float(w_max)
                )
                w = jax.random.uniform(k, (a, b), minval=-s, maxval=s)
            ws.append(w)
        self.weights = tuple(ws)
        self.bn_mean = tuple(jnp.zeros((slots, b)) for b in sizes[1:])
        self.bn_var = tuple(jnp.ones((slots, b)) for b in sizes[1:])
        if not isinstance(bn_affine, (bool, np.bool_)):
            raise ValueError(f"{n}.bn_affine must be a bool; got {bn_affine!r}")
        self.bn_affine = bool(bn_affine)
        self.bn_scale = tuple(jnp.ones((slots, b)) for b in sizes[1:]) if bn_affine else ()
        self.bn_shift = tuple(jnp.zeros((slots, b)) for b in sizes[1:]) if bn_affine else ()
        self.sizes = tuple(int(s) for s in sizes)
        self.n_levels = int(n_levels)
        self.w_max = float(w_max)
        self.bn = bn
        self.bn_eps = float(bn_eps)
        if not (np.isfinite(logit_scale) and logit_scale > 0):
            raise ValueError(f"{n}.logit_scale must be finite and > 0; got {logit_scale!r}")
        self.logit_scale = float(logit_scale)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{n}.activation must be one of {_ACTIVATIONS}; got {activation!r}")
        self.activation = activation

    @property
    def n_slots(self) -> int:
        return self.bn_mean[0].shape[0]

    def slot_index(self, task: int | Int[Array, ""]) -> int | Int[Array, ""]:
        """BN slot of ``task`` (``task`` for per-task BN, 0 if shared); ``task`` may be
        traced."""
        return task if self.bn == "per_task" else 0

    def slot(self, task: int) -> int:
        """:meth:`slot_index` of a concrete ``task``, as a Python int."""
        return int(self.slot_index(task))

    def copy_slot(self, src: int, dst: int) -> MetaplasticMLP:
        """Copy the affine BN parameters of slot ``src`` into slot ``dst`` (a new task
        starts from the previous task's gains and offsets, as in the authors' code)."""
        if not self.bn_affine or src == dst:
            return self
        return eqx.tree_at(
            lambda t: (t.bn_scale, t.bn_shift), self,
            (tuple(a.at[dst].set(a[src]) for a in self.bn_scale),
             tuple(a.at[dst].set(a[src]) for a in self.bn_shift)))

    def quantized_weights(self) -> tuple[Float[Array, "n_in n_out"], ...]:
        """``Q(W_l)`` with the straight-through gradient."""
        return tuple(quantize_levels(w, self.n_levels, self.w_max) for w in self.weights)

    def levels(self) -> tuple[Int[Array, "n_in n_out"], ...]:
        """Level index of every weight (0 .. n_levels - 1)."""
        return tuple(level_index(w, self.n_levels, self.w_max) for w in self.weights)

    def preactivations(self, x, layer: int, task: int = 0, *, weights=None):
        """Pre-BN activations of ``layer`` (inference statistics for layers before it)."""
        ws = self.quantized_weights() if weights is None else weights
        h = x
        for l in range(layer):
            h = self._act(self._bn(h @ ws[l], l, task, False))
        return h @ ws[layer]

    def _act(self, z):
        if self.activation == "sign":
            return sign_hardtanh_ste(z)
        return jnp.clip(z, -1.0, 1.0)

    def _bn(self, z, l, task, train):
        s = self.slot_index(task)
        if train:
            mean = jnp.mean(z, axis=0)
            var = jnp.var(z, axis=0)
        else:
            mean, var = self.bn_mean[l][s], self.bn_var[l][s]
        z = (z - mean) * jax.lax.rsqrt(var + self.bn_eps)
        if self.bn_affine:
            z = z * self.bn_scale[l][s] + self.bn_shift[l][s]
        return z

    def __call__(
        self,
        x: Float[Array, "batch n_in"],
        task: int | Int[Array, ""] = 0,
        *,
        train: bool = False,
        weights: Sequence[Float[Array, "n_in n_out"]] | None = None,
    ) -> Float[Array, "batch n_out"]:
        """Logits. ``train``: batch statistics; else the inference statistics of
        ``task`` (the affine BN parameters, if any, are ``task``'s in both). ``weights``:
        use these (already quantised, e.g. read from devices) instead of ``Q(W_l)``."""
        ws = self.quantized_weights() if weights is None else tuple(weights)
        h = x
        for l, w in enumerate(ws):
            z = self._bn(h @ w, l, task, train)
            h = self._act(z) if l < len(ws) - 1 else z * self.logit_scale
        return h


# --------------------------------------------------------------------------------------
# BN statistics and evaluation


@eqx.filter_jit
def _moments(model, x, layer, task):
    z = model.preactivations(x, layer, task)
    return jnp.sum(z, 0), jnp.sum(z * z, 0)


def calibrate_bn(model: MetaplasticMLP, x, task: int = 0, *, batch_size: int = 2000,
                 preprocess=None) -> MetaplasticMLP:
    """Store the population mean and variance of every layer's pre-activations over
    ``x`` in ``task``'s slot (layer by layer, each using the fresh statistics of the
    layers before it)."""
    s = model.slot(task)
    n = len(x)
    for l in range(len(model.weights)):
        tot = tot2 = 0.0
        for i in range(0, n, batch_size):
            xb = x[i : i + batch_size]
            xb = jnp.asarray(xb) if preprocess is None else preprocess(xb)
            a, b = _moments(model, xb, l, s)
            tot, tot2 = tot + a, tot2 + b
        mean = tot / n
        var = jnp.maximum(tot2 / n - mean * mean, 0.0)
        model = eqx.tree_at(
            lambda m: (m.bn_mean[l], m.bn_var[l]),
            model,
            (model.bn_mean[l].at[s].set(mean), model.bn_var[l].at[s].set(var)),
        )
    return model


@eqx.filter_jit
def _correct(model, x, y, task, weights):
    return jnp.sum(jnp.argmax(model(x, task, weights=weights), -1) == y)


def evaluate_task(model: MetaplasticMLP, x, y, task: int = 0, *, weights=None,
                  batch_size: int = 2000, preprocess=None) -> float:
    """Accuracy on ``(x, y)`` with ``task``'s BN statistics (and ``weights`` if given)."""
    s = model.slot(task)
    c = 0
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        xb = jnp.asarray(xb) if preprocess is None else preprocess(xb)
        c += int(_correct(model, xb, jnp.asarray(y[i : i + batch_size]), s, weights))
    return c / len(x)


# --------------------------------------------------------------------------------------
# Continual training


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
        x = np.asarray(x)
        x = x.reshape(len(x), -1)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        if self.perm is not None:
            x = x[:, self.perm]
        return jnp.asarray(x, jnp.float32)


def _with_params(model, ws, affine):
    model = eqx.tree_at(lambda t: t.weights, model, tuple(ws))
    if model.bn_affine:
        model = eqx.tree_at(lambda t: (t.bn_scale, t.bn_shift), model, affine)
    return model


def _loss(params, model, x, y, task, ewc):
    ws, affine = params
    logits = _with_params(model, ws, affine)(x, task, train=True)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    if ewc is not None:
        lam, anchors, fishers = ewc
        for a, f in zip(anchors, fishers):
            loss = loss + ewc_penalty(tuple(ws), a, f, lam)
    return loss, accuracy(logits, y)


def _affine(model):
    return (model.bn_scale, model.bn_shift) if model.bn_affine else ((), ())


@eqx.filter_jit
def _train_step(model, opt_state, counts, x, y, task, optimizer, affine_optimizer,
                hidden_bits, hidden_range, ewc):
    ws, affine = model.weights, _affine(model)
    w_state, a_state = opt_state
    (loss, acc), (gw, ga) = jax.value_and_grad(_loss, has_aux=True)(
        (ws, affine), model, x, y, task, ewc)
    updates, w_state = optimizer.update(gw, w_state, ws)
    new = optax.apply_updates(ws, updates)
    if hidden_bits is not None:
        new = tuple(fixed_point(w, hidden_bits, hidden_range) for w in new)
    k, wm = model.n_levels, model.w_max
    counts = tuple(
        c + (level_index(a, k, wm) != level_index(b, k, wm)).astype(jnp.int32)
        for c, a, b in zip(counts, new, ws)
    )
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
    reset_optimizer: bool = True,
) -> tuple[MetaplasticMLP, dict[str, Any]]:
    """Train on ``tasks`` one after the other (no replay), Adam + metaplasticity.

    Adam with metaplasticity (``metaplastic_adam(learning_rate, m, n_levels, w_max,
    eps=adam_eps)``, or ``optimizer()`` if given; ``m`` a number, a schedule of the metaplastic
    transformation's update count (e.g. a consolidation warm-up; the count restarts at
    each task with ``reset_optimizer``), or one of those per task), its state reset at
    each new task (see ``reset_optimizer``); ``m_scale`` one factor on ``m`` per layer
    (``metaplastic(m_scale=...)``; default 1); affine BN parameters, if any, with plain
    Adam. Mini-batches of
    ``batch_size`` from a permutation that depends only on ``(seed, task, epoch)``; the
    last partial batch is dropped. One jitted step: forward (batch statistics),
    gradient, optimizer, optional fixed-point storage of the hidden weights
    (``hidden_bits``), and the count of quantisation-level changes per weight (the
    device reprogramming events). After each
    epoch the current task's BN statistics are estimated on ``calib_samples`` of its
    training inputs (all if None) and, if ``eval_every_epoch``, every task's test
    accuracy is measured. ``ewc_lambda > 0`` adds the EWC penalty of every finished task
    (Fisher over ``ewc_samples`` training examples). ``on_epoch(model, task, epoch)`` is
    called after each epoch.

    ``reset_optimizer``: re-initialise the optimizer state (Adam's moments) at each new
    task, as Laborieux et al. do (default); ``False`` carries it over.

    ``adam_eps``: Adam's ``eps`` for the hidden weights (the step is ``lr m_t /
    (sqrt(v_t) + eps)``; None: optax's 1e-8). At 1e-8 every weight with any gradient takes
    steps of about ``lr``, so each one settles (consolidates) at the same rate,
    however little it matters; an ``eps`` of the order of the gradient rms of the
    weights that matter slows the rest, which then stay plastic for later tasks
    (docs/metaplasticity.md). The affine BN parameters keep optax's default.

    ``checkpoint_dir``: after every epoch an orbax checkpoint (the last two kept) holds
    the model arrays (hidden weights, BN slots), the optimizer state, the level-change
    counters, the EWC anchors and Fishers and the history; with ``resume`` a later call
    with the same arguments continues after the last saved epoch and returns what an
    uninterrupted run returns (batch orders depend only on ``(seed, task, epoch)``).
    ``on_epoch`` is not replayed for the epochs restored.

    Returns ``(model, history)``: ``history["acc"]`` is a list of per-epoch rows (one
    accuracy per task), ``history["task"]`` the task trained in each row, ``"loss"``,
    ``"seconds"`` (training time per epoch, excluding evaluation), ``"counts"`` (per
    weight level changes over the whole stream, NumPy int arrays) and
    ``"final_acc"``.
    """
    epochs = [epochs] * len(tasks) if isinstance(epochs, (int, np.integer)) else list(epochs)
    if len(epochs) != len(tasks):
        raise ValueError("train_continual: epochs must be an int or one int per task")
    for e in epochs:
        _check_int("train_continual", "epochs", e, 1)
    if model.bn == "per_task" and model.n_slots < len(tasks):
        raise ValueError(
            f"train_continual: the model has {model.n_slots} BN slots for {len(tasks)} tasks "
            "(build it with n_tasks=len(tasks))"
        )
    ms = [m] * len(tasks) if callable(m) or np.ndim(m) == 0 else list(m)
    if len(ms) != len(tasks):
        raise ValueError(f"train_continual: m must be a number, a schedule or one of those "
                         f"per task ({len(tasks)}); got {m!r}")
    for mi in ms:
        if not callable(mi):
            _check_m("train_continual", mi)
    if adam_eps is not None:
        if optimizer is not None:
            raise ValueError("train_continual: adam_eps is for the default optimizer; "
                             "pass it to your own optimizer instead")
        if isinstance(adam_eps, bool) or not (
                isinstance(adam_eps, (int, float, np.floating)) and np.isfinite(adam_eps)
                and adam_eps >= 0):
            raise ValueError(f"train_continual: adam_eps must be a finite number >= 0; "
                             f"got {adam_eps!r}")
    if m_scale is not None:
        if optimizer is not None:
            raise ValueError("train_continual: m_scale is for the default optimizer; "
                             "pass it to your own optimizer instead")
        m_scale = tuple(m_scale)
        if len(m_scale) != len(model.weights):
            raise ValueError(f"train_continual: m_scale must give one factor per layer "
                             f"({len(model.weights)}); got {m_scale!r}")
        # Its values are checked by metaplastic() when the optimizer is built below.
    counts = tuple(jnp.zeros(w.shape, jnp.int32) for w in model.weights)
    hist: dict[str, Any] = {"acc": [], "task": [], "loss": [], "seconds": []}
    anchors, fishers = [], []
    # One transformation per distinct m (one compilation each; the same state
    # structure for every m, so the state can carry over); reset at each new task
    # unless reset_optimizer is False.
    if optimizer is not None:
        opts = dict.fromkeys(ms, optimizer())
    else:
        # With any schedule, every task's m is one (one optimizer-state structure).
        as_sched = any(callable(mi) for mi in ms)

        def m_arg(mi):
            return optax.constant_schedule(float(mi)) if as_sched and not callable(mi) else mi

        opts = {mi: metaplastic_adam(learning_rate, m_arg(mi), model.n_levels, model.w_max,
                                     eps=1e-8 if adam_eps is None else float(adam_eps),
                                     m_scale=m_scale)
                for mi in dict.fromkeys(ms)}
    affine_t = optax.adam(learning_rate)  # the BN gains and offsets: plain Adam

    def init_state(model):
        return opts[ms[0]].init(model.weights), affine_t.init(_affine(model))

    mngr = None if checkpoint_dir is None else _ckpt_manager(checkpoint_dir)
    start = (0, 0, None)  # (task, epoch, optimizer state) to continue from
    opt_state = None
    if mngr is not None and resume:
        got = _ckpt_restore(mngr, model, init_state, counts)
        if got is not None:
            model, opt_state, counts, anchors, fishers, hist, (t0_, e0_) = got
            # Continue after epoch e0_ of task t0_.
            if e0_ + 1 < epochs[t0_]:
                start = (t0_, e0_ + 1, opt_state)
            else:
                start = (t0_ + 1, 0, None if reset_optimizer else opt_state)
            if log is not None:
                log(f"resumed from {checkpoint_dir}: task {t0_ + 1}, epoch {e0_ + 1} done")
    for t, task in enumerate(tasks):
        if t < start[0]:
            continue
        resuming = t == start[0] and start[2] is not None
        if resuming:
            opt_state = start[2]
        elif reset_optimizer or opt_state is None:
            opt_state = init_state(model)
        # else: the optimizer state of the previous task carries over
        first = start[1] if t == start[0] else 0
        if t > 0 and first == 0 and model.bn == "per_task":
            model = model.copy_slot(t - 1, t)
        ewc = (ewc_lambda, tuple(anchors), tuple(fishers)) if ewc_lambda > 0 and anchors else None
        n = len(task.x_train)
        steps = n // batch_size
        for e in range(first, epochs[t]):
            perm = np.random.default_rng([seed, t, e]).permutation(n)
            t0 = time.perf_counter()
            losses = []
            for i in range(steps):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                xb, yb = task.inputs(task.x_train[idx]), jnp.asarray(task.y_train[idx])
                model, opt_state, counts, loss, _ = _train_step(
                    model, opt_state, counts, xb, yb, jnp.asarray(t), opts[ms[t]], affine_t,
                    hidden_bits, hidden_range, ewc,
                )
                losses.append(loss)
            loss = float(jnp.mean(jnp.stack(losses)))
            sec = time.perf_counter() - t0
            xc = task.x_train if calib_samples is None else task.x_train[:calib_samples]
            model = calibrate_bn(model, xc, t, preprocess=task.inputs)
            row = []
            if eval_every_epoch or e == epochs[t] - 1:
                row = [evaluate_task(model, tk.x_test, tk.y_test, j, preprocess=tk.inputs)
                       for j, tk in enumerate(tasks)]
            hist["acc"].append(row)
            hist["task"].append(t)
            hist["loss"].append(loss)
            hist["seconds"].append(sec)
            if log is not None:
                accs = " ".join(f"{tk.name} {a:.4f}" for tk, a in zip(tasks, row))
                log(f"task {t + 1}/{len(tasks)} ({task.name}) epoch {e + 1}/{epochs[t]}: "
                    f"loss {loss:.4f}, {sec:.1f} s; {accs}")
            if on_epoch is not None:
                on_epoch(model, t, e)
            if ewc_lambda > 0 and t < len(tasks) - 1 and e == epochs[t] - 1:
                xs = task.inputs(task.x_train[:ewc_samples])
                ys = jnp.asarray(task.y_train[:ewc_samples])
                fishers.append(fisher_diagonal(_log_likelihood(model, model.slot(t)),
                                               model.weights, xs, ys))
                anchors.append(model.weights)
            if mngr is not None:
                _ckpt_save(mngr, sum(epochs[:t]) + e, (t, e), model, opt_state, counts,
                           anchors, fishers, hist)
    hist["final_acc"] = hist["acc"][-1]
    hist["counts"] = [np.asarray(c) for c in counts]
    return model, hist


# --------------------------------------------------------------------------------------
# Checkpoints of the continual loop (orbax; arrays via StandardSave, the rest as JSON)

_CKPT_FORMAT = 2  # 2: optimizer state is (weights, affine BN)


def _ckpt_manager(directory):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _ckpt_tree(model, opt_state, counts, anchors, fishers):
    return eqx.filter((model, opt_state, counts, tuple(anchors), tuple(fishers)), eqx.is_array)


def _ckpt_save(mngr, step, position, model, opt_state, counts, anchors, fishers, hist):
    import orbax.checkpoint as ocp

    leaves = jax.tree_util.tree_leaves(_ckpt_tree(model, opt_state, counts, anchors, fishers))
    meta = {"format": _CKPT_FORMAT, "task": int(position[0]), "epoch": int(position[1]),
            "n_anchors": len(anchors), "history": hist}
    mngr.save(int(step), args=ocp.args.Composite(
        arrays=ocp.args.StandardSave({f"{i:05d}": v for i, v in enumerate(leaves)}),
        meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def _ckpt_restore(mngr, model, init_state, counts):
    import orbax.checkpoint as ocp

    latest = mngr.latest_step()
    if latest is None:
        return None
    meta = mngr.restore(latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("format") != _CKPT_FORMAT:
        raise ValueError(f"train_continual: the checkpoint at {mngr.directory} has format "
                         f"{meta.get('format')}; expected {_CKPT_FORMAT}")
    n_a = int(meta["n_anchors"])
    template = (model, init_state(model), counts, (model.weights,) * n_a,
                (model.weights,) * n_a)
    arrays, static = eqx.partition(template, eqx.is_array)
    flat, treedef = jax.tree_util.tree_flatten(arrays)
    abstract = {f"{i:05d}": jax.ShapeDtypeStruct(v.shape, v.dtype) for i, v in enumerate(flat)}
    try:
        got = mngr.restore(latest, args=ocp.args.Composite(
            arrays=ocp.args.StandardRestore(abstract)))["arrays"]
    except Exception as e:  # a structure mismatch surfaces as assorted orbax errors
        raise ValueError(f"train_continual: the checkpoint at {mngr.directory} does not match "
                         f"this model/optimizer; use another checkpoint_dir or resume=False. "
                         f"Orbax said: {e}") from e
    leaves = [jnp.asarray(got[k]) for k in sorted(got)]
    for i, (a, b) in enumerate(zip(flat, leaves)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise ValueError(f"train_continual: checkpoint array {i} is {b.shape} {b.dtype}; "
                             f"expected {a.shape} {a.dtype}")
    model, opt_state, counts, anchors, fishers = eqx.combine(
        jax.tree_util.tree_unflatten(treedef, leaves), static)
    hist = {k: list(v) for k, v in meta["history"].items()}
    return (model, opt_state, tuple(counts), list(anchors), list(fishers), hist,
            (int(meta["task"]), int(meta["epoch"])))


# --------------------------------------------------------------------------------------
# Hardware mapping


def level_conductances(device: MultiLevelRRAM, levels: Int[Array, "..."], n_levels: int
                       ) -> Float[Array, "..."]:
    """Offset mapping of level ``j`` to ``G_min + j (G_max - G_min) / (n_levels - 1)`` (S)."""
    check_levels("level_conductances", n_levels)
    j = jnp.asarray(levels).astype(jnp.result_type(float))
    return device.G_min + j * (device.G_max - device.G_min) / (n_levels - 1)


def conductance_weights(device: MultiLevelRRAM, G: Float[Array, "..."], w_max: float = 1.0
                        ) -> Float[Array, "..."]:
    """Inverse of the offset mapping: ``w_max (2 (G - G_min) / (G_max - G_min) - 1)``."""
    return w_max * (2.0 * (G - device.G_min) / (device.G_max - device.G_min) - 1.0)


def program_levels(
    device: MultiLevelRRAM,
    key: PRNGKeyArray,
    state: RRAMState,
    levels: Int[Array, "..."],
    last_levels: Int[Array, "..."] | None,
    n_levels: int,
) -> tuple[RRAMState, Int[Array, "..."]]:
    """Program-and-verify the cells whose level differs from ``last_levels`` (every cell
    when ``last_levels`` is None) to their level's conductance. Returns the new state
    and the mask (int32, 1 = written) of the cells written; untouched cells keep their
    conductance and pulse counters."""
    target = level_conductances(device, levels, n_levels)
    mask = jnp.ones(jnp.shape(levels), bool) if last_levels is None else (
        jnp.asarray(levels) != jnp.asarray(last_levels)
    )
    return device.program(key, state, target, mask=mask), mask.astype(jnp.int32)


def read_device_weights(device: MultiLevelRRAM, key: PRNGKeyArray | None, state: RRAMState,
                        w_max: float = 1.0) -> Float[Array, "..."]:
    """Weights read from the cells (read noise when ``key`` is given)."""
    return conductance_weights(device, device.read(key, state), w_max)


# --------------------------------------------------------------------------------------
# Memory accounting


def memory_bits(
    sizes: Sequence[int], n_levels: int, hidden_bits: int = 32, cells_per_weight: int = 1
) -> int:
    """Bits of a metaplastic network's synaptic memory:

        N_w (cells_per_weight ceil(log2 n_levels) + hidden_bits),  N_w = sum_l n_l n_{l+1}

    (quantised weights in cells, each worth ``ceil(log2 n_levels)`` bits, plus the hidden
    weights in digital memory). Batch-norm statistics (``2 sum_l n_{l+1}`` numbers) are
    not counted."""
    check_levels("memory_bits", n_levels)
    _check_int("memory_bits", "hidden_bits", hidden_bits, 0)
    _check_int("memory_bits", "cells_per_weight", cells_per_weight, 1)
    sizes = [int(s) for s in sizes]
    n_w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return n_w * (cells_per_weight * math.ceil(math.log2(n_levels)) + hidden_bits)


def memory_reduction(
    sizes: Sequence[int],
    n_levels: int,
    hidden_bits: int = 32,
    cells_per_weight: int = 1,
    *,
    reference_sizes: Sequence[int] = REFERENCE_BNN_SIZES,
    reference_hidden_bits: int = 32,
) -> float:
    """``memory_bits(reference BNN) / memory_bits(this QNN)``; the reference is the
    784-4096-4096-10 binarized network of Laborieux et al. with 32-bit hidden weights."""
    ref = memory_bits(reference_sizes, 2, reference_hidden_bits, 1)
    return ref / memory_bits(sizes, n_levels, hidden_bits, cells_per_weight)
