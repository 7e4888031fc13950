"""CNN + memristive spiking layer that learns classes it was never trained on
(Muñoz-Martín et al., VLSI 2020; PAPERS.md section 3). Layer sizes, coding and the
gate are the project's choices (the paper gives none); see docs/sfa.md.

Pipeline:

1. :class:`CNN` (conv 5x5 x16, max-pool 2, conv 5x5 x32, max-pool 2, dense ``n_features``
   ReLU, dense head) trained with labels on the *trained classes* only
   (:func:`train_cnn`), then frozen.
2. Its penultimate ReLU features, divided per feature by a scale fixed on the trained
   classes' training features (the 99th percentile) and clipped to [0, 1]
   (:func:`encode_features`), are rate coded into a :class:`~memjax.learning.stdp.WTALayer`
   of adaptive LIF neurons with STDP RRAM synapses, several redundant neurons per class,
   which learns from an *unlabelled* stream of images of all classes
   (:func:`learn_unsupervised`).
3. Each neuron is labelled with the class it responds to most (spike counts, normalised
   by class size) on a small labelled set (:func:`label_neurons`); the spiking layer's
   class is the label of the neuron with most spikes (ties broken by the summed input
   current) (:func:`snn_classify`).
4. **Novelty gate** (:func:`gated_predict`): the frozen CNN head answers unless the
   spiking layer names a *new* class *and* the head's softmax confidence is below a
   gate ``c``. ``c`` is calibrated on held-out *trained-class* images only
   (:func:`calibrate_gate`): the largest value that routes at most ``max_false_route``
   of them away from the head. The trained-class pathway (CNN, head) is never changed
   by unsupervised learning, so a trained-class image is answered exactly as before
   unless the gate routes it (bounded by ``max_false_route`` on the calibration set).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..learning.stdp import WTALayer, WTAState, wta_learn, wta_respond
from ..train import fit
from .ann import cross_entropy_loss

__all__ = [
    "CNN",
    "train_cnn",
    "cnn_features",
    "cnn_predict",
    "feature_scale",
    "encode_features",
    "learn_unsupervised",
    "respond",
    "label_neurons",
    "snn_classify",
    "calibrate_gate",
    "gated_predict",
    "select_classes",
    "accuracy_report",
]


class CNN(eqx.Module):
    """Small LeNet-style CNN: ``(N, 28, 28)`` images in [0, 1] -> logits ``(N, n_classes)``.

    ``features(x)`` is the penultimate ReLU layer, ``(N, n_features)``.
    """

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    fc: eqx.nn.Linear
    head: eqx.nn.Linear
    n_features: int = eqx.field(static=True)
    n_classes: int = eqx.field(static=True)

    def __init__(self, n_classes: int = 10, n_features: int = 64, *, key: PRNGKeyArray):
        for name, v in (("n_classes", n_classes), ("n_features", n_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"CNN.{name} must be a positive integer; got {v!r}")
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(1, 16, 5, key=k1)
        self.conv2 = eqx.nn.Conv2d(16, 32, 5, key=k2)
        self.fc = eqx.nn.Linear(32 * 4 * 4, n_features, key=k3)
        self.head = eqx.nn.Linear(n_features, n_classes, key=k4)
        self.n_features, self.n_classes = int(n_features), int(n_classes)

    def _conv_one(self, x: Float[Array, "28 28"]) -> Float[Array, " 512"]:
        pool = eqx.nn.MaxPool2d(2, 2)
        h = pool(jax.nn.relu(self.conv1(x[None])))
        return pool(jax.nn.relu(self.conv2(h))).reshape(-1)

    def conv_features(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N 512"]:
        """The pooled second convolution's ReLU output, flattened (32 x 4 x 4)."""
        return jax.vmap(self._conv_one)(jnp.asarray(x).reshape(-1, 28, 28))

    def features(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N n_features"]:
        """The penultimate (dense ReLU) layer."""
        return jax.nn.relu(jax.vmap(self.fc)(self.conv_features(x)))

    def __call__(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N n_classes"]:
        return jax.vmap(self.head)(self.features(x))


def _images(x: np.ndarray) -> Array:
    x = np.asarray(x)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    return jnp.asarray(x.reshape(len(x), 28, 28), jnp.float32) * scale


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``classes`` (original labels kept)."""
    m = np.isin(y, np.asarray(classes))
    return x[m], y[m]


def train_cnn(
    train_data: tuple[np.ndarray, np.ndarray],
    classes: Sequence[int],
    *,
    n_features: int = 64,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    **fit_kwargs,
) -> tuple[CNN, dict[str, list[float]]]:
    """Train a :class:`CNN` on the samples of ``classes`` only (Adam, cross-entropy, via
    `memjax.train.fit`). Head output ``k`` is ``classes[k]``. Returns (model, history)."""
    classes = [int(c) for c in classes]
    x, y = select_classes(*train_data, classes)
    remap = np.full(int(max(np.max(train_data[1]), max(classes))) + 1, -1, np.int64)
    remap[classes] = np.arange(len(classes))
    model = CNN(len(classes), n_features, key=jax.random.key(seed))
    return fit(
        model, cross_entropy_loss, optax.adam(learning_rate), (x, remap[y].astype(np.int32)),
        epochs=epochs, batch_size=batch_size, seed=seed, preprocess=_images, **fit_kwargs,
    )


@eqx.filter_jit
def _feat_logits(cnn: CNN, x, which):
    c = cnn.conv_features(x)
    f = jax.nn.relu(jax.vmap(cnn.fc)(c))
    return (c if which == "conv" else f), jax.vmap(cnn.head)(f)


def cnn_features(
    cnn: CNN, x: np.ndarray, which: str = "conv", batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Features (``which="conv"``: the 512 pooled conv features; ``"fc"``: the
    penultimate layer) and head logits of images ``x`` (uint8 or [0, 1]), in batches."""
    if which not in ("conv", "fc"):
        raise ValueError(f"cnn_features: which must be 'conv' or 'fc'; got {which!r}")
    fs, ls = [], []
    for s in range(0, len(x), batch_size):
        f, lg = _feat_logits(cnn, _images(x[s : s + batch_size]), which)
        fs.append(np.asarray(f))
        ls.append(np.asarray(lg))
    return np.concatenate(fs), np.concatenate(ls)


def cnn_predict(logits: np.ndarray, classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Head prediction (original labels) and softmax confidence from ``logits``."""
    p = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
    return np.asarray(classes)[p.argmax(-1)], p.max(-1)


def feature_scale(features: np.ndarray, q: float = 99.0) -> np.ndarray:
    """Per-feature scale: the ``q``-th percentile over ``features`` (1 where it is 0)."""
    s = np.percentile(features, q, axis=0)
    return np.where(s > 0, s, 1.0).astype(np.float32)


def encode_features(
    features: np.ndarray, scale: np.ndarray | None = None, gain: float = 4.0
) -> np.ndarray:
    """Spike intensities for the spiking layer: ``clip(f / scale, 0, 1)`` with a
    per-feature ``scale`` (`feature_scale`), or, with ``scale=None``, per-sample L2
    normalisation ``clip(gain f / ||f||_2, 0, 1)`` (the default in the benchmarks: it
    makes the winner-take-all competition compare patterns rather than magnitudes)."""
    f = np.asarray(features, np.float32)
    if scale is None:
        x = gain * f / (np.linalg.norm(f, axis=-1, keepdims=True) + 1e-12)
    else:
        x = f / scale
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def learn_unsupervised(
    layer: WTALayer, state: WTAState, x: np.ndarray, key: PRNGKeyArray, chunk: int = 5000
) -> tuple[WTAState, dict[str, np.ndarray]]:
    """Online STDP learning over the encoded samples ``x`` in order (chunks of ``chunk``
    samples per compiled call, same result as one call up to the key split)."""
    outs = []
    for i, s in enumerate(range(0, len(x), chunk)):
        state, out = wta_learn(layer, state, jnp.asarray(x[s : s + chunk]), jax.random.fold_in(key, i))
        outs.append(jax.tree_util.tree_map(np.asarray, out))
    return state, {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def respond(
    layer: WTALayer, state: WTAState, x: np.ndarray, key: PRNGKeyArray, batch_size: int = 2000
) -> dict[str, np.ndarray]:
    """Spiking-layer responses (``counts``, ``first``, ``drive``, ``spikes``) in batches."""
    outs = []
    for i, s in enumerate(range(0, len(x), batch_size)):
        out = wta_respond(layer, state, jnp.asarray(x[s : s + batch_size]), jax.random.fold_in(key, i))
        outs.append(jax.tree_util.tree_map(np.asarray, out))
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def label_neurons(counts: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Label of each neuron: the class with the largest mean spike count over the
    labelled samples of that class (-1 for a neuron that never fired)."""
    counts, labels = np.asarray(counts, np.float64), np.asarray(labels)
    mean = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        m = labels == c
        if m.any():
            mean[c] = counts[m].mean(0)
    lab = mean.argmax(0)
    return np.where(mean.max(0) > 0, lab, -1)


def snn_classify(counts: np.ndarray, drive: np.ndarray, neuron_labels: np.ndarray) -> np.ndarray:
    """Class of the winning neuron: most spikes, ties (and silent samples) broken by the
    summed input current relative to its maximum; unlabelled neurons are ignored."""
    score = np.asarray(counts, np.float64) + 1e-3 * drive / (np.max(drive, -1, keepdims=True) + 1e-12)
    score = np.where(np.asarray(neuron_labels)[None] >= 0, score, -np.inf)
    return np.asarray(neuron_labels)[score.argmax(-1)]


def calibrate_gate(
    snn_pred: np.ndarray, confidence: np.ndarray, new_classes: Sequence[int],
    max_false_route: float = 0.005,
) -> float:
    """Largest gate ``c`` such that at most ``max_false_route`` of these *trained-class*
    samples are routed away from the head (spiking layer says new and confidence < c)."""
    new = np.isin(snn_pred, np.asarray(new_classes))
    conf = np.sort(confidence[new])
    k = int(np.floor(max_false_route * len(snn_pred)))
    if k >= len(conf):
        return 1.0 + 1e-6
    return float(conf[k])


def gated_predict(
    head_pred: np.ndarray, confidence: np.ndarray, snn_pred: np.ndarray,
    new_classes: Sequence[int], gate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Final class: the spiking layer's where it names a new class and the head's
    confidence is below ``gate``, else the head's. Returns (prediction, routed mask)."""
    routed = np.isin(snn_pred, np.asarray(new_classes)) & (confidence < gate)
    return np.where(routed, snn_pred, head_pred), routed


def accuracy_report(pred: np.ndarray, y: np.ndarray, groups: dict[str, Sequence[int]]) -> dict[str, Any]:
    """Accuracy overall, per group of classes and per class."""
    out = {"all": float(np.mean(pred == y))}
    for name, cl in groups.items():
        m = np.isin(y, np.asarray(cl))
        out[name] = float(np.mean(pred[m] == y[m])) if m.any() else float("nan")
    out["per_class"] = {int(c): float(np.mean(pred[y == c] == c)) for c in np.unique(y)}
    return out
