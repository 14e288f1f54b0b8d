"""The library is a library: every ``vqviz`` module imports with Streamlit made unimportable."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import vqviz

ROOT = Path(__file__).resolve().parents[2]

BLOCKED = """
import importlib, importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "streamlit" or name.startswith("streamlit."):
            raise ImportError(f"the library imported {name}")

sys.meta_path.insert(0, Block())
for name in sys.argv[1:]:
    importlib.import_module(name)
assert not any(m == "streamlit" or m.startswith("streamlit.") for m in sys.modules)
print("ok", len(sys.argv) - 1)
"""


def _modules() -> list[str]:
    """Every module of the package but ``__main__``, which runs the command line when imported."""
    found = (m.name for m in pkgutil.walk_packages(vqviz.__path__, "vqviz."))
    return ["vqviz", *sorted(n for n in found if not n.endswith("__main__"))]


@pytest.mark.slow  # a fresh interpreter imports every module: 2 s
def test_every_vqviz_module_imports_with_streamlit_blocked():
    names = _modules()
    assert {"vqviz.analysis.points", "vqviz.images", "vqviz.bench.ui", "vqviz.cli"} <= set(names)
    done = subprocess.run([sys.executable, "-c", BLOCKED, *names], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["ok", str(len(names))]


def test_the_blocker_does_block():
    done = subprocess.run([sys.executable, "-c", BLOCKED, "vqviz_app.cache"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode != 0 and "imported streamlit" in done.stderr
