"""vqviz.data.paths: the user's folders, from the XDG variables or platformdirs, read at call time."""

import os
import sys
from pathlib import Path

import platformdirs

from vqviz import data, map_store
from vqviz.data import paths


def test_xdg_variables_are_honoured_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    assert paths.user_cache_dir() == paths.cache_dir() == tmp_path / "c" / "vqviz"
    assert paths.user_data_dir() == tmp_path / "d" / "vqviz"
    assert map_store.cache_dir() == tmp_path / "c" / "vqviz" / "projections"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert data.cache_dir() == tmp_path / "other" / "vqviz"


def test_without_the_variables_the_platform_folders_are_used(monkeypatch, tmp_path):
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(paths, "CACHE_DIR", None)
    assert paths.user_cache_dir() == platformdirs.user_cache_path("vqviz", appauthor=False)
    assert paths.user_data_dir() == platformdirs.user_data_path("vqviz", appauthor=False)
    if sys.platform.startswith("linux"):  # the XDG defaults, as before platformdirs
        assert paths.user_cache_dir() == tmp_path / ".cache" / "vqviz"
        assert paths.user_data_dir() == tmp_path / ".local" / "share" / "vqviz"


def test_the_cache_setting_moves_downloads_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "downloads")
    assert data.cache_dir() == tmp_path / "downloads"
    assert map_store.cache_dir() == tmp_path / "c" / "vqviz" / "projections"


def test_vqviz_data_is_split_like_path(tmp_path, monkeypatch):
    monkeypatch.setenv("VQVIZ_DATA", f"{tmp_path / 'a'}{os.pathsep}~/b{os.pathsep}")
    assert paths.env_data_dirs() == [tmp_path / "a", Path.home() / "b"]
