"""`NIRNetwork`: a graph of memjax nodes run over time in one `lax.scan`.

The graph is a directed acyclic graph of named nodes (:mod:`memjax.nir.nodes`) between
one ``input`` and one ``output``; a node with several incoming edges receives the sum of
their outputs (NIR's convention). Every time step evaluates all nodes in topological
order. With a static input (``n_steps`` given, the same input at every step, e.g. an
image as a direct current), the stateless nodes that depend only on the input are
evaluated once before the time loop (a sample-and-hold of their output).
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validation import check_positive
from .nodes import AbstractNode

__all__ = ["NIRNetwork", "topological_order"]


def topological_order(names, edges, source: str) -> tuple[str, ...]:
    """Nodes in an order where every edge goes forward (Kahn's algorithm); ``ValueError``
    naming the nodes of a cycle (recurrent NIR graphs are not supported)."""
    names = list(names)
    preds = {n: [a for a, b in edges if b == n] for n in names}
    done: list[str] = []
    left = [n for n in names]
    while left:
        ready = [n for n in left if all(p in done for p in preds[n])]
        if not ready:
            raise ValueError(
                "memjax.nir: the graph has a cycle through nodes "
                f"{sorted(left)}; recurrent NIR graphs are not supported (feed-forward only)"
            )
        for n in sorted(ready, key=lambda n: (n != source, names.index(n))):
            done.append(n)
            left.remove(n)
    return tuple(done)


class NIRNetwork(eqx.Module):
    """A feed-forward spiking network from NIR nodes.

    **Fields:** `nodes` (name -> :class:`~memjax.nir.nodes.AbstractNode`; the input and
    output are named by `input_name` and `output_name` and map to None), `edges` (static
    pairs ``(source, target)``), `dt` (static, s: the integration step of every neuron;
    snnTorch's export and import use ``1e-4``), `shapes` (static: the neuron shape of each
    stateful node, without the batch axis), `input_shape` (static, optional: the input
    type without the batch axis, written back by `to_nir`).

    Call it on an input sequence ``x[T, batch, ...]``, or on a static input
    ``x[batch, ...]`` with ``n_steps``; it returns the output node's values ``[T, batch,
    ...]``; with ``traces=True`` ``(out, traces)``: ``traces["outputs"][name]`` is each
    node's output per step ``[T, batch, ...]`` (nodes evaluated inside the time loop) and
    ``traces["states"][name]`` each neuron's state after the step (membrane after the
    reset; ``CubaLIF``: ``(i, v)``).
    """

    nodes: dict[str, AbstractNode | None]
    edges: tuple[tuple[str, str], ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)
    input_name: str = eqx.field(static=True, default="input")
    output_name: str = eqx.field(static=True, default="output")
    input_shape: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_positive("NIRNetwork", "dt", self.dt, "s")
        for a, b in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise ValueError(f"NIRNetwork: edge ({a!r}, {b!r}) names unknown node {n!r}")
        for n in (self.input_name, self.output_name):
            if n not in self.nodes:
                raise ValueError(f"NIRNetwork: no node named {n!r}")

    @property
    def order(self) -> tuple[str, ...]:
        return topological_order(self.nodes.keys(), self.edges, self.input_name)

    def predecessors(self, name: str) -> tuple[str, ...]:
        return tuple(a for a, b in self.edges if b == name)

    def init_state(self, batch: int, dtype) -> dict:
        shapes = dict(self.shapes)
        out = {}
        for name, node in self.nodes.items():
            if node is not None and node.stateful:
                st = node.init_state(batch, dtype)
                want = (batch,) + tuple(shapes.get(name, ()))
                grow = lambda a, want=want: jnp.broadcast_to(a, want).astype(dtype)  # noqa: E731
                out[name] = jax.tree.map(grow, st)
        return out

    def _static_nodes(self) -> set[str]:
        static = {self.input_name}
        for name in self.order:
            node = self.nodes[name]
            preds = self.predecessors(name)
            if name in static or not preds:
                continue
            if (node is None or not node.stateful) and all(p in static for p in preds):
                static.add(name)
        return static

    def _node_input(self, name, values):
        preds = self.predecessors(name)
        if not preds:
            raise ValueError(f"NIRNetwork: node {name!r} has no input edge")
        x = values[preds[0]]
        for p in preds[1:]:
            x = x + values[p]
        return x

    def _eval(self, names, values, state, key):
        values = dict(values)
        state = dict(state)
        for k, name in enumerate(names):
            node = self.nodes[name]
            x = self._node_input(name, values)
            if node is None:
                values[name] = x
                continue
            kk = None if key is None else jax.random.fold_in(key, k)
            st, y = node.step(state.get(name), x, self.dt, kk)
            if node.stateful:
                state[name] = st
            values[name] = y
        return values, state

    def __call__(
        self,
        x: Float[Array, "..."],
        n_steps: int | None = None,
        *,
        key: PRNGKeyArray | None = None,
        traces: bool = False,
    ):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.float32)
        order = self.order
        if n_steps is None:
            if x.ndim < 2:
                raise ValueError(
                    "NIRNetwork: x must be a sequence [T, batch, ...] (or give n_steps for a "
                    f"static input [batch, ...]); got shape {x.shape}"
                )
            batch, static = x.shape[1], {self.input_name}
        else:
            if int(n_steps) < 1:
                raise ValueError(f"NIRNetwork: n_steps must be >= 1; got {n_steps}")
            if x.ndim < 1:
                raise ValueError(f"NIRNetwork: x must be [batch, ...]; got shape {x.shape}")
            batch, static = x.shape[0], self._static_nodes()
        k_static = k_loop = k_prep = None
        if key is not None:
            k_static, k_loop, k_prep = jax.random.split(key, 3)
        self = self._prepared(k_prep)
        pre = [n for n in order if n in static and n != self.input_name]
        values0: dict = {}
        if n_steps is not None:
            values0, _ = self._eval(pre, {self.input_name: x}, {}, k_static)
        loop = [n for n in order if n not in static or n_steps is None]
        loop = [n for n in loop if n != self.input_name]
        state0 = self.init_state(batch, x.dtype)
        T = x.shape[0] if n_steps is None else int(n_steps)

        def body(state, inp):
            t, xt = inp
            vals = dict(values0)
            if xt is not None:
                vals[self.input_name] = xt
            kt = None if k_loop is None else jax.random.fold_in(k_loop, t)
            vals, state = self._eval(loop, vals, state, kt)
            if traces:
                out = ({n: vals[n] for n in loop}, state)
            else:
                out = vals[self.output_name]
            return state, out

        xs = (jnp.arange(T), None if n_steps is not None else x)
        _, out = jax.lax.scan(body, state0, xs, length=T)
        if traces:
            outs, states = out
            y = outs[self.output_name] if self.output_name in outs else values0[self.output_name]
            return y, {"outputs": outs, "states": states}
        return out

    def prepared(self, key: PRNGKeyArray | None = None) -> "NIRNetwork":
        """The network with every node's per-call work done (`AbstractNode.prepare`:
        hardware layers compute their read matrices, e.g. IR-drop solves), to evaluate
        many batches without repeating it."""
        return self._prepared(key)

    def _prepared(self, key) -> "NIRNetwork":
        nodes = {}
        for k, (name, node) in enumerate(self.nodes.items()):
            kk = None if key is None else jax.random.fold_in(key, k)
            nodes[name] = None if node is None else node.prepare(kk)
        return eqx.tree_at(lambda m: m.nodes, self, nodes)

    def replace_nodes(self, new: Mapping[str, AbstractNode | None]) -> "NIRNetwork":
        """A copy with the named nodes replaced."""
        nodes = dict(self.nodes)
        for k, v in new.items():
            if k not in nodes:
                raise ValueError(f"NIRNetwork.replace_nodes: no node named {k!r}")
            nodes[k] = v
        return eqx.tree_at(lambda m: m.nodes, self, nodes)
