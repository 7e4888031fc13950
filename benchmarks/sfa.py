"""``sfa-*``: CNN + memristive WTA spiking layer with spike-frequency adaptation that
learns classes the CNN was never trained on (Muñoz-Martín et al., VLSI 2020).

Protocol (one experiment, :func:`experiment`; details and choices in docs/sfa.md):

1. Training images split: the first ``n_train`` for training, the last 10,000
   ("validation") for the small labelled set and the gate calibration. With
   ``split="validation"`` (``sfa-validation``) the test set is never loaded: the first
   half of the validation images plays that role and the second half is scored.
2. A :class:`~memjax.models.sfa_snn.CNN` is trained on the *trained classes* (all but
   the last ``n_new`` classes) and frozen: with labels (``cnn_training="supervised"``,
   ``cnn_epochs`` of cross-entropy) or its convolutions by SimCLR without labels and
   then its dense layers with labels (``"simclr"``: ``simclr_epochs`` then
   ``cnn_epochs``, :func:`memjax.recipes.train_cnn_simclr`; ``sfa-continual-mnist``).
   ``acc_trained_before``: its head on the test images of the trained classes.
3. Its 512 pooled conv features, scaled per feature (99th percentile on the trained
   classes' training features) and clipped to [0, 1], are the inputs of everything
   downstream. ``n_stream`` training images of *all* classes form the unlabelled stream.
4. Novelty gate (:class:`~memjax.models.sfa_snn.NoveltyGate`): ``gate_hidden`` ReLU
   novelty neurons read by one output neuron (0: one linear neuron), fitted to tell
   trained-class training images from the unlabelled stream (no new-class labels),
   threshold calibrated on the validation images of the trained classes so that at
   most ``max_false_route`` of them are routed away from the frozen head. Mahalanobis
   (Lee et al. 2018) and max-softmax gates at the same budget are reported for
   comparison (``gate_*_routed_*``).
5. The stream images the gate routes (``filter_stream``; else the whole stream) are rate
   coded into a WTA layer (``neurons_per_class x n_new`` ALIF neurons, STDP on 16-level
   RRAM synapses, homeostasis), once with SFA (``beta_factor``) and once without (and
   for each extra ``betas`` value). With ``sfa_learn=True`` (default) each ``beta``
   learns its own layer with SFA on; with ``False`` the layer learns with plain LIF
   neurons and SFA acts at inference only (one learned layer for all ``beta``). Neurons are
   labelled on ``label_per_class`` validation images per new class (the only labelled
   new-class data).
6. Test: routed images are answered by the winner among the new-class neurons, the
   others by the frozen head. Metrics: ``acc_trained_classes`` (after; ``acc_trained_drop``
   against ``acc_trained_before``), ``acc_new_classes``, ``acc_all``, ``acc_routed_new``
   (the layer's accuracy on routed new-class images), ``acc_all_snn_drive`` (the layer's
   answer from the largest summed input current instead of the spike count),
   ``spikes_per_inference`` (output-layer spikes per test image, all test images
   presented) with and without SFA, ``sfa_curve``; ``acc_all_supervised``: the same CNN
   trained on all 10 classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from memjax.data import load, scale_images
from memjax.devices.rram import MultiLevelRRAM
from memjax.learning.stdp import STDP
from memjax.models import sfa_snn as M
from memjax.models.wta import WTALayer, wta_imprint, wta_respond
from memjax.neurons.alif import ALIF
from memjax.recipes import train_cnn, train_cnn_simclr

from ._context import Context

__all__ = [
    "experiment",
    "learn_layer",
    "LAYER",
    "IMPRINTED_COSINE",
    "SELF_TRAINED_GATE",
    "MNIST",
    "FMNIST",
    "novelty_gate",
    "run_mnist",
    "run_fmnist",
    "run_noisy_mnist",
    "run_sweep",
    "Settings",
    "FULL",
    "QUICK",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Data sizes and training lengths of one SFA experiment."""

    n_train: int = 50000
    n_stream: int = 50000
    n_test: int = 10000
    n_val: int = 10000
    cnn_epochs: int = 3
    cnn_training: str = "supervised"
    simclr_epochs: int = 60
    neurons_per_class: int = 20
    label_per_class: int = 50
    n_steps: int = 30
    supervised: bool = True
    gate_steps: int = 2000


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    n_train=8000,
    n_stream=3000,
    n_test=2000,
    n_val=2000,
    cnn_epochs=1,
    simclr_epochs=1,
    neurons_per_class=10,
    label_per_class=20,
    n_steps=20,
    supervised=False,
    gate_steps=600,
)
#: WTA-layer settings (relative to the mean input intensity ``d0 = mean(x) p_in``).
#: ``beta_factor``: the SFA strength (beta / theta0) of the main runs; the spikes-vs-accuracy
#: curve (:data:`BETAS`) shows the trade-off around it.
LAYER = dict(
    feature_norm="scale",
    gain=4.0,
    p_in=1.0,
    window=1,
    p_pot=0.05,
    p_dep=0.1,
    n_levels=16,
    theta_factor=4.0,
    beta_factor=200.0,
    theta_plus_factor=0.05,
    homeo_decay=0.002,
    max_false_route=0.005,
    filter_stream=True,
    gate_hidden=64,
    gate_batch=512,
    gate_lr=0.01,
    gate_refits=0,
    gate_seed=0,
    route_by="gate",
    sfa_learn=True,
    split="test",
    layer_init="random",
    normalize="l1",
    stdp_bounds="hard",
    read_offsets=True,
)
#: The layer that learns templates close to k-means centroids (docs/sfa.md): columns
#: imprinted with the first routed samples, soft-bound STDP with equal probabilities, the
#: cosine read, and no homeostatic offsets at inference.
IMPRINTED_COSINE = dict(
    layer_init="imprint",
    normalize="l2",
    stdp_bounds="soft",
    p_pot=0.1,
    p_dep=0.1,
    read_offsets=False,
)
#: The self-trained gate (docs/sfa.md): fitted with a slower, longer Adam schedule, then
#: fitted again against only the stream images it routes (:func:`memjax.models.sfa_snn.
#: refit_novelty_gate`) and recalibrated.
SELF_TRAINED_GATE = dict(gate_refits=1, gate_steps=6000, gate_lr=0.003)
#: SFA strengths (beta / theta0) of the spikes-vs-accuracy curve (sfa-continual-mnist, -fmnist).
BETAS = (0.0, 25.0, 50.0, 100.0, 200.0)
#: What sfa-continual-mnist, noisy-mnist and sfa-sweep change from :data:`LAYER`: the
#: candidate sfa-validation selected (supervised CNN, the self-trained gate, the
#: imprinted cosine layer with 40 neurons per new class, SFA in learning).
MNIST = dict(
    cnn_training="supervised",
    sfa_learn=True,
    neurons_per_class=40,
    **IMPRINTED_COSINE,
    **SELF_TRAINED_GATE,
)
#: What sfa-continual-fmnist changes from :data:`LAYER`, chosen on its validation split
#: with ``tools/sfa_layer_probe.py`` (docs/sfa.md): the self-trained gate and the imprinted
#: cosine layer, 20 neurons per new class.
FMNIST = dict(sfa_learn=True, **IMPRINTED_COSINE, **SELF_TRAINED_GATE)
NOISE_SIGMA = 0.3  # noisy-mnist: additive N(0, sigma^2) on [0, 1] intensities, clipped


