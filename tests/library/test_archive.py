"""vqviz.archive: an uploaded zip of an image folder is unpacked safely, atomically, or not at all."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from PIL import Image

from vqviz import archive, data
from vqviz.errors import DataError


def _png(value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), value).save(buf, "PNG")
    return buf.getvalue()


def _zip(files: dict[str, bytes], links=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in files.items():
            z.writestr(name, blob)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _loads(folder):
    data.load(f"folder:{folder}", "train")


def test_a_zipped_folder_is_unpacked_below_its_top_folder_and_others_are_skipped(tmp_path):
    files = {f"shapes/{c}/{i}.png": _png(i * 40) for c in ("a", "b") for i in range(3)}
    files["shapes/notes.txt"] = b"hello"
    folder, skipped = archive.install_image_folder_zip(_zip(files), tmp_path, "shapes.zip", check=_loads)
    assert folder == tmp_path / "shapes"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == \
        [f"{c}/{i}.png" for c in ("a", "b") for i in range(3)]
    assert skipped == ["shapes/notes.txt"]
    again, _ = archive.install_image_folder_zip(_zip(files), tmp_path, "shapes.zip", check=_loads)
    assert again.name == "shapes-2"  # never over an earlier one


@pytest.mark.parametrize("files, links, message", [
    ({"a/1.png": _png(), "../b/1.png": _png()}, (), "unsafe path"),
    ({"/abs/a/1.png": _png()}, (), "unsafe path"),
    ({"a/1.png": _png()}, ("b/1.png",), "symbolic link"),
    ({"a/1.png": b"\0" * (3 * 2**20), "b/1.png": _png()}, (), "unpacks to more than 1 MB"),  # a small zip bomb
    ({"readme.md": b"hi"}, (), "no images"),
])
def test_an_unsafe_zip_is_refused_and_leaves_nothing(files, links, message, tmp_path):
    with pytest.raises(DataError, match=message):
        archive.install_image_folder_zip(_zip(files, links), tmp_path, "up.zip", check=_loads, max_unpacked=2**20)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_its_check_refuses_is_not_installed_and_the_message_names_the_upload(tmp_path):
    blob = _zip({"a/1.png": _png(), "a/2.png": _png()})

    def one_class(folder):
        raise DataError(f"{folder}: only one class")

    with pytest.raises(DataError) as e:
        archive.install_image_folder_zip(blob, tmp_path, "mine.zip", check=one_class)
    assert str(e.value) == "mine.zip: only one class"
    assert list(tmp_path.iterdir()) == []


def test_size_and_entry_caps_are_read_before_the_entries(tmp_path):
    blob = _zip({"a/1.png": _png()})
    with pytest.raises(DataError, match="the limit is"):
        archive.install_image_folder_zip(blob, tmp_path, "up.zip", check=_loads, max_bytes=10)
    with pytest.raises(DataError, match="not a .zip file"):
        archive.install_image_folder_zip(b"\x89PNG not a zip", tmp_path, "up.zip", check=_loads)


def test_skipped_files_are_worded_as_a_folder_words_them(tmp_path):
    import warnings

    from vqviz.data.folder import skipped_notes

    files = {f"up/{c}/{i}.png": _png(i * 60) for c in ("a", "b") for i in range(2)}
    files |= {"up/a/notes.txt": b"hello", "up/b/broken.png": b"\x89PNG\r\n\x1a\n garbage"}
    notes = []

    def loads(folder):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _loads(folder)
        notes.extend(str(w.message) for w in caught)

    folder, skipped = archive.install_image_folder_zip(_zip(files), tmp_path, "up.zip", check=loads)
    assert skipped == ["up/a/notes.txt"]  # not unpacked; the caller words it as the folder's load would
    assert skipped_notes(skipped, []) == ["skipped 1 file that is not an image: up/a/notes.txt"]
    assert any("skipped 1 unreadable or refused file: " in n and "broken.png: a damaged PNG image" in n for n in notes)


def test_an_entry_without_a_name_is_passed_over(tmp_path):
    files = {f"{c}/{i}.png": _png(i * 60) for c in ("a", "b") for i in range(2)}
    buf = io.BytesIO(_zip(files))
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr(zipfile.ZipInfo(""), b"")  # zipfile's own is_dir() fails on it
    folder, skipped = archive.install_image_folder_zip(buf.getvalue(), tmp_path, "up.zip", check=_loads)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == sorted(files)
    assert skipped == []
