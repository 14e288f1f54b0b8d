"""Helpers that drive the app through AppTest and read what it shows."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from vqviz_app import jobs
from vqviz import checkpoints, data

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
SHIPPED = ("seq-digits-cae4", "seq-digits-lae2")


def open_app(page: str | None = None, settle: bool = True) -> AppTest:
    """The app on its first page, or on ``page`` (a module of app/pages); ``settle``: rerun once the
    background work the page started (maps, scores) is done."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
    if settle:
        settled(at)
    assert not at.exception, at.exception
    return at


def settled(at: AppTest) -> AppTest:
    """Wait for the page's background computations, then rerun it."""
    assert jobs.wait_all(300)
    return at.run()


def images(at) -> dict[str, str]:
    """Caption -> URL of every image; the URL is a hash of the PNG, so it changes with the picture."""
    return {c: u for el in at.get("image") for c, u in zip(el.captions, el.value)}


def figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def array(values) -> np.ndarray:
    """A plotly data array, plain or typed ({"bdata", "dtype"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values)


def reference(name="seq-digits-cae4", split="test"):
    """Clusters of a split computed straight from the model, independently of the app."""
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    ds = data.load("digits", split)
    with torch.no_grad():
        idx = ckpt.model.quantize(ckpt.model.encode(torch.as_tensor(np.array(ds.images)))).indices.numpy()
    return ckpt, ds, idx


def variant(tmp_path, monkeypatch, name="variant", raw: str | None = None, **meta_changes) -> Path:
    """A copy of the shipped LAE-2 checkpoint in a VQVIZ_CHECKPOINTS folder, its meta.json changed
    (or replaced by the text ``raw``)."""
    folder = tmp_path / "mine" / name
    shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2", folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(meta_changes)
    (folder / "meta.json").write_text(json.dumps(meta) if raw is None else raw)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "mine"))
    return folder


def zipped(files: dict[str, bytes]) -> bytes:
    """A .zip holding ``files`` (name in the archive -> content), as bytes to upload."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return buf.getvalue()
