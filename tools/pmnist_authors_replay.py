"""Development check: replay the authors' permuted-MNIST training (Laborieux et al., Nat.
Commun. 2021, their 2021 ``models_utils.py``) step by step and compare memjax's pieces on
the very same states, to find implementation differences that a comparison of final
accuracies over seeds can only detect.

The authors' ``BNN`` and ``Adam_meta`` train as in ``tools/pmnist_authors_code.py`` (their
``train`` loop, one batch at a time). At every step:

- **optimizer**: memjax's hidden-weight optimizer (``add_decayed_weights(1e-7)`` then
  ``metaplastic_adam(lr, m)``, reset per task) is fed the authors' gradients and keeps
  its own weights; the largest difference to the authors' hidden weights is reported.
  Give ``--models-utils`` a copy whose Adam adds ``eps`` to ``sqrt(v_hat)`` as optax does
  (PyTorch 1.1 adds it to ``sqrt(v)`` before bias correction) to compare the rest exactly.
- **gradients** (every ``--check-every`` steps): memjax's loss and gradients (hidden
  weights, BN gains and offsets) on the authors' current parameters and batch, relative
  to theirs, and the number of hidden weights with ``|w| < 6e-8`` (the negative ones
  among them read ``+1`` in memjax before ``level_index`` compared boundaries exactly).

    python tools/pmnist_authors_replay.py --models-utils models_utils_2021.py \\
        --meta 0.5 --tasks 3 --steps 600 --out replay.json

Needs PyTorch and the MNIST IDX files in ``$MEMJAX_DATA_DIR/mnist``. Findings are in
docs/dev-notes/metaplasticity.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-utils", required=True, help="the authors' models_utils.py")
    p.add_argument("--meta", type=float, default=0.5)
    p.add_argument("--tasks", type=int, default=3)
    p.add_argument("--steps", type=int, default=600, help="training steps per task")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-every", type=int, default=150)
    p.add_argument("--data-dir", default=os.environ.get("MEMJAX_DATA_DIR"))
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if not a.data_dir:
        raise SystemExit("--data-dir (or $MEMJAX_DATA_DIR) must name the folder with mnist/")
    import jax
    import jax.numpy as jnp
    import optax
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from pmnist_authors_code import _import_models_utils, authors_bnn, mnist_split

    from memjax.learning.metaplastic import metaplastic_adam
    from memjax.models.metaplastic import MetaplasticMLP
    from memjax.recipes.continual import _loss

    mu = _import_models_utils(a.models_utils)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(1)
    x, y = mnist_split("train", a.data_dir)
    h = a.hidden
    model, bns, meta = authors_bnn(mu, h, a.meta)
    fcs = [model.layers[f"fc{i + 1}"] for i in range(3)]

    template = MetaplasticMLP((784, h, h, 10), 2, n_tasks=1, bn_affine=True, key=jax.random.key(0))
    loss_and_grad = jax.jit(
        jax.value_and_grad(
            lambda prm, xb, yb: _loss(prm, template, xb, yb, jnp.asarray(0), None), has_aux=True
        )
    )
    wopt = optax.chain(optax.add_decayed_weights(1e-7), metaplastic_adam(0.005, a.meta))

    @jax.jit
    def opt_step(w, state, g):
        u, state = wopt.update(g, state, w)
        return optax.apply_updates(w, u), state

    def hidden():  # torch (out, in) -> memjax (in, out)
        return [
            (f.weight.org if hasattr(f.weight, "org") else f.weight).detach().numpy().T for f in fcs
        ]

    def rel(u, v):
        return float(np.linalg.norm(np.asarray(u) - v) / (np.linalg.norm(v) + 1e-30))

    crit = torch.nn.CrossEntropyLoss()
    w_mj = tuple(jnp.asarray(w.copy()) for w in hidden())
    records = []
    for t in range(a.tasks):
        perm = torch.from_numpy(np.random.permutation(784))
        opt = mu.Adam_meta(model.parameters(), lr=0.005, meta=meta, weight_decay=1e-7)
        state = wopt.init(w_mj)
        order = torch.randperm(60000)
        for s in range(a.steps):
            i0 = (s % 600) * 100
            idx = order[i0 : i0 + 100]
            xb, yb = x[idx][:, perm], y[idx]
            before = hidden()
            gains = tuple(jnp.asarray(bn.weight.detach().numpy()[None].copy()) for bn in bns)
            shifts = tuple(jnp.asarray(bn.bias.detach().numpy()[None].copy()) for bn in bns)
            model.train()
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            grads = [f.weight.grad.numpy().T.copy() for f in fcs]
            rec = None
            if s % a.check_every == 0 or s == a.steps - 1:
                prm = (tuple(jnp.asarray(w.copy()) for w in before), (gains, shifts))
                (loss_mj, _), (gw, (gg, gb)) = loss_and_grad(
                    prm, jnp.asarray(xb.numpy()), jnp.asarray(yb.numpy())
                )
                rec = {
                    "task": t,
                    "step": s,
                    "loss_authors": loss.item(),
                    "loss_memjax": float(loss_mj),
                    "rel_grad_diff_weights": [rel(u, v) for u, v in zip(gw, grads)],
                    "rel_grad_diff_bn_gain": [
                        rel(u[0], bn.weight.grad.numpy()) for u, bn in zip(gg, bns)
                    ],
                    "rel_grad_diff_bn_offset": [
                        rel(u[0], bn.bias.grad.numpy()) for u, bn in zip(gb, bns)
                    ],
                    "n_weights_below_6e-8": [int(np.sum(np.abs(w) < 6e-8)) for w in before],
                }
            for prm_t in model.parameters():  # their train(): step on the hidden weights
                if hasattr(prm_t, "org"):
                    prm_t.data.copy_(prm_t.org)
            opt.step()
            for prm_t in model.parameters():
                if hasattr(prm_t, "org"):
                    prm_t.org.copy_(prm_t.data)
            w_mj, state = opt_step(w_mj, state, tuple(jnp.asarray(g) for g in grads))
            if rec is not None:
                rec["max_abs_weight_diff_optimizer"] = [
                    float(np.max(np.abs(np.asarray(u) - v))) for u, v in zip(w_mj, hidden())
                ]
                records.append(rec)
                print(json.dumps(rec), flush=True)
    Path(a.out).write_text(
        json.dumps(dict(vars(a), records=records, torch=torch.__version__), indent=1)
    )


if __name__ == "__main__":
    main()
