"""Files of latents (:mod:`vqviz.data.latents`): round trips through .npz and .parquet, images named by
path or held as bytes, and the one clear DataError of each kind of bad file."""

import os
import sys
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from vqviz.data import latents as lt
from vqviz.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def npz(path, **arrays):
    """An .npz written by numpy itself, without vqviz's checks."""
    np.savez(path, **arrays)
    return path


def png(path, size=(4, 3), mode="L", value=128):
    """A PNG of ``size`` (w, h) filled with ``value`` (an int, or a tuple for RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
    return path


X = RNG.normal(size=(4, 3)).astype(np.float32)


@pytest.mark.parametrize("extra", [
    {},
    {"labels": np.array([0, 2, 1, 2])},
    {"labels": np.array([0, 1, 1, 0]), "classes": ["cat", "dog"]},
    {"images": RNG.integers(0, 256, (4, 1, 5, 6), dtype=np.uint8)},
    {"images": RNG.random((4, 3, 5, 6), dtype=np.float32)},
    {"codes": np.array([3, 0, 7, 7])},
    {"codes": np.array([[0, 1], [2, 3], [4, 5], [6, 7]])},
], ids=["latents", "labels", "classes", "images-uint8", "images-float", "codes-1d", "codes-2d"])
def test_write_read_round_trip(tmp_path, extra):
    out = lt.write(tmp_path / "x.npz", X, **extra)
    got = lt.read(out)
    np.testing.assert_array_equal(got.latents, X)
    assert got.latents.dtype == np.float32 and (got.n, got.dim) == (4, 3)
    if "labels" in extra:
        np.testing.assert_array_equal(got.labels, extra["labels"])
        assert got.classes == tuple(extra.get("classes", ["0", "1", "2"]))
    else:
        assert got.labels is None and got.classes == ()
    if "images" in extra:
        want = extra["images"] / np.float32(255) if extra["images"].dtype == np.uint8 else extra["images"]
        np.testing.assert_array_equal(got.images, want)
        assert got.images.dtype == np.float32 and got.has_images
        with np.load(out) as stored:  # multiples of 1/255 are stored as bytes, 4 times smaller
            assert stored["images"].dtype == (np.uint8 if extra["images"].dtype == np.uint8 else np.float32)
    else:
        assert got.images is None and not got.has_images
    if "codes" in extra:
        np.testing.assert_array_equal(got.codes, extra["codes"])
        assert got.has_codes and got.n_codes == 8
        assert got.n_codebooks == (1 if extra["codes"].ndim == 1 else 2)
    else:
        assert got.codes is None and got.n_codes is None and got.n_codebooks is None
    again = lt.read(lt.write(tmp_path / "y.npz", got))  # a Latents writes back as it was read
    for field in ("latents", "labels", "images", "codes"):
        np.testing.assert_array_equal(getattr(again, field), getattr(got, field))
    assert again.classes == got.classes
    assert not got.latents.flags.writeable  # frozen all the way down


def test_string_labels_become_sorted_classes(tmp_path):
    got = lt.read(npz(tmp_path / "s.npz", latents=X, labels=np.array(["dog", "cat", "emu", "cat"])))
    assert got.classes == ("cat", "dog", "emu")
    assert [got.classes[i] for i in got.labels] == ["dog", "cat", "emu", "cat"]
    ordered = lt.read(npz(tmp_path / "o.npz", latents=X, labels=np.array(["dog", "cat", "dog", "cat"]),
                          classes=np.array(["dog", "cat", "yak"])))  # 'classes' gives the order, and may name more
    assert ordered.classes == ("dog", "cat", "yak") and ordered.labels.tolist() == [0, 1, 0, 1]
    written = lt.read(lt.write(tmp_path / "w.npz", X, labels=["dog", "cat", "emu", "cat"]))
    assert written.classes == got.classes and written.labels.tolist() == got.labels.tolist()


def test_image_layouts_and_int_latents(tmp_path):
    hwc = RNG.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    got = lt.read(npz(tmp_path / "a.npz", latents=np.arange(12).reshape(4, 3), images=hwc))
    np.testing.assert_array_equal(got.images, hwc.transpose(0, 3, 1, 2) / np.float32(255))
    assert got.latents.dtype == np.float32
    hw = lt.read(npz(tmp_path / "b.npz", latents=X, images=np.zeros((4, 5, 6))))
    assert hw.images.shape == (4, 1, 5, 6)


def test_paths_are_relative_to_the_file_and_take_the_first_size(tmp_path, monkeypatch):
    root = tmp_path / "set"
    png(root / "img" / "a.png", (4, 3), value=255)
    png(root / "img" / "b.png", (8, 6), value=0)
    png(root / "c.png", (2, 2), value=51)
    monkeypatch.chdir(tmp_path)  # relative to the file's folder, not to the working directory
    got = lt.read(npz(root / "p.npz", latents=X[:3], paths=np.array(["img/a.png", "img/../img/b.png", "c.png"])))
    assert got.images.shape == (3, 1, 3, 4)
    np.testing.assert_allclose(got.images[:, 0].mean(axis=(1, 2)), [1, 0, 0.2], atol=1e-6)


def test_one_colour_image_makes_them_all_rgb(tmp_path):
    png(tmp_path / "g.png", value=51)
    png(tmp_path / "r.png", mode="RGB", value=(255, 0, 0))
    got = lt.read(npz(tmp_path / "p.npz", latents=X[:2], paths=np.array(["g.png", "r.png"])))
    assert got.images.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(got.images[0], 0.2, atol=1e-6)  # the grey one, copied to R, G and B
    np.testing.assert_array_equal(got.images[1].mean(axis=(1, 2)), [1, 0, 0])


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    png(tmp_path / "a.png", (4, 3), value=255)
    png(tmp_path / "b.png", (4, 3), mode="RGB", value=(0, 255, 0))
    latents = pa.array(X[:2].tolist(), type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"latents": latents, "label": ["zebra", "ant"], "path": ["a.png", "b.png"],
                             "codes": [[1, 2], [3, 4]], "note": ["x", "y"]}), tmp_path / "p.parquet")
    with pytest.warns(UserWarning, match="ignored unknown column.*'note'"):
        got = lt.read(tmp_path / "p.parquet")
    np.testing.assert_array_equal(got.latents, X[:2])
    assert got.classes == ("ant", "zebra") and got.labels.tolist() == [1, 0]
    assert got.images.shape == (2, 3, 3, 4) and got.n_codebooks == 2 and got.n_codes == 5
    np.testing.assert_array_equal(got.images[1].mean(axis=(1, 2)), [0, 1, 0])

    blobs = [(tmp_path / n).read_bytes() for n in ("a.png", "b.png")]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(X[:2].ravel()), 3)
    pq.write_table(pa.table({"latents": fixed, "label": [4, 1], "code": [0, 9], "image": blobs}), tmp_path / "b.parquet")
    by_bytes = lt.read(tmp_path / "b.parquet")
    np.testing.assert_array_equal(by_bytes.images, got.images)
    np.testing.assert_array_equal(by_bytes.latents, X[:2])
    assert by_bytes.classes == tuple("01234") and by_bytes.codes.tolist() == [0, 9]


def test_unknown_keys_are_warned_and_ignored(tmp_path):
    with pytest.warns(UserWarning, match="ignored unknown key.*'label'"):
        got = lt.read(npz(tmp_path / "k.npz", latents=X, label=np.zeros(4)))
    assert got.labels is None


class _Mkdir:
    """Unpickling this makes a folder: proof that a file was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_object_arrays_are_never_unpickled(tmp_path):
    mark = tmp_path / "unpickled"
    path = npz(tmp_path / "o.npz", latents=np.array([[_Mkdir(mark)]], dtype=object))
    with pytest.raises(DataError, match="o.npz: 'latents' holds Python objects, which are never unpickled"):
        lt.read(path)
    assert not mark.exists()
    np.load(path, allow_pickle=True)["latents"]  # the payload is live: it is vqviz that refused it
    assert mark.exists()


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "p.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(DataError, match=r"p.parquet: .*pip install pyarrow"):
        lt.read(tmp_path / "p.parquet")


