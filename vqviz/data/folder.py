"""``folder:<path>``: your own images, one sub-folder per class.

``train/`` and ``test/`` sub-folders, if both are present, are the splits; otherwise a
seeded stratified 80/20 split is made. Images are converted to 28x28 grey by default.
Only regular files with an image suffix are opened, and only as :data:`vqviz.imageio.ALLOWED_FORMATS`
whatever their name; links are not followed (the named folder itself may be one); and every
count, size and second is capped before or while anything is decoded.
"""

from __future__ import annotations

import os
import stat
import time
import warnings
from pathlib import Path

import numpy as np

from vqviz.errors import DataError
from vqviz.imageio import UnreadableImage, open_image
from vqviz.utils import printable

from . import registry
from .registry import SPLITS, Dataset, dataset, register_scheme

MAX_IMAGE_PIXELS = 2**24  # one image of a folder (4096 x 4096); PIL's own limit is about 179 M
MAX_FOLDER_FILES = 200_000  # files looked at in a folder data set
MAX_FOLDER_DEPTH = 4  # levels of sub-folders below a class folder
MAX_DATASET_BYTES = 2**31  # the images of one folder split, decoded
MAX_IMAGE_FILE_BYTES = 80 * 2**20  # one file, checked before reading; a 4096 x 4096 RGBA BMP is 64 MiB
MAX_IMAGE_SECONDS = 10.0  # opening or decoding one image (the formats allowed take milliseconds)
MAX_FOLDER_SECONDS = 900.0  # loading one split of a folder, checked between files
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm"}


#: (C, H, W) that a folder's images are converted to unless ``size`` and ``channels`` say otherwise.
DEFAULT_SHAPE = (1, 28, 28)


@register_scheme("folder", shape=DEFAULT_SHAPE)
def load_folder(path: str, split: str, size: tuple[int, int] | None, channels: int | None) -> Dataset:
    """The ``split`` of the image folder at ``path``, as ``size`` (28, 28) with ``channels`` 1 by default."""
    try:
        images, labels, classes, root = _folder(Path(path).expanduser(), split, size or DEFAULT_SHAPE[1:],
                                                channels or DEFAULT_SHAPE[0])
    except OSError as e:  # a name too long, a folder that cannot be listed
        raise DataError(f"folder:{path}"[:200] + f": cannot read the folder ({e.strerror or e})") from None
    return dataset(f"folder:{root}", split, images, labels, classes)


def skipped_notes(not_images: list[str], refused: list[str]) -> list[str]:
    """The notes on skipped files, worded alike for an image folder and an uploaded zip of one.

    Parameters
    ----------
    not_images : the files without an image suffix.
    refused : the files with one that were not read, each as ``"path: why"``.
    """
    def some(items: list[str], sep: str) -> str:
        return sep.join(items[:5]) + (" ..." if len(items) > 5 else "")

    n, m = len(not_images), len(refused)
    return ([f"skipped {n} {'file that is not an image' if n == 1 else 'files that are not images'}: "
             f"{some(not_images, ', ')}"] if n else []) \
        + ([f"skipped {m} unreadable or refused file{'s' if m != 1 else ''}: {some(refused, '; ')}"] if m else [])


class _Clock:
    """The time budgets: :data:`MAX_IMAGE_SECONDS` a file, :data:`MAX_FOLDER_SECONDS` in all.

    Python cannot stop Pillow mid-decode, so a file is measured after it; the formats
    allowed and the pixel and byte caps are what keep one decode short.
    """

    def __init__(self, root: Path):
        self.root, self.start = root, time.monotonic()

    def check(self, path: Path | None = None, since: float | None = None) -> None:
        now = time.monotonic()
        if since is not None and now - since > MAX_IMAGE_SECONDS:
            raise DataError(f"{path}: took {now - since:.2g} s to read; the limit is {MAX_IMAGE_SECONDS:g} s "
                            "an image (vqviz.data.MAX_IMAGE_SECONDS)")
        if now - self.start > MAX_FOLDER_SECONDS:
            raise DataError(f"{self.root}: loading took longer than {MAX_FOLDER_SECONDS:g} s "
                            "(vqviz.data.MAX_FOLDER_SECONDS); use fewer or smaller images")


