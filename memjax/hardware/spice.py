"""ngspice reference for the IR-drop network (:mod:`memjax.hardware.ir_drop`).

:func:`netlist` writes the crossbar of the IR-drop model as a SPICE deck (one resistor
per cell and per wire segment, a DC source per row, a 0 V ammeter per column at the
virtual ground); :func:`ngspice_currents` runs ``ngspice -b`` on it (``.op``) and returns
the column currents. Used by the tests and the `nir-deploy` benchmark to validate the
solver.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["netlist", "ngspice_currents", "have_ngspice"]


def have_ngspice() -> bool:
    return shutil.which("ngspice") is not None


def netlist(G: np.ndarray, v: np.ndarray, r_wire: float) -> str:
    """SPICE deck of an ``m x n`` array ``G`` (S) driven by row voltages ``v[m]`` (V)."""
    G = np.asarray(G, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    m, n = G.shape
    lines = ["* memjax IR-drop crossbar", ".options noacct"]
    for i in range(m):
        lines.append(f"V{i} in{i} 0 DC {v[i]:.12e}")
        lines.append(f"RD{i} in{i} a{i}_0 {r_wire:.12e}")
        for j in range(n - 1):
            lines.append(f"RA{i}_{j} a{i}_{j} a{i}_{j + 1} {r_wire:.12e}")
    for j in range(n):
        for i in range(m - 1):
            lines.append(f"RB{i}_{j} b{i}_{j} b{i + 1}_{j} {r_wire:.12e}")
        lines.append(f"RS{j} b{m - 1}_{j} s{j} {r_wire:.12e}")
        lines.append(f"VS{j} s{j} 0 DC 0")
    for i in range(m):
        for j in range(n):
            lines.append(f"RC{i}_{j} a{i}_{j} b{i}_{j} {1.0 / G[i, j]:.12e}")
    lines += [".control", "op"]
    lines += [f"print i(vs{j})" for j in range(n)]
    lines += [".endc", ".end"]
    return "\n".join(lines) + "\n"


def ngspice_currents(
    G: np.ndarray, v: np.ndarray, r_wire: float, timeout: float = 300
) -> np.ndarray:
    """Column currents (A) of the array from an ngspice operating point."""
    if not have_ngspice():
        raise FileNotFoundError("ngspice_currents: ngspice is not on PATH")
    n = np.shape(G)[1]
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / "xbar.cir"
        deck.write_text(netlist(G, v, r_wire))
        out = subprocess.run(
            ["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=timeout
        )
    found = dict(
        (int(k), float(x)) for k, x in re.findall(r"i\(vs(\d+)\)\s*=\s*([-+0-9.eE]+)", out.stdout)
    )
    if len(found) != n:
        raise RuntimeError(
            f"ngspice_currents: expected {n} currents, parsed {len(found)}; "
            f"stderr: {out.stderr[-500:]}"
        )
    return np.array([found[j] for j in range(n)])
