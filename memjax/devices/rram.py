"""Behavioural multi-level RRAM cell (HfO2 / SiOx style) for synaptic storage.

Not an ODE: a cell stores a conductance ``G`` (S) in its own range ``[G_min_i, G_max_i]``
and is written by program-and-verify, read with noise and drifts in time. All functions
are pure and vectorised over any array of cells; randomness takes explicit keys.

**Levels.** ``n_levels`` evenly spaced conductances ``G_k = G_min + k (G_max - G_min) /
(n_levels - 1)``, k = 0 .. n_levels - 1; :meth:`MultiLevelRRAM.quantize` rounds to the
nearest one.

**Program-and-verify** (:meth:`MultiLevelRRAM.program`). Each iteration first verifies
every cell (a read without noise): a cell with ``|G - G_target| <= verify_tol * (G_max_i -
G_min_i)`` is done. Every cell not yet done receives one write pulse that lands at

    G <- clip(G_target + sigma_w z, G_min_i, G_max_i),      z ~ N(0, 1) fresh per pulse

with ``sigma_w = write_sigma (G_max_i - G_min_i)`` (``write_noise_model="constant"``),
and its pulse counter is incremented. After ``max_iterations`` iterations the loop stops
whether or not every cell verified. The probability that one pulse lands within
tolerance of an interior target is ``p = erf(verify_tol / (sqrt(2) write_sigma))``, so a
cell converges with probability ``1 - (1 - p)^max_iterations`` after on average
``sum_{k<max_iterations} (1 - p)^k`` pulses.

**Read** (:meth:`MultiLevelRRAM.read`): ``G_read = G (t / t0)^(-nu) (1 + read_sigma z)``,
z ~ N(0, 1) drawn fresh at each call; the read noise is *relative to G* (multiplicative,
the form of NeuroSim's ``Read``: ``I = V G (1 + N(0, sigma))``). The drift factor applies
for ``t >= t0`` and is 1 for ``t < t0``.

**Faults and variability** (:meth:`MultiLevelRRAM.sample_devices`): each cell's bounds
are drawn log-normally, ``G_min_i = G_min exp(d2d_sigma z1)``, ``G_max_i = G_max
exp(d2d_sigma z2)``; a cell is stuck at LRS (its ``G_max_i``) with probability
``p_stuck_lrs`` and at HRS (its ``G_min_i``) with probability ``p_stuck_hrs`` (exclusive).
A stuck cell ignores programming and drift: it keeps its stuck value, is still pulsed by
the verify loop while it fails verification (so it wears out, counting pulses up to
``max_iterations`` per call) and counts as converged only where its stuck value happens
to lie within tolerance of the target.

**Defaults** (one coherent set):

- ``G_min = 0.476 uS``, ``G_max = 10 uS``: NeuroSim's ``RealDevice`` (MLP_NeuroSim_V3.0,
  ``Cell.cpp``: ``minConductance = 4.76e-7``, ``maxConductance = 1e-5``; P.-Y. Chen,
  X. Peng & S. Yu, IEEE TCAD 37, 3067 (2018)).
- ``n_levels = 32``: the same device's ``maxNumLevelLTP = 31`` pulse steps from G_min to
  G_max, i.e. 32 distinct conductances counting both ends.
- ``write_sigma = 0.005``: NeuroSim's cycle-to-cycle variation of that device,
  ``sigmaCtoC = 0.005 (G_max - G_min)`` per write (here: per programming pulse).
- ``read_sigma = 0.01`` (relative to G): about 1 % short-term read noise, the value
  aihwkit recommends adding to its ReRAM model (``ReRamWan2022NoiseModel``; Wan et al.,
  Nature 608, 504 (2022)).
- ``nu = 0``, ``t0 = 1 s``: no systematic power-law drift by default; aihwkit's ReRAM
  model notes that ReRAM "does not show drift in the usual sense". Set ``nu > 0`` (PCM is
  about 0.05) to study drift.
- ``verify_tol = 0.01`` (1 % of the range, a third of a level step at 32 levels),
  ``max_iterations = 20``, ``d2d_sigma = 0``, ``p_stuck_lrs = p_stuck_hrs = 0``: the
  project's own choices (the sources above give no single value).

**Option** ``write_noise_model="crosssim_milo"``: the per-pulse standard deviation is
CrossSim's ``RRAMMilo`` fit, ``sigma_G = write_sigma max(-0.009107 G + 4.782321, 0) uS``
with G the target in uS (Sandia CrossSim, ``simulator/devices/custom/RRAM_Milo.py``, a
linear fit to Fig. 4 of V. Milo et al., IRPS 2021, valid for 50 .. 225 uS). In that fit
sigma_G is the *final* error after Milo's program-and-verify algorithm; the preset
:meth:`MultiLevelRRAM.crosssim_milo` therefore uses one shot (``max_iterations = 1``)
and ``write_sigma = 1``, so that the single pulse every cell not already within
``verify_tol`` of its target receives reproduces CrossSim's programming error.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._validation import check_int, check_nonnegative, check_positive, check_range, concrete

__all__ = ["MultiLevelRRAM", "RRAMState", "crosssim_milo_sigma"]

_WRITE_NOISE_MODELS = ("constant", "crosssim_milo")


def crosssim_milo_sigma(G: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """CrossSim's RRAM (Milo et al., IRPS 2021) programming error standard deviation (S):
    ``max(-0.009107 G_uS + 4.782321, 0) uS`` at conductance ``G`` (S)."""
    g_us = jnp.asarray(G) * 1e6
    return jnp.maximum(-0.009107 * g_us + 4.782321, 0.0) * 1e-6


class RRAMState(eqx.Module):
    """Per-cell state of an array of :class:`MultiLevelRRAM` cells (all fields share one
    shape, the array's shape).

    - `G`: stored conductance (S), without read noise or drift.
    - `G_min`, `G_max`: the cell's own bounds after device-to-device spread (S).
    - `stuck_lrs`, `stuck_hrs`: fault masks (stuck at ``G_max`` / at ``G_min``).
    - `pulses`: programming pulses received over the cell's life (endurance counter).
    - `last_pulses`: pulses of the last :meth:`MultiLevelRRAM.program` call.
    - `converged`: verify result of the last program call (False before any).
    """

    G: Float[Array, "..."]
    G_min: Float[Array, "..."]
    G_max: Float[Array, "..."]
    stuck_lrs: Bool[Array, "..."]
    stuck_hrs: Bool[Array, "..."]
    pulses: Int[Array, "..."]
    last_pulses: Int[Array, "..."]
    converged: Bool[Array, "..."]

    @property
    def stuck(self) -> Bool[Array, "..."]:
        """Cells with either stuck fault."""
        return self.stuck_lrs | self.stuck_hrs


class MultiLevelRRAM(eqx.Module):
    """Behavioural multi-level RRAM cell (see the module docstring for the equations).

    **Fields** (SI units):

    - `G_min`, `G_max`: nominal HRS / LRS conductance (S), 0 < G_min < G_max.
      Defaults 0.476e-6, 10e-6 (NeuroSim RealDevice).
    - `n_levels`: number of programmable levels (static int >= 2). Default 32.
    - `write_sigma`: per-pulse write noise, relative to the cell's range (or a multiplier
      of CrossSim's fit, see `write_noise_model`). Default 0.005 (NeuroSim C2C).
    - `verify_tol`: verify tolerance, fraction of the cell's range, in (0, 1]. Default 0.01.
    - `max_iterations`: program-and-verify iterations per call (static int >= 1). Default 20.
    - `read_sigma`: read noise, relative to G, fresh per read. Default 0.01.
    - `nu`, `t0`: drift exponent (>= 0) and reference time (s, > 0). Defaults 0, 1.
    - `d2d_sigma`: log-normal device-to-device spread of G_min and G_max. Default 0.
    - `p_stuck_lrs`, `p_stuck_hrs`: stuck-at-G_max / stuck-at-G_min probabilities,
      sum <= 1. Defaults 0.
    - `write_noise_model`: ``"constant"`` or ``"crosssim_milo"`` (static).
    """

    G_min: float = 0.476e-6
    G_max: float = 10e-6
    n_levels: int = eqx.field(static=True, default=32)
    write_sigma: float = 0.005
    verify_tol: float = 0.01
    max_iterations: int = eqx.field(static=True, default=20)
    read_sigma: float = 0.01
    nu: float = 0.0
    t0: float = 1.0
    d2d_sigma: float = 0.0
    p_stuck_lrs: float = 0.0
    p_stuck_hrs: float = 0.0
    write_noise_model: str = eqx.field(static=True, default="constant")

    def __check_init__(self):
        n = "MultiLevelRRAM"
        check_positive(n, "G_min", self.G_min, "S")
        check_positive(n, "G_max", self.G_max, "S")
        lo, hi = concrete(self.G_min), concrete(self.G_max)
        if lo is not None and hi is not None and np.any(lo >= hi):
            raise ValueError(
                f"{n}.G_min must be < {n}.G_max; got G_min = {float(np.max(lo)):.6g} S, "
                f"G_max = {float(np.min(hi)):.6g} S"
            )
        check_int(f"{n}.n_levels", self.n_levels, 2)
        check_nonnegative(n, "write_sigma", self.write_sigma)
        check_range(n, "verify_tol", self.verify_tol, 0.0, 1.0, lo_open=True)
        check_int(f"{n}.max_iterations", self.max_iterations, 1)
        check_nonnegative(n, "read_sigma", self.read_sigma)
        check_nonnegative(n, "nu", self.nu)
        check_positive(n, "t0", self.t0, "s")
        check_nonnegative(n, "d2d_sigma", self.d2d_sigma)
        check_range(n, "p_stuck_lrs", self.p_stuck_lrs, 0.0, 1.0)
        check_range(n, "p_stuck_hrs", self.p_stuck_hrs, 0.0, 1.0)
        a, b = concrete(self.p_stuck_lrs), concrete(self.p_stuck_hrs)
        if a is not None and b is not None and np.any(a + b > 1.0):
            raise ValueError(
                f"{n}.p_stuck_hrs: p_stuck_lrs + p_stuck_hrs must be <= 1; got "
                f"{float(np.max(a + b)):.6g}"
            )
        if self.write_noise_model not in _WRITE_NOISE_MODELS:
            raise ValueError(
                f"{n}.write_noise_model must be one of {_WRITE_NOISE_MODELS}; got "
                f"{self.write_noise_model!r}"
            )

    @classmethod
    def crosssim_milo(cls, **overrides) -> "MultiLevelRRAM":
        """CrossSim's ``RRAMMilo`` device: G in [50, 225] uS (on/off 4.5), one-shot
        programming (``max_iterations = 1``) with sigma_G = max(-0.009107 G + 4.782321,
        0) uS. Other fields keep their defaults unless overridden."""
        kw: dict[str, Any] = dict(
            G_min=50e-6,
            G_max=225e-6,
            write_noise_model="crosssim_milo",
            write_sigma=1.0,
            max_iterations=1,
        )
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes) -> "MultiLevelRRAM":
        """A copy with some fields changed (re-validated)."""
        return dataclasses.replace(self, **changes)

    # -- levels --------------------------------------------------------------------
    def levels(self) -> Float[Array, " n_levels"]:
        """The ``n_levels`` nominal conductance levels (S), evenly spaced."""
        k = jnp.arange(self.n_levels, dtype=jnp.result_type(float))
        return self.G_min + k * (self.G_max - self.G_min) / (self.n_levels - 1)

    def quantize(
        self, G_target: Float[ArrayLike, "..."], state: RRAMState | None = None
    ) -> Float[Array, "..."]:
        """Nearest level to ``G_target`` (S), clipped to the range; the nominal levels, or
        each cell's own levels when its ``state`` is given (D2D-spread bounds)."""
        G = jnp.asarray(G_target, dtype=jnp.result_type(G_target, float))
        lo, hi = (self.G_min, self.G_max) if state is None else (state.G_min, state.G_max)
        steps = self.n_levels - 1
        k = jnp.round(jnp.clip((G - lo) / (hi - lo), 0.0, 1.0) * steps)
        return lo + k * (hi - lo) / steps

    # -- devices -------------------------------------------------------------------
    def sample_devices(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...],
        G0: Float[ArrayLike, "..."] | None = None,
    ) -> RRAMState:
        """Draw an array of cells of ``shape``: D2D-spread bounds, stuck-fault masks,
        pulse counters at 0 and conductance ``G0`` (clipped to each cell's bounds;
        default each cell's ``G_min``, a freshly formed cell in HRS). Stuck cells hold
        their stuck value."""
        return _sample_devices(
            key,
            tuple(int(n) for n in shape),
            self.G_min,
            self.G_max,
            self.d2d_sigma,
            self.p_stuck_lrs,
            self.p_stuck_hrs,
            G0,
        )

    def write_std(self, G_target: Float[ArrayLike, "..."], state: RRAMState) -> Float[Array, "..."]:
        """Standard deviation (S) of one write pulse aimed at ``G_target``."""
        if self.write_noise_model == "crosssim_milo":
            return self.write_sigma * crosssim_milo_sigma(G_target)
        return self.write_sigma * (state.G_max - state.G_min)

    def program(
        self,
        key: PRNGKeyArray,
        state: RRAMState,
        G_target: Float[ArrayLike, "..."],
        *,
        mask: Bool[ArrayLike, "..."] | None = None,
    ) -> RRAMState:
        """Program-and-verify every cell (where ``mask``) towards ``G_target`` (S).

        Runs ``max_iterations`` verify / pulse iterations in one `lax.fori_loop`, all
        cells at once; cells that verify stop receiving pulses. Targets are not
        quantised here (see :meth:`quantize`); a target outside a cell's own bounds is
        approached by clipped writes and fails verification unless within tolerance.
        Returns the new state: ``G``, ``pulses`` (accumulated), ``last_pulses`` and
        ``converged`` updated; cells outside ``mask`` are untouched.
        """
        shape = state.G.shape
        target = jnp.broadcast_to(jnp.asarray(G_target, state.G.dtype), shape)
        mask = jnp.ones(shape, bool) if mask is None else jnp.broadcast_to(mask, shape)
        tol = self.verify_tol * (state.G_max - state.G_min)
        sigma = self.write_std(target, state)
        return _program_verify(key, state, target, mask, tol, sigma, self.max_iterations)

    # -- read ----------------------------------------------------------------------
    def drift(self, G0: Float[ArrayLike, "..."], t: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        """Power-law drift ``G0 (t / t0)^(-nu)`` for ``t >= t0`` (``G0`` for ``t < t0``)."""
        t = jnp.maximum(jnp.asarray(t, dtype=jnp.result_type(t, float)), self.t0)
        return jnp.asarray(G0 * (t / self.t0) ** (-self.nu))

    def read(
        self,
        key: PRNGKeyArray | None,
        state: RRAMState,
        t: Float[ArrayLike, "..."] | None = None,
    ) -> Float[Array, "..."]:
        """Read conductances (S): drift to time ``t`` after programming (if given; stuck
        cells do not drift), then multiplicative read noise ``(1 + read_sigma z)`` drawn
        fresh from ``key`` (``key=None``: a noiseless read). Clipped at 0."""
        G = state.G
        if t is not None:
            G = jnp.where(state.stuck, G, self.drift(G, t))
        if key is not None:
            G = G * (1.0 + self.read_sigma * jax.random.normal(key, G.shape, G.dtype))
        return jnp.maximum(G, 0.0)


@partial(jax.jit, static_argnums=1)
def _sample_devices(key, shape, G_min, G_max, d2d_sigma, p_lrs, p_hrs, G0):
    dtype = jnp.result_type(float)
    k_lo, k_hi, k_f = jax.random.split(key, 3)
    G_lo = G_min * jnp.exp(d2d_sigma * jax.random.normal(k_lo, shape, dtype))
    G_hi = G_max * jnp.exp(d2d_sigma * jax.random.normal(k_hi, shape, dtype))
    # A spread comparable to ln(G_max / G_min) could invert a cell's bounds.
    G_lo = jnp.minimum(G_lo, G_hi * (1.0 - 1e-6))
    u = jax.random.uniform(k_f, shape, dtype)
    stuck_lrs = u < p_lrs
    stuck_hrs = (u >= p_lrs) & (u < p_lrs + p_hrs)
    G = G_lo if G0 is None else jnp.clip(jnp.broadcast_to(G0, shape), G_lo, G_hi)
    G = jnp.where(stuck_lrs, G_hi, jnp.where(stuck_hrs, G_lo, G)).astype(dtype)
    zeros = jnp.zeros(shape, jnp.int32)
    return RRAMState(
        G=G,
        G_min=G_lo,
        G_max=G_hi,
        stuck_lrs=stuck_lrs,
        stuck_hrs=stuck_hrs,
        pulses=zeros,
        last_pulses=zeros,
        converged=jnp.zeros(shape, bool),
    )


@partial(jax.jit, static_argnums=6)
def _program_verify(key, state, target, mask, tol, sigma, max_iterations):
    """The verify / pulse loop of :meth:`MultiLevelRRAM.program` (one compile per
    shape and ``max_iterations``, whatever the noise settings)."""
    shape = state.G.shape
    stuck = state.stuck
    stuck_val = jnp.where(state.stuck_lrs, state.G_max, state.G_min)

    def verified(G):
        return jnp.abs(G - target) <= tol

    def body(i, carry):
        G, n, done = carry
        done = done | verified(G)
        z = jax.random.normal(jax.random.fold_in(key, i), shape, G.dtype)
        written = jnp.clip(target + sigma * z, state.G_min, state.G_max)
        written = jnp.where(stuck, stuck_val, written)
        G = jnp.where(done, G, written)
        n = n + (~done).astype(jnp.int32)
        return G, n, done

    G, n, _ = jax.lax.fori_loop(
        0, max_iterations, body, (state.G, jnp.zeros(shape, jnp.int32), ~mask)
    )
    converged = jnp.where(mask, verified(G), state.converged)
    return dataclasses.replace(
        state, G=G, pulses=state.pulses + n, last_pulses=n, converged=converged
    )