def _config(ctx: Context, **over) -> dict:
    cfg = dataclasses.asdict(QUICK if ctx.quick else FULL)
    cfg.update(LAYER)
    cfg.update(over)
    return cfg


def _load(ctx, dataset, cfg, noise):

    xtr, ytr = load(dataset, "train", data_dir=ctx.data_dir)
    xtr = scale_images(xtr)
    rng = np.random.default_rng(ctx.seed + 1234)
    if noise:
        xtr = np.clip(xtr + noise * rng.standard_normal(xtr.shape, np.float32), 0, 1)
    if cfg["split"] == "test":  # the validation split never loads the test set
        xte, yte = load(dataset, "test", data_dir=ctx.data_dir)
        xte = scale_images(xte)
        if noise:
            xte = np.clip(xte + noise * rng.standard_normal(xte.shape, np.float32), 0, 1)
    n_val = cfg["n_val"]
    val = (xtr[-n_val:], ytr[-n_val:])
    if cfg["split"] == "validation":  # test set unread: half the validation images test
        h = n_val // 2
        val, (xte, yte) = (val[0][:h], val[1][:h]), (val[0][h:], val[1][h:])
    train = (
        xtr[: min(cfg["n_train"], len(xtr) - n_val)],
        ytr[: min(cfg["n_train"], len(xtr) - n_val)],
    )
    test = (xte[: cfg["n_test"]], yte[: cfg["n_test"]])
    return train, val, test


