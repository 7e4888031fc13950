"""Run ngspice in batch mode on a `Netlist` and read its waveforms back."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["Netlist", "SpiceResult", "NgspiceNotFoundError", "ngspice_available", "run_ngspice"]


class NgspiceNotFoundError(RuntimeError):
    """ngspice is not on ``PATH`` (Debian/Ubuntu: ``apt-get install ngspice``)."""


@dataclasses.dataclass(frozen=True)
class Netlist:
    """A transient deck without its ``.control`` block.

    ``circuit``: title line, subcircuits, elements, ``.options`` and ``.tran``;
    ``probes``: the ngspice vectors to write back (e.g. ``"v(x0.m)"``, ``"i(vin)"``), in
    the order :func:`run_ngspice` returns them.
    """

    circuit: str
    probes: tuple[str, ...]

    def deck(self, out: str | Path) -> str:
        """The full deck: the circuit, then a batch ``.control`` block that runs the
        transient, prints ngspice's statistics and writes ``probes`` to ``out``."""
        lines = [
            self.circuit.rstrip(),
            ".control",
            "set wr_singlescale",
            "set wr_vecnames",
            "set numdgt=15",
            "run",
            "rusage all",
            f"wrdata {out} {' '.join(self.probes)}",
            "quit",
            ".endc",
            ".end",
        ]
        return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class SpiceResult:
    """Waveforms and statistics of one ngspice run.

    ``t``: ngspice's own time points (s); ``data``: probe name -> samples at ``t``;
    ``wall_s``: wall time of the ``ngspice -b`` process (parsing included);
    ``analysis_s``: ngspice's "Total analysis time"; ``timepoints``, ``iterations``:
    accepted transient time points and Newton iterations; ``log``: its output.
    """

    t: np.ndarray
    data: dict[str, np.ndarray]
    wall_s: float
    analysis_s: float | None
    timepoints: float | None
    iterations: float | None
    log: str

    def __getitem__(self, probe: str) -> np.ndarray:
        return self.data[probe.lower()]

    def sample(self, probe: str, t) -> np.ndarray:
        """``probe`` linearly interpolated at times ``t`` (s) inside ngspice's span."""
        t = np.asarray(t, np.float64)
        if t.size and (t.min() < self.t[0] - 1e-15 or t.max() > self.t[-1] * (1 + 1e-9)):
            raise ValueError(
                f"SpiceResult.sample: t must lie inside the simulated span "
                f"[{self.t[0]:g}, {self.t[-1]:g}] s; got {t.min():g} .. {t.max():g}"
            )
        return np.interp(t, self.t, self[probe])


def ngspice_available() -> bool:
    """Whether an ``ngspice`` executable is on ``PATH``."""
    return shutil.which("ngspice") is not None


def _stat(log: str, label: str) -> float | None:
    m = re.search(rf"{label}\s*=\s*([0-9.eE+-]+)", log)
    return float(m.group(1)) if m else None


def run_ngspice(
    netlist: Netlist,
    *,
    workdir: str | Path | None = None,
    stem: str = "deck",
    timeout: float | None = None,
) -> SpiceResult:
    """Write ``netlist`` to ``workdir/stem.cir``, run ``ngspice -b`` on it and read the
    probes back (``wrdata``). ``workdir`` None: a temporary folder, removed afterwards.

    Raises `NgspiceNotFoundError` when ngspice is not on ``PATH`` and ``RuntimeError``
    (with the end of ngspice's output) when it fails or writes no data.
    """
    exe = shutil.which("ngspice")
    if exe is None:
        raise NgspiceNotFoundError(
            "run_ngspice: ngspice was not found on PATH; install it (Debian/Ubuntu: "
            "`apt-get install ngspice`, macOS: `brew install ngspice`)"
        )
    if not netlist.probes:
        raise ValueError("run_ngspice: netlist.probes must name at least one vector")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="memjax-ngspice-") as tmp:
            return run_ngspice(netlist, workdir=tmp, stem=stem, timeout=timeout)
    workdir = Path(workdir)
    cir, out = workdir / f"{stem}.cir", workdir / f"{stem}.txt"
    out.unlink(missing_ok=True)
    cir.write_text(netlist.deck(out.name))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [exe, "-b", cir.name], capture_output=True, text=True, cwd=workdir, timeout=timeout
    )
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"ngspice failed (rc {proc.returncode}) on {cir}:\n{log[-3000:]}")
    raw = np.loadtxt(out, skiprows=1, ndmin=2)
    if raw.shape[1] != len(netlist.probes) + 1:
        raise RuntimeError(
            f"ngspice wrote {raw.shape[1]} columns to {out}; expected time and "
            f"{len(netlist.probes)} probes:\n{log[-2000:]}"
        )
    data = {p.lower(): raw[:, k + 1] for k, p in enumerate(netlist.probes)}
    return SpiceResult(
        t=raw[:, 0],
        data=data,
        wall_s=wall,
        analysis_s=_stat(log, r"Total analysis time \(seconds\)"),
        timepoints=_stat(log, "Transient timepoints"),
        iterations=_stat(log, "Transient iterations"),
        log=log,
    )
