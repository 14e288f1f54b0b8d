"""A file of latents: embeddings computed elsewhere, explored in the app without a model.

Two formats are read, ``.npz`` and ``.parquet`` (through pyarrow, imported when needed); :func:`write`
writes ``.npz``. Every row is one sample:

=============  ==============  ================================================================
``.npz`` key   parquet column  what it holds
=============  ==============  ================================================================
``latents``    ``latents``     (N, d) real numbers, finite; in parquet a list of d numbers a row
``labels``     ``label``       ints >= 0, or strings: the classes are then the sorted distinct strings
``classes``    -               the names of int labels (default "0", "1", ...), or the order of string ones
``images``     ``image``       (N, C, H, W), (N, H, W) or (N, H, W, C), C 1 or 3, uint8 or floats in [0, 1];
                               in parquet the bytes of an image file (PNG, JPEG, ...) a row
``paths``      ``path``        image files, relative to the file's folder (instead of images)
``codes``      ``code(s)``     (N,) or (N, L) ints >= 0: each row's code in each of L codebooks
=============  ==============  ================================================================

Other keys and columns are ignored, with a warning that names them (a typo, ``label`` in an
``.npz``, should not pass unseen). Nothing is unpickled (``allow_pickle=False``; an object array is
refused from its header), every size is capped before it is read or decoded, and image files are
opened only by :func:`vqviz.imageio.open_image`, inside the file's folder, never through a link.
Images take the first image's size; they are grey unless one of them is in colour, then RGB.
Anything wrong raises :class:`vqviz.errors.DataError`, whose message names the file.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqviz.errors import ConfigError, DataError
from vqviz.utils import atomic_path, open_regular, printable

from .latent_images import decode_images, image_array
from .registry import Dataset, dataset, register_scheme

#: What reading a damaged archive raises, by decompressor.
DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError, ValueError)
MAX_LATENTS_FILE_BYTES = 4 * 2**30  # one file of latents, checked before it is read
MAX_DECODED_BYTES = 8 * 2**30  # its arrays once unpacked or decoded (a compressed .npz can hold far more)
MAX_ROWS = 2_000_000  # samples in one file
MAX_DIM = 65_536  # numbers in one latent vector, and codebooks in one row of codes
MAX_CODES = 1_000_000  # the largest code + 1, so that a count of each code fits in memory

NPZ_KEYS = ("latents", "labels", "classes", "images", "paths", "codes")
PARQUET_COLUMNS = ("latents", "label", "code", "codes", "path", "image")


@dataclass(frozen=True, eq=False)  # eq=False: == of numpy arrays is not a bool
class Latents:
    """A file of latents, checked; the arrays are read-only.

    Attributes
    ----------
    latents : (N, d) float32, finite.
    labels : (N,) int64 in ``[0, len(classes))``, or None.
    classes : the name of each label; ``()`` without labels.
    images : (N, C, H, W) float32 in [0, 1], C 1 or 3, or None.
    codes : (N,) or (N, L) int64 >= 0, or None.
    source : the file's name, for messages.
    """

    latents: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...]
    images: np.ndarray | None
    codes: np.ndarray | None
    source: str

    n = property(lambda self: self.latents.shape[0], doc="The number of rows, N.")
    dim = property(lambda self: self.latents.shape[1], doc="The length of a latent vector, d.")
    has_images = property(lambda self: self.images is not None)
    has_codes = property(lambda self: self.codes is not None)
    n_codes = property(lambda self: None if self.codes is None else int(self.codes.max()) + 1,
                       doc="The largest code + 1, over every codebook; None without codes.")
    n_codebooks = property(lambda self: None if self.codes is None else 1 if self.codes.ndim == 1
                           else self.codes.shape[1], doc="L, the codes of one row; None without codes.")


def read(path: str | os.PathLike, *, name: str = "") -> Latents:
    """Read and check the ``.npz`` or ``.parquet`` file of latents at ``path``.

    Parameters
    ----------
    path : the file; image paths in it are relative to its folder.
    name : how messages name the file (e.g. an upload's own name); ``path`` by default.

    Raises
    ------
    DataError : the file is missing, too large, damaged, of another format, or breaks a rule above.
    """
    path = Path(path)
    source = printable(name or str(path))
    readers = {".npz": _read_npz, ".parquet": _read_parquet}
    if path.suffix.lower() not in readers:
        raise DataError(f"{source}: not a file of latents; expected a .npz or a .parquet file")
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(open_regular(
                path, MAX_LATENTS_FILE_BYTES, error=DataError, what=source, too_big=lambda size: DataError(
                    f"{source}: {size:,} bytes; the limit is {MAX_LATENTS_FILE_BYTES:,} bytes "
                    "(vqviz.data.latents.MAX_LATENTS_FILE_BYTES)")))
        except OSError as e:
            raise DataError(f"{source}: cannot read the file ({e.strerror or e})") from None
        fields = readers[path.suffix.lower()](f, source)
    return _check(source, path.parent, **fields)


def write(path: str | os.PathLike, latents, labels=None, images=None, codes=None, classes=None) -> Path:
    """Check the arrays as :func:`read` does and write them to the ``.npz`` file ``path``, atomically.

    ``latents`` may be a :class:`Latents` (the other arguments are then its own). Images that
    are whole multiples of 1/255 are stored as uint8; nothing is pickled. Returns ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ConfigError(f"{path}: latents are written as .npz; name the file *.npz")
    if isinstance(latents, Latents):
        latents, labels, images, codes, classes = (latents.latents, latents.labels, latents.images,
                                                   latents.codes, latents.classes or None)
    checked = _check(printable(str(path)), None, latents=latents, labels=labels, classes=classes,
                     images=images, codes=codes)
    arrays = {"latents": checked.latents, "labels": checked.labels, "codes": checked.codes,
              "classes": np.array(checked.classes, dtype=str) if checked.classes else None}
    if checked.images is not None:
        u8 = np.rint(checked.images * 255).astype(np.uint8)
        arrays["images"] = u8 if np.array_equal(u8 / np.float32(255), checked.images) else checked.images
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez would add ".npz" to a name
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})  # checked: no object arrays
    return path


