"""Your own images from the browser: a folder on the server or an uploaded .zip of one, each bad
input with its message, training on it, and the map of the model trained on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from driving import ROOT, SHIPPED, maps, open_app, zipped
from PIL import Image, ImageDraw

from vqviz_app import catalog


@pytest.fixture(autouse=True)
def readable(tmp_path, monkeypatch):
    """The test's own folder is one the server lets visitors read (VQVIZ_ROOTS)."""
    monkeypatch.setenv("VQVIZ_ROOTS", str(tmp_path))
    monkeypatch.delenv("VQVIZ_CONFIG", raising=False)


def _shapes(root: Path, classes=("circle", "square", "cross"), n=24, junk=()) -> Path:
    """A class-per-folder image set drawn with Pillow: each class a shape at random places and sizes."""
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            im = Image.new("L", (28, 28))
            d = ImageDraw.Draw(im)
            x, y, r = (int(v) for v in (*rng.integers(8, 20, 2), rng.integers(4, 8)))
            if cls == "circle":
                d.ellipse((x - r, y - r, x + r, y + r), outline=255, width=2)
            elif cls == "square":
                d.rectangle((x - r, y - r, x + r, y + r), fill=255)
            else:
                d.line((x - r, y - r, x + r, y + r), fill=255, width=2)
                d.line((x - r, y + r, x + r, y - r), fill=255, width=2)
            im.save(root / cls / f"{i}.png")
    for name in junk:
        (root / name).write_text("not an image")
    return root


def _use(at, path) -> None:
    at.text_input(key="own_path").input(str(path)).run()  # Enter


@pytest.mark.slow  # trains a model on a folder
def test_a_folder_picked_by_path_is_trained_on_now_and_its_map_opens(tmp_path):
    folder = _shapes(tmp_path / "shapes", junk=("circle/notes.txt",))
    at = open_app(settle=False)
    _use(at, folder)
    assert not at.exception
    name = f"folder:{folder.resolve()}"
    assert at.selectbox(key="dataset").value == name
    assert any("3 classes (circle, cross, square)" in s.value for s in at.sidebar.success)
    assert any("notes.txt" in c.value for c in at.sidebar.caption)  # the skipped file is listed
    # no checkpoint takes 28x28 images: the page says so and offers to train one
    assert "takes 1x8x8 images" in at.error[0].value
    assert any("No checkpoint takes the images of folder shapes" in i.value for i in at.info)
    at.button(key="train_now").click().run()
    job = at.session_state["quick_job"]
    assert job.wait(120) and job.state == "done", job.error
    at.run()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="checkpoint").value == str(job.path)
    assert at.selectbox(key="dataset").value == name
    assert at.title[0].value == "Latent map" and maps(at)


def test_a_checkpoint_of_another_data_set_is_shown_with_a_warning_and_training_offered(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"  # the shipped checkpoints of the app: digits, and one 28x28 of MNIST
    for name in (*SHIPPED, "seq-mnist-lae2"):
        shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / name, bundled / name)
    monkeypatch.setattr(catalog, "BUNDLED_DIR", bundled)
    folder = _shapes(tmp_path / "shapes")  # 28x28, like MNIST: the MNIST model takes them
    at = open_app(settle=False)
    _use(at, folder)
    assert not at.exception
    assert at.selectbox(key="checkpoint").value == str((bundled / "seq-mnist-lae2").resolve())
    warning = at.warning[0].value
    assert "was trained on **mnist**, not on folder shapes" in warning
    assert "label accuracy say nothing about folder shapes" in warning
    shown = dict((m.label, m.value) for m in at.metric)
    assert shown["Label accuracy"] == shown["Mean purity"] == "–"
    assert maps(at)  # the map is still drawn: where the shapes land in the MNIST model's latent space
    assert at.button(key="train_now").label == "Train one now"