def test_a_refused_write_leaves_the_old_file(tmp_path):
    path = lt.write(tmp_path / "x.npz", X)
    before = path.read_bytes()
    with pytest.raises(DataError, match="NaN"):
        lt.write(path, np.full((2, 2), np.nan))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["x.npz"]
    with pytest.raises(ConfigError, match=r"\.npz"):
        lt.write(tmp_path / "x.csv", X)


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def _images_dir(tmp_path):
    png(tmp_path / "outside.png")
    png(tmp_path / "set" / "in.png")
    return tmp_path / "set"


def _symlink_file(tmp_path):
    root = _images_dir(tmp_path)
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    return npz(root / "l.npz", latents=X[:1], paths=np.array(["link.png"]))


def _symlink_folder(tmp_path):
    root = _images_dir(tmp_path)
    (root / "up").symlink_to(tmp_path)
    return npz(root / "l.npz", latents=X[:1], paths=np.array(["up/outside.png"]))


def _link_loop(tmp_path):
    (tmp_path / "d").symlink_to(tmp_path / "d")
    return npz(tmp_path / "l.npz", latents=X[:1], paths=np.array(["d/x.png"]))


def _truncated(tmp_path):
    whole = npz(tmp_path / "whole.npz", latents=RNG.normal(size=(50, 8)))
    (tmp_path / "t.npz").write_bytes(whole.read_bytes()[:300])
    return tmp_path / "t.npz"


