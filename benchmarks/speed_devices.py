"""``speed-devices``: MIF neuron throughput, and memjax against ngspice at matched accuracy.

- **throughput**: MIF neuron steps per second for ``N = 10^3 .. 10^6`` neurons (a D2D
  population, one jitted `lax.scan` of `mif_step` at 2 us, final state only);
- **matched accuracy**: ``N`` independent MIF neurons (``C`` = 10 nF, both memristors
  with ``V_k = v - E_k``, i.e. ``polarity2 = +1``; lognormal D2D spread :data:`SPREAD`
  for ``N > 1``), each driven by a 2 uA current switched on at ``t = 0`` through its alpha
  synapse, for 20 ms, sampled every :data:`DT_OUT`. Both tools are measured against the
  same reference, diffrax (`memjax.integrate.odeint_reference`, Kvaerno5, rtol 1e-10,
  float64) on :data:`N_PROBES` probe neurons: ``err = max_t |v - v_ref| / ptp(v_ref)``,
  worst probe. ngspice (defaults: trapezoidal rule, reltol 1e-3) gives ``err_ngspice``
  and its process wall time. Every memjax candidate of :data:`CANDIDATES` (an integrator
  of the public API, float32) at each step of :data:`DT_LADDER` gives its error on the
  probes; per integrator the coarsest step with ``err <= err_ngspice`` is timed on all
  ``N`` neurons (median steady-state run of one jitted call returning ``v`` at the
  output times; compilation timed separately), and the fastest is ``chosen``.
  ``speedup[N] = ngspice seconds / chosen memjax seconds``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from memjax.integrate import RK4, Heun, odeint, odeint_reference
from memjax.neurons import MIF, mif_simulate, mif_step
from memjax.populations import sample_population
from memjax.spice import mif_netlist, run_ngspice

from ._context import Context
from ._plot import plt
from ._timing import load_avg, timeit

__all__ = ["run", "Settings", "FULL", "QUICK", "CANDIDATES", "DT_LADDER"]

#: Relative D2D spread of the neuron population (lognormal), shared by memjax and SPICE.
SPREAD = {"C": 0.1, "m1.R_on": 0.1, "m2.R_on": 0.1}
#: The matched-accuracy problem: input current (A), duration and output spacing (s).
I_IN, T_STOP, DT_OUT = 2e-6, 20e-3, 1e-5
N_PROBES = 16
#: Wall-clock limit (s) of one ngspice run; a size that runs past it is reported as a
#: lower bound on the speedup, matched to the strictest ngspice error measured.
NGSPICE_TIMEOUT_S = 900.0
#: Reference membrane of probe 0 at the smallest size, for the figure.
SIZES_WITH_WAVES = 1
WAVES: dict[int, np.ndarray] = {}
#: Integration steps tried, as divisors of DT_OUT (10 us .. 0.1 us).
DT_LADDER = (1, 2, 5, 10, 20, 50, 100)


def _neuron(**kw) -> MIF:
    """The benchmark's MIF neuron: C = 10 nF, literal V_k = v - E_k for both memristors."""
    return MIF(C=10e-9, polarity2=1.0, **kw)


def _own(pop: MIF, s0, sub: int):
    """The neuron's own integrator (`mif_simulate`, `MIF.step`) at ``DT_OUT / sub``."""
    n_out = int(round(T_STOP / DT_OUT)) + 1
    i_in = jnp.full((n_out - 1,) + s0.v.shape, I_IN, s0.v.dtype)
    final, st = mif_simulate(pop, i_in, DT_OUT, state=s0, substeps=sub)
    return jnp.concatenate([st.v, final.v[None]])


def _odeint(solver):
    def f(pop: MIF, s0, sub: int):
        n_out = int(round(T_STOP / DT_OUT)) + 1
        field = pop.vector_field(lambda t: jnp.asarray(I_IN, s0.v.dtype))
        _, ys = odeint(
            field,
            s0,
            dt=DT_OUT,
            n_steps=n_out,
            solver=solver,
            substeps=sub,
            output=lambda t, y: y.v,
        )
        return ys

    return f


