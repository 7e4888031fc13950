"""Device calibration: fit a compact model's parameters to measured I-V waveforms.

Given records ``(t, v, i)`` (one or several: frequencies, amplitudes), :func:`fit_device`
minimises the weighted mean squared current error of the simulation
(`memjax.devices.simulate`, the measured voltage as the drive)

    L(p) = sum_r mean_k w_rk ((i_sim(p)_rk - i_rk) / s_r)^2 / n_records,   s_r = max_k |i_rk|

over the chosen parameters, in two stages:

1. **multi-start gradient descent** (optax Adam through the simulation, the starts
   batched with `vmap`): each parameter is mapped from an unconstrained ``u`` into its
   bounds, ``p = exp(log lo + (log hi - log lo) sigmoid(u))`` for a positive range
   (log space) and ``p = lo + (hi - lo) sigmoid(u)`` otherwise, so every iterate
   respects the bounds;
2. **Levenberg-Marquardt** on the residual vector from the best start (Jacobian by
   `jax.jacfwd`; log parameters for positive ranges), clipped to the bounds.

The weights ``w`` emphasise the switching regions: ``w = 1 + switch_weight r / mean(r)``
with ``r = |d G / dt|`` the rate of change of the chord conductance ``G = i / v`` (where
``|v| > 10 %`` of its peak; 0 elsewhere), normalised to mean 1.

**Uncertainty** (Gauss-Newton): ``cov = sigma^2 (J^T W J)^-1`` at the optimum with
``sigma^2`` the weighted residual variance (Seber & Wild, *Nonlinear Regression*, Wiley
1989, ch. 2); ``std`` is reported per parameter (relative for log parameters), and the
singular values of the scaled ``J`` flag non-identifiable combinations
(``FitResult.identifiable``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .devices import simulate
from .devices._base import AbstractMemristor
from .integrate import RK4
from .waveforms import Sampled

__all__ = ["IVRecord", "FitResult", "read_iv", "switching_weights", "fit_device"]


@dataclasses.dataclass(frozen=True)
class IVRecord:
    """One measured waveform on a uniform time grid: ``t`` (s), ``v`` (V), ``i`` (A)."""

    t: np.ndarray
    v: np.ndarray
    i: np.ndarray
    name: str = ""

    def __post_init__(self):
        t, v, i = (np.asarray(a, np.float64).reshape(-1) for a in (self.t, self.v, self.i))
        if not (t.shape == v.shape == i.shape) or t.size < 3:
            raise ValueError(
                f"IVRecord {self.name!r}: t, v, i must be 1-D of one length >= 3; got "
                f"{np.shape(self.t)}, {np.shape(self.v)}, {np.shape(self.i)}"
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v)) and np.all(np.isfinite(i))):
            raise ValueError(f"IVRecord {self.name!r}: t, v and i must be finite")
        dt = np.diff(t)
        if np.any(dt <= 0) or np.ptp(dt) > 1e-6 * np.mean(dt):
            raise ValueError(
                f"IVRecord {self.name!r}: t must be uniformly spaced and increasing (spacing "
                f"{dt.min():g} .. {dt.max():g} s); resample it (np.interp) first"
            )
        if not np.any(i != 0):
            raise ValueError(f"IVRecord {self.name!r}: the current i is zero everywhere")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "i", i)

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0])


def read_iv(
    path: str | Path, *, t: str = "t", v: str = "v", i: str = "i", name: str | None = None
) -> IVRecord:
    """Read a record from a CSV file (a header row naming the columns; ``,`` or
    whitespace separated; ``#`` comments) or an NPZ archive (arrays named ``t, v, i``).
    ``t``, ``v``, ``i`` name the columns. Raises ``FileNotFoundError`` or ``ValueError``
    naming the missing column and the columns found."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"read_iv: no such file: {path}")
    want = {"t": t, "v": v, "i": i}
    if path.suffix.lower() == ".npz":
        with np.load(path) as z:
            cols = {k: np.asarray(z[k]) for k in z.files}
    elif path.suffix.lower() in (".csv", ".txt", ".dat", ".tsv"):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and ln[0] != "#"]
        if not lines:
            raise ValueError(f"read_iv: {path} has no data")
        delim = "," if "," in lines[0] else None
        header = [h.strip().strip('"') for h in lines[0].split(delim)]
        try:
            body = np.loadtxt(lines[1:], delimiter=delim, ndmin=2)
        except ValueError as e:
            raise ValueError(f"read_iv: {path}: non-numeric data below the header ({e})") from e
        if body.shape[1] != len(header):
            raise ValueError(
                f"read_iv: {path}: {len(header)} header names but {body.shape[1]} columns"
            )
        cols = {h: body[:, k] for k, h in enumerate(header)}
    else:
        raise ValueError(f"read_iv: {path}: unsupported suffix {path.suffix!r} (csv or npz)")
    for key, col in want.items():
        if col not in cols:
            raise ValueError(
                f"read_iv: {path}: no column {col!r} for {key}; columns: {sorted(cols)}"
            )
    return IVRecord(cols[t], cols[v], cols[i], name=name or path.stem)


