"""Keeping the better checkpoint: before a new checkpoint replaces an old one of the same
model and data set that scores clearly better, the old one is copied aside."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import CheckpointError
from ..schema import META, _is_number
from ..utils import file_mode
from .loading import label, read_meta
from .saving import acquire, check_space, writer_lock

#: Headline metrics, most telling first: (key, higher is better, how much worse is "clearly").
HEADLINES = (("quantizer_test_accuracy", True, 0.02), ("test_accuracy", True, 0.02),
             ("test_mse_per_image", False, 0.25), ("test_recon_mse", False, 0.25))


def headline(metrics: dict) -> tuple[str, float, bool, float] | None:
    """The metric a checkpoint is judged by: (key, value, higher is better, tolerance), or None."""
    for key, higher, tol in HEADLINES:
        value = metrics.get(key)
        if _is_number(value):
            return key, float(value), higher, tol
    return None


def keep_if_better(folder: str | Path, model: str, dataset: str, metrics: dict) -> tuple[Path, str] | None:
    """Before a new checkpoint of ``model`` on ``dataset`` replaces ``folder``, keep the old one
    in ``<folder>.previous`` if it scores clearly better on the headline metric.

    "Clearly": accuracy 2 points higher, or a reconstruction error 25 % lower.
    Returns ``(kept folder, message)``, or None when nothing was kept (no old
    checkpoint, another model or data set, unreadable, or no clear difference).
    """
    folder = Path(folder)
    try:
        old = read_meta(folder)
    except CheckpointError:
        return None
    if old["model"] != model or old["dataset"] != dataset:
        return None
    new, before = headline(metrics), headline(old["metrics"])
    if new is None or before is None or new[0] != before[0]:
        return None
    key, value, higher, tol = new
    worse = (before[1] - value > tol) if higher else (value > before[1] * (1 + tol))
    if not worse:
        return None
    previous = folder.with_name(folder.name + ".previous")
    lock = writer_lock(folder)
    acquire(lock, folder)
    try:
        meta = read_meta(folder)  # the one under the lock
        weights = folder / meta["weights"]["file"]
        check_space(folder, weights.stat().st_size + 2**20, f"keep {label(folder)}")
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.previous-"))
        try:
            for src in (weights, folder / META):
                shutil.copyfile(src, tmp / src.name)
                os.chmod(tmp / src.name, file_mode())
            os.chmod(tmp, file_mode() | 0o111)
            shutil.rmtree(previous, ignore_errors=True)  # an older kept checkpoint
            os.replace(tmp, previous)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    message = (f"the new model's {key} ({value:.4g}) is clearly worse than the {before[1]:.4g} of the "
               f"checkpoint it replaces; the old one is kept in {previous.name} (--overwrite to replace it)")
    return previous, message
