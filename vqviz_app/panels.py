"""The latent map's panels: a clicked sample and its neighbours, a selection's clusters (a strip of
all of them, full panels for the first few), the user's own images placed on the map, and the
decoded latent of an empty spot. The computing is in :mod:`vqviz.analysis.placement`."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from vqviz import analysis, projection
from vqviz.analysis import placement
from vqviz.errors import DataError
from vqviz.images import grid, png_bytes, side_by_side

from . import cache, figures
from .state import Loaded

#: Full cluster panels shown for a selection; every other cluster is in the strip above them.
MAX_PANELS = 3
#: A split's t-SNE or UMAP map is fitted again in memory, to place new images by the method's
#: transform, up to this many points (digits' 360 test points: a few seconds); past it, new images
#: are placed among their nearest latents instead of waiting minutes.
REFIT_MAX = 1000
#: Images placed at once.
MAX_OWN = 12
#: The file types the uploader offers (anything else Pillow reads is refused with a message).
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]


def label_of(classes: tuple[str, ...], label: int) -> str:
    return classes[label] if 0 <= label < len(classes) else "none"


# ----- selections -----
def keep_map_selection(chart: str, traces: list, fig, state_key: str):
    """An ``on_select`` callback that stores a map's selection in ``state_key`` as rows (resolved now,
    with the chart's ``traces``) and shapes, so that it outlives the chart; or, for a click on an empty
    spot of the map (a point of the figure's invisible grid), the spot's position as ``spot``."""

    def callback() -> None:
        selection = st.session_state.get(chart, {}).get("selection", {})
        spot = figures.spot_of(fig, selection)
        if spot is not None:
            st.session_state[state_key] = {"rows": [], "spot": list(spot)}
            return
        # the boxes and lassos too: on a map that draws a sample, they pick the points it leaves out
        st.session_state[state_key] = {"rows": analysis.selected_rows(selection, traces).tolist(),
                                       "box": list(selection.get("box", [])),
                                       "lasso": list(selection.get("lasso", []))}

    return callback


# ----- the map's way in and out -----
def map_model(view: Loaded, method: str, params: dict, xy: np.ndarray, train: projection.Projector | None,
              fitted: bool) -> placement.MapModel:
    """The shown map as a :class:`~vqviz.analysis.placement.MapModel`. ``train``: the fitted train map the
    points are placed on, if they are. ``fitted``: also fit the map's projector in memory when the map is
    small enough (:data:`REFIT_MAX`), to place new images by its transform; PCA's is always fitted (it
    is instant), so that a spot goes back by its exact inverse."""
    entry, name, frozen = view.entry, view.data.name, tuple(sorted(params.items()))
    if train is not None:  # the train map is in memory already: the test points were placed on it
        latents = cache.point_table(entry.path, entry.stamp, name, "train").latents
        return placement.MapModel(method, train.embedding_, latents, train)
    fit = None
    if method == "pca" or (fitted and len(xy) <= REFIT_MAX):
        fit = cache.projector(entry.path, entry.stamp, name, view.data.split, method,
                              frozen if method != "pca" else ())
        if fit.embedding_.shape != xy.shape or not np.allclose(fit.embedding_, xy, atol=1e-3):
            fit = None  # not the map on screen (threads round differently): place among neighbours
    return placement.MapModel(method, xy, view.table.latents, fit)


# ----- the user's own images -----
def own_images(view: Loaded, files) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """The uploaded ``files`` converted to the data set's format: their names, (M, C, H, W) images and
    a digest of each file. A file that is not a usable image gets a message naming it; the rest go on."""
    names, images, digests = [], [], []
    if len(files) > MAX_OWN:
        st.warning(f"{len(files)} images uploaded; the first {MAX_OWN} are placed.")
    level = cache.border_level(view.data.name, view.data.split)
    for f in files[:MAX_OWN]:
        raw = f.getvalue()
        try:
            images.append(placement.to_dataset_format(raw, view.data.shape, f.name, background=level))
        except DataError as e:
            st.error(str(e), icon=":material/broken_image:")
            continue
        names.append(f.name)
        digests.append(hashlib.sha256(raw).hexdigest()[:16])
    shape = (0, *view.data.shape)
    return names, np.stack(images) if images else np.zeros(shape, np.float32), tuple(digests)


def show_placed(view: Loaded, placed: list[placement.Placed], names: list[str]) -> None:
    """Each placed image: as converted, decoded, its quantized label and cluster, and its nearest
    neighbours in latent space."""
    classes = view.classes
    for i, (p, name) in enumerate(zip(placed, names)):
        with st.container(border=True):
            cluster = f" · cluster **{p.cluster}**" if p.cluster >= 0 else ""
            st.markdown(f"**★{i + 1} {name}** · quantized label **{label_of(classes, p.label)}**{cluster}")
            _sample_row(view, p, "your image")
            st.caption(f"{p.how[0].upper()}{p.how[1:]}." if p.how else "")


def _sample_row(view: Loaded, p: placement.Placed, what: str) -> None:
    """One picture, so that the panel's images arrive together: the image and its decoding (about 64
    pixels), then its nearest neighbours (about 40), their labels and distances in the caption."""
    classes, rows = view.classes, p.neighbours.rows
    h = p.image.shape[-2]
    pictures = [grid(np.stack([p.image, p.reconstruction]), pad=1, scale=cache.scale_for(h, 64))]
    if len(rows):
        pictures.append(grid(view.data.images[rows], pad=1, scale=cache.scale_for(h, 40)))
    st.image(png_bytes(side_by_side(pictures, gap=24)))
    near = ", ".join(f"{label_of(classes, int(view.table.labels[r]))} ({d:.2f})"
                     for r, d in zip(rows, p.neighbours.distances))
    st.caption(f"{what.capitalize()}, decoded; then its {len(rows)} nearest neighbours in latent space, "
               f"nearest first (true label, distance): {near}")


def show_sample(view: Loaded, row: int) -> None:
    """The clicked sample itself, above its cluster's panel: image, decoded, labels, neighbours."""
    p = cache.sample_view(view.entry.path, view.entry.stamp, view.data.name, view.data.split, int(row))
    truth = label_of(view.classes, int(view.table.labels[row]))
    cluster = f" · cluster **{p.cluster}** (label **{label_of(view.classes, p.label)}**)" if p.cluster >= 0 else ""
    with st.container(border=True):
        st.markdown(f"**Sample {row}** · true label **{truth}**{cluster}")
        _sample_row(view, p, "the sample")