def switching_weights(rec: IVRecord, switch_weight: float = 4.0) -> np.ndarray:
    """Per-sample loss weights (mean 1) emphasising where the conductance changes."""
    if switch_weight < 0:
        raise ValueError(f"switching_weights: switch_weight must be >= 0; got {switch_weight}")
    ok = np.abs(rec.v) > 0.1 * np.max(np.abs(rec.v))
    g = np.where(ok, rec.i / np.where(ok, rec.v, 1.0), np.nan)
    r = np.abs(np.gradient(g, rec.t))
    r = np.where(np.isfinite(r), r, 0.0)
    w = 1.0 + (switch_weight * r / np.mean(r) if np.mean(r) > 0 else 0.0)
    return np.asarray(w / np.mean(w), np.float64)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Result of :func:`fit_device`.

    ``device``: the model with the fitted values; ``params``/``std``: value and one-sigma
    uncertainty per parameter (same units); ``loss``: final loss; ``start_losses``: the
    gradient stage's loss per start; ``rms``: RMS current residual over ``max |i|``;
    ``identifiable``: per parameter, False where its relative uncertainty exceeds
    ``ident_tol``, it lies in a direction of ``J`` with singular value below 1e-6 of the
    largest, or it ended on a bound; ``seconds``: wall time (compilation included).
    """

    device: AbstractMemristor
    params: dict[str, float]
    std: dict[str, float]
    loss: float
    start_losses: np.ndarray
    rms: float
    identifiable: dict[str, bool]
    seconds: float


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set(device, values: Mapping[str, jax.Array]):
    names = list(values)
    return eqx.tree_at(
        lambda d: [_get(d, n) for n in names],
        device,
        [values[n] for n in names],
        is_leaf=lambda x: x is None,
    )


def _bounds(device, params) -> dict[str, tuple[float, float]]:
    out = {}
    items = params.items() if isinstance(params, Mapping) else ((p, None) for p in params)
    for name, b in items:
        try:
            p0 = float(np.asarray(_get(device, name)))
        except AttributeError as e:
            raise ValueError(
                f"fit_device: {type(device).__name__} has no parameter {name!r}"
            ) from e
        if b is None:
            if p0 == 0:
                raise ValueError(f"fit_device: parameter {name!r} is 0: give its bounds")
            b = (p0 / 10, p0 * 10) if p0 > 0 else (p0 * 10, p0 / 10)
        lo, hi = float(b[0]), float(b[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"fit_device: bounds of {name!r} must be finite with lo < hi; got {b}")
        out[name] = (lo, hi)
    return out


def fit_device(
    device: AbstractMemristor,
    data: IVRecord | Sequence[IVRecord],
    params: Sequence[str] | Mapping[str, tuple[float, float] | None],
    *,
    key: jax.Array | None = None,
    n_starts: int = 8,
    steps: int = 400,
    lr: float = 0.05,
    lm_steps: int = 30,
    switch_weight: float = 4.0,
    substeps: int = 1,
    x0: float | None = None,
    ident_tol: float = 0.5,
) -> FitResult:
    """Fit ``params`` of ``device`` to the records ``data`` (see the module docstring).

    ``params``: field paths (``"R_on"``, ``"window.p"``) with default bounds a factor 10
    either side of the present value, or a mapping to ``(lo, hi)`` bounds. The present
    values are the first start; ``n_starts - 1`` more are uniform in the transformed
    box (``key``). ``steps`` Adam steps at learning rate ``lr`` (cosine decay), then
    ``lm_steps`` Levenberg-Marquardt steps. Each record is simulated at its own sample
    spacing with ``substeps`` RK4 steps per sample from ``x0`` (default ``device.x0``).
    Runs in float64.
    """
    recs = [data] if isinstance(data, IVRecord) else list(data)
    if not recs or not all(isinstance(r, IVRecord) for r in recs):
        raise TypeError("fit_device: data must be an IVRecord or a sequence of IVRecords")
    if n_starts < 1 or steps < 0 or lm_steps < 0:
        raise ValueError("fit_device: n_starts must be >= 1 and steps, lm_steps >= 0")
    bounds = _bounds(device, params)
    names = list(bounds)
    t0 = time.perf_counter()
    with jax.enable_x64(True):
        out = _fit(
            device,
            recs,
            names,
            bounds,
            key,
            n_starts,
            steps,
            lr,
            lm_steps,
            switch_weight,
            substeps,
            x0,
            ident_tol,
        )
    return dataclasses.replace(out, seconds=time.perf_counter() - t0)


def _transforms(bounds: dict[str, tuple[float, float]]):
    """``to_p(u)`` (unconstrained -> bounded), ``to_theta(p)``/``from_theta`` (the LM
    and covariance coordinates: log p for positive ranges, p otherwise)."""
    names = list(bounds)
    lo = np.array([bounds[n][0] for n in names])
    hi = np.array([bounds[n][1] for n in names])
    log = lo > 0
    a = np.where(log, np.log(np.where(log, lo, 1.0)), lo)
    b = np.where(log, np.log(np.where(log, hi, 1.0)), hi)

    def to_p(u):
        s = a + (b - a) * jax.nn.sigmoid(u)
        return jnp.where(log, jnp.exp(s), s)

    def to_u(p):
        s = jnp.where(log, jnp.log(jnp.where(log, p, 1.0)), p)
        q = jnp.clip((s - a) / (b - a), 1e-6, 1 - 1e-6)
        return jnp.log(q) - jnp.log1p(-q)

    def from_theta(th):
        return jnp.where(log, jnp.exp(jnp.clip(th, a, b)), jnp.clip(th, a, b))

    def to_theta(p):
        return jnp.where(log, jnp.log(jnp.where(log, p, 1.0)), p)

    def from_theta_free(th):
        return jnp.where(log, jnp.exp(th), th)

    def at_bound(th):
        span = b - a
        return (np.asarray(th) <= a + 1e-6 * span) | (np.asarray(th) >= b - 1e-6 * span)

    return to_p, to_u, to_theta, from_theta, from_theta_free, at_bound, log


def _fit(
    device, recs, names, bounds, key, n_starts, steps, lr, lm_steps, sw, substeps, x0, ident_tol
) -> FitResult:
    to_p, to_u, to_theta, from_theta, from_free, at_bound, log = _transforms(bounds)
    scales = [float(np.max(np.abs(r.i))) for r in recs]
    weights = [jnp.asarray(np.sqrt(switching_weights(r, sw) / r.t.size / len(recs))) for r in recs]
    drives = [Sampled(jnp.asarray(r.v), r.dt, float(r.t[0])) for r in recs]
    meas = [jnp.asarray(r.i) for r in recs]
    dev64 = jax.tree.map(
        lambda a: (
            jnp.asarray(a, jnp.float64)
            if eqx.is_inexact_array_like(a) and not isinstance(a, bool)
            else a
        ),
        device,
    )

    def residuals(p):
        dev = _set(dev64, {n: p[k] for k, n in enumerate(names)})
        out = []
        for r, drv, m, s, w in zip(recs, drives, meas, scales, weights, strict=True):
            tr = simulate(
                dev,
                drv,
                dt=r.dt,
                n_steps=r.t.size,
                t0=float(r.t[0]),
                solver=RK4(),
                substeps=substeps,
                x0=x0,
            )
            out.append(w * (tr.i - m) / s)
        res = jnp.concatenate(out)
        return jnp.where(jnp.isfinite(res), res, 1e3)

    def loss_u(u):
        return jnp.sum(residuals(to_p(u)) ** 2)

    p_init = jnp.asarray([float(np.asarray(_get(device, n))) for n in names])
    lo = jnp.asarray([bounds[n][0] for n in names])
    p_init = jnp.clip(p_init, lo, jnp.asarray([bounds[n][1] for n in names]))
    key = jax.random.key(0) if key is None else key
    u_rand = jax.random.uniform(key, (n_starts - 1, len(names)), minval=-2.5, maxval=2.5)
    u0 = jnp.concatenate([to_u(p_init)[None], u_rand])
    opt = optax.adam(optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.05))

    @jax.jit
    def run_adam(u0):
        def one(u):
            def body(carry, _):
                u, st = carry
                g = jax.grad(loss_u)(u)
                g = jnp.where(jnp.isfinite(g), g, 0.0)
                upd, st = opt.update(g, st, u)
                return (optax.apply_updates(u, upd), st), None

            (u, _), _ = jax.lax.scan(body, (u, opt.init(u)), None, length=steps)
            return u, loss_u(u)

        return jax.vmap(one)(u0)

    u_end, start_losses = run_adam(u0)
    start_losses = np.asarray(start_losses)
    best = int(np.nanargmin(np.where(np.isfinite(start_losses), start_losses, np.inf)))
    theta = to_theta(to_p(u_end[best]))
    res_th = jax.jit(lambda th: residuals(from_theta(th)))
    jac = jax.jit(jax.jacfwd(lambda th: residuals(from_theta(th))))
    theta, r = _levenberg_marquardt(res_th, jac, theta, lm_steps)
    p = from_theta(theta)
    # The curvature without the bound clipping, so that a parameter pinned at a bound
    # still shows the directions it trades off along.
    J = np.asarray(jax.jacfwd(lambda th: residuals(from_free(th)))(theta))
    std_theta, determined = _uncertainty(J, np.asarray(r))
    p_np = np.asarray(p)
    std = np.where(log, p_np * std_theta, std_theta)
    rel_std = std / np.maximum(np.abs(p_np), 1e-300)
    ident = determined & (rel_std <= ident_tol) & ~at_bound(theta)
    dev_fit = _set(device, {n: jnp.asarray(float(p_np[k])) for k, n in enumerate(names)})
    rms = float(
        np.sqrt(
            np.mean(
                np.concatenate(
                    [
                        ((np.asarray(ri) / wi) ** 2)
                        for ri, wi in zip(
                            np.split(np.asarray(r), np.cumsum([q.t.size for q in recs])[:-1]),
                            [np.asarray(w) for w in weights],
                            strict=True,
                        )
                    ]
                )
            )
        )
    )
    return FitResult(
        device=dev_fit,
        params={n: float(p_np[k]) for k, n in enumerate(names)},
        std={n: float(std[k]) for k, n in enumerate(names)},
        loss=float(np.sum(np.asarray(r) ** 2)),
        start_losses=start_losses,
        rms=rms,
        identifiable={n: bool(ident[k]) for k, n in enumerate(names)},
        seconds=0.0,
    )


def _levenberg_marquardt(res, jac, theta, n_steps):
    """Levenberg-Marquardt with Marquardt's diagonal scaling (Nocedal & Wright,
    *Numerical Optimization*, 2nd ed. 2006, sec. 10.3)."""
    r = res(theta)
    cost = float(jnp.sum(r**2))
    lam = 1e-3
    for _ in range(n_steps):
        J = jac(theta)
        A = J.T @ J
        g = J.T @ r
        D = jnp.diag(jnp.maximum(jnp.diag(A), 1e-30))
        improved = False
        for _ in range(8):
            step = jnp.linalg.solve(A + lam * D, -g)
            th_new = theta + step
            r_new = res(th_new)
            c_new = float(jnp.sum(r_new**2))
            if np.isfinite(c_new) and c_new < cost:
                theta, r, lam, improved = th_new, r_new, lam / 3, True
                rel, cost = (cost - c_new) / cost, c_new
                break
            lam *= 4
        if not improved or rel < 1e-10:
            break
    return theta, r


def _uncertainty(J: np.ndarray, r: np.ndarray):
    """One-sigma std of each coordinate from ``sigma^2 (J^T J)^-1`` (pseudo-inverse),
    and whether each is determined at all (a non-zero column outside every direction
    of the scaled ``J`` with singular value below 1e-6 of the largest)."""
    n, m = J.shape
    sigma2 = float(r @ r) / max(n - m, 1)
    col = np.linalg.norm(J, axis=0)
    Js = J / np.where(col > 0, col, 1.0)
    U, s, Vt = np.linalg.svd(Js, full_matrices=False)
    null = s < 1e-6 * s[0] if s.size and s[0] > 0 else np.ones_like(s, bool)
    s_inv = np.where(null, 0.0, 1.0 / np.where(null, 1.0, s))
    cov_s = (Vt.T * s_inv**2) @ Vt * sigma2
    std = np.sqrt(np.maximum(np.diag(cov_s), 0.0)) / np.where(col > 0, col, np.inf)
    in_null = np.any(np.abs(Vt[null]) > 0.3, axis=0) if np.any(null) else np.zeros(m, bool)
    return std, (col > 0) & ~in_null
