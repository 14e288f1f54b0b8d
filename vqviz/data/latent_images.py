"""The images of a file of latents (:mod:`vqviz.data.latents`): an array in one of the layouts allowed, or
image files named by paths inside the file's folder (or their bytes), each opened only by
:func:`vqviz.imageio.open_image` and converted to the first one's size; grey unless one is in colour."""

from __future__ import annotations

import posixpath
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from vqviz.errors import DataError
from vqviz.imageio import open_image

#: Pillow's modes of grey images; any other (RGB, P, CMYK, ...) makes the images RGB.
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def image_array(a: np.ndarray, source: str) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1] of an array of images in one of the layouts allowed."""
    from . import folder

    if a.dtype != np.uint8 and a.dtype.kind != "f":
        raise DataError(f"{source}: images of dtype {a.dtype}; expected uint8 (0-255) or floats in [0, 1]")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[3] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.ndim != 4 or a.shape[1] not in (1, 3) or 0 in a.shape:
        raise DataError(f"{source}: images must be (N, C, H, W), (N, H, W) or (N, H, W, C) with C 1 or 3; "
                        f"got shape {a.shape}")
    if a.shape[2] * a.shape[3] > folder.MAX_IMAGE_PIXELS:
        raise DataError(f"{source}: images of {a.shape[3]} x {a.shape[2]} pixels; the limit is "
                        f"{folder.MAX_IMAGE_PIXELS:,} (vqviz.data.MAX_IMAGE_PIXELS)")
    out = a.astype(np.float32, order="C")
    if a.dtype == np.uint8:
        return np.divide(out, np.float32(255), out=out)
    bad = np.flatnonzero(~((out >= 0) & (out <= 1)).reshape(len(out), -1).all(axis=1))
    if len(bad):
        raise DataError(f"{source}: {len(bad)} image(s) have values outside [0, 1] (first: row {bad[0]}); "
                        "save uint8 or scale to [0, 1]")
    return out


def decode_images(items, source: str, folder: Path | None, check_size: Callable[[int], None]) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1] of image files (paths under ``folder``) or their bytes, each
    converted to the first one's size; grey unless one is in colour. ``check_size(bytes)`` refuses
    images that would decode to more than the file's cap, before they are decoded."""
    from PIL import Image

    from . import folder as caps

    out, root = None, folder.resolve() if folder is not None else None
    for i, item in enumerate(items):
        what = f"{source}: row {i}'s image" if isinstance(item, bytes) else f"{source}: image {str(item)[:200]!r}"
        src = item if isinstance(item, bytes) else _inside(root, item, what)
        try:
            with open_image(src, what, max_pixels=caps.MAX_IMAGE_PIXELS, max_bytes=caps.MAX_IMAGE_FILE_BYTES,
                            setting="vqviz.data.MAX_IMAGE_PIXELS") as im, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's notes (a palette's transparency)
                channels = 1 if im.mode in GREY_MODES else 3
                if out is None:
                    size = im.size
                    check_size(len(items) * size[0] * size[1] * channels * 5)  # uint8, then float32
                    out = np.empty((len(items), size[1], size[0], channels), np.uint8)
                elif channels > out.shape[3]:  # the first colour image: the grey ones so far become RGB
                    check_size(len(items) * size[0] * size[1] * 3 * 5)
                    out = np.repeat(out, 3, axis=3)
                im = im.convert("L" if out.shape[3] == 1 else "RGB")
                if im.size != size:
                    im = im.resize(size, Image.Resampling.BILINEAR)
                out[i] = np.asarray(im).reshape(out.shape[1:])
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001  Pillow's decoders fail with many types
            raise DataError(f"{what}: cannot decode image ({type(e).__name__}: {str(e)[:200]})") from None
    images = out.transpose(0, 3, 1, 2).astype(np.float32, order="C")
    return np.divide(images, np.float32(255), out=images)


def _inside(root: Path | None, name, what: str) -> Path:
    """``root / name``, refused unless ``name`` is relative, stays inside ``root`` (resolved) and is no link.

    The last step is opened without following a link (:func:`vqviz.imageio.read_file`); a link to a
    folder on the way is caught here, by resolving the path.
    """
    if root is None or not isinstance(name, str) or not name or "\0" in name:
        raise DataError(f"{what}: not a path to an image file")
    rel = posixpath.normpath(name.replace("\\", "/"))
    if rel.startswith("/") or ":" in rel.split("/")[0]:
        raise DataError(f"{what}: an absolute path; paths are relative to the file's folder")
    if rel == ".." or rel.startswith("../"):
        raise DataError(f"{what}: escapes the file's folder")
    path = root / rel
    try:
        if path.is_symlink():
            raise DataError(f"{what}: a link; links are not followed")
        inside = path.resolve().is_relative_to(root)
    except (OSError, RuntimeError) as e:  # a name too long; a loop of links (RuntimeError before 3.13)
        raise DataError(f"{what}: cannot read the path ({e})") from None
    if not inside:
        raise DataError(f"{what}: leads outside the file's folder through a link")
    return path
