"""CIFAR-10: the python batches folder ``cifar-10-batches-py``, read with a restricted unpickler.

The batches are Python 2 pickles of dicts holding one numpy array and two lists. The
unpickler rebuilds only containers and numpy arrays, since any other global could run
code, and every file is capped (size, opcodes, nesting) before it is unpickled.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from vqviz.errors import DataError

from . import registry
from .registry import read_capped, register_dataset, scaled

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

MAX_PICKLE_BYTES = 256 * 2**20  # one CIFAR batch (the real ones: 31 MB)
MAX_PICKLE_OPS = 1_000_000  # pickle opcodes in one CIFAR file (the real ones: about 40,000)
MAX_PICKLE_DEPTH = 16  # nesting of containers in one CIFAR file

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


@register_dataset(
    "cifar10", files=_BATCHES["train"] + _BATCHES["test"] + ("batches.meta",), subdir=FOLDER,
    mirrors=("https://www.cs.toronto.edu/~kriz/",), archive=ARCHIVE,
    checksums={ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
    sizes={ARCHIVE: 170498071}, provide=f"the folder {FOLDER} (unpacked from {ARCHIVE})")
def cifar10(folder: Path, split: str):
    """Krizhevsky's 32x32 colour images of 10 classes: 50,000 / 10,000."""
    (names,) = _unpickle(folder / "batches.meta", b"label_names")
    if not isinstance(names, (list, tuple)) or not 1 <= len(names) <= registry.MAX_CLASSES or \
            not all(isinstance(n, (bytes, str)) and len(n) <= 256 for n in names):
        raise DataError(f"{folder / 'batches.meta'}: label_names must be a list of 1 to "
                        f"{registry.MAX_CLASSES} short names")
    classes = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)
    data, labels = [], []
    for base in _BATCHES[split]:
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
    return scaled(images, folder), np.concatenate(labels), classes


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
    raw = read_capped(path, MAX_PICKLE_BYTES, "MAX_PICKLE_BYTES")
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
