"""vqviz.data.folder: image folders, their splits, and the caps on files, depth and pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqviz import data
from vqviz.data import folder
from vqviz.errors import DataError


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
    monkeypatch.setattr(folder, "MAX_IMAGE_PIXELS", 100)
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
    monkeypatch.setattr(folder, "MAX_FOLDER_FILES", 7)
    with pytest.raises(DataError, match="more than 7 files"):
        data.load(f"folder:{tmp_path / 'pets'}")


def test_only_image_suffixes_are_opened(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "x.csv").write_bytes(b"1,2")
    opened = []
    real = folder._open_image
    monkeypatch.setattr(folder, "_open_image", lambda p: opened.append(p.suffix) or real(p))
    with pytest.warns(UserWarning, match="x.csv"):
        data.load(f"folder:{tmp_path / 'pets'}")
    assert set(opened) == {".png"}
