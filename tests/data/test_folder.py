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


def _load_both(root: Path, channels: int = 1) -> tuple[int, str]:
    """Images in both splits, and every warning given on the way."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = sum(len(data.load(f"folder:{root}", split, channels=channels)) for split in data.SPLITS)
    return n, "\n".join(str(w.message) for w in caught)


def test_links_are_never_followed_and_a_link_loop_cannot_hang(tmp_path):
    root, outside = tmp_path / "pets", tmp_path / "outside"
    write_pngs(root)
    write_pngs(outside)
    (root / "bird").symlink_to(outside / "cat", target_is_directory=True)  # a class folder elsewhere
    (root / "cat" / "linked.png").symlink_to(outside / "dog" / "0.png")  # a file elsewhere
    (root / "cat" / "loop").symlink_to(root / "cat", target_is_directory=True)  # a folder into itself
    (root / "dog" / "self.png").symlink_to(root / "dog" / "self.png")  # a link to itself
    (root / "ring").symlink_to(root / "ring")
    n, notes = _load_both(root)
    assert n == 10
    for name in ("bird", "linked.png", "loop", "self.png", "ring"):
        assert f"{name}: a link; links are not followed" in notes


def test_a_class_that_is_a_file_or_a_fifo_is_no_class_and_nothing_blocks(tmp_path):
    root = tmp_path / "pets"
    write_pngs(root / "train")
    write_pngs(root / "test", 2)
    (root / "train" / "fish").write_bytes(b"a file where a class folder could be")
    os.mkfifo(root / "train" / "bird")
    (root / "test" / "dog").rename(root / "gone")
    os.mkfifo(root / "test" / "dog")  # the test split's "dog" is a FIFO: never opened
    test = data.load(f"folder:{root}", "test")
    assert test.classes == ("cat", "dog") and len(test) == 2 and set(test.labels.tolist()) == {0}


def test_a_corrupt_image_is_named_as_skipped_like_a_file_that_is_not_an_image(tmp_path):
    root = tmp_path / "pets"
    write_pngs(root)
    (root / "cat" / "notes.txt").write_text("hello")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "dog" / "text.png").write_text("not a png at all")
    n, notes = _load_both(root)
    assert n == 10
    assert f"skipped 1 file that is not an image: {root / 'cat' / 'notes.txt'}" in notes
    assert f"skipped 2 unreadable or refused files: {root / 'cat' / 'broken.png'}: a damaged PNG image (" in notes
    assert f"; {root / 'dog' / 'text.png'}: not an allowed image format (allowed: PNG, JPEG," in notes


@pytest.mark.parametrize("fmt, mode", [("PNG", "P"), ("PNG", "LA"), ("PNG", "I;16"), ("PNG", "1"), ("GIF", "P"),
                                       ("JPEG", "CMYK"), ("JPEG", "L"), ("TIFF", "F"), ("TIFF", "YCbCr"),
                                       ("TIFF", "I;16B"), ("WEBP", "RGBA"), ("PPM", "I")])
def test_odd_modes_load_as_grey_and_rgb(tmp_path, fmt, mode):
    write_pngs(tmp_path / "pets", 2)
    im = Image.new(mode, (9, 7), 3 if len(mode) < 3 or mode.startswith("I") else None)
    if mode == "P":
        im.info["transparency"] = 3  # a palette with a transparent entry: Pillow warns as it converts
    im.save(tmp_path / "pets" / "cat" / f"odd.{fmt.lower()}", fmt)
    for channels in (1, 3):
        n, notes = _load_both(tmp_path / "pets", channels)
        assert n == 5 and notes == ""  # no skipped file, and Pillow's own notes are not passed on


def test_time_and_file_size_budgets_refuse_with_a_data_error(tmp_path, monkeypatch):
    write_pngs(tmp_path / "pets")
    with open(tmp_path / "pets" / "cat" / "huge.png", "wb") as f:  # sparse: its size is read, not its bytes
        f.truncate(2**40)
    with pytest.raises(DataError, match="huge.png: 1048576.0 MB; the limit is 80 MB"):
        data.load(f"folder:{tmp_path / 'pets'}")
    (tmp_path / "pets" / "cat" / "huge.png").unlink()
    monkeypatch.setattr(folder, "MAX_IMAGE_FILE_BYTES", 50)
    with pytest.raises(DataError, match=r"\.png: \d+ bytes; the limit is 50 bytes"):
        data.load(f"folder:{tmp_path / 'pets'}")
    monkeypatch.undo()
    monkeypatch.setattr(folder, "MAX_IMAGE_SECONDS", 1e-9)
    with pytest.raises(DataError, match="0.png: took .* s to read; the limit is 1e-09 s an image"):
        data.load(f"folder:{tmp_path / 'pets'}")
    monkeypatch.undo()
    monkeypatch.setattr(folder, "MAX_FOLDER_SECONDS", 0.0)
    with pytest.raises(DataError, match="pets: loading took longer than 0 s"):
        data.load(f"folder:{tmp_path / 'pets'}")


def test_names_that_are_not_utf8_are_shown_escaped(tmp_path):
    """A class folder or a file whose name is not UTF-8 (Latin-1 "café") loads; what is shown of it is escaped,
    so that a page can send it to the browser (a lone surrogate cannot be encoded)."""
    root = tmp_path / "pets"
    write_pngs(root)
    raw = os.fsencode(root) + b"/caf\xe9"
    os.mkdir(raw)
    for i in range(3):
        Image.new("RGB", (8, 8), (0, 255, 0)).save(os.fsdecode(raw + b"/%d.png" % i))
    with open(os.fsdecode(raw + b"/notes-\xff.txt"), "w") as f:
        f.write("not an image")
    with pytest.warns(UserWarning) as caught:
        train = data.load(f"folder:{root}", "train")
    assert train.classes == ("caf\\xe9", "cat", "dog")
    shown = [str(w.message) for w in caught]
    assert any("notes-\\xff.txt" in m for m in shown)
    for text in (*train.classes, *shown):
        text.encode("utf-8")  # no lone surrogate left
