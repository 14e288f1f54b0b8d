"""Metrics: SEQ's accuracy against K (the paper's Fig. 3), downstream scores across checkpoints,
and the published benchmark next to the papers' tables."""

import math

import streamlit as st

from vqviz.errors import VqvizError

from vqviz_app import cache, catalog, figures, jobs
from vqviz_app.state import Context

COLUMNS = {"kmeans_accuracy": "k-means accuracy", "kmeans_nmi": "k-means NMI", "linear_probe": "linear probe",
           "mse_per_image": "recon. MSE / image", "bce_per_image": "recon. BCE / image"}
#: How long the page waits for background scores before it shows what is ready.
WAIT_S = 0.3


def render(ctx: Context) -> None:
    st.title("Metrics")
    entry = ctx.entry
    if entry is not None and not entry.error:
        m = entry.metrics
        st.subheader(f"{entry.label}: accuracy against the number of clusters")
        fig = figures.k_curve_figure(m)
        if fig is None:
            st.caption(f"{entry.label} (family {entry.family}) has no sweep over K: the sweep is part of "
                       "training a SEQ model.")
        else:
            st.caption("k-means with K clusters on the encoder's features, each cluster labelled by majority "
                       "vote: the quantizer's accuracy P_Q against K, the encoder's own softmax accuracy P_E as "
                       "a line, and the smallest K with P_Q > P_E − ε, the K that the rule picks.")
            cols = st.columns(4)
            cols[0].metric("Encoder P_E", _pct(m.get("p_e")))
            cols[1].metric("Quantizer P_Q", _pct(m.get("quantizer_test_accuracy")))
            cols[2].metric("K picked by the rule", m.get("k_rule", "–"))
            cols[3].metric("K used", m.get("k", "–"))
            if m.get("k_rule_met") is False:
                st.info(f"No K of the sweep met the rule P_Q > P_E − ε (ε = {m.get('epsilon', '?')}): the K shown "
                        "is the sweep's largest, the best it reached, not one the rule picked.",
                        icon=":material/info:")
            st.plotly_chart(fig, width="stretch")
        scalars = {k: catalog.number(v) for k, v in m.items() if catalog.number(v) is not None}
        with st.expander(f"Everything measured when {entry.label} was trained ({len(scalars)} values)",
                         expanded=fig is None):
            st.dataframe([{"metric": k, "value": v} for k, v in scalars.items()], hide_index=True,
                         width="stretch", placeholder="–")

    _downstream(ctx)
    _papers(ctx.dataset)


def _downstream(ctx: Context) -> None:
    same = [e for e in catalog.entries() if e.dataset == ctx.dataset and not e.error]
    st.subheader(f"Downstream scores of the checkpoints of {catalog.dataset_label(ctx.dataset)}")
    st.caption("k-means with one cluster per class on the test latents (Hungarian accuracy and NMI); a linear "
               "probe trained on up to 10,000 training latents and scored on the test set; the reconstruction "
               "error of the test images through each model (its quantizer included). Higher is better, "
               "except for reconstruction. They are computed once, in the background; the table fills in as "
               "they arrive.")
    if not same:
        st.info(f"No checkpoint was trained on {catalog.dataset_label(ctx.dataset)}. Train one on the **Models** page.")
        return
    futures = [jobs.downstream(e, ctx.dataset) for e in same]
    jobs.ready(futures[-1], WAIT_S)  # quick ones show at once
    pending = not all(f.done() for f in futures)

    @st.fragment(run_every=1.0 if pending else None)
    def table() -> None:
        scores = [jobs.ready(jobs.downstream(e, ctx.dataset)) for e in same]
        done = sum(s is not None for s in scores)
        if done < len(same):
            st.progress(done / len(same), text=f"Scoring the checkpoints in the background: {done} of "
                                               f"{len(same)} ready")
        rows = []
        for e, s in zip(same, scores):
            row = {"checkpoint": e.label, "family": e.family}
            row.update({name: (s or {}).get(key) for key, name in COLUMNS.items()})
            row["problem"] = "computing…" if s is None else s.get("error", "")
            rows.append(row)
        if not any(r["problem"] for r in rows):
            for r in rows:
                del r["problem"]
        st.dataframe(rows, hide_index=True, width="stretch", placeholder="–", column_config={
            name: st.column_config.ProgressColumn(name, format="percent", min_value=0.0, max_value=1.0)
            for name in ("k-means accuracy", "k-means NMI", "linear probe")})
        if pending and done == len(same):  # all in: draw the page once more, without the timer
            st.rerun()

    table()


def _papers(dataset: str) -> None:
    """The published `bench repro` results (:mod:`vqviz_app.published`, plain data): SEQ's Fig. 3 as a chart,
    then every figure against the paper."""
    st.subheader("Against the papers")
    found = {}
    for name in ("mnist", "fashion-mnist", dataset):
        try:
            results = cache.bench_results(name)
        except VqvizError as e:
            st.warning(f"The benchmark results of {name} cannot be read: {e}")
            continue
        if results is not None:
            found[name] = results
    if not found:
        st.info("No benchmark results are published yet. `python -m vqviz bench repro --dataset mnist` runs the "
                "papers' protocols and writes them to vqviz_app/results/.")
        return
    shown = st.segmented_control("Benchmark data set", list(found), required=True, key="bench_dataset",
                                 default=dataset if dataset in found else next(iter(found)))
    results = found[shown]
    st.caption(f"`python -m vqviz bench repro --dataset {shown}`: our figures (mean ± std over the seeds that ran) "
               "next to each paper's. The budgets are in the table; the full protocol differences are in "
               f"{results.path.with_suffix('.md').name} and the README.")
    if results.seq_curves:
        st.plotly_chart(figures.seq_curves_figure(results.seq_curves, results.seq_paper_best), width="stretch")
    # What people compare first, on the left; where the figure comes from, on the right.
    rows = [{"model": r["model"], "figure": r["metric"], "ours": r["shown"]["ours"], "paper": r["shown"]["paper"],
             "verdict": r["verdict"], "budget": r["budget"], "time": r["shown"]["time"],
             "source": f"{r['citation']}, {r['source']}"} for r in results.rows]
    st.dataframe(rows, hide_index=True, width="stretch", placeholder="–")


def _pct(value) -> str:
    return "–" if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.2%}"