def _layer(cfg, n_in, n_out, d0, sfa=True):

    th0 = cfg["theta_factor"] * d0
    neuron = ALIF(leak=1.0, theta0=th0, beta=cfg["beta_factor"] * th0 if sfa else 0.0)
    rule = STDP(
        window=cfg["window"],
        p_pot=cfg["p_pot"],
        p_dep=cfg["p_dep"],
        bounds=cfg["stdp_bounds"],
    )
    synapse = MultiLevelRRAM(n_levels=cfg["n_levels"], write_sigma=0.0)
    return WTALayer(
        n_in=n_in,
        n_out=n_out,
        neuron=neuron,
        rule=rule,
        synapse=synapse,
        n_steps=cfg["n_steps"],
        p_in=cfg["p_in"],
        theta_plus=cfg["theta_plus_factor"] * th0,
        homeo_decay=cfg["homeo_decay"],
        normalize=cfg["normalize"],
    )


def learn_layer(cfg: dict, layer: WTALayer, x_learn, key) -> tuple:
    """Start the layer's synapses (``layer_init``: ``"random"`` levels, or ``"imprint"``:
    the first ``n_out`` samples programmed into the columns, :func:`wta_imprint`), learn
    the rest of ``x_learn`` online by STDP, and return ``(state, state to read,
    learning outputs, seconds)``; the state to read has its homeostatic offsets set to 0
    unless ``read_offsets``."""
    st = layer.init_state(jax.random.fold_in(key, 0))
    if cfg["layer_init"] == "imprint":
        if len(x_learn) <= layer.n_out:
            raise ValueError(
                f"layer_init='imprint' needs more than n_out = {layer.n_out} samples to "
                f"learn from; got {len(x_learn)}"
            )
        st = wta_imprint(layer, st, x_learn[: layer.n_out], jax.random.fold_in(key, 4))
        x_learn = x_learn[layer.n_out :]
    elif cfg["layer_init"] != "random":
        raise ValueError(f"layer_init must be 'random' or 'imprint'; got {cfg['layer_init']!r}")
    t0 = time.perf_counter()
    st, lout = M.learn_unsupervised(layer, st, x_learn, jax.random.fold_in(key, 1))
    t_learn = time.perf_counter() - t0
    read = st if cfg["read_offsets"] else dataclasses.replace(st, h=jnp.zeros_like(st.h))
    return st, read, lout, t_learn


