"""A new image on the latent map: converted like the data set, encoded, assigned, placed;
the nearest neighbours of any latent; and the latent behind any spot of the map.

The map is whatever the page shows: its (N, 2) points and their (N, d) latents, and, when
one is in memory, the fitted :class:`vqviz.projection.Projector` that made it. With a
projector, a new latent is placed by the method's own ``transform`` and a spot goes back by
its inverse (PCA's exact one, UMAP's ``inverse_transform``); t-SNE has no inverse, and a
map without its projector has no transform, so those use the map's points themselves
(:func:`vqviz.projection.interpolate` and :func:`place_among_neighbours`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..imageio import open_image
from ..models import Model
from ..projection import METHODS, Projector, interpolate
from .points import PointTable

#: The largest upload read, in bytes.
MAX_UPLOAD_BYTES = 20 * 2**20
#: The most pixels an uploaded image may have, read from its header before decoding (4096 x 4096).
MAX_UPLOAD_PIXELS = 2**24
#: Neighbours shown by default; map points mixed for a spot of a t-SNE map.
K_NEIGHBOURS = 8


# ----- an uploaded image, in the data set's format -----
def border_level(images: np.ndarray) -> float:
    """The mean value of the outermost pixels of (N, C, H, W) images in [0, 1]: about 0 for
    digits and MNIST (white ink on black), about 1 for dark ink on white paper."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[-2] < 2:
        raise ConfigError(f"expected images of shape (N, C, H, W), got {images.shape}")
    edges = [images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]]
    return float(np.mean([e.mean() for e in edges]))


def to_dataset_format(raw: bytes, shape: tuple[int, int, int], name: str = "the image",
                      invert: bool | None = None, background: float | None = None) -> np.ndarray:
    """An uploaded image file as one image of the data set: (C, H, W) float32 in [0, 1].

    It is read with Pillow; transparency is laid on white; it is converted to grey (C = 1)
    or RGB (C = 3), padded with its border colour to the data set's aspect ratio (so that a
    digit is not stretched), and resized to H x W (by area averaging when it shrinks).

    Parameters
    ----------
    raw : the file's bytes (at most :data:`MAX_UPLOAD_BYTES`).
    shape : (C, H, W) of the data set's images, C 1 or 3.
    name : the file's name, for the messages.
    invert : turn the values over (1 - x). None: decide from ``background``, inverting when the
        image's border is bright and the data set's dark (black ink on white paper against
        white-on-black digits), or the other way round.
    background : the data set's :func:`border_level`; without it, ``invert=None`` inverts nothing.

    Raises
    ------
    DataError : not an allowed image format (:data:`vqviz.imageio.ALLOWED_FORMATS`), too many bytes or
        pixels, or a file Pillow cannot decode.
    """
    from PIL import Image

    c, h, w = (int(s) for s in shape)
    if c not in (1, 3) or h < 1 or w < 1:
        raise ConfigError(f"images of shape {tuple(shape)} cannot come from an image file: "
                          "expected 1 (grey) or 3 (RGB) channels")
    if not raw:
        raise DataError(f"{name}: the file is empty")
    # only the formats Pillow decodes itself, whatever the name: an EPS would run Ghostscript
    im = open_image(raw, name, max_pixels=MAX_UPLOAD_PIXELS, max_bytes=MAX_UPLOAD_BYTES)
    try:
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        im = im.convert("L" if c == 1 else "RGB")
    except Exception as e:  # noqa: BLE001  Pillow's decoders fail with many types on a broken file
        raise DataError(f"{name}: cannot decode the image ({type(e).__name__}: {str(e)[:200]})") from None
    pixels = _pad_to_ratio(np.asarray(im, dtype=np.uint8).reshape(im.height, im.width, c), h / w)
    picture = Image.fromarray(pixels[..., 0] if c == 1 else pixels)
    # shrinking: each pixel the mean of the area it covers (a photo's 1000 x 1000 becomes 8 x 8 without aliasing)
    shrink = picture.width >= w and picture.height >= h
    resized = picture.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    out = (np.asarray(resized, dtype=np.float32).reshape(h, w, c) / 255.0).transpose(2, 0, 1)
    if invert is None:
        invert = background is not None and (_edges(pixels).mean() / 255.0 > 0.5) != (background > 0.5)
    return np.ascontiguousarray(1.0 - out if invert else out, dtype=np.float32)


