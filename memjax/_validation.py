"""Parameter validation shared by every model.

Checks run on concrete values (at construction, in Python). Inside `jit`/`vmap` the
values are tracers and the checks are skipped: validation belongs to the moment a user
writes a number, not to every traced call. Where traced values must be checked (a
population drawn inside `jit`), :func:`traced_checks` collects each check's condition
as a traced boolean instead, for `equinox.error_if` to raise at run time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "concrete",
    "is_int",
    "check_int",
    "check_positive",
    "check_nonnegative",
    "check_range",
    "check_less",
    "check_shape",
    "check_real",
    "check_broadcast",
    "check_fields",
    "traced_checks",
]

_COLLECTED: list[list[tuple[Any, str]]] = []


@contextlib.contextmanager
def traced_checks() -> Iterator[list[tuple[Any, str]]]:
    """Within this context the ``check_*`` functions, given traced values, append
    ``(bad, message)`` to the yielded list (``bad`` a traced scalar bool, true where the
    check fails) instead of skipping."""
    found: list[tuple[Any, str]] = []
    _COLLECTED.append(found)
    try:
        yield found
    finally:
        _COLLECTED.pop()


def _record(bad: Any, message: str) -> None:
    if _COLLECTED:
        _COLLECTED[-1].append((jnp.any(bad), message))


def is_int(value: Any) -> TypeIs[int | np.integer]:
    """Whether ``value`` is a Python or NumPy integer (a bool is not; 2.0 is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_time(where: str, value: Any, *, positive: bool = True) -> None:
    """A concrete real scalar time ``where`` (s): ``TypeError`` unless a real scalar,
    ``ValueError`` unless finite (and > 0 where ``positive``). Tracers pass: see
    `guard_time`."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where} must be a real scalar (s); got {value!r}") from None
    if arr.shape != () or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{where} must be a real scalar (s); got {value!r}")
    if not np.isfinite(arr) or (positive and arr <= 0):
        want = "finite and > 0" if positive else "finite"
        raise ValueError(f"{where} must be {want} (s); got {float(arr)}")


def guard_time(where: str, value: Any) -> Any:
    """``value``, with an `equinox.error_if` that fails at run time unless it is finite
    and > 0: the check of a traced time step under `jit` (`check_time` does a concrete
    one)."""
    if not isinstance(value, jax.core.Tracer):
        return value
    return eqx.error_if(
        value, ~(jnp.isfinite(value) & (value > 0)), f"{where} must be finite and > 0"
    )


def check_int(
    where: str,
    value: Any,
    lo: int | None = None,
    hi: int | None = None,
    *,
    none_ok: bool = False,
    note: str = "",
    type_error: type[Exception] = ValueError,
) -> None:
    """Check a static integer argument or field.

    ``where`` names the owner and the field as the message shows them (``"MLP.n_in"``,
    ``"fit: batch_size"``). Raises ``type_error`` for a value that is not an integer
    (:func:`is_int`) and `ValueError` for one outside ``[lo, hi]`` (either bound may be
    None); ``none_ok`` lets None through. ``note`` follows the
    allowed range in the message.
    """
    if value is None and none_ok:
        return
    if lo is not None and hi is not None:
        allowed = f"an integer in [{lo}, {hi}]"
    elif lo is not None:
        allowed = f"an integer >= {lo}"
    elif hi is not None:
        allowed = f"an integer <= {hi}"
    else:
        allowed = "an integer"
    allowed = ("None or " if none_ok else "") + allowed + note
    if not is_int(value):
        raise type_error(f"{where} must be {allowed}; got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{where} must be {allowed}; got {value!r}")


def check_real(owner: str, name: str, value: Any) -> None:
    """Raise `TypeError` unless `value` is a real number or an array of real numbers
    (bool, integer or floating; a tracer of such a dtype passes)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{owner}.{name} must be a real number or array; got the string {value!r}")
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(value).dtype
        except Exception as e:  # noqa: BLE001 - anything NumPy cannot read is not a number
            raise TypeError(
                f"{owner}.{name} must be a real number or array; got {type(value).__name__}"
            ) from e
    if not (
        np.issubdtype(dtype, np.floating)
        or np.issubdtype(dtype, np.integer)
        or np.issubdtype(dtype, np.bool_)
        or str(dtype) == "bfloat16"
    ):
        raise TypeError(
            f"{owner}.{name} must be a real number or array; got dtype {dtype} "
            f"({type(value).__name__})"
        )


def check_broadcast(owner: str, fields: dict[str, Any]) -> tuple[int, ...]:
    """Raise `ValueError` naming two fields and their shapes unless the shapes of all
    `fields` broadcast together; return the broadcast shape."""
    shape: tuple[int, ...] = ()
    first: dict[int, tuple[str, tuple[int, ...]]] = {}
    for name, value in fields.items():
        s = tuple(np.shape(value))
        try:
            shape = np.broadcast_shapes(shape, s)
        except ValueError:
            # Name the earlier field that fixed the conflicting axis.
            other = next(
                (
                    first[ax]
                    for ax in first
                    if ax < len(s) and s[-1 - ax] not in (1, first[ax][1][-1 - ax])
                ),
                next(iter(first.values()), ("?", shape)),
            )
            raise ValueError(
                f"{owner}: the shapes of {other[0]} {other[1]} and {name} {s} do not "
                f"broadcast together (population parameters must share a shape or "
                f"broadcast to one)"
            ) from None
        for ax in range(len(s)):
            if s[-1 - ax] != 1 and ax not in first:
                first[ax] = (name, s)
    return shape


def check_fields(owner: str, module: Any) -> None:
    """`check_real` on every array-like field of an `eqx.Module` (sub-modules and static
    fields are skipped) and `check_broadcast` over them."""
    import dataclasses

    import equinox as eqx

    arrays = {}
    for f in dataclasses.fields(module):
        if f.metadata.get("static", False):
            continue
        value = getattr(module, f.name, None)
        if value is None or isinstance(value, eqx.Module) or callable(value):
            continue
        factory = f.default_factory
        if isinstance(f.default, eqx.Module) or (
            isinstance(factory, type) and issubclass(factory, eqx.Module)
        ):
            continue  # a sub-module slot (a window): its owner checks its type
        check_real(owner, f.name, value)
        arrays[f.name] = value
    check_broadcast(owner, arrays)


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
    """Raise `TypeError` unless `value` is real (:func:`check_real`), `ValueError` unless
    every element of `value` is finite and > 0."""
    check_real(owner, name, value)
    arr = concrete(value)
    if arr is None:
        _record(
            ~(jnp.isfinite(value) & (value > 0)),
            f"{owner}.{name} must be finite and > 0{(' ' + unit) if unit else ''}",
        )
        return
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"{owner}.{name} must be finite and > 0{(' ' + unit) if unit else ''}; got {_fmt(arr)}"
        )


