"""The docs: the MkDocs site builds with --strict (so a broken link, a missing page or a missing
snippet fails), the README stays short, and the results tables reach the docs only through the
snippet include of the files that ``bench repro`` writes, never as hand copies."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "vqviz_app" / "results"
#: The generated results tables, and the page that includes them.
GENERATED = sorted(RESULTS.glob("*.md"))
INCLUDING_PAGE = "reproduction"
README_MAX_LINES = 250


def written_docs() -> list[Path]:
    """Every markdown file a person writes: the README and the docs' pages."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def table_rows(path: Path) -> list[str]:
    """The rows of a markdown file's tables in order, header rows included, separator rows left out."""
    rows = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [row for row in rows if row.startswith("|") and not re.fullmatch(r"[|:\- ]+", row)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_the_docs_build_with_strict(site):
    pages = {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")}
    assert {".", "app", "models", "cli", "own-data", "checkpoints", INCLUDING_PAGE, "scale-out",
            "architecture"} <= pages


def test_the_results_tables_are_included_from_the_generated_files(site):
    assert GENERATED, f"no generated results tables in {RESULTS}"
    page = (ROOT / "docs" / f"{INCLUDING_PAGE}.md").read_text(encoding="utf-8")
    built = html.unescape((site / INCLUDING_PAGE / "index.html").read_text(encoding="utf-8"))
    for path in GENERATED:
        include = rf'^--8<-- "{re.escape(path.name)}"$'
        assert re.search(include, page, re.MULTILINE), f"docs/{INCLUDING_PAGE}.md does not include {path.name}"
        headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        first_row = table_rows(path)[1]  # the first table's first row below its header
        assert headings and all(h in built for h in headings), path.name
        assert all(cell.strip() in built for cell in first_row.strip("|").split("|")), (path.name, first_row)


def test_no_results_table_is_copied_by_hand():
    generated = {row for p in GENERATED for row in table_rows(p)}
    for path in written_docs():
        copied = [row for row in table_rows(path) if row in generated]
        assert not copied, f"{path.relative_to(ROOT)} copies rows of the generated results: {copied[:3]}"


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"
