"""Latent map: a 2-D map of the chosen split's latents; a click or a lasso opens the clusters, a click on
an empty spot decodes the latent there, and the user's own images are placed on it."""

import zlib

import numpy as np
import streamlit as st

from vqviz import analysis
from vqviz.analysis import placement, selection
from vqviz.projection import DEFAULTS, METHODS

from vqviz_app import cache, figures, panels, widgets
from vqviz_app.state import Context, Loaded


def render(ctx: Context) -> None:
    view = widgets.loaded(ctx)
    table = view.table
    st.title("Latent map")
    which = "train and test" if ctx.split == "all" else ctx.split
    st.caption(f"The {len(table.labels):,} {which} images of {ctx.dataset}, encoded by "
               f"**{ctx.entry.label}** and laid out in 2-D. Click a point, or draw a lasso or a box, "
               "to open its cluster.")

    bar = st.columns([2, 3, 2], vertical_alignment="bottom")
    method = bar[0].segmented_control("Projection", list(METHODS), format_func=METHODS.get, default="tsne",
                                      required=True, key="method", persist_state="session")
    params = {}
    with bar[1].popover("Parameters", icon=":material/tune:"):
        if method == "tsne":
            params["perplexity"] = st.slider("Perplexity", 5.0, 100.0, DEFAULTS["tsne"]["perplexity"], 5.0,
                                             help="About how many neighbours each point attends to.",
                                             key="perplexity", persist_state="session")
        elif method == "umap":
            params["n_neighbors"] = st.slider("Neighbours", 5, 100, DEFAULTS["umap"]["n_neighbors"],
                                              key="n_neighbors", persist_state="session")
            params["min_dist"] = st.slider("Minimum distance", 0.0, 1.0, DEFAULTS["umap"]["min_dist"], 0.05,
                                           key="min_dist", persist_state="session")
        else:
            st.caption("PCA has no parameters: the map shows the two directions of largest variance.")
        on_train = st.toggle("Place on the train map", key="on_train", disabled=ctx.split != "test",
                             persist_state="session",
                             help="Fit the map on the training latents and place the test points on it with the "
                                  "method's transform, instead of mapping the test split on its own: see where "
                                  "unseen samples land among the training clusters. Only for the test split.")
    on_train = on_train and ctx.split == "test"
    state = st.session_state
    if bar[2].button("Clear selection", icon=":material/deselect:", width="stretch"):
        state.pop("map_selection", None)
        state["map_generation"] = state.get("map_generation", 0) + 1  # a new chart: plotly's selection goes too

    shown = (ctx.entry.path, ctx.dataset, ctx.split)
    if state.get("map_of") != shown:  # a selection belongs to one split of one model
        state.pop("map_selection", None)
        state["map_of"] = shown
    layout = (method, tuple(sorted(params.items())), on_train)
    if state.get("map_layout") != layout:  # boxes and lassos were drawn on another layout:
        kept = state.get("map_selection") or {}  # keep the picked rows, drop the shapes
        state["map_selection"] = {"rows": list(kept.get("rows", []))}
        state["map_layout"] = layout
    pending = (widgets.train_map_pending if on_train else widgets.map_pending)(view, method, params)
    # while the map is computed in the background, the fragment polls it every second
    st.fragment(_map_and_panel, run_every=1.0 if pending else None)(ctx, view, method, params, on_train, pending)


