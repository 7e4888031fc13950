"""Metaplastic binarized (BNN) and quantized (QNN) perceptrons, their batch-norm
statistics, their mapping onto multi-level RRAM and their memory cost (their continual
training is the recipe `memjax.recipes.train_continual`).

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

import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._validation import check_int
from ..devices.rram import MultiLevelRRAM, RRAMState
from ..learning.quantize import (
    check_levels,
    level_index,
    quantize_levels,
    sign_hardtanh_ste,
)

__all__ = [
    "MetaplasticMLP",
    "evaluate_task",
    "calibrate_bn",
    "level_conductances",
    "conductance_weights",
    "program_levels",
    "read_device_weights",
    "memory_bits",
    "memory_reduction",
    "REFERENCE_BNN_SIZES",
    "BN_SCALE_INITS",
]

REFERENCE_BNN_SIZES = (784, 4096, 4096, 10)
_BN_MODES = ("per_task", "shared")
_ACTIVATIONS = ("sign", "hardtanh")
_INITS = ("uniform", "boundary")
#: Allowed ``MetaplasticMLP(bn_scale_init=...)`` values.
BN_SCALE_INITS = ("ones", "uniform")


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
        bn_scale_init: str = "ones",
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

        Affine BN gains (``bn_affine``) start at 1 (``bn_scale_init="ones"``, PyTorch's
        default since 1.2) or ``U(0, 1)`` (``"uniform"``, PyTorch 1.1 and the authors'
        code), one draw per neuron copied to every task slot; offsets start at 0.
        """
        n = "MetaplasticMLP"
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"{n}.sizes must list at least input and output sizes; got {sizes}")
        for s in sizes:
            check_int(f"{n}.sizes", s, 1)
        check_levels(n, n_levels, w_max)
        check_int(f"{n}.n_tasks", n_tasks, 1)
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
                scale = init_scale if init_scale is not None else 0.05 * h
                kb, ko = jax.random.split(k)
                j = jax.random.randint(kb, (a, b), 1, n_levels)
                w = (
                    -w_max
                    + (2 * j - 1) * h
                    + jax.random.uniform(ko, (a, b), minval=-scale, maxval=scale)
                )
            else:
                scale = (
                    init_scale
                    if init_scale is not None
                    else (1.0 / math.sqrt(a) if n_levels == 2 else float(w_max))
                )
                w = jax.random.uniform(k, (a, b), minval=-scale, maxval=scale)
            ws.append(w)
        self.weights = tuple(ws)
        self.bn_mean = tuple(jnp.zeros((slots, b)) for b in sizes[1:])
        self.bn_var = tuple(jnp.ones((slots, b)) for b in sizes[1:])
        if not isinstance(bn_affine, (bool, np.bool_)):
            raise ValueError(f"{n}.bn_affine must be a bool; got {bn_affine!r}")
        self.bn_affine = bool(bn_affine)
        if bn_scale_init not in BN_SCALE_INITS:
            raise ValueError(
                f"{n}.bn_scale_init must be one of {BN_SCALE_INITS}; got {bn_scale_init!r}"
            )
        if bn_scale_init != "ones" and not bn_affine:
            raise ValueError(f"{n}.bn_scale_init={bn_scale_init!r} needs bn_affine=True")
        if bn_scale_init == "uniform":
            # fold_in: the hidden weights draw the same values with either init
            gkeys = jax.random.split(jax.random.fold_in(key, 1), len(sizes) - 1)
            gains = [jax.random.uniform(g, (b,)) for g, b in zip(gkeys, sizes[1:])]
        else:
            gains = [jnp.ones((b,)) for b in sizes[1:]]
        self.bn_scale = tuple(jnp.tile(g, (slots, 1)) for g in gains) if bn_affine else ()
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
            lambda t: (t.bn_scale, t.bn_shift),
            self,
            (
                tuple(a.at[dst].set(a[src]) for a in self.bn_scale),
                tuple(a.at[dst].set(a[src]) for a in self.bn_shift),
            ),
        )

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
        # per-feature vectors given the batch axes explicitly (no implicit rank promotion)
        lead = lambda v: jax.lax.broadcast_to_rank(v, z.ndim)
        if train:
            mean = jnp.mean(z, axis=0, keepdims=True)
            var = jnp.var(z, axis=0, keepdims=True)
        else:
            mean, var = lead(self.bn_mean[l][s]), lead(self.bn_var[l][s])
        z = (z - mean) * jax.lax.rsqrt(var + self.bn_eps)
        if self.bn_affine:
            z = z * lead(self.bn_scale[l][s]) + lead(self.bn_shift[l][s])
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


