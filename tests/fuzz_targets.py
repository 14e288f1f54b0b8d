"""Fuzz targets for ``tests/test_fuzz.py``, run in a child process under an address-space cap.

Each target feeds one loader hypothesis-made inputs, inside ``ROOT/work``, and lets
only the package's own exceptions (``vqviz.errors.VqvizError``) through; anything
else fails the run. After every example nothing may exist in ``ROOT`` but ``work``.
The child prints one JSON line per target: examples run, the errors seen by type,
the resident memory before and its peak during the target.

Usage: ``python fuzz_targets.py TARGET[,TARGET...] EXAMPLES ROOT LIMIT_BYTES``.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import os
import pickle
import resource
import shutil
import struct
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from vqviz import checkpoints, data
from vqviz.data import paths, registry
from vqviz.errors import VqvizError

SHIPPED = Path()  # the checkpoint that every case mutates; made by main()
SEEN: collections.Counter = collections.Counter()

# ----- shared strategies -----
SPECIAL_STRINGS = ["../../outside/weights-x.safetensors", "/etc/passwd", "weights-x.safetensors", "digits",
                   "folder:/usr", "meta.json", "", "a" * 300, "\x00", "lae2", "vqviz-checkpoint"]
BIG_INTS = [0, 1, -1, 2, 3, 8, 64, 2**10, 2**16, 2**18, 2**20, 2**22, 2**31, 2**32 - 1, 2**63, 10**30]
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(BIG_INTS), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(SPECIAL_STRINGS))
json_values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), c, max_size=4)),
                           max_leaves=12)


def _damaged(blob: bytes, flips, truncate) -> bytes:
    """``blob`` with bytes flipped (each at a fraction of its length, by an xor) and cut at a fraction."""
    out = bytearray(blob)
    for where, xor in flips:
        out[min(int(where * len(out)), len(out) - 1)] ^= xor
    return bytes(out if truncate is None else out[: int(truncate * len(out))])


def _clean_root(root: Path) -> None:
    """Nothing but ``work`` may be in the sandbox: no file written outside the folder."""
    extra = sorted(set(os.listdir(root)) - {"work"})
    assert not extra, f"written outside the target folder: {extra}"


def _call(fn, *args, **kwargs):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        fn(*args, **kwargs)
        SEEN["ok"] += 1
        what = "ok"
    except VqvizError as e:
        SEEN[type(e).__name__] += 1
        what = str(e)[:150]
    except Exception as e:  # noqa: BLE001
        if not TALLY:
            raise
        SEEN[f"escaped {type(e).__module__}.{type(e).__name__}"] += 1  # a bug, counted to survey a version
        what = repr(e)[:150]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    if grew > WORST[0]:
        WORST[:] = [grew, what]
    took = time.perf_counter() - started
    if took > SLOWEST[0]:
        SLOWEST[:] = [took, what]


WORST: list = [0, ""]
#: The slowest call of a target, in seconds, and what it gave.
SLOWEST: list = [0.0, ""]
#: FUZZ_TALLY=1 counts exceptions other than the package's instead of failing on the first.
TALLY = os.environ.get("FUZZ_TALLY") == "1"


def _fresh(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


# ----- IDX -----
idx_headers = st.tuples(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07, 0xFF]),
                        st.integers(0, 6).flatmap(lambda n: st.lists(
                            st.one_of(st.integers(0, 6), st.sampled_from([2**31, 2**32 - 1, 2**16, 28])),
                            min_size=n, max_size=n)))


@st.composite
def idx_files(draw):
    code, dims = draw(idx_headers)
    header = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    if draw(st.booleans()):  # a payload of the right length, values of any kind
        size = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
        n = int(np.prod(dims, dtype=object)) * size if dims else 0
        payload = draw(st.binary(min_size=min(n, 4096), max_size=min(n, 4096))) if n <= 4096 else b""
    else:
        payload = draw(st.binary(max_size=300))
    raw = header + payload
    how = draw(st.sampled_from(["plain", "gzip", "gzip-truncated", "gzip-bomb", "flipped"]))
    if how == "gzip":
        raw = gzip.compress(raw)
    elif how == "gzip-truncated":
        raw = gzip.compress(raw)[: draw(st.integers(0, 40))]
    elif how == "gzip-bomb":
        raw = gzip.compress(raw + bytes(draw(st.sampled_from([2**16, 2**20, 2**22]))), compresslevel=1)
    elif how == "flipped" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw


def fuzz_idx(root: Path, n: int) -> None:
    work = root / "work"
    base = Path(__file__).resolve().parent

    @settings(**_settings(n))
    @given(images=idx_files(), labels=idx_files(), which=st.sampled_from(["read", "load"]))
    def run(images, labels, which):
        folder = _fresh(work)
        for name, blob in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                           ("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
            (folder / name).write_bytes(blob)
        if which == "read":
            _call(data.read_idx, folder / "train-images-idx3-ubyte")
        else:
            registry._load_cached.cache_clear()
            _call(data.load, "mnist", "train", folder, download=False)
        _clean_root(root)

    del base
    run()


# ----- meta.json and the weights -----
CONFIG_KEYS = ["in_shape", "n_classes", "encoder", "latent_dim", "codebook_size", "beta", "ema",
               "kmeans_init", "dead_code_threshold", "recon_loss"]
TOP_KEYS = ["format", "format_version", "model", "config", "train", "dataset", "split_sizes", "seed",
            "metrics", "versions", "state", "weights"]
meta_paths = st.one_of(st.sampled_from(TOP_KEYS), st.sampled_from([f"config.{k}" for k in CONFIG_KEYS]),
                       st.sampled_from(["weights.file", "weights.sha256", "split_sizes.train",
                                        "metrics.test_mse_per_image"]))
meta_values = st.one_of(json_values, st.sampled_from(BIG_INTS),
                        st.lists(st.sampled_from(BIG_INTS + ["a"]), min_size=3, max_size=3),
                        st.just("__delete__"))


def _mutate_meta(meta: dict, edits) -> dict:
    for path, value in edits:
        parts = path.split(".")
        target = meta
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                target[p] = {}
            target = target[p]
        if value == "__delete__":
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return meta


@st.composite
def weights_edits(draw, size: int):
    kind = draw(st.sampled_from(["none", "none", "truncate", "flip", "header-length", "random"]))
    if kind == "truncate":
        return ("truncate", draw(st.integers(0, size)))
    if kind == "flip":
        return ("flip", draw(st.integers(0, min(size - 1, 4000))), draw(st.integers(1, 255)))
    if kind == "header-length":
        return ("header-length", draw(st.sampled_from([0, 7, 2**20, 2**40, 2**64 - 1])))
    if kind == "random":
        return ("random", draw(st.binary(max_size=200)))
    return ("none",)


def _apply_weights(blob: bytes, edit) -> bytes:
    if edit[0] == "truncate":
        return blob[: edit[1]]
    if edit[0] == "flip":
        return blob[: edit[1]] + bytes([blob[edit[1]] ^ edit[2]]) + blob[edit[1] + 1:]
    if edit[0] == "header-length":
        return struct.pack("<Q", edit[1]) + blob[8:]
    if edit[0] == "random":
        return edit[1]
    return blob


def _shipped():
    meta = json.loads((SHIPPED / "meta.json").read_text())
    weights = next(SHIPPED.glob("weights-*.safetensors"))
    return meta, weights.name, weights.read_bytes()


def fuzz_checkpoint(root: Path, n: int) -> None:
    work = root / "work"
    meta0, wname, wblob = _shipped()

    @settings(**_settings(n))
    @given(edits=st.lists(st.tuples(meta_paths, meta_values), max_size=4), wedit=weights_edits(len(wblob)),
           rehash=st.booleans(), read_only=st.booleans())
    def run(edits, wedit, rehash, read_only):
        folder = _fresh(work) / "ck"
        folder.mkdir()
        blob = _apply_weights(wblob, wedit)
        meta = _mutate_meta(json.loads(json.dumps(meta0)), edits)
        if rehash and isinstance(meta.get("weights"), dict):  # as an attacker would: a matching hash
            import hashlib
            meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
        (folder / wname).write_bytes(blob)
        (folder / "meta.json").write_text(json.dumps(meta))
        _call(checkpoints.read_meta if read_only else checkpoints.load, folder)
        _clean_root(root)

    run()


# ----- an image folder -----
FORMATS = ["PNG", "GIF", "BMP", "JPEG", "TIFF", "PPM", "WEBP"]
#: Modes a file may be saved in: palettes with transparency, CMYK and YCbCr JPEGs, 16-bit and float.
MODES = ["L", "RGB", "RGBA", "P", "1", "LA", "PA", "CMYK", "YCbCr", "I", "I;16", "F"]
#: Written where an escaping PostScript program would: ``ROOT``, which ``_clean_root`` watches.
MARKER = b"@MARKER@"


def _postscript(loop: bool) -> bytes:
    """An EPS that writes MARKER (made a path in ROOT when written) and, if ``loop``, never ends."""
    return (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n/f (" + MARKER + b") (w) file def\n"
            b"f (written by PostScript) writestring f closefile\n" + (b"{} loop\n" if loop else b"")
            + b"0 0 moveto 8 8 lineto stroke showpage\n%%EOF\n")


@st.composite
def image_files(draw):
    from PIL import Image

    kind = draw(st.sampled_from(["image", "image", "flipped", "truncated", "random", "bomb-header", "postscript"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "postscript":
        return _postscript(draw(st.booleans()))
    if kind == "bomb-header":
        w, h = draw(st.sampled_from([20000, 5000, 2**31 - 1, 1])), draw(st.sampled_from([20000, 5000, 1, 2**31 - 1]))

        def chunk(kind_: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind_ + body + struct.pack(">I", zlib.crc32(kind_ + body))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    fmt, mode = draw(st.sampled_from(FORMATS)), draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    im = Image.new(mode, size, draw(st.integers(0, 255)) if len(mode) == 1 or mode.startswith("I") else None)
    if mode == "P" and draw(st.booleans()):
        im.info["transparency"] = draw(st.integers(0, 255))
    buf = io.BytesIO()
    try:
        im.save(buf, fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold: grey instead
        buf = io.BytesIO()
        im.convert("L").save(buf, fmt)
    raw = buf.getvalue()
    if kind == "flipped":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    elif kind == "truncated":
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


#: Entries that are not files: made by ``_make_entry`` (links point inside ``work``, never out of it).
SPECIAL_ENTRIES = ["fifo", "link-to-file", "link-to-outside-folder", "link-to-parent", "self-link", "class-link"]
layouts = st.lists(st.tuples(st.sampled_from(["cat", "dog", "a/b", "a/b/c/d/e/f", ".hidden", "x"]),
                             st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".txt", "", ".PNG", ".eps"]),
                             st.one_of(image_files(), st.sampled_from(SPECIAL_ENTRIES))), max_size=8)


def _make_entry(path: Path, what: bytes | str, outside: Path, root: Path) -> None:
    """Write a file of bytes, or make the special entry ``what`` at ``path``."""
    if isinstance(what, bytes):
        path.write_bytes(what.replace(MARKER, str(root / "written-by-postscript").encode()))
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "link-to-file":
        path.symlink_to(outside / "0.png")
    elif what == "link-to-outside-folder":
        path.symlink_to(outside, target_is_directory=True)
    elif what == "link-to-parent":  # a loop
        path.symlink_to(path.parent, target_is_directory=True)
    elif what == "self-link":
        path.symlink_to(path)
    elif what == "class-link":  # a class folder that is a link elsewhere
        path.parent.parent.joinpath(f"linked-{path.name}").symlink_to(outside, target_is_directory=True)


def fuzz_folder(root: Path, n: int) -> None:
    from PIL import Image

    work = root / "work"

    @settings(**_settings(n))
    @given(files=layouts, presplit=st.booleans(), split=st.sampled_from(["train", "test"]),
           size=st.sampled_from([None, (8, 8), (1, 1)]), channels=st.sampled_from([None, 1, 3]),
           seeded=st.booleans())
    def run(files, presplit, split, size, channels, seeded):
        outside = _fresh(work) / "outside"
        outside.mkdir()
        Image.new("L", (4, 4)).save(outside / "0.png")
        folder = work / "set"
        for top in (("train", "test") if presplit else ("",)) if seeded else ():  # good images, so that the
            for cls in ("cat", "dog"):                                           # drawn ones get decoded
                (folder / top / cls).mkdir(parents=True)
                for k in range(3):
                    Image.new("L", (5, 5), 40 * k).save(folder / top / cls / f"good{k}.png")
        for i, (sub, suffix, what) in enumerate(files):
            base = folder / (("train" if i % 2 else "test") if presplit else "") / sub
            base.mkdir(parents=True, exist_ok=True)
            _make_entry(base / f"{i}{suffix}", what, outside, root)
        folder.mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _call(data.load, f"folder:{folder}", split, size=size, channels=channels)
        _clean_root(root)

    run()


# ----- the CIFAR reader -----
sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))  # numpy's pickle recipes, Python 2's pickler
from data_fakes import Reduced, _reconstruct, numpy_dtype, python2_pickle  # noqa: E402

arrays = st.builds(lambda dtype, shape: np.zeros(shape, dtype),
                   st.sampled_from(["u1", "i8", "f4", "O", "U3", "V4", "?"]),
                   st.one_of(st.just((2, 3072)), st.just((0, 3072)), st.lists(st.integers(0, 4), max_size=3)
                             .map(tuple)))
cifar_values = st.one_of(json_values, arrays, st.lists(st.integers(-3, 12), max_size=4),
                         st.binary(max_size=10))


def _nested(depth: int, width: int) -> list:
    value = [1]
    for _ in range(depth):
        value = [value] * width
    return value


#: numpy's pickle of a (N, 3072) uint8 array, part by part; each may be swapped for a drawn one.
U1_STATE = (3, "|", None, None, None, -1, -1, 0)
DTYPE_STATES = [U1_STATE, (3, "<", None, None, None, -1, -1, 1),  # flags 1 on M8: numpy 2.4 segfaults
                (3, "<", None, None, None, 2**40, 1, 0), (3, "<", None, ("a",), {"a": (1, 2)}, -1, -1, 0),
                (3, "<", None, None, None, -1, -1, 0, (None, ("D", 1, 1, 1))), (4, ">", (1, 2), None, None, 0, 0, 0)]
recipe_parts = {
    "fn": st.sampled_from([np.frombuffer, np.ones, os.getcwd, collections.OrderedDict, np.dtype, np.ndarray]),
    "cls": st.sampled_from([np.dtype, np.frombuffer, os.getcwd, None, "ndarray"]),
    "base": st.sampled_from([(2**40,), (3,), (), (0, 0), 0]),
    "version": st.sampled_from([0, 2, -1, 2**70, "1", None]),
    "shape": st.one_of(st.tuples(st.sampled_from(BIG_INTS + [-1, -2**70]), st.sampled_from([3072, 0, 1, -3072, 2**62])),
                       st.lists(st.integers(-1, 4), max_size=3).map(tuple), json_values),
    "dtype": st.builds(lambda code, state: Reduced(np.dtype, (code, False, True), state),
                       st.sampled_from(["u1", b"u1", "M8", "m8[D]", "V0", "O", "i8", "S0", "U1", "u1,u1", 7]),
                       st.one_of(st.sampled_from(DTYPE_STATES), json_values)),
    "fortran": st.sampled_from([True, 1, None, "F"]),
    "raw": st.one_of(st.binary(max_size=40), st.sampled_from(["\xff" * 3072, "\u0100" * 3072, b"\0" * 3071]),
                     json_values),
}


@st.composite
def numpy_recipes(draw):
    """numpy's recipe for a valid (N, 3072) uint8 array, N in 0..2, with up to three parts swapped."""
    n = draw(st.integers(0, 2))
    part = dict(fn=_reconstruct, cls=np.ndarray, base=(0,), version=1, shape=(n, 3072), fortran=False,
                dtype=numpy_dtype(state=U1_STATE), raw=b"\x07" * (n * 3072))
    for name in sorted(draw(st.sets(st.sampled_from(sorted(recipe_parts)), max_size=3))):  # not hash order
        part[name] = draw(recipe_parts[name])
    return n, Reduced(part["fn"], (part["cls"], part["base"], b"b"),
                      (part["version"], part["shape"], part["dtype"], part["fortran"], part["raw"]))