def experiment(
    ctx: Context,
    dataset: str,
    n_new: int = 5,
    *,
    noise: float = 0.0,
    figures: bool = True,
    betas=(),
    cnn_cache: dict | None = None,
    **over,
) -> dict:
    """One continual-learning experiment; returns ``{"metrics", "config"}``.

    ``betas``: extra SFA strengths (in units of ``theta0``) for the spikes-vs-accuracy
    curve, each a layer learned and evaluated like the main ones. ``cnn_cache``: a dict
    in which the trained CNN is kept and looked up (runs that differ only downstream of
    the CNN share it)."""

    cfg = _config(ctx, **over)
    cnn_cache = {} if cnn_cache is None else cnn_cache
    t_start = time.perf_counter()
    trained = list(range(10 - n_new))
    new = list(range(10 - n_new, 10))
    train, val, test = _load(ctx, dataset, cfg, noise)
    ctx.log(f"{dataset}: trained {trained}, new {new}, {len(train[0])} train images")

    t0 = time.perf_counter()
    ck = (dataset, n_new, noise, cfg["n_train"], cfg["cnn_epochs"], ctx.seed)
    ck += (cfg["cnn_training"], cfg["simclr_epochs"] if cfg["cnn_training"] == "simclr" else 0)
    cnn, hist = _cnn(ctx, cfg, train, trained, ck, cnn_cache)
    t_cnn = time.perf_counter() - t0
    f_tr, _ = M.cnn_features(cnn, train[0])
    f_va, l_va = M.cnn_features(cnn, val[0])
    f_te, l_te = M.cnn_features(cnn, test[0])
    tm_tr = np.isin(train[1], trained)
    scale = M.feature_scale(f_tr[tm_tr]) if cfg["feature_norm"] == "scale" else None
    e_tr, e_va, e_te = (M.encode_features(f, scale, cfg["gain"]) for f in (f_tr, f_va, f_te))
    head_te, conf_te = M.cnn_predict(l_te, trained)
    head_va, conf_va = M.cnn_predict(l_va, trained)
    tm_te = np.isin(test[1], trained)
    tm_va = np.isin(val[1], trained)
    acc_before = float(np.mean(head_te[tm_te] == test[1][tm_te]))

    rng = np.random.default_rng(ctx.seed)
    stream = rng.permutation(len(e_tr))[: cfg["n_stream"]]
    routed_te, routed_st, metrics = _gates(
        cfg, e_tr, e_va, e_te, stream, tm_tr, tm_va, tm_te, conf_va, conf_te, train[1]
    )
    metrics = {"acc_trained_before": acc_before, **metrics}
    x_learn, n_out, lab_idx, found = _learning_set(
        cfg, e_tr, train[1], val[1], stream, routed_st, trained, new
    )
    metrics.update(found)
    d0 = float(e_tr.mean() * cfg["p_in"])
    keep = {}
    runs = [("sfa", cfg["beta_factor"]), ("nosfa", 0.0)]
    runs += [(f"beta{b:g}", float(b)) for b in betas if b not in (0.0, cfg["beta_factor"])]
    curve = {}
    d = SimpleNamespace(
        e_tr=e_tr,
        e_va=e_va,
        e_te=e_te,
        val=val,
        test=test,
        lab_idx=lab_idx,
        trained=trained,
        new=new,
        head_te=head_te,
        routed_te=routed_te,
        tm_te=tm_te,
        x_learn=x_learn,
        n_out=n_out,
        d0=d0,
        learned=None,
    )
    for tag, beta in runs:
        entry, found, kept = _snn_run(ctx, cfg, tag, beta, d)
        curve[f"{beta:g}"] = entry
        metrics.update(found)
        if kept is not None:
            keep[tag] = kept
    metrics["acc_trained_drop"] = acc_before - metrics["acc_trained_classes"]
    metrics["spike_reduction_sfa"] = metrics["spikes_per_inference_nosfa"] / max(
        metrics["spikes_per_inference"], 1e-12
    )
    metrics["acc_all_cost_sfa"] = metrics["acc_all_nosfa"] - metrics["acc_all"]
    if len(curve) > 2:
        metrics["sfa_curve"] = dict(sorted(curve.items(), key=lambda kv: kv[1]["beta_over_theta0"]))
    metrics["cnn_train_s"] = t_cnn
    metrics["cnn_train_accuracy"] = hist["train_accuracy"][-1]
    if cfg["supervised"]:
        metrics.update(_supervised_baseline(ctx, cfg, train, test))
    if figures:
        _figures(
            ctx, keep, e_te, test[1], metrics["acc_per_class"], trained, metrics.get("sfa_curve")
        )
    metrics["seconds_total"] = time.perf_counter() - t_start
    config = dict(
        cfg,
        dataset=dataset,
        n_new=n_new,
        new_classes=new,
        noise_sigma=noise,
        features="conv (512, pooled conv2 ReLU)",
        betas=list(betas),
    )
    return {"metrics": metrics, "config": config}


def _cnn(ctx, cfg, train, trained, ck, cnn_cache):
    """The CNN trained on the trained classes, from ``cnn_cache`` under the key ``ck``
    (the settings and data that determine it: the training images are the same for
    both splits) or trained and stored there. SimCLR training checkpoints under
    ``<out>/checkpoints`` and resumes there, so the validation and test runs of one
    output folder train it once."""
    if ck in cnn_cache:
        return cnn_cache[ck]
    if cfg["cnn_training"] == "simclr":
        tag = hashlib.sha256(repr(ck).encode()).hexdigest()[:12]
        cnn_cache[ck] = train_cnn_simclr(
            train,
            trained,
            epochs=cfg["simclr_epochs"],
            head_epochs=cfg["cnn_epochs"],
            seed=ctx.seed,
            progress=not ctx.quick,
            checkpoint_dir=(Path(ctx.out) / "checkpoints" / f"sfa-cnn-simclr-{tag}").absolute(),
        )
    else:
        cnn_cache[ck] = train_cnn(
            train, trained, epochs=cfg["cnn_epochs"], seed=ctx.seed, progress=not ctx.quick
        )
    return cnn_cache[ck]


