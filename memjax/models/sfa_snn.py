"""CNN + memristive spiking layer that learns classes it was never trained on
(Muñoz-Martín et al., "A SiOx RRAM-based hardware with spike frequency adaptation for
power-saving continual learning in convolutional neural networks", VLSI Technology 2020).
Layer sizes, coding and the gate are the project's choices (the paper gives none); see
docs/sfa.md.

Pipeline:

1. :class:`CNN` (conv 5x5 x16, max-pool 2, conv 5x5 x32, max-pool 2, dense ``n_features``
   ReLU, dense head) trained with labels on the *trained classes* only
   (:func:`memjax.recipes.train_cnn`), then frozen.
2. Its features (:func:`cnn_features`: by default the 512 pooled features of the second
   convolution, or the penultimate ReLU layer), divided per feature by a scale fixed on the trained
   classes' training features (the 99th percentile) and clipped to [0, 1]
   (:func:`encode_features`), are rate coded into a :class:`~memjax.models.wta.WTALayer`
   of adaptive LIF neurons with STDP RRAM synapses, several redundant neurons per class,
   which learns from an *unlabelled* stream of images of all classes
   (:func:`learn_unsupervised`).
3. Each neuron is labelled with the class it responds to most (spike counts, normalised
   by class size) on a small labelled set (:func:`label_neurons`); the spiking layer's
   class is the label of the neuron with most spikes (ties broken by the summed input
   current) (:func:`snn_classify`).
4. **Novelty gate** (:class:`NoveltyGate`, the benchmarks' gate): one linear "novelty
   neuron" ``s(x) = w . x + b`` on the same encoded features ``x`` that drive the
   spiking layer (one extra crossbar column), or a hidden layer of ReLU novelty
   neurons read by one more column, ``s(x) = w . relu(x W_h + b_h) + b``. It is fitted
   (:func:`fit_novelty_gate`, logistic regression) to tell the *trained-class* training
   images (class 0) from the
   *unlabelled* stream (class 1): positive-unlabelled learning, whose optimum is
   monotone in the density ratio ``p_stream(x) / p_trained(x)``, i.e. in the
   probability that ``x`` is from a class the CNN never saw. No new-class label is
   used. Its threshold is calibrated on held-out trained-class images only
   (:func:`calibrate_novelty_gate`): at most ``max_false_route`` of them are routed
   away from the head. Optionally the gate is fitted again against only the stream
   images it routes (:func:`refit_novelty_gate`) and recalibrated. Routed inputs
   (:func:`route`) are answered by the spiking layer's winner among the neurons
   labelled with a new class; the others by the frozen head. With ``filter_stream``
   the spiking layer learns only the stream images the gate routes
   (:func:`learn_unsupervised` on them).

   The trained-class pathway (CNN, head) is never changed by unsupervised learning,
   so a trained-class image is answered exactly as before unless the gate routes it
   (bounded by ``max_false_route`` on the calibration set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_int
from ..data.encoding import scale_images
from .wta import WTALayer, WTAState, wta_learn, wta_respond

__all__ = [
    "CNN",
    "cnn_features",
    "cnn_predict",
    "feature_scale",
    "encode_features",
    "learn_unsupervised",
    "respond",
    "label_neurons",
    "snn_classify",
    "select_classes",
    "accuracy_report",
    "NoveltyGate",
    "fit_novelty_gate",
    "calibrate_novelty_gate",
    "refit_novelty_gate",
    "route",
    "mahalanobis_score",
]


class CNN(eqx.Module):
    """Small LeNet-style CNN: ``(N, 28, 28)`` images in [0, 1] -> logits ``(N, n_classes)``.

    conv 5x5 (``channels[0]``) - ReLU - max-pool 2 - conv 5x5 (``channels[1]``) - ReLU -
    max-pool 2 - dense ``n_features`` - ReLU - dense ``n_classes``; ``features(x)`` is the
    penultimate ReLU layer, ``(N, n_features)``.
    """

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    fc: eqx.nn.Linear
    head: eqx.nn.Linear
    n_features: int = eqx.field(static=True)
    n_classes: int = eqx.field(static=True)

    def __init__(
        self,
        n_classes: int = 10,
        n_features: int = 64,
        channels: tuple[int, int] = (16, 32),
        *,
        key: PRNGKeyArray,
    ):
        for name, v in (("n_classes", n_classes), ("n_features", n_features)):
            check_int(f"CNN.{name}", v, 1)
        if len(channels) != 2:
            raise ValueError(f"CNN.channels must be two ints; got {channels!r}")
        for i, c in enumerate(channels):
            check_int(f"CNN.channels[{i}]", c, 1)
        c1, c2 = (int(c) for c in channels)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(1, c1, 5, key=k1)
        self.conv2 = eqx.nn.Conv2d(c1, c2, 5, key=k2)
        self.fc = eqx.nn.Linear(c2 * 4 * 4, n_features, key=k3)
        self.head = eqx.nn.Linear(n_features, n_classes, key=k4)
        self.n_features, self.n_classes = int(n_features), int(n_classes)

    def _conv_one(self, x: Float[Array, "28 28"]) -> Float[Array, " n_conv"]:
        pool = eqx.nn.MaxPool2d(2, 2)
        h = pool(jax.nn.relu(self.conv1(x[None])))
        return pool(jax.nn.relu(self.conv2(h))).reshape(-1)

    def conv_features(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N n_conv"]:
        """The pooled second convolution's ReLU output, flattened (``channels[1] x 4 x
        4``: 512 with the default channels)."""
        return jax.vmap(self._conv_one)(jnp.asarray(x).reshape(-1, 28, 28))

    def features(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N n_features"]:
        """The penultimate (dense ReLU) layer."""
        return jax.nn.relu(jax.vmap(self.fc)(self.conv_features(x)))

    def __call__(self, x: Float[Array, "N 28 28"]) -> Float[Array, "N n_classes"]:
        return jax.vmap(self.head)(self.features(x))


def _images(x: np.ndarray) -> Array:
    """Images ``(N, 28, 28)`` or ``(N, 784)`` as float32 ``(N, 28, 28)`` in [0, 1]
    (:func:`memjax.data.scale_images`)."""
    return jnp.asarray(scale_images(x, owner="CNN").reshape(len(x), 28, 28))


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``classes`` (original labels kept)."""
    m = np.isin(y, np.asarray(classes))
    return x[m], y[m]


