"""Parameter validation shared by every model.

Checks run on concrete values only (at construction, in Python). Inside `jit`/`vmap`
the values are tracers and the checks are skipped: validation belongs to the moment a
user writes a number, not to every traced call.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = [
    "concrete",
    "check_positive",
    "check_nonnegative",
    "check_range",
    "check_less",
    "check_shape",
]


def concrete(value: Any) -> np.ndarray | None:
    """`value` as a NumPy array, or `None` if it is a tracer (abstract value)."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _fmt(arr: np.ndarray) -> str:
    if arr.size == 1:
        return f"{arr.reshape(()).item():.6g}"
    return f"array with min {arr.min():.6g}, max {arr.max():.6g}"


def check_positive(owner: str, name: str, value: Any, unit: str = "") -> None:
    """Raise `ValueError` unless every element of `value` is finite and > 0."""
    arr = concrete(value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"{owner}.{name} must be finite and > 0{(' ' + unit) if unit else ''}; "
            f"got {_fmt(arr)}"
        )


def check_nonnegative(owner: str, name: str, value: Any, unit: str = "") -> None:
    """Raise `ValueError` unless every element of `value` is finite and >= 0."""
    arr = concrete(value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"{owner}.{name} must be finite and >= 0{(' ' + unit) if unit else ''}; "
            f"got {_fmt(arr)}"
        )


def check_range(
    owner: str,
    name: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> None:
    """Raise `ValueError` unless `lo <= value <= hi` (open ends where asked)."""
    arr = concrete(value)
    if arr is None:
        return
    ok = np.all(np.isfinite(arr))
    ok &= bool(np.all(arr > lo) if lo_open else np.all(arr >= lo))
    ok &= bool(np.all(arr < hi) if hi_open else np.all(arr <= hi))
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(
            f"{owner}.{name} must lie in {lb}{lo:g}, {hi:g}{rb}"
            f"{(' ' + unit) if unit else ''}; got {_fmt(arr)}"
        )


def check_less(owner: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise `ValueError` unless `a < b` elementwise."""
    aa, bb = concrete(a), concrete(b)
    if aa is None or bb is None:
        return
    if np.any(aa >= bb):
        raise ValueError(
            f"{owner}: {name_a} must be < {name_b}; got {name_a} = {_fmt(aa)}, "
            f"{name_b} = {_fmt(bb)}"
        )


def check_shape(owner: str, name: str, value: Any, shape: tuple[int | None, ...]) -> None:
    """Raise `ValueError` unless `value.shape` matches `shape` (`None` = any size)."""
    got = tuple(np.shape(value))
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{owner}: {name} must have shape {want}; got {got}")
