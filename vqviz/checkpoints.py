"""One checkpoint format for every model: a folder with two files.

``meta.json``
    Format tag and version, model name, config, training settings, data set,
    split sizes, seed, metrics, library versions, the model's extra state
    (SEQ: k-means centres and cluster labels), and the weights file's name and
    SHA-256.
``weights-<sha>.safetensors``
    The weights. safetensors holds raw tensors only, so loading runs no code.

Writes are atomic: the weights go to a new file named by their hash, then
``meta.json`` is replaced in one rename, which is the commit point; the old
weights file is removed only after that. A crash at any moment leaves either
the old checkpoint or the new one, whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError

from . import __version__
from .errors import CheckpointError, ConfigError
from .models import Model, get
from .utils import atomic_path, atomic_write_bytes

FORMAT = "vqviz-checkpoint"
FORMAT_VERSION = 1
META = "meta.json"
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, ready in eval mode, and its metadata.

    Attributes
    ----------
    model : the rebuilt model.
    meta : the whole ``meta.json`` (``meta["metrics"]``, ``meta["dataset"]``, ...).
    path : the checkpoint folder.
    """

    model: Model
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.meta["model"]

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset") or ""

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})


def _jsonable(value: Any) -> Any:
    """Convert numpy and torch scalars, arrays and tuples for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _versions() -> dict:
    import sklearn

    return {"vqviz": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def save(model: Model, path: str | Path, *, dataset: str | None = None, split_sizes: dict | None = None,
         seed: int | None = None, metrics: dict | None = None, train_config: Any = None) -> Path:
    """Write ``model`` to the checkpoint folder ``path`` atomically; return the folder."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = safetensors.torch.save(tensors)
    digest = hashlib.sha256(blob).hexdigest()
    weights = f"weights-{digest[:16]}.safetensors"
    atomic_write_bytes(folder / weights, blob)
    if dataclasses.is_dataclass(train_config):
        train_config = dataclasses.asdict(train_config)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "config": dataclasses.asdict(model.config),
        "train": train_config or {},
        "dataset": dataset,
        "split_sizes": split_sizes or {},
        "seed": seed,
        "metrics": metrics or {},
        "versions": _versions(),
        "state": model.extra_state(),
        "weights": {"file": weights, "sha256": digest},
    }
    with atomic_path(folder / META) as tmp:
        tmp.write_text(json.dumps(_jsonable(meta), indent=1, allow_nan=True))
    for old in folder.glob("weights-*.safetensors"):
        if old.name != weights:
            old.unlink(missing_ok=True)
    return folder


def _refuse_foreign(path: Path) -> None:
    """Refuse pickles and torch.save files with a message that says why."""
    head = path.read_bytes()[:4] if path.is_file() else b""
    if path.suffix.lower() in PICKLE_SUFFIXES or head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(
            f"{path} looks like a pickle or torch.save file. vqviz never unpickles checkpoints, "
            "because unpickling can run arbitrary code; a vqviz checkpoint is a folder with "
            f"{META} and a .safetensors weights file (see `python -m vqviz train --help`).")


