"""What a server lets its visitors take: the roots they may read by default, the disk that uploads
may take (VQVIZ_UPLOAD_QUOTA_MB) and the files one upload may hold, and removing old uploads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from driving import ROOT, open_app, zipped
from PIL import Image

from vqviz_app import catalog, uploads


@pytest.fixture(autouse=True)
def defaults(monkeypatch):
    for name in ("VQVIZ_ROOTS", "VQVIZ_CONFIG", "VQVIZ_UPLOAD_QUOTA_MB", "VQVIZ_MAX_UPLOAD_IMAGES", "VQVIZ_DATA"):
        monkeypatch.delenv(name, raising=False)


def _images(n: int = 8) -> dict[str, bytes]:
    """A zip's worth of noise images in two classes (noise, so that the PNGs do not shrink to nothing)."""
    rng, out = np.random.default_rng(0), {}
    for cls in ("a", "b"):
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(buf, "PNG")
            out[f"set/{cls}/{i}.png"] = buf.getvalue()
    return out


def _upload(at, name: str, files: dict[str, bytes]) -> None:
    at.file_uploader(key="own_zip").upload(name, zipped(files), "application/zip").run()
    assert not at.exception


def _left_on_disk() -> list[str]:
    return sorted(str(p.relative_to(catalog.user_dir().parent)) for f in uploads.folders().values() if f.exists()
                  for p in f.iterdir())


def test_the_default_roots_are_the_apps_own_folders_and_the_data_locations(monkeypatch, tmp_path):
    labels = [r.label for r in catalog.roots()]
    assert labels[:3] == ["data", "checkpoints", "bundled"] and {"datasets", "downloads"} <= set(labels)
    monkeypatch.setenv("VQVIZ_ROOTS", str(tmp_path / "team"))
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "runs"))
    assert [r.label for r in catalog.roots()] == ["data", "checkpoints", "bundled", "runs", "team"]


def test_an_upload_over_the_quota_is_refused_and_leaves_nothing(monkeypatch):
    files = _images()
    size = sum(len(b) for b in files.values())
    monkeypatch.setenv("VQVIZ_UPLOAD_QUOTA_MB", str(size / 2 / 2**20))  # room for half of it
    at = open_app(settle=False)
    _upload(at, "big.zip", files)
    error = at.sidebar.error[0].value
    assert error.startswith("big.zip was refused: it does not fit in the disk this server keeps for uploads")
    assert "VQVIZ_UPLOAD_QUOTA_MB" in error and "Models page" in error
    assert _left_on_disk() == [] and at.selectbox(key="dataset").value == "digits"


def test_a_checkpoint_upload_over_the_quota_is_refused_and_leaves_nothing(monkeypatch):
    monkeypatch.setenv("VQVIZ_UPLOAD_QUOTA_MB", "0.05")
    src = ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2"
    at = open_app("models", settle=False)
    at.file_uploader(key="upload").upload("mine.zip", zipped({p.name: p.read_bytes() for p in src.iterdir()}),
                                          "application/zip").run()
    assert not at.exception
    assert any(e.value.startswith("mine.zip was refused: it does not fit") for e in at.error), at.error
    assert _left_on_disk() == []


def test_removing_an_upload_frees_its_space(monkeypatch):
    files = _images()
    size = sum(len(b) for b in files.values())
    monkeypatch.setenv("VQVIZ_UPLOAD_QUOTA_MB", str(1.5 * size / 2**20))  # one fits, not two
    at = open_app("models", settle=False)
    _upload(at, "first.zip", files)
    assert any("first.zip" in s.value for s in at.sidebar.success)
    _upload(at, "second.zip", files)
    assert "it does not fit" in at.sidebar.error[0].value
    assert _left_on_disk() == ["data/first"]
    at.run()
    listed = [m.value for m in at.markdown if "image folder" in m.value]
    size = uploads.size_of(catalog.data_dir() / "first")
    assert listed == [f"`data/first` · image folder · {size / 2**20:,.1f} MB"] and size >= len(files) * 100
    at.button(key="upload-remove-data/first").click().run()
    assert not at.exception and any("Removed **data/first**" in s.value for s in at.success)
    assert _left_on_disk() == []
    _upload(at, "third.zip", files)  # the same images fit now
    assert any("third.zip" in s.value for s in at.sidebar.success) and _left_on_disk() == ["data/third"]


def test_a_zip_of_more_files_than_the_server_takes_is_refused_before_unpacking(monkeypatch):
    monkeypatch.setenv("VQVIZ_MAX_UPLOAD_IMAGES", "10")
    at = open_app(settle=False)
    _upload(at, "many.zip", _images(6))  # 12 files
    error = at.sidebar.error[0].value
    assert "holds 12 entries" in error and "VQVIZ_MAX_UPLOAD_IMAGES" in error and "at most 10" in error
    assert _left_on_disk() == []


def test_removal_stays_inside_the_uploads_folders(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "x.png").write_bytes(b"x")
    data = catalog.data_dir()
    (data / "real" / "a").mkdir(parents=True)
    (data / "real" / "a" / "out").symlink_to(outside)  # a link inside an upload: removed, not followed
    (data / "link").symlink_to(outside / "keep")  # an upload folder that is a link: never removed
    for path in (data / "link", outside / "keep", data, data / "real" / "a", data / ".." / "data" / "real" / "a",
                 catalog.user_dir()):
        with pytest.raises(ValueError, match="is not a kept upload"):
            uploads.remove(path)
    assert [u.path.name for u in uploads.listed()] == ["real"]  # links are not listed
    uploads.remove(data / "real")
    assert not (data / "real").exists() and (outside / "keep" / "x.png").is_file()
    assert Path(outside / "keep").is_dir() and (data / "link").is_symlink()
