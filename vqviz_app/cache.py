"""Streamlit's caches of what the pages show: checkpoints, data, point tables, decoded images.

Keys hold the checkpoint's path and the mtime of its ``meta.json`` (``stamp``), so a
re-saved checkpoint is reloaded. Decoding runs on one torch thread (set in ``app.py``):
on a busy machine, more threads make small decodes many times slower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vqviz import analysis, checkpoints, data
from vqviz.images import grid, png_bytes


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint...")
def checkpoint(path: str, stamp: int) -> checkpoints.Checkpoint:
    return checkpoints.load(path)


@st.cache_resource(max_entries=6, show_spinner="Loading the data...")
def dataset(name: str, split: str) -> data.Dataset:
    """One split of a data set, never downloaded here; "all" joins both."""
    if split != "all":
        return data.load(name, split, download=False)
    parts = [data.load(name, s, download=False) for s in data.SPLITS]
    images, labels = np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    images.flags.writeable = labels.flags.writeable = False
    return data.Dataset(parts[0].name, "all", images, labels, parts[0].classes)


@st.cache_resource(max_entries=6, show_spinner="Encoding the split...")
def point_table(path: str, stamp: int, name: str, split: str) -> analysis.PointTable:
    ds = dataset(name, split)
    return analysis.point_table(checkpoint(path, stamp).model, ds.images, ds.labels, ds.n_classes)


@st.cache_resource(max_entries=8, show_spinner="Decoding the centroids...")
def centroids(path: str, stamp: int, name: str, split: str) -> np.ndarray:
    """(K, C, H, W) every cluster's decoded codeword."""
    return analysis.centroid_images(checkpoint(path, stamp).model, point_table(path, stamp, name, split))


