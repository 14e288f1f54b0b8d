"""The panels beside the latent map, in one place: the cluster panel (a cluster's, or a selection's,
decoded centroid, members, purity and label histogram), the strip of the clusters a selection falls in,
a clicked sample with its neighbours, the user's images placed on the map, and the decoded latent of
an empty spot. Each is gathered (and cached), pictured and drawn here; the computing is in
:mod:`vqviz.analysis` (its ``panels`` and ``placement``), the histogram's figure in
:func:`vqviz_app.figures.histogram_figure`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from vqviz import analysis, projection
from vqviz.analysis import placement
from vqviz.images import grid, png_bytes, side_by_side

from . import cache, figures
from .cache import View
from .state import Loaded
from .widgets import NO_DECODER, plural

#: Full cluster panels shown for a selection; every other cluster is in the strip above them.
MAX_PANELS = 3
#: Members drawn in a cluster panel, at random (seeded), and how many to a row.
MEMBERS, MEMBERS_PER_ROW = 24, 6


def label_of(classes: tuple[str, ...], label: int) -> str:
    return classes[label] if 0 <= label < len(classes) else "none"


# ----- the cluster panel -----
def show_selected(loaded: Loaded, rows: np.ndarray) -> None:
    """The panels of a selection: for a model with clusters, the strip of every cluster it touches and
    the full panels of the first :data:`MAX_PANELS`; for one without, one panel of the selected
    points (of two or more)."""
    if not loaded.table.has_clusters:
        if len(rows) > 1:
            group = analysis.selection_view(loaded.model, loaded.table, loaded.data.images, rows, len(loaded.classes),
                                            n_members=MEMBERS)
            show_group(group, _picture(group), loaded.classes)
        return
    for k in show_summary(loaded, rows)[:MAX_PANELS]:
        with st.container(border=True):
            group, picture, histogram = _cluster_panel(loaded.view, k)
            show_group(group, picture, loaded.classes, histogram)


@st.cache_resource(max_entries=512, show_spinner=False)
def _cluster_panel(view: View, cluster: int):
    """One cluster's panel: its :class:`~vqviz.analysis.GroupView`, its pictures as one PNG (the decoded
    centroid, then a grid of members) and its label histogram.

    Computed once per cluster and split, so that a click is a lookup and its images arrive
    as one picture with the panel, not one by one after it.
    """
    ds = cache.dataset(view.dataset, view.split)
    centres = cache.centroids(view)  # None: the model has no decoder
    group = analysis.cluster_view(cache.checkpoint(view.path, view.stamp).model, cache.point_table(view), ds.images,
                                  cluster, ds.n_classes, n_members=MEMBERS,
                                  centroid=None if centres is None else centres[cluster])
    return group, _picture(group), figures.histogram_figure(group.histogram, ds.classes, group.label)


def _picture(group: analysis.GroupView) -> bytes:
    """The centroid (about 112 pixels; none without a decoder) beside a grid of the members (about 48 pixels
    each)."""
    h = group.members.shape[-2]
    pictures = [] if group.centroid is None else [grid(group.centroid[None], pad=0, scale=cache.scale_for(h, 112))]
    if len(group.members):
        pictures.append(grid(group.members, ncol=MEMBERS_PER_ROW, pad=1, scale=cache.scale_for(h, 48)))
    return png_bytes(side_by_side(pictures, gap=16))


def show_group(group: analysis.GroupView, picture: bytes, classes: tuple[str, ...], histogram=None) -> None:
    """The panel of one cluster or selection: one picture (centroid, then members), purity and label
    histogram (``histogram``: its figure, made beforehand)."""
    st.markdown(f"**{group.title}** · label **{label_of(classes, group.label)}** · "
                f"{plural(len(group.rows), 'member')} in this split")
    shown = "its only member" if len(group.rows) == 1 else f"{len(group.members)} of its members"
    centroid = "decoded centroid · "
    if group.centroid is None:
        centroid = f"{NO_DECODER.lower()}, so no decoded centroid · "
    st.image(picture, caption=f"{centroid}{shown}")
    left, right = st.columns([2, 5], vertical_alignment="center")
    left.metric("Purity", "–" if np.isnan(group.purity) else f"{group.purity:.0%}")
    if histogram is None:
        histogram = figures.histogram_figure(group.histogram, classes, group.label)
    right.plotly_chart(histogram, width="stretch", config=figures.PLAIN)


def show_summary(loaded: Loaded, rows: np.ndarray) -> list[int]:
    """A strip of every cluster the selection touches (decoded centroid, selected members, size,
    purity), most selected first; returns the clusters in that order."""
    shares = analysis.cluster_summary(loaded.table, rows)
    if len(shares) > 1:
        centres = cache.centroids(loaded.view)
        shown = "decoded centroid"
        if centres is None:  # no decoder: each cluster by its most typical member
            centres, shown = analysis.typical_images(loaded.table, loaded.data.images), "most typical member"
        st.caption(f"The selection falls in **{len(shares)} clusters**, most selected members first; the first "
                   f"{min(MAX_PANELS, len(shares))} in full below. Under each {shown}: cluster, its label, "
                   "selected of its members, purity.")
        st.image([cache.tiles_png(centres[s.cluster][None], 48) for s in shares], width=52,
                 caption=[f"{s.cluster}·{label_of(loaded.classes, s.label)} {s.picked}/{s.size} "
                          f"{'–' if np.isnan(s.purity) else f'{s.purity:.0%}'}" for s in shares])
    return [s.cluster for s in shares]


# ----- a sample, and the user's images placed on the map -----
def show_sample(loaded: Loaded, row: int) -> None:
    """The clicked sample itself, above its cluster's panel: image, decoded, labels, neighbours."""
    p = _sample(loaded.view, int(row))
    classes = loaded.classes
    truth = label_of(classes, int(loaded.table.labels[row]))
    cluster = f" · cluster **{p.cluster}** (label **{label_of(classes, p.label)}**)" if p.cluster >= 0 else ""
    with st.container(border=True):
        st.markdown(f"**Sample {row}** · true label **{truth}**{cluster}")
        _sample_row(loaded, p, "the sample")


