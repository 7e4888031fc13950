"""mkdocs hooks (``hooks:`` in ``mkdocs.yml``).

- ``on_pre_build``: execute the tutorials whose notebook is missing or stale
  (:mod:`notebooks`).
- ``on_files`` / ``on_page_markdown``: the guides link the committed benchmark figures as
  ``../benchmarks/results/NAME.png`` (a path that works when reading the Markdown in the
  repository); the site publishes those figures as ``results/NAME.png`` and rewrites the
  links to match, so the figures are not copied into ``docs/``.
- ``on_page_content``: mkdocs-jupyter leaves a notebook's links as written (``../mif.md``,
  ``04_memprop.ipynb``: right when reading the notebooks in the repository); on a
  tutorial page they are rewritten to the site's directory URLs.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebooks  # noqa: E402

RESULTS = notebooks.ROOT / "benchmarks" / "results"
_REPO_PREFIX = "../benchmarks/results/"
_SITE_DIR = "results"


def on_pre_build(config, **kwargs):
    notebooks.on_pre_build(config)


def on_files(files, config, **kwargs):
    for png in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"{_SITE_DIR}/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    if _REPO_PREFIX not in markdown:
        return markdown
    # Relative to the page's folder: docs/x.md -> results/..., docs/a/b.md -> ../results/...
    up = posixpath.relpath(_SITE_DIR, posixpath.dirname(page.file.src_uri) or ".")
    return markdown.replace(_REPO_PREFIX, up + "/")


_NB_LINK = re.compile(r'href="(?P<path>[^"#:]+?)\.(?P<ext>md|ipynb)(?P<anchor>#[^"]*)?"')


def _site_url(match: re.Match) -> str:
    # A tutorial page lives at tutorials/NAME/: a sibling notebook is ../NAME/, a guide
    # ../X.md is ../../X/ (index.md is the site root).
    path, anchor = match["path"], match["anchor"] or ""
    target = posixpath.normpath(posixpath.join("tutorials", path))
    if target.endswith("index"):
        target = target[: -len("index")].rstrip("/")
    href = posixpath.relpath(target or ".", "tutorials/_page") + "/"
    return f'href="{href}{anchor}"'


def on_page_content(html, page, config, files, **kwargs):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    return _NB_LINK.sub(_site_url, html)