@eqx.filter_jit
def _feat_logits(cnn: CNN, x, which):
    c = cnn.conv_features(x)
    f = jax.nn.relu(jax.vmap(cnn.fc)(c))
    return (c if which == "conv" else f), jax.vmap(cnn.head)(f)


def cnn_features(
    cnn: CNN, x: np.ndarray, which: str = "conv", batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Features (``which="conv"``: the 512 pooled conv features; ``"fc"``: the
    penultimate layer) and head logits of images ``x``, in batches. ``x``: uint8
    (0..255, divided by 255) or floats in [0, 1]; float images outside [0, 1] raise
    ``ValueError``."""
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
        state, out = wta_learn(
            layer, state, jnp.asarray(x[s : s + chunk]), jax.random.fold_in(key, i)
        )
        outs.append(jax.tree_util.tree_map(np.asarray, out))
    return state, {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def respond(
    layer: WTALayer, state: WTAState, x: np.ndarray, key: PRNGKeyArray, batch_size: int = 2000
) -> dict[str, np.ndarray]:
    """Spiking-layer responses (``counts``, ``first``, ``drive``, ``spikes``) in batches."""
    outs = []
    for i, s in enumerate(range(0, len(x), batch_size)):
        out = wta_respond(
            layer, state, jnp.asarray(x[s : s + batch_size]), jax.random.fold_in(key, i)
        )
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
    score = np.asarray(counts, np.float64) + 1e-3 * drive / (
        np.max(drive, -1, keepdims=True) + 1e-12
    )
    score = np.where(np.asarray(neuron_labels)[None] >= 0, score, -np.inf)
    return np.asarray(neuron_labels)[score.argmax(-1)]


class NoveltyGate(eqx.Module):
    """Novelty neurons: ``x`` is routed to the spiking layer iff ``s(x) > threshold``,
    with ``s(x) = w . x + b`` (one novelty neuron, ``W_h`` empty) or
    ``s(x) = w . relu(x W_h + b_h) + b`` (a hidden layer of novelty neurons, one
    crossbar of ``n_hidden`` columns, read by one more column). See the module
    docstring.

    **Fields:** `w` (``(n_hidden,)`` or ``(n_in,)`` output weights), `b` (bias),
    `threshold` (routing threshold; ``+inf`` routes nothing, before
    :func:`calibrate_novelty_gate`), `W_h` (``(n_in, n_hidden)`` hidden weights, or
    ``(n_in, 0)`` for the linear gate), `b_h` (``(n_hidden,)`` hidden biases).
    """

    w: Float[Array, " n"]
    b: Float[Array, ""]
    threshold: Float[Array, ""]
    W_h: Float[Array, "n_in n_hidden"] | None = None
    b_h: Float[Array, " n_hidden"] | None = None

    def __check_init__(self):
        if jnp.ndim(self.w) != 1:
            raise ValueError(f"NoveltyGate.w must be 1-D; got shape {jnp.shape(self.w)}")
        if (self.W_h is None) != (self.b_h is None):
            raise ValueError("NoveltyGate: W_h and b_h must be given together")
        if self.W_h is not None and self.b_h is not None:
            sw, sh, sb = jnp.shape(self.w), jnp.shape(self.W_h), jnp.shape(self.b_h)
            if len(sh) != 2 or sh[1] != sw[0] or sb != sw:
                raise ValueError(
                    f"NoveltyGate: W_h must be (n_in, n_hidden) and b_h, w (n_hidden,); "
                    f"got {sh}, {sb}, {sw}"
                )

    def score(self, x: Float[Array, "N n_in"]) -> np.ndarray:
        """``s(x)`` per sample (numpy)."""
        h = np.asarray(x, np.float32)
        if self.W_h is not None:
            h = np.maximum(h @ np.asarray(self.W_h) + np.asarray(self.b_h), 0.0)
        return h @ np.asarray(self.w) + float(self.b)

    def __call__(self, x: Float[Array, "N n_in"]) -> np.ndarray:
        """Routed mask: ``score(x) > threshold``."""
        return self.score(x) > float(self.threshold)


def _gate_score(p, x):
    h = x if p[2] is None else jax.nn.relu(x @ p[2] + p[3][None])
    return h @ p[0] + p[1]


def fit_novelty_gate(
    x_trained: Float[Array, "Nt n_in"],
    x_stream: Float[Array, "Ns n_in"],
    *,
    steps: int = 300,
    learning_rate: float = 0.05,
    l2: float = 1e-4,
    hidden: int = 0,
    batch_size: int | None = None,
    key: PRNGKeyArray | None = None,
) -> NoveltyGate:
    """Logistic regression (Adam, ``l2`` penalty on the weights), trained-class samples
    labelled 0 and unlabelled stream samples 1, the two sets weighted equally.

    ``hidden`` > 0 adds a hidden layer of ``hidden`` ReLU novelty neurons (weights drawn
    from ``key``, scaled ``1/sqrt(n_in)``; output weights start at 0). ``batch_size``:
    samples drawn from each set per step (``None``: full batch).

    ``x_stream`` may contain trained-class samples (it is unlabelled): the fitted score
    is still monotone in the density ratio ``p_stream / p_trained`` (positive-unlabelled
    learning; Elkan & Noto, KDD 2008), which is all the gate needs. Threshold ``+inf``
    (calibrate with :func:`calibrate_novelty_gate`)."""
    check_int("fit_novelty_gate: steps", steps, 1)
    check_int("fit_novelty_gate: hidden", hidden, 0)
    if batch_size is not None:
        check_int("fit_novelty_gate: batch_size", batch_size, 1)
    xt = jnp.asarray(x_trained, jnp.float32)
    xs = jnp.asarray(x_stream, jnp.float32)
    if xt.ndim != 2 or xs.ndim != 2 or xt.shape[1] != xs.shape[1]:
        raise ValueError(
            f"fit_novelty_gate: x_trained and x_stream must be (N, n_in) with the same n_in; "
            f"got {xt.shape} and {xs.shape}"
        )
    key = jax.random.key(0) if key is None else key
    n_in = xt.shape[1]
    p0: tuple[Array, Array, Array | None, Array | None]
    if hidden:
        k_w, key = jax.random.split(key)
        W = jax.random.normal(k_w, (n_in, hidden)) / np.sqrt(n_in)
        p0 = (jnp.zeros(hidden), jnp.zeros(()), W, jnp.zeros(hidden))
    else:
        p0 = (jnp.zeros(n_in), jnp.zeros(()), None, None)

    def loss(p, bt, bs):
        lt = optax.sigmoid_binary_cross_entropy(_gate_score(p, bt), jnp.zeros(bt.shape[0]))
        ls = optax.sigmoid_binary_cross_entropy(_gate_score(p, bs), jnp.ones(bs.shape[0]))
        pen = jnp.sum(p[0] ** 2) + (0.0 if p[2] is None else jnp.sum(p[2] ** 2))
        return 0.5 * (lt.mean() + ls.mean()) + l2 * pen

    opt = optax.adam(learning_rate)

    @jax.jit
    def run(p, key):
        def body(carry, k):
            p, s = carry
            if batch_size is None:
                bt, bs = xt, xs
            else:
                k1, k2 = jax.random.split(k)
                bt = xt[jax.random.randint(k1, (batch_size,), 0, xt.shape[0])]
                bs = xs[jax.random.randint(k2, (batch_size,), 0, xs.shape[0])]
            u, s = opt.update(jax.grad(loss)(p, bt, bs), s)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), jax.random.split(key, steps))
        return p

    w, b, W_h, b_h = run(p0, key)
    return NoveltyGate(w=w, b=b, threshold=jnp.asarray(jnp.inf), W_h=W_h, b_h=b_h)


def calibrate_novelty_gate(
    gate: NoveltyGate, x_trained_val: Float[Array, "N n_in"], max_false_route: float = 0.005
) -> NoveltyGate:
    """The gate with the smallest threshold that routes at most ``max_false_route`` of
    the held-out *trained-class* samples ``x_trained_val`` (the ``k``-th largest score,
    ``k = floor(max_false_route N) + 1``)."""
    if not 0.0 <= max_false_route < 1.0:
        raise ValueError(
            f"calibrate_novelty_gate: max_false_route must be in [0, 1); got {max_false_route}"
        )
    s = np.sort(gate.score(x_trained_val))[::-1]
    k = int(np.floor(max_false_route * len(s)))
    return dataclasses.replace(gate, threshold=jnp.asarray(s[k], jnp.float32))


def refit_novelty_gate(
    gate: NoveltyGate,
    x_trained: Float[Array, "Nt n_in"],
    x_stream: Float[Array, "Ns n_in"],
    **fit_kwargs: Any,
) -> NoveltyGate:
    """One self-training step of the gate: a new gate fitted
    (:func:`fit_novelty_gate` with ``fit_kwargs``) to tell the trained-class samples
    ``x_trained`` from the stream samples that the calibrated ``gate`` routes, instead of
    from the whole stream.

    The routed samples are mostly of new classes, so the second fit sees cleaner
    positives than the unlabelled stream (two-step positive-unlabelled learning: fit,
    keep the reliable positives, fit again; Liu et al., ICML 2002; Bekker & Davis,
    Machine Learning 2020). Still no new-class label is used. Threshold ``+inf``
    (calibrate again with :func:`calibrate_novelty_gate`)."""
    if not bool(jnp.isfinite(gate.threshold)):
        raise ValueError(
            "refit_novelty_gate: gate.threshold must be finite (calibrate the gate with "
            "calibrate_novelty_gate first)"
        )
    routed = gate(x_stream)
    if not routed.any():
        raise ValueError("refit_novelty_gate: the gate routes none of x_stream; nothing to fit")
    return fit_novelty_gate(x_trained, np.asarray(x_stream)[routed], **fit_kwargs)


def route(head_pred: np.ndarray, snn_pred: np.ndarray, routed: np.ndarray) -> np.ndarray:
    """Final class: the spiking layer's where ``routed``, else the frozen head's."""
    return np.where(np.asarray(routed), np.asarray(snn_pred), np.asarray(head_pred))


def mahalanobis_score(features: np.ndarray, labels: np.ndarray, eps: float = 1e-4) -> Any:
    """Label-free novelty score from trained-class data only (Lee et al., NeurIPS 2018):
    class means and one shared covariance (ridge ``eps`` x mean variance) fitted on
    ``features`` of the trained classes with their ``labels``; returns ``score(f)`` =
    the smallest squared Mahalanobis distance to a class mean (larger = more novel).
    Used as a comparison for :class:`NoveltyGate`."""
    f = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    cls = np.unique(labels)
    mus = np.stack([f[labels == c].mean(0) for c in cls])
    xc = f - mus[np.searchsorted(cls, labels)]
    cov = xc.T @ xc / len(xc)
    prec = np.linalg.inv(cov + eps * np.trace(cov) / len(cov) * np.eye(len(cov)))

    def score(q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.float64)
        d = [np.einsum("ij,jk,ik->i", q - m, prec, q - m) for m in mus]
        return np.min(np.stack(d, 1), 1)

    return score


def accuracy_report(
    pred: np.ndarray, y: np.ndarray, groups: dict[str, Sequence[int]]
) -> dict[str, Any]:
    """Accuracy overall, per group of classes and per class."""
    out: dict[str, Any] = {"all": float(np.mean(pred == y))}
    for name, cl in groups.items():
        m = np.isin(y, np.asarray(cl))
        out[name] = float(np.mean(pred[m] == y[m])) if m.any() else float("nan")
    out["per_class"] = {int(c): float(np.mean(pred[y == c] == c)) for c in np.unique(y)}
    return out