CRAFTED_M8 = b"(dp0\nS'data'\ncnumpy\ndtype\n(S'M8'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI1\ntbsS'labels'\n(ls."


@st.composite
def cifar_batches(draw):
    kind = draw(st.sampled_from(["recipe", "recipe", "recipe", "dict", "dict", "value", "nested", "flipped",
                                 "random", "m8"]))
    protocol = draw(st.integers(0, 5))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "m8":  # the crash reported: numpy.dtype('M8') given a crafted state
        return CRAFTED_M8
    if kind == "recipe":  # Python 2's cPickle, as the real files, or Python 3's pickle of the same recipe
        n, data = draw(numpy_recipes())
        batch = {b"data": data, b"labels": draw(st.one_of(st.just([i % 3 for i in range(n)]), cifar_values))}
        return python2_pickle(batch) if protocol == 5 else pickle.dumps(batch, protocol=protocol)
    if kind == "nested":
        nest = _nested(draw(st.integers(1, 12)), draw(st.integers(1, 8)))
        return pickle.dumps({b"data": draw(st.sampled_from([nest, np.zeros((2, 3072), "u1")])),
                             b"labels": nest}, protocol=protocol)
    if kind == "value":
        return pickle.dumps(draw(cifar_values), protocol=protocol)
    batch = {b"data": draw(st.one_of(st.just(np.zeros((2, 3072), np.uint8)), cifar_values)),
             b"labels": draw(st.one_of(st.just([1, 2]), cifar_values))}
    raw = pickle.dumps(batch, protocol=protocol)
    if kind == "flipped":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw


