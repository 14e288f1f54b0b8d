"""vqviz.data.cifar: the batches read with the restricted unpickler and its caps."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from data_fakes import fake_cifar
from vqviz import data
from vqviz.data import cifar, registry
from vqviz.errors import DataError


def test_cifar(tmp_path, isolated):
    batches = fake_cifar(tmp_path / "cifar10" / "cifar-10-batches-py")
    train = data.load("cifar10", "train", tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.classes[3] == "c3"
    np.testing.assert_allclose(train.images[:4].reshape(4, -1) * 255, batches["data_batch_1"],
                               atol=1e-4)
    assert len(data.load("cifar10", "test", tmp_path / "cifar10")) == 4


class Evil:
    def __reduce__(self):
        return os.system, (f"touch {Path.cwd() / 'pwned'}",)


def test_cifar_refuses_malicious_pickle(tmp_path, isolated):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"test_batch: refusing to unpickle (posix|nt)\.system"):
        data.load("cifar10", "test", folder)
    assert not (Path.cwd() / "pwned").exists()


def _shared_nested_pickle(depth: int, width: int) -> bytes:
    """A pickle of a few hundred bytes whose lists, expanded, hold width**depth items."""
    nested = [1]
    for _ in range(depth):
        nested = [nested] * width
    return pickle.dumps({b"data": nested, b"labels": nested}, protocol=2)


def test_cifar_shared_nested_lists_do_not_expand(tmp_path, isolated):
    import resource
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    blob = _shared_nested_pickle(depth=10, width=8)  # 8**10 = 1 G items if expanded
    assert len(blob) < 400
    (folder / "test_batch").write_bytes(blob)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="test_batch: expected \\(N, 3072\\) uint8 data"):
        data.load("cifar10", "test", folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


@pytest.mark.parametrize("batch, message", [
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, "a"]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1.0, 2.0]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[1], [2]]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 images but 1 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": 7}, "labels must be a list"),
    ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "holds no images"),
    ({b"data": [[1, 2]], b"labels": [1]}, "expected \\(N, 3072\\) uint8"),
])
def test_cifar_odd_content_is_a_data_error(tmp_path, isolated, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=message):
        data.load("cifar10", "test", folder)


def test_cifar_label_names_of_odd_bytes_are_decoded(tmp_path, isolated):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"\xff\xfe"] + [b"x"] * 9}, f)
    assert data.load("cifar10", "test", folder).classes[0] == "\ufffd\ufffd"
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": "not a list"}, f)
    registry._load_cached.cache_clear()
    with pytest.raises(DataError, match="label_names must be a list"):
        data.load("cifar10", "test", folder)


def test_cifar_pickles_over_the_op_cap_are_refused_before_unpickling(tmp_path, isolated, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    monkeypatch.setattr(cifar, "MAX_PICKLE_OPS", 10)
    monkeypatch.setattr(cifar._ArrayUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(DataError, match="more than 10 opcodes"):
        data.load("cifar10", "test", folder)
