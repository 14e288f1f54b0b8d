"""CIFAR-10: the python batches folder ``cifar-10-batches-py``, read without running what the pickles name.

A batch is a Python 2 pickle (protocol 2) of a dict: ``data``, a (N, 3072) uint8 numpy array,
``labels``, a list of N ints, and two fields that are not read; ``batches.meta`` holds
``label_names``. numpy pickles the array as ``_reconstruct(ndarray, (0,), 'b')`` followed by
``__setstate__((1, (N, 3072), dtype('u1', 0, 1), False, raw))``, where ``raw`` is the N * 3072
pixel bytes (a Python 2 string, read as bytes).

The unpickler builds only plain values (dicts, lists, tuples, bytes, str, numbers): numpy's
three globals come back as inert records of the arguments and state the pickle gives them
(:class:`_Recorded`), ``_codecs.encode`` and ``bytes`` only turn strings into bytes, and every
other global is refused. So no value in a file reaches numpy's C code, which a crafted dtype
state crashes, or numpy's allocator, which a declared shape would size. Afterwards the record
of ``data`` must be exactly numpy's recipe for a (N, 3072) uint8 array, with N at most
``MAX_PICKLE_BYTES // 3072`` and exactly N * 3072 raw bytes; only then are the bytes viewed as
an array (``np.frombuffer``, no copy). Every file is capped (size, opcodes, nesting) before it
is unpickled.
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

MAX_PICKLE_BYTES = 256 * 2**20  # one CIFAR batch (the real ones: 31 MB)
MAX_PICKLE_OPS = 1_000_000  # pickle opcodes in one CIFAR file (the real ones: about 40,000)
MAX_PICKLE_DEPTH = 16  # nesting of containers in one CIFAR file

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
ROW = 3 * 32 * 32  # bytes of one image in a batch's data


@register_dataset(
    "cifar10", shape=(3, 32, 32), files=_BATCHES["train"] + _BATCHES["test"] + ("batches.meta",), subdir=FOLDER,
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
        data.append(_images(x, path))
        labels.append(_int_labels(y, len(data[-1]), len(classes), path))
    images = np.concatenate(data).reshape(-1, 3, 32, 32)
    if not len(images):
        raise DataError(f"{folder}: the {split} split holds no images")
    return scaled(images, folder), np.concatenate(labels), classes


class _Recorded:
    """An inert stand-in for one of numpy's globals: calling it and setting its state only record the values.

    ``args`` is None for the global itself and the call's arguments for what the call made.
    A fresh one per global in the file, so that nothing a file sets outlives its load.
    """

    __slots__ = ("name", "args", "state")

    def __init__(self, name: str, args: tuple | None = None):
        self.name, self.args, self.state = name, args, None

    def __call__(self, *args):  # the REDUCE opcode
        if self.args is not None:
            raise pickle.UnpicklingError(f"a pickled {self.name} is not callable")
        return _Recorded(self.name, args)

    def __setstate__(self, state):  # the BUILD opcode
        self.state = state


def _made_by(x, name: str, n_args: int) -> bool:
    """Whether ``x`` records a call of numpy's ``name`` with ``n_args`` arguments."""
    return type(x) is _Recorded and x.name == name and type(x.args) is tuple and len(x.args) == n_args


def _kind(v) -> str:
    """What ``v`` is, for a message: a type's name, or which numpy global a record stands for."""
    return f"a pickled {v.name}" if type(v) is _Recorded else type(v).__name__


def _is(v, want) -> bool:
    """``v == want``, ``want`` a scalar or a tuple of them, comparing values of one type only.

    Python 2's str, read as bytes, matches a str. No bytes is compared with a str or an int
    (an error under ``python -bb``), and no container in ``v`` is walked deeper than ``want``:
    a crafted value may hold deeply shared containers, which a walk or a hash would expand.
    """
    if type(want) is tuple:
        return type(v) is tuple and len(v) == len(want) and all(_is(a, b) for a, b in zip(v, want))
    if type(want) is str and type(v) is bytes:
        v = v.decode("latin-1")
    return type(v) is type(want) and v == want


