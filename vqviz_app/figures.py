"""Every plotly figure of the app (the charts; the latent map is the map component, :mod:`.mapview`). Each function takes arrays and returns a ``go.Figure``;
none reads Streamlit's state."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vqviz.analysis import CodebookStats, UsageHistory

PLAIN = dict(displayModeBar=False)


def palette(n: int) -> list[str]:
    colours = qualitative.D3 if n <= 10 else qualitative.Dark24 + qualitative.Light24
    return [colours[i % len(colours)] for i in range(n)]


def histogram_figure(counts: np.ndarray, classes: tuple[str, ...], highlight: int = -1) -> go.Figure:
    """Members per true label, the cluster's own label highlighted."""
    colours = ["#1f77b4" if i == highlight else "#b8c7d6" for i in range(len(counts))]
    fig = go.Figure(go.Bar(x=list(classes), y=counts, marker_color=colours, hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_layout(height=150, margin=dict(l=0, r=0, t=4, b=0), xaxis=dict(type="category", tickfont_size=10),
                      yaxis=dict(title="members", title_font_size=10))
    return fig


def k_curve_figure(metrics: dict) -> go.Figure | None:
    """Accuracy against K with P_E as a line and the rule's K marked (the SEQ paper's Fig. 3)."""
    curve = metrics.get("k_curve")
    if not curve or not isinstance(curve, list) or not all(isinstance(p, dict) and "k" in p for p in curve):
        return None
    fig = go.Figure()
    ks = [p["k"] for p in curve]
    for key, name in (("train_accuracy", "quantizer P_Q, train"), ("test_accuracy", "quantizer P_Q, test")):
        if key in curve[0]:
            fig.add_scatter(x=ks, y=[p.get(key) for p in curve], mode="lines+markers", name=name)
    if isinstance(metrics.get("p_e"), (int, float)):
        fig.add_hline(y=metrics["p_e"], line_color="black", annotation_text=f"encoder P_E = {metrics['p_e']:.2%}")
    if "k_rule" in metrics:
        met = metrics.get("k_rule_met") is not False
        fig.add_vline(x=metrics["k_rule"], line_dash="dot",
                      annotation_text=f"rule: K = {metrics['k_rule']}" if met else f"no K met the rule: K = "
                                                                                   f"{metrics['k_rule']}")
    fig.update_layout(xaxis_title="K (clusters)", yaxis_title="accuracy", yaxis_tickformat=".0%", height=360,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def seq_curves_figure(curves: dict[str, dict], paper_best: float | None = None) -> go.Figure:
    """The SEQ paper's Fig. 3 from a benchmark: test accuracy against K for each encoder, its P_E dashed.

    ``curves`` maps an encoder's name to {"k", "test_accuracy", "p_e"}; ``paper_best`` is the
    paper's best accuracy, drawn as a dotted line.
    """
    fig = go.Figure()
    for (name, c), colour in zip(curves.items(), palette(len(curves))):
        fig.add_scatter(x=c["k"], y=c["test_accuracy"], mode="lines+markers", name=f"{name} P_Q",
                        line=dict(color=colour))
        fig.add_scatter(x=[min(c["k"]), max(c["k"])], y=[c["p_e"]] * 2, mode="lines", name=f"{name} P_E",
                        line=dict(color=colour, dash="dash"))
    if paper_best is not None:  # a trace, so that its label is in the legend, where no curve crosses it
        ks = [k for c in curves.values() for k in c["k"]]
        fig.add_scatter(x=[min(ks), max(ks)] if ks else [0, 1], y=[paper_best] * 2, mode="lines",
                        name=f"paper, best: {paper_best:.1%}", line=dict(color="black", dash="dot"))
    fig.update_layout(xaxis_title="K (clusters)", yaxis_title="test accuracy", yaxis_tickformat=".1%", height=380,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25),
                      title=dict(text="SEQ, Fig. 3: quantizer accuracy P_Q against K; encoder accuracy P_E dashed",
                                 font=dict(size=14)))
    return fig


def loss_figure(losses: list[tuple[int, str, float]]) -> go.Figure:
    """The training loss of each stage against the step, on a log scale."""
    fig = go.Figure()
    losses = list(losses)  # the training thread appends to it meanwhile
    if losses:
        steps, stages, values = zip(*losses)
        stages, steps, values = np.asarray(stages), np.asarray(steps), np.asarray(values)
        for stage in dict.fromkeys(stages):
            m = stages == stage
            fig.add_scatter(x=steps[m], y=values[m], mode="lines", name=stage)
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="step", yaxis_title="loss",
                      yaxis_type="log", legend=dict(orientation="h", y=1.1))
    return fig


ENTROPY_HEIGHT = 260


def entropy_figure(s: CodebookStats, top: float, colour: str) -> go.Figure:
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
    fig.update_layout(height=ENTROPY_HEIGHT, margin=dict(l=0, r=10, t=24, b=0), bargap=0.05,
                      xaxis=dict(title="entropy (nats)", range=[0, top * 1.04]),
                      yaxis=dict(title="samples", range=[0, tallest * 1.15]))  # room for the labels
    return fig


def usage_figure(s: CodebookStats, peak: int, colour: str) -> go.Figure:
    """Each codebook's counts sorted, largest first; the dead codes shaded, uniform use as a line."""
    k = s.n_codes
    rank = np.arange(1, k + 1)
    fig = go.Figure()
    for i, (order, counts) in enumerate(zip(s.order, s.sorted_counts)):
        name = f"codebook {i}"
        hover = f"codeword %{{customdata}}: %{{y}} {s.counted}<extra>{name if s.n_codebooks > 1 else ''}</extra>"
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
    fig.update_layout(height=ENTROPY_HEIGHT, margin=dict(l=0, r=10, t=24, b=0), bargap=0.1,
                      showlegend=s.n_codebooks > 1, legend=dict(orientation="h", y=1.12),
                      xaxis=dict(title="codeword rank", range=[0.5, k + 0.5]),
                      yaxis=dict(title=s.counted, range=[0, peak * 1.15]))
    return fig


HISTORY_HEIGHT = 300


def codebook_history_figure(h: UsageHistory, colour: str = "#1f77b4") -> go.Figure:
    """Codebook use over training: perplexity (above, K dotted) and dead codes (below) after each
    recorded epoch, one line per codebook. A collapse shows as perplexity falling while dead codes rise."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    x = h.step
    many = h.n_codebooks > 1
    colours = palette(h.n_codebooks) if many else [colour]
    mode = "lines+markers" if len(x) <= 30 else "lines"
    where = [f"{s}, epoch {e}" if e else f"after {s}" for s, e in zip(h.stage, h.epoch)]
    for i in range(h.n_codebooks):
        name = f"codebook {i}" if many else "perplexity"
        fig.add_scatter(x=x, y=h.perplexity[:, i], mode=mode, name=name, legendgroup=name, line_color=colours[i],
                        customdata=where, row=1, col=1,
                        hovertemplate=f"%{{customdata}}: perplexity %{{y:.1f}} of {h.n_codes}<extra>"
                                      f"{name if many else ''}</extra>")
        fig.add_scatter(x=x, y=h.dead_codes[:, i], mode=mode, name=name, legendgroup=name, line_color=colours[i],
                        customdata=where, row=2, col=1, showlegend=False,
                        hovertemplate=f"%{{customdata}}: %{{y}} dead of {h.n_codes}<extra>"
                                      f"{name if many else ''}</extra>")
    fig.add_hline(y=h.n_codes, row=1, col=1, line_dash="dot", line_color="#888",
                  annotation_text=f"K = {h.n_codes}", annotation_position="bottom right")
    fig.update_yaxes(title_text="perplexity", range=[0, h.n_codes * 1.08], row=1, col=1)  # 0 to K: models compare
    most = int(h.dead_codes.max())
    fig.update_yaxes(title_text="dead codes", range=[0, max(most, 1) * 1.15], row=2, col=1,
                     **(dict(dtick=1) if most < 5 else {}))
    # each stage counts its own epochs; a long history keeps plotly's ticks, the place over the whole fit
    ticks = dict(tickvals=x, ticktext=[str(e) if e else s for s, e in zip(h.stage, h.epoch)]) if len(x) <= 20 else {}
    fig.update_xaxes(title_text="epoch", row=2, col=1, **ticks)
    fig.update_layout(height=HISTORY_HEIGHT, margin=dict(l=0, r=10, t=10, b=0), showlegend=many,
                      legend=dict(orientation="h", y=1.12))
    return fig
