"""Development probe: the SFA pipeline's novelty gate under varied settings and initial
weights, on the validation split of the training images (the test set is never loaded).

One CNN (trained classes 0-4, the first 50,000 training images) per invocation, as in
``tools/sfa_layer_probe.py``; then, for each variant and each of ``--seeds`` initial
weights (``gate_seed``), one gate fitted on the trained-class training images against
the 20,000-image stream, calibrated on the trained-class images of the first half of the
last 10,000 training images, and scored on the second half: the fractions of new-class
and trained-class images it routes. Prints and writes one JSON line per variant (mean,
minimum and maximum over the seeds).

    python tools/sfa_gate_probe.py --dataset mnist --seeds 5 --variant "" \\
        --variant "gate_refits=1,gate_steps=6000,gate_lr=0.003" --out gate.jsonl

A variant is ``key=value`` pairs separated by commas: gate keys of
``benchmarks.sfa.LAYER`` (``gate_steps``, ``gate_lr``, ``gate_hidden``, ``gate_refits``,
``max_false_route``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sfa_layer_probe as P  # noqa: E402

from benchmarks._context import Context  # noqa: E402


def score(ctx: Context, d: dict, variant: str, seeds: int) -> dict:
    """Routing of new- and trained-class scored images over ``seeds`` gate fits."""
    tm = np.isin(d["y_te"], P.TRAINED)
    new, trained = [], []
    for seed in range(seeds):
        cfg = P.gate_config(ctx, ",".join(v for v in (variant, f"gate_seed={seed}") if v))
        _, routed = P.gate_routing(cfg, d)
        new.append(float(routed[~tm].mean()))
        trained.append(float(routed[tm].mean()))
    rec: dict = {"variant": variant, "seeds": seeds}
    for name, v in (("routed_new", new), ("routed_trained", trained)):
        rec[name] = float(np.mean(v))
        rec[f"{name}_min"], rec[f"{name}_max"] = float(np.min(v)), float(np.max(v))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--noise", type=float, default=0.0, help="pixel noise sigma (noisy-mnist: 0.3)")
    ap.add_argument("--variant", action="append", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.seeds < 1:
        ap.error(f"--seeds must be >= 1; got {a.seeds}")
    ctx = Context(name="sfa-gate-probe", quick=False, out=a.out.parent, data_dir=a.data_dir)
    d = P.encoded(ctx, a.dataset, (16, 32), None, a.noise)
    with a.out.open("a") as f:
        for v in a.variant or [""]:
            rec = {"dataset": a.dataset, "noise": a.noise, **score(ctx, d, v, a.seeds)}
            print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
