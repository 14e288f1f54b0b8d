"""``folder:<path>``: your own images, one sub-folder per class.

``train/`` and ``test/`` sub-folders, if both are present, are the splits; otherwise a
seeded stratified 80/20 split is made. Images are converted to 28x28 grey by default.
Only files with an image suffix are opened, links to folders are not followed, and
every count and size is capped before anything is decoded.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np

from vqviz.errors import DataError

from . import registry
from .registry import SPLITS, Dataset, dataset, register_scheme

MAX_IMAGE_PIXELS = 2**24  # one image of a folder (4096 x 4096); PIL's own limit is about 179 M
MAX_FOLDER_FILES = 200_000  # files looked at in a folder data set
MAX_FOLDER_DEPTH = 4  # levels of sub-folders below a class folder
MAX_DATASET_BYTES = 2**31  # the images of one folder split, decoded
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm"}


@register_scheme("folder")
def load_folder(path: str, split: str, size: tuple[int, int] | None, channels: int | None) -> Dataset:
    """The ``split`` of the image folder at ``path``, as ``size`` (28, 28) with ``channels`` 1 by default."""
    try:
        images, labels, classes, root = _folder(Path(path).expanduser(), split, size or (28, 28),
                                                channels or 1)
    except OSError as e:  # a name too long, a folder that cannot be listed
        raise DataError(f"folder:{path}"[:200] + f": cannot read the folder ({e.strerror or e})") from None
    return dataset(f"folder:{root}", split, images, labels, classes)


def _folder(root: Path, split: str, size: tuple[int, int], channels: int):
    from PIL import Image
    from sklearn.model_selection import train_test_split

    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    bases = [root / "train", root / "test"] if presplit else [root]
    classes = sorted({d.name for b in bases for d in b.iterdir()
                      if d.is_dir() and not d.name.startswith(".")})
    if not classes:
        what = "is empty" if not any(root.iterdir()) else "has no class sub-folders"
        raise DataError(f"{root}: folder {what}; expected one sub-folder of images per class, "
                        f"e.g. {root / 'cat' / '1.png'}")
    if len(classes) > registry.MAX_CLASSES:
        raise DataError(f"{root}: {len(classes)} class sub-folders; the limit is {registry.MAX_CLASSES}")
    files, labels, skipped, seen = [], [], [], [0]
    for label, cls in enumerate(classes):
        for path in _image_files(root / split / cls if presplit else root / cls, root, seen, skipped):
            try:  # reads the header only; decoding waits until the split is known
                _open_image(path).close()
            except DataError:
                raise
            except Exception:  # noqa: BLE001  PIL fails with many types on a non-image
                skipped.append(path)
                continue
            files.append(path)
            labels.append(label)
    if skipped:
        names = ", ".join(str(p) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"{root}: skipping {len(skipped)} non-image file(s): {names}", stacklevel=4)
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
        try:
            with _open_image(path) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                images[i] = np.asarray(im).reshape(size[0], size[1], channels)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001  PIL's decoders fail with many types
            raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {str(e)[:200]})") from None
    return images.transpose(0, 3, 1, 2) / np.float32(255), labels, classes, root.resolve()


def _image_files(top: Path, root: Path, seen: list[int], skipped: list[Path]) -> list[Path]:
    """Regular files with an image suffix under ``top``, at most :data:`MAX_FOLDER_DEPTH` folders
    down, links to folders not followed; other files go to ``skipped``.

    ``seen[0]`` counts files over every class; past :data:`MAX_FOLDER_FILES` it is an error.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        depth = len(Path(dirpath).relative_to(top).parts)
        dirnames[:] = [] if depth >= MAX_FOLDER_DEPTH else sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            seen[0] += 1
            if seen[0] > MAX_FOLDER_FILES:
                raise DataError(f"{root}: more than {MAX_FOLDER_FILES:,} files; the limit is "
                                "vqviz.data.MAX_FOLDER_FILES")
            path = Path(dirpath) / name
            try:
                regular = stat.S_ISREG(path.stat().st_mode)
            except OSError:
                regular = False
            if regular and path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
            else:
                skipped.append(path)
    return sorted(found)


def _open_image(path: Path):
    """``PIL.Image.open`` with :data:`MAX_IMAGE_PIXELS` checked from the header, before decoding."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"{path}: the image is too large to decode (PIL's decompression-bomb "
                            "limit)") from None
    width, height = im.size
    if width * height > MAX_IMAGE_PIXELS:
        im.close()
        raise DataError(f"{path}: {width} x {height} pixels; the limit is {MAX_IMAGE_PIXELS:,} "
                        "(vqviz.data.MAX_IMAGE_PIXELS)")
    return im

