"""Image data sets as arrays: the bundled digits, MNIST, Fashion-MNIST, CIFAR-10, a folder.

Every data set comes back as a :class:`Dataset` of images ``(N, C, H, W)``
float32 in [0, 1]. Files are looked for in the explicit ``data_dir``, then in
``$VQVIZ_DATA/<name>/``, ``/usr/share/datasets/<name>/`` (where Debian's
``dataset-fashion-mnist`` installs) and ``$XDG_CACHE_HOME/vqviz/<name>/``
(default ``~/.cache/vqviz``). Missing files are downloaded into the cache
(``$VQVIZ_MIRROR`` overrides the mirror) and checked against SHA-256 sums;
local copies are not, as distributions re-gzip them.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import hashlib
import http.client
import io
import os
import pickle
import math
import shutil
import stat
import struct
import time
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vqviz.errors import DataError
from vqviz.utils import atomic_path

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

NAMES = ("digits", "mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test")
SYSTEM_DIR = Path("/usr/share/datasets")
CACHE_DIR: Path | None = None  # None: $XDG_CACHE_HOME/vqviz or ~/.cache/vqviz
TIMEOUT = 30.0  # seconds without data before a download is given up
# Caps on what a file may make vqviz allocate, checked before allocating; module settings.
MAX_IDX_BYTES = 256 * 2**20  # an IDX file's payload once un-gzipped (MNIST's largest: 47 MB)
MAX_IMAGE_PIXELS = 2**24  # one image of a folder (4096 x 4096); PIL's own limit is about 179 M
MAX_FOLDER_FILES = 200_000  # files looked at in a folder data set
MAX_FOLDER_DEPTH = 4  # levels of sub-folders below a class folder
MAX_CLASSES = 1000
MAX_DATASET_BYTES = 2**31  # the images of one folder split, decoded
MAX_PICKLE_BYTES = 256 * 2**20  # one CIFAR batch (the real ones: 31 MB)
MAX_PICKLE_OPS = 1_000_000  # pickle opcodes in one CIFAR file (the real ones: about 40,000)
MAX_PICKLE_DEPTH = 16  # nesting of containers in one CIFAR file
MAX_DOWNLOAD_BYTES = 256 * 2**20  # a file whose size is not in SIZES
DOWNLOAD_DEADLINE = 3600.0  # seconds for one whole file, however slowly it trickles in
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm"}

_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TAR = "cifar-10-python.tar.gz"
_CIFAR = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_FILES = {"mnist": _IDX["train"] + _IDX["test"], "fashion-mnist": _IDX["train"] + _IDX["test"],
          "cifar10": _CIFAR["train"] + _CIFAR["test"] + ("batches.meta",)}
_DIGITS = tuple("0123456789")
_CLASSES = {"mnist": _DIGITS, "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress",
            "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")}

MIRRORS = {
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/",
              "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}
CHECKSUMS = {  # SHA-256 of each downloaded file; tests replace entries
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "cifar10": {_CIFAR_TAR: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
}
SIZES = {  # bytes of each downloaded file: a longer body is cut off, a larger Content-Length refused
    "mnist": {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
              "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542},
    "fashion-mnist": {"train-images-idx3-ubyte.gz": 26421880, "train-labels-idx1-ubyte.gz": 29515,
                      "t10k-images-idx3-ubyte.gz": 4422102, "t10k-labels-idx1-ubyte.gz": 5148},
    "cifar10": {_CIFAR_TAR: 170498071},
}

# IDX type byte -> dtype; multi-byte values are big-endian (LeCun's format description).
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split of one data set.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"folder:<path>"``.
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
    if name.startswith("folder:"):
        # Not cached: the user may add or change images between calls.
        try:
            images, labels, classes, root = _folder(Path(name[7:]).expanduser(), split,
                                                    size or (28, 28), channels or 1)
        except OSError as e:  # a name too long, a folder that cannot be listed
            raise DataError(f"{name[:200]}: cannot read the folder ({e.strerror or e})") from None
        return _dataset(f"folder:{root}", split, images, labels, classes)
    _check_name(name)
    folder = ""
    if name != "digits":
        found = find_dir(name, data_dir) or _fetch(name, data_dir, download, progress)
        folder = str(found.resolve())
    return _load_cached(name, split, folder, size, channels)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders that :func:`find_dir` tries for ``name``, in order."""
    _check_name(name)
    bases = []
    if data_dir is not None:
        bases += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    bases += [Path(p).expanduser() / name
              for p in os.environ.get("VQVIZ_DATA", "").split(os.pathsep) if p]
    bases += [SYSTEM_DIR / name, cache_dir() / name]
    if name == "cifar10":
        return [p for base in bases for p in (base / _CIFAR_DIR, base)]
    return bases


