"""The data tests' isolation: no real data folder, no mirror, no proxy."""

import pytest

from vqviz.data import paths


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data folder, no mirror override, no proxy; the cache is ``tmp_path/cache``."""
    monkeypatch.setattr(paths, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    for var in ("VQVIZ_DATA", "VQVIZ_MIRROR", "http_proxy", "HTTP_PROXY", "https_proxy",
                "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"
