"""Development probe: the SFA pipeline's WTA layer under varied settings, on the
validation split of the training images (the test set is never loaded).

One CNN (trained classes 0-4, the first 50,000 training images) and one novelty gate
(benchmark settings) per invocation; then, for each variant, one layer learned on the
routed 20,000-image stream, named on 50 labelled validation images per new class and
scored on the other half of the validation images. Prints and writes one JSON line per
variant: the layer's accuracy on routed new-class images read out by the winning neuron
(``winner``) or by the largest summed input current (``drive``), ``acc_all`` with the
winner readout, the number of named neurons and the spikes per routed image.

    python tools/sfa_layer_probe.py --dataset mnist --channels 16,32 \\
        --variant "" --variant "neurons_per_class=40" --variant "passes=2" --out probe.jsonl

A variant is ``key=value`` pairs separated by commas: keys of ``benchmarks.sfa.LAYER``
or ``benchmarks.sfa.Settings`` (numbers), ``passes`` (passes over the stream),
``stdp_bounds`` (``hard`` or ``soft``: :class:`memjax.learning.stdp.STDP`'s ``bounds``),
``normalize`` (``l1`` or ``l2``: :class:`memjax.models.wta.WTALayer`'s column
normalisation), ``layer_init`` (``random`` or ``imprint``) or ``read_offsets``
(``True`` or ``False``), as in :func:`benchmarks.sfa.learn_layer`.

``--gate`` sets the novelty gate's settings (keys of ``benchmarks.sfa.LAYER`` such as
``gate_refits``, ``gate_steps``, ``gate_lr``, ``max_false_route``), the same way.

``--references`` adds one line before the variants: float references on the same data
(k-means with the layer's neuron count, nearest labelled mean or image, a linear probe
trained with every label) and the spiking layer with the k-means centroids programmed
into its synapses instead of learned (:func:`references`): what the features allow.

``--contrastive pre:N`` replaces the CNN's training by N epochs of SimCLR (NT-Xent,
temperature 0.5, batch 256, two augmented views: shift up to 3 px, a 10 x 10 cutout
with probability 1/2, Gaussian pixel noise 0.1) of the convolutional trunk through a
512-128-64 projection head, on the trained classes' images without their labels, then
3 epochs of cross-entropy on the dense layers with the trunk frozen. ``joint:N:LAM``
trains N epochs of cross-entropy plus ``LAM`` times NT-Xent end to end (``LAM = 0``
is the control of this training loop). Used for the layer scan in
docs/dev-notes/sfa.md; not part of the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sfa as S  # noqa: E402
from benchmarks._context import Context  # noqa: E402
from memjax.data import augment_images  # noqa: E402
from memjax.losses import nt_xent  # noqa: E402
from memjax.models import sfa_snn as M  # noqa: E402
from memjax.models.wta import wta_imprint  # noqa: E402
from memjax.recipes import train_cnn  # noqa: E402

TRAINED, NEW = list(range(5)), list(range(5, 10))


def contrastive_spec(spec: str) -> tuple[str, int, float]:
    """``pre:N`` or ``joint:N:LAM`` (module docstring) as ``(mode, epochs, lam)``."""
    parts = spec.split(":")
    try:
        if parts[0] == "pre" and len(parts) == 2:
            mode, epochs, lam = "pre", int(parts[1]), 0.0
        elif parts[0] == "joint" and len(parts) == 3:
            mode, epochs, lam = "joint", int(parts[1]), float(parts[2])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--contrastive must be pre:EPOCHS or joint:EPOCHS:LAM; got {spec!r}"
        ) from None
    if epochs < 1 or not lam >= 0:
        raise ValueError(f"--contrastive needs EPOCHS >= 1 and LAM >= 0; got {spec!r}")
    return mode, epochs, lam


def train_contrastive(train, classes, spec, channels, seed=0, batch_size=256):
    """The CNN trained with a contrastive objective (``spec``: :func:`contrastive_spec`,
    module docstring) on the images of ``classes`` only."""
    mode, epochs, lam = spec
    x, y = M.select_classes(*train, classes)
    xs = np.asarray(M._images(x))
    remap = np.full(10, -1)
    remap[list(classes)] = np.arange(len(classes))
    ys = remap[y].astype(np.int32)
    k1, k2 = jax.random.split(jax.random.key(seed))
    model = (
        M.CNN(len(classes), 64, channels, key=k1),
        eqx.nn.MLP(channels[1] * 16, 64, 128, 1, key=k2),
    )

    def loss(model, x, y, key, phase):
        cnn, proj = model
        ka, kb = jax.random.split(key)
        if phase == "head":
            f = jax.lax.stop_gradient(cnn.conv_features(x))
            nt = 0.0
        else:
            za, zb = (jax.vmap(proj)(cnn.conv_features(augment_images(k, x))) for k in (ka, kb))
            nt = nt_xent(za, zb)
            if phase == "nt":
                return nt
            f = cnn.conv_features(x)
        logits = jax.vmap(cnn.head)(jax.nn.relu(jax.vmap(cnn.fc)(f)))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean() + lam * nt

    opt = optax.adam(1e-3)
    phases = [("joint", epochs)] if mode == "joint" else [("nt", epochs), ("head", 3)]
    rng, key = np.random.default_rng(seed), jax.random.key(seed + 1)
    for phase, n_epochs in phases:
        state = opt.init(eqx.filter(model, eqx.is_array))

        @eqx.filter_jit
        def step(model, state, x, y, key, phase=phase):
            val, g = eqx.filter_value_and_grad(loss)(model, x, y, key, phase)
            u, state = opt.update(g, state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, u), state, val

        for ep in range(n_epochs):
            order = rng.permutation(len(xs))
            for i in range(0, len(xs) - batch_size + 1, batch_size):
                b = order[i : i + batch_size]
                key, sk = jax.random.split(key)
                model, state, val = step(model, state, jnp.asarray(xs[b]), jnp.asarray(ys[b]), sk)
            print(f"{phase} epoch {ep + 1}/{n_epochs}: loss {float(val):.4f}", flush=True)
    return model[0]


def gate_config(ctx: Context, gate: str = "") -> dict:
    """The validation-split settings (20,000-image stream) with the gate settings
    ``gate`` (``key=value`` pairs separated by commas)."""
    cfg = S._config(ctx, split="validation", n_stream=20000)
    cfg.update({k: _setting(k, v) for k, v in (kv.split("=") for kv in gate.split(",") if kv)})
    for k in ("gate_steps", "gate_refits", "gate_hidden", "gate_batch", "gate_seed"):
        cfg[k] = int(cfg[k])
    return cfg


def encoded(
    ctx: Context,
    dataset: str,
    channels: tuple[int, int],
    contrastive: tuple[str, int, float] | None = None,
    noise: float = 0.0,
    cnn_epochs: int | None = None,
) -> dict:
    """The CNN trained on the trained classes (``cnn_epochs``: the benchmarks' 3 unless
    given) and the encoded features of the training, validation and scored images
    (``e_tr``, ``e_va``, ``e_te``), their labels, the stream's indices and the head's
    answers on the scored images."""
    cfg = gate_config(ctx)
    if cnn_epochs is not None:
        cfg["cnn_epochs"] = cnn_epochs
    train, val, test = S._load(ctx, dataset, cfg, noise)
    if contrastive:
        cnn = train_contrastive(train, TRAINED, contrastive, channels)
    else:
        cnn, _ = train_cnn(
            train, TRAINED, epochs=cfg["cnn_epochs"], channels=channels, seed=0, progress=False
        )
    (f_tr, _), (f_va, _), (f_te, l_te) = (
        M.cnn_features(cnn, x) for x in (train[0], val[0], test[0])
    )
    scale = M.feature_scale(f_tr[np.isin(train[1], TRAINED)])
    e_tr, e_va, e_te = (M.encode_features(f, scale) for f in (f_tr, f_va, f_te))
    return dict(
        e_tr=e_tr,
        e_va=e_va,
        e_te=e_te,
        y_tr=train[1],
        y_va=val[1],
        y_te=test[1],
        stream=np.random.default_rng(ctx.seed).permutation(len(e_tr))[: cfg["n_stream"]],
        head_te=M.cnn_predict(l_te, TRAINED)[0],
    )


def gate_routing(cfg: dict, d: dict) -> tuple:
    """The novelty gate of settings ``cfg`` on the features ``d`` (:func:`encoded`):
    the stream images it routes and its routing of the scored images."""
    tm_tr = np.isin(d["y_tr"], TRAINED)
    e_tr, stream = d["e_tr"], d["stream"]
    g = S.novelty_gate(cfg, e_tr[tm_tr], e_tr[stream], d["e_va"][np.isin(d["y_va"], TRAINED)])
    return np.asarray(g(e_tr[stream])), g(d["e_te"])


def prepare(
    ctx: Context,
    dataset: str,
    channels: tuple[int, int],
    contrastive: tuple[str, int, float] | None = None,
    noise: float = 0.0,
    gate: str = "",
    cnn_epochs: int | None = None,
) -> dict:
    d = encoded(ctx, dataset, channels, contrastive, noise, cnn_epochs)
    to_layer, routed = gate_routing(gate_config(ctx, gate), d)
    tm_te = np.isin(d["y_te"], TRAINED)
    head_te = d["head_te"]
    return dict(
        e_tr=d["e_tr"],
        e_va=d["e_va"],
        e_te=d["e_te"],
        y_va=d["y_va"],
        y_te=d["y_te"],
        x_stream=d["e_tr"][d["stream"]][to_layer],
        y_stream=d["y_tr"][d["stream"]][to_layer],
        routed=routed,
        head_te=head_te,
        head_acc_trained=float(np.mean(head_te[tm_te] == d["y_te"][tm_te])),
        gate_routed_new=float(routed[~tm_te].mean()),
        gate_routed_trained=float(routed[tm_te].mean()),
    )


def _named_response(layer, state, x_lab, y_lab, x, key) -> tuple:
    """Neuron names from the labelled images (new classes only, others -1) and the
    layer's responses to ``x``."""
    nl = M.label_neurons(
        M.respond(layer, state, x_lab, jax.random.fold_in(key, 2))["counts"], y_lab
    )
    return np.where(np.isin(nl, NEW), nl, -1), M.respond(
        layer, state, x, jax.random.fold_in(key, 3)
    )


