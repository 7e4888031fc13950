"""Train the `nir-deploy` benchmark's LIF network in snnTorch and export it to NIR.

A 784-256-10 network of snnTorch ``Leaky`` neurons (reset to zero, threshold 1,
beta 0.9) driven by the MNIST image as a constant input current for ``T`` steps
(direct coding), trained with snnTorch's ``ce_rate_loss`` and Adam. The last 5,000
training images are the validation split (the epoch count is chosen on it); the test
set is read once, at the end. The script writes, beside itself:

- ``mnist_lif.nir``: the graph from ``snntorch.export_nir.export_to_nir``;
- ``mnist_lif.json``: snnTorch's test accuracy (spike-count readout), its validation
  accuracy per epoch, the settings, the package versions;
- ``mnist_lif_pred.npy``: snnTorch's predicted test labels (uint8), so that the
  benchmark can count per-image agreement.

Run (needs the ``peers`` extra: torch, snntorch, nirtorch)::

    MEMJAX_DATA_DIR=/path/to/idx python benchmarks/nir/train_snntorch.py

``reset_mechanism="zero"`` is used because it is the reset of the NIR ``LIF`` node
(``v <- v_reset`` when ``v > v_threshold``); snnTorch's default subtractive reset has no
NIR equivalent, yet snnTorch exports it as the same node.
"""

from __future__ import annotations

import json
import pathlib
import platform
import sys
import time

import nir
import numpy as np
import snntorch as snn
import snntorch.functional as SF
import snntorch.utils
import torch
from snntorch.export_nir import export_to_nir

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from memjax.data import load, loaded_sources  # noqa: E402

SETTINGS = dict(
    hidden=256,
    n_steps=15,
    beta=0.9,
    threshold=1.0,
    batch_size=128,
    lr=2e-3,
    max_epochs=2,
    n_val=5000,
    seed=0,
    threads=2,
)


def make_net(hidden: int, beta: float, threshold: float) -> torch.nn.Sequential:
    """Per-neuron beta/threshold tensors: the export then writes node shapes [n]."""

    def leaky(n: int, **kw) -> snn.Leaky:
        return snn.Leaky(
            beta=torch.full((n,), beta),
            threshold=torch.full((n,), threshold),
            reset_mechanism="zero",
            init_hidden=True,
            **kw,
        )

    return torch.nn.Sequential(
        torch.nn.Linear(784, hidden),
        leaky(hidden),
        torch.nn.Linear(hidden, 10),
        leaky(10, output=True),
    )


def run(net: torch.nn.Sequential, x: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Output spikes [T, B, 10] for a constant input current x [B, 784]."""
    snn.utils.reset(net)
    out = []
    for _ in range(n_steps):
        spk, _mem = net(x)
        out.append(spk)
    return torch.stack(out)


@torch.no_grad()
def predict(net, x: np.ndarray, n_steps: int, batch: int = 1000) -> np.ndarray:
    preds = []
    for i in range(0, len(x), batch):
        spk = run(net, torch.from_numpy(x[i : i + batch]), n_steps)
        preds.append(spk.sum(0).argmax(1).numpy())
    return np.concatenate(preds)


def main() -> None:
    s = SETTINGS
    torch.manual_seed(s["seed"])
    torch.set_num_threads(s["threads"])
    xtr, ytr = load("mnist", "train")
    xte, yte = load("mnist", "test")
    flat = lambda a: (a.reshape(len(a), -1) / np.float32(255.0)).astype(np.float32)
    xtr, xte = flat(xtr), flat(xte)
    xval, yval = xtr[-s["n_val"] :], ytr[-s["n_val"] :]
    xtr, ytr = xtr[: -s["n_val"]], ytr[: -s["n_val"]]

    net = make_net(s["hidden"], s["beta"], s["threshold"])
    opt = torch.optim.Adam(net.parameters(), lr=s["lr"])
    loss_fn = SF.ce_rate_loss()
    rng = np.random.default_rng(s["seed"])
    val_acc, best, best_state = [], -1.0, None
    t0 = time.time()
    for epoch in range(s["max_epochs"]):
        perm = rng.permutation(len(xtr))
        for i in range(0, len(perm) - s["batch_size"] + 1, s["batch_size"]):
            idx = perm[i : i + s["batch_size"]]
            spk = run(net, torch.from_numpy(xtr[idx]), s["n_steps"])
            loss = loss_fn(spk, torch.from_numpy(ytr[idx]).long())
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float((predict(net, xval, s["n_steps"]) == yval).mean())
        val_acc.append(acc)
        print(f"epoch {epoch + 1}: val {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    pred = predict(net, xte, s["n_steps"])
    test_acc = float((pred == yte).mean())
    print(f"test accuracy {test_acc:.4f}", flush=True)

    graph = export_to_nir(net, torch.zeros(1, 784), ignore_dims=[0])
    nir.write(HERE / "mnist_lif.nir", graph)
    np.save(HERE / "mnist_lif_pred.npy", pred.astype(np.uint8))
    meta = dict(
        test_accuracy=test_acc,
        val_accuracy_per_epoch=val_acc,
        epochs_kept=int(np.argmax(val_acc)) + 1,
        readout="argmax of output spike count over n_steps (first index on ties)",
        input="direct: image/255 as a constant input current at every step",
        export_dt=1e-4,
        settings=s,
        train_seconds=round(time.time() - t0, 1),
        data_sources=loaded_sources(),
        versions=dict(
            python=platform.python_version(),
            torch=torch.__version__,
            snntorch=snn.__version__,
            nir=nir.__version__ if hasattr(nir, "__version__") else "unknown",
            numpy=np.__version__,
        ),
    )
    (HERE / "mnist_lif.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
