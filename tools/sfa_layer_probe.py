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
or ``benchmarks.sfa.Settings`` (numbers), or ``passes`` (passes over the stream).
Used for the layer scan in docs/dev-notes/sfa.md; not part of the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sfa as S  # noqa: E402
from benchmarks._context import Context  # noqa: E402
from memjax.models import sfa_snn as M  # noqa: E402
from memjax.recipes import train_cnn  # noqa: E402

TRAINED, NEW = list(range(5)), list(range(5, 10))


def prepare(ctx: Context, dataset: str, channels: tuple[int, int]) -> dict:
    cfg = S._config(ctx, split="validation", n_stream=20000)
    train, val, test = S._load(ctx, dataset, cfg, 0.0)
    cnn, _ = train_cnn(
        train, TRAINED, epochs=cfg["cnn_epochs"], channels=channels, seed=0, progress=False
    )
    (f_tr, _), (f_va, _), (f_te, l_te) = (
        M.cnn_features(cnn, x) for x in (train[0], val[0], test[0])
    )
    tm_tr = np.isin(train[1], TRAINED)
    scale = M.feature_scale(f_tr[tm_tr])
    e_tr, e_va, e_te = (M.encode_features(f, scale) for f in (f_tr, f_va, f_te))
    stream = np.random.default_rng(ctx.seed).permutation(len(e_tr))[: cfg["n_stream"]]
    gate = S.novelty_gate(cfg, e_tr[tm_tr], e_tr[stream], e_va[np.isin(val[1], TRAINED)])
    routed = gate(e_te)
    tm_te = np.isin(test[1], TRAINED)
    return dict(
        e_tr=e_tr,
        e_va=e_va,
        e_te=e_te,
        y_va=val[1],
        y_te=test[1],
        x_stream=e_tr[stream][gate(e_tr[stream])],
        routed=routed,
        head_te=M.cnn_predict(l_te, TRAINED)[0],
        gate_routed_new=float(routed[~tm_te].mean()),
        gate_routed_trained=float(routed[tm_te].mean()),
    )


def probe(ctx: Context, d: dict, variant: str) -> dict:
    over = dict(kv.split("=") for kv in variant.split(",") if kv)
    passes = int(over.pop("passes", 1))
    cfg = S._config(ctx, split="validation")
    cfg.update({k: float(v) for k, v in over.items()})
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
    st = layer.init_state(jax.random.fold_in(key, 0))
    t0 = time.perf_counter()
    st, _ = M.learn_unsupervised(layer, st, x, jax.random.fold_in(key, 1))
    learn_s = time.perf_counter() - t0
    y_va, y_te, routed = d["y_va"], d["y_te"], d["routed"]
    lab = np.concatenate([np.flatnonzero(y_va == c)[:50] for c in NEW])
    nl = M.label_neurons(
        M.respond(layer, st, d["e_va"][lab], jax.random.fold_in(key, 2))["counts"], y_va[lab]
    )
    nl = np.where(np.isin(nl, NEW), nl, -1)
    r = M.respond(layer, st, d["e_te"][routed], jax.random.fold_in(key, 3))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--variant", action="append", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    channels = tuple(int(c) for c in a.channels.split(","))
    ctx = Context(name="sfa-layer-probe", quick=False, out=a.out.parent, data_dir=a.data_dir)
    d = prepare(ctx, a.dataset, channels)  # type: ignore[arg-type]
    head = dict(dataset=a.dataset, channels=list(channels), gate_routed_new=d["gate_routed_new"])
    head["gate_routed_trained"] = d["gate_routed_trained"]
    with a.out.open("a") as f:
        for v in a.variant or [""]:
            rec = {**head, **probe(ctx, d, v)}
            print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
