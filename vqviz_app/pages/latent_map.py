"""Latent map: a 2-D map of the chosen split's latents; a click or a lasso opens the clusters, a click on
an empty spot decodes the latent there, and the user's own images are placed on it."""

import numpy as np
import streamlit as st

from vqviz.projection import DEFAULTS, METHODS

from vqviz_app import catalog, maps, panel, sidebar, widgets
from vqviz_app.maps import MapKey
from vqviz_app.state import Context, Loaded, Session


def render(ctx: Context) -> None:
    loaded = sidebar.loaded(ctx)
    table = loaded.table
    st.title("Latent map")
    which = "train and test" if ctx.split == "all" else ctx.split
    st.caption(f"The {len(table.labels):,} {which} images of {catalog.dataset_label(ctx.dataset)}, encoded by "
               f"**{ctx.entry.label}** and laid out in 2-D. Click a point, or draw a lasso or a box, "
               "to open its cluster.")

    bar = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    method = bar[0].segmented_control("Projection", list(METHODS), format_func=METHODS.get, default="tsne",
                                      required=True, key=Session.method.key, persist_state="session")
    params = {}
    with bar[1].popover("Parameters", icon=":material/tune:"):
        if method == "tsne":
            params["perplexity"] = st.slider("Perplexity", 5.0, 100.0, DEFAULTS["tsne"]["perplexity"], 5.0,
                                             help="About how many neighbours each point attends to.",
                                             key=Session.perplexity.key, persist_state="session")
        elif method == "umap":
            params["n_neighbors"] = st.slider("Neighbours", 5, 100, DEFAULTS["umap"]["n_neighbors"],
                                              key=Session.n_neighbors.key, persist_state="session")
            params["min_dist"] = st.slider("Minimum distance", 0.0, 1.0, DEFAULTS["umap"]["min_dist"], 0.05,
                                           key=Session.min_dist.key, persist_state="session")
        else:
            st.caption("PCA has no parameters: the map shows the two directions of largest variance.")
        on_train = st.toggle("Place on the train map", key=Session.on_train.key, disabled=ctx.split != "test",
                             persist_state="session",
                             help="Fit the map on the training latents and place the test points on it with the "
                                  "method's transform, instead of mapping the test split on its own: see where "
                                  "unseen samples land among the training clusters. Only for the test split.")
    if bar[2].button("Clear selection", icon=":material/deselect:", width="stretch"):
        maps.clear_selection()
    has_decoder = loaded.model.has_decoder
    decode = bar[3].toggle(
        "Decode under the cursor", key=Session.decode_hover.key, persist_state="session", disabled=not has_decoder,
        help="Hovering over an empty spot decodes the latent there, in this browser, as the cursor moves: "
             "PCA's exact inverse, or (t-SNE, UMAP) a mix of the latents of the nearest map points. A click "
             "still pins the spot and opens its panel." if has_decoder else
             "This model has no decoder: no spot of the map can be decoded.") and has_decoder

    key = MapKey.of(loaded.view, method, params, on_train=on_train and ctx.split == "test")
    maps.follow(key)
    pending = maps.pending(loaded, key)
    # while the map is computed in the background, the fragment polls it every second
    st.fragment(_map_and_panel, run_every=1.0 if pending else None)(ctx, loaded, key, pending, decode)


def _map_and_panel(ctx: Context, loaded: Loaded, key: MapKey, pending: bool, decode: bool) -> None:
    """The map and the panels of the selection, in a fragment: a click reruns only this, and
    re-sends no map."""
    at = maps.shown(loaded, key, wait=0.0)  # render() has waited already
    if pending and at.arrived:  # it has arrived: draw the page again, without the timer
        st.rerun()
    rows, spot = maps.selected(loaded, at)

    left, right = st.columns([3, 2], gap="large")
    with left:
        map_slot = st.container()
        own = maps.place_own(loaded, at)
        with map_slot:
            maps.draw(loaded, at, ctx.colour, own, spot, decode)
        if own.placed:
            widgets.decoder_warning(loaded)
            panel.show_placed(loaded, own.placed, own.names)
    with right:
        if spot is not None:
            if widgets.no_decoder(loaded, "an empty spot of the map cannot be decoded. Click a point, or draw a "
                                          "lasso or a box around some, to see their clusters"):
                return
            widgets.decoder_warning(loaded)
            # UMAP's inverse needs its fitted model; t-SNE's mix needs only the map
            panel.show_spot(loaded, maps.map_model(loaded, at, fitted=at.key.method == "umap"), spot)
            return
        if len(rows) == 0:
            st.info("Click a point on the map, or draw a lasso or a box around some, to see the cluster "
                    "they belong to: " + ("its decoded centroid, " if loaded.model.has_decoder else "")
                    + "its members, its labels and its purity."
                    + (" Click an empty spot to decode the latent that belongs there." if loaded.model.has_decoder
                       else ""), icon=":material/touch_app:")
            _summary(loaded)
            return
        st.subheader(f"{widgets.plural(len(rows), 'point')} selected")
        widgets.decoder_warning(loaded)
        if len(rows) == 1:
            panel.show_sample(loaded, int(rows[0]))
        panel.show_selected(loaded, rows)


def _summary(loaded: Loaded) -> None:
    table = loaded.table
    if not table.has_clusters:
        return
    cols = st.columns(3)
    cols[0].metric("Clusters used", f"{int((table.sizes > 0).sum())} of {len(table.sizes)}")
    if loaded.foreign_labels:  # both measure the clusters' labels against this data set's
        why = (f"{loaded.entry.label} labels its clusters with the classes of {loaded.ckpt.dataset}, not of this "
               "data set")
        cols[1].metric("Label accuracy", "–", help=why)
        cols[2].metric("Mean purity", "–", help=why)
    else:
        cols[1].metric("Label accuracy", f"{np.mean(table.predicted == table.labels):.1%}")
        cols[2].metric("Mean purity", f"{np.nanmean(table.purity):.1%}")
