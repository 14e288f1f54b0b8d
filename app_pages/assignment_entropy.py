"""Assignment entropy: two models' codebook use on one split, side by side (the SK-VQ paper's Table 1)."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vqviz import explore, ui
from vqviz.errors import VqvizError

HEIGHT = 260
COLOURS = ("#1f77b4", "#d55e00")  # left, right
PLAIN = dict(displayModeBar=False)


@st.cache_resource(max_entries=8, show_spinner="Assigning the split to the codebook...")
def _stats(path: str, stamp: int, dataset: str, split: str) -> explore.CodebookStats:
    ds = ui.load_data(dataset, split)
    return explore.codebook_stats(ui.load_checkpoint(path, stamp).model, ds.images)


@ui.page
def assignment_entropy() -> None:
    ctx = ui.context()
    st.title("Assignment entropy")
    view = ui.loaded()
    left = view.entry
    if not view.model.has_quantizer:
        st.info(f"**{left.label}** (family {view.ckpt.name}) has no codebook, so there is no assignment to "
                "measure. Pick a model with a codebook, such as SK-VQ, a VQ-VAE or SEQ, in the sidebar.",
                icon=":material/info:")
        return
    which = "train and test" if ctx.split == "all" else ctx.split
    st.caption(f"How two models use their codebooks on the {len(view.data.labels):,} {which} images of "
               f"{ctx.dataset}, as in the SK-VQ paper's Table 1: how sure each sample's assignment is, how "
               "evenly the codewords are used, and how many are never used. The sidebar's checkpoint is on "
               "the left; pick the other here.")
    others = [e for e in ui.checkpoint_entries() if e.path != left.path and not e.error
              and e.dataset == ctx.dataset and explore.has_codebook(e.family, e.meta.get("config", {}))]
    cols = st.columns(2, gap="large")
    cols[0].subheader(left.label)
    cols[0].caption(_describe(left))
    right = None
    with cols[1]:
        if others:
            by_path = {e.path: e for e in others}
            if st.session_state.get("entropy_right") not in by_path:
                st.session_state["entropy_right"] = _default(left, others).path
            path = st.selectbox("Compare with", list(by_path), key="entropy_right",
                                format_func=lambda p: by_path[p].label, label_visibility="collapsed",
                                persist_state="session")
            right = by_path[path]
            st.caption(_describe(right))
        else:
            st.info(f"No other checkpoint with a codebook was trained on {ctx.dataset}. Train one on the "
                    "**Models** page to compare.", icon=":material/info:")

    stats = [_stats(left.path, left.stamp, ctx.dataset, ctx.split)]
    if right is not None:
        try:
            ckpt = ui.load_checkpoint(right.path, right.stamp)
            explore.check_inputs(ckpt.model, ctx.dataset, view.data.shape, ckpt.dataset)
            stats.append(_stats(right.path, right.stamp, ctx.dataset, ctx.split))
        except VqvizError as e:
            with cols[1]:
                ui.error(e)

    top = max(s.max_entropy for s in stats)
    peak = max(int(s.counts.max()) for s in stats)
    for col, s, colour in zip(st.columns(2, gap="large"), stats, COLOURS):
        with col:
            st.markdown("**Per-sample assignment entropy**")
            if s.hard:
                with st.container(height=HEIGHT, border=True, vertical_alignment="center"):
                    st.caption(f"Every assignment of this model is hard (one-hot: its nearest codeword), so "
                               f"every sample's entropy is 0 nats; no histogram to draw. A soft assignment "
                               f"spreads a sample over several codewords, up to ln K = {s.max_entropy:.2f} "
                               "nats for a uniform one.")
            else:
                st.plotly_chart(_entropy_figure(s, top, colour), width="stretch", config=PLAIN)
            st.markdown("**Codeword use, most used first**")
            st.plotly_chart(_usage_figure(s, peak, colour), width="stretch", config=PLAIN)
            _numbers(s)
    st.caption("Entropies in nats. Per-sample: of the model's soft assignment over the K codewords (SK-VQ: "
               "softmax(−λ‖z − e_k‖² + log ᾱ_k); soft VQ-VAE: its posterior); 0 is one codeword for sure, "
               "ln K a uniform spread. Usage: of the share of samples each codeword gets in its evaluation "
               "(hard) assignment; its exponential, the perplexity, is the effective number of codewords in "
               "use, at most K. Dead codes: codewords no sample of this split is assigned to.")


def _describe(entry: ui.Entry) -> str:
    cfg = entry.meta.get("config", {})
    parts = [entry.family, f"quantizer {cfg['quantizer']}" if cfg.get("quantizer") else "",
             f"{cfg['n_codebooks']} codebooks" if cfg.get("n_codebooks", 1) > 1 else ""]
    return " · ".join(p for p in parts if p)


def _default(left: ui.Entry, others: list[ui.Entry]) -> ui.Entry:
    """Another kind of quantizer than the left one's: the same family with another quantizer
    (SK-VQ against its plain-VQ twin) first, else another family, else the first."""
    def kind(e):
        return e.family, e.meta.get("config", {}).get("quantizer")

    twin = [e for e in others if e.family == left.family and kind(e) != kind(left)]
    other = [e for e in others if e.family != left.family]
    return (twin or other or others)[0]


def _numbers(s: explore.CodebookStats) -> None:
    """Usage entropy, perplexity and dead codes; for several codebooks their mean, then each."""
    many = s.n_codebooks > 1
    mean = " (mean)" if many else ""
    cols = st.columns(3)
    cols[0].metric(f"Usage entropy{mean}", f"{s.usage_entropy.mean():.2f} nats",
                   f"max ln K = {s.max_entropy:.2f}", delta_color="off", delta_arrow="off",
                   help="Entropy of the share of samples each codeword gets.")
    cols[1].metric(f"Perplexity{mean}", f"{s.perplexity.mean():.1f}", f"of K = {s.n_codes}", delta_color="off",
                   delta_arrow="off", help="exp(usage entropy): the effective number of codewords in use.")
    cols[2].metric(f"Dead codes{mean}", f"{s.dead_codes.mean():.3g} of {s.n_codes}",
                   f"{s.dead_codes.mean() / s.n_codes:.0%} unused", delta_color="off", delta_arrow="off",
                   help="Codewords that no sample of this split is assigned to.")
    if many:
        st.dataframe({"codebook": np.arange(s.n_codebooks), "usage entropy (nats)": s.usage_entropy,
                      "perplexity": s.perplexity, "dead codes": s.dead_codes}, hide_index=True, width="stretch",
                     column_config={"usage entropy (nats)": st.column_config.NumberColumn(format="%.2f"),
                                    "perplexity": st.column_config.NumberColumn(format="%.1f")})


def _entropy_figure(s: explore.CodebookStats, top: float, colour: str) -> go.Figure:
    """Histogram of per-sample entropies on [0, ``top``], the mean and ln K marked."""
    size = top / 40
    fig = go.Figure(go.Histogram(x=s.entropy, xbins=dict(start=0, end=top + size, size=size), marker_color=colour,
                                 hovertemplate="%{x} nats: %{y} samples<extra></extra>"))
    mean = float(s.entropy.mean())
    fig.add_vline(x=mean, line_dash="dash", line_color="#333", annotation_text=f"mean {mean:.2f}",
                  annotation_position="top right")
    fig.add_vline(x=s.max_entropy, line_dash="dot", line_color="#888", annotation_text=f"ln K = {s.max_entropy:.2f}",
                  annotation_position="top left")
    tallest = np.histogram(s.entropy, bins=np.arange(0, top + 2 * size, size))[0].max()
    fig.update_layout(height=HEIGHT, margin=dict(l=0, r=10, t=24, b=0), bargap=0.05,
                      xaxis=dict(title="entropy (nats)", range=[0, top * 1.04]),
                      yaxis=dict(title="samples", range=[0, tallest * 1.15]))  # room for the labels
    return fig


def _usage_figure(s: explore.CodebookStats, peak: int, colour: str) -> go.Figure:
    """Each codebook's counts sorted, largest first; the dead codes shaded, uniform use as a line."""
    k = s.n_codes
    rank = np.arange(1, k + 1)
    fig = go.Figure()
    for i, (order, counts) in enumerate(zip(s.order, s.sorted_counts)):
        name = f"codebook {i}"
        hover = "codeword %{customdata}: %{y} samples<extra>" + (name if s.n_codebooks > 1 else "") + "</extra>"
        if s.n_codebooks == 1:
            fig.add_bar(x=rank, y=counts, customdata=order, marker_color=colour, hovertemplate=hover, name=name)
        else:
            fig.add_scatter(x=rank, y=counts, customdata=order, mode="lines", line_shape="hvh", name=name,
                            hovertemplate=hover)
    dead = int(s.dead_codes.max())
    if dead:
        fig.add_vrect(x0=k - dead + 0.5, x1=k + 0.5, fillcolor="#999", opacity=0.15, line_width=0,
                      annotation_text=f"{'up to ' if s.n_codebooks > 1 else ''}{dead} dead",
                      annotation_position="top right")
    uniform = s.counts[0].sum() / k
    fig.add_hline(y=uniform, line_dash="dot", line_color="#444", annotation_text="uniform use",
                  annotation_position="top right")
    fig.update_layout(height=HEIGHT, margin=dict(l=0, r=10, t=24, b=0), bargap=0.1, showlegend=s.n_codebooks > 1,
                      legend=dict(orientation="h", y=1.12),
                      xaxis=dict(title="codeword rank", range=[0.5, k + 0.5]),
                      yaxis=dict(title="samples", range=[0, peak * 1.15]))
    return fig


assignment_entropy()
