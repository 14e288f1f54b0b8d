"""The map's binary payload: the points as typed columns, and their thumbnails as one sprite atlas.

A map of N points travels to the browser as two byte strings, each sent once per browser session
and kept there by its digest (the frontend's ``src/payload.ts`` reads them):

- the **points** (:attr:`MapData.blob`), little-endian::

      "VQM1" | u32 header length | header JSON | zero padding to 8 | columns, each 8-aligned
      header: {version, digest, n, m, domain: [[x0, x1], [y0, y1]], kd_node,
               columns: {name: {offset, length, dtype}},  # x, y (NDC, the m background points first),
                                                           # kd (the spatial index's order: kd_order),
                                                           # f0, f1, ... (a field each), thumb (optional)
               fields: [{name, column, names, colours, kind: "categorical" | "continuous", range}],
               atlas: {digest, mime, thumb: [w, h], cols, length, shrunk} | null}

- the **atlas** (:attr:`MapData.atlas`): ``"VQA1" | u32 length | its digest (ASCII) | the image``, one
  PNG of every thumbnail in a row-major grid. It follows the points in the page, so that a map of
  70,000 images (13 MB of thumbnails) is drawn before its hover images have arrived.

Positions are scaled to [-1, 1] (regl-scatterplot's normalized device coordinates) with one scale on
both axes, so the map keeps its aspect; ``domain`` maps them back to data coordinates. Category codes
are uint8, uint16 or uint32 by their largest value; continuous fields float32 in [0, 1] with their
range in the header. A change of colour, marks or selection therefore sends a few hundred bytes of
JSON, never the points (measured: 3.2 kB a click, at 360 points as at 1,000,000).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MAGIC, ATLAS_MAGIC = b"VQM1", b"VQA1"
#: matplotlib's tab10, as the app's other charts use.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")
_DTYPES = {"float32": "<f4", "uint8": "u1", "uint16": "<u2", "uint32": "<u4"}
#: Points in a leaf of the spatial index: regl-scatterplot's (and so KDBush's) node size.
KD_NODE = 16


@dataclass(frozen=True)
class Field:
    """One field of the points, shown by colour and in the hover card.

    values : (N,) integer codes >= 0 (categorical) or numbers (``continuous``).
    names : categorical: the name of each code (default: the code itself).
    colours : categorical: a colour per code, cycled; continuous: a ramp, low to high.
    range : continuous: the values at the ramp's two ends (default: their minimum and maximum).
    """

    values: np.ndarray
    names: Sequence[str] = ()
    colours: Sequence[str] = ()
    continuous: bool = False
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class MapData:
    """A packed map: the points' payload, the atlas (or None), and what the app needs to know of them."""

    blob: bytes = field(repr=False)
    digest: str
    n: int
    m: int
    fields: tuple[str, ...]
    domain: tuple[tuple[float, float], tuple[float, float]]
    atlas: bytes | None = field(default=None, repr=False)
    atlas_digest: str | None = None

    @property
    def nbytes(self) -> int:
        return len(self.blob) + len(self.atlas or b"")


def _codes(values: np.ndarray, name: str) -> np.ndarray:
    if values.size and (not np.issubdtype(values.dtype, np.integer) or int(values.min()) < 0):
        raise ValueError(f"field {name!r}: categorical codes must be integers >= 0")
    top = int(values.max()) if values.size else 0
    return values.astype("u1" if top < 2**8 else "<u2" if top < 2**16 else "<u4")


