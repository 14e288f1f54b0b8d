"""Seeds, devices, atomic file writes, capped reads and package settings: the small pieces every
module needs."""

from __future__ import annotations

import contextlib
import os
import random
import stat
import sys
import tempfile
import types
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed python's, numpy's and torch's generators with one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into cuda, then mps, then cpu; pass anything else through.

    Only entry points (the command line, the app, the trainer) call this;
    library code follows the device of the tensors it is given.
    """
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def file_mode() -> int:
    """0644 less the process's umask: the mode of every file vqviz writes."""
    try:  # Linux shows the umask without changing it, which is thread-safe
        with open("/proc/self/status") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o644 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The rename is atomic on POSIX and Windows, so a reader sees either the old
    file or the complete new one, never a partial write. On error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())  # mkstemp makes 0600; written files get 0644 minus the umask
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def to_tensor(array) -> torch.Tensor:
    """numpy array -> tensor, copying only when the array is read-only (cached data sets are)."""
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array)


@contextlib.contextmanager
def open_regular(path: str | os.PathLike, limit: int, *, error: type[Exception], what: str,
                 follow: bool = True, note: str = "", not_regular: str | None = None,
                 too_big: Callable[[int], Exception] | None = None) -> Iterator[BinaryIO]:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes.

    The one way vqviz opens a file that someone else put there (checkpoints, data sets, images,
    cached maps). The open does not block (``O_NONBLOCK``: a FIFO in a file's place
    would wait for a writer forever), and the type and size are read from the open
    descriptor, so a swap after the check changes nothing: a FIFO, a device
    (``/dev/zero`` reads forever), a folder or an oversized file is refused before a
    byte is read.

    Parameters
    ----------
    path : the file.
    limit : the most bytes it may hold.
    error : the exception raised for a file that is not regular or too large.
    what : how messages name the file (``"checkpoint 'x': meta.json"``).
    follow : follow a symbolic link at ``path``; if False, a link fails to open (``O_NOFOLLOW``).
    note : appended to the size message, e.g. the setting that holds the limit.
    not_regular : the message of a file that is not regular, if not "<what> is not a regular file".
    too_big : if given, ``too_big(size)`` is the exception raised for a file of ``size`` bytes
        over ``limit``, in place of ``error``'s "<what> is <size> MB; the limit is <limit> MB".

    Raises
    ------
    OSError
        It cannot be opened (missing; a link where ``follow`` is False; no permission).
    error
        It is not a regular file, or larger than ``limit``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:  # checked on the descriptor, before a file object exists: fdopen itself fails on a folder
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(not_regular or f"{what} is not a regular file")
        if st.st_size > limit:
            if too_big is not None:
                raise too_big(st.st_size)
            raise error(f"{what} is {st.st_size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB{note}")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_regular(path: str | os.PathLike, limit: int, *, error: type[Exception], what: str,
                 follow: bool = True, note: str = "") -> bytes:
    """The bytes of ``path``, opened by :func:`open_regular` (same arguments and errors).

    At most ``limit`` bytes are read, even if the file grows after the check.
    """
    with open_regular(path, limit, error=error, what=what, follow=follow, note=note) as f:
        # read(n) allocates n bytes first: ask for the size the file has, not for the cap
        return f.read(min(limit, os.fstat(f.fileno()).st_size) + 1)[:limit]


def package_settings(package: str, owners: dict[str, types.ModuleType]) -> None:
    """Make each name of ``owners`` a setting of the package ``package``: reading or writing
    ``package.NAME`` reads or writes the module that owns it and applies it, so that one value
    is in force (``vqviz.data.MAX_IMAGE_PIXELS = 2**20`` changes ``vqviz.data.folder``'s).

    The settings are properties (data descriptors) of the package's module class, not
    ``__getattr__`` and ``__setattr__``: tools that save and restore an attribute, such as
    pytest's monkeypatch, then see the setting's value and put it back, rather than deleting it.
    """
    settings = dict(owners)

    def setting(name: str, owner: types.ModuleType) -> property:
        return property(lambda _: getattr(owner, name), lambda _, value: setattr(owner, name, value),
                        doc=f"``{owner.__name__}.{name}``")

    namespace = {name: setting(name, owner) for name, owner in settings.items()}
    namespace["__dir__"] = lambda self: sorted({*self.__dict__, *settings})
    sys.modules[package].__class__ = type("Package", (types.ModuleType,), namespace)


def printable(text: str) -> str:
    """``text`` as a browser or a terminal can be sent it: a file name's bytes that are not UTF-8
    (which Python decodes to lone surrogates) escaped, ``ck-\\xff``; any other text unchanged."""
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