def _read_npz(f, source: str) -> dict:
    """The known arrays of an open ``.npz``, each header checked before its data is read."""
    fmt, arrays, decoded = np.lib.format, {}, 0
    if f.read(4) not in (b"PK\x03\x04", b"\x93NUM"):  # np.load would try anything else as a pickle
        raise DataError(f"{source}: not a .npz file (a zip of .npy arrays, as numpy.savez writes)")
    f.seek(0)
    try:
        npz = np.load(f, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{source}: a single .npy array, not a .npz archive; save it with numpy.savez")
        with npz:
            _warn_unknown(source, npz.files, NPZ_KEYS, "key")
            members = set(npz.zip.namelist())
            for key in (k for k in NPZ_KEYS if k in npz.files):
                with npz.zip.open(key + ".npy" if key + ".npy" in members else key) as m:
                    version = fmt.read_magic(m)
                    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = read_header(m)
                if dtype.hasobject:
                    raise DataError(f"{source}: '{key}' holds Python objects, which are never unpickled; "
                                    "save numbers or strings")
                if key == "latents" and len(shape) == 2:
                    _limits(source, *shape)
                decoded += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                _decoded(source, decoded)
                arrays[key] = npz[key]
    except (*DAMAGED, OSError) as e:
        raise DataError(f"{source}: not a valid .npz file ({type(e).__name__}: {str(e)[:200]})") from None
    if "latents" not in arrays:
        raise DataError(f"{source}: no 'latents' array; keys found: {', '.join(npz.files) or 'none'}")
    return arrays


def _read_parquet(f, source: str) -> dict:
    """The known columns of an open ``.parquet``, as arrays (strings as str, images as bytes)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{source}: reading .parquet files needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(f)
        names, meta = pf.schema_arrow.names, pf.metadata
        if "latents" not in names:
            raise DataError(f"{source}: no 'latents' column; columns found: {', '.join(names) or 'none'}")
        if "code" in names and "codes" in names:
            raise DataError(f"{source}: both a 'code' and a 'codes' column; keep one")
        _warn_unknown(source, names, PARQUET_COLUMNS, "column")
        _limits(source, meta.num_rows)
        _decoded(source, sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))
        table = pf.read(columns=[c for c in PARQUET_COLUMNS if c in names])
    except (pa.ArrowException, *DAMAGED, OSError) as e:
        raise DataError(f"{source}: not a valid .parquet file ({type(e).__name__}: {str(e)[:200]})") from None

    def column(name: str, lists: bool = False) -> np.ndarray:
        col = table.column(name).combine_chunks()
        if pa.types.is_dictionary(col.type):  # pandas' categoricals
            col = col.dictionary_decode()
        if col.null_count:
            raise DataError(f"{source}: column '{name}' has {col.null_count} empty row(s)")
        if name == "image" and not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
            raise DataError(f"{source}: column 'image' must hold the bytes of image files, not {col.type}")
        if not lists:  # strings as str, binary as an object array of bytes (numpy's "S" drops trailing NULs)
            values = col.to_numpy(zero_copy_only=False)
            return values.astype(str) if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) \
                else values
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
                or pa.types.is_fixed_size_list(col.type)):
            raise DataError(f"{source}: column '{name}' must hold a list of numbers in each row, not {col.type}")
        lengths = np.unique(pc.list_value_length(col).to_numpy())
        if len(lengths) > 1:
            raise DataError(f"{source}: the rows of column '{name}' differ in length ({lengths[0]} to {lengths[-1]})")
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), int(lengths[0]) if len(col) else 0)

    have = set(table.column_names)
    return {"latents": column("latents", lists=True),
            "labels": column("label") if "label" in have else None,
            "codes": column("codes", lists=True) if "codes" in have else column("code") if "code" in have else None,
            "paths": column("path") if "path" in have else None,
            "image_bytes": column("image") if "image" in have else None}


def _check(source: str, folder: Path | None, *, latents, labels=None, classes=None, images=None, paths=None,
           image_bytes=None, codes=None) -> Latents:
    """The checked :class:`Latents` of raw arrays; ``paths`` are relative to ``folder``."""
    x = np.asarray(latents)
    if x.dtype.kind not in "iuf":
        raise DataError(f"{source}: latents of dtype {x.dtype}; expected real numbers (floats or ints)")
    if x.ndim != 2:
        raise DataError(f"{source}: latents must be 2-D (rows, dims); got shape {x.shape}")
    n, d = x.shape
    if n == 0 or d == 0:
        raise DataError(f"{source}: no latents (shape {x.shape})")
    _limits(source, n, d)
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, reported below
        x = x.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise DataError(f"{source}: {len(bad)} row(s) of latents hold NaN or infinite values (first: row {bad[0]})")

    def rows(a, key: str) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim == 0 or len(a) != n:
            raise DataError(f"{source}: '{key}' has {len(a) if a.ndim else 0} rows but 'latents' has {n}")
        return a

    if labels is not None:
        labels, classes = _labels(rows(labels, "labels"), classes, source)
    elif classes is not None:
        raise DataError(f"{source}: 'classes' without 'labels'")
    if codes is not None:
        codes = rows(codes, "codes")
        if codes.ndim not in (1, 2) or codes.ndim == 2 and not 0 < codes.shape[1] <= MAX_DIM:
            raise DataError(f"{source}: codes must be (N,) or (N, L) with 1 <= L <= {MAX_DIM:,}; "
                            f"got shape {codes.shape}")
        codes = _ints(codes, "codes", source)
        if codes.max() >= MAX_CODES:
            raise DataError(f"{source}: code {codes.max():,}; codes must be below {MAX_CODES:,} "
                            "(vqviz.data.latents.MAX_CODES)")
    given = [k for k, v in (("images", images), ("paths", paths), ("image", image_bytes)) if v is not None]
    if len(given) > 1:
        raise DataError(f"{source}: both '{given[0]}' and '{given[1]}'; give the images one way")
    if images is not None:
        images = image_array(rows(images, "images"), source)
    elif paths is not None or image_bytes is not None:
        images = decode_images(rows(paths if paths is not None else image_bytes, given[0]), source, folder,
                               lambda size: _decoded(source, size))
    for a in (x, labels, images, codes):
        if a is not None:
            a.flags.writeable = False
    return Latents(x, labels, classes or (), images, codes, source)


def _labels(labels: np.ndarray, classes, source: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """int64 labels and the name of each: strings are numbered in the order of ``classes``, else sorted."""
    from . import registry

    if labels.ndim != 1:
        raise DataError(f"{source}: labels must be 1-D, one a row; got shape {labels.shape}")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.dtype.kind != "U" or classes.ndim != 1 or len(set(classes.tolist())) < len(classes):
            raise DataError(f"{source}: 'classes' must be distinct strings, one a label")
    if labels.dtype.kind == "U":
        names, inverse = np.unique(labels, return_inverse=True)
        order = names.tolist() if classes is None else classes.tolist()
        index = {c: i for i, c in enumerate(order)}
        missing = [c for c in names.tolist() if c not in index]
        if missing:
            raise DataError(f"{source}: labels not in 'classes': {', '.join(missing[:5])}")
        labels, classes = np.array([index[c] for c in names.tolist()], np.int64)[inverse], order
    else:
        labels = _ints(labels, "labels", source)
        top = int(labels.max())
        if classes is not None and top >= len(classes):
            raise DataError(f"{source}: label {top}, but 'classes' names only {len(classes)}")
        classes = classes.tolist() if classes is not None else [str(i) for i in range(top + 1)]
    if len(classes) > registry.MAX_CLASSES:
        raise DataError(f"{source}: {len(classes):,} classes; the limit is {registry.MAX_CLASSES:,} "
                        "(vqviz.data.MAX_CLASSES)")
    return labels, tuple(classes)


def _ints(a: np.ndarray, key: str, source: str) -> np.ndarray:
    """``a`` as int64 >= 0; whole floats pass, anything else is named."""
    if a.dtype.kind == "f":
        bad = np.flatnonzero((~np.isfinite(a) | (a != np.round(a))).reshape(len(a), -1).any(axis=1))
        if len(bad):
            raise DataError(f"{source}: {key} must be whole numbers; {len(bad)} row(s) are not (first: row {bad[0]})")
    elif a.dtype.kind not in "iu":
        raise DataError(f"{source}: {key} of dtype {a.dtype}; expected integers")
    if a.min() < 0:
        raise DataError(f"{source}: {key} must be >= 0; found {a.min():g} (row {np.argmin(a) // max(a[0].size, 1)})")
    if a.max() >= 2**62:  # beyond int64 once cast
        raise DataError(f"{source}: {key} up to {a.max():g}; they must be below 2**62")
    return a.astype(np.int64)


def _limits(source: str, n: int, d: int = 1) -> None:
    if n > MAX_ROWS:
        raise DataError(f"{source}: {n:,} rows; the limit is {MAX_ROWS:,} (vqviz.data.latents.MAX_ROWS)")
    if d > MAX_DIM:
        raise DataError(f"{source}: latents of {d:,} dims; the limit is {MAX_DIM:,} (vqviz.data.latents.MAX_DIM)")


def _decoded(source: str, size: int) -> None:
    if size > MAX_DECODED_BYTES:
        raise DataError(f"{source}: unpacks to {size / 2**30:.1f} GiB; the limit is "
                        f"{MAX_DECODED_BYTES / 2**30:.0f} GiB (vqviz.data.latents.MAX_DECODED_BYTES)")


def _warn_unknown(source: str, found, known, what: str) -> None:
    unknown = [k for k in found if k not in known and not k.startswith("__")]  # pandas' __index_level_0__
    if unknown:
        warnings.warn(printable(f"{source}: ignored unknown {what}(s) {', '.join(map(repr, unknown[:10]))}; "
                                f"known: {', '.join(known)}"), stacklevel=4)


# ----- ``latents:<file>``: a file of latents as a data set -----
#: (C, H, W) of the blank pictures of a file without images: one pixel a row.
NO_IMAGES = (1, 1, 1)
_shapes: dict[tuple[str, int, int], tuple[int, int, int] | None] = {}


def image_shape(path: str) -> tuple[int, int, int] | None:
    """(C, H, W) of the images of the file of latents at ``path`` (:data:`NO_IMAGES` where it has none);
    None where it cannot be read. Read once per version of the file (its size and mtime)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _shapes:
        try:
            got = read(path)
            _shapes[key] = tuple(got.images.shape[1:]) if got.images is not None else NO_IMAGES
        except DataError:
            _shapes[key] = None
    return _shapes[key]


@register_scheme("latents", shape=NO_IMAGES, shape_of=image_shape)
def load_latents(path: str, split: str, size: tuple[int, int] | None, channels: int | None) -> Dataset:
    """The rows of the file of latents at ``path`` as a data set: its images (blank one-pixel pictures where
    it has none) and labels (all 0, of one class "all", where it has none). A file has one split: "train"
    and "test" are both all its rows."""
    if size is not None or channels is not None:
        raise DataError(f"latents:{path}: a file of latents keeps its own images; size and channels do not apply")
    return as_dataset(read(path), f"latents:{Path(path).resolve()}", split)


def as_dataset(got: Latents, name: str, split: str) -> Dataset:
    """The rows of ``got`` as the data set ``name``: its images (blank one-pixel pictures where it has
    none) and labels (all 0, of one class "all", where it has none)."""
    images = got.images if got.images is not None else np.zeros((got.n, *NO_IMAGES), np.float32)
    labels = got.labels if got.labels is not None else np.zeros(got.n, np.int64)
    classes = got.classes if got.labels is not None else ("all",)
    return dataset(name, split, images, labels, classes)
