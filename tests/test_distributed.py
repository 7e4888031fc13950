"""Data-parallel training (memjax.distributed, fit(mesh=)): 4 CPU devices in a subprocess
give the same losses and parameters as one device; placement and argument checks."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from memjax.distributed import data_mesh, replicate, shard_batch

# The training problem both subprocess scripts run (one definition, so the one-host and
# multi-host runs are compared on the same data, model and stochastic loss).
PROBLEM = textwrap.dedent(
    """
    import json
    import equinox as eqx, jax, jax.numpy as jnp, numpy as np, optax
    from memjax.distributed import data_mesh
    from memjax.models.memprop import cross_entropy
    from memjax.train import fit

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 12)).astype(np.float32)
    y = rng.integers(0, 3, 64).astype(np.int32)
    m = {"w": jnp.asarray(rng.normal(size=(12, 3)), jnp.float32), "b": jnp.zeros(3)}
    # A stochastic loss: the per-step key (replicated) must give the same draws.
    loss = lambda m, x, y, k: (cross_entropy(
        (x + 0.1 * jax.random.normal(k, x.shape)) @ m["w"] + m["b"], y), {})
    train = lambda mesh: fit(m, loss, optax.adam(1e-2), (x, y), epochs=3, batch_size=16,
                             progress=False, mesh=mesh)
    """
)

CHILD = PROBLEM + textwrap.dedent(
    """
    assert jax.device_count() == 4, jax.devices()
    out = {}
    for name, mesh in (("one", None), ("four", data_mesh())):
        mm, h = train(mesh)
        out[name] = {"loss": h["train_loss"],
                     "params": [np.asarray(a).ravel().tolist()
                                for a in jax.tree.leaves(eqx.filter(mm, eqx.is_inexact_array))],
                     "sharding": str(mm["w"].sharding)}
    print("RESULT" + json.dumps(out))
    """
)


def _result(stdout: str) -> dict:
    """The JSON a subprocess script printed after ``RESULT``."""
    line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def test_four_devices_match_one_device():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = _result(proc.stdout)
    one, four = out["one"], out["four"]
    assert "NamedSharding" in four["sharding"] and "P()" in four["sharding"]
    # Same trajectory up to the order of the batch sums (float32).
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-5)
    assert one["loss"][-1] < one["loss"][0]  # it trains
    for a, b in zip(one["params"], four["params"]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_placement_and_checks():
    mesh = data_mesh()
    n = len(jax.devices())
    x = np.arange(4 * n * 3, dtype=np.float32).reshape(4 * n, 3)
    xs = shard_batch(x, mesh)
    assert xs.sharding.spec == jax.sharding.PartitionSpec("data")
    np.testing.assert_array_equal(np.asarray(xs), x)
    r = replicate({"w": x, "k": jax.random.key(1), "s": 2.0}, mesh)
    assert r["w"].sharding.is_fully_replicated and r["s"] == 2.0
    with pytest.raises(ValueError, match="mesh has no axis"):
        shard_batch(x, mesh, axis="model")
    if n > 1:
        with pytest.raises(ValueError, match="divisible"):
            shard_batch(x[:1], mesh)


def test_fit_rejects_indivisible_batch(monkeypatch):
    import memjax.distributed as dist
    from memjax.train import fit

    monkeypatch.setattr(dist, "batch_divisor", lambda mesh, axis="data": 4)
    x, y = np.zeros((16, 2), np.float32), np.zeros(16, np.int32)
    with pytest.raises(ValueError, match="batch_size must be divisible"):
        fit(
            {"w": np.zeros(2, np.float32)},
            lambda m, x, y, k: (0.0, {}),
            None,
            (x, y),
            epochs=1,
            batch_size=6,
            progress=False,
            mesh=data_mesh(),
        )


WORKER = (
    textwrap.dedent(
        """
    import sys
    import jax
    pid, port = int(sys.argv[1]), sys.argv[2]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                               process_id=pid)
    """
    )
    + PROBLEM
    + textwrap.dedent(
        """
    mm, h = train(data_mesh())
    print("RESULT" + json.dumps({"devices": jax.device_count(), "loss": h["train_loss"],
          "w": np.asarray(mm["w"].addressable_data(0)).ravel().tolist()}))
    """
    )
)


@pytest.mark.slow
def test_two_processes_jax_distributed_match_one_device():
    # The multi-host path: 2 processes x 2 host devices joined by jax.distributed (CPU
    # collectives over gloo) train like the one-device run.
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    for p in procs:
        so, se = p.communicate(timeout=300)
        assert p.returncode == 0, se[-3000:]
        outs.append(_result(so))
    ref = _result(
        subprocess.run(
            [sys.executable, "-c", CHILD],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        ).stdout
    )["one"]
    for o in outs:
        assert o["devices"] == 4
        np.testing.assert_allclose(o["loss"], ref["loss"], rtol=1e-5)
        np.testing.assert_allclose(o["w"], ref["params"][1], rtol=1e-4, atol=1e-6)