def fuzz_cifar(root: Path, n: int) -> None:
    work = root / "work"

    @settings(**_settings(n))
    @given(batch=cifar_batches(), names=st.one_of(st.just([b"a", b"b", b"c"]), cifar_values),
           names_protocol=st.integers(0, 5))
    def run(batch, names, names_protocol):
        folder = _fresh(work) / "cifar-10-batches-py"
        folder.mkdir()
        (folder / "test_batch").write_bytes(batch)
        (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=names_protocol))
        for i in range(1, 6):
            (folder / f"data_batch_{i}").write_bytes(batch)
        registry._load_cached.cache_clear()
        _call(data.load, "cifar10", "test", folder, download=False)
        _clean_root(root)

    run()


# ----- the upload zip -----
entry_names = st.one_of(st.sampled_from(["meta.json", "x/meta.json", "../meta.json", "/abs/meta.json",
                                         "model.pt", "data.pkl", "weights-a.safetensors", "a/../../b",
                                         "C:/x", "__MACOSX/meta.json", "dir/"]), st.text(max_size=20))


def fuzz_zip(root: Path, n: int) -> None:
    work = root / "work"
    meta0, wname, wblob = _shipped()

    @settings(**_settings(n))
    @given(edits=st.lists(st.tuples(meta_paths, meta_values), max_size=3), wedit=weights_edits(len(wblob)),
           prefix=st.sampled_from(["", "model/", "a/b/"]), extra=st.lists(
               st.tuples(entry_names, st.binary(max_size=50)), max_size=4),
           compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                        zipfile.ZIP_LZMA]),
           flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3),
           truncate=st.one_of(st.none(), st.floats(0, 1)))
    def run(edits, wedit, prefix, extra, compression, flips, truncate):
        dest = _fresh(work) / "uploads"
        meta = _mutate_meta(json.loads(json.dumps(meta0)), edits)
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression) as z:
            warnings.simplefilter("ignore")  # duplicate names are part of the fuzz
            z.writestr(prefix + "meta.json", json.dumps(meta))
            z.writestr(prefix + wname, _apply_weights(wblob, wedit))
            for name, blob in extra:
                try:
                    z.writestr(name, blob)
                except Exception:  # noqa: BLE001  a name zipfile itself cannot write: leave it out
                    pass
        _call(checkpoints.install_checkpoint_zip, _damaged(buf.getvalue(), flips, truncate), dest, "up.zip")
        if dest.exists():
            left = [p.name for p in dest.iterdir() if p.name.startswith(".upload-")]
            assert not left, f"temporary folders left behind: {left}"
        _clean_root(root)

    run()


