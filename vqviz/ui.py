"""Shared Streamlit helpers of the app (``app.py`` and ``app_pages/``): the sidebar,
cached loading, error display, figures, the cluster panel and training jobs.

Pages call these and ``vqviz``; the computing itself lives in ``explore``,
``projection``, ``metrics`` and ``workflow``. Caches are keyed by the checkpoint's
path and the mtime of its ``meta.json``, so a re-saved checkpoint is reloaded.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from . import checkpoints, data, explore, models, nets, projection, workflow
from .errors import DataError, VqvizError
from .images import grid
from .train import StopTraining, TrainConfig

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DEFAULT_CHECKPOINT = "seq-digits-cae4"
#: What the map can be coloured by; all but "label" need a model with a quantizer.
COLOURS = {"label": "True label", "cluster": "Cluster", "predicted": "Predicted label",
           "correct": "Right / wrong", "entropy": "Assignment entropy"}
#: Config fields that hold the number of clusters or codewords, in the families that have one.
K_FIELDS = ("k", "codebook_size", "n_codes", "n_clusters", "n_components")
#: The splits the sidebar offers; "all" is train then test (the whole 70,000 of MNIST).
SPLITS = ("test", "train", "all")
UPLOAD_LIMIT_MB = 200


# ----- where checkpoints are -----
def user_dir() -> Path:
    """Where the app writes trained and uploaded checkpoints: ``$XDG_DATA_HOME/vqviz/checkpoints``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "vqviz" / "checkpoints"


def extra_dirs() -> list[Path]:
    """More checkpoint folders, separated like PATH: ``VQVIZ_CHECKPOINTS=~/runs:/data/models``."""
    return [Path(p).expanduser() for p in os.environ.get("VQVIZ_CHECKPOINTS", "").split(os.pathsep) if p]


@dataclass(frozen=True)
class Entry:
    """One checkpoint folder as the picker lists it; ``error`` says why its meta.json is unreadable."""

    path: str
    label: str
    stamp: int
    meta: dict | None = field(default=None, hash=False, compare=False)
    error: str = ""

    @property
    def dataset(self) -> str:
        return (self.meta or {}).get("dataset") or ""

    @property
    def family(self) -> str:
        return (self.meta or {}).get("model", "?")


@st.cache_data(max_entries=512, show_spinner=False)
def _read_meta(path: str, stamp: int) -> tuple[dict | None, str]:
    try:
        return checkpoints.read_meta(path), ""
    except VqvizError as e:
        return None, str(e)


def _stamp(path: Path) -> int:
    try:
        return (path / checkpoints.META).stat().st_mtime_ns
    except OSError:
        return 0


def checkpoint_entries() -> list[Entry]:
    """Checkpoints under ``checkpoints/``, ``VQVIZ_CHECKPOINTS`` and :func:`user_dir`, bundled first."""
    out, seen = [], set()
    for root in (BUNDLED_DIR, *extra_dirs(), user_dir()):
        for path in checkpoints.find(root):
            if str(path) in seen:
                continue
            seen.add(str(path))
            inside = root in (BUNDLED_DIR, user_dir()) and path != root
            label = str(path.relative_to(root)) if inside else str(path)
            stamp = _stamp(path)
            meta, error = _read_meta(str(path), stamp)
            out.append(Entry(str(path), label, stamp, meta, error))
    return out


# ----- cached loading -----
@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint...")
def load_checkpoint(path: str, stamp: int) -> checkpoints.Checkpoint:
    return checkpoints.load(path)


@st.cache_resource(max_entries=6, show_spinner="Loading the data...")
def load_data(name: str, split: str) -> data.Dataset:
    """One split of a data set, never downloaded here (see :func:`download`); "all" joins both."""
    if split != "all":
        return data.load(name, split, download=False)
    parts = [data.load(name, s, download=False) for s in data.SPLITS]
    images, labels = np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    images.flags.writeable = labels.flags.writeable = False
    return data.Dataset(parts[0].name, "all", images, labels, parts[0].classes)