@st.cache_resource(max_entries=256, show_spinner=False)
def _sample(view: View, row: int) -> placement.Placed:
    """A point of the split as its panel shows it (decoded, its neighbours): once per point."""
    return placement.describe_point(cache.checkpoint(view.path, view.stamp).model, cache.point_table(view),
                                    cache.dataset(view.dataset, view.split).images, row)


def show_placed(loaded: Loaded, placed: list[placement.Placed], names: list[str]) -> None:
    """Each placed image: as converted, decoded, its quantized label and cluster, and its nearest
    neighbours in latent space."""
    for i, (p, name) in enumerate(zip(placed, names)):
        with st.container(border=True):
            cluster = f" · cluster **{p.cluster}**" if p.cluster >= 0 else ""
            st.markdown(f"**★{i + 1} {name}** · quantized label **{label_of(loaded.classes, p.label)}**{cluster}")
            _sample_row(loaded, p, "your image")
            st.caption(f"{p.how[0].upper()}{p.how[1:]}." if p.how else "")


def _sample_row(loaded: Loaded, p: placement.Placed, what: str) -> None:
    """One picture, so that the panel's images arrive together: the image and its decoding (about 64
    pixels; the image alone without a decoder), then its nearest neighbours (about 40), their labels and
    distances in the caption."""
    rows = p.neighbours.rows
    h = p.image.shape[-2]
    drawn = [p.image] if p.reconstruction is None else [p.image, p.reconstruction]
    pictures = [grid(np.stack(drawn), pad=1, scale=cache.scale_for(h, 64))]
    if len(rows):
        pictures.append(grid(loaded.data.images[rows], pad=1, scale=cache.scale_for(h, 40)))
    st.image(png_bytes(side_by_side(pictures, gap=24)))
    near = ", ".join(f"{label_of(loaded.classes, int(loaded.table.labels[r]))} ({d:.2f})"
                     for r, d in zip(rows, p.neighbours.distances))
    decoded = ", decoded" if p.reconstruction is not None else f" ({NO_DECODER.lower()})"
    st.caption(f"{what.capitalize()}{decoded}; then its {len(rows)} nearest neighbours in latent space, "
               f"nearest first (true label, distance): {near}")


# ----- an empty spot of the map -----
def show_spot(loaded: Loaded, where: placement.MapModel, at: tuple[float, float]) -> None:
    """The latent behind a clicked empty spot, decoded, with how it was obtained."""
    spot = where.spot(at)
    image = loaded.model.decode_array(spot.latent[None])[0]
    st.subheader("A decoded spot of the map")
    with st.container(border=True):
        cols = st.columns([1, 3])
        cols[0].image(cache.tiles_png(image[None], 112), caption="decoded spot")
        cols[1].markdown(f"At ({at[0]:.2f}, {at[1]:.2f}) on the {projection.METHODS[where.method]} map: "
                         f"{spot.how}.")
        if len(spot.rows):
            images = loaded.data.images
            cols[1].image([cache.tiles_png(images[r][None], 40) for r in spot.rows],
                          caption=[f"{w:.0%}" for w in spot.weights])
            cols[1].caption("the map points mixed, with their weights")
    st.caption("Click another empty spot to walk through the styles, or a point to open its cluster.")
