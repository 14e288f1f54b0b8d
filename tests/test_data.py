"""Tests of vqviz.data: IDX files, the search order, downloads, CIFAR pickles, image folders."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqviz import data
from vqviz.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data folder, no mirror override, no proxy; the cache is ``tmp_path/cache``."""
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    for var in ("VQVIZ_DATA", "VQVIZ_MIRROR", "http_proxy", "HTTP_PROXY", "https_proxy",
                "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"


def fake_mnist(folder: Path, n_train=12, n_test=5, gz=True, seed=0) -> dict[str, np.ndarray]:
    """Write the four MNIST files with random content; return the arrays by base name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for base, n in zip(IDX_FILES, (n_train, n_train, n_test, n_test)):
        shape = (n, 28, 28) if "images" in base else (n,)
        arrays[base] = rng.integers(0, 256 if "images" in base else 10, shape, dtype=np.uint8)
        data.write_idx(folder / (base + (".gz" if gz else "")), arrays[base])
    return arrays


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server for ``tmp_path/mirror``; yields (base url, folder)."""
    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# IDX files ---------------------------------------------------------------------------------

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


def test_bad_name_and_split():
    with pytest.raises(DataError, match="'mnits'.*digits, mnist, fashion-mnist, cifar10"):
        data.load("mnits")
    with pytest.raises(DataError, match="unknown split 'valid'.*train, test"):
        data.load("digits", "valid")


# search order and downloads -----------------------------------------------------------------

def test_raw_files_and_search_order(tmp_path, isolated, monkeypatch):
    env = fake_mnist(tmp_path / "env" / "mnist", seed=1)
    explicit = fake_mnist(tmp_path / "explicit", gz=False, seed=2)
    monkeypatch.setenv("VQVIZ_DATA", str(tmp_path / "env"))
    assert data.find_dir("mnist") == tmp_path / "env" / "mnist"
    assert data.find_dir("mnist", tmp_path / "explicit") == tmp_path / "explicit"
    # A parent holding mnist/ works as data_dir too.
    assert data.find_dir("mnist", tmp_path / "env") == tmp_path / "env" / "mnist"
    for folder, arrays in ((None, env), (tmp_path / "explicit", explicit)):
        ds = data.load("mnist", "test", folder)
        np.testing.assert_array_equal(ds.images[:, 0] * 255, arrays["t10k-images-idx3-ubyte"])
        np.testing.assert_array_equal(ds.labels, arrays["t10k-labels-idx1-ubyte"])


def test_download(server, isolated, monkeypatch):
    url, mirror = server
    arrays = fake_mnist(mirror)
    monkeypatch.setitem(data.CHECKSUMS, "mnist",
                        {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url.rstrip("/"))
    calls = []
    ds = data.load("mnist", "train", progress=lambda done, total: calls.append((done, total)))
    assert ds.images.shape == (12, 1, 28, 28) and ds.classes == tuple("0123456789")
    np.testing.assert_array_equal(ds.labels, arrays["train-labels-idx1-ubyte"])
    cached = sorted(p.name for p in (isolated / "mnist").iterdir())
    assert cached == sorted(f + ".gz" for f in IDX_FILES)
    assert len(calls) >= 4 and all(done == total for done, total in calls[-1:])
    assert data.find_dir("mnist") == isolated / "mnist"


def test_checksum_mismatch_leaves_nothing(server, isolated, monkeypatch):
    url, mirror = server
    fake_mnist(mirror)
    sums = {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES}
    actual = sums["train-images-idx3-ubyte.gz"]
    sums["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setitem(data.CHECKSUMS, "mnist", sums)
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    match = rf"train-images-idx3-ubyte\.gz: expected {'0' * 64}, got {actual}"
    with pytest.raises(DataError, match=match):
        data.load("mnist")
    assert list((isolated / "mnist").iterdir()) == []


def test_not_found_lists_folders(tmp_path, isolated, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VQVIZ_MIRROR", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("VQVIZ_DATA", str(tmp_path / "env"))
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError) as err:
        data.load("mnist", data_dir=tmp_path / "mine")
    message = str(err.value)
    for folder in data.search_dirs("mnist", tmp_path / "mine"):
        assert str(folder) in message
    assert "The download failed" in message and "VQVIZ_DATA" in message
    assert "mine (none of the files)" in message
    with pytest.raises(DataError, match="(?s)download=False.*apt install dataset-fashion-mnist"):
        data.load("fashion-mnist", download=False)


# digits and real data -----------------------------------------------------------------------

def test_digits():
    from sklearn.datasets import load_digits

    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.images.shape[1:] == test.shape == (1, 8, 8)
    assert len(train) + len(test) == 1797 and train.n_classes == 10
    for ds in (train, test):
        assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int64
        assert 0 <= ds.images.min() and ds.images.max() <= 1

    def rows(x):
        x = x.reshape(len(x), -1)
        return x[np.lexsort(x.T[::-1])]

    # train + test is the whole set as a multiset, so the split is a partition: disjoint.
    full = load_digits().images.astype(np.float32) / 16
    np.testing.assert_array_equal(rows(np.concatenate([train.images, test.images])), rows(full))
    # Stratified: each class has ~20% of its images in test.
    counts = np.bincount(np.concatenate([train.labels, test.labels]))
    assert np.all(np.abs(np.bincount(test.labels) - 0.2 * counts) <= 1)
    data._load_cached.cache_clear()  # deterministic across fresh loads, not just the cache
    again = data.load("digits", "test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.labels, test.labels)


def test_cached_arrays_are_read_only():
    ds = data.load("digits")
    assert data.load("digits") is ds
    with pytest.raises(ValueError):
        ds.images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError):
        ds.labels[0] = 1


def test_size_and_channels():
    ds = data.load("digits", "test", size=(16, 12), channels=3)
    assert ds.shape == (3, 16, 12) and ds.images.dtype == np.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    np.testing.assert_array_equal(ds.images[:, 0], ds.images[:, 2])
    with pytest.raises(DataError, match="channels"):
        data.load("digits", channels=2)


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


# image folders ------------------------------------------------------------------------------

def write_pngs(root: Path, per_class=5):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (10 + i, 8), colour).save(root / cls / f"{i}.png")


def test_folder(tmp_path):
    write_pngs(tmp_path / "pets")
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        train = data.load(f"folder:{tmp_path / 'pets'}", "train")
    with pytest.warns(UserWarning):
        test = data.load(f"folder:{tmp_path / 'pets'}", "test", size=(6, 7), channels=3)
    assert train.classes == ("cat", "dog") and train.shape == (1, 28, 28)
    assert len(train) == 8 and len(test) == 2 and sorted(test.labels) == [0, 1]
    assert test.shape == (3, 6, 7)
    # Red cats, blue dogs: the colour channel identifies the label.
    assert np.all(test.images[test.labels == 0, 0] > 0.9)
    assert np.all(test.images[test.labels == 1, 2] > 0.9)


def test_folder_with_splits(tmp_path):
    write_pngs(tmp_path / "pets" / "train", 3)
    write_pngs(tmp_path / "pets" / "test", 2)
    ds = data.load(f"folder:{tmp_path / 'pets'}", "test", size=(4, 4))
    assert len(ds) == 4 and ds.labels.tolist() == [0, 0, 1, 1]


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: folder is empty"):
        data.load(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "flat").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="flat: folder has no class sub-folders"):
        data.load(f"folder:{tmp_path / 'flat'}")
    (tmp_path / "junk" / "cls").mkdir(parents=True)
    (tmp_path / "junk" / "cls" / "a.txt").write_text("x")
    with pytest.warns(UserWarning, match="a.txt"), pytest.raises(DataError, match="no images"):
        data.load(f"folder:{tmp_path / 'junk'}")
    with pytest.raises(DataError, match="no such folder"):
        data.load(f"folder:{tmp_path / 'absent'}")


# CIFAR-10 -----------------------------------------------------------------------------------

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


def make_tar(path: Path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_cifar_download(server, isolated, tmp_path, monkeypatch):
    url, mirror = server
    fake_cifar(tmp_path / "src")
    files = {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in (tmp_path / "src").iterdir()}
    make_tar(mirror / "cifar-10-python.tar.gz", files)
    monkeypatch.setitem(data.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": sha256(mirror / "cifar-10-python.tar.gz")})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    assert len(data.load("cifar10", "test")) == 4
    assert sorted(p.name for p in (isolated / "cifar10").iterdir()) == ["cifar-10-batches-py"]


def test_cifar_download_rejects_unsafe_tar(server, isolated, monkeypatch):
    url, mirror = server
    make_tar(mirror / "cifar-10-python.tar.gz", {"../escape": b"x"})
    monkeypatch.setitem(data.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": sha256(mirror / "cifar-10-python.tar.gz")})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    with pytest.raises(DataError, match=r"refusing to extract unsafe member '\.\./escape'"):
        data.load("cifar10")
    assert not (isolated / "escape").exists()


# Caps and values ----------------------------------------------------------------------------

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


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20000, 5000])  # over PIL's bomb limit; over ours only
def test_image_bombs_are_data_errors_read_from_the_header(tmp_path, side):
    write_pngs(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "bomb.png").write_bytes(_png_header(side, side))
    with pytest.raises(DataError, match="bomb.png: .*(too large|the limit is)"):
        data.load(f"folder:{tmp_path / 'pets'}")


def test_the_pixel_cap_is_a_setting(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pets")  # images of up to 14 x 8
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match="8 pixels; the limit is 100"):
        data.load(f"folder:{tmp_path / 'pets'}")


def test_a_folder_is_read_to_a_bounded_depth_and_count(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pets")
    deep = tmp_path / "pets" / "cat" / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(deep / "deep.png")
    (tmp_path / "pets" / "dog" / "fifo.png").parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "pets" / "dog" / "fifo.png")
    with pytest.warns(UserWarning, match="fifo.png"):
        both = len(data.load(f"folder:{tmp_path / 'pets'}", "train")) + \
            len(data.load(f"folder:{tmp_path / 'pets'}", "test"))
    assert both == 10  # the image five folders down and the FIFO are not read
    monkeypatch.setattr(data, "MAX_FOLDER_FILES", 7)
    with pytest.raises(DataError, match="more than 7 files"):
        data.load(f"folder:{tmp_path / 'pets'}")


def test_only_image_suffixes_are_opened(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "x.csv").write_bytes(b"1,2")
    opened = []
    real = data._open_image
    monkeypatch.setattr(data, "_open_image", lambda p: opened.append(p.suffix) or real(p))
    with pytest.warns(UserWarning, match="x.csv"):
        data.load(f"folder:{tmp_path / 'pets'}")
    assert set(opened) == {".png"}


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
    data._load_cached.cache_clear()
    with pytest.raises(DataError, match="label_names must be a list"):
        data.load("cifar10", "test", folder)


def test_cifar_pickles_over_the_op_cap_are_refused_before_unpickling(tmp_path, isolated, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    monkeypatch.setattr(data, "MAX_PICKLE_OPS", 10)
    monkeypatch.setattr(data._ArrayUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(DataError, match="more than 10 opcodes"):
        data.load("cifar10", "test", folder)


class _Endless(http.server.BaseHTTPRequestHandler):
    """Serves every path with a declared length and a body that trickles or never ends."""
    length = None
    delay = 0.0

    def do_GET(self):
        self.send_response(200)
        if self.length is not None:
            self.send_header("Content-Length", str(self.length))
        self.end_headers()
        import time
        try:
            for _ in range(100_000):
                self.wfile.write(b"x" * (1 if self.delay else 65536))
                self.wfile.flush()
                time.sleep(self.delay)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", _Endless
    httpd.shutdown()
    httpd.server_close()
    _Endless.length, _Endless.delay = None, 0.0


def _patch_mnist(monkeypatch, url, size):
    monkeypatch.setitem(data.CHECKSUMS, "mnist", {f + ".gz": "0" * 64 for f in IDX_FILES})
    monkeypatch.setitem(data.SIZES, "mnist", {f + ".gz": size for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url)


def test_a_download_longer_than_the_known_size_is_cut_off(endless, isolated, monkeypatch):
    url, _ = endless
    _patch_mnist(monkeypatch, url, 1_000_000)
    with pytest.raises(DataError, match="runs past the 1,000,000 bytes"):
        data.load("mnist")
    assert not list((isolated / "mnist").iterdir())


def test_a_larger_content_length_is_refused_before_the_body(endless, isolated, monkeypatch):
    url, handler = endless
    handler.length = 10**12
    _patch_mnist(monkeypatch, url, 1_000_000)
    with pytest.raises(DataError, match="announces 1,000,000,000,000 bytes"):
        data.load("mnist")


def test_a_trickling_download_hits_the_overall_deadline(endless, isolated, monkeypatch):
    import time
    url, handler = endless
    handler.delay = 0.01
    _patch_mnist(monkeypatch, url, 1_000_000)
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE", 0.5)
    t = time.perf_counter()
    with pytest.raises(DataError, match="not finished after 0 s|not finished after 1 s"):
        data.load("mnist")
    assert time.perf_counter() - t < 5


def test_a_download_sweeps_what_killed_downloads_left(server, isolated, monkeypatch):
    import time
    url, mirror = server
    fake_mnist(mirror)
    monkeypatch.setitem(data.CHECKSUMS, "mnist", {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    dest = isolated / "mnist"
    dest.mkdir(parents=True)
    stale, fresh, other = (dest / ".train-images-idx3-ubyte.gz.ab12.tmp", dest / ".t10k-images-idx3-ubyte.gz.cd.tmp",
                           dest / ".notes.tmp")
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 2 * data.STALE_SECONDS
    for p in (stale, other):
        os.utime(p, (old, old))
    data.load("mnist")
    assert not stale.exists() and fresh.exists() and other.exists()