def _learning_set(cfg, e_tr, y_tr, y_va, stream, routed_st, trained, new):
    """What the spiking layer learns from (the routed stream, or the whole stream), its
    size, and the small labelled validation set that names its neurons."""
    if cfg["filter_stream"]:
        x_learn = e_tr[stream][routed_st]
        n_out = cfg["neurons_per_class"] * len(new)
    else:
        x_learn = e_tr[stream]
        n_out = cfg["neurons_per_class"] * 10
    metrics = {"snn_stream_size": int(len(x_learn))}
    metrics["snn_stream_new_fraction"] = float(
        np.mean(
            ~np.isin(y_tr[stream][routed_st] if cfg["filter_stream"] else y_tr[stream], trained)
        )
    )
    lab_classes = new if cfg["filter_stream"] else list(range(10))
    lab_idx = np.concatenate(
        [np.flatnonzero(y_va == c)[: cfg["label_per_class"]] for c in lab_classes]
    )
    metrics["labelled_set_size"] = int(len(lab_idx))
    return x_learn, n_out, lab_idx, metrics


def _supervised_baseline(ctx, cfg, train, test):
    """The CNN trained on all ten classes with labels: the accuracy continual learning
    would reach with every label."""
    t0 = time.perf_counter()
    sup, _ = train_cnn(
        train, list(range(10)), epochs=cfg["cnn_epochs"], seed=ctx.seed, progress=not ctx.quick
    )
    _, l_sup = M.cnn_features(sup, test[0], "fc")
    return {
        "acc_all_supervised": float(np.mean(l_sup.argmax(-1) == test[1])),
        "supervised_train_s": time.perf_counter() - t0,
    }


def novelty_gate(cfg: dict, x_trained, x_stream, x_trained_val) -> M.NoveltyGate:
    """The novelty gate of settings ``cfg``: fitted to tell the trained-class training
    images ``x_trained`` from the unlabelled ``x_stream``, its threshold calibrated on
    held-out trained-class images ``x_trained_val`` (``max_false_route``); with
    ``gate_refits`` > 0 fitted again that many times against the stream images it
    routes (:func:`memjax.models.sfa_snn.refit_novelty_gate`), each recalibrated.
    ``gate_seed`` draws the hidden layer's initial weights and the batches."""
    fit = dict(
        steps=cfg["gate_steps"],
        hidden=cfg["gate_hidden"],
        batch_size=cfg["gate_batch"],
        learning_rate=cfg["gate_lr"],
        key=jax.random.key(cfg["gate_seed"]),
    )
    gate = M.calibrate_novelty_gate(
        M.fit_novelty_gate(x_trained, x_stream, **fit), x_trained_val, cfg["max_false_route"]
    )
    for _ in range(cfg["gate_refits"]):
        gate = M.refit_novelty_gate(gate, x_trained, x_stream, **fit)
        gate = M.calibrate_novelty_gate(gate, x_trained_val, cfg["max_false_route"])
    return gate


def _gates(cfg, e_tr, e_va, e_te, stream, tm_tr, tm_va, tm_te, conf_va, conf_te, y_tr):
    """The novelty gate (fitted on trained-class training images against the stream,
    calibrated on trained-class validation images) and two comparison gates at the same
    false-route budget; returns the gate's routing of the test set and the stream, and
    the gates' metrics."""
    t0 = time.perf_counter()
    gate = novelty_gate(cfg, e_tr[tm_tr], e_tr[stream], e_va[tm_va])
    t_gate = time.perf_counter() - t0
    routed_te = gate(e_te)
    routed_st = gate(e_tr[stream])
    metrics: dict = {
        "gate_routed_trained_test": float(routed_te[tm_te].mean()),
        "gate_routed_new_test": float(routed_te[~tm_te].mean()),
        "gate_fit_s": t_gate,
    }
    # comparison gates at the same false-route budget (trained-class validation images)
    k_va = 1.0 - cfg["max_false_route"]
    for name, s_va, s_te in (
        ("softmax", -conf_va, -conf_te),
        (
            "mahalanobis",
            *(lambda sc: (sc(e_va), sc(e_te)))(M.mahalanobis_score(e_tr[tm_tr], y_tr[tm_tr])),
        ),
    ):
        r = s_te > np.quantile(s_va[tm_va], k_va)
        metrics[f"gate_{name}_routed_trained_test"] = float(r[tm_te].mean())
        metrics[f"gate_{name}_routed_new_test"] = float(r[~tm_te].mean())
    return routed_te, routed_st, metrics


