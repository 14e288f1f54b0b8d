"""Large maps: a method fitted on a sample places the other points, new points join a fitted
map, and the page draws every point of such a map.

The thresholds are lowered (2,000 points, a fit of 500), and t-SNE runs fewer iterations,
so that these tests take seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from sklearn.datasets import make_blobs
from streamlit.testing.v1 import AppTest

from vqviz_app import catalog
from vqviz import map_store, projection
from vqviz.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
N, FIT, BLOBS = 2000, 500, 5


@pytest.fixture(scope="module")
def blobs():
    """Five well separated blobs in 16-D: 2,000 points to map and 200 held out."""
    x, y = make_blobs(N + 200, n_features=16, centers=BLOBS, cluster_std=1.0, random_state=0)
    return x[:N].astype(np.float32), y[:N], x[N:].astype(np.float32), y[N:]


@pytest.fixture(scope="module")
def short_tsne():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(projection, "_TSNE_ITERS", (100, 150))
        yield


@pytest.fixture(scope="module")
def fitted(blobs, short_tsne):
    x, y, _, _ = blobs
    return projection.Projector("tsne", max_fit=FIT, random_state=0, perplexity=20.0).fit(x, y)


def _centres(xy, labels):
    return np.stack([xy[labels == c].mean(0) for c in range(BLOBS)])


def test_every_point_gets_finite_coordinates_and_each_label_its_share_of_the_fit(fitted, blobs):
    _, y, _, _ = blobs
    assert fitted.embedding_.shape == (N, 2) and fitted.embedding_.dtype == np.float32
    assert np.isfinite(fitted.embedding_).all()
    np.testing.assert_allclose(fitted.embedding_.mean(0), 0, atol=1e-3)
    rows = fitted.fit_rows_
    assert len(rows) == FIT and np.all(np.diff(rows) > 0)
    assert np.all(np.abs(np.bincount(y[rows]) - FIT * np.bincount(y) / N) < 1)  # each blob's share, rounded


def test_the_fitted_sample_keeps_exactly_its_own_map(fitted, blobs, short_tsne):
    x, _, _, _ = blobs
    alone = projection.Projector("tsne", max_fit=FIT, random_state=0, perplexity=20.0).fit(x[fitted.fit_rows_])
    shift = fitted.embedding_[fitted.fit_rows_] - alone.embedding_  # only the centring differs
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-4)


def test_placed_and_new_points_land_in_their_own_blob(fitted, blobs):
    x, y, new_x, new_y = blobs
    fit = fitted.fit_rows_
    centres = _centres(fitted.embedding_[fit], y[fit])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    region = 0.5 * gaps[np.triu_indices(BLOBS, 1)].min()  # each blob's own disc on the map
    placed = np.setdiff1d(np.arange(N), fit)
    for xy, labels in ((fitted.embedding_[placed], y[placed]), (fitted.transform(new_x), new_y)):
        distances = np.linalg.norm(xy[:, None] - centres[None], axis=2)  # (M, blobs)
        assert np.all(distances[np.arange(len(xy)), labels] < region)


def test_transform_moves_no_point_and_does_not_depend_on_the_chunks(fitted, blobs, monkeypatch):
    _, _, new_x, _ = blobs
    before = fitted.embedding_.copy()
    once = fitted.transform(new_x)
    monkeypatch.setattr(projection, "CHUNK", 64)
    seen = []
    again = fitted.transform(new_x, progress=lambda f, m: seen.append(f))
    np.testing.assert_allclose(again, once, atol=1e-4)
    np.testing.assert_array_equal(fitted.embedding_, before)
    assert len(seen) == 200 // 64 + 2 and seen == sorted(seen) and seen[-1] == 1.0
    assert fitted.transform(new_x[:0]).shape == (0, 2)


def test_the_same_seed_gives_the_same_map(fitted, blobs, short_tsne):
    x, y, _, _ = blobs
    again = projection.Projector("tsne", max_fit=FIT, random_state=0, perplexity=20.0).fit(x, y)
    np.testing.assert_array_equal(again.embedding_, fitted.embedding_)
    np.testing.assert_array_equal(again.fit_rows_, fitted.fit_rows_)
    assert not np.array_equal(projection.fit_sample(N, FIT, y, random_state=1), fitted.fit_rows_)


def test_pca_fitted_on_a_sample_agrees_with_a_full_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)) * [5, 3, 1, 1, 1, 1]  # two clear directions, found by any sample
    sampled = projection.project(x, "pca", max_fit=1000)
    full = projection.project(x, "pca")
    flip = np.sign(np.sum(sampled * full, axis=0))  # a principal direction's sign is arbitrary
    assert np.corrcoef(sampled[:, 0] * flip[0], full[:, 0])[0, 1] > 0.999


def test_fit_sample_is_exact_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    rows = projection.fit_sample(1000, 100, labels, random_state=0)
    assert len(np.unique(rows)) == 100 and list(np.bincount(labels[rows])) == [90, 9, 1]
    np.testing.assert_array_equal(rows, projection.fit_sample(1000, 100, labels, random_state=0))
    assert len(projection.fit_sample(1000, 999, None, random_state=0)) == 999
    np.testing.assert_array_equal(projection.fit_sample(50, 100, labels[:50]), np.arange(50))


def test_sampled_maps_have_their_own_cache_keys(tmp_path):
    key = lambda n, **kw: map_store.cache_key("sha", "mnist", "all", n, "tsne", {}, **kw)  # noqa: E731
    # Up to max_fit the key is the one of a full map, as before sampling existed.
    assert key(FIT) == key(FIT, max_fit=FIT, stratified=True) == key(FIT, max_fit=10 * FIT)
    assert len({key(N), key(N, max_fit=FIT), key(N, max_fit=FIT, stratified=True), key(N, max_fit=FIT + 1)}) == 4

    x = np.random.default_rng(0).normal(size=(N, 8)).astype(np.float32)
    spec = dict(checkpoint_sha="ab" * 32, dataset="digits", split="all", cache=tmp_path)
    sampled = map_store.cached_project(x, "pca", max_fit=FIT, **spec)
    full = map_store.cached_project(x, "pca", **spec)
    assert len(list(tmp_path.glob("*.npy"))) == 2 and not np.array_equal(sampled, full)
    np.testing.assert_array_equal(map_store.cached_project(x, "pca", max_fit=FIT, **spec), sampled)


def test_bad_input_is_refused_clearly(fitted, blobs):
    x, y, _, _ = blobs
    with pytest.raises(ConfigError, match="fitted on 16-D latents, but these are 8-D"):
        fitted.transform(x[:5, :8])
    bad = x[:5].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ConfigError, match="NaN or infinite"):
        fitted.transform(bad)
    with pytest.raises(ConfigError, match="not been fitted"):
        projection.Projector("pca").transform(x)
    with pytest.raises(ConfigError, match=r"labels must be \(2000,\)"):
        projection.Projector("pca", max_fit=FIT).fit(x, y[:10])
    with pytest.raises(ConfigError, match="max_fit must be at least 3"):
        projection.Projector("pca", max_fit=2).fit(x)


def test_the_page_draws_every_point_of_a_map_fitted_on_a_sample(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "app"))
    from driving import maps

    shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4", tmp_path / "bundled" / "seq-digits-cae4")
    monkeypatch.setattr(catalog, "BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("VQVIZ_CHECKPOINTS", raising=False)
    monkeypatch.setattr(projection, "MAX_FIT", 200)  # the 360 test digits: a fit of 200, 160 placed
    monkeypatch.setattr(projection, "_TSNE_ITERS", (50, 100))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception and not at.error
    (drawn,) = maps(at)
    assert drawn.xy.shape == (360, 2) and np.isfinite(drawn.xy).all()  # the 200 fitted and the 160 placed
    at.session_state["map_selection"] = {"rows": list(range(360)), "kind": "box"}  # a box around them all
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == "360 points selected"
    st.cache_data.clear()
    st.cache_resource.clear()
