"""`from_nir` and `to_nir`: between NIR graphs (the `nir` package) and `NIRNetwork`.

Supported NIR nodes: ``Input``, ``Output``, ``Affine``, ``Linear``, ``Scale``,
``Flatten``, ``Conv2d``, ``Threshold``, ``LIF``, ``CubaLIF``, ``LI``, ``IF``, ``I``.
Neuron parameters are broadcast to the node's input type (the neuron shape). Hardware
layers of a deployed network (:mod:`memjax.hardware`) are written as ``Affine`` /
``Conv2d`` with their effective (programmed, drifted) weights in the units of the
original layer.
"""

from __future__ import annotations

import os
from typing import Any

import nir
import numpy as np

from .network import NIRNetwork
from .nodes import (
    IF,
    LI,
    LIF,
    AbstractNode,
    Affine,
    Conv2d,
    CubaLIF,
    Flatten,
    Integrator,
    Linear,
    Scale,
    Threshold,
    _arr,
)

__all__ = ["from_nir", "to_nir", "SUPPORTED"]

SUPPORTED = (
    "Input",
    "Output",
    "Affine",
    "Linear",
    "Scale",
    "Flatten",
    "Conv2d",
    "Threshold",
    "LIF",
    "CubaLIF",
    "LI",
    "IF",
    "I",
)


def _shape(node: Any) -> tuple[int, ...] | None:
    t = getattr(node, "input_type", None) or {}
    if "input" in t and t["input"] is not None:
        s = tuple(int(d) for d in np.asarray(t["input"]).ravel())
        return s if s else None
    return None


def _b(x, shape):
    x = np.asarray(x, dtype=np.float32)
    return _arr(np.broadcast_to(x, shape) if shape is not None else x)


def _pair(v) -> tuple[int, int]:
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(v[0]), int(v[-1]))


