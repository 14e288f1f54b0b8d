"""Unpacking an uploaded ``.zip`` safely: capped, zip-slip and zip-bomb safe, and atomic.

Used for checkpoint uploads (:func:`vqviz.checkpoints.install_checkpoint_zip`) and for
image folders (:func:`install_image_folder_zip`). Nothing a zip declares is trusted:

- the upload's size, and the central directory's size and entry count (read from the
  end record) are capped before :class:`zipfile.ZipFile` parses any entry;
- paths that are absolute, name a drive, climb out with ``..``, or are links are refused,
  and so are encrypted entries and unknown compressions;
- each entry is read with a cap on what it unpacks to (the sizes in the zip are not
  believed), against one budget for the whole archive;
- the files go to a temporary folder beside the destination, are checked there, and only
  then is the folder renamed into place (atomic), under a lock on the destination, so a
  refused upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import shutil
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from .data.folder import IMAGE_SUFFIXES  # the files of an image-folder upload that are unpacked
from .errors import DataError, VqvizError
from .utils import file_mode

COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
#: What reading a damaged or odd entry raises, by decompressor; all mean "damaged upload".
DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError,
           ValueError)
#: Temporary folders of installs start with this; those of killed installs are swept after an hour.
TMP_PREFIX = ".upload-"

#: Limits of an image-folder upload.
MAX_IMAGES_ZIP_BYTES = 200 * 2**20
MAX_IMAGES_UNPACKED_BYTES = 1024 * 2**20
MAX_IMAGES_ENTRIES = 100_000


def check_blob(blob: bytes, *, max_bytes: int, max_entries: int, max_directory: int,
               error: type[VqvizError], not_zip_hint: str = "", entries_hint: str = "",
               directory_hint: str = "") -> None:
    """Refuse an upload over ``max_bytes``, one that is not a zip, and one whose central directory
    (read from its end record, before any entry is parsed) has over ``max_entries`` entries or
    ``max_directory`` bytes. The hints end the messages with what the caller expects."""
    if len(blob) > max_bytes:
        raise error(f"the upload is {len(blob) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if blob[:2] != b"PK" or not zipfile.is_zipfile(io.BytesIO(blob)):
        raise error(f"the upload is not a .zip file.{not_zip_hint}")
    damaged = error("the upload is a damaged .zip file: no readable end-of-directory record")
    tail_start = max(0, len(blob) - (22 + 65535))
    if len(blob) >= 22 and blob[-22:-18] == b"PK\x05\x06" and blob[-2:] == b"\0\0":
        pos = len(blob) - 22
    else:
        pos = blob.rfind(b"PK\x05\x06", tail_start)
    if pos < 0 or pos + 22 > len(blob):
        raise damaged
    _, _, _, n_disk, n_total, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", blob[pos : pos + 22])
    if 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):  # zip64: record just before
        loc = pos - 20
        rec = loc - 56
        if rec < 0 or blob[loc : loc + 4] != b"PK\x06\x07" or blob[rec : rec + 4] != b"PK\x06\x06":
            raise damaged
        n_disk, n_total, cd_size = struct.unpack("<QQQ", blob[rec + 24 : rec + 48])
    if max(n_disk, n_total) > max_entries:
        raise error(f"the zip holds {max(n_disk, n_total):,} entries; {entries_hint or 'the limit is'} "
                    f"(at most {max_entries:,})")
    if cd_size > max_directory:
        raise error(f"the zip's directory is {cd_size:,} bytes; {directory_hint or 'too large'} "
                    f"(at most {max_directory:,})")


def safe_path(info: zipfile.ZipInfo, error: type[VqvizError]) -> PurePosixPath:
    """The entry's path, refused if it is absolute, names a drive, climbs out with ``..``, or is a link."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise error(f"the zip holds an unsafe path {info.filename[:100]!r}; refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise error(f"the zip holds a symbolic link {info.filename[:100]!r}; refused")
    return path


def check_readable(info: zipfile.ZipInfo, name: str, error: type[VqvizError]) -> None:
    """Refuse an encrypted entry, or one in a compression vqviz does not read."""
    if info.flag_bits & 0x1:
        raise error(f"the zip's {name} is encrypted; upload an unencrypted zip")
    if info.compress_type not in COMPRESSIONS:
        raise error(f"the zip's {name} uses compression method {info.compress_type}, "
                    "which vqviz does not read; use deflate or none")