def calibrate_bn(
    model: MetaplasticMLP, x, task: int = 0, *, batch_size: int = 2000, preprocess=None
) -> MetaplasticMLP:
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
            functools.partial(_bn_pair, l=l),
            model,
            (model.bn_mean[l].at[s].set(mean), model.bn_var[l].at[s].set(var)),
        )
    return model


@eqx.filter_jit
def _correct(model, x, y, task, weights, batch_statistics):
    logits = model(x, task, train=batch_statistics, weights=weights)
    return jnp.sum(jnp.argmax(logits, -1) == y)


def evaluate_task(
    model: MetaplasticMLP,
    x,
    y,
    task: int = 0,
    *,
    weights=None,
    batch_size: int = 2000,
    preprocess=None,
    batch_statistics: bool = False,
) -> float:
    """Accuracy on ``(x, y)`` with ``task``'s BN statistics (and ``weights`` if given).

    ``batch_statistics=True`` normalises each batch of ``batch_size`` inputs with its own
    mean and variance instead (with ``task``'s affine parameters), as a PyTorch batch
    norm without running statistics evaluates (Laborieux et al.'s code, test batches of
    1,000): transductive, it needs a batch of inputs of one task at inference. The
    inputs are then split into ``ceil(N / batch_size)`` batches of near-equal size (no
    short remainder batch with meaningless statistics); at least 2 inputs are needed."""
    check_int("evaluate_task: batch_size", batch_size, 1)
    s = model.slot(task)
    n = len(x)
    if batch_statistics:
        if n < 2 or batch_size < 2:
            raise ValueError(
                "evaluate_task(batch_statistics=True) needs batches of at least 2 inputs; "
                f"got {n} inputs, batch_size {batch_size}"
            )
        edges = np.linspace(0, n, -(-n // batch_size) + 1).round().astype(int)
    else:
        edges = np.append(np.arange(0, n, batch_size), n)
    c = 0
    for i, j in zip(edges[:-1], edges[1:]):
        xb = x[i:j]
        xb = jnp.asarray(xb) if preprocess is None else preprocess(xb)
        c += int(_correct(model, xb, jnp.asarray(y[i:j]), s, weights, bool(batch_statistics)))
    return c / n


# --------------------------------------------------------------------------------------
# Hardware mapping


def level_conductances(
    device: MultiLevelRRAM, levels: Int[Array, "..."], n_levels: int
) -> Float[Array, "..."]:
    """Offset mapping of level ``j`` to ``G_min + j (G_max - G_min) / (n_levels - 1)`` (S)."""
    check_levels("level_conductances", n_levels)
    j = jnp.asarray(levels).astype(jnp.result_type(float))
    return device.G_min + j * (device.G_max - device.G_min) / (n_levels - 1)


def conductance_weights(
    device: MultiLevelRRAM, G: Float[Array, "..."], w_max: float = 1.0
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
    mask = (
        jnp.ones(jnp.shape(levels), bool)
        if last_levels is None
        else (jnp.asarray(levels) != jnp.asarray(last_levels))
    )
    return device.program(key, state, target, mask=mask), mask.astype(jnp.int32)


def read_device_weights(
    device: MultiLevelRRAM, key: PRNGKeyArray | None, state: RRAMState, w_max: float = 1.0
) -> Float[Array, "..."]:
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
    check_int("memory_bits: hidden_bits", hidden_bits, 0)
    check_int("memory_bits: cells_per_weight", cells_per_weight, 1)
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


def _bn_pair(m, l):
    return (m.bn_mean[l], m.bn_var[l])
