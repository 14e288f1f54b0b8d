"""Small fake copies of the data sets' files, written the way the real ones are."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from vqviz import data

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


def fake_cifar(folder: Path, n=4) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batches[name] = x
        batch = {b"data": x, b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": b"x"}
        # Like the real files: protocol 2, bytes keys, numpy 1's module name.
        raw = pickle.dumps(batch, protocol=2)
        (folder / name).write_bytes(raw.replace(b"numpy._core.", b"numpy.core."))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    return batches


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