def pack(x: np.ndarray, y: np.ndarray, fields: dict[str, Field], atlas: bytes | None = None,
         thumb_size: int | tuple[int, int] = 28, atlas_cols: int | None = None, shrunk: int = 1,
         thumb_index: np.ndarray | None = None, background: np.ndarray | None = None,
         pad: float = 0.08) -> MapData:
    """Pack N points into the map's payload.

    x, y : (N,) data coordinates.
    fields : name -> :class:`Field` of (N,) values; the first one colours the map by default.
    atlas : an image of every thumbnail in a grid, row-major, ``atlas_cols`` per row (default: the
        PNG's width // the thumbnail's), each ``thumb_size`` pixels (see :func:`atlas_png`).
    thumb_index : (N,) the atlas cell of each row (default: the row itself), e.g. ``row % 70000`` for
        a split made of MNIST's images repeated.
    shrunk : the thumbnails are the images shrunk this many times (the hover card says so).
    background : (M, 2) points drawn first, in grey, never selected (the train map under test points).
    pad : the margin around the points, as a fraction of their extent.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if x.ndim != 1 or y.shape != (n,):
        raise ValueError(f"x and y must be (N,) arrays of one length, not {x.shape} and {y.shape}")
    bg = np.zeros((0, 2)) if background is None else np.asarray(background, np.float64).reshape(-1, 2)
    allx, ally = np.concatenate([bg[:, 0], x]), np.concatenate([bg[:, 1], y])
    if not np.isfinite(allx).all() or not np.isfinite(ally).all():
        raise ValueError("the map's positions must be finite numbers")
    lo = np.array([allx.min(), ally.min()]) if len(allx) else np.zeros(2)
    hi = np.array([allx.max(), ally.max()]) if len(allx) else np.ones(2)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-9) * (1 + pad)  # one scale on both axes
    domain = ((float(centre[0] - half), float(centre[0] + half)), (float(centre[1] - half), float(centre[1] + half)))

    columns: list[tuple[str, np.ndarray]] = [("x", ((allx - centre[0]) / half).astype("<f4")),
                                             ("y", ((ally - centre[1]) / half).astype("<f4"))]
    # the spatial index's order: the browser builds KDBush's buffer from it in one pass, instead of
    # indexing a million points itself (in a worker, after copying each point into an array of its own)
    kd = kd_order(columns[0][1], columns[1][1])
    columns.append(("kd", kd.astype("<u2" if len(kd) < 2**16 else "<u4")))
    heads = []
    for k, (name, f) in enumerate(fields.items()):
        values = np.asarray(f.values)
        if values.shape != (n,):
            raise ValueError(f"field {name!r}: {values.shape} values for {n} points")
        if f.continuous:
            v = values.astype(np.float64)
            finite = v[np.isfinite(v)]
            low, high = f.range or ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
            scaled = np.clip(np.nan_to_num((v - low) / ((high - low) or 1.0)), 0, 1)
            columns.append((f"f{k}", scaled.astype("<f4")))
            heads.append(dict(name=name, column=f"f{k}", names=[], colours=list(f.colours or VIRIDIS),
                              kind="continuous", range=[float(low), float(high)]))
        else:
            codes = _codes(values, name)
            columns.append((f"f{k}", codes))
            names = [str(s) for s in f.names] or [str(i) for i in range(int(codes.max()) + 1 if n else 0)]
            heads.append(dict(name=name, column=f"f{k}", names=names, colours=list(f.colours or PALETTE),
                              kind="categorical"))
    if thumb_index is not None:
        thumbs = np.asarray(thumb_index)
        if thumbs.shape != (n,):
            raise ValueError(f"thumb_index: {thumbs.shape} cells for {n} points")
        columns.append(("thumb", thumbs.astype("<u4")))

    atlas_head = atlas_blob = atlas_digest = None
    if atlas is not None:
        tw, th = (thumb_size, thumb_size) if isinstance(thumb_size, int) else thumb_size
        atlas_digest = hashlib.blake2b(bytes(atlas), digest_size=16).hexdigest()
        atlas_head = dict(digest=atlas_digest, mime=_mime(atlas), thumb=[int(tw), int(th)],
                          cols=int(atlas_cols or _png_width(atlas) // tw), length=len(atlas), shrunk=int(shrunk))
        atlas_blob = ATLAS_MAGIC + struct.pack("<I", len(atlas_digest)) + atlas_digest.encode() + bytes(atlas)

    hasher = hashlib.blake2b(digest_size=16)
    for name, column in columns:
        hasher.update(name.encode() + column.dtype.str.encode())
        hasher.update(column.tobytes())
    hasher.update(json.dumps([heads, atlas_head, len(bg)]).encode())
    digest = hasher.hexdigest()

    def header(base: int) -> bytes:
        refs, at = {}, base
        for name, column in columns:
            refs[name] = dict(offset=at, length=len(column), dtype=column.dtype.name)
            at += _pad8(column.nbytes)
        return json.dumps(dict(version=1, digest=digest, n=n, m=len(bg), domain=domain, columns=refs, fields=heads,
                               atlas=atlas_head, kd_node=KD_NODE), separators=(",", ":")).encode()

    base = 0  # the header's length moves the columns: iterate to its fixed point
    while True:
        head = header(base)
        if _pad8(8 + len(head)) == base:
            break
        base = _pad8(8 + len(head))
    out = io.BytesIO()
    out.write(MAGIC + struct.pack("<I", len(head)) + head + b"\0" * (base - 8 - len(head)))
    for _, column in columns:
        out.write(column.tobytes() + b"\0" * (_pad8(column.nbytes) - column.nbytes))
    return MapData(out.getvalue(), digest, n, len(bg), tuple(fields), domain, atlas_blob, atlas_digest)


def kd_order(x: np.ndarray, y: np.ndarray, node_size: int = KD_NODE) -> np.ndarray:
    """The order of the points (N,) in a static k-d tree as KDBush lays it out: within every range
    [left, right] of more than ``node_size`` points, the middle point m = (left + right) // 2 splits it on
    the range's axis (x, then y, in turns), no point before m above it, none after m below it. Each level
    of the tree is one sort of every range on its axis (a million points: 1.6 s, once per map)."""
    n = len(x)
    ids = np.arange(n, dtype=np.int64)
    coords = (np.asarray(x, np.float64), np.asarray(y, np.float64))
    left, right, axis = np.array([0]), np.array([n - 1]), 0
    while True:
        keep = right - left > node_size
        left, right = left[keep], right[keep]
        if not len(left):
            return ids
        sizes = right - left + 1
        starts = np.cumsum(sizes) - sizes
        pos = np.repeat(left - starts, sizes) + np.arange(sizes.sum())  # every position of every range
        values = coords[axis][ids[pos]]
        low, span = values.min(), float(np.ptp(values)) or 1.0
        # one sort for all ranges: the range's number, plus the value scaled into [0, 1)
        key = np.repeat(np.arange(len(left)), sizes) + (values - low) / (span * (1 + 1e-9))
        ids[pos] = ids[pos[np.argsort(key, kind="stable")]]
        middle = (left + right) >> 1
        left, right, axis = np.concatenate([left, middle + 1]), np.concatenate([middle - 1, right]), 1 - axis


def unpack(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the columns of a points payload, read as the browser reads them: the inverse of
    :func:`pack` (positions in [-1, 1]; :func:`positions` gives data coordinates)."""
    if blob[:4] != MAGIC:
        raise ValueError("not a vqviz map payload")
    (length,) = struct.unpack("<I", blob[4:8])
    head = json.loads(blob[8:8 + length])
    columns = {k: np.frombuffer(blob, _DTYPES[c["dtype"]], c["length"], c["offset"]) for k, c in head["columns"].items()}
    return head, columns


