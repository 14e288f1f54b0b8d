"""Helpers that drive the app through AppTest and read what it shows."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import NamedTuple

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
    """Every plotly chart on the page, as its figure's JSON."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


class Drawn(NamedTuple):
    """A map on the page as its browser is told to draw it: the view's props (colour, marks, spot, the
    selection restored), the payload's header, its points ``xy`` (N, 2) and ``background`` (M, 2) in data
    coordinates, each field's values by name (continuous ones in [0, 1]), and the packed :class:`MapData`."""

    key: str
    props: dict
    head: dict
    xy: np.ndarray
    background: np.ndarray
    fields: dict[str, np.ndarray]
    data: object


def maps(at) -> list[Drawn]:
    """Every map component on the page (the Latent map, the mixer's picker), read from its view element."""
    from vqviz import web
    from vqviz_app import mapview

    out = []
    for el in at.get("bidi_component"):
        proto = el.proto
        if proto.component_name != mapview.COMPONENT or not proto.json:
            continue  # a store element: the payload itself
        props = json.loads(proto.json)
        if props.get("kind") == "mixer":
            continue  # the style mixer's view, not a map
        data = mapview.packed(props["store"])
        assert data is not None, "the view names a payload that was never packed"
        head, columns = web.unpack(data.blob)
        (x0, x1), (y0, y1) = head["domain"]
        everything = np.stack([x0 + (columns["x"] + 1) / 2 * (x1 - x0), y0 + (columns["y"] + 1) / 2 * (y1 - y0)], 1)
        m = head["m"]
        fields = {f["name"]: columns[f["column"]] for f in head["fields"]}
        out.append(Drawn(proto.id.rsplit("-", 2)[-2], props, head, everything[m:], everything[:m], fields, data))
    return out


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