# ----- the image-folder upload zip -----
image_entry_names = st.one_of(
    st.builds(lambda top, cls, name: top + cls + name, st.sampled_from(["", "up/", "a/b/", "__MACOSX/", ".git/"]),
              st.sampled_from(["cat/"] * 4 + ["dog/"] * 4 + ["", "cat/deep/", "../", "/abs/", "C:/"]),
              st.sampled_from(["1.png", "2.jpg", "3.gif", "x.eps", "notes.txt", "4.PNG", ".hidden.png", "dir/"])),
    st.text(max_size=20))


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (5, 5), 90).save(buf, "PNG")
    return buf.getvalue()


def fuzz_images_zip(root: Path, n: int) -> None:
    from vqviz import archive

    work = root / "work"
    good = _png_bytes()

    def loads(folder):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.load(f"folder:{folder}", "train")

    @settings(**_settings(n))
    @given(entries=st.lists(st.tuples(image_entry_names, image_files(), st.sampled_from([False] * 15 + [True])),
                            max_size=8),
           compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                        zipfile.ZIP_LZMA]),  # a damaged zip in one case of four, at most:
           flips=st.sampled_from([[]] * 3 + [None]).flatmap(  # most reach the images and their load
               lambda f: st.just([]) if f == [] else st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)),
                                                            min_size=1, max_size=3)),
           truncate=st.one_of(st.none(), st.none(), st.none(), st.floats(0, 1)), seeded=st.booleans())
    def run(entries, compression, flips, truncate, seeded):
        dest = _fresh(work) / "uploads"
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression) as z:
            warnings.simplefilter("ignore")  # duplicate names are part of the fuzz
            for name in [f"{c}/good{k}.png" for c in ("cat", "dog") for k in range(3)] if seeded else []:
                z.writestr(name, good)  # good images, so that the drawn ones get decoded
            for name, blob, link in entries:
                try:
                    info = zipfile.ZipInfo(name)
                    if link:  # a symbolic link entry, pointing out of the folder
                        info.external_attr = (0o120777 << 16)
                    z.writestr(info, blob.replace(MARKER, str(root / "written-by-postscript").encode()),
                               compress_type=compression)
                except Exception:  # noqa: BLE001  a name zipfile itself cannot write: leave it out
                    pass
        _call(archive.install_image_folder_zip, _damaged(buf.getvalue(), flips, truncate), dest, "up.zip", check=loads)
        extra = sorted(set(os.listdir(work)) - {"uploads"})
        assert not extra, f"written outside the upload folder: {extra}"
        if dest.exists():
            left = [p.name for p in dest.iterdir() if p.name.startswith(".upload-")]
            assert not left, f"temporary folders left behind: {left}"
        _clean_root(root)

    run()


