"""Griffe extension for the API pages: Sphinx cross-reference roles as inline code.

The docstrings use reStructuredText roles such as ``:func:`simulate``` and
``:class:`~memjax.devices.windows.Biolek```, which Markdown would print literally. This
extension rewrites them to inline code (```simulate``` / ```Biolek```) when the
docstrings are loaded; the source is unchanged.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|obj|exc):`(~?)([^`]+)`")


def _short(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_short, obj.docstring.value)
