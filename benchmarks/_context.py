"""What a benchmark receives: settings, output folder, figure saving, progress, timing."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["Context", "environment"]


@dataclasses.dataclass
class Context:
    name: str
    quick: bool
    out: Path
    data_dir: str | None = None
    seed: int = 0
    figures: list[str] = dataclasses.field(default_factory=list)
    #: ``--set KEY=VALUE`` settings overrides (strings), applied by :meth:`settings`.
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Each benchmark records only the data it loaded itself (see data_config).
        from memjax.data import clear_sources

        clear_sources()

    def settings(self, default: Any) -> Any:
        """``default`` (a settings dataclass) with :attr:`overrides` applied, each value
        parsed as the type of the field's default: int, float, bool (``true``/``false``),
        ``none`` where the default is None or the field allows it, comma-separated tuples
        (``ms=0,1.35``). An unknown key or a bad value raises `SystemExit` naming the
        allowed keys or the expected type."""
        return apply_overrides(self.name, default, self.overrides)

    def data_config(self) -> dict[str, Any]:
        """Where every dataset this benchmark loaded came from, for the JSON ``config``:
        ``{"data_sources": [{"dataset", "split", "source", "path", "n"}, ...]}`` with
        ``source`` ``"idx"`` (full IDX folder), ``"download"`` (download cache),
        ``"tfds"`` or ``"sample"`` (the bundled 2,000-image sample)."""
        from memjax.data import loaded_sources

        return {"data_sources": loaded_sources()}

    def save_figure(self, fig, stem: str) -> Path:
        """Save a matplotlib figure as ``OUT/NAME_stem.png`` and close it."""
        import matplotlib.pyplot as plt

        path = self.out / f"{self.name}_{stem}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path.name)
        return path

    def progress(self, iterable=None, **kwargs):
        """A tqdm progress bar (to stderr), labelled with the benchmark's name."""
        from tqdm.auto import tqdm

        kwargs.setdefault("desc", self.name)
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, **kwargs)

    def log(self, msg: str) -> None:
        print(f"[{self.name}] {msg}", file=sys.stderr, flush=True)


def apply_overrides(name: str, default: Any, overrides: dict[str, str]) -> Any:
    """``default`` (a settings dataclass) with the ``--set`` ``overrides`` of benchmark
    ``name`` applied (see :meth:`Context.settings`); `SystemExit` names an unknown key
    or a bad value."""
    if not overrides:
        return default
    fields = {f.name: f for f in dataclasses.fields(default)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise SystemExit(
            f"{name}: unknown --set key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; settable: {', '.join(sorted(fields))}"
        )
    new = {}
    for key, text in overrides.items():
        try:
            new[key] = _parse_setting(text, getattr(default, key), str(fields[key].type))
        except ValueError as e:
            raise SystemExit(f"{name}: --set {key}={text}: {e}") from None
    try:
        return dataclasses.replace(default, **new)
    except ValueError as e:  # a settings class's own check (__post_init__)
        sets = " ".join(f"{k}={v}" for k, v in overrides.items())
        raise SystemExit(f"{name}: --set {sets}: {e}") from None


def _parse_setting(text: str, default: Any, annotation: str) -> Any:
    t = text.strip()
    if t.lower() == "none" and (default is None or "None" in annotation):
        return None
    if isinstance(default, bool):
        if t.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return t.lower() == "true"
    if isinstance(default, tuple):
        if any(isinstance(d, tuple) for d in default):
            raise ValueError("nested tuples cannot be set from the command line")
        kind = float if any(isinstance(d, float) for d in default) or "float" in annotation else int
        parts = [p for p in t.split(",") if p.strip()]
        if not parts:
            raise ValueError("expected a comma-separated list of numbers")
        return tuple(_number(p, kind) for p in parts)
    if isinstance(default, float) or (default is None and "float" in annotation):
        return _number(t, float)
    if isinstance(default, int) or (default is None and "int" in annotation):
        return _number(t, int)
    if isinstance(default, str):
        return t
    raise ValueError(f"cannot set a field of type {annotation}")


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        raise ValueError(f"expected {'an integer' if kind is int else 'a number'}") from None


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except Exception:
        return None


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import jax
    import jaxlib

    import memjax
    import memjax.data

    devs = jax.devices()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devs],
        "memjax": memjax.__version__,
        "git_commit": _git_commit(),
        "x64": bool(jax.config.jax_enable_x64),
        "data_sources": memjax.data.loaded_sources(),
    }
