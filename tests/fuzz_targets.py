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


def _clean_root(root: Path) -> None:
    """Nothing but ``work`` may be in the sandbox: no file written outside the folder."""
    extra = sorted(set(os.listdir(root)) - {"work"})
    assert not extra, f"written outside the target folder: {extra}"


def _call(fn, *args, **kwargs):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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


WORST: list = [0, ""]
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
                       st.sampled_from(["weights.file", "weights.sha256", "split_sizes.train", "metrics.test_mse_per_image"]))
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
FORMATS = ["PNG", "GIF", "BMP", "JPEG", "TIFF", "PPM"]


@st.composite
def image_files(draw):
    from PIL import Image

    kind = draw(st.sampled_from(["image", "image", "flipped", "truncated", "random", "bomb-header"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "bomb-header":
        w, h = draw(st.sampled_from([20000, 5000, 2**31 - 1, 1])), draw(st.sampled_from([20000, 5000, 1, 2**31 - 1]))

        def chunk(kind_: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind_ + body + struct.pack(">I", zlib.crc32(kind_ + body))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1"]))
    if fmt in ("JPEG", "PPM") and mode in ("RGBA", "P"):
        mode = "RGB"
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    buf = io.BytesIO()
    Image.new(mode, size, draw(st.integers(0, 255)) if mode in ("L", "P", "1") else (1, 2, 3)).save(buf, fmt)
    raw = buf.getvalue()
    if kind == "flipped":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    elif kind == "truncated":
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


layouts = st.lists(st.tuples(st.sampled_from(["cat", "dog", "a/b", "a/b/c/d/e/f", ".hidden", "x"]),
                             st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".txt", "", ".PNG"]),
                             image_files()), max_size=8)


def fuzz_folder(root: Path, n: int) -> None:
    work = root / "work"

    @settings(**_settings(n))
    @given(files=layouts, presplit=st.booleans(), split=st.sampled_from(["train", "test"]),
           size=st.sampled_from([None, (8, 8), (1, 1)]), channels=st.sampled_from([None, 1, 3]))
    def run(files, presplit, split, size, channels):
        folder = _fresh(work) / "set"
        for i, (sub, suffix, blob) in enumerate(files):
            base = folder / (("train" if i % 2 else "test") if presplit else "") / sub
            base.mkdir(parents=True, exist_ok=True)
            (base / f"{i}{suffix}").write_bytes(blob)
        folder.mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _call(data.load, f"folder:{folder}", split, size=size, channels=channels)
        _clean_root(root)

    run()


# ----- the CIFAR reader -----
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


@st.composite
def cifar_batches(draw):
    kind = draw(st.sampled_from(["dict", "dict", "value", "nested", "flipped", "random"]))
    protocol = draw(st.integers(0, 5))
    if kind == "random":
        return draw(st.binary(max_size=300))
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
        blob = bytearray(buf.getvalue())
        for where, xor in flips:
            at = min(int(where * len(blob)), len(blob) - 1)
            blob[at] ^= xor
        if truncate is not None:
            blob = blob[: int(truncate * len(blob))]
        _call(checkpoints.install_checkpoint_zip, bytes(blob), dest, "up.zip")
        if dest.exists():
            left = [p.name for p in dest.iterdir() if p.name.startswith(".upload-")]
            assert not left, f"temporary folders left behind: {left}"
        _clean_root(root)

    run()


TARGETS = {"idx": fuzz_idx, "checkpoint": fuzz_checkpoint, "folder": fuzz_folder, "cifar": fuzz_cifar,
           "zip": fuzz_zip}


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
        _reset_peak()
        before = _status("VmRSS")
        TARGETS[target](root, n)
        print(json.dumps({"target": target, "examples": sum(SEEN.values()), "seen": dict(SEEN),
                          "rss_before": before, "rss_peak": _status("VmHWM"),
                          "worst_call_growth_kib": WORST[0], "worst_case": WORST[1]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
