"""vqviz explorer: ``streamlit run app.py``.

Opens on the bundled digits data with a shipped SEQ checkpoint: the decoded
centroid of every cluster, grouped by the class its members vote for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vqviz import checkpoints, data, explore
from vqviz.errors import VqvizError
from vqviz.images import grid

ROOT = Path(__file__).resolve().parent
CHECKPOINT_DIR = ROOT / "checkpoints"
#: More checkpoint folders, separated like PATH (e.g. ``VQVIZ_CHECKPOINTS=~/runs:/data/models``).
USER_DIRS = [Path(p).expanduser() for p in os.environ.get("VQVIZ_CHECKPOINTS", "").split(os.pathsep) if p]
DEFAULT = "seq-digits-cae4"

st.set_page_config(page_title="vqviz", page_icon=":material/scatter_plot:", layout="wide")


@st.cache_resource(show_spinner="Loading the checkpoint...")
def load_checkpoint(path: str, stamp: float) -> checkpoints.Checkpoint:
    """Load once per checkpoint version (``stamp`` is meta.json's mtime, so a re-save reloads)."""
    return checkpoints.load(path)


@st.cache_data(show_spinner="Scoring the clusters...")
def cluster_summary(path: str, stamp: float, dataset: str, split: str) -> explore.ClusterSummary:
    ckpt = load_checkpoint(path, stamp)
    ds = data.load(dataset, split)
    return explore.summarize(ckpt.model, ds.images, ds.labels)


@st.cache_data(show_spinner=False)
def centroids(path: str, stamp: float) -> np.ndarray:
    return explore.centroid_images(load_checkpoint(path, stamp).model)


def k_curve_figure(metrics: dict) -> go.Figure | None:
    """Accuracy against K with P_E as a line and the rule's K marked (the SEQ paper's Fig. 3)."""
    curve = metrics.get("k_curve")
    if not curve:
        return None
    fig = go.Figure()
    ks = [p["k"] for p in curve]
    for key, name in (("train_accuracy", "quantizer, train"), ("test_accuracy", "quantizer, test")):
        if key in curve[0]:
            fig.add_scatter(x=ks, y=[p[key] for p in curve], mode="lines+markers", name=name)
    if "p_e" in metrics:
        fig.add_hline(y=metrics["p_e"], line_color="black", annotation_text="encoder P_E")
    if "k_rule" in metrics:
        fig.add_vline(x=metrics["k_rule"], line_dash="dot", annotation_text=f"rule: K={metrics['k_rule']}")
    fig.update_layout(xaxis_title="K (clusters)", yaxis_title="accuracy", height=320,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h"))
    return fig


def main() -> None:
    st.title("vqviz")
    st.caption("The clusters a supervised encoder learned, decoded back into images.")
    found = checkpoints.find(CHECKPOINT_DIR, *USER_DIRS)
    if not found:
        st.error(f"No checkpoints in {CHECKPOINT_DIR}. Train one with "
                 "`python -m vqviz train seq --dataset digits`.")
        return
    names = [p.name if p.parent == CHECKPOINT_DIR else str(p) for p in found]
    with st.sidebar:
        choice = st.selectbox("Model checkpoint", names, index=names.index(DEFAULT) if DEFAULT in names else 0)
        split = st.radio("Split", ["test", "train"], horizontal=True)
    path = found[names.index(choice)]
    try:
        stamp = (path / checkpoints.META).stat().st_mtime
        ckpt = load_checkpoint(str(path), stamp)
        if not ckpt.model.has_quantizer or not hasattr(ckpt.model, "cluster_labels"):
            st.warning(f"{choice} is a {ckpt.name} model without clusters; pick a SEQ checkpoint.")
            return
        summary = cluster_summary(str(path), stamp, ckpt.dataset, split)
        images = centroids(str(path), stamp)
        classes = data.load(ckpt.dataset, split).classes
    except VqvizError as e:
        st.error(str(e))
        return

    m = ckpt.metrics
    cols = st.columns(4)
    cols[0].metric("Clusters K", ckpt.model.k)
    cols[1].metric("Encoder accuracy P_E", f"{m.get('encoder_test_accuracy', float('nan')):.2%}")
    cols[2].metric("Quantizer accuracy P_Q", f"{m.get('quantizer_test_accuracy', float('nan')):.2%}")
    cols[3].metric(f"Mean purity ({split})", f"{np.nanmean(summary.purity):.2%}")

    st.subheader("Decoded cluster centroids, by class")
    st.caption("Each tile is the mean feature of one cluster passed through the decoder; a class with "
               "several clusters shows its styles. Largest clusters first.")
    groups = explore.clusters_by_label(summary.labels, order=np.argsort(-summary.sizes, kind="stable"))
    scale = max(1, 64 // images.shape[-1])
    for label, members in groups.items():
        left, right = st.columns([1, 6], vertical_alignment="center")
        left.markdown(f"**{classes[label]}**  \n{len(members)} clusters")
        right.image(grid(images[members], ncol=len(members), pad=2, scale=scale), clamp=True)

    fig = k_curve_figure(m)
    if fig is not None:
        st.subheader("Accuracy against the number of clusters")
        st.plotly_chart(fig, width="stretch")


main()