def test_the_models_page_trains_any_family_on_a_folder(tmp_path):
    folder = _shapes(tmp_path / "shapes", classes=("circle", "square"), n=16)
    at = open_app("models", settle=False)
    _use(at, folder)
    name = f"folder:{folder.resolve()}"
    assert at.selectbox(key="t_dataset").value == name  # the Models page follows the sidebar
    at.selectbox(key="t_family").set_value("vqvae").run()
    at.number_input(key="t_epochs").set_value(1)
    at.button[0].click().run()
    job = at.session_state["train_job"]
    assert job.wait(120) and job.state == "done", job.error
    at.run()
    from vqviz import checkpoints

    meta = checkpoints.read_meta(job.path)
    assert meta["model"] == "vqvae" and meta["dataset"] == name


def _zip_of(folder: Path, prefix: str) -> dict[str, bytes]:
    return {prefix + str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_uploaded_zip_of_a_folder_is_unpacked_and_picked(tmp_path):
    files = _zip_of(_shapes(tmp_path / "src", classes=("circle", "square"), n=10), "my shapes/")
    files["my shapes/README.md"] = b"about these images"
    files["my shapes/circle/broken.png"] = b"\x89PNG\r\n\x1a\n" + b"\0" * 40  # a PNG header, then nothing
    at = open_app(settle=False)
    at.file_uploader(key="own_zip").upload("my shapes.zip", zipped(files), "application/zip").run()
    assert not at.exception
    installed = catalog.data_dir() / "my-shapes"
    assert sorted(p.name for p in installed.iterdir()) == ["circle", "square"]
    assert at.selectbox(key="dataset").value == f"folder:{installed.resolve()}"
    assert any("my shapes.zip" in s.value and "2 classes" in s.value for s in at.sidebar.success)
    # both kinds of skipped file, worded as for a folder on the server
    assert any("skipped 1 file that is not an image" in c.value and "README.md" in c.value for c in at.sidebar.caption)
    assert any("skipped 1 unreadable or refused file" in c.value and "broken.png" in c.value
               for c in at.sidebar.caption)
    at = open_app(settle=False)  # a new session lists it too
    assert "folder my-shapes" in at.selectbox(key="dataset").options


def _one_class(tmp_path):
    return _shapes(tmp_path / "one", classes=("circle",), n=6)


def _no_images(tmp_path):
    root = tmp_path / "texts"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.txt").write_text("hello")
    return root


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "nowhere", "no such folder"),
    (lambda t: (t / "f.png").write_bytes(b"x") and t / "f.png", "a file, not a folder"),
    (lambda t: (t / "empty").mkdir() or t / "empty", "folder is empty"),
    (_one_class, "only one class (circle)"),
    (_no_images, "no images found"),
])
def test_a_bad_folder_gets_a_clear_message(make, message, tmp_path):
    path = make(tmp_path)
    at = open_app(settle=False)
    _use(at, path)
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert errors and message in errors[0], errors
    assert at.selectbox(key="dataset").value == "digits"  # the data set is unchanged


def test_non_image_files_are_named_in_the_message(tmp_path):
    at = open_app(settle=False)
    _use(at, _no_images(tmp_path))
    assert "x.txt" in at.sidebar.error[0].value


@pytest.mark.parametrize("files, message", [
    ({"../../evil/a/1.png": b"x"}, "unsafe path"),
    ({"readme.txt": b"hi"}, "no images"),
    ({"only/circle/1.png": b"not really a png", "only/square/1.png": b"nor this"}, "bad.zip/circle/1.png"),
])
def test_a_bad_zip_is_refused_and_leaves_nothing(files, message, tmp_path):
    at = open_app(settle=False)
    at.file_uploader(key="own_zip").upload("bad.zip", zipped(files), "application/zip").run()
    assert not at.exception
    error = at.sidebar.error[0].value
    assert error.startswith("bad.zip was refused") and message in error, error
    assert ".upload-" not in error and str(catalog.data_dir()) not in error  # names the upload, not a temporary
    assert not catalog.data_dir().exists() or not list(catalog.data_dir().iterdir())