def _images(x, path: Path) -> np.ndarray:
    """The (N, 3072) uint8 array that the record ``x`` describes, checked whole before any allocation."""
    def refuse(why: str) -> DataError:
        return DataError(f"{path}: expected (N, 3072) uint8 data and N labels, found {why}")

    if not _made_by(x, "_reconstruct", 3) or type(x.args[0]) is not _Recorded or x.args[0].name != "ndarray" \
            or not _is(x.args[1:], ((0,), "b")):  # numpy's empty base array, which __setstate__ fills
        raise refuse(_kind(x))
    state = x.state
    if type(state) is not tuple or len(state) != 5:
        raise refuse("an array without numpy's 5-part state")
    version, shape, dtype, fortran, raw = state
    if not _is(version, 1) or not _is(fortran, False):
        raise refuse("an array of another version or order")
    if not _made_by(dtype, "dtype", 3) or not (_is(dtype.args[0], "u1") or _is(dtype.args[0], "|u1")) \
            or not _is(dtype.state, (3, "|", None, None, None, -1, -1, 0)):  # as numpy pickles uint8
        raise refuse("an array of another dtype")
    if type(shape) is not tuple or len(shape) != 2 or type(shape[0]) is not int or not _is(shape[1], ROW):
        raise refuse("an array whose shape is not (N, 3072)")
    n, cap = shape[0], MAX_PICKLE_BYTES // ROW  # the raw bytes are in the file, so no more rows fit
    if not 0 <= n <= cap:
        raise refuse(f"an array whose declared count of images is outside 0..{cap:,}")
    if type(raw) is str:  # a Python 2 string that was read as text; numpy takes it as latin-1
        try:
            raw = raw.encode("latin-1")
        except UnicodeEncodeError:
            raise refuse("array bytes that are not latin-1") from None
    if type(raw) is not bytes or len(raw) != n * ROW:
        raise refuse(f"{n:,} images declared but not {n * ROW:,} bytes of pixels")
    return np.frombuffer(raw, np.uint8).reshape(n, ROW)


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 2's numpy pickles call it (str -> latin-1 bytes, as long), and only so."""
    if not isinstance(obj, str) or not isinstance(encoding, str) or errors != "strict" or \
            encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only from str to latin-1, strictly")
    return codecs.encode(obj, "latin-1")


def _bytes(*args):
    """``bytes()`` as protocol-2 pickles of empty arrays call it; never ``bytes(n)``, which allocates n."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise pickle.UnpicklingError("bytes() is allowed only without arguments or from bytes")


class _InertUnpickler(pickle.Unpickler):
    """Builds plain values only: numpy's globals become :class:`_Recorded`, any other global is refused."""

    _GLOBALS = {("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
                ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
                ("numpy", "ndarray"): "ndarray", ("numpy", "dtype"): "dtype",
                ("_codecs", "encode"): _latin1_encode,
                ("__builtin__", "bytes"): _bytes, ("builtins", "bytes"): _bytes}

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # CIFAR's pickles come from Python 2
        self.path = path

    def find_class(self, module: str, name: str):
        found = self._GLOBALS.get((module, name))
        if found is None:
            raise DataError(f"{self.path}: refusing to unpickle {module[:100]}.{name[:100]}; "
                            "only containers and numpy's uint8 arrays are allowed")
        return _Recorded(found) if isinstance(found, str) else found


def _unpickle(path: Path, *keys: bytes) -> list:
    """The values of ``keys`` in the dict pickled at ``path``, read with every cap."""
    raw = read_capped(path, MAX_PICKLE_BYTES, "MAX_PICKLE_BYTES")
    _prescan(raw, path)
    try:
        content = _InertUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001  unpickling fails with many types; all mean a bad file
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:200]})") from None
    if isinstance(content, dict):  # bytes keys only: b"data" == "data" compares bytes with str (same hash)
        content = {k: v for k, v in content.items() if type(k) is bytes}
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
    """Labels as int64 (N,), from a flat list of N ints in 0..n_classes - 1, as the real files hold them."""
    if not isinstance(y, list):
        raise DataError(f"{path}: labels must be a list of integers, found {_kind(y)}")
    if len(y) != n:  # before looking at the items: a list cannot be longer than the file's ops
        raise DataError(f"{path}: {n} images but {len(y)} labels")
    if not all(type(v) is int and 0 <= v < n_classes for v in y):
        raise DataError(f"{path}: labels must be integers in 0..{n_classes - 1}")
    return np.array(y, dtype=np.int64)
