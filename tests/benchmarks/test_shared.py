"""The pieces the benchmarks share: interleaved timing, the child-process protocol and
the MEMprop training step."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import tree_allclose

from benchmarks import _child, _timing
from benchmarks._memprop import make_train_step, random_batch
from memjax.models.memprop import MEMprop, memprop_loss, project


def test_interleaved_calls_and_rounds():
    calls = {"a": 0, "b": 0}

    def f(k):
        def g():
            calls[k] += 1
            return jnp.zeros(())

        return g

    r = _timing.interleaved({"a": f("a"), "b": f("b")}, 4, warmup=2, untimed_call=True)
    # first call + 2 warm-up + 4 rounds x (1 untimed + n_inner timed)
    for k in "ab":
        assert calls[k] == 1 + 2 + 4 * (1 + r[k]["n_inner"])
        assert len(r[k]["times_s"]) == 4
        assert r[k]["min_s"] <= r[k]["median_s"]
    ratio = _timing.round_ratio(r, "a", "b")
    expected = np.median(np.asarray(r["a"]["times_s"]) / np.asarray(r["b"]["times_s"]))
    assert ratio == pytest.approx(expected)


def test_interleaved_min_sample_sets_inner_calls():
    r = _timing.interleaved({"f": lambda: jnp.zeros(())}, 2, warmup=1, min_sample_s=1e-3)
    assert 1 < r["f"]["n_inner"] <= 50


def test_child_result_line_and_failure(tmp_path):
    assert _child.read_result('noise\nRESULT{"a": [1, null]}\n') == {"a": [1, None]}
    assert _child.read_result("no result here\n") is None
    with pytest.raises(RuntimeError, match="failed"):
        _child.run_child("benchmarks.memory_bptt", "no-such-kind", {}, timeout=120)


def test_child_main_prints_strict_json(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["x", "k", '{"v": 2}'])
    _child.child_main({"k": lambda a: {"twice": np.float32(2 * a["v"]), "bad": float("nan")}})
    assert _child.read_result(capsys.readouterr().out) == {"twice": 4.0, "bad": None}


def test_train_step_equals_hand_written_step():
    model = MEMprop.init(jax.random.key(0), 20, 8, 4, n_steps=3, dt=1e-3)  # O(1) gradients
    opt = optax.adam(1e-2)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)
    x, y = random_batch(5, 20, 4, 0)
    step = make_train_step(
        static, opt, lambda m, x, y: memprop_loss(m, x, y, None)[0], project=True, return_grads=True
    )
    p1, _, l1, g1 = jax.jit(step)(params, state, x, y)

    l2, g2 = jax.value_and_grad(lambda p: memprop_loss(eqx.combine(p, static), x, y, None)[0])(
        params
    )
    upd, _ = opt.update(g2, state, params)
    p2 = eqx.filter(
        project(eqx.combine(optax.apply_updates(params, upd), static)), eqx.is_inexact_array
    )
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    assert tree_allclose((p1, g1), (p2, g2), rtol=1e-5, atol=1e-7)


def test_benchmark_modules_import_without_a_backend():
    """Importing a benchmark module initialises no JAX backend (the scale-out child calls
    jax.distributed.initialize after its imports)."""
    code = (
        "import benchmarks.scale_out, benchmarks.memory_bptt, benchmarks.precision, "
        "benchmarks.speed_devices\nfrom jax._src import xla_bridge as xb\n"
        "assert not xb._backends, xb._backends"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_child.REPO)
