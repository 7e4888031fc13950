"""``scale-out``: data-parallel MEMprop training on host devices against one device.

MEMprop on real MNIST on 4 host CPU devices (``--xla_force_host_platform_device_count=4``,
in a subprocess) against one device: per-step losses, parameters and step times; the
library path ``fit(mesh=)`` against ``fit`` on one device; and (full run) the same
training as 2 `jax.distributed` processes of 2 host devices each (CPU collectives over
gloo).
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import memjax.data as D
from memjax.distributed import data_mesh, replicate, shard_batch
from memjax.models.memprop import MEMprop, memprop_loss, project
from memjax.train import fit

from ._child import child_main, read_result, run_child, start_child
from ._context import Context
from ._memprop import make_train_step
from ._plot import plt
from ._timing import load_avg

__all__ = ["run", "Settings", "FULL", "QUICK"]

#: Host devices of the data-parallel run.
N_DEVICES = 4


@dataclasses.dataclass(frozen=True)
class Settings:
    """``steps`` training steps of ``batch`` MNIST images on 784-``n_hidden``-10 MEMprop;
    ``full_checks``: also ``fit(mesh=)`` and the multi-process run."""

    steps: int = 20
    batch: int = 128
    n_hidden: int = 256
    full_checks: bool = True


FULL = Settings()
QUICK = dataclasses.replace(FULL, steps=6, n_hidden=32, full_checks=False)


def _dp_setup(a: dict):
    """MNIST batches, model, optimizer and the jitted train step of the scale-out run."""
    steps, B = a["steps"], a["batch"]
    x, y = D.load("mnist", "train", data_dir=a["data_dir"], limit=steps * B)
    x, y = D.scale_images(x, flatten=True), y.astype(np.int32)
    model = MEMprop.init(jax.random.key(a["seed"]), 784, a["n_hidden"], 10)
    opt = optax.adam(4e-3)
    params0, static = eqx.partition(model, eqx.is_inexact_array)

    step = jax.jit(
        make_train_step(static, opt, lambda m, x, y: memprop_loss(m, x, y, None)[0], project=True)
    )
    return x, y, model, opt, params0, step


def _dp_run(a: dict, setup, mesh) -> dict:
    """Per-step losses and times of ``a["steps"]`` steps, data-parallel over ``mesh``
    (or on the first device when ``mesh`` is None)."""
    x, y, _, opt, params0, step = setup
    B = a["batch"]
    params, opt_state = params0, opt.init(params0)
    if mesh is not None:
        params, opt_state = replicate((params, opt_state), mesh)
    else:
        params, opt_state = jax.device_put((params, opt_state), jax.devices()[0])
    losses, times = [], []
    for i in range(a["steps"]):
        xb, yb = jnp.asarray(x[i * B : (i + 1) * B]), jnp.asarray(y[i * B : (i + 1) * B])
        xb, yb = shard_batch((xb, yb), mesh) if mesh is not None else (xb, yb)
        t0 = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, xb, yb)
        loss = float(loss)
        times.append(time.perf_counter() - t0)
        losses.append(loss)
    leaves = jax.tree.leaves(params)
    return {
        "losses": losses,
        "first_step_s": times[0],
        "median_step_ms": float(np.median(times[1:]) * 1e3),
        "params_sharding": str(leaves[0].sharding),
        "params": [np.asarray(p.addressable_data(0)).ravel() for p in leaves],
    }


def _child_multiprocess(a: dict) -> dict:
    """One of ``a["processes"]`` processes of a `jax.distributed` run (CPU, gloo)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"localhost:{a['port']}",
        num_processes=a["processes"],
        process_id=a["process_id"],
    )

    out = _dp_run(a, _dp_setup(a), data_mesh())
    out.pop("params")
    return {
        "process_id": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        **out,
    }


