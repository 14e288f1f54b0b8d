"""2-D maps (vqviz.projection) and where they are kept (vqviz.map_store): hits, corrupt files, keys,
and PCA against scikit-learn."""

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA

from vqviz import map_store, projection
from vqviz.errors import ConfigError

KEY = dict(checkpoint_sha="ab" * 32, dataset="digits", split="test")


@pytest.fixture
def latents():
    rng = np.random.default_rng(0)
    # three well separated blobs in 16-D
    return np.concatenate([rng.normal(c, 0.3, (40, 16)) for c in (0.0, 3.0, 6.0)]).astype(np.float32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "vqviz" / "projections"


def test_pca_matches_scikit_learn(latents):
    xy = projection.project(latents, "pca")
    ref = PCA(n_components=2, random_state=0).fit_transform(latents)
    assert xy.shape == (120, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(xy, ref - ref.mean(0), atol=1e-4)


def test_tsne_separates_blobs_and_reports_progress(latents):
    seen = []
    xy = projection.project(latents, "tsne", perplexity=10, progress=lambda f, m: seen.append(f))
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    centres = np.stack([xy[i * 40:(i + 1) * 40].mean(0) for i in range(3)])
    spread = max(np.linalg.norm(xy[i * 40:(i + 1) * 40] - centres[i], axis=1).mean() for i in range(3))
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)) > 2 * spread
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 10 and seen == sorted(seen)


def test_same_seed_same_map(latents):
    a = projection.project(latents, "tsne", random_state=3, perplexity=10)
    b = projection.project(latents, "tsne", random_state=3, perplexity=10)
    np.testing.assert_array_equal(a, b)


