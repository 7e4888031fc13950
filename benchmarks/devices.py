"""``devices``: every compact model against its defining properties, and its speed.

For each model in :data:`CASES` (a model whose module is not importable is skipped with a
log line) the benchmark measures:

1. **Pinched hysteresis** (float64). Sine drive ``A sin(2 pi f t)`` at ``f0``, ``2 f0``,
   ``4 f0``; ``SETTLE`` periods are discarded and the next period is measured on a grid of
   ``spp`` samples per period (zero crossings of ``v`` fall on samples). Per frequency:
   the zero-crossing residual ``max |i(t_zc)| / max |i|`` and the two lobe areas
   ``|int i dv|`` over the positive and the negative half period (each half period is a
   closed lobe because the loop is pinched). A non-volatile model passes when every
   residual is below :data:`ZERO_TOL`, the total lobe area strictly decreases from ``f0``
   to ``2 f0`` to ``4 f0`` and the loop at ``f0`` is visibly open (area over
   ``A max|i|`` at least :data:`MIN_FATNESS`). Volatile devices (threshold switches) are
   reported and plotted but not held to it.
2. **Fixed-step scan vs diffrax** (float64). ``simulate`` (RK4 at the table's ``dt`` and
   ``substeps``) against ``simulate_reference`` (Tsit5, rtol 1e-10, ``dtmax`` the output
   spacing) over the ``SETTLE + 1`` periods at ``f0`` of the hysteresis run:
   ``err_x = max |x - x_ref| / (max x_ref - min x_ref)``,
   ``err_i = max |i - i_ref| / max |i_ref|``; the model's error is the larger.
3. **Gradients vs finite differences** (float64). ``L = mean_t(i v)`` (mean power over one
   period at ``f0``); ``jax.grad`` w.r.t. every floating-point device parameter and the
   drive amplitude, as scaled sensitivities ``p dL/dp``, against central differences
   ``D(eps) = (L(p (1 + eps)) - L(p (1 - eps))) / (2 eps)`` extrapolated as
   ``(4 D(eps/2) - D(eps)) / 3`` (truncation error O(eps^4)). Error of component ``k``:
   ``|s_ad - s_fd| / max(|s_fd|, FLOOR max_j |s_fd_j|)``; parameters equal to 0 are
   skipped (listed).
4. **Throughput** (float32). A population of ``n`` devices from ``sample_population``
   with the table's D2D spread, 1,000 RK4 steps (``1000 / substeps`` stored samples) in one
   jitted call; compile time measured separately (AOT ``lower().compile()``), run time
   the median of repeats (:func:`benchmarks._timing.timeit`).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._context import Context
from ._timing import timeit

__all__ = ["CASES", "Case", "run"]

#: Zero-crossing tolerance: ``|i| / max |i|`` where ``v = 0``.
ZERO_TOL = 1e-6
#: Minimum loop "fatness" (lobe area / (A max|i|)) at f0 to count as a hysteresis loop.
MIN_FATNESS = 1e-2
#: Finite-difference relative step (central differences at eps and eps/2, Richardson-
#: extrapolated), and the floor (relative to the largest sensitivity) under which a
#: sensitivity is compared in absolute terms.
FD_EPS = 3e-6
FD_FLOOR = 1e-3
#: Targets (reported beside the numbers).
TARGET_SCAN_VS_DIFFRAX = 1e-3
TARGET_GRAD_FD = 1e-5
#: Solver steps per throughput call.
THROUGHPUT_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of the benchmark table: a model and the drive that makes it switch."""

    name: str
    module: str  # import path of the model's module
    build: Callable[[Any], Any]  # module -> device (nominal parameters)
    amplitude: float  # drive amplitude (V)
    f0: float  # base frequency (Hz)
    spp: int = 400  # output samples per period
    substeps: int = 1  # RK4 steps per output sample
    spread: dict = dataclasses.field(default_factory=dict)  # D2D sigma per parameter
    stiff: bool = False  # use Kvaerno5 for the diffrax reference
    note: str = ""

    @property
    def dt(self) -> float:
        return 1.0 / (self.f0 * self.spp)


