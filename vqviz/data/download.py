"""Downloads of registered data sets into the cache: mirrors, SHA-256 sums, caps, untar.

Written by hand rather than with ``pooch``, for reasons measured against pooch 1.9:

- no cap on size: served a body that never ends with ``Content-Length: 10**12``, for a
  file known to have 1 MB, ``pooch.HTTPDownloader`` had written 513 MB after 5 s and
  was still writing; here a larger ``Content-Length`` is refused before the body and a
  longer body is cut off at the known size (:data:`SIZES`);
- no deadline: ``requests``' timeout bounds each read, so a body trickling one byte
  every 10 ms never ends; here the whole file has :data:`DOWNLOAD_DEADLINE`;
- an unchecked untar: on Python 3.11, which vqviz supports, ``pooch.Untar`` extracts
  with no member filter, so ``../`` members escape; :func:`_extract` refuses them;
- killed downloads leave ``tmpXXXXXXXX`` files that pooch never removes;
  :func:`_sweep_stale` removes this module's own after :data:`STALE_SECONDS`.

A custom pooch downloader restoring the caps would be the loop of :func:`_download`,
and the untar and the sweep would stay here, leaving pooch only the checksum: four
lines of this module, not worth a dependency.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from vqviz.errors import DataError
from vqviz.utils import atomic_path

from . import paths

TIMEOUT = 30.0  # seconds without data before a download is given up
MAX_DOWNLOAD_BYTES = 256 * 2**20  # a file whose size is not in SIZES
DOWNLOAD_DEADLINE = 3600.0  # seconds for one whole file, however slowly it trickles in
#: A download temporary or extraction folder older than this was left by a killed process.
STALE_SECONDS = 3600.0
# Filled by register_dataset, one entry per data set; tests replace entries.
MIRRORS: dict[str, tuple[str, ...]] = {}  # base URLs; $VQVIZ_MIRROR replaces them
CHECKSUMS: dict[str, dict[str, str]] = {}  # SHA-256 of each downloaded file
SIZES: dict[str, dict[str, int]] = {}  # bytes of each downloaded file: a longer body is cut off

Progress = Callable[[int, int], None]


class NetError(Exception):
    """A download could not be made (network, HTTP); the caller says where to get the files."""


def fetch(name: str, files: tuple[str, ...], archive: str | None, subdir: str | None,
          progress: Progress | None) -> Path:
    """Download the ``files`` of data set ``name`` into the cache; return the folder holding them.

    Files already in the cache are kept (an interrupted download resumes). An ``archive`` is
    unpacked, and the folder ``subdir`` inside it is returned.
    """
    dest = paths.cache_dir() / name
    _sweep_stale(dest, files)
    mirror = os.environ.get("VQVIZ_MIRROR")
    mirrors = (mirror,) if mirror else MIRRORS[name]
    for filename in files:
        if filename == archive or not (dest / filename).is_file():
            _download(mirrors, filename, dest, CHECKSUMS[name].get(filename), progress,
                      SIZES.get(name, {}).get(filename))
    if archive:
        _extract(dest / archive, dest, subdir)
        return dest / subdir
    return dest


def _sweep_stale(dest: Path, files: tuple[str, ...]) -> None:
    """Remove what killed downloads of ``files`` left in ``dest``: only their own temporaries."""
    now = time.time()
    try:
        for entry in os.scandir(dest):
            mine = (entry.name.startswith(".") and entry.name.endswith(".tmp")
                    and entry.name[1:].split(".tmp")[0].rsplit(".", 1)[0] in files) or \
                entry.name.startswith(".extract-")
            if mine and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
    except OSError:
        pass


def _download(mirrors, filename: str, dest: Path, sha256: str | None, progress, size: int | None = None) -> None:
    """Fetch ``filename`` from the first mirror that has it, into ``dest``, atomically.

    At most ``size`` bytes (the known size, else :data:`MAX_DOWNLOAD_BYTES`) are
    accepted: a larger ``Content-Length`` is refused before the body, and a body
    that runs longer is cut off. Each read waits at most :data:`TIMEOUT` seconds,
    and the whole file at most :data:`DOWNLOAD_DEADLINE`.
    """
    if sha256 is None:
        raise DataError(f"{filename}: no SHA-256 checksum known; refusing to download it")
    cap = size if size is not None else MAX_DOWNLOAD_BYTES
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            with atomic_path(dest / filename) as tmp:  # a failure below removes tmp
                digest, done = hashlib.sha256(), 0
                deadline = time.monotonic() + DOWNLOAD_DEADLINE
                # A fresh opener per call, so proxy variables are read now, not at first use.
                with urllib.request.build_opener().open(url, timeout=TIMEOUT) as response, \
                        open(tmp, "wb") as out:
                    total = int(response.headers.get("Content-Length") or 0)
                    if total > cap:
                        raise NetError(f"{url}: the server announces {total:,} bytes; {filename} has "
                                       f"{cap:,}")
                    while chunk := response.read1(1 << 20):  # read1: returns what has arrived
                        done += len(chunk)
                        if done > cap:
                            raise NetError(f"{url}: the body runs past the {cap:,} bytes of {filename}; "
                                           "cut off")
                        if time.monotonic() > deadline:
                            raise NetError(f"{url}: not finished after {DOWNLOAD_DEADLINE:.0f} s "
                                           f"({done:,} of {total or cap:,} bytes); given up")
                        out.write(chunk)
                        digest.update(chunk)
                        if progress is not None:
                            progress(done, total)
                if digest.hexdigest() != sha256:
                    raise DataError(f"{url}: SHA-256 mismatch for {filename}: expected {sha256}, "
                                    f"got {digest.hexdigest()}; the file was discarded")
            return
        except NetError as e:
            errors.append(str(e))
        except (OSError, ValueError, http.client.HTTPException) as e:
            errors.append(f"{url}: {e}")
    raise NetError("; ".join(errors))


def _extract(tar_path: Path, dest: Path, subdir: str) -> None:
    """Unpack ``subdir`` of the tar.gz at ``tar_path`` into ``dest``, refusing unsafe members."""
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                if Path(m.name).is_absolute() or ".." in Path(m.name).parts \
                        or not (m.isfile() or m.isdir()):
                    raise DataError(f"{tar_path}: refusing to extract unsafe member {m.name!r}")
            # filter= exists from Python 3.11.4; the checks above suffice without it.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **safe)
        if not (tmp / subdir).is_dir():
            raise DataError(f"{tar_path}: archive holds no {subdir}/ folder")
        shutil.rmtree(dest / subdir, ignore_errors=True)  # an incomplete earlier copy
        os.replace(tmp / subdir, dest / subdir)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise DataError(f"{tar_path}: corrupt archive ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tar_path.unlink()
