"""Checkpoint folders that are wrong in the ways a server's folder can be: for any test of a reader.

Each maker copies a good checkpoint into ``root / name`` and breaks one thing; :func:`make_all`
writes every kind side by side, as one ``VQVIZ_CHECKPOINTS`` folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from vqviz import checkpoints

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2"  # the smallest shipped checkpoint


def _copy(root: Path, name: str, source: Path = GOOD) -> Path:
    folder = root / name
    shutil.copytree(source, folder)
    return folder


def _edit_meta(folder: Path, change) -> Path:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    # ensure_ascii (the default) writes a lone surrogate as the valid JSON escape "\ud800"
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def surrogate_dataset(root: Path) -> Path:
    """``"dataset": "\\ud800"``: valid JSON, but no UTF-8 encoder takes it."""
    return _edit_meta(_copy(root, "surrogate-dataset"), lambda m: m.update(dataset="\ud800"))


def undecodable_name(root: Path) -> Path:
    """A good checkpoint in a folder whose name is not UTF-8 (``b"ck-\\xff"``)."""
    return _copy(root, os.fsdecode(b"ck-\xff"))


def fifo_meta(root: Path) -> Path:
    """``meta.json`` is a FIFO: a plain open blocks until a writer comes."""
    folder = _copy(root, "fifo-meta")
    (folder / "meta.json").unlink()
    os.mkfifo(folder / "meta.json")
    return folder


def endless_meta(root: Path) -> Path:
    """``meta.json`` links to ``/dev/zero``: a plain read never ends."""
    folder = _copy(root, "endless-meta")
    (folder / "meta.json").unlink()
    (folder / "meta.json").symlink_to("/dev/zero")
    return folder


def weights_folder(root: Path) -> Path:
    """The weights file named in ``meta.json`` is a folder."""
    folder = _copy(root, "weights-folder")
    for w in folder.glob("weights-*.safetensors"):
        w.unlink()
        w.mkdir()
    return folder


def decoder_check_type(root: Path) -> Path:
    """``metrics.decoder_check`` with values of the wrong types."""
    return _edit_meta(_copy(root, "decoder-check-type"), lambda m: m["metrics"].update(
        decoder_check={"degenerate": True, "std_ratio": "low", "between_ratio": [1], "threshold": None}))


def codebook_history_type(root: Path) -> Path:
    """``metrics.codebook_history`` with a perplexity that is text."""
    return _edit_meta(_copy(root, "codebook-history-type"), lambda m: m["metrics"].update(codebook_history={
        "epoch": [1, 2], "stage": ["train", "train"], "usage_entropy": [1.0, 1.5], "perplexity": [2.7, "high"],
        "dead_codes": [3, 1], "n_codes": 8, "sample": 360, "split": "test"}))


def nan_weights(root: Path) -> Path:
    """Weights holding NaN and infinity, with a matching hash (saved by vqviz itself)."""
    ckpt = checkpoints.load(GOOD)
    with torch.no_grad():
        params = list(ckpt.model.parameters())
        params[0].view(-1)[0] = float("nan")
        params[-1].view(-1)[0] = float("inf")
    return checkpoints.save(ckpt.model, root / "nan-weights", dataset=ckpt.dataset, metrics=ckpt.metrics)


#: name -> maker; each maker writes one bad checkpoint under a root folder and returns its folder.
KINDS = {"surrogate-dataset": surrogate_dataset, "undecodable-name": undecodable_name, "fifo-meta": fifo_meta,
         "endless-meta": endless_meta, "weights-folder": weights_folder, "decoder-check-type": decoder_check_type,
         "codebook-history-type": codebook_history_type, "nan-weights": nan_weights}


def make_all(root: Path, good: bool = True) -> dict[str, Path]:
    """Every kind under ``root`` (and, with ``good``, an intact copy named ``good``); name -> folder."""
    root.mkdir(parents=True, exist_ok=True)
    out = {name: make(root) for name, make in KINDS.items()}
    if good:
        out["good"] = _copy(root, "good")
    return out
