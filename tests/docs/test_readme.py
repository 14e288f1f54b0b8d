"""The README's Python examples run as written, from a folder that holds the shipped checkpoints: the first
prints what its comment says, the second ("Your own model") saves a file of latents where the app looks."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _run(block: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    return out.getvalue()


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) == 2, "the README's Python examples: the library, and your own model"
    (tmp_path / "checkpoints").symlink_to(ROOT / "vqviz_app" / "checkpoints")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))  # where explore saves, as the app looks
    accuracy, shape = _run(blocks[0]).split(" ", 1)
    claimed = float(re.search(r"# about ([0-9.]+),", blocks[0]).group(1))  # what the comment says it prints
    assert abs(float(accuracy) - claimed) < 0.03, (accuracy, claimed)
    assert shape.strip() == "torch.Size([1, 1, 8, 8])"
    assert (tmp_path / "runs" / "seq-digits" / "meta.json").is_file()

    printed = _run(blocks[1])
    from vqviz import checkpoints

    saved, = (tmp_path / "home" / "vqviz" / "checkpoints").glob("latents-my-latents-*")
    ckpt = checkpoints.load(saved)
    assert ckpt.model.config.n_rows == 360 and ckpt.model.config.clusters_from == "kmeans"
    assert f"open http://127.0.0.1:8501/?page=latent_map&checkpoint=" in printed
