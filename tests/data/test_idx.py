"""vqviz.data.idx: the IDX codec, its caps and values, and MNIST read from its files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from data_fakes import fake_mnist
from vqviz import data
from vqviz.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    images = np.arange(7 * 5 * 4).reshape(7, 5, 4).astype(dtype)
    labels = np.arange(7).astype(dtype)
    data.write_idx(tmp_path / ("images" + suffix), images)
    data.write_idx(tmp_path / ("labels" + suffix), labels)
    for name, expected in (("images", images), ("labels", labels)):
        got = data.read_idx(tmp_path / (name + suffix))
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    assert (tmp_path / ("images" + suffix)).read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\0\0")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.gz: no such file"):
        data.read_idx(tmp_path / "nope.gz")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    data.write_idx(path, np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"x\.gz: truncated or corrupt gzip"):
        data.read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\0\0\0\x02" + b"ab")
    with pytest.raises(DataError, match=r"x: wrong IDX magic number 0x12340801"):
        data.read_idx(path)


@pytest.mark.parametrize("n_bytes, word", [(7, "shorter"), (15, "longer")])
def test_payload_length(tmp_path, n_bytes, word):
    path = tmp_path / "x.gz"
    header = b"\0\0\x08\x02" + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")  # 3x4 uint8
    path.write_bytes(gzip.compress(header + bytes(n_bytes)))
    with pytest.raises(DataError, match=rf"x\.gz: payload is \d+ bytes, {word} than the 12"):
        data.read_idx(path)


def test_count_mismatch(tmp_path, isolated):
    fake_mnist(tmp_path / "m")
    data.write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match=r"holds 12 images but .*train-labels.* holds 11 labels"):
        data.load("mnist", data_dir=tmp_path / "m")


def _idx_header(type_code: int, dims) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


def test_idx_dimensions_that_overflow_int64_are_refused(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(_idx_header(0x08, (2**31, 2**31, 4)))  # 2**64: wraps to 0 in int64
    with pytest.raises(DataError, match=r"shape \(2147483648, 2147483648, 4\) is too large: 18,446,744,073,709,551,616 bytes"):
        data.read_idx(path)
    path.write_bytes(_idx_header(0x08, (0, 2**32 - 1, 2**32 - 1)))  # empty, yet no array numpy can hold
    with pytest.raises(DataError, match="is too large"):
        data.read_idx(path)
    path.write_bytes(_idx_header(0x08, (2, 3)) + bytes(6))
    with pytest.raises(DataError, match="too large: 6 bytes; the limit is 5"):
        data.read_idx(path, max_bytes=5)


def test_a_gzip_bomb_is_inflated_only_as_far_as_the_header_needs(tmp_path, monkeypatch):
    import resource
    path = tmp_path / "bomb.gz"
    # 3x4 bytes claimed, 256 MiB of zeros inflated: refused after reading 12 bytes and counting a cap
    path.write_bytes(gzip.compress(_idx_header(0x08, (3, 4)) + bytes(256 * 2**20), compresslevel=9))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="longer than the 12"):
        data.read_idx(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB
    path.write_bytes(gzip.compress(_idx_header(0x08, (1024, 1024, 64))))
    with pytest.raises(DataError, match="too large: 67,108,864 bytes; the limit is 1,000"):
        data.read_idx(path, max_bytes=1000)


def _mnist_with(folder: Path, images: np.ndarray, labels: np.ndarray):
    fake_mnist(folder)
    data.write_idx(folder / "train-images-idx3-ubyte.gz", images)
    data.write_idx(folder / "train-labels-idx1-ubyte.gz", labels)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((2, 4, 4), np.uint8), np.array([1.5, 2.0], np.float32), "labels must be integers"),
    (np.full((2, 4, 4), np.nan, np.float32), np.array([1, 2], np.uint8), "finite"),
    (np.full((2, 4, 4), 1e30, np.float32), np.array([1, 2], np.uint8), r"must lie in \[0, 1\]"),
    (np.full((2, 4, 4), 300, np.int32), np.array([1, 2], np.uint8), "must lie in 0..255"),
    (np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.uint8), "holds no images"),
    (np.zeros((2, 4, 4), np.uint8), np.array([1, 12], np.uint8), "labels must be 0..9"),
])
def test_bad_values_are_refused(tmp_path, isolated, images, labels, message):
    _mnist_with(tmp_path / "m", images, labels)
    with pytest.raises(DataError, match=message):
        data.load("mnist", "train", tmp_path / "m")


def test_float_pixels_in_range_and_int_pixels_are_scaled(tmp_path, isolated):
    _mnist_with(tmp_path / "m", np.full((2, 4, 4), 0.5, np.float32), np.array([1, 2], np.uint8))
    assert np.allclose(data.load("mnist", "train", tmp_path / "m").images, 0.5)
    _mnist_with(tmp_path / "n", np.full((2, 4, 4), 51, np.int32), np.array([1, 2], np.int32))
    assert np.allclose(data.load("mnist", "train", tmp_path / "n").images, 0.2)


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"no real data in {SHARED}")
def test_real_data(monkeypatch, isolated):
    monkeypatch.setenv("VQVIZ_DATA", str(SHARED))
    mnist = data.load("mnist", "train", download=False)
    assert mnist.images.shape == (60000, 1, 28, 28)
    assert np.bincount(mnist.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                  6265, 5851, 5949]
    assert mnist.images.max() == 1 and mnist.images.min() == 0
    fashion = data.load("fashion-mnist", "test", download=False)
    assert len(fashion) == 10000 and fashion.classes[9] == "Ankle boot"
