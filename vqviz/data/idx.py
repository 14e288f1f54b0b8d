"""MNIST and Fashion-MNIST: the IDX codec and the four files of each.

IDX is LeCun's format: a magic number ``0x0000TTDD`` (type TT, DD dimensions), the
dimensions as big-endian uint32, then the values, big-endian. Local copies are read
gzipped or not and are not checked against the sums, as distributions re-gzip them.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from vqviz.errors import DataError
from vqviz.utils import atomic_path

from .registry import read_capped, register_dataset, scaled

MAX_IDX_BYTES = 256 * 2**20  # an IDX file's payload once un-gzipped (MNIST's largest: 47 MB)

# IDX type byte -> dtype; multi-byte values are big-endian (LeCun's format description).
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLIT_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FILES = _SPLIT_FILES["train"] + _SPLIT_FILES["test"]


def _gz(*values) -> dict:
    """``{"train-images-idx3-ubyte.gz": values[0], ...}``: one value per downloaded file, in :data:`FILES`' order."""
    return dict(zip((f + ".gz" for f in FILES), values, strict=True))


_IDX_SOURCE = dict(shape=(1, 28, 28), files=FILES, suffixes=(".gz", ""),
                   provide=", ".join(f + ".gz" for f in FILES) + " (gzipped or not)")


@register_dataset(
    "mnist", **_IDX_SOURCE,
    mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
             "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    checksums=_gz("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                  "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    sizes=_gz(9912422, 28881, 1648877, 4542))
def mnist(folder: Path, split: str):
    """LeCun's handwritten digits: 60,000 / 10,000 28x28 grey images."""
    return (*read_pair(folder, split), tuple("0123456789"))


@register_dataset(
    "fashion-mnist", **_IDX_SOURCE, hint=", or run `apt install dataset-fashion-mnist`",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    checksums=_gz("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                  "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                  "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                  "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    sizes=_gz(26421880, 29515, 4422102, 5148))
def fashion_mnist(folder: Path, split: str):
    """Zalando's clothes, in MNIST's format and sizes."""
    return (*read_pair(folder, split), ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))


def read_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 1, H, W) in [0, 1] and labels 0..9 of one split, checked against each other."""
    img_path, lbl_path = (_locate(folder, b) for b in _SPLIT_FILES[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected (N, H, W) images, found shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{lbl_path}: expected (N,) labels, found shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{img_path} holds {len(images)} images but {lbl_path} "
                        f"holds {len(labels)} labels")
    if not len(images) or not images[0].size:
        raise DataError(f"{img_path}: the {split} split holds no images (shape {images.shape})")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{lbl_path}: labels must be integers, found {labels.dtype} values")
    if not 0 <= labels.min() <= labels.max() <= 9:
        raise DataError(f"{lbl_path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return scaled(images, img_path)[:, None], labels


def _locate(folder: Path, base: str) -> Path:
    gz = folder / (base + ".gz")
    return gz if gz.is_file() or not (folder / base).is_file() else folder / base


def read_idx(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not, as an array of its stored shape and type.

    Gzip is recognised by content, not name. The header's shape is checked, in
    exact integers, against the payload and against ``max_bytes`` (default
    :data:`MAX_IDX_BYTES`) before anything is allocated, and gzip data is
    inflated only as far as that shape needs. The array may be read-only.
    """
    path = Path(path)
    cap = MAX_IDX_BYTES if max_bytes is None else max_bytes
    raw = read_capped(path, cap, "MAX_IDX_BYTES", slack=2**20)  # gzip never grows data by more than a little
    source = _Inflater(raw, path) if raw[:2] == b"\x1f\x8b" else _Plain(raw)
    magic = source.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise DataError(f"{path}: wrong IDX magic number 0x{magic[:4].hex()}; expected 0x0000TTDD "
                        "with type TT in 08 09 0b 0c 0d 0e and DD dimensions")
    ndim, dtype = magic[3], np.dtype(_IDX_TYPES[magic[2]])
    head = source.read(4 * ndim)
    if len(head) < 4 * ndim:
        raise DataError(f"{path}: IDX header truncated ({4 + len(head)} bytes, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", head)
    # Exact Python integers, so no wrap-around; zeros count as ones, since numpy cannot hold
    # even an empty array whose other dimensions multiply past its index range.
    nominal = math.prod(max(d, 1) for d in dims) * dtype.itemsize
    if nominal > cap:
        raise DataError(f"{path}: the header's shape {dims} is too large: {nominal:,} bytes; the limit is "
                        f"{cap:,} (vqviz.data.MAX_IDX_BYTES)")
    expected = math.prod(dims) * dtype.itemsize
    payload = source.read(expected)
    got = len(payload) + source.count_rest()
    if got != expected:
        what = "shorter" if got < expected else "longer"
        raise DataError(f"{path}: payload is {got} bytes, {what} than the {expected} "
                        f"that the header's shape {dims} needs")
    array = np.frombuffer(payload, dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, atomically; gzipped if ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    kind = (array.dtype.kind, array.dtype.itemsize)
    codes = [c for c, t in _IDX_TYPES.items() if (np.dtype(t).kind, np.dtype(t).itemsize) == kind]
    if not codes or not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: cannot store a {array.ndim}-D {array.dtype} array as IDX")
    header = struct.pack(f">4B{array.ndim}I", 0, 0, codes[0], array.ndim, *array.shape)
    data = header + array.astype(np.dtype(_IDX_TYPES[codes[0]]), copy=False).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: same bytes, same checksum
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


class _Plain:
    """Bytes read in order, like :class:`_Inflater`."""

    def __init__(self, raw: bytes):
        self.raw, self.at = memoryview(raw), 0

    def read(self, n: int) -> bytes:
        out = self.raw[self.at : self.at + n]
        self.at += len(out)
        return bytes(out)

    def count_rest(self) -> int:
        return len(self.raw) - self.at


class _Inflater:
    """Gzip data inflated only as far as it is read, member after member."""

    REST_LIMIT = 16 * 2**20  # bytes past the expected end that are counted for the message

    def __init__(self, raw: bytes, path: Path):
        self.path, self.rest = path, raw
        self.d = zlib.decompressobj(31)

    def read(self, n: int) -> bytes | bytearray:
        out, want = bytearray(), n  # grown in place: a list of chunks joined would cost twice the size
        try:
            while want > 0:
                if self.d.eof:
                    if not self.d.unused_data.strip(b"\0"):  # zero padding after the last member
                        break
                    self.rest, self.d = self.d.unused_data, zlib.decompressobj(31)
                before = len(self.rest)
                chunk = self.d.decompress(self.rest, min(want, 1 << 24))
                self.rest = self.d.unconsumed_tail
                out += chunk
                want -= len(chunk)
                if not chunk and not self.d.eof and (not self.rest or len(self.rest) == before):
                    raise EOFError("compressed data ended before the end-of-stream marker")
        except (zlib.error, EOFError) as e:
            raise DataError(f"{self.path}: truncated or corrupt gzip data ({e})") from None
        return out

    def count_rest(self) -> int:
        n = 0
        while n <= self.REST_LIMIT and (chunk := self.read(1 << 20)):
            n += len(chunk)
        return n