# ----- a selection over many clusters -----
def show_summary(view: Loaded, rows: np.ndarray) -> list[int]:
    """A strip of every cluster the selection touches (decoded centroid, selected members, size,
    purity), most selected first; returns the clusters in that order."""
    shares = analysis.cluster_summary(view.table, rows)
    if len(shares) > 1:
        entry = view.entry
        centres = cache.centroids(entry.path, entry.stamp, view.data.name, view.data.split)
        st.caption(f"The selection falls in **{len(shares)} clusters**, most selected members first; the first "
                   f"{min(MAX_PANELS, len(shares))} in full below. Under each decoded centroid: cluster, its label, "
                   "selected of its members, purity.")
        st.image([cache.tiles_png(centres[s.cluster][None], 48) for s in shares], width=52,
                 caption=[f"{s.cluster}·{label_of(view.classes, s.label)} {s.picked}/{s.size} "
                          f"{'–' if np.isnan(s.purity) else f'{s.purity:.0%}'}" for s in shares])
    return [s.cluster for s in shares]


# ----- an empty spot of the map -----
def show_spot(view: Loaded, where: placement.MapModel, at: tuple[float, float]) -> None:
    """The latent behind a clicked empty spot, decoded, with how it was obtained."""
    spot = where.spot(at)
    image = view.model.decode_array(spot.latent[None])[0]
    st.subheader("A decoded spot of the map")
    with st.container(border=True):
        cols = st.columns([1, 3])
        cols[0].image(cache.tiles_png(image[None], 112), caption="decoded spot")
        cols[1].markdown(f"At ({at[0]:.2f}, {at[1]:.2f}) on the {projection.METHODS[where.method]} map: "
                         f"{spot.how}.")
        if len(spot.rows):
            images = view.data.images
            cols[1].image([cache.tiles_png(images[r][None], 40) for r in spot.rows],
                          caption=[f"{w:.0%}" for w in spot.weights])
            cols[1].caption("the map points mixed, with their weights")
    st.caption("Click another empty spot to walk through the styles, or a point to open its cluster.")
