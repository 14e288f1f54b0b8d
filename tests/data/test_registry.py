"""vqviz.data.registry: names, splits, the search order, the bundled digits, the in-memory cache."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from data_fakes import fake_mnist
from vqviz import data
from vqviz.data import download, registry
from vqviz.errors import DataError


def test_bad_name_and_split():
    with pytest.raises(DataError, match="'mnits'.*digits, mnist, fashion-mnist, cifar10"):
        data.load("mnits")
    with pytest.raises(DataError, match="unknown split 'valid'.*train, test"):
        data.load("digits", "valid")


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
    with pytest.raises(DataError, match="(?s)not been downloaded yet.*apt install dataset-fashion-mnist"):
        data.load("fashion-mnist", download=False)


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
    registry._load_cached.cache_clear()  # deterministic across fresh loads, not just the cache
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


def test_a_data_set_is_one_decorated_reader(tmp_path, isolated, monkeypatch):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    monkeypatch.setattr(registry, "NAMES", registry.NAMES)
    for table in ("MIRRORS", "CHECKSUMS", "SIZES"):
        monkeypatch.setattr(download, table, dict(getattr(download, table)))
    (tmp_path / "squares").mkdir()
    (tmp_path / "squares" / "pixels.txt").write_text("0.25")

    @data.register_dataset("squares", shape=(1, 2, 2), files=("pixels.txt",))
    def squares(folder, split):
        value = float((folder / "pixels.txt").read_text())
        return np.full((3, 1, 2, 2), value, np.float32), np.array([0, 1, 0]), ("dark", "light")

    assert data.NAMES[-1] == "squares" and "squares" not in registry.SPLITS
    assert data.shape_of("squares") == data.load("squares", "test", tmp_path).shape == (1, 2, 2)
    ds = data.load("squares", "test", tmp_path, size=(4, 4))
    assert ds.shape == (1, 4, 4) and ds.classes == ("dark", "light") and np.allclose(ds.images, 0.25)
    assert data.find_dir("squares", tmp_path) == tmp_path / "squares"
    with pytest.raises(DataError, match="(?s)squares: data set not found.*put pixels.txt in one"):
        data.load("squares", download=False)
    with pytest.raises(ValueError, match="already registered"):
        data.register_dataset("squares")(squares)


def test_the_image_shape_is_part_of_the_registration(monkeypatch):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    monkeypatch.setattr(registry, "_SCHEMES", dict(registry._SCHEMES))
    monkeypatch.setattr(registry, "NAMES", registry.NAMES)
    # Known without reading a file, and the shape that load gives.
    assert data.shape_of("digits") == data.load("digits", "test").shape == (1, 8, 8)
    assert [data.shape_of(n) for n in ("mnist", "fashion-mnist", "cifar10")] == [(1, 28, 28), (1, 28, 28), (3, 32, 32)]
    assert data.shape_of("folder:/any/where") == (1, 28, 28) and data.shape_of("nothing") is None
    # A registration without a shape, or with a wrong one, is refused at once, saying what to give.
    with pytest.raises(ValueError, match=r"data set 'blank' is registered without its image shape: give shape=\("):
        data.register_dataset("blank")
    with pytest.raises(ValueError, match=r"the scheme 'zip' is registered without its image shape"):
        data.register_scheme("zip")
    for bad in ((8, 8), (1, 0, 8), (1, 8.0, 8), "1x8x8"):
        with pytest.raises(ValueError, match="shape must be \\(channels, height, width\\) of positive ints"):
            data.register_dataset("blank", shape=bad)
    assert "blank" not in data.NAMES and data.shape_of("blank") is None and "zip" not in registry._SCHEMES


def test_settings_of_the_package_are_those_of_their_modules(monkeypatch):
    from vqviz.data import cifar, folder, idx, paths

    for owner, name in ((folder, "MAX_IMAGE_PIXELS"), (cifar, "MAX_PICKLE_OPS"), (idx, "MAX_IDX_BYTES"),
                        (download, "DOWNLOAD_DEADLINE"), (paths, "CACHE_DIR"), (registry, "MAX_CLASSES")):
        monkeypatch.setattr(data, name, 123)
        assert getattr(owner, name) == 123 and getattr(data, name) == 123
    assert data.CHECKSUMS is download.CHECKSUMS and data.SIZES["mnist"]["t10k-labels-idx1-ubyte.gz"] == 4542
    with pytest.raises(AttributeError):
        data.NO_SUCH_SETTING