def _snn_run(ctx: Context, cfg: dict, tag: str, beta: float, d: SimpleNamespace):
    """Learn one WTA layer (SFA strength ``beta``) on the routed stream, label its
    neurons and classify the test set; returns the curve entry, the metrics (for the
    ``"sfa"`` and ``"nosfa"`` runs) and ``(layer, state, labels)`` for the figures."""

    e_tr, e_va, e_te, val, test = d.e_tr, d.e_va, d.e_te, d.val, d.test
    lab_idx, trained, new, head_te, routed_te, tm_te = (
        d.lab_idx,
        d.trained,
        d.new,
        d.head_te,
        d.routed_te,
        d.tm_te,
    )
    layer = _layer(dict(cfg, beta_factor=beta), e_tr.shape[1], d.n_out, d.d0, beta > 0)
    key = jax.random.key(ctx.seed)
    if cfg["sfa_learn"] or d.learned is None:
        # without sfa_learn SFA acts at inference only: every layer learns with beta = 0
        learner = layer if cfg["sfa_learn"] else layer.without_sfa()
        st, read, lout, t_learn = learn_layer(cfg, learner, d.x_learn, key)
        if not cfg["sfa_learn"]:
            d.learned = (st, read, lout, t_learn)
    else:
        st, read, lout, t_learn = d.learned
    r_lab = M.respond(layer, read, e_va[lab_idx], jax.random.fold_in(key, 2))
    nl = M.label_neurons(r_lab["counts"], val[1][lab_idx])
    t0 = time.perf_counter()
    r_te = M.respond(layer, read, e_te, jax.random.fold_in(key, 3))
    t_infer = time.perf_counter() - t0
    nl_new = np.where(np.isin(nl, new), nl, -1)  # routed inputs: new-class neurons
    snn_te = M.snn_classify(r_te["counts"], r_te["drive"], nl_new)
    if cfg["route_by"] == "snn":  # no gate: routed where the layer's own answer is new
        snn_te = M.snn_classify(r_te["counts"], r_te["drive"], nl)
        routed_te = np.isin(snn_te, new)
    pred = M.route(head_te, snn_te, routed_te)
    rep = M.accuracy_report(pred, test[1], {"trained": trained, "new": new})
    rn = routed_te & ~tm_te
    acc_routed_new = float(np.mean(snn_te[rn] == test[1][rn])) if rn.any() else float("nan")
    spikes = float(r_te["spikes"].mean())
    entry = {
        "beta_over_theta0": beta,
        "acc_all": rep["all"],
        "acc_new_classes": rep["new"],
        "acc_routed_new": acc_routed_new,
        "spikes_per_inference": spikes,
        "spikes_per_routed_inference": float(r_te["spikes"][routed_te].mean()),
    }
    ctx.log(
        f"{tag}: acc_all {rep['all']:.4f} (trained {rep['trained']:.4f}, new "
        f"{rep['new']:.4f}), spikes/inference {spikes:.2f}, learn {t_learn:.1f} s"
    )
    if tag not in ("sfa", "nosfa"):
        return entry, {}, None
    sfx = "" if tag == "sfa" else "_nosfa"
    drive_only = M.snn_classify(0 * r_te["counts"], r_te["drive"], nl_new)
    metrics = {
        f"acc_trained_classes{sfx}": rep["trained"],
        f"acc_new_classes{sfx}": rep["new"],
        f"acc_all{sfx}": rep["all"],
        f"acc_routed_new{sfx}": acc_routed_new,
        f"acc_all_snn_drive{sfx}": float(
            np.mean(M.route(head_te, drive_only, routed_te) == test[1])
        ),
        f"spikes_per_inference{sfx}": spikes,
        f"spikes_per_routed_inference{sfx}": entry["spikes_per_routed_inference"],
        f"learning_spikes_per_sample{sfx}": float(lout["spikes"].mean()),
        f"stdp_pulses_per_synapse{sfx}": float(np.asarray(st.syn.pulses).mean()),
        f"neurons_labelled{sfx}": int((nl >= 0).sum()),
        f"learn_s{sfx}": t_learn,
        f"infer_s{sfx}": t_infer,
    }
    if not cfg["filter_stream"]:
        metrics[f"acc_all_snn_only{sfx}"] = float(
            np.mean(M.snn_classify(r_te["counts"], r_te["drive"], nl) == test[1])
        )
    if tag == "sfa":
        metrics["acc_per_class"] = rep["per_class"]
    return entry, metrics, (layer, read, nl)


