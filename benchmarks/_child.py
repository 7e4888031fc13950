"""Measurements in a fresh Python process: ``python -m benchmarks.MODULE KIND JSON``.

A benchmark module with such measurements ends with
``if __name__ == "__main__": child_main(CHILDREN)``, ``CHILDREN`` mapping ``KIND`` to a
function of the JSON arguments; the child prints its result as one ``RESULT`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ._json import dumps, to_json

__all__ = ["REPO", "run_child", "start_child", "read_result", "child_main"]

REPO = Path(__file__).resolve().parents[1]
_PREFIX = "RESULT"


def _command(module: str, kind: str, args: dict) -> list[str]:
    return [sys.executable, "-m", module, kind, json.dumps(args)]


def start_child(module: str, kind: str, args: dict, env: dict | None = None) -> subprocess.Popen:
    """Start ``python -m module kind JSON`` on the CPU backend (pipes for its output)."""
    e = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    return subprocess.Popen(
        _command(module, kind, args),
        cwd=REPO,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_result(stdout: str) -> dict | None:
    """The child's result (its ``RESULT`` line), None where it printed none."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(_PREFIX)), None)
    return None if line is None else json.loads(line[len(_PREFIX) :])


def run_child(
    module: str, kind: str, args: dict, env: dict | None = None, timeout: float = 1200
) -> dict:
    """Run one child to its end; its result, or `RuntimeError` with its stderr's tail."""
    proc = start_child(module, kind, args, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    res = read_result(out)
    if proc.returncode != 0 or res is None:
        raise RuntimeError(
            f"child {module} {kind} {args} failed (rc {proc.returncode}):\n{err[-3000:]}"
        )
    return res


def child_main(children: dict[str, Callable[[dict], dict]]) -> None:
    """Entry point of a child process: ``argv = [_, KIND, JSON]``."""
    kind, arg = sys.argv[1], json.loads(sys.argv[2])
    print(_PREFIX + dumps(to_json(children[kind](arg))), flush=True)
