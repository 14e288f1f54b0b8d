"""Assignment entropy: two models' codebook use on one split, side by side (the SK-VQ paper's Table 1)."""

import numpy as np
import streamlit as st
import torch

from vqviz import images
from vqviz.analysis import CodebookStats
from vqviz.errors import VqvizError

from vqviz_app import catalog, figures, jobs, sidebar, widgets
from vqviz_app.catalog import Entry
from vqviz_app.state import Context, Loaded, Session, session

COLOURS = ("#1f77b4", "#d55e00")  # left, right
#: How long the page waits for the statistics before it shows what is ready.
WAIT_S = 0.5


def render(ctx: Context) -> None:
    st.title("Assignment entropy")
    loaded = sidebar.loaded(ctx)
    left = loaded.entry
    if not loaded.model.has_quantizer:
        st.info(f"**{left.label}** (family {loaded.ckpt.name}) has no codebook, so there is no assignment to "
                "measure. Pick a model with a codebook, such as SK-VQ, a VQ-VAE or SEQ, in the sidebar.",
                icon=":material/info:")
        return
    which = "train and test" if ctx.split == "all" else ctx.split
    st.caption(f"How two models use their codebooks on the {len(loaded.data.labels):,} {which} images of "
               f"{catalog.dataset_label(ctx.dataset)}, as in the SK-VQ paper's Table 1: how sure each sample's assignment is, how "
               "evenly the codewords are used, and how many are never used. The sidebar's checkpoint is on "
               "the left (unless its assignments are hard: then on the right); pick the other here.")
    candidates = [e for e in catalog.entries() if not e.error and e.dataset == ctx.dataset and e.has_codebook]
    if not loaded.model.is_soft:  # its histogram would be empty: open on a soft model, if there is one
        soft = next((e for e in candidates if e.path != left.path and _soft(_model(e))), None)
        if soft is None:
            st.caption(f"**{left.label}** assigns every sample to one codeword (a hard assignment), so its "
                       f"entropies are all 0 and it has no histogram; no checkpoint of {catalog.dataset_label(ctx.dataset)} has soft "
                       "assignments. Train an SK-VQ or a soft VQ-VAE on the **Models** page to see one.")
        else:
            st.caption(f"The sidebar's **{left.label}** assigns every sample to one codeword (a hard "
                       f"assignment): its entropies are all 0, so it has no histogram. The page opens on "
                       f"**{soft.label}**, whose assignments are soft, with {left.label} on the right.")
            if not session.entropy_right_picked:
                session.entropy_right = session.entropy_swapped = left.path
            left = soft
    if left is loaded.entry and session.entropy_right == Session.entropy_swapped.pop() \
            and not session.entropy_right_picked:
        del session.entropy_right  # it was there only beside a soft model: the usual default
    others = [e for e in candidates if e.path != left.path]
    cols = st.columns(2, gap="large")
    cols[0].subheader(left.label)
    cols[0].caption(_describe(left))
    right = None
    with cols[1]:
        if others:
            by_path = {e.path: e for e in others}
            if session.entropy_right not in by_path:
                session.entropy_right = _default(left, others).path
            path = st.selectbox("Compare with", list(by_path), key=Session.entropy_right.key,
                                format_func=lambda p: by_path[p].label, label_visibility="collapsed",
                                persist_state="session", on_change=Session.entropy_right_picked.set, args=(True,))
            right = by_path[path]
            st.caption(_describe(right))
        else:
            st.info(f"No other checkpoint with a codebook was trained on {catalog.dataset_label(ctx.dataset)}. "
                    "Train one on the **Models** page to compare.", icon=":material/info:")

    sides = [left] + ([right] if right is not None else [])
    futures = [jobs.codebook_stats(e, ctx.dataset, ctx.split) for e in sides]
    jobs.ready(futures[-1], WAIT_S)  # quick ones show at once
    pending = not all(f.done() for f in futures)

    @st.fragment(run_every=1.0 if pending else None)
    def panels() -> None:
        stats = [jobs.ready(jobs.codebook_stats(e, ctx.dataset, ctx.split)) for e in sides]
        ready = [s for s in stats if isinstance(s, CodebookStats)]
        top = max((s.max_entropy for s in ready), default=1.0)  # one entropy axis: ln K is comparable
        for col, s, colour, entry in zip(st.columns(2, gap="large"), stats, COLOURS, sides):
            with col:
                if s is None:
                    st.progress(0.0, text="Assigning the split to the codebook, in the background...")
                elif not isinstance(s, CodebookStats):
                    st.error(s.get("error", "these statistics could not be computed"), icon=":material/error:")
                else:
                    _side(s, top, colour)
                    st.markdown("**Codebook use over training**")
                    widgets.codebook_history(entry, colour)
        if pending and all(s is not None for s in stats):  # all in: draw the page once more, without the timer
            st.rerun()

    panels()
    st.caption("Entropies in nats. Per-sample: of the model's soft assignment over the K codewords (SK-VQ: "
               "softmax(−λ‖z − e_k‖² + log ᾱ_k); soft VQ-VAE: its posterior); 0 is one codeword for sure, "
               "ln K a uniform spread. Usage: of the share of samples each codeword gets in its evaluation "
               "(hard) assignment; its exponential, the perplexity, is the effective number of codewords in "
               "use, at most K. Dead codes: codewords no sample of this split is assigned to.")
    for entry in sides:  # SK-VQ's map of codes, for whichever side has one
        model = loaded.model if entry is loaded.entry else _model(entry)
        if model is not None and model.code_map_shape is not None:
            _code_maps(model, entry.label, loaded)


