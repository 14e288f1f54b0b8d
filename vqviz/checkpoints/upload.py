"""Installing an uploaded ``.zip`` of a checkpoint folder: only its ``meta.json`` and weights are
extracted, with the safeguards of :mod:`vqviz.archive`, and the folder is loaded before it is
renamed into place."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from .. import archive
from ..errors import CheckpointError
from ..schema import META, WEIGHTS_NAME
from .loading import PICKLE_SUFFIXES, label, load
from .saving import check_space

#: Caps on an upload; settings of :mod:`vqviz.checkpoints`, so a deployment can change them.
MAX_ZIP_BYTES = 200 * 2**20
MAX_UNPACKED_BYTES = 512 * 2**20
MAX_ENTRIES = 64
MAX_CENTRAL_DIRECTORY = 256 * 2**10  # bytes; 64 entries with long names fit in a few KB


def install_checkpoint_zip(blob: bytes, dest_root: str | Path, name: str = "upload",
                           max_bytes: int = MAX_ZIP_BYTES, max_unpacked: int = MAX_UNPACKED_BYTES) -> Path:
    """Check an uploaded ``.zip`` of a checkpoint folder and install it under ``dest_root``.

    The zip must hold one ``meta.json`` and its ``weights-*.safetensors``, at its top
    level or in one folder. Only those two files are extracted, with the safeguards of
    :mod:`vqviz.archive` (caps on size, entries and what each entry unpacks to; no unsafe
    paths, links, encryption or unknown compression). They go to a temporary folder beside
    the destination, are loaded with :func:`vqviz.checkpoints.load`, and only then is the
    folder renamed into place, under the destination's lock, so a refused upload leaves
    nothing behind.

    Returns
    -------
    The installed checkpoint folder, ``dest_root/<name>`` (``<name>-2``, ... if taken).

    Raises
    ------
    CheckpointError
        For anything but a vqviz checkpoint, with the reason; also a full disk.
    """
    head = " It looks like a pickle, which vqviz never loads." if blob[:1] == b"\x80" else ""
    archive.check_blob(blob, max_bytes=max_bytes, max_entries=MAX_ENTRIES, max_directory=MAX_CENTRAL_DIRECTORY,
                       error=CheckpointError, entries_hint="a checkpoint has 2",
                       directory_hint="a checkpoint's takes a few hundred",
                       not_zip_hint=" Zip a checkpoint folder (meta.json and weights-*.safetensors) and upload "
                                    f"that.{head}")

    def check(tmp: Path) -> None:
        try:
            load(tmp)  # refuses anything that does not rebuild
        except CheckpointError as e:
            raise CheckpointError(str(e).replace(label(tmp), name)) from None

    return archive.install(blob, dest_root, name, select=_checkpoint_members, check=check,
                           max_unpacked=max_unpacked, error=CheckpointError,
                           free_space=lambda root, n: check_space(root, n, "install the upload"))


def _checkpoint_members(zipped: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    infos = zipped.infolist()
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"the zip holds {len(infos)} entries; a checkpoint has 2 (at most {MAX_ENTRIES})")
    metas = []
    for info in infos:
        path = archive.safe_path(info, CheckpointError)
        if path.suffix.lower() in PICKLE_SUFFIXES or path.name == "data.pkl":
            raise CheckpointError(
                f"the zip holds {info.filename[:100]!r}, a pickle or torch.save file. vqviz never unpickles "
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
                path.name == META or WEIGHTS_NAME.fullmatch(path.name)):
            archive.check_readable(info, path.name, CheckpointError)
            out.append((info, path.name))
    return out