def scale_for(height: int, target: int) -> int:
    """The whole enlargement that brings an image ``height`` pixels high near ``target``."""
    return max(1, target // max(height, 1))


@st.cache_resource(max_entries=512, show_spinner=False)
def cluster_panel(path: str, stamp: int, name: str, split: str, cluster: int):
    """One cluster's panel, its pictures as one PNG (the decoded centroid, then a grid of members)
    and its label histogram.

    Computed once per cluster and split, so that a click is a lookup and its images arrive
    as one picture with the panel, not one by one after it.
    """
    from .figures import histogram_figure

    ds = dataset(name, split)
    table = point_table(path, stamp, name, split)
    view = analysis.cluster_view(checkpoint(path, stamp).model, table, ds.images, cluster, ds.n_classes,
                                 centroid=centroids(path, stamp, name, split)[cluster])
    return view, panel_png(view), histogram_figure(view.histogram, ds.classes, view.label)


def panel_png(view: analysis.GroupView) -> bytes:
    """The centroid (about 112 pixels) beside a 6-wide grid of the members (about 48 pixels each)."""
    from vqviz.images import side_by_side

    h = view.centroid.shape[-2]
    pictures = [grid(view.centroid[None], pad=0, scale=scale_for(h, 112))]
    if len(view.members):
        pictures.append(grid(view.members, ncol=6, pad=1, scale=scale_for(h, 48)))
    return png_bytes(side_by_side(pictures, gap=16))


@st.cache_resource(max_entries=16, show_spinner=False)
def slider_grid(path: str, stamp: int, rows: tuple[int, ...], name: str, split: str) -> np.ndarray:
    """(101, 101, H, W, C) uint8: every mixture the mixer's sliders can reach, decoded once per triplet."""
    from vqviz.images import to_uint8

    table = point_table(path, stamp, name, split)
    images = analysis.slider_grid(checkpoint(path, stamp).model, table.latents[list(rows)])
    s = images.shape
    return to_uint8(images.reshape(-1, *s[2:])).reshape(s[0], s[1], s[3], s[4], s[2])


def bench_results(dataset_name: str) -> dict | None:
    """The published ``bench repro`` results of a data set, read again only when the file changes."""
    from vqviz.bench import repro

    path = Path(repro.RESULTS) / f"{dataset_name}.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _bench_results(dataset_name, str(path.parent), stamp)


@st.cache_data(max_entries=8, show_spinner=False)
def _bench_results(dataset_name: str, folder: str, stamp: int) -> dict | None:
    from vqviz.bench import repro

    return repro.read_results(dataset_name, folder)


def clear() -> None:
    """Forget every cached checkpoint, data set and picture (after a download, in tests)."""
    st.cache_data.clear()
    st.cache_resource.clear()


@st.cache_resource(max_entries=16, show_spinner=False)
def map_figure(key: tuple, _xy: np.ndarray, _table: analysis.PointTable, _classes: tuple, colour: str,
               _background: np.ndarray | None = None):
    """The map page's figure and the rows of each of its traces, built once per map and colouring.

    ``key`` names the map (checkpoint, stamp, data set, split, method, parameters, placed or
    not); the figure never changes with the selection, so a click re-sends no map. Up to
    :data:`HOVER_MAX` points, hovering a point shows its image (as text).
    """
    from . import figures

    hover = hover_thumbnails(key[2], key[3]) if len(_xy) <= HOVER_MAX else None
    return figures.map_figure(_xy, _table, _classes, colour, background=_background, spots=SPOTS, hover=hover)


#: Maps of at most this many points show each point's image when it is hovered; larger ones its label only.
HOVER_MAX = 2000


@st.cache_resource(max_entries=6, show_spinner=False)
def hover_thumbnails(name: str, split: str) -> np.ndarray:
    """(N,) every image of the split as a text thumbnail for the map's hover label."""
    from vqviz.images import shade_text

    return np.array(shade_text(dataset(name, split).images, ink_bright=border_level(name, split) < 0.5),
                    dtype=object)


#: Points per side of the map's invisible grid that catches clicks on empty spots (see figures.map_figure).
SPOTS = 48


@st.cache_resource(max_entries=4, show_spinner="Fitting the map's model, to place points on it...")
def projector(path: str, stamp: int, name: str, split: str, method: str, params: tuple):
    """The split's map as a fitted :class:`vqviz.projection.Projector`, kept in memory: the same seed and
    settings as the cached map, so its ``embedding_`` is that map (for a split of one thread's size)."""
    from vqviz import projection

    table = point_table(path, stamp, name, split)
    return projection.Projector(method, **dict(params)).fit(table.latents, table.labels)


@st.cache_resource(max_entries=6, show_spinner=False)
def border_level(name: str, split: str) -> float:
    """The mean of the split's outermost pixels: whether its images are light on dark or dark on light."""
    return analysis.placement.border_level(dataset(name, split).images[:2000])


def tiles_png(images: np.ndarray, target: int = 48, ncol: int | None = None) -> bytes:
    """(N, C, H, W) images in [0, 1] as one PNG, each about ``target`` pixels high."""
    return png_bytes(grid(images, ncol=ncol or len(images), pad=1, scale=scale_for(images.shape[-2], target)))


@st.cache_resource(max_entries=256, show_spinner=False)
def sample_view(path: str, stamp: int, name: str, split: str, row: int):
    """A point of the split as its panel shows it (decoded, its neighbours): once per point."""
    table = point_table(path, stamp, name, split)
    return analysis.placement.describe_point(checkpoint(path, stamp).model, table, dataset(name, split).images, row)


@st.cache_resource(max_entries=16, show_spinner="Placing your images on the map...")
def placed_images(map_key: tuple, digests: tuple, _where, _images: np.ndarray):
    """The user's images (``digests`` name them) encoded, assigned and placed on the map ``map_key``."""
    path, stamp, name, split = map_key[:4]
    table = point_table(path, stamp, name, split)
    return analysis.placement.place_images(checkpoint(path, stamp).model, _images, table, _where)