def _folder(root: Path, split: str, size: tuple[int, int], channels: int):
    from PIL import Image
    from sklearn.model_selection import train_test_split

    if not root.is_dir():  # the folder named may be a link (e.g. /data); nothing inside it is followed
        raise DataError(f"{root}: no such folder")
    clock = _Clock(root)
    presplit = _is_dir(root / "train") and _is_dir(root / "test")
    bases = [root / "train", root / "test"] if presplit else [root]
    entries = [e for b in bases for e in _entries(b) if not e.name.startswith(".")]
    classes = sorted({e.name for e in entries if e.is_dir(follow_symlinks=False)})
    # a link where a class folder would be is named, as a link further down is
    refused = [f"{e.path}: a link; links are not followed" for e in entries if e.is_symlink()]
    if not classes:
        what = "is empty" if not any(root.iterdir()) else "has no class sub-folders"
        raise DataError(f"{root}: folder {what}; expected one sub-folder of images per class, "
                        f"e.g. {root / 'cat' / '1.png'}")
    if len(classes) > registry.MAX_CLASSES:
        raise DataError(f"{root}: {len(classes)} class sub-folders; the limit is {registry.MAX_CLASSES}")
    files, labels, not_images, seen = [], [], [], [0]
    for label, cls in enumerate(classes):
        for path in _image_files(root / split / cls if presplit else root / cls, root, seen, not_images, refused,
                                 clock):
            started = time.monotonic()
            try:  # reads the header only; decoding waits until the split is known
                _open_image(path).close()
            except UnreadableImage as e:  # another format, damaged: skipped and named, like a non-image
                refused.append(str(e))
                continue
            finally:
                clock.check(path, started)
            files.append(path)
            labels.append(label)
    for note in skipped_notes([str(p) for p in not_images], list(dict.fromkeys(refused))):
        warnings.warn(printable(f"{root}: {note}"), stacklevel=4)  # a name that is not UTF-8, escaped
    if not files:
        raise DataError(f"{root}: no images found in the class sub-folders")
    if not presplit:
        idx = np.arange(len(files))
        try:  # stratified when every class has at least two images
            parts = train_test_split(idx, test_size=0.2, random_state=0, stratify=labels)
        except ValueError:
            try:
                parts = train_test_split(idx, test_size=0.2, random_state=0)
            except ValueError:
                raise DataError(f"{root}: only {len(files)} image(s); a train/test split "
                                "needs at least 2") from None
        idx = np.sort(parts[SPLITS.index(split)])
        files, labels = [files[i] for i in idx], [labels[i] for i in idx]
    needed = len(files) * size[0] * size[1] * channels * 5  # uint8 while decoding, then float32
    if needed > MAX_DATASET_BYTES:
        raise DataError(f"{root}: {len(files):,} images of {size[0]} x {size[1]} x {channels} would take "
                        f"{needed / 2**30:.1f} GiB; the limit is {MAX_DATASET_BYTES / 2**30:.0f} GiB "
                        "(vqviz.data.MAX_DATASET_BYTES); choose a smaller size")
    images = np.empty((len(files), size[0], size[1], channels), np.uint8)
    for i, path in enumerate(files):
        started = time.monotonic()
        try:
            with _open_image(path) as im, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's notes (a palette's transparency) are no skipped file
                im = im.convert("L" if channels == 1 else "RGB")
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                images[i] = np.asarray(im).reshape(size[0], size[1], channels)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001  PIL's decoders fail with many types
            raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {str(e)[:200]})") from None
        clock.check(path, started)
    # the class names are shown: a folder name that is not UTF-8 is escaped ("caf\\xe9"), not sent as is
    return images.transpose(0, 3, 1, 2) / np.float32(255), labels, [printable(c) for c in classes], root.resolve()


def _is_dir(path: Path) -> bool:
    """A folder itself, not a link to one (``lstat``: a link loop cannot hang it)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of the folder ``folder`` (checked by the caller), by name."""
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _image_files(top: Path, root: Path, seen: list[int], not_images: list[Path], refused: list[str],
                 clock: _Clock) -> list[Path]:
    """Regular files with an image suffix under ``top``, at most :data:`MAX_FOLDER_DEPTH` folders
    down. Files without an image suffix go to ``not_images``; links, and image-named entries that
    are not regular files (a FIFO would block, a device may act on being opened), go to ``refused``.

    Nothing is opened here and no link is followed: entries are told apart by ``lstat``.
    ``seen[0]`` counts entries over every class; past :data:`MAX_FOLDER_FILES` it is an error.
    """
    if os.path.islink(top):
        refused.append(f"{top}: a link; links are not followed")
    if not _is_dir(top):  # absent from this split, a link, a file or a FIFO where a folder was expected
        return []
    found, stack = [], [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        for entry in _entries(folder):
            if entry.name.startswith("."):
                continue
            seen[0] += 1
            if seen[0] > MAX_FOLDER_FILES:
                raise DataError(f"{root}: more than {MAX_FOLDER_FILES:,} files; the limit is "
                                "vqviz.data.MAX_FOLDER_FILES")
            path = Path(entry.path)
            if entry.is_symlink():
                refused.append(f"{path}: a link; links are not followed")
            elif entry.is_dir(follow_symlinks=False):
                if depth < MAX_FOLDER_DEPTH:
                    stack.append((path, depth + 1))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                not_images.append(path)
            elif not entry.is_file(follow_symlinks=False):
                refused.append(f"{path}: not a regular file")
            else:
                found.append(path)
        clock.check()
    return sorted(found)


def _open_image(path: Path):
    """:func:`vqviz.imageio.open_image` of a folder's file, with its caps on pixels and bytes."""
    return open_image(path, str(path), max_pixels=MAX_IMAGE_PIXELS, max_bytes=MAX_IMAGE_FILE_BYTES,
                      setting="vqviz.data.MAX_IMAGE_PIXELS")
