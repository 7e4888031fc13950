"""NIR (Neuromorphic Intermediate Representation) import and export.

``from_nir(graph)`` builds a :class:`NIRNetwork` (memjax nodes run in one `lax.scan`)
from a graph of the `nir` package or a ``.nir`` file; ``to_nir(network)`` writes one
back. Semantics and time discretisation: :mod:`memjax.nir.nodes`; guide: docs/nir.md.
"""

from . import nodes as nodes
from .convert import SUPPORTED as SUPPORTED
from .convert import from_nir as from_nir
from .convert import to_nir as to_nir
from .network import NIRNetwork as NIRNetwork
from .network import topological_order as topological_order

__all__ = ["from_nir", "to_nir", "NIRNetwork", "SUPPORTED", "nodes", "topological_order"]
