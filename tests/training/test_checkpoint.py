"""Checkpoints that cannot be confused or lose data: fingerprints, verified restore with
fallback, finite-only saves, resume=False that deletes nothing, label checks in `fit`."""

import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import tree_allclose

from memjax.losses import cross_entropy_loss
from memjax.training import (
    CheckpointCorruptError,
    Checkpointer,
    CheckpointMismatchError,
    NonFiniteStateError,
    fingerprint,
    fingerprint_digest,
    fit,
    fit_fingerprint,
    restore_checkpoint,
)


class Linear(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __init__(self, key, n_in=8, n_out=3):
        self.w = 0.1 * jax.random.normal(key, (n_in, n_out))
        self.b = jnp.zeros(n_out)

    def __call__(self, x):
        return x @ self.w + self.b[None]


def _data(seed=0, n=400):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(8, 3)), -1).astype(np.int32)
    return x, y


ADAM = optax.adam(1e-2)  # one object: one compilation of the step for all tests


def _fit(data, ckpt, *, epochs=2, seed=0, batch_size=50, optimizer=ADAM, **kw):
    return fit(
        Linear(jax.random.key(0)),
        cross_entropy_loss,
        optimizer,
        data,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_dir=ckpt,
        progress=False,
        **kw,
    )


def _leaves(m):
    return [np.asarray(v) for v in jax.tree.leaves(eqx.filter(m, eqx.is_array))]