#: memjax candidates: name -> ``fn(population, state0, substeps) -> v [T_out, N]`` at
#: the output times ``k DT_OUT``. Extend with any further integrator of the public API.
CANDIDATES: dict[str, Callable] = {
    "mif_step": _own,
    "odeint-RK4": _odeint(RK4()),
    "odeint-Heun": _odeint(Heun()),
}


def _throughput(ctx, sizes, total_steps, repeats):
    """Neuron steps per second of a scan over N MIF neurons (final state only)."""
    rec: dict[str, Any] = {
        "neuron_steps_per_second": {},
        "steps": {},
        "median_s": {},
        "compile_s": {},
    }
    for n in sizes:
        T = int(np.clip(total_steps // n, 20, 5000))
        pop = _population(n, ctx.seed)
        arrays, static = eqx.partition(pop, eqx.is_array)
        arrays = jax.tree.map(lambda a: a.astype(jnp.float32), arrays)
        amps = jnp.asarray(_amplitudes(n), jnp.float32)

        def f(arrays, amps, T=T, static=static):
            p = eqx.combine(arrays, static)
            s0 = p.init_state(amps.shape, jnp.float32)
            s, _ = jax.lax.scan(lambda s, _: (mif_step(p, s, amps, 2e-6), None), s0, None, length=T)
            return s

        t0 = time.perf_counter()
        comp = jax.jit(f).lower(arrays, amps).compile()
        compile_s = time.perf_counter() - t0
        st = timeit(comp, arrays, amps, repeats=repeats)
        assert bool(jnp.all(jnp.isfinite(comp(arrays, amps).v)))
        k = str(n)
        rec["steps"][k] = T
        rec["median_s"][k] = st["median_s"]
        rec["compile_s"][k] = compile_s
        rec["neuron_steps_per_second"][k] = n * T / st["median_s"]
        ctx.log(f"throughput N={n}: {n * T / st['median_s']:.3g} neuron-steps/s (T={T})")
    return rec


@dataclasses.dataclass(frozen=True)
class Settings:
    """Throughput at ``throughput_sizes`` neurons (``total_steps`` neuron steps per size,
    median of ``repeats``); the matched-accuracy comparison at ``spice_sizes``."""

    throughput_sizes: tuple[int, ...] = (10**3, 10**4, 10**5, 10**6)
    total_steps: int = 2 * 10**7
    repeats: int = 5
    spice_sizes: tuple[int, ...] = (1, 100, 1000, 10000)


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    throughput_sizes=(10**3, 10**4),
    total_steps=10**6,
    repeats=3,
    spice_sizes=(1, 10),
)


def _population(n: int, seed: int) -> MIF:
    if n == 1:
        return _neuron()
    return sample_population(_neuron(), jax.random.fold_in(jax.random.key(seed), n), n, SPREAD)


def _amplitudes(n: int) -> np.ndarray:
    """Throughput inputs (A), log-spaced 3 .. 30 uA."""
    return 3e-6 * 10.0 ** (np.arange(n) / max(n - 1, 1))


def _subset(pop: MIF, idx: np.ndarray, n: int) -> MIF:
    return jax.tree.map(lambda a: a[idx] if eqx.is_array(a) and a.shape == (n,) else a, pop)


def _cast(pop: MIF, dtype) -> MIF:
    return jax.tree.map(lambda a: jnp.asarray(a, dtype) if eqx.is_inexact_array(a) else a, pop)


def _reference(probe_pop: MIF, shape) -> np.ndarray:
    """Adaptive diffrax solution of the probes' ``v`` at the output times (float64)."""
    with jax.enable_x64(True):
        p = _cast(probe_pop, jnp.float64)
        s0 = p.init_state(shape, jnp.float64)
        ts = DT_OUT * jnp.arange(int(round(T_STOP / DT_OUT)) + 1)
        field = p.vector_field(lambda t: jnp.asarray(I_IN, jnp.float64))
        ys = odeint_reference(field, s0, ts, rtol=1e-10, atol=1e-14, stiff=True, dtmax=DT_OUT)
        return np.asarray(ys.v, np.float64), s0


def _err(v, v_ref) -> float:
    v = np.asarray(v, np.float64).reshape(v_ref.shape)
    return float(np.max(np.max(np.abs(v - v_ref), axis=0) / np.ptp(v_ref, axis=0)))


def _candidate_errors(probe_pop: MIF, v_ref) -> dict[str, dict[int, float]]:
    """Error of every candidate at every ladder step on the probes (float32)."""
    p32 = _cast(probe_pop, jnp.float32)
    s0 = p32.init_state(v_ref.shape[1:], jnp.float32)
    out: dict[str, dict[int, float]] = {}
    for name, fn in CANDIDATES.items():
        out[name] = {}
        for sub in DT_LADDER:
            v = jax.jit(fn, static_argnums=2)(p32, s0, sub)
            out[name][sub] = _err(v, v_ref)
    return out


def _time_candidate(pop: MIF, n: int, name: str, sub: int, repeats: int):
    p32 = _cast(pop, jnp.float32)
    s0 = p32.init_state((n,), jnp.float32)
    fn = CANDIDATES[name]
    t0 = time.perf_counter()
    # A fresh closure: compiled here, not found in the cache of the error sweep.
    comp = jax.jit(lambda p, s: fn(p, s, sub)).lower(p32, s0).compile()
    compile_s = time.perf_counter() - t0
    st = timeit(comp, p32, s0, repeats=repeats)
    return st["median_s"], compile_s


def _ngspice(
    pop: MIF, n: int, probes: np.ndarray, v_ref: np.ndarray, tmp, timeout: float
) -> tuple[float | None, float]:
    """ngspice's error on the probes and its process wall time, for ``n`` neurons;
    ``(None, timeout)`` when it runs past ``timeout`` seconds."""
    net = mif_netlist(pop, np.full(n, I_IN), T_STOP, t_step=DT_OUT, probe=probes)
    try:
        res = run_ngspice(net, workdir=tmp, stem=f"n{n}", timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, timeout
    ts = DT_OUT * np.arange(v_ref.shape[0])
    keep = (ts >= res.t[0]) & (ts <= res.t[-1])
    v = np.stack([res.sample(f"v(m{k})", ts[keep]) for k in probes], axis=-1)
    return _err(v, v_ref[keep]), res.wall_s


def _matched(ctx: Context, n: int, repeats: int, tmp, strictest: float | None) -> dict:
    """One size: ngspice's error and time; every candidate's error; the fastest memjax
    configuration at ngspice's accuracy or better. When ngspice runs past
    :data:`NGSPICE_TIMEOUT_S`, memjax is matched to ``strictest`` (the smallest ngspice
    error of the sizes that finished) and the speedup is a lower bound."""
    pop = _population(n, ctx.seed)
    probes = np.unique(np.linspace(0, n - 1, min(n, N_PROBES)).astype(int))
    probe_pop = _subset(pop, probes, n) if n > 1 else pop
    v_ref, _ = _reference(probe_pop, (len(probes),))
    measured, t_sp = _ngspice(pop, n, probes, v_ref, tmp, NGSPICE_TIMEOUT_S)
    timed_out = measured is None
    if timed_out:
        if strictest is None:
            ctx.log(f"N={n}: ngspice ran past {t_sp:g} s and no size finished: no match")
            return {"ngspice_seconds": None, "ngspice_timeout_s": t_sp, "chosen": None}
        ctx.log(f"N={n}: ngspice ran past {t_sp:g} s; matching its strictest error {strictest:.2e}")
    err_sp = strictest if measured is None else measured
    if n == min(SIZES_WITH_WAVES, n):
        WAVES[n] = v_ref[:, 0]
    errs = _candidate_errors(probe_pop, v_ref)
    timed = {}
    for name, by_sub in errs.items():
        ok = [sub for sub in DT_LADDER if by_sub[sub] <= err_sp]
        if ok:
            sub = min(ok)  # the coarsest step that matches ngspice
            run_s, comp_s = _time_candidate(pop, n, name, sub, repeats)
            timed[name] = {
                "dt_s": DT_OUT / sub,
                "err": by_sub[sub],
                "seconds": run_s,
                "compile_seconds": comp_s,
            }
    row: dict[str, Any] = {
        "ngspice_seconds": None if timed_out else t_sp,
        "ngspice_err": measured,
        "matched_err": err_sp,
        "candidate_errors": {
            k: {str(DT_OUT / s): e for s, e in v.items()} for k, v in errs.items()
        },
        "timed": timed,
    }
    if timed:
        best = min(timed, key=lambda k: timed[k]["seconds"])
        row["chosen"] = {"integrator": best, **timed[best]}
        row["memjax_seconds"] = timed[best]["seconds"]
        row["memjax_compile_seconds"] = timed[best]["compile_seconds"]
        row["speedup" if not timed_out else "speedup_lower_bound"] = t_sp / timed[best]["seconds"]
        if timed_out:
            row["ngspice_timeout_s"] = t_sp
        ctx.log(
            f"N={n}: ngspice {t_sp:.3g} s (err {err_sp:.2e}); memjax {best} at "
            f"{timed[best]['dt_s']:.2g} s: {timed[best]['seconds']:.3g} s (err "
            f"{timed[best]['err']:.2e}, compile {timed[best]['compile_seconds']:.2f} s), "
            f"speedup {'>= ' if timed_out else ''}{t_sp / timed[best]['seconds']:.3g}"
        )
    else:
        row["chosen"] = None
        ctx.log(f"N={n}: no candidate reached ngspice's error {err_sp:.2e}")
    return row


def _ngspice_version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
    return next((ln.strip("* ").strip() for ln in out.splitlines() if "ngspice-" in ln), "unknown")


def run(ctx: Context) -> dict:
    """MIF throughput against N, and memjax vs ngspice at matched accuracy."""
    import tempfile

    load0 = load_avg()
    s = QUICK if ctx.quick else FULL
    tp = _throughput(ctx, s.throughput_sizes, s.total_steps, s.repeats)
    metrics: dict[str, Any] = {"throughput": tp}
    n_last = s.throughput_sizes[-1]
    metrics[f"neuron_steps_per_second_1e{round(np.log10(n_last))}"] = tp["neuron_steps_per_second"][
        str(n_last)
    ]
    exe = shutil.which("ngspice")
    if exe is None:
        ctx.log("ngspice not found on PATH: skipping the SPICE comparison")
        metrics["matched"] = "skipped: ngspice not found"
    else:
        rows: dict[str, dict] = {}
        with tempfile.TemporaryDirectory(prefix="memjax-speed-") as tmp:
            for n in ctx.progress(s.spice_sizes, desc="matched accuracy"):
                errs = [r["ngspice_err"] for r in rows.values() if r.get("ngspice_err")]
                rows[str(n)] = _matched(ctx, n, s.repeats, tmp, min(errs) if errs else None)
        metrics["matched"] = rows
        # Summary keys: the speedup at matched accuracy per size (a lower bound where
        # ngspice ran past its time limit), and the worst error (against the reference)
        # of the configurations chosen.
        for n, r in rows.items():
            if r.get("speedup") is not None:
                metrics[f"speedup_vs_ngspice_{n}"] = r["speedup"]
            if r.get("speedup_lower_bound") is not None:
                metrics[f"speedup_vs_ngspice_{n}_lower_bound"] = r["speedup_lower_bound"]
        chosen = [r["chosen"]["err"] for r in rows.values() if r.get("chosen")]
        metrics["max_rel_err"] = max(chosen) if chosen else None
    _plot(ctx, tp, metrics["matched"])
    config = {
        "load_avg_start": load0,
        "load_avg_end": load_avg(),
        "throughput": "MIF population (lognormal spread " + json.dumps(SPREAD) + "), float32, "
        "constant per-neuron input 3-30 uA, dt 2 us, final state only, "
        "T = clip(total / N, 20, 5000) steps, median of repeats",
        "throughput_sizes": list(s.throughput_sizes),
        "matched": {
            "neuron": "MIF(C=10e-9, polarity2=+1) (V_k = v - E_k for both memristors)",
            "input_A": I_IN,
            "t_stop_s": T_STOP,
            "dt_out_s": DT_OUT,
            "spread": SPREAD,
            "probes": N_PROBES,
            "reference": "odeint_reference Kvaerno5 rtol 1e-10 float64",
            "error": "max_t |v - v_ref| / ptp(v_ref), worst probe",
            "candidates": list(CANDIDATES),
            "dt_ladder_s": [DT_OUT / k for k in DT_LADDER],
            "memjax_dtype": "float32",
        },
        "ngspice": None if exe is None else _ngspice_version(exe),
        "ngspice_options": "defaults (reltol 1e-3, abstol 1e-12, vntol 1e-6, trap); "
        "wall time of `ngspice -b`",
        "ngspice_timeout_s": NGSPICE_TIMEOUT_S,
        "spice_sizes": list(s.spice_sizes),
    }
    return {"metrics": metrics, "config": config}


def _plot(ctx, tp, rows):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for n, v in WAVES.items():
        axes[2].plot(DT_OUT * np.arange(len(v)) * 1e3, v * 1e3, label=f"reference, N = {n}")
        axes[2].set(xlabel="t (ms)", ylabel="v (mV)", title="probe 0: diffrax reference")
        axes[2].legend(fontsize=8)
    ns = sorted(int(k) for k in tp["neuron_steps_per_second"])
    axes[0].loglog(
        ns, [tp["neuron_steps_per_second"][str(n)] for n in ns], "o-", label="MIF neuron steps/s"
    )
    axes[0].set(
        xlabel="neurons N", ylabel="steps per second", title="memjax throughput (float32, CPU)"
    )
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    if isinstance(rows, dict):
        ns = sorted(int(k) for k in rows)
        done = [n for n in ns if rows[str(n)].get("ngspice_seconds") is not None]
        axes[1].loglog(done, [rows[str(n)]["ngspice_seconds"] for n in done], "o-", label="ngspice")
        late = [n for n in ns if rows[str(n)].get("ngspice_timeout_s") is not None]
        if late:
            axes[1].loglog(
                late,
                [rows[str(n)]["ngspice_timeout_s"] for n in late],
                "^",
                color="C0",
                label="ngspice ran past this limit",
            )
        ok = [n for n in ns if rows[str(n)].get("chosen")]
        axes[1].loglog(
            ok,
            [rows[str(n)]["memjax_seconds"] for n in ok],
            "s-",
            label="memjax, fastest at ngspice's error",
        )
        axes[1].loglog(
            ok,
            [rows[str(n)]["memjax_seconds"] + rows[str(n)]["memjax_compile_seconds"] for n in ok],
            "--",
            alpha=0.6,
            label="memjax incl. compile",
        )
        axes[1].set(
            xlabel="independent MIF neurons N",
            ylabel="wall time (s)",
            title=f"{T_STOP * 1e3:g} ms, 2 uA, matched accuracy",
        )
        axes[1].grid(True, which="both", alpha=0.3)
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, "scaling")
