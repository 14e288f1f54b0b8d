"""Cluster styles: every cluster's decoded centroid, grouped by label (the SEQ paper's Fig. 4)."""

import numpy as np
import streamlit as st

from vqviz import analysis
from vqviz.images import grid

from vqviz_app import cache, sidebar, widgets
from vqviz_app.state import Context, Session


def render(ctx: Context) -> None:
    loaded = sidebar.loaded(ctx, need_clusters=True)
    table, classes = loaded.table, loaded.classes
    images, meaning, tile = cache.centroids(loaded.view), loaded.model.CENTRE_MEANING, "decoded centroid"
    if images is None:  # a model without a decoder: each cluster by its most typical member
        images, tile = analysis.typical_images(table, loaded.data.images), "most typical member"
        meaning = "its most typical member, the one nearest its mean latent (this model has no decoder)"
    groups = analysis.cluster_table(table)
    sizes, purity = table.sizes, table.purity
    h = images.shape[-2]

    st.title("Cluster styles")
    st.caption(f"Each tile is one of the {len(sizes)} clusters of **{ctx.entry.label}**: "
               f"{meaning}. A class with several clusters shows its *styles*. Under each tile: "
               f"the cluster's number, its members in the {ctx.split} split and its purity.")
    widgets.decoder_warning(loaded)
    cols = st.columns(3)
    cols[0].metric("Clusters", len(sizes))
    cols[1].metric(f"Used in the {ctx.split} split", int((sizes > 0).sum()))
    cols[2].metric("Mean purity", f"{np.nanmean(purity):.1%}" if (sizes > 0).any() else "–")

    for label, ks in groups.items():
        name = classes[label] if label >= 0 else "no members"
        left, right = st.columns([1, 9], vertical_alignment="center")
        left.markdown(f"### {name}\n{widgets.plural(len(ks), 'cluster')}")
        right.image([grid(images[k][None], pad=0, scale=cache.scale_for(h, 56)) for k in ks],
                    caption=[_caption(k, sizes[k], purity[k]) for k in ks], width=96)

    st.divider()
    st.subheader("Sub-classes of one class")
    st.caption(f"Each row is one cluster of the class: its {tile}, then the members nearest to "
               "its mean latent, its most typical style (the SEQ paper's Fig. 4, rows 2 and 3).")
    labels = [c for c in groups if c >= 0]
    if not labels:
        st.info("No cluster has a label in this split.")
        return
    label = st.segmented_control("Class", labels, format_func=lambda c: classes[c], default=labels[0],
                                 required=True, key=Session.styles_class.key, persist_state="session")
    n_members = 12
    rows = analysis.subclasses(table, loaded.data.images, label, n_members=n_members)
    if not rows:
        st.info(f"No cluster of {classes[label]} has a member in the {ctx.split} split.")
    for k, members in rows:
        with st.container(border=True):
            left, right = st.columns([1, 8], vertical_alignment="center")
            left.image(grid(images[k][None], pad=0, scale=cache.scale_for(h, 72)), caption=f"cluster {k}")
            # every row n_members tiles wide (white ones after a small cluster's last member), so that the
            # page scales every row alike: a lone member is drawn the size of the others
            blank = np.ones((n_members - len(members), *members.shape[1:]), members.dtype)
            right.image(grid(np.concatenate([members, blank]), ncol=n_members, pad=2, scale=cache.scale_for(h, 56)),
                        caption=f"{widgets.plural(int(sizes[k]), 'member')} · purity {purity[k]:.0%}")


def _caption(k: int, size: int, purity: float) -> str:
    return f"#{k} · {size} · {'–' if np.isnan(purity) else f'{purity:.0%}'}"