def find_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """First folder of :func:`search_dirs` holding every file of ``name``, else None.

    ``"digits"`` needs no files and gives None; ``"folder:<path>"`` gives the path if it exists.
    """
    if name.startswith("folder:"):
        path = Path(name[7:]).expanduser()
        return path if path.is_dir() else None
    if name == "digits":
        return None
    for folder in search_dirs(name, data_dir):
        if all(_locate(folder, f) for f in _FILES[name]):
            return folder
    return None


def cache_dir() -> Path:
    """Where downloads go: :data:`CACHE_DIR` if set, else ``$XDG_CACHE_HOME/vqviz``."""
    if CACHE_DIR is not None:
        return Path(CACHE_DIR)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vqviz"


def read_idx(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not, as an array of its stored shape and type.

    Gzip is recognised by content, not name. The header's shape is checked, in
    exact integers, against the payload and against ``max_bytes`` (default
    :data:`MAX_IDX_BYTES`) before anything is allocated, and gzip data is
    inflated only as far as that shape needs. The array may be read-only.
    """
    path = Path(path)
    cap = MAX_IDX_BYTES if max_bytes is None else max_bytes
    try:
        with open(path, "rb", opener=_nonblocking) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DataError(f"{path}: not a regular file")
            if st.st_size > cap + 2**20:  # gzip never grows data by more than a little
                raise DataError(f"{path}: {st.st_size / 2**20:.0f} MB; the limit is "
                                f"{cap / 2**20:.0f} MB (vqviz.data.MAX_IDX_BYTES)")
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
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


def _nonblocking(path, flags):
    # O_NONBLOCK: a FIFO in a file's place must not block the open; reads check the type first.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


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


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise DataError(f"unknown data set {name!r}: expected one of {', '.join(NAMES)} "
                        "or folder:<path>")


def _locate(folder: Path, base: str) -> Path | None:
    for path in (folder / (base + ".gz"), folder / base) if "idx" in base else (folder / base,):
        if path.is_file():
            return path
    return None


def _dataset(name, split, images, labels, classes) -> Dataset:
    images = np.ascontiguousarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False  # cached: shared between callers
    return Dataset(name, split, images, labels, tuple(classes))


@functools.lru_cache(maxsize=4)  # MNIST train is 188 MB as float32; keep only a few
def _load_cached(name: str, split: str, folder: str, size, channels) -> Dataset:
    if name == "digits":
        images, labels, classes = *_digits(split), _DIGITS
    elif name == "cifar10":
        images, labels, classes = _cifar(Path(folder), split)
    else:
        images, labels, classes = *_idx_pair(Path(folder), split), _CLASSES[name]
    return _dataset(name, split, _convert(images, size, channels), labels, classes)


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


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    parts = train_test_split(np.arange(len(bunch.target)), test_size=0.2, random_state=0,
                             stratify=bunch.target)
    idx = np.sort(parts[SPLITS.index(split)])
    return bunch.images[idx, None].astype(np.float32) / 16, bunch.target[idx]


def _idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_path, lbl_path = (_locate(folder, b) or folder / (b + ".gz") for b in _IDX[split])
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
    return _scaled(images, img_path)[:, None], labels


def _scaled(images: np.ndarray, path: Path) -> np.ndarray:
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


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 2's numpy pickles call it (str -> latin-1 bytes), and only so."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only from str to latin-1, not {encoding!r}")
    return codecs.encode(obj, "latin-1", errors)


def _bytes(*args):
    """``bytes()`` as protocol-2 pickles of empty arrays call it; never ``bytes(n)``, which allocates n."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise pickle.UnpicklingError("bytes() is allowed only without arguments or from bytes")


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only containers and numpy arrays: any other global could run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
                ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
                ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                ("_codecs", "encode"): _latin1_encode,
                ("__builtin__", "bytes"): _bytes, ("builtins", "bytes"): _bytes}

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # CIFAR's pickles come from Python 2
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[module, name]
        except KeyError:
            raise DataError(f"{self.path}: refusing to unpickle {module}.{name}; "
                            "only numpy arrays are allowed") from None


