"""Small fake copies of the data sets' files, written the way the real ones are."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from vqviz import data

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def fake_mnist(folder: Path, n_train=12, n_test=5, gz=True, seed=0) -> dict[str, np.ndarray]:
    """Write the four MNIST files with random content; return the arrays by base name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for base, n in zip(IDX_FILES, (n_train, n_train, n_test, n_test)):
        shape = (n, 28, 28) if "images" in base else (n,)
        arrays[base] = rng.integers(0, 256 if "images" in base else 10, shape, dtype=np.uint8)
        data.write_idx(folder / (base + (".gz" if gz else "")), arrays[base])
    return arrays


def fake_cifar(folder: Path, n=4, python2=False) -> dict[str, np.ndarray]:
    """Write a CIFAR-10 batches folder of ``n`` random images a batch; return the (n, 3072) data by base name.

    ``python2`` writes the files as the real ones were written, by Python 2's cPickle;
    otherwise numpy pickles the arrays itself, with protocol 2 (bytes keys become ``_codecs.encode``).
    """
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batches[name] = x
        batch = {b"data": numpy_array(x.shape, x.tobytes(), python2=True) if python2 else x,
                 b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": b"x",
                 b"filenames": [f"img_{i:06d}.png".encode() for i in range(n)]}
        # Like the real files: protocol 2, bytes keys, numpy 1's module name.
        raw = python2_pickle(batch) if python2 else pickle.dumps(batch, protocol=2)
        (folder / name).write_bytes(raw.replace(b"numpy._core.", b"numpy.core."))
    meta = {b"num_cases_per_batch": n, b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(python2_pickle(meta) if python2 else pickle.dumps(meta))
    return batches


class Reduced:
    """Pickles as ``fn(*args)`` followed by ``__setstate__(state)``: numpy's own recipes, with any values in them."""

    def __init__(self, fn, args: tuple, state=None):
        self.recipe = (fn, args, state)

    def __reduce__(self):
        return self.recipe


def numpy_dtype(code="u1", state=(3, "|", None, None, None, -1, -1, 0), python2=False) -> Reduced:
    """Pickles as numpy pickles ``np.dtype(code)``, with any ``state``; ``python2``: with Python 2's str and ints."""
    if python2:
        return Reduced(np.dtype, (code.encode(), 0, 1), tuple(v.encode() if isinstance(v, str) else v for v in state))
    return Reduced(np.dtype, (code, False, True), state)


def numpy_array(shape, raw: bytes, dtype: Reduced | None = None, python2=False) -> Reduced:
    """Pickles as numpy pickles an array (uint8 unless ``dtype``), whatever ``shape`` and bytes it declares."""
    dtype = numpy_dtype(python2=python2) if dtype is None else dtype
    return Reduced(_reconstruct, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, raw))


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ``bytes`` (Python 2's str) as SHORT_BINSTRING and BINSTRING."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str(self, obj: bytes):
        self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj if len(obj) < 256
                   else pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str


def python2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2's ``cPickle.dump(obj, f, 2)`` wrote it, numpy 1's module names included."""
    f = io.BytesIO()
    _Python2Pickler(f, protocol=2).dump(obj)
    return f.getvalue().replace(b"numpy._core.", b"numpy.core.")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
