"""Streamlit's caches of what every page shows: checkpoints, data, point tables, decoded centroids
and mixtures; and :class:`View`, the one key of a checkpoint's split.

A :class:`View` holds the checkpoint's path and the mtime of its ``meta.json`` (``stamp``), so a
re-saved checkpoint is reloaded. Decoding runs on one torch thread (set in ``vqviz_app/main.py``):
on a busy machine, more threads make small decodes many times slower. (What only the map or only
the cluster panel caches is in :mod:`vqviz_app.maps` and :mod:`vqviz_app.panel`.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import streamlit as st

from vqviz import analysis, checkpoints, data
from vqviz.images import grid, png_bytes


@dataclass(frozen=True)
class View:
    """One split of a data set as one checkpoint sees it: the key of every cache of it (hashable,
    and passed to ``st.cache_*`` functions as it is). ``stamp``: the mtime of the checkpoint's
    ``meta.json`` (:attr:`vqviz_app.catalog.Entry.stamp`)."""

    path: str
    stamp: int
    dataset: str
    split: str

    def on(self, split: str) -> View:
        """The same checkpoint and data set, another split."""
        return replace(self, split=split)


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
def point_table(view: View) -> analysis.PointTable:
    ds = dataset(view.dataset, view.split)
    return analysis.point_table(checkpoint(view.path, view.stamp).model, ds.images, ds.labels, ds.n_classes)


@st.cache_resource(max_entries=8, show_spinner="Decoding the centroids...")
def centroids(view: View) -> np.ndarray | None:
    """(K, C, H, W) every cluster's decoded codeword; None for a model without a decoder."""
    return analysis.centroid_images(checkpoint(view.path, view.stamp).model, point_table(view))


def scale_for(height: int, target: int) -> int:
    """The whole enlargement that brings an image ``height`` pixels high near ``target``."""
    return max(1, target // max(height, 1))


@st.cache_resource(max_entries=16, show_spinner=False)
def slider_grid(view: View, rows: tuple[int, ...]) -> np.ndarray:
    """(101, 101, H, W, C) uint8: every mixture the mixer's sliders can reach, decoded once per triplet."""
    from vqviz.images import to_uint8

    table = point_table(view)
    images = analysis.slider_grid(checkpoint(view.path, view.stamp).model, table.latents[list(rows)])
    s = images.shape
    return to_uint8(images.reshape(-1, *s[2:])).reshape(s[0], s[1], s[3], s[4], s[2])


def bench_results(dataset_name: str):
    """The published ``bench repro`` results of a data set (:func:`vqviz_app.published.read`: a
    :class:`~vqviz_app.published.Results`, or None), read again only when the file changes."""
    from vqviz_app import published as results

    path = results.file(dataset_name)
    try:
        stamp = path.stat().st_mtime_ns if path else None
    except OSError:
        return None
    return None if stamp is None else _bench_results(dataset_name, str(path.parent), stamp)


@st.cache_data(max_entries=8, show_spinner=False)
def _bench_results(dataset_name: str, folder: str, stamp: int):
    from vqviz_app import published as results

    return results.read(dataset_name, folder)


def clear() -> None:
    """Forget every cached checkpoint, data set and picture (after a download, in tests)."""
    st.cache_data.clear()
    st.cache_resource.clear()


@st.cache_resource(max_entries=6, show_spinner=False)
def border_level(name: str, split: str) -> float:
    """The mean of the split's outermost pixels: whether its images are light on dark or dark on light."""
    return analysis.placement.border_level(dataset(name, split).images[:2000])


def tiles_png(images: np.ndarray, target: int = 48, ncol: int | None = None) -> bytes:
    """(N, C, H, W) images in [0, 1] as one PNG, each about ``target`` pixels high."""
    return png_bytes(grid(images, ncol=ncol or len(images), pad=1, scale=scale_for(images.shape[-2], target)))