def positions(blob: bytes) -> np.ndarray:
    """(N, 2) the points' data coordinates in a payload (the background's left out)."""
    head, columns = unpack(blob)
    (x0, x1), (y0, y1) = head["domain"]
    m = head["m"]
    return np.stack([x0 + (columns["x"][m:] + 1) / 2 * (x1 - x0), y0 + (columns["y"][m:] + 1) / 2 * (y1 - y0)], 1)


def _pad8(k: int) -> int:
    return (k + 7) // 8 * 8


def _mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    raise ValueError("the atlas must be a PNG, WebP or JPEG image")


def _png_width(data: bytes) -> int:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("give atlas_cols for an atlas that is not a PNG")
    return struct.unpack(">I", data[16:20])[0]


def atlas_png(images: np.ndarray, cols: int | None = None, compress_level: int = 1) -> tuple[bytes, int]:
    """A sprite atlas of ``images``: (N, H, W) or (N, H, W, 3) uint8, or floats in [0, 1]. One PNG with
    the images in a grid, row-major, ``cols`` a row (default: about square); returns it and ``cols``.
    Grey images stay one channel: 70,000 MNIST digits make about 13 MB at ``compress_level`` 1 (0.8 s)."""
    from PIL import Image

    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 3), not {images.shape}")
    k, h, w = images.shape[:3]
    cols = cols or max(1, int(np.ceil(np.sqrt(k))))
    rows = max(1, -(-k // cols))
    grid = np.zeros((rows * cols, *images.shape[1:]), np.uint8)
    grid[:k] = images
    grid = grid.reshape(rows, cols, h, w, *images.shape[3:]).swapaxes(1, 2).reshape(rows * h, cols * w,
                                                                                    *images.shape[3:])
    out = io.BytesIO()
    Image.fromarray(grid).save(out, "PNG", compress_level=compress_level)
    return out.getvalue(), cols
