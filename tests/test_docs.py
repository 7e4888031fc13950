"""The documentation runs as written: code blocks, tutorials, generated results tables.

- Every ```` ```python ```` block of README.md and docs/*.md is executed (mktestdocs), the
  blocks of one file in order in one namespace, as a reader pastes them. A block that
  cannot run on its own on purpose is marked ```` ```python title="fragment" ```` (rendered
  with the caption "fragment"); any other text after ``python`` is an error here, so no
  block is skipped by accident.
- Every tutorial (docs/tutorials/NN_*.py, jupytext percent format) is executed in a
  Jupyter kernel by tools/notebooks.py; the executed notebook it writes is what the docs
  build renders, so CI executes each tutorial once.
- The results tables of README.md and docs/papers.md equal what tools/gen_results.py
  generates from benchmarks/results/*.json.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAGMENT = 'python title="fragment"'
# Guides whose blocks belong to another change in flight (their owners apply the fragment
# convention); strict, so this fails as soon as they pass and the entry must go.
PENDING: set[str] = set()


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _params():
    for p in MARKDOWN:
        marks = (
            [pytest.mark.xfail(strict=True, reason="blocks being rewritten elsewhere")]
            if p.name in PENDING
            else []
        )
        yield pytest.param(p, id=p.name, marks=marks)


def _python_fences(text: str) -> list[str]:
    return re.findall(r"^[ \t]*```[ \t]*(python[^\n]*)$", text, flags=re.MULTILINE)


@pytest.mark.parametrize("path", list(_params()))
def test_markdown_code_blocks_run(path, monkeypatch, tmp_path):
    import mktestdocs

    text = path.read_text()
    bad = [f for f in _python_fences(text) if f.strip() not in ("python", FRAGMENT)]
    assert not bad, f"{path.name}: python blocks must be ```python or ```{FRAGMENT}; found {bad}"
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    mktestdocs.check_md_file(path, memory=True)


GUIDES = [*MARKDOWN, *sorted((ROOT / "docs" / "dev-notes").glob("*.md"))]
# `memjax.x.y` / `benchmarks.x.y` in an inline code span, not part of a path or longer name.
_DOTTED = re.compile(r"(?<![\w./-])((?:memjax|benchmarks)(?:\.[A-Za-z_]\w*)+)")


def _dotted_names(text: str) -> set[str]:
    text = re.sub(
        r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.MULTILINE | re.DOTALL
    )  # fenced blocks
    spans = re.findall(r"`([^`\n]+)`", text)
    return {n for s in spans if not s.lstrip().startswith(":::") for n in _DOTTED.findall(s)}


def _resolves(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("path", GUIDES, ids=[p.relative_to(ROOT).as_posix() for p in GUIDES])
def test_documented_names_exist(path, monkeypatch):
    """Every dotted ``memjax.`` / ``benchmarks.`` name in backticks imports, so a rename
    in the library cannot leave a stale name in the docs."""
    monkeypatch.syspath_prepend(str(ROOT))
    missing = sorted(n for n in _dotted_names(path.read_text()) if not _resolves(n))
    assert not missing, f"{path.name} names what does not exist: {missing}"


def test_documented_names_check_detects_a_stale_name():
    names = _dotted_names(
        "`memjax.train.fit` and `memjax.no_such_module.f`, docs/benchmarks.md,\n"
        "```python\nmemjax.inside_a_block\n```\n`::: memjax.NAME`"
    )
    assert names == {"memjax.train.fit", "memjax.no_such_module.f"}
    assert _resolves("memjax.training.fit") and _resolves("benchmarks.memprop.FULL")
    assert not _resolves("memjax.no_such_module.f") and not _resolves("memjax.training.no_such")


def test_fragment_convention_is_recognised():
    import mktestdocs

    text = f"```python\nx = 1\n```\n\n```{FRAGMENT}\nundefined_name\n```\n"
    assert mktestdocs.grab_code_blocks(text, lang="python") == ["x = 1\n"]


def test_results_tables_match_json():
    gen = _tool("gen_results")
    for path, generated in gen.rendered().items():
        assert path.read_text() == generated, (
            f"{path.relative_to(ROOT)} differs from benchmarks/results/*.json: "
            "run python tools/gen_results.py"
        )


def test_results_generator_detects_a_stale_table(tmp_path, monkeypatch):
    gen = _tool("gen_results")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\n| stale |\n<!-- results:end -->\n")
    (tmp_path / "docs").mkdir()
    for doc in ("papers.md", "sfa.md"):
        (tmp_path / "docs" / doc).write_text((ROOT / "docs" / doc).read_text())
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert "| stale |" not in readme.read_text()


TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("source", TUTORIALS, ids=[t.stem for t in TUTORIALS])
def test_tutorial_executes(source):
    notebooks = _tool("notebooks")
    notebooks.execute(source)
    assert notebooks.is_current(source)


def test_tutorials_end_with_what_to_try_next():
    assert TUTORIALS, "no tutorials under docs/tutorials"
    for t in TUTORIALS:
        assert "## What to try next" in t.read_text(), t.name
