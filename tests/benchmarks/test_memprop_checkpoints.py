"""The MEMprop benchmarks keep each training run's checkpoints in a folder keyed by its
fingerprint: a run on other data (the bundled sample, then the full set) or with other
settings starts afresh instead of resuming another run's model."""

import dataclasses

import numpy as np
import pytest

import memjax.data as D
from benchmarks import memprop as mb
from benchmarks._context import Context

TINY = dataclasses.replace(
    mb.QUICK, n_hidden=8, n_steps=2, epochs=1, batch_size=32, train_size=64, test_size=32
)


@pytest.fixture
def data():
    x, y = D.load("mnist", "train", source="sample", limit=192)
    x, y = D.scale_images(x, flatten=True), y.astype(np.int32)
    first = ((x[:64], y[:64]), (x[64:96], y[64:96]))
    other = ((x[96:160], y[96:160]), (x[160:192], y[160:192]))
    return first, other


def _folders(tmp_path):
    return sorted(p.name for p in (tmp_path / "checkpoints").iterdir())


def test_checkpoint_folder_is_keyed_by_data_and_settings(tmp_path, data):
    ctx = Context(name="memprop-mnist", quick=True, out=tmp_path)
    s = dataclasses.asdict(TINY)
    (train, test), (train2, test2) = data
    model, opt = mb._mif_setup(ctx, train, s)
    key = mb._ckpt(ctx, "memprop-mnist-mif", model, opt, train, test, s["batch_size"])
    assert key == mb._ckpt(ctx, "memprop-mnist-mif", model, opt, train, test, s["batch_size"])
    assert key.name.startswith("memprop-mnist-mif-")
    others = {
        mb._ckpt(ctx, "memprop-mnist-mif", model, opt, train2, test2, s["batch_size"]),
        mb._ckpt(ctx, "memprop-mnist-mif", model, opt, train, test, 16),
        mb._ckpt(
            Context(name="memprop-mnist", quick=True, out=tmp_path, seed=1),
            "memprop-mnist-mif",
            model,
            opt,
            train,
            test,
            s["batch_size"],
        ),
    }
    assert key not in others and len(others) == 3


def test_run_on_other_data_does_not_resume(tmp_path, data, capsys):
    ctx = Context(name="memprop-mnist", quick=True, out=tmp_path)
    s = dataclasses.asdict(TINY)
    (train, test), (train2, test2) = data
    _, hist, _ = mb.train_mif(ctx, "memprop-mnist-mif", train, test, s)
    assert hist["epoch"] == [1] and len(_folders(tmp_path)) == 1
    assert "resumed" not in capsys.readouterr().err
    # the same run again resumes its finished checkpoint: nothing left to train
    mb.train_mif(ctx, "memprop-mnist-mif", train, test, s)
    assert "nothing left to train" in capsys.readouterr().err
    assert len(_folders(tmp_path)) == 1
    # other data (as the full set after the sample): a new folder, trained afresh
    _, hist2, _ = mb.train_mif(ctx, "memprop-mnist-mif", train2, test2, s)
    assert "resumed" not in capsys.readouterr().err
    assert hist2["epoch"] == [1] and len(_folders(tmp_path)) == 2
