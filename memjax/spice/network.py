"""A trained `MEMprop` network as an ngspice circuit, and its simulation image by image.

The circuit (one image; the topology of :mod:`memjax.models.memprop`)::

    row i:      V = x_i v_read  and its negation        (DAC outputs, voltage sources)
    crossbar 1: G_pos[i, j] from row +v_i, G_neg[i, j] from row -v_i to column j
    column j:   held at 0 V by an ammeter (the current mirror's input)
    mirror:     H source: node h1_j = g1 I_col_j / iscale  -> MIF neuron j (hidden)
    amplifier:  E sources: rows a_v v1_k and -a_v v1_k of crossbar 2
    crossbar 2, mirror g2, MIF output neurons as above

Conductances are resistors at the crossbar's programmed values
(`Crossbar.conductances`); a pixel of intensity 0 drives its row at 0 V, where its
resistors carry no current into the virtual-ground columns, so those rows are left out.
Each MIF neuron is the ``mif`` subcircuit (two MMSS memristors with their batteries)
starting at its rest point; the input is switched on at ``t = 0`` and held, as the
network's direct coding holds crossbar 1's currents over the window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from jaxtyping import ArrayLike, Float

from ..crossbar import Crossbar
from ..models.memprop import DenseSynapse, MEMprop
from ..neurons.mif import MIF
from ._subckt import MIF_SUBCKT
from .netlist import DEFAULT_OPTIONS, _mif_line, _tran, mif_instance_params
from .run import Netlist, SpiceResult, run_ngspice

__all__ = ["crossbar_netlist", "memprop_netlist", "simulate_memprop", "synapse_conductances"]


def synapse_conductances(syn) -> tuple[np.ndarray, np.ndarray]:
    """``(G_pos, G_neg)`` (S) of a `Crossbar` (its programmed conductances) or a
    `DenseSynapse` (``W`` split into its positive and negative parts)."""
    if isinstance(syn, Crossbar):
        cfg = syn.config
        if cfg.dac_bits is not None or cfg.adc_bits is not None:
            raise ValueError(
                "synapse_conductances: converters with finite resolution (dac_bits, "
                "adc_bits) have no circuit model here; use a crossbar without them"
            )
        gp, gn = syn.conductances()
        return np.asarray(gp, np.float64), np.asarray(gn, np.float64)
    if isinstance(syn, DenseSynapse):
        w = np.asarray(syn.weight, np.float64)
        return np.maximum(w, 0.0), np.maximum(-w, 0.0)
    raise TypeError(
        f"synapse_conductances: expected a Crossbar or DenseSynapse; got {type(syn).__name__}"
    )


def _array(lines: list[str], tag: str, rows: Sequence[tuple[str, str]], cols, gp, gn):
    """Resistors of a crossbar: row pair ``rows[r] = (pos node, neg node)`` to the
    column nodes ``cols``; zero conductances are open circuits."""
    for r, (pos, neg) in enumerate(rows):
        for j, col in enumerate(cols):
            if gp[r, j] > 0:
                lines.append(f"R{tag}p{r}_{j} {pos} {col} {1.0 / float(gp[r, j])!r}")
            if gn[r, j] > 0:
                lines.append(f"R{tag}n{r}_{j} {neg} {col} {1.0 / float(gn[r, j])!r}")


def _rows(x: np.ndarray, v_read: float) -> tuple[np.ndarray, list[str]]:
    live = np.flatnonzero(x > 0)
    lines = []
    for i in live:
        v = float(x[i] * v_read)
        lines += [f"Vr{i} r{i} 0 DC {v!r}", f"Vq{i} q{i} 0 DC {-v!r}"]
    return live, lines


def _check_image(model, image) -> np.ndarray:
    if not isinstance(model, MEMprop):
        raise TypeError(f"memjax.spice: model must be a MEMprop; got {type(model).__name__}")
    if model.encoding != "direct":
        raise ValueError("memjax.spice: only MEMprop with encoding='direct' has a circuit here")
    x = np.asarray(image, np.float64).reshape(-1)
    n_in = model.syn1.n_in
    if x.shape != (n_in,) or np.any(~np.isfinite(x)) or np.any((x < 0) | (x > 1)):
        raise ValueError(
            f"memjax.spice: image must have shape ({n_in},) with values in [0, 1]; "
            f"got shape {np.shape(image)}"
        )
    return x


def crossbar_netlist(model: MEMprop, image: Float[ArrayLike, " n_in"]) -> Netlist:
    """Crossbar 1 of ``model`` alone, rows driven by ``image``, columns at virtual ground:
    an operating-point (``.op``) deck whose probes ``i(vc<j>)`` are the column currents
    (A), as `MEMprop` reads them once per image (direct coding)."""
    x = _check_image(model, image)
    gp, gn = synapse_conductances(model.syn1)
    n_h = model.syn1.n_out
    live, lines = _rows(x, model.v_read)
    lines.insert(0, f"* memjax: MEMprop crossbar 1 ({len(live)} live rows x {n_h})")
    cols = [f"c{j}" for j in range(n_h)]
    _array(lines, "a", [(f"r{i}", f"q{i}") for i in live], cols, gp[live], gn[live])
    lines += [f"Vc{j} c{j} 0 DC 0" for j in range(n_h)] + [".op"]
    return Netlist("\n".join(lines), tuple(f"i(vc{j})" for j in range(n_h)))


def memprop_netlist(
    model: MEMprop,
    image: Float[ArrayLike, " n_in"],
    *,
    i_col: Float[ArrayLike, " n_hidden"] | None = None,
    t_stop: float | None = None,
    t_step: float | None = None,
    max_step: float | None = None,
    iscale: float = 1e-6,
    options: str = DEFAULT_OPTIONS,
) -> Netlist:
    """The circuit of ``model`` (direct coding) for one ``image`` (intensities in [0, 1],
    shape ``[n_in]``) over ``t_stop`` (default the model's window ``n_steps dt``).

    ``i_col``: crossbar 1's column currents (A) from :func:`crossbar_netlist`, held by
    the mirrors' inputs (a sample-and-hold); the transient then leaves the static array
    out of its matrix. None: the whole array is in the transient deck.
    Probes: ``v(m1_<k>)`` for every hidden neuron, then ``v(m2_<j>)`` for every output.
    """
    x = _check_image(model, image)
    n_in, n_h, n_out = model.syn1.n_in, model.syn1.n_out, model.syn2.n_out
    t_stop = model.n_steps * model.dt if t_stop is None else t_stop
    lines = [f"* memjax: MEMprop {n_in}-{n_h}-{n_out}, one image", MIF_SUBCKT]
    if i_col is None:
        gp1, gn1 = synapse_conductances(model.syn1)
        live, rows = _rows(x, model.v_read)
        lines += rows
        cols = [f"c{j}" for j in range(n_h)]
        _array(lines, "a", [(f"r{i}", f"q{i}") for i in live], cols, gp1[live], gn1[live])
    else:
        i_col = np.asarray(i_col, np.float64).reshape(-1)
        if i_col.shape != (n_h,):
            raise ValueError(f"memprop_netlist: i_col must have shape ({n_h},); got {i_col.shape}")
    n1, n2 = model.neuron1, model.neuron2
    if not (isinstance(n1, MIF) and isinstance(n2, MIF)):
        raise TypeError(
            "memprop_netlist: both neuron layers must be MIF neurons (the circuit has a MIF "
            f"subcircuit only); got {type(n1).__name__}, {type(n2).__name__}"
        )
    p1, p2 = mif_instance_params(n1), mif_instance_params(n2)
    g1 = float(model.g1 / iscale)
    for j in range(n_h):
        if i_col is None:
            lines += [f"Vc{j} c{j} 0 DC 0", f"H1_{j} h1_{j} 0 Vc{j} {g1!r}"]
        else:
            lines.append(f"Vh{j} h1_{j} 0 DC {g1 * float(i_col[j])!r}")
        lines.append(_mif_line(f"X1_{j}", f"h1_{j}", f"m1_{j}", p1[j % len(p1)], iscale))
        a_v = float(model.a_v)
        lines += [f"E{j} s{j} 0 m1_{j} 0 {a_v!r}", f"En{j} sn{j} 0 m1_{j} 0 {-a_v!r}"]
    gp2, gn2 = synapse_conductances(model.syn2)
    rows2 = [(f"s{k}", f"sn{k}") for k in range(n_h)]
    _array(lines, "b", rows2, [f"d{j}" for j in range(n_out)], gp2, gn2)
    for j in range(n_out):
        lines += [f"Vd{j} d{j} 0 DC 0", f"H2_{j} h2_{j} 0 Vd{j} {float(model.g2 / iscale)!r}"]
        lines.append(_mif_line(f"X2_{j}", f"h2_{j}", f"m2_{j}", p2[j % len(p2)], iscale))
    step = model.dt if t_step is None else t_step
    lines += [options, _tran(step, t_stop, max_step)]
    probes = tuple(f"v(m1_{k})" for k in range(n_h)) + tuple(f"v(m2_{j})" for j in range(n_out))
    return Netlist("\n".join(lines), probes)


def _one(args) -> tuple[np.ndarray, np.ndarray, float]:
    model, x, hold, kwargs = args
    times = model.dt * np.arange(1, model.n_steps + 1)
    n_h = model.syn1.n_out
    t0 = time.perf_counter()
    i_col = None
    if hold:
        op = crossbar_netlist(model, x)
        res_op = run_ngspice(op)
        i_col = np.array([res_op[p][0] for p in op.probes])
    netlist = memprop_netlist(model, x, i_col=i_col, **kwargs)
    res: SpiceResult = run_ngspice(netlist)
    v = np.stack([res.sample(p, times) for p in netlist.probes], axis=-1)
    return v[:, :n_h], v[:, n_h:], time.perf_counter() - t0


def simulate_memprop(
    model: MEMprop,
    images: Float[ArrayLike, "batch n_in"],
    *,
    workers: int | None = None,
    hold_input: bool = True,
    **netlist_kwargs,
) -> dict[str, np.ndarray]:
    """Simulate ``model`` in ngspice on each image (one ngspice process per image, ``workers`` at
    a time; default ``os.cpu_count()``) and read the membranes at the model's sample
    times ``dt, 2 dt, ..., n_steps dt`` (the times of ``model(x, traces=True)``).

    ``hold_input``: crossbar 1 in its own operating-point run (:func:`crossbar_netlist`)
    and its column currents held in the transient (the network's direct coding); False:
    the whole array in the transient deck (the same currents, a larger matrix at every
    time point). Other keywords go to :func:`memprop_netlist`.

    Returns ``v_hidden [batch, T, n_hidden]``, ``v_out [batch, T, n_out]`` (V),
    ``logits [batch, n_out]`` (the model's readout applied to ``v_out``) and
    ``seconds [batch]`` (wall time of each image's ngspice runs and netlist writing).
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 2:
        raise ValueError(f"simulate_memprop: images must be [batch, n_in]; got {images.shape}")
    for x in images:
        _check_image(model, x)
    jobs = [(model, x, hold_input, netlist_kwargs) for x in images]
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(_one, jobs))
    else:
        out = [_one(j) for j in jobs]
    v1 = np.stack([o[0] for o in out])
    v2 = np.stack([o[1] for o in out])
    if model.readout == "mean":
        red = v2.mean(axis=1)
    elif model.readout == "max":
        red = v2.max(axis=1)
    else:
        red = v2[:, -1]
    k_out = float(np.exp(np.asarray(model.log_k_out, np.float64)))
    return {
        "v_hidden": v1,
        "v_out": v2,
        "logits": k_out * red,
        "seconds": np.array([o[2] for o in out]),
    }
