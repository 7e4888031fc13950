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

    def __post_init__(self):
        # Each benchmark records only the data it loaded itself (see data_config).
        from memjax.data import clear_sources

        clear_sources()

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
