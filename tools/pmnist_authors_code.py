"""Development check: the authors' own permuted-MNIST code (Laborieux et al., Nat.
Commun. 2021, github.com/Laborieux-Axel/SynapticMetaplasticityBNN) run on the same
machine and data as ``metaplastic-pmnist``, to tell implementation differences from
differences of seed, version or hardware.

It imports the ``models_utils.py`` you point it at (their ``BNN``, ``Adam_meta``,
``train`` and ``test``, unchanged) and repeats their ``main.py`` loop for ``--net bnn``
without EWC or SI: a fresh ``Adam_meta`` (lr 0.005, L2 1e-7, one ``meta`` for every
layer) per task, batches of 100, permutations from ``np.random.permutation``. After
each task every task so far is tested with its own saved BN state, as their code does,
and also with each test batch's statistics. BN gains start ``U(0, 1)`` as in PyTorch
1.1, the version their README installs (``--bn-init ones`` for newer PyTorch's
default). The file of the paper (2021) is ``models_utils.py`` at commit ``5351570~1``
(BN with running statistics); since commit ``5351570`` (August 2023) their BN keeps no
running statistics, so both evaluations are the test-batch one.

    D=Continual_Learning_Fig-2abcdefgh-3abcd-5cde
    git -C SynapticMetaplasticityBNN show 5351570~1:$D/models_utils.py > models_utils_2021.py
    python tools/pmnist_authors_code.py --models-utils models_utils_2021.py \\
        --meta 0.5 --epochs 5 --tasks 3 --hidden 256 --seed 0 --out authors.json

Needs PyTorch (torchvision and pandas, which ``models_utils`` imports but this loop does
not use, are stubbed) and the MNIST IDX files in ``$MEMJAX_DATA_DIR/mnist``. The
matching memjax run: ``python -m benchmarks run metaplastic-pmnist --seed 0 --set
hidden=256,256 --set n_tasks=3 --set epochs=5 --set ms=0.5 --set
bn_scale_init=uniform``. Results of this check are in docs/dev-notes/metaplasticity.md.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np


def _import_models_utils(path: str):
    for name in ("torchvision", "pandas"):  # imported by models_utils, unused here
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
            sys.modules[name] = stub
    spec = importlib.util.spec_from_file_location("models_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mnist_split(name: str, data_dir: str):
    """MNIST ``name`` ("train" or "test") as torch tensors: images ``(N, 784)`` in
    [0, 1] and int64 labels."""
    import torch

    from memjax.data import load

    x, y = load("mnist", name, data_dir=data_dir, source="idx")
    x = torch.tensor(x.reshape(-1, 784) / 255.0, dtype=torch.float32)
    return x, torch.tensor(y.astype(np.int64))


def authors_bnn(mu, hidden: int, meta: float, bn_init: str = "uniform"):
    """Their ``BNN`` 784-hidden-hidden-10 as their ``main.py`` builds it (hidden weights
    ``U(-0.05, 0.05)``, BN gains ``U(0, 1)`` for ``bn_init="uniform"``) and its ``meta``
    dict (one value per layer index). Returns ``(model, bns, meta_dict)``."""
    import torch

    model = mu.BNN([784, hidden, hidden, 10], init="uniform", width=0.1, norm="bn")
    bns = [model.layers[f"bn{i + 1}"] for i in range(model.hidden_layers + 1)]
    if bn_init == "uniform":
        for bn in bns:
            torch.nn.init.uniform_(bn.weight)
    meta_dict = {}
    for n, prm in model.named_parameters():  # as main.py: one meta per layer index
        prm.newname = "l" + n[9]
        if "fc" in n:
            meta_dict[prm.newname] = meta
    return model, bns, meta_dict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-utils", required=True, help="the authors' models_utils.py")
    p.add_argument("--meta", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--tasks", type=int, default=6)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn-init", choices=("uniform", "ones"), default="uniform")
    p.add_argument(
        "--stored-bn",
        choices=("running", "population"),
        default="running",
        help="saved BN statistics: PyTorch's running averages (their code) or, as "
        "memjax, averages over the first 10,000 training images after each task",
    )
    p.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    p.add_argument("--data-dir", default=os.environ.get("MEMJAX_DATA_DIR"))
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if not a.data_dir:
        raise SystemExit("--data-dir (or $MEMJAX_DATA_DIR) must name the folder with mnist/")
    import torch

    # Data first: importing memjax moves NumPy's global random state, which their
    # permutations draw from, so the seeds are set after it.
    (xtr, ytr), (xte, yte) = mnist_split("train", a.data_dir), mnist_split("test", a.data_dir)
    mu = _import_models_utils(a.models_utils)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_flush_denormal(True)
    torch.set_num_threads(a.threads)
    data = torch.utils.data
    tasks = []
    for _ in range(a.tasks):
        perm = torch.from_numpy(np.random.permutation(784))
        train = data.TensorDataset(xtr[:, perm], ytr)
        test = data.TensorDataset(xte[:, perm], yte)
        tasks.append(
            (
                data.DataLoader(train, batch_size=100, shuffle=True),
                data.DataLoader(test, batch_size=1000, shuffle=False),
                perm,
            )
        )
    model, bns, meta = authors_bnn(mu, a.hidden, a.meta, a.bn_init)
    args = types.SimpleNamespace(ewc=False, si=False)

    def test_batch_statistics(loader) -> float:
        model.eval()
        saved = [(bn.track_running_stats, bn.running_mean, bn.running_var) for bn in bns]
        for bn in bns:
            bn.track_running_stats, bn.running_mean, bn.running_var = False, None, None
        correct = 0
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum().item()
        for bn, state in zip(bns, saved):
            bn.track_running_stats, bn.running_mean, bn.running_var = state
        return 100.0 * correct / len(loader.dataset)

    def population_statistics(ti: int) -> None:
        """Replace the running statistics by their average over 10,000 training images
        of task ``ti`` (train-mode forward passes, no parameter update)."""
        perm = tasks[ti][2]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
        model.train()
        with torch.no_grad():
            for i in range(0, 10000, 100):
                model(xtr[i : i + 100][:, perm])
        for bn in bns:
            bn.momentum = 0.1

    bn_states, acc, acc_batch, t0 = [], [], [], time.time()
    for ti, (train_loader, _, _) in enumerate(tasks):
        opt = mu.Adam_meta(model.parameters(), lr=0.005, meta=meta, weight_decay=1e-7)
        for ep in range(a.epochs):
            mu.train(model, train_loader, ti, opt, "cpu", args)
            print(f"task {ti + 1} epoch {ep + 1}: {time.time() - t0:.0f} s", flush=True)
        if a.stored_bn == "population":
            population_statistics(ti)
        current = model.save_bn_states()
        row, row_batch = [], []
        for oi in range(ti + 1):
            model.load_bn_states(current if oi == ti else bn_states[oi])
            row.append(mu.test(model, tasks[oi][1], "cpu")[0])
            row_batch.append(test_batch_statistics(tasks[oi][1]))
        model.load_bn_states(current)
        bn_states.append(current)
        acc.append(row)
        acc_batch.append(row_batch)
        print(f"after task {ti + 1}: saved BN {row}, test-batch BN {row_batch}", flush=True)
    out = dict(
        vars(a),
        acc=acc,
        acc_test_batch_bn=acc_batch,
        mean_final=float(np.mean(acc[-1])),
        mean_final_test_batch_bn=float(np.mean(acc_batch[-1])),
        torch=torch.__version__,
        seconds=time.time() - t0,
    )
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("mean_final", "mean_final_test_batch_bn", "seconds")}))


if __name__ == "__main__":
    main()
