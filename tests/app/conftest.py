"""The AppTest environment, set up once for every test of the app.

The bundled checkpoints are copied into a private folder, so that checkpoints other
people add to ``vqviz_app/checkpoints/`` do not change what these tests see; the map cache is
shared by the session (each map is computed once), the data home is private to each
test, and Streamlit's caches are cleared around every test.
"""

from __future__ import annotations

import shutil

import pytest
from driving import ROOT, SHIPPED

from vqviz_app import cache, catalog, jobs

CODEBOOK_SHIPPED = ("skvq-digits", "skvq-digits-vq", "vqvae-digits")


@pytest.fixture(scope="session")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled")
    for name in SHIPPED:
        shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / name, root / name)
    return root


@pytest.fixture(scope="session")
def map_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # shared: each map is computed once per session


@pytest.fixture(autouse=True)
def app_env(bundled, map_cache, tmp_path, monkeypatch):
    """Private checkpoint folders and caches; Streamlit's caches cleared around every test."""
    monkeypatch.setattr(catalog, "BUNDLED_DIR", bundled)
    monkeypatch.setenv("VQVIZ_RESULTS", str(tmp_path / "results"))  # no published benchmark unless a test writes one
    monkeypatch.setenv("XDG_CACHE_HOME", str(map_cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("VQVIZ_CHECKPOINTS", raising=False)
    cache.clear()
    yield
    jobs.wait_all(300)  # nothing of this test still running in the next one
    jobs.registry().forget_finished()  # nor listed on its Models page
    cache.clear()


@pytest.fixture(scope="session")
def bundled_codebooks(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled-codebooks")
    for name in (*SHIPPED, *CODEBOOK_SHIPPED):
        shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / name, root / name)
    return root


@pytest.fixture
def codebooks(app_env, bundled_codebooks, monkeypatch):
    """The private bundled folder with the shipped VQ-VAE and SK-VQ checkpoints added."""
    monkeypatch.setattr(catalog, "BUNDLED_DIR", bundled_codebooks)
    return bundled_codebooks