def _side(s: CodebookStats, top: float, colour: str) -> None:
    st.markdown("**Per-sample assignment entropy**")
    if s.hard:
        with st.container(height=figures.ENTROPY_HEIGHT, border=True, vertical_alignment="center"):
            st.caption(f"Every assignment of this model is hard (one-hot: its nearest codeword), so "
                       f"every sample's entropy is 0 nats; no histogram to draw. A soft assignment "
                       f"spreads a sample over several codewords, up to ln K = {s.max_entropy:.2f} "
                       "nats for a uniform one.")
    else:
        st.plotly_chart(figures.entropy_figure(s, top, colour), width="stretch", config=figures.PLAIN)
    st.markdown("**Codeword use, most used first**")
    # each side its own count axis: a model whose codes share the split thinly must not look empty
    st.plotly_chart(figures.usage_figure(s, int(s.counts.max()), colour), width="stretch", config=figures.PLAIN)
    _numbers(s)


def _model(entry: Entry):
    """The entry's model, or None if it does not load (the catalogue then lists it as unusable)."""
    try:
        return catalog.load(entry).model
    except VqvizError:
        return None


def _soft(model) -> bool:
    """Whether the model's assignment is soft; a candidate that does not load (None) is not."""
    return model is not None and model.is_soft


def _describe(entry: Entry) -> str:
    cfg, l = entry.config, entry.summary.get("n_codebooks") or 1
    parts = [entry.family, f"quantizer {cfg['quantizer']}" if cfg.get("quantizer") else "",
             f"{l} codebooks" if l > 1 else ""]
    return " · ".join(p for p in parts if p)


def _code_maps(model, label: str, loaded: Loaded) -> None:
    """The SK-VQ paper's picture: which codeword each region of an image uses, for ``model``."""
    split = loaded.data
    h, w = model.code_map_shape
    st.subheader(f"Map of codes: {label}")
    st.caption(f"This model quantizes each image as a {h}x{w} map of codes, one codeword of {model.n_codes} per "
               "region, then pools the map for its classifier. Each region is tinted by its codeword's colour "
               "(the same colour for the same codeword in every image).")
    n = len(split.labels)
    picks = st.number_input("Image", 0, n - 1, 0, key=Session.code_map_image.key(label), help="Its index in the split.")
    rows = np.arange(int(picks), min(int(picks) + 4, n))
    x = np.array(split.images[rows])
    with torch.no_grad():
        maps = model.code_map(torch.as_tensor(x, device=model.device)).cpu().numpy()
    cols = st.columns(len(rows))
    for col, row, image, codes in zip(cols, rows, x, maps):
        col.image(images.code_map_picture(image, codes, model.n_codes, scale=max(1, 224 // image.shape[-1])),
                  caption=f"#{row}: {loaded.classes[split.labels[row]]}, "
                          f"{widgets.plural(len(np.unique(codes)), 'codeword')}",
                  width="stretch")


def _default(left: Entry, others: list[Entry]) -> Entry:
    """Another kind of quantizer than the left one's: the same family with another quantizer
    (SK-VQ against its plain-VQ twin) first, else another family, else the first."""
    def kind(e):
        return e.family, e.config.get("quantizer")

    twin = [e for e in others if e.family == left.family and kind(e) != kind(left)]
    other = [e for e in others if e.family != left.family]
    return (twin or other or others)[0]


def _numbers(s: CodebookStats) -> None:
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
                      "perplexity": s.perplexity, "dead codes": s.dead_codes}, hide_index=True, width="stretch", placeholder="–",
                     column_config={"usage entropy (nats)": st.column_config.NumberColumn(format="%.2f"),
                                    "perplexity": st.column_config.NumberColumn(format="%.1f")})

