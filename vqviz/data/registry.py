"""The registry of data sets, the search for their files, and :func:`load`.

A data set is one module that decorates its reader with :func:`register_dataset`;
this module imports none of them (``vqviz/data/__init__.py`` does), so they import
it without a loop. A reader takes the folder that holds the files (None for a data
set that needs none) and a split, and returns images ``(N, C, H, W)`` in [0, 1],
integer labels and the class names; the registration also gives the images' shape, so
that it is known without reading a file (:func:`shape_of`: which checkpoints fit the data
set). Finding the folder, downloading into the cache, caching in memory, resizing and
making the arrays read-only happen here, once for every data set.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from vqviz.errors import DataError
from vqviz.utils import read_regular

from . import download as downloader
from . import paths

SPLITS = ("train", "test")
#: The registered names, in registration order; ``folder:<path>`` and other schemes are not listed.
NAMES: tuple[str, ...] = ()
MAX_CLASSES = 1000  # class names of a folder data set or a CIFAR meta file

Progress = Callable[[int, int], None]
#: images (N, C, H, W) float32 in [0, 1], labels (N,) integers, class names
Arrays = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split of one data set.

    Attributes
    ----------
    name : str
        A registered name (``"digits"``, ``"mnist"``, ...) or ``"folder:<path>"``.
    split : str
        ``"train"`` or ``"test"``.
    images : np.ndarray
        (N, C, H, W) float32 in [0, 1], read-only.
    labels : np.ndarray
        (N,) int64, read-only; ``classes[labels[i]]`` names image ``i``.
    classes : tuple of str
        Class names; the index is the label.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes, including any without images in this split."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Source:
    """How one registered data set is found, fetched and read (see :func:`register_dataset`)."""

    name: str
    read: Callable[[Path | None, str], Arrays]
    shape: tuple[int, int, int]
    files: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ("",)
    subdir: str | None = None
    archive: str | None = None
    downloads: tuple[str, ...] = ()
    provide: str = ""
    hint: str = ""

    def locate(self, folder: Path, base: str) -> Path | None:
        """``folder/base`` with the first of :attr:`suffixes` that names a file, else None."""
        for suffix in self.suffixes:
            if (folder / (base + suffix)).is_file():
                return folder / (base + suffix)
        return None


class Scheme(NamedTuple):
    """How ``"<prefix>:<path>"`` names are loaded (see :func:`register_scheme`)."""

    load: Callable[..., Dataset]
    shape: tuple[int, int, int]
    shape_of: Callable[[str], tuple[int, int, int] | None] | None = None


_SOURCES: dict[str, Source] = {}
_SCHEMES: dict[str, Scheme] = {}


def _check_shape(shape, what: str) -> tuple[int, int, int]:
    """``shape`` as (C, H, W) of positive ints, or a ValueError that says the registration needs it."""
    if shape is None:
        raise ValueError(f"{what} is registered without its image shape: give shape=(channels, height, width), "
                         "which tells which checkpoints fit it without reading its files")
    if np.ndim(shape) != 1 or len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ValueError(f"{what}: shape must be (channels, height, width) of positive ints, got {shape!r}")
    return tuple(shape)


def register_dataset(name: str, *, shape: tuple[int, int, int] | None = None, files: tuple[str, ...] = (),
                     suffixes: tuple[str, ...] = ("",), subdir: str | None = None, mirrors: tuple[str, ...] = (),
                     checksums: dict[str, str] | None = None, sizes: dict[str, int] | None = None,
                     archive: str | None = None, provide: str = "", hint: str = ""):
    """Register the decorated ``read(folder, split) -> (images, labels, classes)`` as ``name``.

    Parameters
    ----------
    name : str
        The name :func:`load` takes.
    shape : (int, int, int)
        (C, H, W) of the images ``read`` returns; required (:func:`shape_of`).
    files : tuple of str
        The files a folder must hold for ``read``; empty for a data set that needs no files
        (``read`` then gets ``folder=None``).
    suffixes : tuple of str
        Each file may be named ``file + suffix``, tried in this order (``(".gz", "")``: gzipped or not).
    subdir : str, optional
        A folder, inside each searched folder, that may hold the files (tried first).
    mirrors : tuple of str
        Base URLs to download from; ``$VQVIZ_MIRROR`` replaces them.
    checksums, sizes : dict, optional
        SHA-256 and size in bytes of each file to download, by file name; a data set with no
        checksums is never downloaded.
    archive : str, optional
        The download that is a tar.gz holding ``subdir``, unpacked into the cache.
    provide, hint : str
        How a missing data set's message names the files, and more ways to get them.
    """
    if name in _SOURCES or ":" in name:
        raise ValueError(f"data set {name!r} is already registered or holds ':'")
    shape = _check_shape(shape, f"data set {name!r}")

    def decorate(read):
        global NAMES
        _SOURCES[name] = Source(name, read, shape, tuple(files), tuple(suffixes), subdir, archive,
                                tuple(checksums or ()), provide, hint)
        if checksums:
            downloader.MIRRORS[name] = tuple(mirrors)
            downloader.CHECKSUMS[name] = dict(checksums)
            downloader.SIZES[name] = dict(sizes or {})
        NAMES = (*NAMES, name)
        return read

    return decorate


def register_scheme(prefix: str, *, shape: tuple[int, int, int] | None = None,
                    shape_of: Callable[[str], tuple[int, int, int] | None] | None = None):
    """Register the decorated ``load(path, split, size, channels) -> Dataset`` for ``"<prefix>:<path>"``;
    ``shape``, required, is (C, H, W) of the images it gives by default (no ``size``, no ``channels``).
    ``shape_of(path)``, where the shape depends on the file, answers :func:`shape_of` instead (quickly,
    and None where the file cannot be read)."""
    shape = _check_shape(shape, f"the scheme {prefix!r}")

    def decorate(loader):
        _SCHEMES[prefix] = Scheme(loader, shape, shape_of)
        return loader

    return decorate


def shape_of(name: str) -> tuple[int, int, int] | None:
    """(C, H, W) of the images :func:`load` gives for ``name`` by default (no ``size``, no ``channels``),
    from its registration, so known without reading a file; None for a name nothing registered."""
    prefix, colon, rest = name.partition(":")
    if colon and prefix in _SCHEMES:
        scheme = _SCHEMES[prefix]
        return scheme.shape_of(rest) if scheme.shape_of is not None else scheme.shape
    source = _SOURCES.get(name)
    return source.shape if source is not None else None


def load(name: str = "digits", split: str = "train", data_dir: str | os.PathLike | None = None, *,
         download: bool = True, size: tuple[int, int] | None = None, channels: int | None = None,
         progress: Progress | None = None) -> Dataset:
    """Load one split of a data set, downloading it into the cache if needed.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`, or ``"folder:<path>"`` for one sub-folder of images per class.
    split : {"train", "test"}
    data_dir : path, optional
        Folder holding the files, or a parent holding ``<name>/``; searched first.
    download : bool
        Fetch missing files from the mirror into the cache.
    size : (int, int), optional
        Resize images to (H, W); folders default to (28, 28), the others keep theirs.
    channels : {1, 3}, optional
        Convert to grayscale or RGB; folders default to 1, the others keep theirs.
    progress : callable, optional
        Called as ``progress(done_bytes, total_bytes)`` while each file downloads;
        ``total_bytes`` is 0 when the server does not say.

    Returns
    -------
    Dataset
        Read-only arrays; decoded data sets are cached in memory, so copy before changing.

    Raises
    ------
    DataError
        Unknown name or split, files missing or malformed, or a download failing its checksum.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if size is not None and (np.ndim(size) != 1 or len(size) != 2 or min(size) < 1 or max(size) > 4096):
        raise DataError(f"size must be (height, width) of ints in 1..4096, got {size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    size = None if size is None else (int(size[0]), int(size[1]))
    prefix, colon, rest = name.partition(":")
    if colon and prefix in _SCHEMES:  # not cached: the user may change the files between calls
        return _SCHEMES[prefix].load(rest, split, size, channels)
    source = _source(name)
    folder = ""
    if source.files:
        found = find_dir(name, data_dir) or _fetch(source, data_dir, download, progress)
        folder = str(found.resolve())
    return _load_cached(name, split, folder, size, channels)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders that :func:`find_dir` tries for ``name``, in order."""
    source = _source(name)
    bases = []
    if data_dir is not None:
        bases += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    bases += [p / name for p in paths.env_data_dirs()]
    bases += [paths.SYSTEM_DIR / name, paths.cache_dir() / name]
    if source.subdir:
        return [p for base in bases for p in (base / source.subdir, base)]
    return bases


def find_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """First folder of :func:`search_dirs` holding every file of ``name``, else None.

    A data set that needs no files (``"digits"``) gives None; ``"folder:<path>"`` gives the
    path if it exists.
    """
    prefix, colon, rest = name.partition(":")
    if colon and prefix in _SCHEMES:
        path = Path(rest).expanduser()
        return path if path.is_dir() else None
    source = _source(name)
    if not source.files:
        return None
    for folder in search_dirs(name, data_dir):
        if all(source.locate(folder, f) for f in source.files):
            return folder
    return None


def cache_dir() -> Path:
    """Where downloads go (see :func:`vqviz.data.paths.cache_dir`)."""
    return paths.cache_dir()


def scaled(images: np.ndarray, path: Path) -> np.ndarray:
    """Pixels as float32 in [0, 1]: bytes are divided by 255, floats must already lie in [0, 1]."""
    if images.dtype == np.uint8:
        out = images.astype(np.float32)
        out /= 255  # in place: a new array here costs 4x the time on MNIST
        return out
    if images.dtype.kind == "f":
        out = images.astype(np.float32)
        if not np.isfinite(out).all():
            raise DataError(f"{path}: pixels must be finite numbers; found NaN or infinity")
        if out.min() < 0 or out.max() > 1:
            raise DataError(f"{path}: float pixels must lie in [0, 1], found {out.min():.4g}..{out.max():.4g}")
        return out
    low, high = images.min(), images.max()
    if low < 0 or high > 255:
        raise DataError(f"{path}: integer pixels must lie in 0..255, found {low}..{high}")
    out = images.astype(np.float32)
    out /= 255
    return out


def read_capped(path: Path, cap: int, setting: str, slack: int = 0) -> bytes:
    """The bytes of the regular file ``path``, refused if larger than ``cap + slack``.

    Read by :func:`vqviz.utils.read_regular` (no blocking open, type and size checked
    first); ``setting`` names the cap in the message.
    """
    try:
        return read_regular(path, cap + slack, error=DataError, what=str(path), note=f" (vqviz.data.{setting})")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def _source(name: str) -> Source:
    try:
        return _SOURCES[name]
    except KeyError:
        schemes = "".join(f" or {p}:<path>" for p in _SCHEMES)
        raise DataError(f"unknown data set {name!r}: expected one of {', '.join(NAMES)}{schemes}") from None


def dataset(name: str, split: str, images, labels, classes) -> Dataset:
    """A :class:`Dataset` of contiguous float32 images and int64 labels, both read-only."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False  # cached: shared between callers
    return Dataset(name, split, images, labels, tuple(classes))


@functools.lru_cache(maxsize=4)  # MNIST train is 188 MB as float32; keep only a few
def _load_cached(name: str, split: str, folder: str, size, channels) -> Dataset:
    images, labels, classes = _SOURCES[name].read(Path(folder) if folder else None, split)
    return dataset(name, split, _convert(images, size, channels), labels, classes)


def _convert(images: np.ndarray, size, channels) -> np.ndarray:
    if channels is not None and channels != images.shape[1]:
        if channels == 1:  # ITU-R 601-2 luma, the weights of Pillow's "L" mode
            images = np.einsum("c,nchw->nhw", np.float32([0.299, 0.587, 0.114]), images)[:, None]
        else:
            images = np.repeat(images, 3, axis=1)
    if size is not None and size != images.shape[2:]:
        import torch
        import torch.nn.functional as F

        # antialias: plain bilinear aliases badly when shrinking
        images = F.interpolate(torch.tensor(images), size=size, mode="bilinear",
                               antialias=True, align_corners=False).clamp_(0, 1).numpy()
    return images


def _fetch(source: Source, data_dir, allowed: bool, progress: Progress | None) -> Path:
    """Download ``source`` into the cache, or raise a DataError saying where files were looked for."""
    reason = "It has not been downloaded yet." if source.downloads else "vqviz knows no download of it."
    if allowed and source.downloads:
        try:
            return downloader.fetch(source.name, source.downloads, source.archive, source.subdir, progress)
        except downloader.NetError as e:
            reason = f"The download failed: {e}."
    lines = [f"{source.name}: data set not found; looked in:"]
    for folder in search_dirs(source.name, data_dir):
        missing = [f for f in source.files if not source.locate(folder, f)]
        state = ("no such folder" if not folder.is_dir() else "none of the files"
                 if len(missing) == len(source.files) else f"missing {', '.join(missing)}")
        lines.append(f"  {folder} ({state})")
    how = (f"To provide it, put {source.provide or ', '.join(source.files)} in one of these folders, "
           f"or set VQVIZ_DATA to a folder holding {source.name}/{source.hint}")
    raise DataError("\n".join(lines + [reason, how + "."]))
