"""Every plotly figure of the app. Each function takes arrays and returns a ``go.Figure``;
none reads Streamlit's state."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vqviz.analysis import CodebookStats, PointTable, UsageHistory, drawn_rows

PLAIN = dict(displayModeBar=False)


def palette(n: int) -> list[str]:
    colours = qualitative.D3 if n <= 10 else qualitative.Dark24 + qualitative.Light24
    return [colours[i % len(colours)] for i in range(n)]


#: The name of the map's invisible grid trace, whose points catch clicks on empty spots.
SPOTS = "spots"


def map_figure(xy: np.ndarray, table: PointTable, classes: tuple[str, ...], colour: str, picked: np.ndarray = (),
               height: int = 620, limit: int | None = None, background: np.ndarray | None = None,
               spots: int = 0, hover: np.ndarray | None = None) -> tuple[go.Figure, list[np.ndarray | None]]:
    """A lean WebGL scatter of the (N, 2) map, drawing the rows :func:`vqviz.analysis.drawn_rows` picks.

    Coordinates are float32 typed arrays, and no point carries customdata: the returned
    list gives, for each trace, the table rows of its points in order (None for a trace
    that cannot be selected), which is what turns a selection's (curve, point index)
    back into rows (:func:`vqviz.analysis.map_rows`). The figure depends only on the map
    and the colouring, so it stays the same while the selection changes. ``picked`` rows
    (the mixer's three) are ringed in a last trace. ``background`` (M, 2), if given, is
    drawn first in grey, never selected: e.g. the train map under test points placed on it.
    ``spots`` > 0 adds, last, an invisible ``spots`` x ``spots`` grid over the map (see :func:`spot_of`):
    plotly reports clicks on points only, so a click on an empty part of the map picks a grid point.
    ``hover`` (N,) strings, if given, are shown under each point's name when it is hovered (the
    image as text, :func:`vqviz.images.shade_text`: a hover label draws no ``<img>``).
    """
    rows = drawn_rows(len(xy), picked, limit=limit)
    n = len(rows)
    pos = np.asarray(xy, dtype=np.float32)[rows]
    labels = table.labels[rows]
    clusters = table.clusters[rows] if table.has_clusters else None
    size = 7 if n < 3000 else 4 if n < 20000 else 2.5
    fig, traces = go.Figure(), []
    if background is not None:
        shown = np.asarray(background, dtype=np.float32)[drawn_rows(len(background), limit=limit)]
        fig.add_trace(go.Scattergl(x=shown[:, 0], y=shown[:, 1], mode="markers", name="train map",
                                   hoverinfo="skip", marker={"size": max(size - 2, 2), "color": "#c8c8c8",
                                                             "opacity": 0.5}))
        traces.append(None)
    base = 0.3 if len(picked) else 0.85

    def add(mask, name, marker, **kw):
        if hover is not None:
            kw.update(hovertext=np.asarray(hover, dtype=object)[rows[mask]],
                      hovertemplate="<b>%{fullData.name}</b><br>%{hovertext}<extra></extra>")
        else:
            kw.update(hovertemplate="<b>%{fullData.name}</b><extra></extra>")
        fig.add_trace(go.Scattergl(x=pos[mask, 0], y=pos[mask, 1], mode="markers", name=name,
                                   marker={"size": size, "opacity": base, **marker}, **kw))
        traces.append(rows[mask])

    if colour in ("label", "predicted"):
        values = labels if colour == "label" else table.cluster_labels[clusters]
        colours = palette(len(classes))
        for c in np.unique(values):
            name = classes[c] if 0 <= c < len(classes) else str(c)
            add(values == c, name if colour == "label" else f"→ {name}", dict(color=colours[c % len(colours)]))
    elif colour == "correct":
        right = table.cluster_labels[clusters] == labels
        add(right, "right", dict(color="#9ab3c9"))
        add(~right, "wrong", dict(color="#d55e00", size=size + 2))
    elif colour == "cluster":
        # numbers on a stepwise colour scale: 70,000 colour strings would take seconds to validate
        colours = palette(len(table.cluster_labels))
        steps = [[(i + j) / len(colours), c] for i, c in enumerate(colours) for j in (0, 1)]
        add(np.ones(n, bool), "clusters", dict(color=(clusters % len(colours)).astype(np.float32) + 0.5,
                                               colorscale=steps, cmin=0, cmax=len(colours)), showlegend=False)
    else:
        # 0 (a hard assignment) to ln K (uniform over the K codewords), whatever the model
        add(np.ones(n, bool), "entropy", dict(color=table.entropy[rows].astype(np.float32), colorscale="Viridis",
                                              cmin=0, cmax=max(table.max_entropy, 1e-6),
                                              colorbar=dict(title="nats", thickness=12)), showlegend=False)
    if len(picked):
        at = np.searchsorted(rows, np.asarray(picked, dtype=np.int64))
        add(np.isin(np.arange(n), at), "picked", dict(symbol="circle-open", color="#d62728", size=size + 10,
                                                      line=dict(width=2.5), opacity=1), showlegend=False)
    if spots:
        everything = pos if background is None else np.concatenate([pos, np.asarray(background, np.float32)])
        lo, hi = everything.min(0), everything.max(0)
        lo, hi = lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo)
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], spots, dtype=np.float32),
                             np.linspace(lo[1], hi[1], spots, dtype=np.float32))
        # opacity 0 hides the points but keeps their clicks; hoverinfo "none" keeps the events, shows no label
        hidden = dict(marker=dict(opacity=0))
        fig.add_trace(go.Scattergl(x=gx.ravel(), y=gy.ravel(), mode="markers", name=SPOTS, hoverinfo="none",
                                   showlegend=False, marker=dict(size=size, opacity=0, color="#000"),
                                   selected=hidden, unselected=hidden))
        traces.append(None)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), uirevision="map",
                      legend=dict(orientation="h", yanchor="top", y=0, x=0, itemsizing="constant"),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      hoverlabel=dict(bgcolor="white", font=dict(family="DejaVu Sans Mono, Menlo, Consolas, monospace")
                                      if hover is not None else None))
    return fig, traces


def spot_of(fig: go.Figure, selection: dict | None) -> tuple[float, float] | None:
    """The map position of a click on the figure's grid of :data:`SPOTS` (an empty spot of the map),
    or None when the selection is anything else (a point, several points, a box, a lasso)."""
    selection = selection or {}
    points = selection.get("points", [])
    if len(points) != 1 or selection.get("box") or selection.get("lasso"):
        return None
    curve, index = points[0].get("curve_number"), points[0].get("point_index", points[0].get("point_number"))
    if not isinstance(curve, int) or not 0 <= curve < len(fig.data) or fig.data[curve].name != SPOTS \
            or index is None or not 0 <= int(index) < len(fig.data[curve].x):
        return None
    trace = fig.data[curve]
    return float(trace.x[int(index)]), float(trace.y[int(index)])


def with_marks(fig: go.Figure, traces: list, placed: np.ndarray | None = None, names: list[str] = (),
               spot: tuple[float, float] | None = None) -> tuple[go.Figure, list]:
    """A copy of the map with the user's own images (``placed`` (M, 2), named ``names``) as stars and a
    decoded ``spot`` as a cross, on top; neither can be selected (their traces' rows are None)."""
    fig, traces = go.Figure(fig), list(traces)
    if placed is not None and len(placed):
        placed = np.asarray(placed, dtype=np.float32)
        fig.add_trace(go.Scatter(x=placed[:, 0], y=placed[:, 1], mode="markers+text", name="your images",
                                 text=[str(i + 1) for i in range(len(placed))], textposition="top center",
                                 hovertext=list(names), hovertemplate="<b>%{hovertext}</b><extra>your image</extra>",
                                 marker=dict(symbol="star", size=18, color="#ffd60a",
                                             line=dict(width=1.5, color="#222"))))
        traces.append(None)
    if spot is not None:
        fig.add_trace(go.Scatter(x=[spot[0]], y=[spot[1]], mode="markers", name="decoded spot",
                                 hovertemplate="decoded spot<extra></extra>",
                                 marker=dict(symbol="x-thin", size=16, line=dict(width=3, color="#d62728"))))
        traces.append(None)
    return fig, traces


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