def check_nonnegative(owner: str, name: str, value: Any, unit: str = "") -> None:
    """Raise `TypeError` unless `value` is real (:func:`check_real`), `ValueError` unless
    every element of `value` is finite and >= 0."""
    check_real(owner, name, value)
    arr = concrete(value)
    if arr is None:
        _record(
            ~(jnp.isfinite(value) & (value >= 0)),
            f"{owner}.{name} must be finite and >= 0{(' ' + unit) if unit else ''}",
        )
        return
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"{owner}.{name} must be finite and >= 0{(' ' + unit) if unit else ''}; got {_fmt(arr)}"
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
    """Raise `TypeError` unless `value` is real, `ValueError` unless `lo <= value <= hi`
    (open ends where asked)."""
    check_real(owner, name, value)
    arr = concrete(value)
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    what = f"{owner}.{name} must lie in {lb}{lo:g}, {hi:g}{rb}{(' ' + unit) if unit else ''}"
    if arr is None:
        ok = jnp.isfinite(value) & ((value > lo) if lo_open else (value >= lo))
        _record(~(ok & ((value < hi) if hi_open else (value <= hi))), what)
        return
    ok = np.all(np.isfinite(arr))
    ok &= bool(np.all(arr > lo) if lo_open else np.all(arr >= lo))
    ok &= bool(np.all(arr < hi) if hi_open else np.all(arr <= hi))
    if not ok:
        raise ValueError(f"{what}; got {_fmt(arr)}")


def check_less(owner: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise `ValueError` unless `a < b` elementwise (and their shapes broadcast)."""
    check_real(owner, name_a, a)
    check_real(owner, name_b, b)
    check_broadcast(owner, {name_a: a, name_b: b})
    aa, bb = concrete(a), concrete(b)
    if aa is None or bb is None:
        _record(~(jnp.asarray(a) < jnp.asarray(b)), f"{owner}: {name_a} must be < {name_b}")
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