# ----- only the folders the server lets visitors read (VQVIZ_ROOTS) -----
@pytest.fixture
def walled(tmp_path, monkeypatch):
    """A root ``allowed`` with a folder of shapes, beside a folder ``outside`` with one too, and links out."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    _shapes(allowed / "mine", classes=("circle", "square"), n=6)
    _shapes(outside / "theirs", classes=("circle", "square"), n=6)
    (outside / "notes.txt").write_text("private")
    (allowed / "out").symlink_to(outside / "theirs")
    (allowed / "out-dangling").symlink_to(outside / "missing")
    monkeypatch.setenv("VQVIZ_ROOTS", str(allowed))
    return allowed, outside


def test_any_path_outside_the_roots_gets_one_message_whether_it_exists_or_not(walled):
    allowed, outside = walled
    typed = [  # (existing, missing) pairs: a full path, one that climbs out with .., a link out
        (f"{outside}/theirs", f"{outside}/missing"),
        (f"{allowed}/../outside/theirs", f"{allowed}/../outside/missing"),
        ("allowed/../outside/theirs", "allowed/../outside/missing"),
        ("allowed/out", "allowed/out-dangling"),
        (str(outside), "/nonexistent"), ("/etc", "/etc/passwd"),
    ]
    at = open_app(settle=False)
    messages = set()
    for pair in typed:
        for text in pair:
            _use(at, text)
            assert not at.exception
            [error] = [e.value for e in at.sidebar.error]
            assert "is not inside a folder this server lets you read" in error and "VQVIZ_ROOTS" in error
            assert "`allowed/`" in error and "`data/`" in error  # the roots, by the labels the pages use
            for leak in ("notes.txt", "circle", "skipping", "no such", "not a folder", str(outside.parent)[1:]):
                assert leak not in error.replace(text, "TYPED"), (text, error)
            messages.add(error.replace(f"`{text}`", "`TYPED`"))
    assert len(messages) == 1, messages  # the same words for every path outside, there or not
    assert at.selectbox(key="dataset").value == "digits"


def test_a_folder_inside_a_root_works_by_label_or_full_path(walled):
    allowed, _ = walled
    at = open_app(settle=False)
    _use(at, "allowed/mine")
    name = f"folder:{(allowed / 'mine').resolve()}"
    assert at.selectbox(key="dataset").value == name
    assert any("2 classes (circle, square)" in s.value for s in at.sidebar.success)
    _use(at, "allowed/nothing-here")  # inside: it may say what is wrong, with the path shown by its root
    assert at.sidebar.error[0].value == "allowed/nothing-here: no such folder on the server"
    _use(at, str(allowed / "mine"))
    assert not at.sidebar.error and at.selectbox(key="dataset").value == name
    texts = _no_images(allowed)
    _use(at, str(texts))
    error = at.sidebar.error[0].value
    assert "allowed/texts" in error and "x.txt" in error and str(allowed) not in error


def test_a_folder_inside_that_links_out_is_refused(walled):
    allowed, outside = walled
    mixed = _shapes(allowed / "mixed", classes=("circle",), n=6)
    (mixed / "square").symlink_to(outside / "theirs" / "square")
    at = open_app(settle=False)
    _use(at, "allowed/mixed")
    error = at.sidebar.error[0].value
    assert error.startswith("allowed/mixed: square is a link that leads outside") and str(outside) not in error
    (mixed / "square").unlink()
    _shapes(mixed, classes=("square",), n=6)
    (mixed / "square" / "0.png").unlink()
    (mixed / "square" / "0.png").symlink_to(outside / "theirs" / "square" / "0.png")  # a file, too
    _use(at, f"{allowed}/mixed")
    assert "square/0.png is a link that leads outside" in at.sidebar.error[0].value


def test_no_page_shows_the_servers_full_paths(walled, tmp_path):
    at = open_app("models", settle=False)
    _use(at, "allowed/mine")
    hidden = str(tmp_path.parent)  # pytest's folder of this run: the bundled copies, the data home, the roots
    shown = [*(str(v) for v in at.dataframe[0].value["folder"]), *(c.value for c in at.caption),
             *(s.value for s in at.success), at.selectbox(key="checkpoint").proto.help,
             at.text_input(key="own_path").proto.help]
    assert not [s for s in shown if hidden in s], shown
    assert at.selectbox(key="checkpoint").proto.help.startswith("Folder: `bundled/")