def _child_scale_out(a: dict) -> dict:
    n_dev = jax.device_count()
    setup = _dp_setup(a)
    x, y, model, opt, _, _ = setup
    B = a["batch"]
    out: dict[str, Any] = {"devices": n_dev, "device_kinds": [str(d) for d in jax.devices()]}
    for name, mesh in (("one_device", None), (f"{n_dev}_devices", data_mesh())):
        out[name] = _dp_run(a, setup, mesh)
    one, many = out["one_device"], out[f"{n_dev}_devices"]
    l1, ln = np.asarray(one["losses"]), np.asarray(many["losses"])
    out["loss_max_abs_diff"] = float(np.max(np.abs(l1 - ln)))
    out["loss_max_rel_diff"] = float(np.max(np.abs(l1 - ln) / np.abs(l1)))
    out["params_max_rel_diff"] = float(
        max(
            np.max(np.abs(p - q)) / max(np.max(np.abs(p)), 1e-30)
            for p, q in zip(one.pop("params"), many.pop("params"))
        )
    )
    if a.get("skip_fit"):
        return out
    # The library path: fit(mesh=) for one epoch of the same steps vs fit on one device.
    fits = {}
    for name, mesh in (("one_device", None), ("mesh", data_mesh())):
        m, h = fit(
            model,
            memprop_loss,
            opt,
            (x, y),
            epochs=1,
            batch_size=B,
            seed=a["seed"],
            project=project,
            progress=False,
            mesh=mesh,
        )
        fits[name] = (
            h,
            [np.asarray(p).ravel() for p in jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array))],
        )
    out["fit_train_loss"] = {k: v[0]["train_loss"][0] for k, v in fits.items()}
    out["fit_seconds"] = {k: v[0]["seconds"][0] for k, v in fits.items()}
    out["fit_params_max_rel_diff"] = float(
        max(
            np.max(np.abs(p - q)) / max(np.max(np.abs(p)), 1e-30)
            for p, q in zip(fits["one_device"][1], fits["mesh"][1])
        )
    )
    return out


def run(ctx: Context) -> dict:
    """Data-parallel MEMprop training on 4 host devices vs one device (subprocess)."""
    load0 = load_avg()
    n_dev = N_DEVICES
    s = QUICK if ctx.quick else FULL
    a = {
        "steps": s.steps,
        "batch": s.batch,
        "n_hidden": s.n_hidden,
        "seed": ctx.seed,
        "data_dir": ctx.data_dir,
        "skip_fit": not s.full_checks,
    }
    r = run_child(
        __name__,
        "scale_out",
        a,
        env={"XLA_FLAGS": f"--xla_force_host_platform_device_count={n_dev}"},
    )
    many = f"{n_dev}_devices"
    # --quick: the 4-device mesh only (fit(mesh=) and the multi-process path are covered
    # by tests/test_distributed.py)
    mp = None if not s.full_checks else _multiprocess(ctx, a, processes=2, devices_per_process=2)
    metrics = {
        "devices": r["devices"],
        "loss_max_abs_diff": r["loss_max_abs_diff"],
        "loss_max_rel_diff": r["loss_max_rel_diff"],
        "params_max_rel_diff": r["params_max_rel_diff"],
        "same_trajectory": bool(r["loss_max_rel_diff"] < 1e-4),
        "losses_one_device": r["one_device"]["losses"],
        f"losses_{many}": r[many]["losses"],
        "step_ms_one_device": r["one_device"]["median_step_ms"],
        f"step_ms_{many}": r[many]["median_step_ms"],
        "speedup_4_host_devices": r["one_device"]["median_step_ms"] / r[many]["median_step_ms"],
        "params_sharding": r[many]["params_sharding"],
        "fit_train_loss": r.get("fit_train_loss", "skipped (--quick)"),
        "fit_params_max_rel_diff": r.get("fit_params_max_rel_diff", "skipped (--quick)"),
        "fit_seconds": r.get("fit_seconds", "skipped (--quick)"),
    }
    if mp is not None:
        lm = np.asarray(mp[0]["losses"])
        l1 = np.asarray(r["one_device"]["losses"])
        metrics["multiprocess"] = {
            "processes": mp[0]["processes"],
            "devices": mp[0]["devices"],
            "local_devices": mp[0]["local_devices"],
            "losses": mp[0]["losses"],
            "losses_agree_across_processes": bool(all(q["losses"] == mp[0]["losses"] for q in mp)),
            "loss_max_rel_diff_vs_one_device": float(np.max(np.abs(lm - l1) / np.abs(l1))),
            "median_step_ms": mp[0]["median_step_ms"],
        }
    _plot_scale_out(ctx, r, many, mp)
    config = {
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
        **{k: v for k, v in a.items()},
        "dataset": "MNIST train (first steps x batch images)",
        "topology": f"784-{a['n_hidden']}-10 MEMprop, crossbars, 10 steps of 1 ms",
        "optimizer": "Adam 4e-3, u clipped to [0, 1] after each step",
        "xla_flags": f"--xla_force_host_platform_device_count={n_dev}",
        "sharding": "batch P('data') over Mesh(4 CPU devices), params/opt state P()",
        "multiprocess": "2 processes x 2 host devices, jax.distributed.initialize on "
        "localhost, CPU collectives over gloo, same global mesh code",
        "note": "4 host devices share this machine's 2 cores: scale-out here shows "
        "correctness, not speed",
    }
    return {"metrics": metrics, "config": config}