def _unpickle(path: Path, *keys: bytes) -> list:
    """The values of ``keys`` in the dict pickled at ``path``, read with every cap."""
    try:
        with open(path, "rb", opener=_nonblocking) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DataError(f"{path}: not a regular file")
            if st.st_size > MAX_PICKLE_BYTES:
                raise DataError(f"{path}: {st.st_size / 2**20:.0f} MB; the limit is "
                                f"{MAX_PICKLE_BYTES / 2**20:.0f} MB (vqviz.data.MAX_PICKLE_BYTES)")
            raw = f.read(MAX_PICKLE_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    _prescan(raw, path)
    try:
        content = _ArrayUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001  unpickling fails with many types; all mean a bad file
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(content, dict) or any(k not in content for k in keys):
        raise DataError(f"{path}: expected a dict with keys {list(keys)}")
    return [content[k] for k in keys]


def _prescan(raw: bytes, path: Path) -> None:
    """Count the pickle's opcodes and the nesting of its marks before unpickling it.

    A list of N items takes at least N opcodes, so the op cap bounds every
    container the unpickler can build, shared references included.
    """
    import pickletools

    depth = ops = 0
    try:
        for op, _, _ in pickletools.genops(raw):
            ops += 1
            if op.name == "MARK":
                depth += 1
            elif pickletools.markobject in op.stack_before:
                depth -= 1
            if ops > MAX_PICKLE_OPS or depth > MAX_PICKLE_DEPTH:
                what = f"more than {MAX_PICKLE_OPS:,} opcodes" if ops > MAX_PICKLE_OPS else \
                    f"containers nested more than {MAX_PICKLE_DEPTH} deep"
                raise DataError(f"{path}: the pickle holds {what}; a CIFAR batch holds one array and two lists")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001  pickletools fails with many types; all mean a bad file
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:200]})") from None


def _int_labels(y, n: int, n_classes: int, path: Path) -> np.ndarray:
    """Labels as int64 (N,), from a flat list of ints or an integer array; nothing else."""
    if isinstance(y, np.ndarray):
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{path}: labels must be a list of integers, found a {y.dtype} array of "
                            f"shape {y.shape}")
        labels = y.astype(np.int64)
    elif isinstance(y, list):
        if len(y) != n:  # before looking at the items: a list cannot be longer than the file's ops
            raise DataError(f"{path}: {n} images but {len(y)} labels")
        if not all(type(v) is int and 0 <= v < n_classes for v in y):
            raise DataError(f"{path}: labels must be integers in 0..{n_classes - 1}")
        labels = np.array(y, dtype=np.int64)
    else:
        raise DataError(f"{path}: labels must be a list of integers, found {type(y).__name__}")
    if len(labels) != n:
        raise DataError(f"{path}: {n} images but {len(labels)} labels")
    if labels.size and not 0 <= labels.min() <= labels.max() < n_classes:
        raise DataError(f"{path}: labels must be 0..{n_classes - 1}")
    return labels


def _cifar(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    (names,) = _unpickle(folder / "batches.meta", b"label_names")
    if not isinstance(names, (list, tuple)) or not 1 <= len(names) <= MAX_CLASSES or \
            not all(isinstance(n, (bytes, str)) and len(n) <= 256 for n in names):
        raise DataError(f"{folder / 'batches.meta'}: label_names must be a list of 1 to {MAX_CLASSES} "
                        "short names")
    classes = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)
    data, labels = [], []
    for base in _CIFAR[split]:
        path = folder / base
        x, y = _unpickle(path, b"data", b"labels")
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or x.dtype != np.uint8:
            what = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{path}: expected (N, 3072) uint8 data and N labels, found {what}")
        data.append(x)
        labels.append(_int_labels(y, len(x), len(classes), path))
    images = np.concatenate(data).reshape(-1, 3, 32, 32)
    if not len(images):
        raise DataError(f"{folder}: the {split} split holds no images")
    return _scaled(images, folder), np.concatenate(labels), classes


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
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{root}: {len(classes)} class sub-folders; the limit is {MAX_CLASSES}")
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
        warnings.warn(f"{root}: skipping {len(skipped)} non-image file(s): {names}", stacklevel=3)
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


class _NetError(Exception):
    """A download could not be made (network, HTTP); the caller says where to get the files."""


