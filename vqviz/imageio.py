"""Opening an untrusted image file: the one door through which vqviz lets Pillow read one.

Pillow picks a reader from a file's first bytes, whatever its name, and some of its readers
run another program: EPS and PostScript call Ghostscript, which can write and read files of
the document's choosing and loop forever. :func:`open_image` therefore lets Pillow try only
:data:`ALLOWED_FORMATS`, all decoded inside Pillow itself, on bytes read first with a cap,
without following a link, and only ever from a regular file.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from .errors import DataError
from .utils import open_regular

#: Pillow's ids of the formats vqviz reads (PPM is Pillow's reader of PBM, PGM, PPM and PNM).
ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")


class UnreadableImage(DataError):
    """A file that is not an image vqviz reads: another format, damaged, a link or not a regular file.

    A folder skips such a file; the caps (bytes, pixels) raise a plain :class:`DataError`.
    """


def read_file(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; a link is not followed.

    Opened by :func:`vqviz.utils.open_regular`: a link is refused, so a loop cannot hang, and
    a FIFO put in place of the file after the folder was listed opens at once instead of
    waiting for a writer.

    Raises
    ------
    UnreadableImage : a link, not a regular file (a FIFO, a device), or unreadable.
    DataError : over ``max_bytes``.
    """
    try:
        with open_regular(path, max_bytes, error=UnreadableImage, what=what, follow=False,
                          not_regular=f"{what}: not a regular file",
                          too_big=lambda size: _too_big(what, size, max_bytes)) as f:
            raw = f.read(max_bytes + 1)  # the size may have grown since it was checked
    except OSError as e:
        if os.path.islink(path):
            raise UnreadableImage(f"{what}: a link; links are not followed") from None
        raise UnreadableImage(f"{what}: cannot read the file ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise _too_big(what, len(raw), max_bytes)
    return raw


def open_image(source: bytes | str | Path, what: str, *, max_pixels: int, max_bytes: int, setting: str = ""):
    """``PIL.Image.open`` of a file or its bytes, in :data:`ALLOWED_FORMATS` only, with the byte
    and pixel caps checked before anything is decoded.

    Parameters
    ----------
    source : the file's bytes, or its path (read with :func:`read_file`).
    what : the file's name, for the messages.
    max_pixels : the most pixels (width x height, from the header).
    max_bytes : the largest file.
    setting : the setting that holds ``max_pixels``, named in its message.

    Returns
    -------
    The opened, not yet decoded, ``PIL.Image.Image``.

    Raises
    ------
    UnreadableImage : not an allowed image format ("not an allowed image format"), or damaged.
    DataError : over ``max_bytes`` or ``max_pixels``.
    """
    from PIL import Image

    raw = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else read_file(source, what, max_bytes)
    if len(raw) > max_bytes:
        raise _too_big(what, len(raw), max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on odd headers (EXIF, ...): not the reader's concern
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(raw), formats=ALLOWED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"{what}: the image is too large to decode (Pillow's decompression-bomb limit)") from None
        except Image.UnidentifiedImageError:
            raise UnreadableImage(_unidentified(raw, what)) from None
        except Exception as e:  # noqa: BLE001  a reader that fails on its header with another type
            raise UnreadableImage(_unidentified(raw, what, f" ({type(e).__name__}: {str(e)[:200]})")) from None
    if im.width * im.height > max_pixels:
        im.close()
        raise DataError(f"{what}: {im.width} x {im.height} pixels; the limit is {max_pixels:,}"
                        + (f" ({setting})" if setting else ""))
    return im


def _unidentified(raw: bytes, what: str, detail: str = "") -> str:
    """Why Pillow could not open ``raw`` with an allowed reader: the format its first bytes name."""
    from PIL import Image

    Image.init()
    allowed = ", ".join(ALLOWED_FORMATS)
    found = None
    for fmt, (_, accept) in Image.OPEN.items():  # only the readers' checks of the first bytes: nothing is run
        try:
            if accept is not None and accept(raw[:16]):
                found = fmt
                break
        except Exception:  # noqa: BLE001  a check that chokes on few bytes says "not this one"
            continue
    if found in ALLOWED_FORMATS:
        return f"{what}: a damaged {found} image{detail}"
    return f"{what}: not an allowed image format{f': {found}' if found else ''} (allowed: {allowed})"


def _too_big(what: str, size: int, max_bytes: int) -> DataError:
    if max_bytes >= 2**20:
        return DataError(f"{what}: {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    return DataError(f"{what}: {size:,} bytes; the limit is {max_bytes:,} bytes")
