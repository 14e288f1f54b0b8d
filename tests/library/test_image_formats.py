"""vqviz.imageio: every image vqviz opens is one of the allowed formats, checked from its bytes
before anything is decoded, whatever its name; PostScript never reaches Ghostscript."""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from vqviz import archive, data, imageio
from vqviz.analysis import placement
from vqviz.errors import DataError

REFUSED = "not an allowed image format"


def _eps(marker: Path) -> bytes:
    """An EPS that, once Ghostscript runs it, writes ``marker`` (an absolute path)."""
    return (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
            + f"/f ({marker}) (w) file def f (written by PostScript) writestring f closefile\n".encode()
            + b"0 0 moveto 8 8 lineto stroke showpage\n%%EOF\n")


def _png(value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), value).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def ghostscript(monkeypatch):
    """The calls Pillow makes to Ghostscript (still run): none may be made, gs installed or not."""
    calls = []
    real = EpsImagePlugin.Ghostscript
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def _messages(caught) -> str:
    return "\n".join(str(w.message) for w in caught)


def test_postscript_in_a_folder_is_refused_by_its_bytes_and_runs_nothing(tmp_path, ghostscript):
    marker, root = tmp_path / "marker", tmp_path / "pets"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            (root / cls / f"{i}.png").write_bytes(_png(i * 60))
    (root / "cat" / "evil.png").write_bytes(_eps(marker))  # an image's name: refused by its bytes
    (root / "dog" / "evil.eps").write_bytes(_eps(marker))  # not an image's name: never opened
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = sum(len(data.load(f"folder:{root}", split)) for split in data.SPLITS)
    notes = _messages(caught)
    assert n == 8  # the eight PNGs, nothing of the EPS files
    assert f"evil.png: {REFUSED}: EPS (allowed: PNG, JPEG" in notes
    assert "skipped 1 file that is not an image" in notes and "evil.eps" in notes
    assert not marker.exists() and ghostscript == []

    only = tmp_path / "only"  # nothing but PostScript: refused, with the reason given
    for cls in ("a", "b"):
        (only / cls).mkdir(parents=True)
        (only / cls / "1.png").write_bytes(_eps(marker))
    with pytest.warns(UserWarning, match=REFUSED), pytest.raises(DataError, match="no images found"):
        data.load(f"folder:{only}")
    assert not marker.exists() and ghostscript == []


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return buf.getvalue()


def test_postscript_in_an_image_zip_is_refused_and_runs_nothing(tmp_path, ghostscript):
    marker, dest = tmp_path / "marker", tmp_path / "uploads"
    files = {f"up/{c}/{i}.png": _png(i * 60) for c in ("a", "b") for i in range(3)}
    files |= {"up/a/evil.png": _eps(marker), "up/b/evil.eps": _eps(marker)}
    caught = []

    def loads(folder):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            data.load(f"folder:{folder}", "train")
        caught.extend(seen)

    folder, skipped = archive.install_image_folder_zip(_zip(files), dest, "up.zip", check=loads)
    assert skipped == ["up/b/evil.eps"]  # not an image's name: not even unpacked
    assert f"evil.png: {REFUSED}: EPS" in _messages(caught)
    assert not marker.exists() and ghostscript == []

    with pytest.raises(DataError, match="no images found"), pytest.warns(UserWarning, match=REFUSED):
        archive.install_image_folder_zip(_zip({"a/1.png": _eps(marker), "b/1.png": _eps(marker)}), dest, "ps.zip",
                                         check=lambda f: data.load(f"folder:{f}"))
    assert sorted(p.name for p in dest.iterdir()) == [folder.name]  # the refused upload left nothing
    assert not marker.exists() and ghostscript == []


@pytest.mark.parametrize("name", ["mine.eps", "mine.png"])
def test_postscript_placed_on_the_map_is_refused_whatever_its_name(tmp_path, ghostscript, name):
    marker = tmp_path / "marker"
    with pytest.raises(DataError, match=rf"{name}: {REFUSED}: EPS \(allowed: PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM\)"):
        placement.to_dataset_format(_eps(marker), (1, 8, 8), name)
    assert not marker.exists() and ghostscript == []


def test_the_allowed_formats_are_pillows_and_each_opens():
    Image.init()
    assert set(imageio.ALLOWED_FORMATS) <= set(Image.OPEN)  # a misspelt id would silently allow nothing
    assert not {"EPS", "PDF", "PS"} & set(imageio.ALLOWED_FORMATS)
    for fmt in imageio.ALLOWED_FORMATS:
        buf = io.BytesIO()
        Image.new("RGB", (5, 3), (10, 200, 30)).save(buf, fmt)
        with imageio.open_image(buf.getvalue(), f"x.{fmt}", max_pixels=100, max_bytes=2**20) as im:
            assert im.format in (fmt, "MPO") and im.size == (5, 3)  # Pillow may call a JPEG an MPO
            assert np.asarray(im.convert("RGB")).shape == (3, 5, 3)


def test_a_damaged_image_of_an_allowed_format_says_so():
    with pytest.raises(imageio.UnreadableImage, match="x.png: a damaged PNG image"):
        imageio.open_image(_png()[:20], "x.png", max_pixels=100, max_bytes=2**20)


def test_files_are_read_capped_never_through_a_link_or_from_a_fifo(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(_png())
    (tmp_path / "link.png").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.png")  # opening it for reading would wait for a writer
    with pytest.raises(imageio.UnreadableImage, match="link.png: a link"):
        imageio.read_file(tmp_path / "link.png", "link.png", 2**20)
    with pytest.raises(imageio.UnreadableImage, match="fifo.png: not a regular file"):
        imageio.read_file(tmp_path / "fifo.png", "fifo.png", 2**20)
    with open(tmp_path / "huge.png", "wb") as f:  # sparse: its size is read, not its bytes
        f.truncate(2**40)
    with pytest.raises(DataError, match="the limit is 1 MB"):
        imageio.read_file(tmp_path / "huge.png", "huge.png", 2**20)
    assert imageio.read_file(real, "real.png", 2**20) == _png()
