"""The README's Python example runs as written, from a folder that holds the shipped checkpoints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert blocks, "the README has no Python example"
    (tmp_path / "checkpoints").symlink_to(ROOT / "vqviz_app" / "checkpoints")
    monkeypatch.chdir(tmp_path)
    out, namespace = io.StringIO(), {"__name__": "readme"}  # one namespace: a block may use an earlier one's names
    for block in blocks:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    accuracy, shape = out.getvalue().split(" ", 1)
    claimed = float(re.search(r"# about ([0-9.]+),", "".join(blocks)).group(1))  # what the comment says it prints
    assert abs(float(accuracy) - claimed) < 0.03, (accuracy, claimed)
    assert shape.strip() == "torch.Size([1, 1, 8, 8])"
    assert (tmp_path / "runs" / "seq-digits" / "meta.json").is_file()
