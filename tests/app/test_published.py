"""The app reads the published benchmark as plain data: no module of vqviz_app imports vqviz.bench,
and the reader (vqviz_app.published) gives a clear error for a file it cannot show."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from driving import ROOT

from vqviz_app import published as results

APP = ROOT / "vqviz_app"
#: Imports every module of vqviz_app, then says whether the benchmark came with them.
IMPORT_ALL = """
import importlib, pkgutil, sys
import vqviz_app
names = [m.name for m in pkgutil.walk_packages(vqviz_app.__path__, "vqviz_app.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names), sorted(m for m in sys.modules if m == "vqviz.bench" or m.startswith("vqviz.bench.")))
"""


def _bench_imports(source: str, where: str = "") -> list[str]:
    """The imports of vqviz.bench in a module's ``source``, at any depth (a function's lazy import too),
    as "where:line name"."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [f"{where}:{node.lineno} {n}" for n in names
                  if n == "vqviz.bench" or n.startswith("vqviz.bench.")]
    return found


@pytest.mark.slow  # a fresh interpreter imports every module of the app: 5 s
def test_no_module_of_the_app_imports_the_benchmark():
    files = sorted(APP.rglob("*.py"))
    assert APP / "published.py" in files and APP / "pages" / "metrics.py" in files
    assert [hit for f in files for hit in _bench_imports(f.read_text(), str(f.relative_to(ROOT)))] == []
    # Nor does anything they import: every module imported, in a fresh interpreter.
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count, bench = done.stdout.split(maxsplit=1)
    assert int(count) >= len(files) - 1 and bench.strip() == "[]"  # every module but vqviz_app itself


def test_the_check_finds_a_lazy_import():
    source = "import vqviz.benchmarks\ndef f():\n    from vqviz.bench import repro\n    import vqviz.bench.perf\n"
    assert _bench_imports(source, "page.py") == ["page.py:3 vqviz.bench", "page.py:3 vqviz.bench.repro",
                                                 "page.py:4 vqviz.bench.perf"]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_the_shipped_results_hold_everything_the_page_shows(dataset):
    r = results.read(dataset, results.FOLDER)
    assert r.dataset == dataset and r.path == results.FOLDER / f"{dataset}.json" and r.rows
    assert all(isinstance(row["shown"][k], str) for row in r.rows for k in results.SHOWN)
    assert {row["citation"] for row in r.rows} >= {"Le, Ko and Chen, SEQ (arXiv 1910.11067)"}
    assert "CAE-4" in r.seq_curves and 0.9 < r.seq_paper_best < 1


def test_the_folder_is_the_packages_unless_the_setting_names_another(tmp_path, monkeypatch):
    monkeypatch.delenv(results.ENV, raising=False)
    assert results.folder() == results.FOLDER == APP / "results"
    monkeypatch.setenv(results.ENV, str(tmp_path))
    assert results.folder() == tmp_path and results.file("mnist") == tmp_path / "mnist.json"
    assert results.read("mnist") is None  # nothing published there


@pytest.mark.parametrize("name", ["../mnist", "a/b", ".hidden", ""])
def test_a_data_set_name_that_is_not_a_file_name_has_no_results(name, tmp_path):
    assert results.file(name, tmp_path) is None and results.read(name, tmp_path) is None


def _written(tmp_path, body) -> str:
    (tmp_path / "mnist.json").write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(results.ResultsError) as e:
        results.read("mnist", tmp_path)
    return str(e.value)


def test_a_broken_file_is_a_clear_error_and_stays_as_it_was(tmp_path):
    assert "is not JSON" in _written(tmp_path, "{broken")
    assert (tmp_path / "mnist.json").read_text() == "{broken"
    assert "not a JSON object" in _written(tmp_path, [1, 2])


def test_a_file_of_an_older_bench_repro_says_how_to_rewrite_it(tmp_path):
    row = {"model": "VAE", "metric": "BCE", "verdict": "met", "budget": "10 ep.", "source": "Table 1"}
    body = {"dataset": "mnist", "runs": [], "table": [row], "seq_curves": {}, "seq_paper_best": None}
    message = _written(tmp_path, body)
    assert "row 0 of the table lacks" in message and "bench repro --dataset mnist --table-only" in message
    good = {**row, "citation": "the paper", "shown": {"ours": "80.0 (3)", "paper": "", "time": "4 min"}}
    (tmp_path / "mnist.json").write_text(json.dumps({**body, "table": [good]}))
    assert results.read("mnist", tmp_path).rows == [good]
    for curve in ({"k": [10, 20], "test_accuracy": [0.9]}, {"k": [10], "test_accuracy": [0.9], "p_e": "x"}):
        broken = {**body, "table": [good], "seq_curves": {"LAE-2": curve}}
        assert "the SEQ curve of 'LAE-2'" in _written(tmp_path, broken)


def test_a_file_too_large_or_not_a_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    (tmp_path / "mnist.json").mkdir()
    with pytest.raises(results.ResultsError, match="not a regular file"):
        results.read("mnist", tmp_path)
    monkeypatch.setattr(results, "MAX_BYTES", 10)
    (tmp_path / "fashion-mnist.json").write_text(json.dumps({"table": [], "padding": "x" * 100}))
    with pytest.raises(results.ResultsError, match="the limit is"):
        results.read("fashion-mnist", tmp_path)