def extract_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int,
                   limit: int, error: type[VqvizError]) -> int:
    """Unpack one entry to ``target``, reading at most ``budget`` bytes (``limit``: the whole
    archive's, for the message); returns the bytes written."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as src, open(target, "wb") as dst:
        while True:
            try:
                chunk = src.read(1 << 20)
            except (*DAMAGED, OSError) as e:  # OSError here is bz2's "invalid data stream"
                raise error(f"the upload is a damaged .zip file: its {PurePosixPath(info.filename).name} "
                            f"cannot be unpacked ({type(e).__name__}: {str(e)[:120]})") from None
            if not chunk:
                break
            written += len(chunk)
            if written > budget:
                raise error(f"the zip unpacks to more than {limit / 2**20:.0f} MB; refused")
            dst.write(chunk)
    os.chmod(target, file_mode())
    return written


def install(blob: bytes, dest_root: str | Path, name: str, *,
            select: Callable[[zipfile.ZipFile], list[tuple[zipfile.ZipInfo, str]]],
            check: Callable[[Path], None], max_unpacked: int, error: type[VqvizError],
            free_space: Callable[[Path, int], None] | None = None) -> Path:
    """Unpack the entries ``select(archive)`` picks (each with its relative target path) into a
    temporary folder beside ``dest_root``, run ``check(folder)`` on it, and rename it into place as
    ``dest_root/<name>`` (``<name>-2``, ... if taken). ``blob`` must have passed :func:`check_blob`.
    A refused upload, or a full disk, leaves nothing behind."""
    dest_root = Path(dest_root)
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            wanted = select(archive)
            dest_root.mkdir(parents=True, exist_ok=True)
            sweep(dest_root)
            if free_space is not None:
                free_space(dest_root, min(sum(info.file_size for info, _ in wanted), max_unpacked))
            tmp = Path(tempfile.mkdtemp(dir=dest_root, prefix=TMP_PREFIX))
            try:
                budget = max_unpacked
                for info, target in wanted:
                    budget -= extract_capped(archive, info, tmp / target, budget, max_unpacked, error)
                try:
                    check(tmp)
                except VqvizError as e:  # name the upload, never the temporary folder
                    raise type(e)(str(e).replace(str(tmp), name).replace(tmp.name, name)) from None
                for folder in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
                    os.chmod(folder, file_mode() | 0o111)
                with folder_lock(dest_root):
                    return rename_free(tmp, dest_root, safe_name(name), error)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except DAMAGED as e:
        raise error(f"the upload is a damaged or unsupported .zip file: {str(e)[:200]}") from None
    except OSError as e:  # a full disk, a read-only folder
        raise error(f"cannot install the upload: {e.strerror or e}") from None


@contextlib.contextmanager
def folder_lock(root: Path):
    """Hold an exclusive lock on the folder ``root`` itself (flock on its descriptor).

    Installs into one folder take it, so that two never pick one name; it leaves no lock
    file behind. Without ``fcntl`` (Windows) the atomic rename alone, which refuses a
    non-empty folder, keeps installs apart.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def sweep(root: Path, age: float = 3600.0) -> None:
    """Remove temporary install folders older than ``age`` seconds: left by a killed install."""
    now = time.time()
    for entry in os.scandir(root):
        try:
            if entry.name.startswith(TMP_PREFIX) and entry.is_dir(follow_symlinks=False) \
                    and now - entry.stat(follow_symlinks=False).st_mtime > age:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


def safe_name(name: str) -> str:
    """A folder name from an upload's file name: ``my model.zip`` -> ``my-model``."""
    stem = name[:-4] if name.lower().endswith(".zip") else name
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip(".-") or "upload"
    return safe[:80]


def rename_free(tmp: Path, root: Path, name: str, error: type[VqvizError]) -> Path:
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
    raise error(f"too many folders named {name} in {root}")


# ----- an image folder -----
def image_members(archive: zipfile.ZipFile, suffixes: set[str]) -> tuple[list[tuple[zipfile.ZipInfo, str]],
                                                                          list[str]]:
    """The image files of an uploaded folder, each with its path below the folder's top (a single
    top folder, as zipping a folder makes, is dropped), and the other files, which are skipped."""
    keep, skipped = [], []
    for info in archive.infolist():
        path = safe_path(info, DataError)
        # an entry with no name is nothing to unpack (and zipfile's is_dir() fails on it)
        if not path.parts or info.filename.endswith("/") or "__MACOSX" in path.parts \
                or any(p.startswith(".") for p in path.parts):
            continue
        if path.suffix.lower() in suffixes:
            check_readable(info, path.name, DataError)
            keep.append((info, path))
        else:
            skipped.append(str(path))
    tops = {p.parts[0] for _, p in keep if len(p.parts) > 1}
    strip = len(tops) == 1 and all(len(p.parts) > 2 for _, p in keep)  # one folder holding the classes
    return [(info, str(PurePosixPath(*p.parts[1:]) if strip else p)) for info, p in keep], skipped


def install_image_folder_zip(blob: bytes, dest_root: str | Path, name: str, check: Callable[[Path], None],
                             suffixes: set[str] = IMAGE_SUFFIXES, max_bytes: int = MAX_IMAGES_ZIP_BYTES,
                             max_unpacked: int = MAX_IMAGES_UNPACKED_BYTES) -> tuple[Path, list[str]]:
    """Install an uploaded ``.zip`` of an image folder (one sub-folder per class) under
    ``dest_root``; only files with an image suffix are unpacked, and ``check(folder)`` must accept
    the result (e.g. load it) before it is renamed into place.

    Nothing here opens an image: ``check`` does, and loading the folder with
    :func:`vqviz.data.load` opens each file only as one of :data:`vqviz.imageio.ALLOWED_FORMATS`,
    whatever its name, and warns of those it refused (an EPS named ``.png``, a damaged PNG).

    Returns
    -------
    The installed folder, and the paths in the zip of the files skipped because they are not
    images; :func:`vqviz.data.folder.skipped_notes` words them as a folder's load words its own.

    Raises
    ------
    DataError
        An upload that is not a zip, too large, unsafe, damaged, or holds no images.
    """
    check_blob(blob, max_bytes=max_bytes, max_entries=MAX_IMAGES_ENTRIES, max_directory=MAX_IMAGES_ENTRIES * 1024,
               error=DataError, not_zip_hint=" Zip a folder with one sub-folder of images per class, and upload that.")
    skipped: list[str] = []

    def select(archive):
        keep, other = image_members(archive, suffixes)
        skipped.extend(other)
        if not keep:
            raise DataError("the zip holds no images" + (f" (only {len(other)} other files)" if other else "")
                            + "; expected one sub-folder of images per class, e.g. cat/1.png")
        return keep

    folder = install(blob, dest_root, name, select=select, check=check, max_unpacked=max_unpacked,
                     error=DataError)
    return folder, skipped
