"""RRAM crossbar as a differentiable layer: conductance pairs, Ohm + Kirchhoff MVM and
switchable non-idealities.

**Parametrisation.** Each weight is a differential pair of :class:`MultiLevelRRAM`
cells. Training acts on normalised conductances ``u_pos, u_neg`` in [0, 1]:

    G_pm = G_min + u_pm (G_max - G_min)                       (S)
    W    = G_pos - G_neg = (u_pos - u_neg) (G_max - G_min)      (S), in [-dG, dG]

with the device's nominal bounds. Row voltages ``v`` (V) give column currents (A)

    I_j = sum_i v_i (G_pos_ij - G_neg_ij)                     (Ohm's law + Kirchhoff)

**Non-idealities** (each off by default, switched in :class:`CrossbarConfig`; the
device's own parameters set their size, see :mod:`memjax.devices.rram`):

- ``dac_bits``: inputs clipped to the DAC range and rounded to ``2^bits`` levels.
  Signed DAC (default): two's-complement levels ``k v_read / 2^(bits-1)``, k in
  [-2^(bits-1), 2^(bits-1) - 1] (zero is a level). ``dac_signed=False``: ``2^bits``
  levels evenly spaced on [0, v_read] (both ends included).
- ``quantize_levels``: each conductance rounded to the nearest of the device's
  ``n_levels`` levels.
- ``drift_time``: conductances drifted to ``G (t / t0)^(-nu)``, t seconds after
  programming.
- ``read_noise``: every read multiplies every conductance by ``(1 + read_sigma z)``,
  z ~ N(0, 1) fresh per call *and per input vector* (each row of a batch is its own
  read). It is applied exactly, without drawing a matrix per row: the column current of
  one read is Gaussian with mean ``I_j`` and variance
  ``read_sigma^2 sum_i v_i^2 (G_pos_ij^2 + G_neg_ij^2)``. Needs a ``key``; without one
  the read is noiseless (as :meth:`MultiLevelRRAM.read` with ``key=None``).
- ``adc_bits``: output currents clipped to ``[-I_fs, I_fs]`` and rounded to ``2^bits``
  two's-complement levels ``k I_fs / 2^(bits-1)``. **ADC range:** ``I_fs = adc_range``
  if given, else the worst case ``n_in v_read (G_max - G_min)`` (every row at full scale,
  every pair at maximal difference): such an ADC never saturates but its step is coarse
  for typical, much smaller currents; calibrate ``adc_range`` to the observed currents
  for a finer one.
- ``program_noise`` / ``stuck_faults``: act when a trained layer is written to the
  array with :meth:`Crossbar.program` (program-and-verify with write noise; stuck-at
  cells), which replaces ``u`` by the programmed conductances. Device-to-device spread of
  the bounds (``device.d2d_sigma``) acts there too.

Gradients reach ``u_pos, u_neg`` through :meth:`Crossbar.__call__`: the ideal layer is a
plain matmul; every quantiser is straight-through (identity inside its range, zero
where its input is clipped); drift and read noise are differentiable. Defaults and their
sources are in ``docs/crossbar.md``.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._validation import check_int, check_positive
from .devices.rram import MultiLevelRRAM, RRAMState

__all__ = [
    "AbstractSynapse",
    "CrossbarConfig",
    "Crossbar",
    "init_weight",
    "project_crossbars",
    "quantize_ste",
]


class AbstractSynapse(eqx.Module):
    """Base class of the synapse layers a network reads (`Crossbar`, the software
    `memjax.models.memprop.DenseSynapse`): row voltages in, column currents out.

    Subclasses implement :meth:`__call__`, :meth:`effective_weight` and the properties
    :attr:`n_in`, :attr:`n_out`, :attr:`v_read`.
    """

    @abc.abstractmethod
    def __call__(
        self, v: Float[ArrayLike, "... n_in"], key: PRNGKeyArray | None = None
    ) -> Float[Array, "... n_out"]:
        """Column currents (A) for row voltages ``v`` (V); ``key``: fresh read noise
        where the synapse has any (else unused)."""

    @abc.abstractmethod
    def effective_weight(self) -> Float[Array, "n_in n_out"]:
        """The weight matrix (S) the ideal read ``v @ W`` would use."""

    @property
    @abc.abstractmethod
    def n_in(self) -> int:
        """Number of rows (inputs)."""

    @property
    @abc.abstractmethod
    def n_out(self) -> int:
        """Number of columns (outputs)."""

    @property
    @abc.abstractmethod
    def v_read(self) -> float:
        """Full-scale input voltage (V): the read voltage of an input of intensity 1."""


def init_weight(
    key: PRNGKeyArray,
    shape: tuple[int, int],
    distribution: str = "uniform",
    scale: float | None = None,
) -> Float[Array, "n_in n_out"]:
    """Normalised initial weights ``w`` in [-1, 1] (units of ``G_max - G_min``).

    - ``"uniform"``: ``w ~ U(-a, a)``, ``a = scale`` or the Glorot bound ``sqrt(6 /
      (n_in + n_out))`` (at most 1); ``scale`` in (0, 1].
    - ``"normal"``: ``w = clip(s z, -1, 1)``, ``z ~ N(0, 1)``, ``s = scale`` or the
      Glorot ``sqrt(2 / (n_in + n_out))``; ``scale`` > 0.
    """
    n_in, n_out = shape
    if distribution == "uniform":
        a = min(math.sqrt(6.0 / (n_in + n_out)), 1.0) if scale is None else scale
        if not (0.0 < a <= 1.0):
            raise ValueError(f"Crossbar.init: scale must lie in (0, 1]; got {scale!r}")
        return jax.random.uniform(key, shape, minval=-a, maxval=a)
    if distribution == "normal":
        std = math.sqrt(2.0 / (n_in + n_out)) if scale is None else scale
        if not (math.isfinite(std) and std > 0):
            raise ValueError(
                f"Crossbar.init: scale (the std) must be finite and > 0; got {scale!r}"
            )
        return jnp.clip(std * jax.random.normal(key, shape), -1.0, 1.0)
    raise ValueError(
        f"Crossbar.init: distribution must be 'uniform' or 'normal'; got {distribution!r}"
    )


def quantize_ste(x: Float[ArrayLike, "..."], lo: float, step: float, n: int) -> Float[Array, "..."]:
    """Round ``x`` to the ``n`` levels ``lo + k step`` (k = 0 .. n - 1), clipping to
    their range; straight-through gradient (1 inside the range, 0 where clipped)."""
    x = jnp.asarray(x)
    hi = lo + (n - 1) * step
    xc = jnp.clip(x, lo, hi)
    q = lo + jnp.round((xc - lo) / step) * step
    return xc + jax.lax.stop_gradient(q - xc)


class CrossbarConfig(eqx.Module):
    """Static settings of a :class:`Crossbar`: the device and the switches of every
    non-ideality (all off: an ideal crossbar). Hashable (held as a static
    field): give the device Python numbers, not arrays.

    - `device`: the :class:`MultiLevelRRAM` cell (bounds, levels, noise sizes).
    - `read_noise`, `quantize_levels`, `program_noise`, `stuck_faults`: switches.
    - `drift_time`: seconds since programming (None: no drift).
    - `dac_bits`, `adc_bits`: converter resolutions (None: ideal).
    - `v_read`: DAC full-scale input voltage (V). Default 0.2.
    - `dac_signed`: signed DAC on [-v_read, v_read) (default) or unsigned on [0, v_read].
    - `adc_range`: ADC full-scale current (A); None: ``n_in v_read (G_max - G_min)``.
    """

    device: MultiLevelRRAM = eqx.field(default_factory=MultiLevelRRAM)
    read_noise: bool = False
    quantize_levels: bool = False
    program_noise: bool = False
    stuck_faults: bool = False
    drift_time: float | None = None
    dac_bits: int | None = None
    adc_bits: int | None = None
    v_read: float = 0.2
    dac_signed: bool = True
    adc_range: float | None = None

    def __check_init__(self):
        n = "CrossbarConfig"
        if not isinstance(self.device, MultiLevelRRAM):
            raise ValueError(
                f"{n}.device must be a MultiLevelRRAM; got {type(self.device).__name__}"
            )
        flags = ("read_noise", "quantize_levels", "program_noise", "stuck_faults", "dac_signed")
        for name in flags:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{n}.{name} must be a bool; got {getattr(self, name)!r}")
        if self.drift_time is not None:
            check_positive(n, "drift_time", self.drift_time, "s")
        check_int(f"{n}.dac_bits", self.dac_bits, 1, 32, none_ok=True)
        check_int(f"{n}.adc_bits", self.adc_bits, 1, 32, none_ok=True)
        check_positive(n, "v_read", self.v_read, "V")
        if self.adc_range is not None:
            check_positive(n, "adc_range", self.adc_range, "A")


class Crossbar(AbstractSynapse):
    """An ``n_in x n_out`` RRAM crossbar of differential conductance pairs.

    - `u_pos`, `u_neg`: trainable normalised conductances in [0, 1],
      ``G = G_min + u (G_max - G_min)``.
    - `config`: :class:`CrossbarConfig` (static).

    Call it on row voltages ``v[..., n_in]`` (V) to get column currents ``[..., n_out]``
    (A). After each optimiser step apply :meth:`project` (or :func:`project_crossbars`).
    """

    u_pos: Float[Array, "n_in n_out"]
    u_neg: Float[Array, "n_in n_out"]
    config: CrossbarConfig = eqx.field(static=True, default_factory=CrossbarConfig)

    def __check_init__(self):
        sp, sn = np.shape(self.u_pos), np.shape(self.u_neg)
        if len(sp) != 2:
            raise ValueError(f"Crossbar.u_pos must have shape (n_in, n_out); got {sp}")
        if sn != sp:
            raise ValueError(f"Crossbar.u_neg must have the shape of u_pos {sp}; got {sn}")
        if not isinstance(self.config, CrossbarConfig):
            raise ValueError(
                f"Crossbar.config must be a CrossbarConfig; got {type(self.config).__name__}"
            )

    @classmethod
    def init(
        cls,
        key: PRNGKeyArray,
        n_in: int,
        n_out: int,
        config: CrossbarConfig | None = None,
        *,
        scale: float | None = None,
        distribution: str = "uniform",
        pairing: str = "symmetric",
    ) -> "Crossbar":
        """Random initial conductance pairs from normalised weights ``w = u_pos - u_neg``
        (:func:`init_weight`: ``distribution`` ``"uniform"``, the default, Glorot-uniform
        ``U(-a, a)`` with ``a = scale`` or ``sqrt(6 / (n_in + n_out))``; ``"normal"``,
        ``clip(scale z, -1, 1)``), in units of ``G_max - G_min``, split into a pair by

        - ``pairing="symmetric"`` (default): both cells symmetric about mid-range,
          ``u_pm = (1 +- w) / 2``, so training can move either cell either way;
        - ``pairing="one-sided"``: one cell at ``G_min``, ``u_pos = max(w, 0)``,
          ``u_neg = max(-w, 0)`` (the MEMprop networks' initialisation).
        """
        for name, val in (("n_in", n_in), ("n_out", n_out)):
            check_int(f"Crossbar.init: {name}", val, 1)
        if pairing not in ("symmetric", "one-sided"):
            raise ValueError(
                f"Crossbar.init: pairing must be 'symmetric' or 'one-sided'; got {pairing!r}"
            )
        config = CrossbarConfig() if config is None else config
        w = init_weight(key, (n_in, n_out), distribution, scale)
        if pairing == "symmetric":
            return cls(u_pos=0.5 + 0.5 * w, u_neg=0.5 - 0.5 * w, config=config)
        return cls(u_pos=jnp.maximum(w, 0.0), u_neg=jnp.maximum(-w, 0.0), config=config)

    @property
    def n_in(self) -> int:
        return self.u_pos.shape[0]

    @property
    def n_out(self) -> int:
        return self.u_pos.shape[1]

    @property
    def v_read(self) -> float:
        """DAC full-scale input voltage (V): ``config.v_read``."""
        return self.config.v_read

    @property
    def g_range(self) -> float:
        """``G_max - G_min`` of the nominal device (S)."""
        return self.config.device.G_max - self.config.device.G_min

    def conductances(self) -> tuple[Float[Array, "n_in n_out"], Float[Array, "n_in n_out"]]:
        """``(G_pos, G_neg)`` (S) as the array presents them at read time, before the
        fresh read noise: level-quantised and drifted where the config says so."""
        dev, cfg = self.config.device, self.config
        out = []
        for u in (self.u_pos, self.u_neg):
            if cfg.quantize_levels:
                steps = dev.n_levels - 1
                u = quantize_ste(u, 0.0, 1.0 / steps, dev.n_levels)
            G = dev.G_min + u * self.g_range
            if cfg.drift_time is not None:
                G = dev.drift(G, cfg.drift_time)
            out.append(G)
        return out[0], out[1]

    def effective_weight(self) -> Float[Array, "n_in n_out"]:
        """``G_pos - G_neg`` (S)."""
        G_pos, G_neg = self.conductances()
        return G_pos - G_neg

    def dac(self, v: Float[ArrayLike, "... n_in"]) -> Float[Array, "... n_in"]:
        """Row voltages after the DAC (identity when ``dac_bits`` is None)."""
        cfg = self.config
        v = jnp.asarray(v)
        if cfg.dac_bits is None:
            return v
        n = 2**cfg.dac_bits
        if cfg.dac_signed:
            step = cfg.v_read / 2 ** (cfg.dac_bits - 1)
            return quantize_ste(v, -cfg.v_read, step, n)
        return quantize_ste(v, 0.0, cfg.v_read / (n - 1), n)

    def adc_full_scale(self) -> float:
        """ADC full-scale current ``I_fs`` (A) (see the module docstring)."""
        cfg = self.config
        if cfg.adc_range is not None:
            return cfg.adc_range
        return self.n_in * cfg.v_read * self.g_range

    def adc(self, i: Float[ArrayLike, "... n_out"]) -> Float[Array, "... n_out"]:
        """Column currents after the ADC (identity when ``adc_bits`` is None)."""
        cfg = self.config
        i = jnp.asarray(i)
        if cfg.adc_bits is None:
            return i
        half = 2 ** (cfg.adc_bits - 1)
        step = self.adc_full_scale() / half
        return quantize_ste(i, -half * step, step, 2 * half)

    def __call__(
        self, v: Float[ArrayLike, "... n_in"], key: PRNGKeyArray | None = None
    ) -> Float[Array, "... n_out"]:
        """Column currents ``I_j = sum_i v_i (G_pos_ij - G_neg_ij)`` (A) for row
        voltages ``v`` (V): DAC, conductance non-idealities, fresh read noise (when
        enabled and ``key`` is given), ADC."""
        v = jnp.asarray(v)
        if v.ndim < 1 or v.shape[-1] != self.n_in:
            raise ValueError(
                f"Crossbar.__call__: v must have last dimension n_in = {self.n_in}; "
                f"got shape {v.shape}"
            )
        v = self.dac(v)
        G_pos, G_neg = self.conductances()
        i = v @ (G_pos - G_neg)
        if self.config.read_noise and key is not None:
            sigma = self.config.device.read_sigma
            var = (v * v) @ (G_pos * G_pos + G_neg * G_neg)
            pos = var > 0
            std = jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)
            i = i + sigma * std * jax.random.normal(key, i.shape, i.dtype)
        return self.adc(i)

    def project(self) -> "Crossbar":
        """Clip ``u_pos, u_neg`` to [0, 1] (the physical conductance range)."""
        return eqx.tree_at(
            lambda c: (c.u_pos, c.u_neg),
            self,
            (jnp.clip(self.u_pos, 0.0, 1.0), jnp.clip(self.u_neg, 0.0, 1.0)),
        )

    def program(
        self, key: PRNGKeyArray, *, state: RRAMState | None = None
    ) -> tuple["Crossbar", RRAMState]:
        """Write the trained ``u`` into RRAM cells.

        Targets ``G_min + clip(u, 0, 1) (G_max - G_min)``, rounded to the device levels
        if ``quantize_levels``, are programmed with :meth:`MultiLevelRRAM.program`
        (program-and-verify; write noise only if ``program_noise``). ``state`` is the
        array's cell state of shape ``(2, n_in, n_out)`` (index 0: the ``G_pos`` cells,
        1: ``G_neg``), e.g. from an earlier call, so pulse counters accumulate and
        faults persist; without it a fresh array is drawn (stuck faults only if
        ``stuck_faults``, D2D spread per ``device.d2d_sigma``, cells starting at their
        G_min). Returns the crossbar with ``u`` set from the programmed conductances
        (not clipped: a D2D-widened cell may lie slightly outside [0, 1], so do not
        :meth:`project` it) and the new state (pulse counts in ``state.pulses``).

        The returned crossbar's config has ``quantize_levels=False``: its conductances
        already are the programmed (level-targeted, noisy) values, and snapping them to
        the levels again at read time would erase the programming error. Even without
        program noise, a cell whose target lies within ``verify_tol`` of its present
        conductance receives no pulse (error <= ``verify_tol`` of the range).
        """
        cfg = self.config
        dev = cfg.device
        changes = {}
        if not cfg.program_noise:
            changes["write_sigma"] = 0.0
        if not cfg.stuck_faults:
            changes.update(p_stuck_lrs=0.0, p_stuck_hrs=0.0)
        dev = dev.replace(**changes) if changes else dev
        shape = (2,) + tuple(self.u_pos.shape)
        k_state, k_prog = jax.random.split(key)
        if state is None:
            state = dev.sample_devices(k_state, shape)
        elif tuple(np.shape(state.G)) != shape:
            raise ValueError(
                f"Crossbar.program: state must have shape {shape}; got {tuple(np.shape(state.G))}"
            )
        u = jnp.clip(jnp.stack([self.u_pos, self.u_neg]), 0.0, 1.0)
        target = dev.G_min + u * self.g_range
        if cfg.quantize_levels:
            target = dev.quantize(target)
        state = dev.program(k_prog, state, target)
        u_new = ((state.G - dev.G_min) / self.g_range).astype(self.u_pos.dtype)
        config = dataclasses.replace(cfg, quantize_levels=False) if cfg.quantize_levels else cfg
        new = Crossbar(u_pos=u_new[0], u_neg=u_new[1], config=config)
        return new, state


def project_crossbars(tree):
    """Apply :meth:`Crossbar.project` to every :class:`Crossbar` inside a pytree (a model,
    a list of layers, ...); everything else is returned unchanged."""
    is_xb = lambda x: isinstance(x, Crossbar)
    return jax.tree.map(lambda x: x.project() if is_xb(x) else x, tree, is_leaf=is_xb)