@st.cache_resource(max_entries=6, show_spinner="Encoding the split...")
def _point_table(path: str, stamp: int, dataset: str, split: str) -> explore.PointTable:
    ds = load_data(dataset, split)
    return explore.point_table(load_checkpoint(path, stamp).model, ds.images, ds.labels, ds.n_classes)


@dataclass
class Loaded:
    """The sidebar's choice, loaded: checkpoint, data split and the split's point table."""

    entry: Entry
    ckpt: checkpoints.Checkpoint
    data: data.Dataset
    table: explore.PointTable

    @property
    def model(self):
        return self.ckpt.model

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes


@dataclass
class Context:
    """What the sidebar picked, for every page of this run."""

    dataset: str
    split: str
    entry: Entry | None
    colour: str


def context() -> Context:
    return st.session_state["_context"]


def loaded(need_clusters: bool = False) -> Loaded:
    """Load the picked checkpoint and split, or show why not and stop the page."""
    ctx = context()
    if ctx.entry is None:
        st.info("No checkpoint yet. Train one on the **Models** page, or upload one there.")
        st.stop()
    try:
        ckpt = load_checkpoint(ctx.entry.path, ctx.entry.stamp)
        ds = load_data(ctx.dataset, ctx.split)
        explore.check_inputs(ckpt.model, ctx.dataset, ds.shape, ckpt.dataset)
        table = _point_table(ctx.entry.path, ctx.entry.stamp, ctx.dataset, ctx.split)
    except DataError as e:
        error(e)
        if ctx.dataset in data.NAMES and st.button(f"Download {ctx.dataset}", icon=":material/download:"):
            download(ctx.dataset)
        st.stop()
    except VqvizError as e:
        error(e)
        st.stop()
    if need_clusters and not table.has_clusters:
        st.info(f"**{ctx.entry.label}** (family {ckpt.name}) has no quantizer, so no clusters to show. Pick a "
                "model with a quantizer or clusters, such as SEQ or a VQ-VAE, in the sidebar.")
        st.stop()
    return Loaded(ctx.entry, ckpt, ds, table)


def download(name: str) -> None:
    bar = st.progress(0.0, text=f"Downloading {name}...")

    def report(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0, text=f"Downloading {name}: {done / 2**20:.1f} MB")

    for split in data.SPLITS:
        data.load(name, split, progress=report)
    load_data.clear()
    st.rerun()


def error(e: BaseException) -> None:
    """Show an intended error's message (its line breaks kept)."""
    st.error(str(e).replace("\n", "  \n"), icon=":material/error:")


def page(fn):
    """Decorator for a page function: a VqvizError, or a bug, becomes a message, never a traceback."""

    @functools.wraps(fn)
    def run():
        try:
            fn()
        except VqvizError as e:
            error(e)
        except Exception as e:  # a bug: say so in the page, log the traceback on the server
            log.exception("page %s failed", fn.__name__)
            st.error(f"Something went wrong ({type(e).__name__}: {e}). The rest of the app still works; "
                     "the details are in the server's log.", icon=":material/bug_report:")

    return run


# ----- the sidebar -----
def _follow_checkpoint(by_path: dict[str, Entry]) -> None:
    """The checkpoint changed: show the data set it was trained on."""
    entry = by_path.get(st.session_state.get("checkpoint"))
    if entry is not None and entry.dataset:
        st.session_state["dataset"] = entry.dataset


def _follow_dataset(entries: list[Entry]) -> None:
    """The data set changed: switch to a checkpoint trained on it, if there is one."""
    name = st.session_state.get("dataset")
    current = next((e for e in entries if e.path == st.session_state.get("checkpoint")), None)
    if current is None or current.dataset != name:
        match = next((e for e in entries if e.dataset == name), None)
        if match is not None:
            st.session_state["checkpoint"] = match.path