def _bad_member(tmp_path):
    path = npz(tmp_path / "m.npz", latents=X)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("labels.npy", b"\x93NUMPY garbage")
    return path


def _parquet(tmp_path, **columns):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), tmp_path / "p.parquet")
    return tmp_path / "p.parquet"


def _over(name, value, make):
    """``make``, read with the cap ``name`` set to ``value``."""
    def case(tmp_path, monkeypatch):
        monkeypatch.setattr(lt, name, value)
        return make(tmp_path)
    return case


BAD = {
    "no latents": (lambda p: npz(p / "x.npz", labels=np.zeros(3)), r"x.npz: no 'latents' array; keys found: labels"),
    "latents 1-D": (lambda p: npz(p / "x.npz", latents=np.zeros(3)), r"latents must be 2-D .* shape \(3,\)"),
    "latents strings": (lambda p: npz(p / "x.npz", latents=np.array([["a"]])), "latents of dtype <U1; expected real"),
    "latents complex": (lambda p: npz(p / "x.npz", latents=np.ones((2, 2), complex)), "latents of dtype complex128"),
    "latents bool": (lambda p: npz(p / "x.npz", latents=np.ones((2, 2), bool)), "latents of dtype bool"),
    "NaN rows": (lambda p: npz(p / "x.npz", latents=np.array([[0, 1], [np.nan, 0], [0, np.inf]])),
                 r"x.npz: 2 row\(s\) of latents hold NaN or infinite values \(first: row 1\)"),
    "float64 overflow": (lambda p: npz(p / "x.npz", latents=np.array([[1e300, 0]])), "infinite"),
    "empty": (lambda p: npz(p / "x.npz", latents=np.zeros((0, 3))), r"no latents \(shape \(0, 3\)\)"),
    "label length": (lambda p: npz(p / "x.npz", latents=X, labels=np.zeros(3, int)),
                     "'labels' has 3 rows but 'latents' has 4"),
    "labels 2-D": (lambda p: npz(p / "x.npz", latents=X, labels=np.zeros((4, 2), int)), "labels must be 1-D"),
    "labels negative": (lambda p: npz(p / "x.npz", latents=X, labels=np.array([0, -1, 0, 0])), r"labels must be >= 0; found -1 \(row 1\)"),
    "labels fractional": (lambda p: npz(p / "x.npz", latents=X, labels=np.array([0, 0.5, 1, 1])),
                          "labels must be whole numbers; 1 row\\(s\\) are not \\(first: row 1\\)"),
    "label unnamed": (lambda p: npz(p / "x.npz", latents=X, labels=np.arange(4), classes=np.array(["a", "b"])),
                      "label 3, but 'classes' names only 2"),
    "string label unnamed": (lambda p: npz(p / "x.npz", latents=X[:2], labels=np.array(["a", "z"]),
                                           classes=np.array(["a"])), "labels not in 'classes': z"),
    "classes without labels": (lambda p: npz(p / "x.npz", latents=X, classes=np.array(["a"])), "'classes' without 'labels'"),
    "codes negative": (lambda p: npz(p / "x.npz", latents=X, codes=np.array([0, 1, -2, 0])), "codes must be >= 0"),
    "codes fractional": (lambda p: npz(p / "x.npz", latents=X, codes=np.full(4, 1.5)), "codes must be whole numbers; 4 row"),
    "codes (N, 0)": (lambda p: npz(p / "x.npz", latents=X, codes=np.zeros((4, 0), int)), r"got shape \(4, 0\)"),
    "codes 2-D negative": (lambda p: npz(p / "x.npz", latents=X, codes=np.array([[0, 1]] * 3 + [[1, -1]])),
                           r"codes must be >= 0; found -1 \(row 3\)"),
    "classes repeated": (lambda p: npz(p / "x.npz", latents=X, labels=np.zeros(4, int), classes=np.array(["a", "a"])),
                         "'classes' must be distinct strings"),
    "codes 3-D": (lambda p: npz(p / "x.npz", latents=X, codes=np.zeros((4, 1, 1), int)), r"codes must be \(N,\) or"),
    "codes strings": (lambda p: npz(p / "x.npz", latents=X, codes=np.array(list("abcd"))), "codes of dtype <U1"),
    "images shape": (lambda p: npz(p / "x.npz", latents=X, images=np.zeros((4, 2, 5, 5))),
                     r"images must be \(N, C, H, W\).*got shape \(4, 2, 5, 5\)"),
    "images range": (lambda p: npz(p / "x.npz", latents=X, images=np.full((4, 5, 5), 2.0)),
                     r"4 image\(s\) have values outside \[0, 1\]"),
    "images dtype": (lambda p: npz(p / "x.npz", latents=X, images=np.zeros((4, 5, 5), np.int16)),
                     "images of dtype int16; expected uint8"),
    "images and paths": (lambda p: npz(p / "x.npz", latents=X, images=np.zeros((4, 5, 5)), paths=np.array(list("abcd"))),
                         "both 'images' and 'paths'"),
    "path ..": (lambda p: npz(_images_dir(p) / "x.npz", latents=X[:1], paths=np.array(["../outside.png"])),
                "image '../outside.png': escapes the file's folder"),
    "path absolute": (lambda p: npz(_images_dir(p) / "x.npz", latents=X[:1], paths=np.array([str(p / "outside.png")])),
                      "an absolute path"),
    "path link": (_symlink_file, "image 'link.png': a link; links are not followed"),
    "path through a link": (_symlink_folder, "image 'up/outside.png': leads outside the file's folder"),
    "path link loop": (_link_loop, "image 'd/x.png': cannot read the path"),
    "path with NUL": (lambda p: npz(p / "x.npz", latents=X[:1], paths=np.array(["a\0b.png"])),
                      r"image 'a\\x00b.png': not a path to an image file"),
    "image missing": (lambda p: npz(p / "x.npz", latents=X[:1], paths=np.array(["nope.png"])),
                      r"x.npz: image 'nope.png': cannot read the file \(No such file"),
    "image not an image": (lambda p: npz(_file(p / "t.png", b"hello").parent / "x.npz", latents=X[:1],
                                         paths=np.array(["t.png"])),
                           "image 't.png': not an allowed image format"),
    "random bytes": (lambda p: _file(p / "x.npz", RNG.bytes(500)), "x.npz: not a .npz file"),
    "truncated": (_truncated, "t.npz: not a valid .npz file"),
    "damaged member": (_bad_member, "m.npz: not a valid .npz file"),
    "bare .npy": (lambda p: np.save(p / "x.npy", X) or (p / "x.npy").rename(p / "x.npz"), "a single .npy array"),
    "missing file": (lambda p: p / "gone.npz", r"gone.npz: cannot read the file \(No such file"),
    "other suffix": (lambda p: p / "x.csv", "expected a .npz or a .parquet file"),
    "parquet corrupt": (lambda p: _file(p / "x.parquet", b"PAR1" + RNG.bytes(100)),
                        "x.parquet: not a valid .parquet file"),
    "parquet no latents": (lambda p: _parquet(p, label=[1, 2]), "no 'latents' column; columns found: label"),
    "parquet ragged": (lambda p: _parquet(p, latents=[[1.0, 2.0], [3.0]]), r"differ in length \(1 to 2\)"),
    "parquet not lists": (lambda p: _parquet(p, latents=[1.0, 2.0]), "column 'latents' must hold a list of numbers"),
    "parquet null label": (lambda p: _parquet(p, latents=[[1.0], [2.0]], label=["a", None]),
                           r"column 'label' has 1 empty row\(s\)"),
    "parquet image names": (lambda p: _parquet(p, latents=[[1.0]], image=["a.png"]),
                            "column 'image' must hold the bytes of image files, not string"),
    "parquet bad image": (lambda p: _parquet(p, latents=[[1.0]], image=[b"not a png"]),
                          "row 0's image: not an allowed image format"),
}
CAPPED = {
    "file bytes": (_over("MAX_LATENTS_FILE_BYTES", 100, lambda p: npz(p / "x.npz", latents=X)),
                   r"x.npz: [0-9,]+ bytes; the limit is 100 bytes"),
    "rows": (_over("MAX_ROWS", 3, lambda p: npz(p / "x.npz", latents=X)), r"4 rows; the limit is 3 \(vqviz.data.latents.MAX_ROWS"),
    "dims": (_over("MAX_DIM", 2, lambda p: npz(p / "x.npz", latents=X)), "latents of 3 dims; the limit is 2"),
    "decoded": (_over("MAX_DECODED_BYTES", 10, lambda p: npz(p / "x.npz", latents=X)), "unpacks to .* GiB"),
    "codes": (_over("MAX_CODES", 5, lambda p: npz(p / "x.npz", latents=X, codes=np.arange(4) * 2)),
              "code 6; codes must be below 5"),
    "parquet rows": (_over("MAX_ROWS", 1, lambda p: _parquet(p, latents=[[1.0], [2.0]])), "2 rows; the limit is 1"),
}


@pytest.mark.parametrize("make, match", BAD.values(), ids=BAD.keys())
def test_bad_file_raises_one_clear_data_error(tmp_path, make, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad file is an error, never a warning and a traceback
        with pytest.raises(DataError, match=match) as raised:
            lt.read(make(tmp_path))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("make, match", CAPPED.values(), ids=CAPPED.keys())
def test_caps_are_module_settings(tmp_path, monkeypatch, make, match):
    with pytest.raises(DataError, match=match):
        lt.read(make(tmp_path, monkeypatch))


def test_image_caps_follow_the_data_settings(tmp_path, monkeypatch):
    from vqviz import data

    png(tmp_path / "a.png", (4, 3))
    path = npz(tmp_path / "x.npz", latents=X[:1], paths=np.array(["a.png"]))
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 11)
    with pytest.raises(DataError, match=r"4 x 3 pixels; the limit is 11 \(vqviz.data.MAX_IMAGE_PIXELS\)"):
        lt.read(path)
    with pytest.raises(DataError, match="images of 4 x 3 pixels; the limit is 11"):
        lt.write(tmp_path / "y.npz", X[:1], images=np.zeros((1, 3, 4)))