def _conv_padding(name: str, node) -> tuple[int, int]:
    """NIR ``Conv2d`` padding as symmetric integer pads: ``'valid'`` is 0; ``'same'``
    (output size = input size, NIR's and PyTorch's meaning) is ``dilation (k - 1) / 2``
    per axis, which needs stride 1 and an odd dilated kernel extent."""
    pad = node.padding
    if not isinstance(pad, str):
        return _pair(pad)
    if pad == "valid":
        return (0, 0)
    k = np.shape(node.weight)[-2:]
    d, st = _pair(node.dilation), _pair(node.stride)
    ext = [di * (ki - 1) for di, ki in zip(d, k)]
    if pad != "same" or st != (1, 1) or any(e % 2 for e in ext):
        raise ValueError(
            f"from_nir: node {name!r} (Conv2d) has padding {pad!r} with stride {st}, "
            f"dilation {d} and kernel {tuple(k)}; supported: integer padding, 'valid', and "
            "'same' with stride 1 and an odd dilated kernel size (symmetric padding)"
        )
    return (ext[0] // 2, ext[1] // 2)


def _neuron(node, kind: str) -> AbstractNode:
    shape = _shape(node)
    if shape is None:
        shape = np.broadcast_shapes(
            *(np.shape(v) for v in vars(node).values() if isinstance(v, np.ndarray))
        )
    p = lambda name: _b(getattr(node, name), shape)  # noqa: E731
    if kind == "LIF":
        return LIF(p("tau"), p("r"), p("v_leak"), p("v_threshold"), p("v_reset"))
    if kind == "CubaLIF":
        return CubaLIF(
            p("tau_syn"),
            p("tau_mem"),
            p("r"),
            p("v_leak"),
            p("v_threshold"),
            p("v_reset"),
            p("w_in"),
        )
    if kind == "LI":
        return LI(p("tau"), p("r"), p("v_leak"))
    if kind == "IF":
        return IF(p("r"), p("v_threshold"), p("v_reset"))
    return Integrator(p("r"))


def _convert(name: str, node) -> AbstractNode | None:
    kind = type(node).__name__
    if kind in ("Input", "Output"):
        return None
    if kind == "Affine":
        return Affine(_arr(node.weight), _arr(node.bias))
    if kind == "Linear":
        return Linear(_arr(node.weight))
    if kind == "Scale":
        return Scale(_arr(node.scale))
    if kind == "Flatten":
        return Flatten(int(node.start_dim), int(node.end_dim))
    if kind == "Threshold":
        return Threshold(_arr(node.threshold))
    if kind == "Conv2d":
        return Conv2d(
            _arr(node.weight),
            _arr(node.bias),
            stride=_pair(node.stride),
            padding=_conv_padding(name, node),
            dilation=_pair(node.dilation),
            groups=int(node.groups),
        )
    if kind in ("LIF", "CubaLIF", "LI", "IF", "I"):
        return _neuron(node, kind)
    raise ValueError(
        f"from_nir: node {name!r} is a NIR {kind}, which memjax does not support; "
        f"supported: {', '.join(SUPPORTED)}"
    )


def from_nir(graph: "nir.NIRGraph | str | os.PathLike", dt: float | None = None) -> NIRNetwork:
    """A :class:`NIRNetwork` from a NIR graph (or the path of a ``.nir`` file).

    ``dt`` (s) is the integration step of every neuron (NIR nodes are continuous-time;
    see :mod:`memjax.nir.nodes`); default: the graph's ``metadata["dt"]`` (written by
    :func:`to_nir`), else ``1e-4``. snnTorch exports ``beta`` as ``tau = dt / (1 -
    beta)`` with ``dt = 1e-4`` (and ``r = tau / dt``), so an snnTorch network runs step
    for step as in snnTorch. The graph must have exactly one ``Input`` and one
    ``Output`` node and no cycle; nested subgraphs are not supported.
    """
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"from_nir: graph must be a nir.NIRGraph or a path; got {type(graph)}")
    if dt is None:
        dt = float(np.asarray((graph.metadata or {}).get("dt", 1e-4)))
    nodes, shapes = {}, []
    ins = [k for k, v in graph.nodes.items() if type(v).__name__ == "Input"]
    outs = [k for k, v in graph.nodes.items() if type(v).__name__ == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(
            f"from_nir: the graph must have one Input and one Output node; got inputs "
            f"{ins} and outputs {outs}"
        )
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise ValueError(
                f"from_nir: node {name!r} is a nested NIRGraph (e.g. a recurrent layer), "
                f"which memjax does not support; supported: {', '.join(SUPPORTED)}"
            )
        m: Any = _convert(name, node)
        nodes[name] = m
        if m is not None and m.stateful:
            shapes.append((name, tuple(int(d) for d in np.shape(m.r))))
    edges = tuple((str(a), str(b)) for a, b in graph.edges)
    return NIRNetwork(
        nodes=nodes,
        edges=edges,
        dt=float(dt),
        shapes=tuple(shapes),
        input_name=ins[0],
        output_name=outs[0],
        input_shape=_shape_of(graph.nodes[ins[0]]),
    )


def _shape_of(node) -> tuple[int, ...] | None:
    t = getattr(node, "input_type", None) or {}
    s = t.get("input", None)
    if s is None:
        return None
    s = tuple(int(d) for d in np.asarray(s).ravel())
    return s or None


def _np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _export(name: str, node, dt: float):
    from ..hardware.layers import HardwareAffine  # noqa: PLC0415 (import cycle)

    if isinstance(node, HardwareAffine):
        w, b = node.effective_affine()
        return nir.Affine(weight=_np(w), bias=_np(b))
    if isinstance(node, Affine):
        return nir.Affine(weight=_np(node.weight), bias=_np(node.bias))
    if isinstance(node, Linear):
        return nir.Linear(weight=_np(node.weight))
    if isinstance(node, Scale):
        return nir.Scale(scale=_np(node.scale))
    if isinstance(node, Flatten):
        return nir.Flatten(input_type=None, start_dim=node.start_dim, end_dim=node.end_dim)
    if isinstance(node, Threshold):
        return nir.Threshold(threshold=_np(node.threshold))
    if isinstance(node, Conv2d):
        return nir.Conv2d(
            input_shape=None,
            weight=_np(node.weight),
            bias=_np(node.bias),
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
            groups=node.groups,
        )
    if isinstance(node, LIF):
        f = {k: _np(getattr(node, k)) for k in ("tau", "r", "v_leak", "v_threshold", "v_reset")}
        return nir.LIF(**f)
    if isinstance(node, CubaLIF):
        keys = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
        return nir.CubaLIF(**{k: _np(getattr(node, k)) for k in keys})
    if isinstance(node, LI):
        return nir.LI(tau=_np(node.tau), r=_np(node.r), v_leak=_np(node.v_leak))
    if isinstance(node, IF):
        return nir.IF(r=_np(node.r), v_threshold=_np(node.v_threshold), v_reset=_np(node.v_reset))
    if isinstance(node, Integrator):
        return nir.I(r=_np(node.r))
    raise ValueError(
        f"to_nir: node {name!r} is a {type(node).__name__}, which has no NIR equivalent "
        "(memristive MIF neurons and other device models are not NIR primitives)"
    )


def to_nir(model: NIRNetwork, input_shape: tuple[int, ...] | None = None) -> "nir.NIRGraph":
    """The NIR graph of a :class:`NIRNetwork` (imported, native or deployed).

    ``input_shape`` (without the batch axis) is written as the ``Input`` type; by
    default the network's ``input_shape``, else the input width of the dense layer
    after the input. The
    network's ``dt`` is stored in the graph's metadata (``metadata["dt"]``); NIR itself
    has no time step, and a reader that assumes snnTorch's ``1e-4`` sees the same
    dynamics only when ``dt = 1e-4``.
    """
    if not isinstance(model, NIRNetwork):
        raise TypeError(f"to_nir: model must be a NIRNetwork; got {type(model).__name__}")
    nodes: dict[str, Any] = {}
    input_shape = input_shape or model.input_shape
    if input_shape is None:
        for a, b in model.edges:
            n: Any = model.nodes[b]
            if a == model.input_name and hasattr(n, "weight") and np.ndim(n.weight) == 2:
                input_shape = (int(np.shape(n.weight)[1]),)
            elif a == model.input_name and hasattr(n, "u") and not hasattr(n, "kernel"):
                input_shape = (int(np.shape(n.u)[1]),)
    for name, node in model.nodes.items():
        if name == model.input_name:
            nodes[name] = nir.Input(input_type=np.array(input_shape or ()))
        elif name == model.output_name and node is None:
            nodes[name] = nir.Output(output_type=None)
        else:
            nodes[name] = _export(name, node, model.dt)
    graph = nir.NIRGraph(nodes=nodes, edges=list(model.edges), metadata={"dt": model.dt})
    try:
        graph.infer_types()
    except Exception:  # noqa: BLE001 (NIR cannot infer every type, e.g. Flatten chains)
        pass
    return graph