def _setting(key: str, value: str):
    """A variant's value: text for the layer's string settings, a bool for
    ``read_offsets``, else a number."""
    if key in ("stdp_bounds", "normalize", "layer_init"):
        return value
    if key == "read_offsets":
        if value not in ("True", "False"):
            raise ValueError(f"read_offsets must be True or False; got {value!r}")
        return value == "True"
    return float(value)


def probe(ctx: Context, d: dict, variant: str) -> dict:
    over = dict(kv.split("=") for kv in variant.split(",") if kv)
    passes = int(over.pop("passes", 1))
    cfg = S._config(ctx, split="validation")
    cfg.update({k: _setting(k, v) for k, v in over.items()})
    x = d["x_stream"]
    x = np.concatenate(
        [x] + [x[np.random.default_rng(p).permutation(len(x))] for p in range(1, passes)]
    )
    n_out = int(cfg["neurons_per_class"]) * len(NEW)
    cfg["n_steps"] = int(cfg["n_steps"])
    cfg["n_levels"] = int(cfg["n_levels"])
    layer = S._layer(
        cfg, x.shape[1], n_out, float(d["e_tr"].mean() * cfg["p_in"]), cfg["beta_factor"] > 0
    )
    key = jax.random.key(ctx.seed)
    _, st, _, learn_s = S.learn_layer(cfg, layer, x, key)
    y_va, y_te, routed = d["y_va"], d["y_te"], d["routed"]
    lab = np.concatenate([np.flatnonzero(y_va == c)[:50] for c in NEW])
    nl, r = _named_response(layer, st, d["e_va"][lab], y_va[lab], d["e_te"][routed], key)
    new_r = ~np.isin(y_te[routed], TRAINED)
    win = M.snn_classify(r["counts"], r["drive"], nl)
    drv = M.snn_classify(0 * r["counts"], r["drive"], nl)
    snn = np.full(len(y_te), -1)
    snn[routed] = win
    return dict(
        variant=variant,
        winner=float(np.mean(win[new_r] == y_te[routed][new_r])),
        drive=float(np.mean(drv[new_r] == y_te[routed][new_r])),
        acc_all=float(np.mean(M.route(d["head_te"], snn, routed) == y_te)),
        neurons_named=int((nl >= 0).sum()),
        spikes_per_routed=float(r["spikes"].mean()),
        stream_size=int(len(x)),
        learn_s=learn_s,
    )


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns the ``(k, n)`` centroids."""
    rng = np.random.default_rng(seed)
    c = [x[rng.integers(len(x))]]
    d2 = ((x - c[0]) ** 2).sum(1)
    for _ in range(k - 1):
        c.append(x[rng.choice(len(x), p=d2 / d2.sum())])
        d2 = np.minimum(d2, ((x - c[-1]) ** 2).sum(1))
    cen = np.stack(c)
    for _ in range(iters):
        a = _nearest(x, cen)
        cen = np.stack([x[a == j].mean(0) if (a == j).any() else cen[j] for j in range(k)])
    return cen


def _nearest(x: np.ndarray, cen: np.ndarray) -> np.ndarray:
    return ((x**2).sum(1)[:, None] - 2 * x @ cen.T + (cen**2).sum(1)[None]).argmin(1)


def references(ctx: Context, d: dict, n_clusters: int, seed: int = 0) -> dict:
    """What the features allow: float references on the layer's data, and the spiking
    layer with ideal templates.

    Same stream, labelled set and scored images as :func:`probe`. ``kmeans`` and
    ``kmeans_cosine``: k-means (on the intensities, or on unit-normalised ones) with
    the layer's number of neurons, each cluster named by the majority class of the
    labelled images nearest to it; ``kmeans_dot_l1`` and ``kmeans_dot_l2``: the
    k-means centroids read as the layer reads its columns (``x . c / sum c`` and the
    cosine ``x . c / |c|``); ``nearest_mean`` and ``nearest_1``: the nearest labelled
    class mean or labelled image (cosine); ``linear_probe``: softmax regression on the
    routed stream with its true labels (every image labelled, an upper bound that the
    label-free layer is not allowed). ``templates_{l1,l2}_{sfa,nosfa}``: the spiking
    layer (benchmark settings, column normalisation ``l1`` or ``l2``, SFA on or off)
    with the k-means centroids programmed into its 16-level synapses instead of
    learned by STDP (scaled by their largest value, rounded to the levels), named and
    read out as in :func:`probe` (winning neuron).
    """
    y_va, y_te, routed = d["y_va"], d["y_te"], d["routed"]
    lab = np.concatenate([np.flatnonzero(y_va == c)[:50] for c in NEW])
    xl, yl = d["e_va"][lab], y_va[lab]
    xs, ys = d["e_te"][routed], y_te[routed]
    new = np.isin(ys, NEW)
    xs, ys = xs[new], ys[new]
    x = d["x_stream"]

    def unit(v):
        return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)

    def named_read(score):
        al = score(xl).argmax(1)
        names = np.full(n_clusters, -1)
        for j in range(n_clusters):
            if (al == j).any():
                names[j] = np.bincount(yl[al == j]).argmax()
        s = np.where(names[None] >= 0, score(xs), -np.inf)
        return float(np.mean(names[s.argmax(1)] == ys))

    cen = _kmeans(x, n_clusters, seed)
    cen_u = _kmeans(unit(x), n_clusters, seed)
    out = {
        "kmeans": named_read(lambda v: v @ cen.T - 0.5 * (cen**2).sum(1)),
        "kmeans_cosine": named_read(lambda v: unit(v) @ cen_u.T - 0.5 * (cen_u**2).sum(1)),
        "kmeans_dot_l1": named_read(lambda v: v @ cen.T / cen.sum(1)),
        "kmeans_dot_l2": named_read(lambda v: v @ unit(cen).T),
    }
    means = np.stack([unit(xl[yl == c]).mean(0) for c in NEW])
    out["nearest_mean"] = float(np.mean(np.array(NEW)[(unit(xs) @ unit(means).T).argmax(1)] == ys))
    out["nearest_1"] = float(np.mean(yl[(unit(xs) @ unit(xl).T).argmax(1)] == ys))
    keep = np.isin(d["y_stream"], NEW)
    xp, yp = jnp.asarray(x[keep]), jnp.asarray(d["y_stream"][keep] - NEW[0])
    w = (jnp.zeros((x.shape[1], len(NEW))), jnp.zeros(len(NEW)))
    opt = optax.adam(1e-2)
    st = opt.init(w)

    def ce(w):
        return optax.softmax_cross_entropy_with_integer_labels(xp @ w[0] + w[1], yp).mean()

    @jax.jit
    def step(w, st):
        u, st = opt.update(jax.grad(ce)(w), st)
        return optax.apply_updates(w, u), st

    for _ in range(2000):
        w, st = step(w, st)
    pred = np.asarray(jnp.argmax(jnp.asarray(xs) @ w[0] + w[1], 1)) + NEW[0]
    out["linear_probe"] = float(np.mean(pred == ys))

    cfg = S._config(ctx, split="validation")
    cfg["n_steps"], cfg["n_levels"] = int(cfg["n_steps"]), int(cfg["n_levels"])
    c = np.rint(np.clip(cen / cen.max(), 0, 1) * (cfg["n_levels"] - 1)) / (cfg["n_levels"] - 1)
    key = jax.random.key(seed)
    for norm in ("l1", "l2"):
        for sfa in (True, False):
            layer = S._layer(
                {**cfg, "normalize": norm},
                x.shape[1],
                n_clusters,
                float(d["e_tr"].mean() * cfg["p_in"]),
                sfa,
            )
            st0 = wta_imprint(
                layer, layer.init_state(jax.random.fold_in(key, 0)), c, jax.random.key(0)
            )
            nl, r = _named_response(layer, st0, xl, yl, xs, key)
            win = M.snn_classify(r["counts"], r["drive"], nl)
            out[f"templates_{norm}_{'sfa' if sfa else 'nosfa'}"] = float(np.mean(win == ys))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--variant", action="append", default=None)
    ap.add_argument("--contrastive", default=None, help="pre:EPOCHS or joint:EPOCHS:LAM")
    ap.add_argument("--noise", type=float, default=0.0, help="pixel noise sigma (noisy-mnist: 0.3)")
    ap.add_argument(
        "--gate", default="", help="gate settings, e.g. gate_refits=1,gate_steps=6000,gate_lr=0.003"
    )
    ap.add_argument("--cnn-epochs", type=int, default=None, help="CNN epochs (default 3)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--references", action="store_true", help="also score the float references")
    a = ap.parse_args()
    channels = tuple(int(c) for c in a.channels.split(","))
    try:
        spec = contrastive_spec(a.contrastive) if a.contrastive else None
    except ValueError as e:
        ap.error(str(e))
    ctx = Context(name="sfa-layer-probe", quick=False, out=a.out.parent, data_dir=a.data_dir)
    d = prepare(ctx, a.dataset, channels, spec, a.noise, a.gate, a.cnn_epochs)  # type: ignore[arg-type]
    head = dict(
        dataset=a.dataset,
        noise=a.noise,
        channels=list(channels),
        contrastive=a.contrastive,
        gate=a.gate,
        cnn_epochs=a.cnn_epochs,
    )
    for k in ("gate_routed_new", "gate_routed_trained", "head_acc_trained"):
        head[k] = d[k]
    with a.out.open("a") as f:
        if a.references:
            n = int(S._config(ctx, split="validation")["neurons_per_class"]) * len(NEW)
            rec = {**head, "variant": "references", **references(ctx, d, n)}
            print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")
        for v in a.variant or [""]:
            rec = {**head, **probe(ctx, d, v)}
            print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