X0_PKU = 0.5e-9


def _hp_biolek(m):
    from memjax.devices.windows import Biolek

    return m.HPMemristor(window=Biolek())


CASES: tuple[Case, ...] = (
    Case(
        "HP (Joglekar)",
        "memjax.devices.hp",
        lambda m: m.HPMemristor(),
        1.0,
        0.5,
        spread={"R_on": 0.1, "R_off": 0.1, "mu_v": 0.1},
        note="Strukov 2008 Fig. 2 device, Joglekar p=1; x swings 0.1 -> 0.49 at f0",
    ),
    Case(
        "HP (Biolek)",
        "memjax.devices.hp",
        _hp_biolek,
        1.0,
        1.0,
        spread={"R_on": 0.1, "R_off": 0.1, "mu_v": 0.1},
        note="same device, Biolek window p=1",
    ),
    Case(
        "MMSS",
        "memjax.devices.mmss",
        lambda m: m.MMSSMemristor(),
        0.5,
        1e3,
        spread={"R_on": 0.1, "R_off": 0.1, "tau": 0.1},
        note="Knowm defaults (tau = 0.1 ms, thresholds 0.27 V)",
    ),
    # TEAM (Kvatinsky et al., TCAS-I 2013): the library defaults unchanged (the paper's
    # Pickett fit, Kvatinsky window eqs. 18-19 with w_on = a_off, w_off = a_on); only the
    # drive is chosen. The window opens ON motion only near x = 1 and OFF motion only near
    # x = 0, while at equal |i| ~ 2.4 mA the ON drive k_on (|i|/|i_on| - 1)^10 is 6.6e7
    # times the OFF drive. They balance where f_off / f_on is as large: x ~ 0.41
    # (f_off = 4.7e-5, f_on = 1.3e-12, ratio 3.5e7). A periodic orbit exists there, slow
    # because both windows are nearly closed (windowed rates 0.07 to 30 /s over x in
    # [0.39, 0.43] at 2.4 mA), and the first negative half-cycle from x0 = 0.95 switches
    # the device into it. Measured at 1 V, 1 Hz: the orbit is reached within the three
    # settling periods (state drift < 1e-5 of the swing at f0, 2 f0, 4 f0). With the
    # drive committed before (0.5 V, 100 kHz) ON switching stalls above the orbit and
    # the state creeps down: x in [0.672, 0.698] in the 4th period, [0.589, 0.591] in the
    # 20th, each monotone (no periodic loop to measure). At 1 V |i| stays below 2.4 mA.
    # 4 RK4 substeps: the first ON switch is fast (1 substep: 6.8e-4 against diffrax).
    Case(
        "TEAM",
        "memjax.devices.team",
        lambda m: m.TEAMMemristor(x0=0.95),
        1.0,
        1.0,
        substeps=4,
        spread={"R_on": 0.1, "R_off": 0.1, "k_on": 0.1, "k_off": 0.1},
        note="TEAM paper's Pickett fit and Kvatinsky window (library defaults) with an "
        "interior x0 = 0.95 (the default x0 = 1 sits on the bound, where the gradient "
        "w.r.t. x0 is one-sided). The first negative half-cycle switches x down to ~0.39, "
        "where the window ratio f_off / f_on ~ 3.5e7 offsets the 6.6e7-fold faster ON "
        "drive and a slow periodic orbit x in [0.39, 0.43] exists; at 0.5 V ON switching "
        "stalls above it and the state creeps down every period without a periodic loop. "
        "1 V keeps |i| < 3.6 mA, where the ON drive factor (|i|/|i_on| - 1)^10 stays "
        "below the exp(60) overflow clamp",
    ),
    Case(
        "VTEAM",
        "memjax.devices.team",
        lambda m: m.VTEAMMemristor(),
        0.3,
        3e6,
        spread={"R_on": 0.1, "R_off": 0.1, "k_on": 0.1, "k_off": 0.1},
        note="Technion example set, ideal rectangular window (bounds by clipping); "
        "thresholds -0.2 / +0.02 V; ON switching in tens of ns at -0.3 V",
    ),
    Case(
        "Yakopcic",
        "memjax.devices.yakopcic",
        lambda m: m.YakopcicMemristor(),
        0.5,
        1e3,
        spread={"a1": 0.1, "a2": 0.1, "A_p": 0.1, "A_n": 0.1},
        note="EDL 2011 fit to the Oblea et al. Ag-chalcogenide device; thresholds 0.16/0.15 V",
    ),
    Case(
        "Stanford-PKU RRAM",
        "memjax.devices.stanford_pku",
        lambda m: m.StanfordPKURRAM(x0=X0_PKU),
        1.5,
        3e7,
        spread={"I0": 0.1, "v0": 0.1, "g0": 0.05},
        note="Verilog-A v1.0.0 defaults except an interior x0 (the default g_min sits on "
        "the hard stop, where the gradient w.r.t. x0 is one-sided); |v| > 1.05 V opens the "
        "F_min gate",
    ),
    Case(
        "VO2 threshold switch",
        "memjax.devices.threshold",
        lambda m: m.VO2ThresholdSwitch(),
        10.0,
        2e4,
        substeps=16,
        spread={"R0": 0.1, "C_th": 0.1, "R_th": 0.05},
        note="volatile (not held to the pinched-loop test): switches to the metallic branch "
        "near 8 V and cools back to insulating near v = 0 every half period at f0, 2 f0 and "
        "4 f0; 16 RK4 substeps resolve the thermal runaway (R_th C_th ~ 0.24 us)",
    ),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """``settle`` periods before the measured one, samples per period scaled by
    ``spp_scale``, throughput at ``sizes`` devices (median of ``repeats``), the models
    named in ``only`` (None: all)."""

    settle: int = 3
    spp_scale: float = 1.0
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    repeats: int = 5
    only: tuple[str, ...] | None = None


FULL = Settings()
QUICK = dataclasses.replace(FULL, settle=1, sizes=(1_000, 4_000), repeats=2)
#: A seconds-long smoke setting for the tests.
TINY = dataclasses.replace(QUICK, spp_scale=0.25, sizes=(100,), repeats=1, only=("HP (Joglekar)",))


def _settings(ctx: Context, tiny: bool) -> dict:
    return dataclasses.asdict(TINY if tiny else QUICK if ctx.quick else FULL)


def _load(case: Case, ctx: Context):
    try:
        module = importlib.import_module(case.module)
        return case.build(module)
    except (ImportError, AttributeError) as e:
        ctx.log(f"skipping {case.name}: {type(e).__name__}: {e}")
        return None


def _simulate_jit():
    import equinox as eqx

    from memjax.devices import simulate

    @eqx.filter_jit
    def sim(dev, drive, dt, n_steps: int, substeps: int):
        # dt is traced, so one compilation serves every frequency of a model.
        return simulate(dev, drive, dt=dt, n_steps=n_steps, substeps=substeps)

    return sim


_SIM = None


def _simulator(dt: float, n_steps: int, substeps: int):
    global _SIM
    import jax.numpy as jnp

    if _SIM is None:
        _SIM = _simulate_jit()
    return lambda dev, drive: _SIM(dev, drive, jnp.asarray(dt), n_steps, substeps)


# --------------------------------------------------------------------------- hysteresis
def _loop(dev, case: Case, spp: int, f: float, settle: int) -> dict:
    """One measured period at frequency ``f`` after ``settle`` periods (float64)."""
    from memjax.waveforms import Sine

    n = spp * (settle + 1) + 1
    tr = _simulator(1.0 / (f * spp), n, case.substeps)(dev, Sine(case.amplitude, f))
    s = spp * settle
    v = np.asarray(tr.v)[s:]
    i = np.asarray(tr.i)[s:]
    x = np.asarray(tr.x)[s:]
    h = spp // 2
    imax = float(np.max(np.abs(i)))
    lobe_pos = abs(float(np.trapezoid(i[: h + 1], v[: h + 1])))
    lobe_neg = abs(float(np.trapezoid(i[h:], v[h:])))
    zc = float(np.max(np.abs(i[[0, h, spp]]))) / imax
    return {
        "v": v,
        "i": i,
        "lobe_area_pos": lobe_pos,
        "lobe_area_neg": lobe_neg,
        "lobe_area": lobe_pos + lobe_neg,
        "fatness": (lobe_pos + lobe_neg) / (case.amplitude * imax),
        "zero_crossing_residual": zc,
        "max_abs_i": imax,
        # Not periodic yet if the state ends the measured period elsewhere than it began.
        "state_drift": float(abs(x[-1] - x[0]) / max(np.ptp(x), 1e-300)),
    }


# ----------------------------------------------------------------------- scan vs diffrax
def _errors(x, i, xr, ir) -> dict:
    x, i, xr, ir = (np.asarray(a) for a in (x, i, xr, ir))
    err_x = float(np.max(np.abs(x - xr)) / max(np.ptp(xr), 1e-300))
    err_i = float(np.max(np.abs(i - ir)) / max(np.max(np.abs(ir)), 1e-300))
    return {"err_x": err_x, "err_i": err_i, "rel_err": max(err_x, err_i)}


def _scan_vs_reference(dev, case: Case, spp: int, periods: int) -> dict:
    from memjax.devices import simulate_reference
    from memjax.waveforms import Sine

    drive = Sine(case.amplitude, case.f0)
    n = periods * spp + 1
    dt = 1.0 / (case.f0 * spp)
    tr = _simulator(dt, n, case.substeps)(dev, drive)
    scale = max(float(np.max(np.abs(np.asarray(tr.x)))), 1e-300)
    t0 = time.perf_counter()
    # dtmax = the output spacing: threshold models have stretches where the rate is
    # identically zero, across which an uncapped controller grows its step and can step
    # over part of a switching window.
    ref = simulate_reference(
        dev,
        drive,
        tr.t,
        rtol=1e-10,
        atol=1e-12 * scale,
        stiff=case.stiff,
        max_steps=4_000_000,
        dtmax=dt,
    )
    out = _errors(tr.x, tr.i, ref.x, ref.i)
    out.update(x_range=float(np.ptp(np.asarray(ref.x))), reference_seconds=time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------ gradients
def _grad_vs_fd(dev, case: Case, spp: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from memjax.devices import simulate
    from memjax.waveforms import Sine

    params, static = eqx.partition(dev, eqx.is_inexact_array_like)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [jax.tree_util.keystr(p).lstrip(".") for p, _ in flat] + ["drive.amplitude"]
    theta0 = np.array([float(v) for _, v in flat] + [case.amplitude], dtype=np.float64)
    n_p = len(flat)
    dt = 1.0 / (case.f0 * spp)

    def loss(theta):
        p = jax.tree_util.tree_unflatten(treedef, [theta[k] for k in range(n_p)])
        d = eqx.combine(p, static)
        tr = simulate(d, Sine(theta[n_p], case.f0), dt=dt, n_steps=spp + 1, substeps=case.substeps)
        return jnp.mean(tr.i * tr.v)

    keep = [k for k in range(len(theta0)) if theta0[k] != 0.0]
    # Central differences at eps and eps/2, Richardson-extrapolated (truncation error
    # O(eps^4)): all perturbed parameter vectors in one batched call, compiled together
    # with the gradient.
    thetas = []
    for k in keep:
        for e in (FD_EPS, FD_EPS / 2):
            for sign in (1.0, -1.0):
                t = theta0.copy()
                t[k] *= 1 + sign * e
                thetas.append(t)
    both = jax.jit(lambda t0, ts: (jax.grad(loss)(t0), jax.vmap(loss)(ts)))
    g, vals = both(jnp.asarray(theta0), jnp.asarray(np.stack(thetas)))
    g, vals = np.asarray(g), np.asarray(vals, np.float64)
    s_ad = np.array([theta0[k] * g[k] for k in keep])
    vals = vals.reshape(len(keep), 2, 2)
    d1 = (vals[:, 0, 0] - vals[:, 0, 1]) / (2 * FD_EPS)
    d2 = (vals[:, 1, 0] - vals[:, 1, 1]) / FD_EPS
    s_fd = (4 * d2 - d1) / 3
    denom = np.maximum(np.abs(s_fd), FD_FLOOR * np.max(np.abs(s_fd)))
    errs = np.abs(s_ad - s_fd) / denom
    return {
        "rel_err": float(np.max(errs)),
        "per_parameter": {names[k]: float(e) for k, e in zip(keep, errs)},
        "sensitivity_ad": {names[k]: float(s) for k, s in zip(keep, s_ad)},
        "skipped_zero_parameters": [names[k] for k in range(len(theta0)) if theta0[k] == 0.0],
    }


# ------------------------------------------------------------------------ throughput
def _throughput(dev, case: Case, n: int, key, repeats: int) -> dict:
    import equinox as eqx
    import jax

    from memjax.devices import simulate
    from memjax.populations import sample_population
    from memjax.waveforms import Sine

    pop = sample_population(dev, key, n, case.spread)
    arrays, static = eqx.partition(pop, eqx.is_array)
    n_samples = max(THROUGHPUT_STEPS // case.substeps, 1)
    steps = n_samples * case.substeps
    drive = Sine(case.amplitude, case.f0)

    def f(arrays):
        tr = simulate(
            eqx.combine(arrays, static),
            drive,
            dt=case.dt,
            n_steps=n_samples,
            substeps=case.substeps,
        )
        return tr.x, tr.i

    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(arrays).compile()
    compile_s = time.perf_counter() - t0
    stats = timeit(compiled, arrays, repeats=repeats, warmup=1)
    finite = None
    if n <= 10_000:  # one more call to inspect the output (skipped where it is costly)
        xs, _ = compiled(arrays)
        finite = bool(np.all(np.isfinite(np.asarray(xs))))
    return {
        "n": n,
        "steps": steps,
        "compile_seconds": compile_s,
        "median_seconds": stats["median_s"],
        "min_seconds": stats["min_s"],
        "device_steps_per_second": n * steps / stats["median_s"],
        "finite": finite,
    }


# ------------------------------------------------------------------------------ figures
def _plot_loops(ctx: Context, loops: dict, cases: dict):
    import matplotlib.pyplot as plt

    names = list(loops)
    ncol = min(3, len(names))
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, names):
        case = cases[name]
        for mult, rec in loops[name].items():
            scale, unit = _current_unit(max(r["max_abs_i"] for r in loops[name].values()))
            ax.plot(
                rec["v"],
                rec["i"] * scale,
                lw=1.2,
                label=f"{'' if mult == 1 else mult} f0 = {_fmt_hz(mult * case.f0)}",
            )
        ax.axhline(0, color="0.8", lw=0.6, zorder=0)
        ax.axvline(0, color="0.8", lw=0.6, zorder=0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("v (V)")
        ax.set_ylabel(f"i ({unit})")
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("I-V loops under a sine drive (one period after settling)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "iv_loops")


def _plot_scaling(ctx: Context, by_n: dict):
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, recs in by_n.items():
        ns = sorted(int(k) for k in recs)
        a1.plot(ns, [recs[str(n)]["device_steps_per_second"] for n in ns], "o-", label=name)
        a2.plot(ns, [recs[str(n)]["median_seconds"] for n in ns], "o-", label=name)
    for a in (a1, a2):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("devices in the population")
        a.grid(True, which="both", alpha=0.3)
    a1.set_ylabel("device-steps per second")
    a2.set_ylabel(f"seconds per call ({THROUGHPUT_STEPS} RK4 steps)")
    a1.legend(fontsize=7)
    fig.suptitle("Population throughput (float32, one jitted call, median)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "scaling")


def _current_unit(imax: float):
    for scale, unit in ((1.0, "A"), (1e3, "mA"), (1e6, "uA"), (1e9, "nA")):
        if imax * scale >= 1.0:
            return scale, unit
    return 1e12, "pA"


def _fmt_hz(f: float) -> str:
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if f >= scale:
            return f"{f / scale:g} {unit}"
    return f"{f:g} Hz"


def _message(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    hits = [ln for ln in lines if "Error:" in ln or "error:" in ln]
    return f"{type(e).__name__}: {(hits or lines or [''])[0]}"[:300]


def _max_of(recs: dict) -> float | None:
    vals = [r["rel_err"] for r in recs.values() if "rel_err" in r]
    return max(vals) if vals else None


# --------------------------------------------------------------------------------- run
def _pinched(recs, mults, volatile) -> dict:
    """The pinched-hysteresis summary of one model's loops at ``m f0`` for ``m`` in
    ``mults``: zero crossings at the origin, lobe areas shrinking with frequency, a loop
    not thinner than :data:`MIN_FATNESS` (not judged for a volatile model)."""
    areas = [recs[m]["lobe_area"] for m in mults]
    resid = max(recs[m]["zero_crossing_residual"] for m in mults)
    fat = recs[1]["fatness"]
    ok = bool(resid < ZERO_TOL and areas[0] > areas[1] > areas[2] and fat >= MIN_FATNESS)
    return {
        "volatile": volatile,
        "passes": None if volatile else ok,
        "zero_crossing_residual_max": resid,
        "lobe_area": {f"{m}f0": a for m, a in zip(mults, areas)},
        "lobe_area_pos": {f"{m}f0": recs[m]["lobe_area_pos"] for m in mults},
        "lobe_area_neg": {f"{m}f0": recs[m]["lobe_area_neg"] for m in mults},
        "fatness_f0": fat,
        "state_drift_per_period": {f"{m}f0": recs[m]["state_drift"] for m in mults},
    }


def run(ctx: Context, *, tiny: bool = False) -> dict:
    """Run the benchmark; ``tiny=True`` is a seconds-long smoke setting for the tests."""
    import jax

    st = _settings(ctx, tiny)
    cases = [c for c in CASES if st["only"] is None or c.name in st["only"]]
    loaded: dict[str, tuple[Case, Any]] = {}
    for case in cases:
        dev = _load(case, ctx)
        if dev is not None:
            loaded[case.name] = (case, dev)
    ctx.log(f"models: {', '.join(loaded)}")

    mults = (1, 2, 4)
    loops, pinched, scan, grads, errors = {}, {}, {}, {}, {}

    def attempt(name, section, fn, *args):
        try:
            return fn(*args)
        except Exception as e:  # one model's failure must not hide the others' results
            msg = _message(e)
            errors.setdefault(name, {})[section] = msg
            ctx.log(f"{name}: {section} failed: {msg}")
            return None

    with jax.enable_x64(True):
        for name, (case, dev) in ctx.progress(loaded.items(), desc="devices: float64 checks"):
            spp = max(int(round(case.spp * st["spp_scale"] / 4)) * 4, 8)
            recs = {
                m: attempt(name, "hysteresis", _loop, dev, case, spp, m * case.f0, st["settle"])
                for m in mults
            }
            volatile = bool(getattr(type(dev), "volatile", False))
            if all(r is not None for r in recs.values()):
                loops[name] = recs
                pinched[name] = _pinched(recs, mults, volatile)
            else:
                pinched[name] = {
                    "volatile": volatile,
                    "passes": None if volatile else False,
                    "error": errors[name]["hysteresis"],
                }
            s = attempt(
                name, "scan_vs_diffrax", _scan_vs_reference, dev, case, spp, st["settle"] + 1
            )
            g = attempt(name, "grad_fd", _grad_vs_fd, dev, case, spp)
            scan[name] = s if s is not None else {"error": errors[name]["scan_vs_diffrax"]}
            grads[name] = g if g is not None else {"error": errors[name]["grad_fd"]}
            ctx.log(
                f"{name}: pinched={pinched[name]['passes']} "
                f"(zc {pinched[name].get('zero_crossing_residual_max', float('nan')):.1e}, "
                f"areas {pinched[name].get('lobe_area')}), scan-vs-diffrax "
                f"{scan[name].get('rel_err', float('nan')):.2e}, grad-vs-FD "
                f"{grads[name].get('rel_err', float('nan')):.2e}"
            )

    by_n: dict[str, dict[str, dict]] = {}
    key = jax.random.key(ctx.seed)
    with jax.enable_x64(False):
        jobs = [(name, n) for name in loaded for n in st["sizes"]]
        for name, n in ctx.progress(jobs, desc="devices: throughput"):
            case, dev = loaded[name]
            reps = st["repeats"] if n < 100_000 else max(st["repeats"] - 2, 1)
            rec = attempt(
                name, f"throughput_{n}", _throughput, dev, case, n, jax.random.fold_in(key, n), reps
            )
            if rec is None:
                continue
            by_n.setdefault(name, {})[str(n)] = rec
            ctx.log(
                f"{name}: n={n}: {rec['device_steps_per_second']:.3g} device-steps/s "
                f"(median {rec['median_seconds']:.3g} s, compile {rec['compile_seconds']:.2f} s)"
            )

    _plot_loops(ctx, loops, {c.name: c for c, _ in loaded.values()})
    _plot_scaling(ctx, by_n)

    n_top = str(max(st["sizes"]))
    nonvol = [n for n in loaded if not pinched[n]["volatile"]]
    metrics = {
        "models": list(loaded),
        "pinched_hysteresis": bool(nonvol) and all(pinched[n]["passes"] for n in nonvol),
        "pinched_hysteresis_by_model": pinched,
        "scan_vs_diffrax_max_rel_err": _max_of(scan),
        "scan_vs_diffrax_by_model": scan,
        "grad_fd_max_rel_err": _max_of(grads),
        "grad_fd_by_model": grads,
        "device_steps_per_second_n": int(n_top),
        "device_steps_per_second": {
            name: recs[n_top]["device_steps_per_second"]
            for name, recs in by_n.items()
            if n_top in recs
        },
        "device_steps_per_second_by_n": {
            name: {k: r["device_steps_per_second"] for k, r in recs.items()}
            for name, recs in by_n.items()
        },
        "compile_seconds_by_n": {
            name: {k: r["compile_seconds"] for k, r in recs.items()} for name, recs in by_n.items()
        },
        "throughput_details": by_n,
        "errors": errors,
        "targets": {
            "zero_crossing_residual": ZERO_TOL,
            "scan_vs_diffrax_max_rel_err": TARGET_SCAN_VS_DIFFRAX,
            "grad_fd_max_rel_err": TARGET_GRAD_FD,
        },
    }
    return {"metrics": metrics, "config": _config(st, tiny, cases, loaded)}


def _config(st, tiny, cases, loaded) -> dict:
    """The record's ``config``: the settings and every model's case."""
    return {
        "tiny": tiny,
        "settle_periods": st["settle"],
        "frequencies": "f0, 2 f0, 4 f0",
        "throughput_sizes": list(st["sizes"]),
        "throughput_steps": THROUGHPUT_STEPS,
        "throughput_repeats": {
            str(n): st["repeats"] if n < 100_000 else max(st["repeats"] - 2, 1) for n in st["sizes"]
        },
        "throughput_dtype": "float32",
        "checks_dtype": "float64",
        "solver": "RK4",
        "reference": "simulate_reference: diffrax Tsit5 (Kvaerno5 where stiff), rtol 1e-10, "
        "atol 1e-12 max|x|, dtmax = output spacing; settle+1 periods at f0",
        "grad_scalar": "mean over one period at f0 of i(t) v(t)",
        "fd_eps": FD_EPS,
        "fd_scheme": "central differences at eps and eps/2, Richardson-extrapolated",
        "fd_floor": FD_FLOOR,
        "min_fatness": MIN_FATNESS,
        "cases": {
            name: {
                "class": type(dev).__name__,
                "amplitude_V": case.amplitude,
                "f0_Hz": case.f0,
                "samples_per_period": case.spp,
                "dt_s": case.dt,
                "substeps": case.substeps,
                "spread": case.spread,
                "stiff_reference": case.stiff,
                "note": case.note,
            }
            for name, (case, dev) in loaded.items()
        },
        "skipped": [c.name for c in cases if c.name not in loaded],
    }