def sidebar() -> Context:
    """The picker shared by every page: data set, split, checkpoint and colouring."""
    entries = checkpoint_entries()
    by_path = {e.path: e for e in entries}
    state = st.session_state
    picked = by_path.get(state.pop("_pick", None))  # set by the Models page after training or an upload
    if picked is not None:
        state["checkpoint"] = picked.path
        state["dataset"] = picked.dataset or state.get("dataset")
    if state.get("checkpoint") not in by_path:
        default = next((e for e in entries if e.label == DEFAULT_CHECKPOINT), entries[0] if entries else None)
        state["checkpoint"] = default.path if default else None
        if default is not None and default.dataset:
            state["dataset"] = default.dataset
    names = list(dict.fromkeys([*data.NAMES, *(e.dataset for e in entries if e.dataset)]))
    if state.get("dataset") not in names:
        state["dataset"] = "digits"
    with st.sidebar:
        dataset = st.selectbox("Data set", names, key="dataset", on_change=_follow_dataset, args=(entries,))
        split = st.segmented_control("Split", list(SPLITS), key="split", default="test", required=True,
                                     width="stretch")
        entry = None
        if entries:
            path = st.selectbox("Model checkpoint", list(by_path), key="checkpoint",
                                format_func=lambda p: _entry_label(by_path[p], dataset),
                                on_change=_follow_checkpoint, args=(by_path,))
            entry = by_path[path]
            st.caption(_entry_caption(entry))
        else:
            st.caption("No checkpoints found.")
        colours = _colour_options(entry)
        if state.get("colour") not in colours:
            state["colour"] = "label"
        colour = st.radio("Colour the map by", colours, key="colour", format_func=COLOURS.get)
    ctx = Context(dataset, split, entry, colour)
    state["_context"] = ctx
    return ctx


def _entry_label(entry: Entry, dataset: str) -> str:
    if entry.error:
        return f"{entry.label} (unreadable)"
    return entry.label if entry.dataset == dataset else f"{entry.label} ({entry.dataset or '?'})"


def _entry_caption(entry: Entry) -> str:
    if entry.error:
        return "This checkpoint cannot be read."
    meta = entry.meta
    k = meta.get("metrics", {}).get("k") or _k_of(meta.get("config", {}))
    return f"{entry.family} · trained on {entry.dataset or '?'}" + (f" · K = {k}" if k else "")


def _k_of(config: dict):
    return next((config[f] for f in K_FIELDS if config.get(f)), None)


def _colour_options(entry: Entry | None) -> list[str]:
    if entry is None or entry.error:
        return ["label"]
    try:
        clusters = models.get(entry.family).has_quantizer
    except VqvizError:
        clusters = False
    return list(COLOURS) if clusters else ["label"]


# ----- the map -----
#: The most points the map draws: past it, a fixed random sample with the selection on top (see :func:`drawn_rows`).
MAX_DRAWN = 100_000


def projection_of(view: Loaded, method: str, params: dict) -> np.ndarray:
    """The split's 2-D map, from the disk cache or computed with a progress bar.

    Past :data:`projection.MAX_FIT` points the method is fitted on a sample stratified by label
    and places the others, so every row of the table has coordinates.
    """
    slot = st.empty()
    bars = []

    def progress(fraction: float, message: str) -> None:
        if not bars:
            bars.append(slot.progress(0.0))
        fitting = method == "umap" and not message.startswith("placing")
        note = " (UMAP reports no progress while it fits; its first run also compiles, about half a minute)" \
            if fitting else ""
        bars[0].progress(fraction, text=f"{message}{note}")

    table = view.table
    xy = projection.cached_project(table.latents, method, checkpoint_sha=view.ckpt.meta["weights"]["sha256"],
                                   dataset=view.data.name, split=view.data.split, labels=table.labels,
                                   progress=progress, **params)
    slot.empty()
    return xy