def test_a_cache_hit_returns_the_same_array_without_recomputing(latents, cache, monkeypatch):
    first = map_store.cached_project(latents, "pca", **KEY)
    assert len(list(cache.glob("*.npy"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(projection, "project", fail)
    again = map_store.cached_project(latents, "pca", progress=fail, **KEY)
    np.testing.assert_array_equal(again, first)


def test_a_corrupt_cache_file_is_recomputed(latents, cache, monkeypatch):
    first = map_store.cached_project(latents, "pca", **KEY)
    (path,) = cache.glob("*.npy")
    for broken in (b"", b"not a numpy file", path.read_bytes()[:60]):
        path.write_bytes(broken)
        calls = []
        real = projection.project
        monkeypatch.setattr(projection, "project", lambda *a, **k: calls.append(1) or real(*a, **k))
        np.testing.assert_allclose(map_store.cached_project(latents, "pca", **KEY), first)
        assert calls == [1]
        monkeypatch.setattr(projection, "project", real)
    np.save(path, np.zeros((5, 2), np.float32))  # a readable file of the wrong shape
    np.testing.assert_allclose(map_store.cached_project(latents, "pca", **KEY), first)


def test_keys_differ_by_everything_that_changes_the_map():
    base = map_store.cache_key("sha", "digits", "test", 360, "tsne", {"perplexity": 30.0})
    assert base == map_store.cache_key("sha", "digits", "test", 360, "tsne", {})  # defaults filled in
    others = [
        map_store.cache_key("sha", "digits", "test", 360, "tsne", {"perplexity": 40.0}),
        map_store.cache_key("sha2", "digits", "test", 360, "tsne", {}),
        map_store.cache_key("sha", "mnist", "test", 360, "tsne", {}),
        map_store.cache_key("sha", "digits", "train", 360, "tsne", {}),
        map_store.cache_key("sha", "digits", "test", 361, "tsne", {}),
        map_store.cache_key("sha", "digits", "test", 360, "umap", {}),
        map_store.cache_key("sha", "digits", "test", 360, "tsne", {}, random_state=1),
    ]
    assert len({base, *others}) == len(others) + 1


def test_cached_maps_of_different_parameters_are_separate_files(latents, cache):
    a = map_store.cached_project(latents, "tsne", perplexity=5.0, **KEY)
    b = map_store.cached_project(latents, "tsne", perplexity=20.0, **KEY)
    assert len(list(cache.glob("*.npy"))) == 2 and not np.array_equal(a, b)


def test_bad_input_is_refused_clearly(latents):
    with pytest.raises(ConfigError, match="unknown projection"):
        projection.project(latents, "mds")
    with pytest.raises(ConfigError, match="no parameter perplexity"):
        projection.project(latents, "pca", perplexity=5)
    with pytest.raises(ConfigError, match="at least 3 points"):
        projection.project(latents[:2], "pca")
    bad = latents.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        projection.project(bad, "tsne")


def test_threads_do_not_change_the_key(latents, cache):
    map_store.cached_project(latents, "pca", n_jobs=4, **KEY)
    map_store.cached_project(latents, "pca", n_jobs=1, **KEY)
    assert len(list(cache.glob("*.npy"))) == 1


def _key_path(cache, latents):
    key = map_store.cache_key("abc", "digits", "test", len(latents), "pca", {})
    return Path(cache) / f"pca-{key}.npy"


def _count_fits(monkeypatch):
    calls = []
    real = projection.project
    monkeypatch.setattr(projection, "project", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_cache_header_claiming_absurd_rows_is_a_miss(latents, cache, monkeypatch):
    import resource
    path = _key_path(cache, latents)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**11, 2)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    calls = _count_fits(monkeypatch)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    xy = map_store.cached_project(latents, "pca", checkpoint_sha="abc", dataset="digits", split="test", cache=cache)
    assert xy.shape == (len(latents), 2) and calls == [1]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    assert np.array_equal(np.load(path), xy)  # rewritten whole


def test_a_fifo_in_place_of_the_cache_file_is_a_miss_not_a_hang(latents, cache, monkeypatch):
    path = _key_path(cache, latents)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    calls = _count_fits(monkeypatch)
    xy = map_store.cached_project(latents, "pca", checkpoint_sha="abc", dataset="digits", split="test", cache=cache)
    assert xy.shape == (len(latents), 2) and calls == [1]


def test_cache_writes_sweep_stale_temporaries_only(latents, cache):
    Path(cache).mkdir(parents=True, exist_ok=True)
    stale = Path(cache) / f".pca-{'0' * 32}.npy.x1.tmp"
    fresh = Path(cache) / f".tsne-{'1' * 32}.npy.x2.tmp"
    other = Path(cache) / "notes.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"x")
    old = time.time() - 2 * map_store.STALE_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    map_store.cached_project(latents, "pca", checkpoint_sha="abc", dataset="digits", split="test", cache=cache)
    assert not stale.exists() and fresh.exists() and other.exists()
    (written,) = Path(cache).glob("pca-*.npy")
    assert stat.S_IMODE(written.stat().st_mode) == 0o644 & ~_umask()


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


def test_a_map_stored_beside_a_checkpoint_is_read_before_the_cache_and_never_recomputed(latents, cache, tmp_path,
                                                                                          monkeypatch):
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    labels = np.repeat([0, 1, 2], 40)
    shipped = projection.project(latents, "pca", labels=labels) + 1.0  # not what a fit would give: it must be read
    path = map_store.store_beside(folder, shipped, "pca", **KEY)
    assert path.parent == folder / "maps" and path.name.startswith("pca-")
    assert path.name == f"pca-{map_store.cache_key(**KEY, n=120, method='pca', params={}, stratified=True)}.npy"
    calls = _count_fits(monkeypatch)
    got = map_store.cached_project(latents, "pca", labels=labels, beside=folder, **KEY)
    np.testing.assert_array_equal(got, shipped)
    assert calls == [] and not list(cache.glob("*.npy"))  # neither computed nor copied into the user's cache
    np.testing.assert_array_equal(map_store.read_beside(folder, 120, "pca", **KEY), shipped)
    # another split, another method or another model's weights do not match it
    assert map_store.read_beside(folder, 120, "tsne", **KEY) is None
    assert map_store.read_beside(folder, 120, "pca", **{**KEY, "checkpoint_sha": "cd" * 32}) is None
    other = map_store.cached_project(latents, "pca", labels=labels, beside=folder, **{**KEY, "split": "train"})
    assert calls == [1] and not np.array_equal(other, shipped)


def test_a_stored_map_that_is_not_exactly_the_map_is_ignored_and_bad_maps_are_refused(latents, cache, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    labels = np.repeat([0, 1, 2], 40)
    path = map_store.store_beside(folder, np.ones((120, 2)), "pca", **KEY)
    np.save(path, np.ones((120, 2), np.float64))  # the right key, the wrong dtype: a pickle-free reader refuses it
    xy = map_store.cached_project(latents, "pca", labels=labels, beside=folder, **KEY)
    np.testing.assert_allclose(xy, projection.project(latents, "pca"), atol=1e-5)
    path.unlink()
    os.mkfifo(path)  # a FIFO is a miss, not a hang
    assert map_store.read_beside(folder, 120, "pca", **KEY) is None
    with pytest.raises(ConfigError, match=r"\(N, 2\)"):
        map_store.store_beside(folder, np.ones((120, 3)), "pca", **KEY)
    with pytest.raises(ConfigError, match="finite"):
        map_store.store_beside(folder, np.full((120, 2), np.nan), "pca", **KEY)
    with pytest.raises(ConfigError, match="no such checkpoint folder"):
        map_store.store_beside(tmp_path / "missing", np.ones((120, 2)), "pca", **KEY)