def _map_and_panel(ctx: Context, view: Loaded, method: str, params: dict, on_train: bool, pending: bool) -> None:
    """The map and the panels of the selection, in a fragment: a click reruns only this, and
    re-sends no map."""
    table, state = view.table, st.session_state
    background = train = None
    if on_train:
        out = widgets.placed_on_train(view, method, params)
        if out is not None:
            xy, background, train = out
            shown = method
            if pending:  # it has arrived: draw the page again, without the timer
                st.rerun()
        else:  # the train map is being computed: this split's PCA map meanwhile
            on_train = False
            xy, shown = widgets.map_or_meanwhile(view, "pca", {}, wait=0.0)
    else:
        xy, shown = widgets.map_or_meanwhile(view, method, params, wait=0.0)  # render() has waited already
        if pending and shown == method:  # it has arrived: draw the page again, without the timer
            st.rerun()
    key = (ctx.entry.path, ctx.entry.stamp, ctx.dataset, ctx.split, shown, tuple(sorted(params.items())), on_train)
    fig, traces = cache.map_figure(key, xy, table, view.classes, ctx.colour, background)
    chosen = state.get("map_selection") or {}
    spot = tuple(chosen["spot"]) if chosen.get("spot") else None
    rows = analysis.map_rows(chosen, xy, traces)

    left, right = st.columns([3, 2], gap="large")
    with left:
        map_slot = st.container()
        files = st.file_uploader("Place your own images on the map", type=panels.IMAGE_TYPES,
                                 accept_multiple_files=True, key="place_upload",
                                 max_upload_size=placement.MAX_UPLOAD_BYTES // 2**20,
                                 help="Each image is converted like the data set (size, grey or colour; dark ink on "
                                      "white is inverted for white-on-black digits), encoded, and marked on the map "
                                      "with a star, beside its cluster and its nearest neighbours.")
        names, own, digests = panels.own_images(view, files or [])
        placed = []
        if len(own):
            where = panels.map_model(view, shown, params, xy, train, fitted=True)
            placed = cache.placed_images(key, digests, where, own)
        marked = (digests, spot)
        if placed or spot:
            fig, traces = figures.with_marks(fig, traces, np.stack([p.xy for p in placed]) if placed else None,
                                             names, spot)
        # one chart per map, colouring, marks and "clear": the figure's traces, and so plotly's selection, belong to it
        chart = (f"latent_map-{state.get('map_generation', 0)}-"
                 f"{zlib.crc32(repr((key, ctx.colour, marked if placed or spot else None)).encode())}")
        with map_slot:
            st.plotly_chart(fig, key=chart, on_select=panels.keep_map_selection(chart, traces, fig, "map_selection"),
                            selection_mode=("points", "box", "lasso"), width="stretch",
                            config={"scrollZoom": True, "displaylogo": False})
            if on_train:
                st.caption(f"The {len(xy):,} test points placed, by {METHODS[method]}'s transform, on the map of the "
                           f"{len(background):,} training points (grey): each lands among the training points whose "
                           "latents are most like its own.")
            if len(xy) > selection.MAX_DRAWN:
                st.caption(f"Showing {selection.MAX_DRAWN:,} of {len(xy):,} points: a fixed random sample. "
                           "Selections use all of them: a box or a lasso picks the hidden points inside it too, and "
                           "a cluster panel counts every member.")
            if ctx.colour == "entropy" and table.entropy is not None and not view.model.is_soft:
                st.caption("Every assignment of this model is hard (one-hot), so every entropy is 0.")
        if placed:
            widgets.decoder_warning(view)
            panels.show_placed(view, placed, names)
    with right:
        if spot is not None:
            widgets.decoder_warning(view)
            # UMAP's inverse needs its fitted model; t-SNE's mix needs only the map
            panels.show_spot(view, panels.map_model(view, shown, params, xy, train, fitted=shown == "umap"), spot)
            return
        if len(rows) == 0:
            st.info("Click a point on the map, or draw a lasso or a box around some, to see the cluster "
                    "they belong to: its decoded centroid, its members, its labels and its purity. Click an empty "
                    "spot to decode the latent that belongs there.", icon=":material/touch_app:")
            _summary(view)
            return
        st.subheader(f"{widgets.plural(len(rows), 'point')} selected")
        widgets.decoder_warning(view)
        if len(rows) == 1:
            panels.show_sample(view, int(rows[0]))
        if not table.has_clusters:
            if len(rows) > 1:
                group = analysis.selection_view(view.model, table, view.data.images, rows, len(view.classes))
                widgets.show_group(group, cache.panel_png(group), view.classes)
            return
        clusters = panels.show_summary(view, rows)
        for k in clusters[:panels.MAX_PANELS]:
            with st.container(border=True):
                group, picture, histogram = cache.cluster_panel(ctx.entry.path, ctx.entry.stamp, ctx.dataset,
                                                                ctx.split, k)
                widgets.show_group(group, picture, view.classes, histogram)


def _summary(view: Loaded) -> None:
    table = view.table
    if not table.has_clusters:
        return
    cols = st.columns(3)
    cols[0].metric("Clusters used", f"{int((table.sizes > 0).sum())} of {len(table.sizes)}")
    if view.foreign_labels:  # both measure the clusters' labels against this data set's
        why = f"{view.entry.label} labels its clusters with the classes of {view.ckpt.dataset}, not of this data set"
        cols[1].metric("Label accuracy", "–", help=why)
        cols[2].metric("Mean purity", "–", help=why)
    else:
        cols[1].metric("Label accuracy", f"{np.mean(table.predicted == table.labels):.1%}")
        cols[2].metric("Mean purity", f"{np.nanmean(table.purity):.1%}")