@st.cache_resource(max_entries=4, show_spinner=False)
def _train_projector(path: str, stamp: int, dataset: str, method: str, params: tuple,
                     _progress: projection.Progress | None = None) -> projection.Projector:
    """The train split's map as a fitted :class:`projection.Projector`, kept in memory to place points on."""
    table = _point_table(path, stamp, dataset, "train")
    return projection.Projector(method, **dict(params)).fit(table.latents, table.labels, progress=_progress)


@st.cache_data(max_entries=8, show_spinner=False)
def _placed(path: str, stamp: int, dataset: str, split: str, method: str, params: tuple,
            _progress: projection.Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    fitted = _train_projector(path, stamp, dataset, method, params, _progress)
    return fitted.transform(_point_table(path, stamp, dataset, split).latents, _progress), fitted.embedding_


def placed_on_train(view: Loaded, method: str, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The split's points placed on the train split's map (openTSNE's or UMAP's ``transform``), and that map.

    The train map is fitted once per model, method and parameters and kept in memory; each split
    placed on it afterwards costs only the placing. Returns the (N, 2) placed points and the
    (N_train, 2) train map, in the same coordinates.
    """
    slot = st.empty()
    bars = []

    def progress(fraction: float, message: str) -> None:
        if not bars:
            bars.append(slot.progress(0.0))
        bars[0].progress(fraction, text=message if message.startswith("placing") else f"the train map: {message}")

    entry = view.entry
    out = _placed(entry.path, entry.stamp, view.data.name, view.data.split, method, tuple(sorted(params.items())),
                  progress)
    slot.empty()
    return out


def drawn_rows(n: int, selected: np.ndarray = (), members: np.ndarray = (), limit: int | None = None) -> np.ndarray:
    """Sorted rows of an ``n``-point map that its figure draws: every row up to ``limit`` (None: :data:`MAX_DRAWN`).

    Past ``limit``: the selected rows, then cluster members up to half the limit, then a
    random sample of the rest, ``limit`` rows in all. The sample has a fixed seed and is
    cut from its end, so the map holds still from one rerun to the next.
    """
    limit = MAX_DRAWN if limit is None else limit
    if n <= limit:
        return np.arange(n)
    order = np.random.default_rng(0).permutation(n)
    keep = np.zeros(n, bool)
    for group, most in ((selected, limit), (members, limit // 2), (order, limit)):
        wanted = np.zeros(n, bool)
        wanted[np.asarray(group, dtype=np.int64)] = True
        fresh = order[wanted[order] & ~keep[order]]  # in the random order, so that a cut leaves a random sample
        keep[fresh[:max(0, min(most, limit - int(keep.sum())))]] = True
    return np.flatnonzero(keep)


def map_rows(selection: dict | None, xy: np.ndarray) -> np.ndarray:
    """Sorted rows that a map selection picks: the clicked or enclosed points that are drawn
    (:func:`explore.selected_rows`), and every point of ``xy``, drawn or not, inside its boxes and lassos."""
    selection = selection or {}
    hits = [explore.selected_rows(selection)]
    for kind in ("box", "lasso"):
        for shape in selection.get(kind, []):
            xs, ys = np.asarray(shape.get("x", []), float), np.asarray(shape.get("y", []), float)
            if len(xs) < 2 or len(xs) != len(ys):
                continue
            # the rows inside the shape's bounding box: all of a box, the candidates of a lasso
            near = np.flatnonzero((xy[:, 0] >= xs.min()) & (xy[:, 0] <= xs.max())
                                  & (xy[:, 1] >= ys.min()) & (xy[:, 1] <= ys.max()))
            hits.append(near if kind == "box" else near[_inside(xy[near], xs, ys)])
    rows = np.unique(np.concatenate(hits).astype(np.int64))
    return rows[(rows >= 0) & (rows < len(xy))]


def _inside(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(M,) whether each of (M, 2) ``points`` lies in the polygon of vertices (xs, ys), by the even-odd rule."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    x0, y0 = xs[-1], ys[-1]
    for x1, y1 in zip(xs, ys):
        if y0 != y1:  # a horizontal edge crosses no horizontal ray
            crosses = (y1 > y) != (y0 > y)
            inside ^= crosses & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
        x0, y0 = x1, y1
    return inside


def _palette(n: int) -> list[str]:
    colours = qualitative.D3 if n <= 10 else qualitative.Dark24 + qualitative.Light24
    return [colours[i % len(colours)] for i in range(n)]


def map_figure(xy: np.ndarray, view: Loaded, colour: str, selected: np.ndarray = (),
               members: np.ndarray = (), height: int = 620, limit: int | None = None,
               background: np.ndarray | None = None) -> go.Figure:
    """A WebGL scatter of the (N, 2) map, drawing the rows :func:`drawn_rows` picks.

    Every point's customdata is (row, label, cluster), with its row in the full table.
    ``background`` (M, 2), if given, is drawn first in grey, without customdata, so it is
    never selected: e.g. the train map under test points placed on it.
    """
    table, classes = view.table, view.classes
    rows = drawn_rows(len(xy), selected, members, limit)
    n = len(rows)
    pos, labels = xy[rows], table.labels[rows]
    clusters = table.clusters[rows] if table.has_clusters else np.full(n, -1)
    custom = np.stack([rows, labels, clusters], 1)
    size = 7 if n < 3000 else 4 if n < 20000 else 2.5
    hover = ("<b>%{fullData.name}</b><br>sample %{customdata[0]} · label %{customdata[1]}"
             + (" · cluster %{customdata[2]}" if table.has_clusters else "") + "<extra></extra>")
    fig = go.Figure()
    if background is not None:
        shown = background[drawn_rows(len(background), limit=limit)]
        fig.add_trace(go.Scattergl(x=shown[:, 0], y=shown[:, 1], mode="markers", name="train map",
                                   hoverinfo="skip", marker={"size": max(size - 2, 2), "color": "#c8c8c8",
                                                             "opacity": 0.5}))

    # With a selection, the other points fade so that the highlighted ones stand out.
    base = 0.3 if len(members) or len(selected) else 0.85

    def add(mask, name, marker, **kw):
        fig.add_trace(go.Scattergl(x=pos[mask, 0], y=pos[mask, 1], mode="markers", name=name, customdata=custom[mask],
                                   hovertemplate=hover, marker={"size": size, "opacity": base, **marker}, **kw))

    def among(picked) -> np.ndarray:
        """(n,) whether each drawn row is one of ``picked``."""
        flag = np.zeros(len(xy), bool)
        flag[np.asarray(picked, dtype=np.int64)] = True
        return flag[rows]

    if colour in ("label", "predicted"):
        values = labels if colour == "label" else table.cluster_labels[clusters]
        palette = _palette(len(classes))
        for c in np.unique(values):
            name = classes[c] if 0 <= c < len(classes) else str(c)
            add(values == c, name if colour == "label" else f"→ {name}", dict(color=palette[c % len(palette)]))
    elif colour == "correct":
        right = table.cluster_labels[clusters] == labels
        add(right, "right", dict(color="#9ab3c9"))
        add(~right, "wrong", dict(color="#d55e00", size=size + 2))
    elif colour == "cluster":
        # numbers on a stepwise colour scale: 70,000 colour strings would take seconds to validate
        palette = _palette(len(table.cluster_labels))
        steps = [[(i + j) / len(palette), c] for i, c in enumerate(palette) for j in (0, 1)]
        add(np.ones(n, bool), "clusters", dict(color=(clusters % len(palette)).astype(np.float32) + 0.5,
                                               colorscale=steps, cmin=0, cmax=len(palette)), showlegend=False)
    else:
        # 0 (a hard assignment) to ln K (uniform over the K codewords), whatever the model
        add(np.ones(n, bool), "entropy", dict(color=table.entropy[rows].astype(np.float32), colorscale="Viridis",
                                              cmin=0, cmax=max(table.max_entropy, 1e-6),
                                              colorbar=dict(title="nats", thickness=12)), showlegend=False)
    ring = dict(symbol="circle-open", color="#222", line=dict(width=1.5 if n < 3000 else 1))
    if len(members):
        m = among(members)
        add(m, "cluster members", dict(ring, size=size + 3, opacity=0.9 if m.sum() < 300 else 0.5),
            showlegend=False)
    if len(selected):
        add(among(selected), "selected", dict(ring, size=size + 10, color="#d62728", line=dict(width=2.5), opacity=1),
            showlegend=False)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), uirevision="map",
                      legend=dict(orientation="h", yanchor="top", y=0, x=0, itemsizing="constant"),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      hoverlabel=dict(bgcolor="white"))
    return fig


def keep_selection(widget_key: str, state_key: str):
    """An ``on_select`` callback that copies a chart's selection to ``state_key``.

    The map's spec changes when its highlight does, which gives the chart a new
    widget identity and an empty selection; the copy outlives that.
    """

    def callback() -> None:
        selection = st.session_state.get(widget_key, {}).get("selection", {})
        # the boxes and lassos too: on a map that draws a sample, they pick the points it leaves out
        st.session_state[state_key] = {k: list(selection.get(k, [])) for k in ("points", "box", "lasso")}

    return callback


def append_clicks(widget_key: str, state_key: str, keep: int = 3):
    """An ``on_select`` callback that adds the clicked rows to the list ``state_key``, keeping the last ``keep``."""

    def callback() -> None:
        rows = explore.selected_rows(st.session_state.get(widget_key, {}).get("selection", {}))
        if len(rows):
            st.session_state[state_key] = [*st.session_state.get(state_key, []), *rows.tolist()][-keep:]

    return callback


def scale_for(height: int, target: int) -> int:
    return max(1, target // max(height, 1))


def show_group(view: explore.GroupView, classes: tuple[str, ...]) -> None:
    """The panel of one cluster or selection: centroid, purity, members and label histogram."""
    h = view.centroid.shape[-2]
    label = classes[view.label] if 0 <= view.label < len(classes) else "none"
    st.markdown(f"**{view.title}** · label **{label}** · {len(view.rows)} members in this split")
    left, right = st.columns([1, 2], vertical_alignment="top")
    left.image(grid(view.centroid[None], pad=0, scale=scale_for(h, 112)), caption="decoded centroid")
    left.metric("Purity", "–" if np.isnan(view.purity) else f"{view.purity:.0%}")
    if len(view.members):
        right.image(grid(view.members, ncol=6, pad=1, scale=scale_for(h, 48)),
                    caption=f"{len(view.members)} of its members", width="stretch")
    right.plotly_chart(histogram_figure(view.histogram, classes, view.label), width="stretch",
                       config={"displayModeBar": False})


def histogram_figure(counts: np.ndarray, classes: tuple[str, ...], highlight: int = -1) -> go.Figure:
    colours = ["#1f77b4" if i == highlight else "#b8c7d6" for i in range(len(counts))]
    fig = go.Figure(go.Bar(x=list(classes), y=counts, marker_color=colours, hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_layout(height=150, margin=dict(l=0, r=0, t=4, b=0), xaxis=dict(type="category", tickfont_size=10),
                      yaxis=dict(title="members", title_font_size=10))
    return fig


def k_curve_figure(metrics: dict) -> go.Figure | None:
    """Accuracy against K with P_E as a line and the rule's K marked (the SEQ paper's Fig. 3)."""
    curve = metrics.get("k_curve")
    if not curve:
        return None
    fig = go.Figure()
    ks = [p["k"] for p in curve]
    for key, name in (("train_accuracy", "quantizer P_Q, train"), ("test_accuracy", "quantizer P_Q, test")):
        if key in curve[0]:
            fig.add_scatter(x=ks, y=[p[key] for p in curve], mode="lines+markers", name=name)
    if "p_e" in metrics:
        fig.add_hline(y=metrics["p_e"], line_color="black", annotation_text=f"encoder P_E = {metrics['p_e']:.2%}")
    if "k_rule" in metrics:
        fig.add_vline(x=metrics["k_rule"], line_dash="dot", annotation_text=f"rule: K = {metrics['k_rule']}")
    fig.update_layout(xaxis_title="K (clusters)", yaxis_title="accuracy", yaxis_tickformat=".0%", height=360,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def bench_results(dataset: str) -> dict | None:
    """The published ``bench repro`` results of ``dataset``, read again only when the file changes."""
    from .bench import repro

    path = Path(repro.RESULTS) / f"{dataset}.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _bench_results(dataset, str(path.parent), stamp)


@st.cache_data(max_entries=8, show_spinner=False)
def _bench_results(dataset: str, folder: str, stamp: int) -> dict | None:
    from .bench import repro

    return repro.read_results(dataset, folder)


def seq_curves_figure(curves: dict[str, dict], paper_best: float | None = None) -> go.Figure:
    """The SEQ paper's Fig. 3 from a benchmark: test accuracy against K for each encoder, its P_E dashed.

    ``curves`` maps an encoder's name to {"k", "test_accuracy", "p_e"}; ``paper_best`` is the
    paper's best accuracy, drawn as a dotted line.
    """
    fig = go.Figure()
    palette = _palette(len(curves))
    for (name, c), colour in zip(curves.items(), palette):
        fig.add_scatter(x=c["k"], y=c["test_accuracy"], mode="lines+markers", name=f"{name} P_Q",
                        line=dict(color=colour))
        fig.add_scatter(x=[min(c["k"]), max(c["k"])], y=[c["p_e"]] * 2, mode="lines", name=f"{name} P_E",
                        line=dict(color=colour, dash="dash"))
    if paper_best is not None:
        fig.add_hline(y=paper_best, line_dash="dot", line_color="black",
                      annotation_text=f"paper, best: {paper_best:.1%}")
    fig.update_layout(xaxis_title="K (clusters)", yaxis_title="test accuracy", yaxis_tickformat=".1%", height=380,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25),
                      title=dict(text="SEQ, Fig. 3: quantizer accuracy P_Q against K; encoder accuracy P_E dashed",
                                 font=dict(size=14)))
    return fig


# ----- cached computations for the pages -----
@st.cache_resource(max_entries=8, show_spinner="Decoding the centroids...")
def centroids(path: str, stamp: int, dataset: str, split: str) -> np.ndarray:
    return explore.centroid_images(load_checkpoint(path, stamp).model, _point_table(path, stamp, dataset, split))


@st.cache_data(max_entries=64, show_spinner=False)
def downstream(path: str, stamp: int, dataset: str) -> dict:
    """Downstream scores of one checkpoint on ``dataset``, or {"error": message}."""
    try:
        model = load_checkpoint(path, stamp).model
        train, test = load_data(dataset, "train"), load_data(dataset, "test")
        explore.check_inputs(model, dataset, test.shape)
        return explore.downstream_scores(model, train, test)
    except VqvizError as e:
        return {"error": str(e)}


# ----- training from the browser -----
def train_fields(family: str) -> dict[str, object]:
    """The defaults of the settings the Models page asks for, by the family's config field."""
    cls = models.get(family).Config
    out = {}
    for f in fields(cls):
        if f.name in ("encoder", "latent_dim"):
            out[f.name] = (f.name, f.default)
        elif f.name in K_FIELDS and "k" not in out:
            out["k"] = (f.name, f.default)
    return out


def encoder_options(default: str) -> list[str]:
    return (["auto"] if default == "auto" else []) + list(nets.ARCHITECTURES)


class TrainingJob:
    """One training run in a background thread, so that the page stays live and can stop it.

    The page polls ``fraction``, ``message`` and ``losses``; :meth:`stop` makes the
    next step raise :class:`StopTraining`. ``state`` ends as "done", "stopped" or
    "failed" (with ``error``); a stopped or failed run writes no checkpoint.
    """

    def __init__(self, family: str, dataset: str, out: Path, train_config: TrainConfig, config: dict):
        self.family, self.dataset, self.out = family, dataset, out
        self.state, self.error, self.path = "running", "", None
        self.announced = False  # whether the page has shown the end of the run
        self.fraction, self.message = 0.0, "starting"
        self.losses: list[tuple[int, str, float]] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._args = (train_config, config)
        self.thread = threading.Thread(target=self._run, name=f"vqviz-train-{family}", daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return time.time() - self.started

    def stop(self) -> None:
        self._stop.set()

    def _check(self) -> None:
        if self._stop.is_set():
            raise StopTraining

    def _step(self, p) -> None:
        self.fraction = p.fraction
        self.message = f"{p.stage} · epoch {p.epoch}/{p.epochs} · loss {p.terms.get('loss', float('nan')):.4g}"
        self.losses.append((len(self.losses), p.stage, float(p.terms.get("loss", np.nan))))
        self._check()

    def _stage(self, p) -> None:
        self.fraction, self.message = p.fraction, f"{p.stage}: {p.message}"
        self._check()

    def _download(self, done: int, total: int) -> None:
        self.message = f"downloading {self.dataset}: {done / 2**20:.1f} MB"

    def _run(self) -> None:
        train_config, config = self._args
        try:
            ckpt = workflow.train(self.family, self.dataset, out=self.out, train_config=train_config,
                                  callbacks={"on_step": self._step, "on_stage": self._stage},
                                  download_progress=self._download, **config)
            self.path, self.state, self.fraction = ckpt.path, "done", 1.0
        except StopTraining:
            self.state = "stopped"
        except VqvizError as e:
            self.state, self.error = "failed", str(e)
        except Exception as e:  # a bug in a model: report it, keep the app alive
            log.exception("training %s failed", self.family)
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"


def start_training(family: str, dataset: str, train_config: TrainConfig, config: dict) -> TrainingJob:
    """Start a run whose checkpoint goes to a new folder under :func:`user_dir`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = user_dir() / f"{workflow.default_out(family, dataset).name}-{stamp}"
    return TrainingJob(family, dataset, out, train_config, config)


def loss_figure(losses: list[tuple[int, str, float]]) -> go.Figure:
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


def number(value) -> float | None:
    """A metric as one number: lists (one value per codebook) by their mean; anything else None."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return float(np.mean(value))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def checkpoint_rows(entries: list[Entry]) -> list[dict]:
    """One row per checkpoint for the Models page's table."""
    rows = []
    for e in entries:
        meta = e.meta or {}
        m, cfg = meta.get("metrics", {}), meta.get("config", {})
        rows.append({
            "checkpoint": e.label, "family": e.family if not e.error else "unreadable",
            "data set": e.dataset, "encoder": str(cfg.get("encoder", "")), "latent": number(cfg.get("latent_dim")),
            "K": number(m.get("k") or _k_of(cfg)), "P_E": number(m.get("encoder_test_accuracy")),
            "P_Q": number(m.get("quantizer_test_accuracy")),
            "recon MSE / pixel": number(m.get("test_recon_mse", m.get("test_mse_per_pixel"))),
            "perplexity": number(m.get("test_perplexity")),
            "train s": number(m.get("train_seconds")), "folder": e.path if not e.error else e.error,
        })
    return rows
