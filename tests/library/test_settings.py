"""The server's settings (:mod:`vqviz.settings`): where each comes from, bad values, and the
path helpers that keep a visitor inside the roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vqviz import settings
from vqviz.errors import ConfigError
from vqviz.settings import Root, ServerSettings, label_roots, locate, server_settings, shown


def test_defaults_without_environment_or_file(tmp_path):
    assert server_settings({"VQVIZ_CONFIG": "", "HOME": str(tmp_path)}) == ServerSettings() == ServerSettings(
        None, 2, 1, 2048, 20_000)


def test_the_environment_overrides_the_file_and_the_file_the_defaults(tmp_path):
    toml = tmp_path / "conf" / "vqviz.toml"
    toml.parent.mkdir()
    toml.write_text('[server]\nroots = ["images", "/srv/more"]\nmax_jobs = 4\nupload_quota_mb = 10.5\n')
    got = server_settings({"VQVIZ_CONFIG": str(toml)})
    assert got.roots == (tmp_path / "conf" / "images", Path("/srv/more"))  # relative to the file
    assert (got.max_jobs, got.max_jobs_per_session, got.upload_quota_mb) == (4, 1, 10.5)
    env = {"VQVIZ_CONFIG": str(toml), "VQVIZ_ROOTS": os.pathsep.join(["/a", "", "/b"]), "VQVIZ_MAX_JOBS": "1",
           "VQVIZ_MAX_JOBS_PER_SESSION": "3", "VQVIZ_MAX_UPLOAD_IMAGES": "50"}
    got = server_settings(env)
    assert got == ServerSettings((Path("/a"), Path("/b")), 1, 3, 10.5, 50)


@pytest.mark.parametrize("env, named", [
    ({"VQVIZ_MAX_JOBS": "two"}, "VQVIZ_MAX_JOBS = 'two'"),
    ({"VQVIZ_MAX_JOBS_PER_SESSION": "-1"}, "VQVIZ_MAX_JOBS_PER_SESSION"),
    ({"VQVIZ_UPLOAD_QUOTA_MB": "lots"}, "expected a number"),
    ({"VQVIZ_MAX_UPLOAD_IMAGES": "1.5"}, "whole number"),
])
def test_a_bad_value_names_its_variable(env, named):
    with pytest.raises(ConfigError) as e:
        server_settings({"VQVIZ_CONFIG": "", **env})
    assert named in str(e.value)


@pytest.mark.parametrize("text, message", [
    ("[server]\nmax_jobz = 3\n", "unknown [server] setting(s) max_jobz"),
    ("[server]\nroots = 3\n", "expected a list of folders"),
    ("[server]\nmax_jobs = true\n", "whole number"),
    ("[server\n", "cannot read the settings file"),
])
def test_a_bad_file_names_the_file_and_the_setting(text, message, tmp_path):
    toml = tmp_path / "vqviz.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError) as e:
        server_settings({"VQVIZ_CONFIG": str(toml)})
    assert message in str(e.value) and str(toml) in str(e.value)


def test_a_named_file_that_is_missing_is_an_error_not_ignored(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        server_settings({"VQVIZ_CONFIG": str(tmp_path / "nope.toml")})


def test_the_file_in_the_working_folder_is_read(tmp_path, monkeypatch):
    (tmp_path / settings.FILE).write_text("[server]\nmax_jobs = 7\n")
    monkeypatch.chdir(tmp_path)
    assert server_settings({}).max_jobs == 7


def test_labels_are_unique_and_a_folder_is_kept_once(tmp_path):
    a, b = tmp_path / "x" / "runs", tmp_path / "y" / "runs"
    a.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(a)
    got = label_roots([("data", tmp_path / "d"), (None, a), (None, b), (None, tmp_path / "alias")])
    assert [r.label for r in got] == ["data", "runs", "runs-2"]


@pytest.fixture
def tree(tmp_path):
    """A root ``allowed`` (with a folder, a link inside it and links out) beside a folder ``outside``."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "mine" / "cats").mkdir(parents=True)
    (outside / "secret").mkdir(parents=True)
    (allowed / "in-link").symlink_to(allowed / "mine")
    (allowed / "out").symlink_to(outside / "secret")
    (allowed / "out-dangling").symlink_to(outside / "missing")
    return (Root("allowed", allowed),), allowed, outside


def test_locate_takes_paths_inside_by_label_or_in_full(tree):
    roots, allowed, _ = tree
    real = (allowed / "mine").resolve()
    assert locate("allowed/mine", roots) == locate(f" {allowed}/mine ", roots) == real
    assert locate("allowed/in-link", roots) == real  # a link that stays inside is followed
    assert locate("allowed", roots) == allowed.resolve()
    assert locate("allowed/not-yet", roots) == allowed.resolve() / "not-yet"  # inside: its own message later


@pytest.mark.parametrize("typed", [
    "{outside}/secret", "{outside}/missing", "{allowed}/../outside/secret", "allowed/../outside/missing",
    "allowed/out", "allowed/out-dangling", "allowed/out/deeper", "../outside/secret", "outside/secret",
    "/etc", "/nonexistent", "", "~",
])
def test_locate_refuses_every_path_outside_alike(typed, tree):
    roots, allowed, outside = tree
    assert locate(typed.format(allowed=allowed, outside=outside), roots) is None


def test_shown_is_relative_to_the_deepest_root(tmp_path):
    top, inner = tmp_path / "top", tmp_path / "top" / "inner"
    inner.mkdir(parents=True)
    roots = (Root("top", top), Root("in", inner))
    assert shown(inner / "a" / "b", roots) == "in/a/b"
    assert shown(top / "c", roots) == "top/c"
    assert shown(top, roots) == "top"
    assert shown("/srv/private/thing", roots) == "thing"  # outside every root: the last part only


def test_the_allowed_factories_are_module_prefixes_from_a_comma_list_or_a_list(tmp_path):
    got = server_settings({"VQVIZ_CONFIG": "", "VQVIZ_ALLOWED_FACTORIES": " mypkg.nets, lab ,"})
    assert got.allowed_factories == ("mypkg.nets", "lab") and ServerSettings().allowed_factories == ()
    toml = tmp_path / "vqviz.toml"
    toml.write_text('[server]\nallowed_factories = ["mypkg"]\n')
    assert server_settings({"VQVIZ_CONFIG": str(toml)}).allowed_factories == ("mypkg",)
    for bad in ("mypkg/nets", "*", "../x", "os.path.", "1st"):
        with pytest.raises(ConfigError, match="VQVIZ_ALLOWED_FACTORIES: .* is not a module name"):
            server_settings({"VQVIZ_CONFIG": "", "VQVIZ_ALLOWED_FACTORIES": f"ok, {bad}"})