def read_meta(path: str | Path) -> dict:
    """Read and check a checkpoint's ``meta.json`` without loading the weights."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_file() and path.name != META:
        _refuse_foreign(path)
        raise CheckpointError(f"{path} is not a vqviz checkpoint: expected a folder with {META}")
    meta_path = path if path.is_file() else path / META
    if not meta_path.is_file():
        raise CheckpointError(f"{path} is not a vqviz checkpoint: it has no {META}")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path} is corrupted or truncated: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a vqviz checkpoint (no format tag {FORMAT!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{meta_path} has format version {meta['format_version']}; this vqviz "
                              f"reads up to {FORMAT_VERSION}: upgrade vqviz")
    for key in ("model", "config", "weights"):
        if key not in meta:
            raise CheckpointError(f"{meta_path} is corrupted: the field {key!r} is missing")
    return meta


def load(path: str | Path, *, expect: str | None = None, map_location: str | torch.device = "cpu"
         ) -> Checkpoint:
    """Rebuild a model from its checkpoint folder, with no other input.

    Parameters
    ----------
    path : the checkpoint folder (or its ``meta.json``).
    expect : if given, the model name the caller needs; another is refused.
    map_location : device of the loaded weights.

    Raises
    ------
    CheckpointError
        For a missing, corrupted or truncated checkpoint, a pickle, another
        architecture, or a model of another name than ``expect``.
    """
    path = Path(path)
    meta = read_meta(path)
    folder = path.parent if path.is_file() else path
    name = meta["model"]
    if expect is not None and name != expect:
        raise CheckpointError(f"{folder} holds a {name!r} model, not the {expect!r} model asked for")
    try:
        cls = get(name)
        version = str((meta.get("versions") or {}).get("vqviz", "0.1.0"))
        model = cls(cls.Config(**cls.upgrade_config(meta["config"], version)))
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{folder}: cannot rebuild the {name!r} model from its config: {e}") from None
    weights = folder / str(meta["weights"].get("file", ""))
    if not weights.is_file():
        raise CheckpointError(f"{folder}: the weights file {weights.name} is missing")
    blob = weights.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["weights"].get("sha256"):
        raise CheckpointError(f"{weights} is corrupted or truncated: its SHA-256 does not match {META}")
    try:
        tensors = safetensors.torch.load(blob)
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    try:
        model.load_state_dict(tensors, strict=True)
        model.load_extra_state(meta.get("state", {}))
    except (RuntimeError, ConfigError) as e:
        summary = str(e).splitlines()
        raise CheckpointError(
            f"{weights} does not fit the {name!r} architecture described in {META} "
            f"(a checkpoint of another architecture?): {' '.join(s.strip() for s in summary[:4])}") from None
    model.to(map_location).eval()
    return Checkpoint(model, meta, folder)


def find(*roots: str | Path) -> list[Path]:
    """Checkpoint folders (those with a ``meta.json``) under ``roots``, sorted by path."""
    found = set()
    for root in roots:
        root = Path(root).expanduser()
        if (root / META).is_file():
            found.add(root)
        elif root.is_dir():
            found.update(p.parent for p in root.rglob(META))
    return sorted(found)


# ----- installing an uploaded checkpoint -----
MAX_ZIP_BYTES = 200 * 2**20
MAX_UNPACKED_BYTES = 512 * 2**20
MAX_ENTRIES = 64


def install_checkpoint_zip(blob: bytes, dest_root: str | Path, name: str = "upload",
                           max_bytes: int = MAX_ZIP_BYTES, max_unpacked: int = MAX_UNPACKED_BYTES) -> Path:
    """Check an uploaded ``.zip`` of a checkpoint folder and install it under ``dest_root``.

    The zip must hold one ``meta.json`` and its ``weights-*.safetensors``, at its top
    level or in one folder. Only those two files are extracted, each read with a size
    cap (the sizes a zip declares are not trusted); paths that are absolute, climb out
    with ``..`` or are links are refused. The files go to a temporary folder beside
    the destination, are loaded with :func:`vqviz.checkpoints.load`, and only then is
    the folder renamed into place, so a refused upload leaves nothing behind.

    Returns
    -------
    The installed checkpoint folder, ``dest_root/<name>`` (``<name>-2``, ... if taken).

    Raises
    ------
    CheckpointError
        For anything but a vqviz checkpoint, with the reason.
    """
    if len(blob) > max_bytes:
        raise CheckpointError(f"the upload is {len(blob) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if blob[:2] != b"PK" or not zipfile.is_zipfile(io.BytesIO(blob)):
        head = " It looks like a pickle, which vqviz never loads." if blob[:1] == b"\x80" else ""
        raise CheckpointError("the upload is not a .zip file. Zip a checkpoint folder (meta.json and "
                              f"weights-*.safetensors) and upload that.{head}")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            wanted = _checkpoint_members(archive)
            dest_root = Path(dest_root)
            dest_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=dest_root, prefix=".upload-"))
            try:
                budget = max_unpacked
                for info, target in wanted:
                    budget -= _extract_capped(archive, info, tmp / target, budget)
                load(tmp)  # refuses anything that does not rebuild
                return _rename_free(tmp, dest_root, _safe_name(name))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"the upload is a damaged .zip file: {e}") from None


def _checkpoint_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"the zip holds {len(infos)} entries; a checkpoint has 2 (at most {MAX_ENTRIES})")
    metas = []
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise CheckpointError(f"the zip holds an unsafe path {info.filename!r}; refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise CheckpointError(f"the zip holds a symbolic link {info.filename!r}; refused")
        if path.suffix.lower() in PICKLE_SUFFIXES or path.name == "data.pkl":
            raise CheckpointError(
                f"the zip holds {info.filename!r}, a pickle or torch.save file. vqviz never unpickles "
                "checkpoints (unpickling can run arbitrary code); upload a vqviz checkpoint folder, zipped.")
        if path.name == META and "__MACOSX" not in path.parts:
            metas.append(path)
    if len(metas) != 1:
        raise CheckpointError(f"the zip holds {len(metas) or 'no'} {META} files; a vqviz checkpoint "
                              "is one folder with meta.json and a weights-*.safetensors file")
    folder = metas[0].parent
    out = []
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.parent == folder and not info.is_dir() and (
                path.name == META or (path.name.startswith("weights-") and path.suffix == ".safetensors")):
            out.append((info, path.name))
    return out


def _extract_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    written = 0
    with archive.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise CheckpointError(f"the zip unpacks to more than {MAX_UNPACKED_BYTES / 2**20:.0f} MB; refused")
            dst.write(chunk)
    return written


def _safe_name(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".zip") else name
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip(".-") or "upload"
    return safe[:80]


def _rename_free(tmp: Path, root: Path, name: str) -> Path:
    """Rename ``tmp`` to the first free ``root/name``, ``root/name-2``, ... (rename is atomic)."""
    for i in range(1, 1000):
        dest = root / (name if i == 1 else f"{name}-{i}")
        if dest.exists():
            continue
        try:
            os.rename(tmp, dest)
            return dest
        except OSError:
            if not dest.exists():
                raise
    raise CheckpointError(f"too many checkpoints named {name} in {root}")
