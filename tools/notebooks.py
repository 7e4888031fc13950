"""Execute the tutorials once: jupytext percent-format sources -> executed notebooks.

Each tutorial is a jupytext percent-format script, ``docs/tutorials/NN_name.py``. ``execute``
runs it in a fresh Jupyter kernel (nbclient) and writes ``docs/tutorials/NN_name.ipynb``
with its outputs and figures; mkdocs-jupyter renders that notebook without executing it
again. The notebook records a hash of its source and of the ``memjax`` package it ran
against, so an up-to-date notebook is reused, not re-run:

- the test suite (``tests/test_docs.py``) executes every tutorial unconditionally, which
  also refreshes the notebooks;
- the docs build (this file is an mkdocs hook, ``hooks:`` in ``mkdocs.yml``) executes only
  the tutorials whose notebook is missing or stale, so in CI, where the tests run first,
  the docs build executes nothing.

Command line: ``python tools/notebooks.py [--force] [NAME ...]``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
_KEY = "memjax_docs"
_TIMEOUT_S = 600
log = logging.getLogger("mkdocs.hooks.notebooks")


def sources() -> list[Path]:
    """The tutorial sources, in order."""
    return sorted(p for p in TUTORIALS.glob("[0-9]*.py"))


def source_hash(source: Path) -> str:
    """Hash of the tutorial source and of every file of the ``memjax`` package."""
    h = hashlib.sha256(source.read_bytes())
    for f in sorted((ROOT / "memjax").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def notebook_path(source: Path) -> Path:
    return source.with_suffix(".ipynb")


def is_current(source: Path) -> bool:
    """Whether the executed notebook exists and was run from this source and package."""
    import nbformat

    out = notebook_path(source)
    if not out.exists():
        return False
    try:
        nb = nbformat.read(out, as_version=4)
    except Exception:  # a truncated or foreign file: execute again
        return False
    return nb.metadata.get(_KEY, {}).get("hash") == source_hash(source)


def execute(source: Path, timeout: int = _TIMEOUT_S) -> float:
    """Execute one tutorial into its ``.ipynb``; returns the wall time (s).

    Raises ``nbclient.exceptions.CellExecutionError`` (naming the cell) when a cell fails;
    then no notebook is written.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    digest = source_hash(source)
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    ).execute()
    elapsed = time.perf_counter() - start
    nb.metadata[_KEY] = {"hash": digest, "source": source.name}
    tmp = notebook_path(source).with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(notebook_path(source))
    return elapsed


def on_pre_build(config, **kwargs) -> None:
    """mkdocs hook: execute the tutorials whose notebook is missing or stale."""
    for source in sources():
        if is_current(source):
            continue
        log.info("executing %s", source.relative_to(ROOT))
        elapsed = execute(source)
        log.info("executed %s in %.1f s", source.name, elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="tutorial file names or stems (default: all)")
    parser.add_argument("--force", action="store_true", help="execute even if up to date")
    args = parser.parse_args(argv)
    chosen = [
        s for s in sources() if not args.names or s.name in args.names or s.stem in args.names
    ]
    if args.names and not chosen:
        parser.error(f"no tutorial matches {args.names}; have {[s.name for s in sources()]}")
    for source in chosen:
        if not args.force and is_current(source):
            print(f"{source.name}: up to date")
            continue
        print(f"{source.name}: executed in {execute(source):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
