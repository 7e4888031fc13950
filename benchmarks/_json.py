"""Benchmark records as strict JSON: conversion, non-finite numbers, atomic writing."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_json", "dumps", "write_atomic"]


def to_json(obj: Any, nulls: dict[str, str] | None = None, path: str = "") -> Any:
    """``obj`` with numpy scalars and arrays as Python numbers and lists, paths as
    strings and mapping keys as strings. A NaN or infinite float becomes ``None``; where
    ``nulls`` is given, ``nulls[path] = "nan" | "inf" | "-inf"`` records why, ``path``
    being the dotted key path (list indices in brackets)."""
    if isinstance(obj, dict):
        return {
            str(k): to_json(v, nulls, f"{path}.{k}" if path else str(k)) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [to_json(v, nulls, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    elif hasattr(obj, "tolist") and hasattr(obj, "shape"):
        return to_json(np.asarray(obj).tolist(), nulls, path)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        if nulls is not None:
            nulls[path] = "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
        return None
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """Strict JSON (``allow_nan=False``: a NaN left in ``obj`` is an error, not ``NaN``)."""
    return json.dumps(obj, allow_nan=False, **kwargs)


def write_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict, indented JSON to ``path`` through a temporary file in the
    same folder and `os.replace`: ``path`` holds either its old content or the whole new
    record, never a partial one."""
    path = Path(path)
    text = dumps(obj, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