def _figures(ctx, keep, e_te, y_te, per_class, trained, curve=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer, st, nl = keep["sfa"]
    dev = layer.synapse
    G = (np.asarray(st.syn.G) - dev.G_min) / (dev.G_max - dev.G_min)
    order = np.argsort(nl, kind="stable")
    fig, ax = plt.subplots(figsize=(10, 4))
    im = ax.imshow(G[:, order], aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("output neuron (sorted by label)")
    ax.set_ylabel("input feature")
    ax.set_title("learned synaptic conductances (normalised levels)")
    fig.colorbar(im, ax=ax)
    ctx.save_figure(fig, "conductances")

    x = e_te[:1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
    for ax, tag in zip(axes, ("nosfa", "sfa")):
        L, S, _ = keep[tag]
        r = np.asarray(wta_respond(L, S, x, jax.random.key(0), raster=True)["raster"][0])
        t, n = np.nonzero(r)
        ax.scatter(t, n, s=12, marker="|")
        ax.set_title(f"{'with' if tag == 'sfa' else 'without'} SFA: {len(t)} spikes")
        ax.set_xlabel("time step")
    axes[0].set_ylabel("neuron")
    ctx.save_figure(fig, "raster")

    fig, ax = plt.subplots(figsize=(6, 3))
    cls = sorted(per_class)
    ax.bar(
        cls,
        [per_class[c] for c in cls],
        color=["tab:blue" if c in trained else "tab:orange" for c in cls],
    )
    ax.set_xlabel("class (blue: trained, orange: new)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ctx.save_figure(fig, "per_class")

    if curve:
        pts = sorted(curve.values(), key=lambda p: p["beta_over_theta0"])
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([p["spikes_per_inference"] for p in pts], [p["acc_all"] for p in pts], "o-")
        for p in pts:
            ax.annotate(
                f"{p['beta_over_theta0']:g}",
                (p["spikes_per_inference"], p["acc_all"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
        ax.set_xlabel("output spikes per inference")
        ax.set_ylabel("acc_all (test)")
        ax.set_title("SFA strength beta / theta0 (labels)")
        ctx.save_figure(fig, "sfa_tradeoff")


def run_mnist(ctx: Context) -> dict:
    return experiment(ctx, "mnist", 5, betas=BETAS, **MNIST)


def run_fmnist(ctx: Context) -> dict:
    return experiment(ctx, "fashion-mnist", 5, betas=BETAS, **FMNIST)


def run_noisy_mnist(ctx: Context) -> dict:
    return experiment(ctx, "mnist", 5, noise=NOISE_SIGMA, **MNIST)


def run_sweep(ctx: Context) -> dict:
    """acc_all against the number of non-trained classes (1..5; quick: 1, 3, 5); full
    runs use a 20,000-image unlabelled stream per point to fit the time budget."""
    ks = [1, 3, 5] if ctx.quick else [1, 2, 3, 4, 5]
    metrics, runs = {}, {}
    for k in ks:
        over = dict(MNIST, **({} if ctx.quick else {"n_stream": 20000}))
        out = experiment(ctx, "mnist", k, figures=False, supervised=False, **over)
        m = out["metrics"]
        runs[k] = {
            n: m[n]
            for n in (
                "acc_all",
                "acc_trained_classes",
                "acc_new_classes",
                "acc_routed_new",
                "gate_routed_new_test",
                "acc_trained_before",
                "acc_trained_drop",
                "spike_reduction_sfa",
                "acc_all_nosfa",
                "seconds_total",
            )
        }
        metrics[f"acc_all_new{k}"] = m["acc_all"]
    metrics["runs"] = runs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for n in ("acc_all", "acc_trained_classes", "acc_new_classes", "acc_routed_new"):
        ax.plot(ks, [runs[k][n] for k in ks], "o-", label=n)
    ax.set_xlabel("non-trained classes")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "sweep")
    return {"metrics": metrics, "config": {"n_new": ks, **_config(ctx)}}