def _multiprocess(ctx, a, processes: int, devices_per_process: int):
    """The same training as ``processes`` `jax.distributed` processes on this machine
    (CPU collectives over gloo), each with ``devices_per_process`` host devices; None
    (with a message) where that runtime is unavailable."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}"}
    procs = [
        start_child(
            __name__,
            "multiprocess",
            {**a, "port": port, "processes": processes, "process_id": i},
            env,
        )
        for i in range(processes)
    ]
    outs = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
        res = read_result(so)
        if p.returncode != 0 or res is None:
            ctx.log(f"multi-process run failed (rc {p.returncode}): {se[-1500:]}")
            for q in procs:
                if q.poll() is None:
                    q.kill()
            return None
        outs.append(res)
    ctx.log(
        f"{processes} processes x {devices_per_process} devices: losses {outs[0]['losses'][:3]}..."
    )
    return outs


def _plot_scale_out(ctx, r, many, mp=None):
    l1, ln = np.asarray(r["one_device"]["losses"]), np.asarray(r[many]["losses"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    s = np.arange(1, len(l1) + 1)
    axes[0].plot(s, l1, "o-", lw=2.5, alpha=0.5, label="1 device")
    axes[0].plot(s, ln, "x--", label=f"{many.replace('_', ' ')} (batch sharded)")
    if mp is not None:
        lm = np.asarray(mp[0]["losses"])
        axes[0].plot(
            s,
            lm,
            "+:",
            ms=9,
            label=f"{mp[0]['processes']} processes x "
            f"{mp[0]['local_devices']} devices (jax.distributed)",
        )
        axes[1].semilogy(
            s, np.maximum(np.abs(l1 - lm) / np.abs(l1), 1e-10), "C3+:", label="multi-process vs 1"
        )
    axes[0].set(xlabel="training step", ylabel="loss", title="MEMprop on MNIST")
    axes[0].legend()
    axes[1].semilogy(
        s, np.maximum(np.abs(l1 - ln) / np.abs(l1), 1e-10), "k.-", label="4 devices vs 1"
    )
    axes[1].legend(fontsize=8)
    axes[1].set(
        xlabel="training step",
        ylabel="|rel. loss difference|",
        title="difference to one device (float32)",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    ctx.save_figure(fig, "losses")


CHILDREN = {"scale_out": _child_scale_out, "multiprocess": _child_multiprocess}

if __name__ == "__main__":
    child_main(CHILDREN)