def _edges(pixels: np.ndarray) -> np.ndarray:
    """(n, C) the outermost pixels of an (H, W, C) picture."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def _pad_to_ratio(pixels: np.ndarray, ratio: float) -> np.ndarray:
    """Pad an (H, W, C) uint8 picture evenly with its border's median colour to height / width = ``ratio``."""
    h, w, _ = pixels.shape
    edge = np.median(_edges(pixels), axis=0).round().astype(np.uint8)
    if h / w < ratio:  # too wide: add rows
        extra = int(round(w * ratio)) - h
        pad = ((extra // 2, extra - extra // 2), (0, 0))
    else:
        extra = int(round(h / ratio)) - w
        pad = ((0, 0), (extra // 2, extra - extra // 2))
    if extra <= 0:
        return pixels
    return np.stack([np.pad(pixels[..., i], pad, constant_values=edge[i]) for i in range(pixels.shape[-1])], -1)


# ----- encoding and assigning -----
def assign(model: Model, images: np.ndarray, table: PointTable) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode (M, C, H, W) new images and give each the cluster that :func:`.points.point_table`
    would give it in ``table``'s split.

    Returns (M, d) latents and (M,) clusters (None for a model without a quantizer); a sample
    of a model with L codebooks whose tuple of codewords no point of the split has gets -1.
    """
    images = np.asarray(images, dtype=np.float32)
    want = tuple(model.config.in_shape)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ConfigError(f"this model takes images of shape {want}, got {tuple(images.shape[1:])}")
    z = model.encode_array(images)
    if not model.has_quantizer or table.clusters is None:
        return z, None
    with torch.no_grad():
        idx = model.quantize(torch.as_tensor(z, device=model.device)).indices.cpu().numpy()
    if model.code_map_shape is not None:  # a map of codes: the most used codeword, as the table does
        k = len(table.codes)
        return z, np.array([np.bincount(r.ravel(), minlength=k).argmax() for r in idx], dtype=np.int64)
    if idx.ndim == 1:
        return z, idx.astype(np.int64)
    codes = np.asarray(table.codes)  # L codebooks: the split's tuple, if it has it
    match = (codes[None, :, :] == idx[:, None, :]).all(-1)  # (M, K)
    return z, np.where(match.any(1), match.argmax(1), -1).astype(np.int64)


# ----- nearest neighbours in latent space -----
class Neighbours(NamedTuple):
    """The ``k`` nearest latents of each query.

    rows : (M, k) rows of the table, nearest first (ties: the lower row first).
    distances : (M, k) their Euclidean distances in latent space.
    """

    rows: np.ndarray
    distances: np.ndarray


#: Latents converted to float64 at once by :func:`nearest` (32 MB of 64-dimensional latents).
ROWS_A_BLOCK = 65_536


def nearest(latents: np.ndarray, queries: np.ndarray, k: int = K_NEIGHBOURS,
            exclude: np.ndarray | None = None, chunk: int = 256) -> Neighbours:
    """The ``k`` nearest of (N, d) ``latents`` to each of (M, d) ``queries``, by Euclidean distance.

    ``exclude`` (M,), if given, is a row to leave out for each query (its own row, for the
    neighbours of a point of the split; -1: none). Exact, in float64, ties to the lower row; by
    blocks of at most ``chunk`` queries (fewer for a large N, so that a block's distances stay
    within 256 MB) and of :data:`ROWS_A_BLOCK` latents (a million latents are never copied at once).
    """
    z = np.asarray(latents)
    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    if z.ndim != 2 or q.shape[1:] != z.shape[1:]:
        raise ConfigError(f"queries of shape {q.shape} do not fit latents of shape {z.shape}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    n = len(z)
    k = min(k, n - (exclude is not None))
    chunk = max(1, min(chunk, 2**25 // max(n, 1)))
    rows, dists = np.empty((len(q), k), np.int64), np.empty((len(q), k))
    for start in range(0, len(q), chunk):
        part = q[start:start + chunk]
        # (m, N) squared distances: |q|^2 - 2 q.z + |z|^2, clipped at 0 against rounding
        d2 = np.empty((len(part), n))
        for b in range(0, n, ROWS_A_BLOCK):
            zb = np.asarray(z[b:b + ROWS_A_BLOCK], dtype=np.float64)
            d2[:, b:b + len(zb)] = (part ** 2).sum(1)[:, None] - 2.0 * part @ zb.T + (zb ** 2).sum(1)[None]
        np.maximum(d2, 0.0, out=d2)
        if exclude is not None:
            own = np.asarray(exclude, dtype=np.int64)[start:start + chunk]
            valid = own >= 0
            d2[np.flatnonzero(valid), own[valid]] = np.inf
        # the k smallest: every row within the k-th distance (ties included), then sorted by distance and row
        kth = np.partition(d2, k - 1, axis=1)[:, k - 1] if k < n else np.full(len(part), np.inf)
        for i in range(len(part)):
            candidates = np.flatnonzero(d2[i] <= kth[i])
            order = candidates[np.lexsort((candidates, d2[i, candidates]))][:k]
            rows[start + i], dists[start + i] = order, np.sqrt(d2[i, order])
    return Neighbours(rows, dists)


# ----- the map: placing and going back -----
def place_among_neighbours(queries: np.ndarray, latents: np.ndarray, map_xy: np.ndarray,
                           k: int = 10) -> np.ndarray:
    """(M, 2): each query at the mean map position of its ``k`` nearest latents, weighted by
    the inverse of their latent distance. How openTSNE starts a point it places; for a map
    whose fitted model is not in memory."""
    near = nearest(latents, queries, k)
    w = 1.0 / np.maximum(near.distances, 1e-12)
    w /= w.sum(1, keepdims=True)
    return (w[..., None] * np.asarray(map_xy, dtype=np.float64)[near.rows]).sum(1).astype(np.float32)


@dataclass
class MapSpot:
    """The latent behind one spot of the map.

    latent : (d,) the latent.
    how : how it was obtained, in words, for the panel.
    rows : rows of the map points it mixes (t-SNE), else empty.
    weights : (len(rows),) their convex weights.
    """

    latent: np.ndarray
    how: str
    rows: np.ndarray
    weights: np.ndarray


@dataclass
class MapModel:
    """What a shown map can do beyond drawing: place new latents on it and go back from a spot.

    Attributes
    ----------
    method : the method of the map ("tsne", "umap", "pca").
    map_xy : (N, 2) its points.
    latents : (N, d) their latents.
    projector : the fitted Projector whose ``embedding_`` is ``map_xy``, or None.
    """

    method: str
    map_xy: np.ndarray
    latents: np.ndarray
    projector: Projector | None = None

    def place(self, queries: np.ndarray) -> tuple[np.ndarray, str]:
        """(M, 2) positions of (M, d) latents on the map, and how they were found."""
        name = METHODS[self.method]
        if self.projector is not None:
            return self.projector.transform(queries), f"placed by {name}'s transform"
        return (place_among_neighbours(queries, self.latents, self.map_xy),
                "placed at the weighted mean position of its 10 nearest latents")

    def spot(self, xy: tuple[float, float], k: int = K_NEIGHBOURS) -> MapSpot:
        """The latent behind the map position ``xy``: PCA's exact inverse, UMAP's inverse_transform,
        and for t-SNE (or a map without its projector) a convex mix of the ``k`` nearest map points."""
        at = np.asarray(xy, dtype=np.float32).reshape(1, 2)
        empty = np.zeros(0, np.int64)
        if self.projector is not None and self.method in ("pca", "umap"):
            how = ("PCA's exact inverse: the point of the latent plane of the two principal directions"
                   if self.method == "pca" else "UMAP's inverse_transform")
            return MapSpot(self.projector.inverse(at)[0], how, empty, np.zeros(0))
        mix = interpolate(at, self.map_xy, self.latents, k)
        return MapSpot(mix.latents[0], f"a mix of the latents of the {k} nearest map points, weighted by the "
                                       "inverse of their squared distance on the map (weights >= 0, sum 1)",
                       mix.rows[0], mix.weights[0])


@dataclass
class Placed:
    """One image as the map's panel shows it: a new image placed on the map, or a point of the split.

    image : (C, H, W) the image in the data set's format.
    latent : (d,) its latent.
    cluster : its cluster (-1: none, or a tuple of codewords the split never uses).
    label : its cluster's label, the quantized label (-1: none).
    reconstruction : (C, H, W) its latent decoded; None for a model without a decoder.
    neighbours : its nearest latents in the split, nearest first (a point of the split: itself left out).
    xy : (2,) its place on the map (None for a point already on it), and ``how`` it was placed.
    """

    image: np.ndarray
    latent: np.ndarray
    cluster: int
    label: int
    reconstruction: np.ndarray | None
    neighbours: Neighbours
    xy: np.ndarray | None = None
    how: str = ""


def _label_of(table: PointTable, cluster: int) -> int:
    return int(table.cluster_labels[cluster]) if table.cluster_labels is not None and cluster >= 0 else -1


def place_images(model: Model, images: np.ndarray, table: PointTable, where: MapModel | None = None,
                 k: int = K_NEIGHBOURS) -> list[Placed]:
    """(M, C, H, W) new images encoded, assigned, decoded, given their ``k`` nearest latents in
    ``table`` and, with ``where``, placed on its map."""
    z, clusters = assign(model, images, table)
    recon = model.decode_array(z) if model.has_decoder else [None] * len(z)
    near = nearest(table.latents, z, k)
    xy, how = where.place(z) if where is not None else (None, "")
    return [Placed(np.asarray(images[i], np.float32), z[i], -1 if clusters is None else int(clusters[i]),
                   -1 if clusters is None else _label_of(table, int(clusters[i])), recon[i],
                   Neighbours(near.rows[i], near.distances[i]), None if xy is None else xy[i], how)
            for i in range(len(z))]


def describe_point(model: Model, table: PointTable, images: np.ndarray, row: int, k: int = K_NEIGHBOURS) -> Placed:
    """A point of the split as a panel shows it: its image, reconstruction, cluster, and its ``k``
    nearest latents in the split, itself left out ("neighbours of this point")."""
    row = int(row)
    if not 0 <= row < len(table.latents):
        raise ConfigError(f"row {row} is not in this split of {len(table.latents)} points")
    near = nearest(table.latents, table.latents[row:row + 1], k, exclude=np.array([row]))
    cluster = int(table.clusters[row]) if table.clusters is not None else -1
    return Placed(np.asarray(images[row], np.float32), table.latents[row], cluster, _label_of(table, cluster),
                  model.decode_array(table.latents[row:row + 1])[0] if model.has_decoder else None,
                  Neighbours(near.rows[0], near.distances[0]))


__all__ = ["Placed", "place_images", "describe_point", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "K_NEIGHBOURS",
           "border_level", "to_dataset_format", "assign", "Neighbours", "nearest", "place_among_neighbours", "MapSpot",
           "MapModel"]