TARGETS = {"idx": fuzz_idx, "checkpoint": fuzz_checkpoint, "folder": fuzz_folder, "cifar": fuzz_cifar,
           "zip": fuzz_zip, "images_zip": fuzz_images_zip}


def _settings(n: int) -> dict:
    return dict(max_examples=n, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmSize, VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _reset_peak() -> None:
    """Reset the peak resident size (VmHWM), so that each target's peak is its own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _seed_checkpoint(folder: Path) -> Path:
    """A small checkpoint to mutate: a VQ-VAE on 1x4x4 inputs (its zip compresses in milliseconds)."""
    from vqviz.models import build

    return checkpoints.save(build("vqvae", in_shape=(1, 4, 4), n_classes=2, encoder="lae2", latent_dim=4,
                                  codebook_size=4), folder, dataset="digits", metrics={"test_mse_per_image": 1.0})


def main(targets: list[str], n: int, root: Path, limit: int) -> None:
    global SHIPPED
    SHIPPED = _seed_checkpoint(root.parent / "seed")
    paths.SYSTEM_DIR, paths.CACHE_DIR = root / "work" / "no-system", root / "work" / "no-cache"
    os.chdir(root)
    (root / "work").mkdir(exist_ok=True)
    # Warm up the code paths once (imports, the meta device), so the baseline is the steady state.
    checkpoints.load(SHIPPED)
    import PIL.Image  # noqa: F401  imported by the loaders on first use
    import sklearn.model_selection  # noqa: F401
    resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + limit, resource.RLIM_INFINITY))
    for target in targets:
        SEEN.clear()
        WORST[:] = [0, ""]
        SLOWEST[:] = [0.0, ""]
        _reset_peak()
        before = _status("VmRSS")
        TARGETS[target](root, n)
        print(json.dumps({"target": target, "examples": sum(SEEN.values()), "seen": dict(SEEN),
                          "rss_before": before, "rss_peak": _status("VmHWM"),
                          "worst_call_growth_kib": WORST[0], "worst_case": WORST[1],
                          "slowest_call_s": round(SLOWEST[0], 3), "slowest_case": SLOWEST[1]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
