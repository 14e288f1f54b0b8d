"""What visitors upload and the server keeps: image folders under :func:`catalog.data_dir` and
checkpoints under ``catalog.user_dir() / "uploads"``, together within one disk quota
(``VQVIZ_UPLOAD_QUOTA_MB``, :mod:`vqviz.settings`), listed with their sizes and removable.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import streamlit as st

from vqviz import archive, checkpoints, settings
from vqviz.errors import DataError, VqvizError

from . import catalog
from .state import Session, session

T = TypeVar("T")
#: One upload unpacks at a time, so that two cannot both fit in the space left by the quota (and
#: unpacking, CPU-bound, does not run several times over on a small server).
_LOCK = threading.Lock()


def folders() -> dict[str, Path]:
    """The folders uploads are kept in, by what they hold."""
    return {"image folder": catalog.data_dir(), "checkpoint": catalog.user_dir() / catalog.UPLOADS}


@dataclass(frozen=True)
class Upload:
    """One kept upload: its folder, what it holds and the bytes its files take."""

    path: Path
    kind: str
    size: int


def size_of(path: Path) -> int:
    """Bytes of the files under ``path``, links neither counted nor followed."""
    total = 0
    try:
        listed = list(os.scandir(path))
    except OSError:
        return 0
    for entry in listed:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += size_of(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            pass
    return total


def listed() -> list[Upload]:
    """The kept uploads (not the temporary folders of installs under way), by folder and name."""
    out = []
    for kind, folder in folders().items():
        try:
            found = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        out += [Upload(Path(e.path), kind, size_of(Path(e.path))) for e in found
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    return out


def used() -> int:
    """Bytes that uploads take now, those being installed included."""
    return sum(size_of(folder) for folder in folders().values())


def quota() -> int:
    """Bytes that uploads may take together (``VQVIZ_UPLOAD_QUOTA_MB``)."""
    return int(settings.server_settings().upload_quota_mb * 2**20)


def _full_message(limit: int, taken: int) -> str:
    return (f"it does not fit in the disk this server keeps for uploads: {taken / 2**20:,.0f} MB of "
            f"{limit / 2**20:,.0f} MB (VQVIZ_UPLOAD_QUOTA_MB) are taken. Remove old uploads under "
            "**Uploads kept on this server** on the Models page to free space.")


def _within_quota(cap: int, install: Callable[[int], T], error: type[VqvizError]) -> T:
    """Run ``install(max_unpacked)`` with what it may unpack cut to the space the quota leaves, so that a
    refused upload leaves nothing and a kept one never takes the total over the quota."""
    with _LOCK:
        limit, taken = quota(), used()
        left = limit - taken
        if left <= 0:
            raise error(_full_message(limit, taken))
        try:
            return install(min(cap, left))
        except VqvizError as e:
            if left < cap and "unpacks to more than" in str(e):  # archive's cap, set by the quota here
                raise error(_full_message(limit, taken)) from None
            raise


def install_images(blob: bytes, name: str, check: Callable[[Path], None],
                   max_bytes: int) -> tuple[Path, list[str]]:
    """:func:`vqviz.archive.install_image_folder_zip` into :func:`catalog.data_dir`, within the quota and
    with at most ``VQVIZ_MAX_UPLOAD_IMAGES`` files: unpacking 99,000 tiny images takes half a minute of CPU.

    Raises
    ------
    DataError
        What the archive refuses, a zip of too many files, or one over the quota.
    """
    most = settings.server_settings().max_upload_images
    archive.check_blob(blob, max_bytes=max_bytes, max_entries=most, max_directory=most * 1024, error=DataError,
                       entries_hint="too many for this server (VQVIZ_MAX_UPLOAD_IMAGES)",
                       not_zip_hint=" Zip a folder with one sub-folder of images per class, and upload that.")
    return _within_quota(archive.MAX_IMAGES_UNPACKED_BYTES, lambda cap: archive.install_image_folder_zip(
        blob, catalog.data_dir(), name, check=check, max_bytes=max_bytes, max_unpacked=cap), DataError)


def install_checkpoint(blob: bytes, name: str) -> Path:
    """:func:`vqviz.checkpoints.install_checkpoint_zip` into the uploads folder, within the quota.

    Raises
    ------
    CheckpointError
        What the checkpoint check refuses, or an upload over the quota.
    """
    from vqviz.errors import CheckpointError

    return _within_quota(checkpoints.MAX_UNPACKED_BYTES, lambda cap: checkpoints.install_checkpoint_zip(
        blob, catalog.user_dir() / catalog.UPLOADS, name, max_unpacked=cap), CheckpointError)


def install_latents(blob: bytes, name: str, open_file: Callable[[Path, Path], T]) -> T:
    """An uploaded file of latents, checked and saved by ``open_file(file, checkpoint_folder)`` as a
    checkpoint in the uploads folder, within the quota: listed with the uploads, and removable.

    Raises
    ------
    DataError
        What ``open_file`` refuses, or an upload whose checkpoint takes the uploads over the quota
        (it is removed).
    """
    import hashlib
    import tempfile

    home = catalog.user_dir() / catalog.UPLOADS
    out = home / f"latents-{Path(name).stem[:40]}-{hashlib.sha256(blob).hexdigest()[:10]}"
    with _LOCK:
        limit, taken = quota(), used()
        if taken + len(blob) > limit:
            raise DataError(_full_message(limit, taken))
        home.mkdir(parents=True, exist_ok=True)
        try:  # a private temporary beside the uploads; the checked copy is kept in the checkpoint
            with tempfile.TemporaryDirectory(prefix=".latents-", dir=home) as tmp:
                path = Path(tmp) / f"upload{Path(name).suffix.lower()}"
                path.write_bytes(blob)
                got = open_file(path, out)
        except OSError as e:
            raise DataError(f"{name}: cannot be kept on the server ({e.strerror or e})") from None
        if used() > limit:
            shutil.rmtree(out, ignore_errors=True)
            raise DataError(_full_message(limit, taken))
    return got


def remove(path: str | Path) -> None:
    """Delete one kept upload: a folder right inside one of :func:`folders`, not a link (the removal
    never leaves them); links inside it are removed, not followed.

    Raises
    ------
    ValueError
        For any other path.
    """
    path = Path(path)
    parents = [os.path.realpath(f) for f in folders().values()]
    if path.name.startswith(".") or path.is_symlink() or not path.is_dir() \
            or os.path.realpath(path.parent) not in parents:
        raise ValueError(f"{catalog.shown_path(path)} is not a kept upload")
    shutil.rmtree(path)  # on Linux the fd-based version: a link swapped in meanwhile is not followed
    catalog._read.clear()  # a removed checkpoint leaves the picker's cache of meta.json


def panel() -> None:
    """The Models page's list of kept uploads, each with its size and a Remove button, and the quota's use."""
    st.subheader("Uploads kept on this server")
    if Session.upload_removed.stored:
        st.success(f"Removed **{Session.upload_removed.pop()}**.")
    found, limit = listed(), quota()
    taken = sum(u.size for u in found)
    st.caption(f"{taken / 2**20:,.1f} MB of {limit / 2**20:,.0f} MB (VQVIZ_UPLOAD_QUOTA_MB) taken by "
               f"{len(found)} upload{'s' * (len(found) != 1)}: image folders from the sidebar and checkpoints "
               "from above. An upload that would go over is refused; remove old ones to free space.")
    for upload in found:
        name = catalog.shown_path(upload.path)
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"`{name}` · {upload.kind} · {upload.size / 2**20:,.1f} MB")
        if right.button("Remove", key=Session.upload_remove.key(name), icon=":material/delete:", width="stretch"):
            try:
                remove(upload.path)
            except (OSError, ValueError) as e:
                st.error(f"{name} could not be removed: {getattr(e, 'strerror', None) or e}")
                return
            session.upload_removed = name
            st.rerun()
