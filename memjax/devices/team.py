"""TEAM and VTEAM threshold-adaptive memristor models (Kvatinsky et al.).

TEAM (current-controlled): Kvatinsky, Friedman, Kolodny & Weiser, "TEAM: ThrEshold
Adaptive Memristor Model", IEEE TCAS-I 60(1), 211-221 (2013). VTEAM (voltage-controlled):
Kvatinsky, Ramadan, Friedman & Kolodny, "VTEAM: A General Model for Voltage-Controlled
Memristors", IEEE TCAS-II 62(8), 786-790 (2015). With the physical state w in
[w_on, w_off] (TEAM eq. 14; VTEAM the same with (v, v_on, v_off) for (i, i_on, i_off)):

    dw/dt = k_off (i/i_off - 1)^alpha_off f_off(w)     0 < i_off < i
          = 0                                          i_on < i < i_off
          = k_on (i/i_on - 1)^alpha_on f_on(w)         i < i_on < 0

k_off > 0, k_on < 0: current above i_off drives w up towards w_off (R_off, OFF); current
below i_on drives it down towards w_on (R_on, ON). The I-V relation is either

    linear       v = [R_on + (R_off - R_on)(w - w_on)/(w_off - w_on)] i       (TEAM eq. 15)
    exponential  v = R_on exp(lambda (w - w_on)/(w_off - w_on)) i,
                 lambda = ln(R_off / R_on)                                    (eqs. 16-17)

**State.** memjax keeps the normalised state ``x = (w - w_on) / (w_off - w_on)`` in
[0, 1] (x = 0 is ON, x = 1 is OFF), so ``rate`` returns ``dx/dt = (dw/dt)/(w_off - w_on)``
and the windows of :mod:`memjax.devices.windows` (functions of a normalised state) plug
in unchanged. ``k_on``/``k_off`` keep their published units (m/s).

**Windows.** ``f_on = f_off = window(x, i)`` for the symmetric windows (Joglekar,
Prodromakis, :class:`~memjax.devices.windows.NoWindow` = the ideal rectangular window)
and the current-direction-dependent ones (Biolek, and :class:`Kvatinsky` below: TEAM
eqs. 18-19, ``f_off(w) = exp(-exp((w - a_off)/w_c))``, ``f_on(w) = exp(-exp(-(w - a_on)/w_c))``).
Biolek's ``stp(-i)`` and Kvatinsky's branch choice see the sign of the device current,
which for VTEAM has the sign of ``v``.

**Overflow.** The drift term ``k (r - 1)^alpha`` is evaluated in log space as
``sign(k) exp(min(ln|k| + alpha ln(r - 1), EXP_MAX))`` for ``r > 1`` and exactly 0
otherwise (:func:`threshold_rate`). The cap applies to the whole rate in m/s (or V/s for a
voltage-defined state), ``exp(60) ~ 1e26``, never to the drive factor alone: a 1 kV drive
gives ``(1e3/50/115e-6)^10 ~ 1e52``, which would overflow float32, while the rate of any
physical operating point is exact (with the Pickett fit below, ``k_on = -4.68e-22 m/s``,
the cap is reached only above ``|i| ~ 0.5 A``). Capping the drive factor alone would
limit the rate of ordinary operating points.

**Defaults.**

- :class:`TEAMMemristor`: the TEAM paper's fit to the Simmons tunnel-barrier (Pickett)
  model, Fig. 10: k_off = 1.46e-9 nm/s, k_on = -4.68e-13 nm/s, alpha_off = alpha_on = 10,
  i_off = 115 uA, i_on = -8.9 uA; R_on = 50 Ohm, R_off = 1 kOhm (Figs. 12-13); the
  Kvatinsky window with the Pickett constants of Fig. 8 (a_off = 1.2 nm, a_on = 1.8 nm,
  w_c = 107 pm) and bounds w_on = a_off, w_off = a_on as the paper recommends (Sec. IV-D).
  With these constants the window confines motion to a few w_c near each bound (the
  paper notes that it "constrains the state variable to a low range"): a 1 V, 1 kHz sine
  from x0 = 1 switches x down once, in the first negative half-cycle, after which both
  windows are nearly closed and x stays put. ON switching takes nanoseconds at mA
  currents, so the equations are stiff at the drive's time scale: use `substeps` with
  the fixed-step solvers, or check against the adaptive diffrax reference.
  Under a symmetric sine these constants have a periodic loop only where ON and OFF
  motion balance, at an intermediate state; the orbit is slow (periods of about a
  second) because both windows are nearly closed there, while a fast sine only creeps
  the state down period after period (no periodic loop). The
  ``devices`` benchmark therefore drives TEAM at 1 V, 1 Hz.
- :class:`VTEAMMemristor`: the example set of the Technion group's public (V)TEAM
  Verilog-A/MATLAB code (also MemTorch's VTEAM defaults): R_on = 50 Ohm, R_off = 1 kOhm,
  w in [0, 3 nm], k_off = 5e-4 m/s, k_on = -10 m/s, alpha_off = 1, alpha_on = 3,
  v_off = 0.02 V, v_on = -0.2 V, with the ideal rectangular window. These are not the
  device fits of the VTEAM paper's Table I, which could not be read here. Their time
  scale is nanoseconds.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._math import safe_exp
from .._validation import check_less, check_positive, check_range
from ._base import AbstractMemristor
from .windows import AbstractWindow, NoWindow

__all__ = [
    "TEAMMemristor",
    "VTEAMMemristor",
    "Kvatinsky",
    "threshold_rate",
    "kvatinsky_off",
    "kvatinsky_on",
]

IV = Literal["linear", "exponential"]
_IV_CHOICES = ("linear", "exponential")
_INF = float("inf")


def threshold_rate(k, r, alpha):
    """``k (r - 1)^alpha`` for ``r > 1``, else 0 (a TEAM/VTEAM drift term).

    Computed in log space, ``sign(k) exp(min(ln|k| + alpha ln(r - 1), EXP_MAX))``, so only
    a rate beyond ``exp(60)`` in the units of ``k`` is capped (float32-safe value and
    gradient), not the drive factor: rates of physical operating points are exact.
    """
    u = jnp.asarray(r) - 1.0
    pos = u > 0
    safe_u = jnp.where(pos, u, 1.0)
    k = jnp.asarray(k)
    log_rate = jnp.log(jnp.abs(k)) + alpha * jnp.log(safe_u)
    return jnp.where(pos, jnp.sign(k) * safe_exp(log_rate), 0.0)


def kvatinsky_off(w, a_off, w_c):
    """``f_off(w) = exp(-exp((w - a_off) / w_c))`` (TEAM eq. 18)."""
    return jnp.exp(-safe_exp((w - a_off) / w_c))


def kvatinsky_on(w, a_on, w_c):
    """``f_on(w) = exp(-exp(-(w - a_on) / w_c))`` (TEAM eq. 19)."""
    return jnp.exp(-safe_exp(-(w - a_on) / w_c))


class Kvatinsky(AbstractWindow):
    """Kvatinsky's asymmetric window (TEAM eqs. 18-19), on the normalised state.

    ``F(x, i) = f_off(x) = exp(-exp((x - a_off)/w_c))`` for ``i >= 0`` (state moving
    towards OFF) and ``f_on(x) = exp(-exp(-(x - a_on)/w_c))`` for ``i < 0``.
    ``a_on``, ``a_off`` and ``w_c`` are in units of the normalised state; convert
    published lengths with :meth:`from_physical`. Default: the TEAM paper's Pickett
    constants (a_off = 1.2 nm, a_on = 1.8 nm, w_c = 107 pm) on w in [1.2, 1.8] nm.
    """

    a_on: Float[ArrayLike, ""] = 1.0
    a_off: Float[ArrayLike, ""] = 0.0
    w_c: Float[ArrayLike, ""] = 107e-12 / 0.6e-9

    def __check_init__(self):
        check_range("Kvatinsky", "a_on", self.a_on, -_INF, _INF, lo_open=True, hi_open=True)
        check_range("Kvatinsky", "a_off", self.a_off, -_INF, _INF, lo_open=True, hi_open=True)
        check_positive("Kvatinsky", "w_c", self.w_c)

    @classmethod
    def from_physical(cls, a_on, a_off, w_c, w_on, w_off) -> "Kvatinsky":
        """The window for published ``a_on``, ``a_off``, ``w_c`` (m) on ``[w_on, w_off]``."""
        span = w_off - w_on
        return cls(a_on=(a_on - w_on) / span, a_off=(a_off - w_on) / span, w_c=w_c / span)

    def __call__(self, x, i):
        return jnp.where(
            jnp.asarray(i) >= 0,
            kvatinsky_off(x, self.a_off, self.w_c),
            kvatinsky_on(x, self.a_on, self.w_c),
        )


def _memristance(x, R_on, R_off, iv):
    if iv == "linear":
        return R_on + (R_off - R_on) * x
    return R_on * jnp.exp(jnp.log(R_off / R_on) * x)


def _check_iv(owner, iv):
    if iv not in _IV_CHOICES:
        raise ValueError(f"{owner}.iv must be one of {_IV_CHOICES}; got {iv!r}")


def _check_common(owner, m):
    check_positive(owner, "R_on", m.R_on, "Ohm")
    check_positive(owner, "R_off", m.R_off, "Ohm")
    check_less(owner, "R_on", m.R_on, "R_off", m.R_off)
    check_range(owner, "w_on", m.w_on, -_INF, _INF, lo_open=True, hi_open=True, unit="m")
    check_range(owner, "w_off", m.w_off, -_INF, _INF, lo_open=True, hi_open=True, unit="m")
    check_less(owner, "w_on", m.w_on, "w_off", m.w_off)
    check_positive(owner, "k_off", m.k_off, "m/s")
    check_range(owner, "k_on", m.k_on, -_INF, 0.0, hi_open=True, unit="m/s")
    check_positive(owner, "alpha_off", m.alpha_off)
    check_positive(owner, "alpha_on", m.alpha_on)
    check_range(owner, "x0", m.x0, 0.0, 1.0)
    _check_iv(owner, m.iv)
    if not isinstance(m.window, AbstractWindow):
        raise ValueError(f"{owner}.window must be an AbstractWindow; got {type(m.window)}")


def _drift(u, u_on, u_off, k_on, k_off, alpha_on, alpha_off):
    """Unwindowed dw/dt of TEAM eq. (14) / VTEAM eq. (3) for drive ``u`` (A or V)."""
    return threshold_rate(k_off, u / u_off, alpha_off) + threshold_rate(k_on, u / u_on, alpha_on)


class TEAMMemristor(AbstractMemristor):
    """Current-controlled ThrEshold Adaptive Memristor (TEAM), normalised state x.

    Under a voltage drive ``v`` the current ``i = v / R(x)`` is computed from the I-V
    relation first; the state equation then uses ``i`` (TEAM eq. 14).

    **Fields** (SI units):

    - `R_on`, `R_off`: resistance at w_on (x = 0) and w_off (x = 1) (Ohm), R_on < R_off.
    - `w_on`, `w_off`: bounds of the physical state w (m), w_on < w_off.
    - `i_off` > 0, `i_on` < 0: current thresholds (A).
    - `k_off` > 0, `k_on` < 0: drift-rate constants (m/s).
    - `alpha_off`, `alpha_on` > 0: exponents.
    - `window`: F(x, i); default :class:`Kvatinsky` with the Pickett constants.
    - `iv`: ``"linear"`` (eq. 15) or ``"exponential"`` (eqs. 16-17); static.
    - `x0`: initial normalised state in [0, 1]. Default 1 (OFF).
    """

    state_name: ClassVar[str] = "(w - w_on)/(w_off - w_on)"

    R_on: Float[ArrayLike, "..."] = 50.0
    R_off: Float[ArrayLike, "..."] = 1e3
    w_on: Float[ArrayLike, "..."] = 1.2e-9
    w_off: Float[ArrayLike, "..."] = 1.8e-9
    i_off: Float[ArrayLike, "..."] = 115e-6
    i_on: Float[ArrayLike, "..."] = -8.9e-6
    k_off: Float[ArrayLike, "..."] = 1.46e-18
    k_on: Float[ArrayLike, "..."] = -4.68e-22
    alpha_off: Float[ArrayLike, "..."] = 10.0
    alpha_on: Float[ArrayLike, "..."] = 10.0
    window: AbstractWindow = eqx.field(default_factory=Kvatinsky)
    iv: IV = eqx.field(static=True, default="linear")
    x0: Float[ArrayLike, "..."] = 1.0

    def __check_init__(self):
        n = "TEAMMemristor"
        _check_common(n, self)
        check_positive(n, "i_off", self.i_off, "A")
        check_range(n, "i_on", self.i_on, -_INF, 0.0, hi_open=True, unit="A")

    def memristance(self, x) -> Float[Array, "..."]:
        """R(x) (Ohm): linear or exponential in x per ``iv``."""
        return _memristance(x, self.R_on, self.R_off, self.iv)

    def current(self, x, v):
        return v / self.memristance(x)

    def rate_from_current(self, x, i) -> Float[Array, "..."]:
        """``dx/dt`` (1/s) under a device current ``i`` (A): TEAM eq. (14) / (w_off - w_on)."""
        dw = _drift(i, self.i_on, self.i_off, self.k_on, self.k_off, self.alpha_on, self.alpha_off)
        return dw * self.window(x, i) / (self.w_off - self.w_on)  # type: ignore[operator]

    def rate(self, x, v):
        return self.rate_from_current(x, self.current(x, v))

    def state_bounds(self):
        return 0.0, 1.0


class VTEAMMemristor(AbstractMemristor):
    """Voltage-controlled ThrEshold Adaptive Memristor (VTEAM), normalised state x.

    **Fields** (SI units): as :class:`TEAMMemristor` with voltage thresholds
    `v_off` > 0 and `v_on` < 0 (V) instead of current thresholds. Default window:
    :class:`~memjax.devices.windows.NoWindow` (ideal rectangular; bounds by clipping).
    `x0` default 0 (ON).
    """

    state_name: ClassVar[str] = "(w - w_on)/(w_off - w_on)"

    R_on: Float[ArrayLike, "..."] = 50.0
    R_off: Float[ArrayLike, "..."] = 1e3
    w_on: Float[ArrayLike, "..."] = 0.0
    w_off: Float[ArrayLike, "..."] = 3e-9
    v_off: Float[ArrayLike, "..."] = 0.02
    v_on: Float[ArrayLike, "..."] = -0.2
    k_off: Float[ArrayLike, "..."] = 5e-4
    k_on: Float[ArrayLike, "..."] = -10.0
    alpha_off: Float[ArrayLike, "..."] = 1.0
    alpha_on: Float[ArrayLike, "..."] = 3.0
    window: AbstractWindow = eqx.field(default_factory=NoWindow)
    iv: IV = eqx.field(static=True, default="linear")
    x0: Float[ArrayLike, "..."] = 0.0

    def __check_init__(self):
        n = "VTEAMMemristor"
        _check_common(n, self)
        check_positive(n, "v_off", self.v_off, "V")
        check_range(n, "v_on", self.v_on, -_INF, 0.0, hi_open=True, unit="V")

    def memristance(self, x) -> Float[Array, "..."]:
        """R(x) (Ohm): linear or exponential in x per ``iv``."""
        return _memristance(x, self.R_on, self.R_off, self.iv)

    def current(self, x, v):
        return v / self.memristance(x)

    def rate(self, x, v):
        dw = _drift(v, self.v_on, self.v_off, self.k_on, self.k_off, self.alpha_on, self.alpha_off)
        i = self.current(x, v)
        return dw * self.window(x, i) / (self.w_off - self.w_on)  # type: ignore[operator]

    def state_bounds(self):
        return 0.0, 1.0
