"""Writing a checkpoint atomically, one writer at a time.

The weights go to a new file named by their hash, then ``meta.json`` is replaced in one
rename, which is the commit point; the old weights file is removed only after that. A crash
at any moment leaves either the old checkpoint or the new one, whole. One writer at a time
holds the folder's lock file (``.vqviz.lock``, :func:`writer_lock`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import safetensors.torch
import torch

from .. import __version__
from ..errors import CheckpointError
from ..models import Model
from ..models.registry import provenance
from ..schema import FORMAT, FORMAT_VERSION, META, WEIGHTS_NAME, check_meta
from ..utils import atomic_path, atomic_write_bytes, file_mode
from .loading import label
from .summaries import summary_of

LOCK = ".vqviz.lock"
#: Seconds a writer waits for another writer of the same folder; a setting of :mod:`vqviz.checkpoints`.
LOCK_TIMEOUT = 120.0

_TEMPORARIES = (re.compile(r"\.meta\.json\..+\.tmp"), re.compile(r"\.weights-.+\.safetensors\..+\.tmp"))


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


def writer_lock(folder: str | Path, timeout: float | None = None) -> filelock.FileLock:
    """The lock that every writer of checkpoint ``folder`` holds (``folder/.vqviz.lock``)."""
    return filelock.FileLock(str(Path(folder) / LOCK), timeout=LOCK_TIMEOUT if timeout is None else timeout,
                             mode=file_mode())


def acquire(lock: filelock.FileLock, folder: Path) -> None:
    """Take ``lock``, a writer's lock of ``folder``, or raise a CheckpointError after its timeout."""
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CheckpointError(f"{label(folder)} is being written by another process; "
                              f"gave up after {lock.timeout:.0f} s") from None


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_space(folder: Path, needed: int, what: str) -> None:
    """Raise a CheckpointError unless ``folder``'s disk has ``needed`` bytes (and 1 MiB) free to ``what``."""
    free = _free_bytes(folder)
    if free < needed + 2**20:
        raise CheckpointError(f"not enough free disk space to {what}: it needs {needed / 2**20:.1f} MB, "
                              f"{free / 2**20:.1f} MB are free")


def _sweep(folder: Path, keep: str | None) -> None:
    """Remove the package's own leftovers in ``folder``: temporaries and weights other than ``keep``.

    Called with the folder's lock held, so no other writer's temporary is live.
    """
    for entry in os.scandir(folder):
        stale = any(p.fullmatch(entry.name) for p in _TEMPORARIES) or (
            keep is not None and entry.name != keep and WEIGHTS_NAME.fullmatch(entry.name))
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def save(model: Model, path: str | Path, *, dataset: str | None = None, split_sizes: dict | None = None,
         seed: int | None = None, metrics: dict | None = None, train_config: Any = None,
         weights_dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` to the checkpoint folder ``path`` atomically; return the folder.

    ``weights_dtype`` (e.g. ``torch.float16``) stores the floating-point tensors in
    that type, to ship a smaller file; :func:`vqviz.checkpoints.load` casts them back
    to the model's own type.

    One writer at a time: the folder's lock file is held from the first write to
    the removal of the old weights. Stale temporaries of an earlier crash are
    removed, and the free space is checked before anything is written.

    Raises
    ------
    CheckpointError
        ``path`` is a file, another writer holds the lock too long, or the disk lacks space.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        tensors = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    blob = safetensors.torch.save(tensors)
    digest = hashlib.sha256(blob).hexdigest()
    weights = f"weights-{digest[:16]}.safetensors"
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
        "versions": {**_versions(), **provenance(model)},  # a plug-in's distribution too
        "state": model.extra_state(),
        "weights": {"file": weights, "sha256": digest},
        "summary": summary_of(model, dataset, metrics or {}),
    }
    lock = writer_lock(folder)
    acquire(lock, folder)
    try:
        _sweep(folder, keep=None)
        text = json.dumps(_jsonable(meta), indent=1, allow_nan=True)
        check_meta(json.loads(text))  # never write a checkpoint that would not load
        check_space(folder, len(blob) + len(text), f"save {label(folder)}")
        atomic_write_bytes(folder / weights, blob)
        with atomic_path(folder / META) as tmp:
            tmp.write_text(text)
        _sweep(folder, keep=weights)
    finally:
        lock.release()
    return folder