def _array_files(step_dir: Path) -> list[Path]:
    """The data chunks orbax (OCDBT) wrote for the arrays of one step: the files in the
    ``d/`` folders under ``arrays/`` (per-process and merged copies)."""
    files = [p for p in (step_dir / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, sorted(str(p) for p in step_dir.rglob("*"))
    return files


# --------------------------------------------------------------------------------------
# Fingerprints


@pytest.mark.parametrize("change", ["data", "seed", "batch_size", "optimizer", "settings"])
def test_resume_of_another_run_raises_naming_the_difference(tmp_path, change):
    data = _data()
    _fit(data, tmp_path, settings={"width": 1})
    kw = dict(settings={"width": 1})
    if change == "data":
        kw["data"] = _data(seed=1)
    elif change == "seed":
        kw["seed"] = 1
    elif change == "batch_size":
        kw["batch_size"] = 40
    elif change == "optimizer":
        kw["optimizer"] = optax.adam(2e-2)
    else:
        kw["settings"] = {"width": 2}
    args = {"data": kw.pop("data", data)}
    part = {"data": "data.train", "settings": "settings.width"}.get(change, change)
    with pytest.raises(CheckpointMismatchError, match=rf"(?s)another run.*{part}:"):
        _fit(args["data"], tmp_path, epochs=3, **kw)


def test_on_mismatch_restart_trains_afresh_and_keeps_the_old_steps(tmp_path):
    _fit(_data(), tmp_path)
    other = _data(seed=1)
    with pytest.warns(RuntimeWarning, match="moved checkpoint step"):
        got, hist = _fit(other, tmp_path, on_mismatch="restart")
    want, want_hist = _fit(other, None)
    assert tree_allclose(_leaves(got), _leaves(want), rtol=0, atol=0)
    assert hist["epoch"] == [1, 2] and hist["train_loss"] == want_hist["train_loss"]
    old = list(tmp_path.glob("superseded-*"))
    assert len(old) == 1 and sorted(p.name for p in old[0].iterdir()) == ["1", "2"]


def test_fingerprint_digest_keys_runs():
    x, y = _data()
    a = fingerprint(model=Linear(jax.random.key(0)), seed=0, batch_size=50, data=(x, y))
    b = fingerprint(model=Linear(jax.random.key(1)), seed=0, batch_size=50, data=(x, y))
    c = fingerprint(model=Linear(jax.random.key(0)), seed=0, batch_size=50, data=(x, (y + 1) % 3))
    d = fingerprint(model=Linear(jax.random.key(0), n_out=4), seed=0, batch_size=50, data=(x, y))
    assert fingerprint_digest(a) == fingerprint_digest(b)  # same structure, same data
    assert len({fingerprint_digest(a), fingerprint_digest(c), fingerprint_digest(d)}) == 3
    assert len(fingerprint_digest(a)) == 12 and int(fingerprint_digest(a), 16) >= 0


def test_fit_fingerprint_is_what_fit_stores(tmp_path):
    data = _data()
    _fit(data, tmp_path, epochs=1, settings={"width": 1})
    record = json.loads((tmp_path / "1" / "meta" / "metadata").read_text())
    fp = fit_fingerprint(
        Linear(jax.random.key(0)), ADAM, data, seed=0, batch_size=50, settings={"width": 1}
    )
    assert record["fingerprint"] == fp
    other = fit_fingerprint(
        Linear(jax.random.key(0)), ADAM, data, seed=1, batch_size=50, settings={"width": 1}
    )
    assert fingerprint_digest(other) != fingerprint_digest(fp)


# --------------------------------------------------------------------------------------
# Corruption


def test_flipped_bytes_fall_back_to_the_newest_intact_step(tmp_path):
    data = _data()
    _fit(data, tmp_path, epochs=2)
    for f in _array_files(tmp_path / "2"):
        raw = bytearray(f.read_bytes())
        for i in range(len(raw) // 3, len(raw) // 3 + 16):
            raw[i] ^= 0xFF
        f.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match=r"step 2 is corrupt.*falling back to step 1"):
        resumed, hist = _fit(data, tmp_path, epochs=3)
    straight, want = _fit(data, None, epochs=3)
    assert tree_allclose(_leaves(resumed), _leaves(straight), rtol=0, atol=0)
    assert hist["train_loss"] == want["train_loss"]
    assert list(tmp_path.glob("corrupt-2-*"))  # kept for inspection, not deleted


def test_every_step_truncated_is_reported_corrupt(tmp_path):
    data = _data()
    _fit(data, tmp_path, epochs=2)
    for step in ("1", "2"):
        for f in _array_files(tmp_path / step):
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointCorruptError, match="checkpoint .* is corrupt"):
        _fit(data, tmp_path, epochs=3)


def test_structure_mismatch_is_not_called_corrupt(tmp_path):
    with Checkpointer(tmp_path, {"run": "a"}) as ckpt:
        ckpt.save(1, {"w": jnp.ones(3)}, {})
    with (
        Checkpointer(tmp_path, {"run": "a"}) as ckpt,
        pytest.raises(CheckpointMismatchError, match="does not match"),
    ):
        ckpt.restore({"w": jnp.ones(4)})


# --------------------------------------------------------------------------------------
# Non-finite states


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = _data()  # 8 steps per epoch

    def lr(count):
        return jnp.where(count < 12, 1e-2, 1e38)

    with pytest.raises(NonFiniteStateError, match=r"epoch 2, step \d+ of 8 \(optimizer step"):
        _fit(data, tmp_path, epochs=4, optimizer=optax.adam(lr))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["1"]
    state = restore_checkpoint(tmp_path, Linear(jax.random.key(0)), optax.adam(lr))
    assert state.epoch == 1 and all(np.all(np.isfinite(a)) for a in _leaves(state.model))


def test_save_refuses_a_non_finite_state(tmp_path):
    with Checkpointer(tmp_path, {"run": "a"}) as ckpt:
        ckpt.save(1, {"w": jnp.ones(3)}, {})
        with pytest.raises(NonFiniteStateError, match="not saved"):
            ckpt.save(2, {"w": jnp.array([1.0, jnp.nan, 0.0])}, {})
    with Checkpointer(tmp_path, {"run": "a"}) as ckpt:
        tree, _ = ckpt.restore({"w": jnp.zeros(3)})
    np.testing.assert_array_equal(tree["w"], np.ones(3))


def test_on_nonfinite_skip_leaves_the_state_unchanged():
    x, y = _data()
    x = x.copy()
    x[::7] = np.nan  # every batch of 50 holds a NaN sample
    model, hist = _fit((x, y), None, epochs=1, on_nonfinite="skip")
    assert hist["train_skipped_steps"] == [8]
    assert tree_allclose(_leaves(model), _leaves(Linear(jax.random.key(0))), rtol=0, atol=0)


# --------------------------------------------------------------------------------------
# resume=False


def test_resume_false_deletes_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text(json.dumps({"a": 1}))
    data = _data()
    _fit(data, tmp_path, epochs=2)
    with pytest.warns(RuntimeWarning, match="resume=False: moved checkpoint step"):
        _, hist = _fit(_data(seed=3), tmp_path, epochs=1, resume=False)
    assert hist["epoch"] == [1]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "results" / "r.json").read_text()) == {"a": 1}
    old = list(tmp_path.glob("superseded-*"))
    assert len(old) == 1 and sorted(os.listdir(old[0])) == ["1", "2"]
    # The moved checkpoint is still readable where it now lies.
    state = restore_checkpoint(old[0], Linear(jax.random.key(0)), ADAM)
    assert state.epoch == 2


# --------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize(
    "bad, match",
    [
        (-1, r"labels must be in \[0, 3\); got values from -1"),
        (3, r"labels must be in \[0, 3\); got values from 0 to 3"),
    ],
)
def test_fit_rejects_labels_outside_the_logits(bad, match):
    x, y = _data()
    y = y.copy()
    y[5] = bad
    with pytest.raises(ValueError, match="fit: train_data: " + match):
        _fit((x, y), None, epochs=1)


def test_fit_checks_labels_against_n_classes():
    x, y = _data()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        _fit((x, y), None, epochs=1, n_classes=2)
    with pytest.raises(ValueError, match="labels must be integers"):
        _fit((x, y.astype(np.float32)), None, epochs=1, n_classes=3)