def _fetch(name: str, data_dir, download: bool, progress: Progress | None) -> Path:
    """Download ``name`` into the cache, or raise a DataError saying where files were looked for."""
    reason = "Not downloaded: download=False."
    if download:
        try:
            return _download_all(name, progress)
        except _NetError as e:
            reason = f"The download failed: {e}."
    lines = [f"{name}: data set not found; looked in:"]
    for folder in search_dirs(name, data_dir):
        missing = [f for f in _FILES[name] if not _locate(folder, f)]
        state = ("no such folder" if not folder.is_dir() else "none of the files"
                 if len(missing) == len(_FILES[name]) else f"missing {', '.join(missing)}")
        lines.append(f"  {folder} ({state})")
    files = (f"the folder {_CIFAR_DIR} (unpacked from {_CIFAR_TAR})" if name == "cifar10"
             else ", ".join(f + ".gz" for f in _FILES[name]) + " (gzipped or not)")
    how = (f"To provide it, put {files} in one of these folders, or set VQVIZ_DATA to a folder "
           f"holding {name}/")
    if name == "fashion-mnist":
        how += ", or run `apt install dataset-fashion-mnist`"
    raise DataError("\n".join(lines + [reason, how + "."]))


#: A download temporary or extraction folder older than this was left by a killed process.
STALE_SECONDS = 3600.0


def _sweep_stale(dest: Path, name: str) -> None:
    """Remove what killed downloads of ``name`` left in ``dest``: only its own temporaries."""
    own = {f"{f}.gz" for f in _FILES[name]} | {_CIFAR_TAR}
    now = time.time()
    try:
        for entry in os.scandir(dest):
            mine = (entry.name.startswith(".") and entry.name.endswith(".tmp")
                    and entry.name[1:].split(".tmp")[0].rsplit(".", 1)[0] in own) or \
                entry.name.startswith(".extract-")
            if mine and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
    except OSError:
        pass


def _download_all(name: str, progress: Progress | None) -> Path:
    dest = cache_dir() / name
    _sweep_stale(dest, name)
    mirror = os.environ.get("VQVIZ_MIRROR")
    mirrors = (mirror,) if mirror else MIRRORS[name]
    if name == "cifar10":
        _download(mirrors, _CIFAR_TAR, dest, CHECKSUMS[name].get(_CIFAR_TAR), progress,
                  SIZES.get(name, {}).get(_CIFAR_TAR))
        _extract(dest / _CIFAR_TAR, dest)
        return dest / _CIFAR_DIR
    for base in _FILES[name]:
        if not _locate(dest, base):  # resume: keep what an earlier attempt fetched
            _download(mirrors, base + ".gz", dest, CHECKSUMS[name].get(base + ".gz"), progress,
                      SIZES.get(name, {}).get(base + ".gz"))
    return dest


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
                        raise _NetError(f"{url}: the server announces {total:,} bytes; {filename} has "
                                        f"{cap:,}")
                    while chunk := response.read1(1 << 20):  # read1: returns what has arrived
                        done += len(chunk)
                        if done > cap:
                            raise _NetError(f"{url}: the body runs past the {cap:,} bytes of {filename}; "
                                            "cut off")
                        if time.monotonic() > deadline:
                            raise _NetError(f"{url}: not finished after {DOWNLOAD_DEADLINE:.0f} s "
                                            f"({done:,} of {total or cap:,} bytes); given up")
                        out.write(chunk)
                        digest.update(chunk)
                        if progress is not None:
                            progress(done, total)
                if digest.hexdigest() != sha256:
                    raise DataError(f"{url}: SHA-256 mismatch for {filename}: expected {sha256}, "
                                    f"got {digest.hexdigest()}; the file was discarded")
            return
        except _NetError as e:
            errors.append(str(e))
        except (OSError, ValueError, http.client.HTTPException) as e:
            errors.append(f"{url}: {e}")
    raise _NetError("; ".join(errors))


def _extract(tar_path: Path, dest: Path) -> None:
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
        if not (tmp / _CIFAR_DIR).is_dir():
            raise DataError(f"{tar_path}: archive holds no {_CIFAR_DIR}/ folder")
        shutil.rmtree(dest / _CIFAR_DIR, ignore_errors=True)  # an incomplete earlier copy
        os.replace(tmp / _CIFAR_DIR, dest / _CIFAR_DIR)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise DataError(f"{tar_path}: corrupt archive ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tar_path.unlink()
