"""The app's shared Streamlit pieces: the page guard, the sidebar, loading the sidebar's
choice, the map's projection with a progress bar, and the cluster panel."""

from __future__ import annotations

import gc
import logging
import sys

import numpy as np
import streamlit as st

from vqviz import analysis, data, projection
from vqviz.errors import DataError, VqvizError

from . import cache, catalog, figures, jobs
from .state import COLOURS, SPLITS, Context, Loaded

log = logging.getLogger(__name__)


def error(e: BaseException) -> None:
    """Show an intended error's message (its line breaks kept)."""
    st.error(str(e).replace("\n", "  \n"), icon=":material/error:")


def run_page(render) -> None:
    """Draw the sidebar, then the page ``render(ctx)``; a VqvizError or a bug in either becomes
    a message, never a traceback."""
    try:
        render(sidebar())
    except VqvizError as e:
        error(e)
    except Exception as e:  # a bug: say so in the page, log the traceback on the server
        log.exception("page %s failed", getattr(render, "__module__", render))
        st.error(f"Something went wrong ({type(e).__name__}: {e}). The rest of the app still works; "
                 "the details are in the server's log.", icon=":material/bug_report:")


_modules = [0]


def freeze_new_imports() -> None:
    """After a run that imported modules, move every object alive into the garbage collector's
    permanent generation (``gc.freeze``), so that later collections skip the hundreds of
    thousands of objects the libraries hold for the life of the server.

    Runs only when the count of imported modules grew, so it freezes a bounded set: what the
    imports made, and what was alive beside them then.
    """
    if len(sys.modules) > _modules[0]:
        _modules[0] = len(sys.modules)
        gc.collect()
        gc.freeze()


# ----- the sidebar -----
def _follow_checkpoint(by_path: dict[str, catalog.Entry]) -> None:
    """The checkpoint changed: show the data set it was trained on."""
    entry = by_path.get(st.session_state.get("checkpoint"))
    if entry is not None and entry.offered_dataset:
        st.session_state["dataset"] = entry.offered_dataset


def _follow_dataset(entries: list[catalog.Entry]) -> None:
    """The data set changed: switch to a checkpoint trained on it, if there is one."""
    name = st.session_state.get("dataset")
    current = next((e for e in entries if e.path == st.session_state.get("checkpoint")), None)
    if current is None or current.dataset != name:
        match = next((e for e in entries if e.dataset == name), None)
        if match is not None:
            st.session_state["checkpoint"] = match.path


def sidebar() -> Context:
    """The picker shared by every page: data set, split, checkpoint and colouring."""
    entries = catalog.entries()
    by_path = {e.path: e for e in entries}
    state = st.session_state
    picked = by_path.get(state.pop("_pick", None))  # set by the Models page after training or an upload
    if picked is None and "checkpoint" not in state:  # a session's first run: a link may name the checkpoint
        wanted = st.query_params.get("checkpoint")
        picked = by_path.get(wanted) or next((e for e in entries if e.label == wanted), None)
    if picked is not None:
        state["checkpoint"] = picked.path
        state["dataset"] = picked.offered_dataset or state.get("dataset")
    if state.get("checkpoint") not in by_path:
        usable = [e for e in entries if not e.error]
        default = next((e for e in usable if e.label == catalog.DEFAULT_CHECKPOINT),
                       usable[0] if usable else entries[0] if entries else None)
        state["checkpoint"] = default.path if default else None
        if default is not None and default.offered_dataset:
            state["dataset"] = default.offered_dataset
    names = list(dict.fromkeys([*data.NAMES, *(e.offered_dataset for e in entries if e.offered_dataset)]))
    if state.get("dataset") not in names:
        state["dataset"] = "digits"
    with st.sidebar:
        dataset = st.selectbox("Data set", names, key="dataset", on_change=_follow_dataset, args=(entries,))
        split = st.segmented_control("Split", list(SPLITS), key="split", default="test", required=True,
                                     width="stretch")
        entry = None
        if entries:
            path = st.selectbox("Model checkpoint", list(by_path), key="checkpoint",
                                format_func=lambda p: catalog.label_of(by_path[p], dataset),
                                on_change=_follow_checkpoint, args=(by_path,))
            entry = by_path[path]
            (st.warning if entry.error else st.caption)(catalog.caption_of(entry))
        else:
            st.caption("No checkpoints found.")
        colours = _colour_options(entry)
        if state.get("colour") not in colours:
            state["colour"] = "label"
        colour = st.radio("Colour the map by", colours, key="colour", format_func=COLOURS.get)
    return Context(dataset, split, entry, colour)


def _colour_options(entry: catalog.Entry | None) -> list[str]:
    if entry is None or entry.error:
        return ["label"]
    return list(COLOURS) if entry.has_codebook else ["label"]


# ----- loading the sidebar's choice -----
def loaded(ctx: Context, need_clusters: bool = False) -> Loaded:
    """Load the picked checkpoint and split, or show why not and stop the page."""
    if ctx.entry is None:
        st.info("No checkpoint yet. Train one on the **Models** page, or upload one there.")
        st.stop()
    if ctx.entry.error:
        st.warning(f"**{ctx.entry.label}** cannot be used: {ctx.entry.error}. Pick another checkpoint in the "
                   "sidebar, or remove this one on the **Models** page.", icon=":material/block:")
        st.stop()
    try:
        ckpt = cache.checkpoint(ctx.entry.path, ctx.entry.stamp)
        ds = cache.dataset(ctx.dataset, ctx.split)
        analysis.check_inputs(ckpt.model, ctx.dataset, ds.shape, ckpt.dataset)
        table = cache.point_table(ctx.entry.path, ctx.entry.stamp, ctx.dataset, ctx.split)
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
    cache.dataset.clear()
    st.rerun()


def decoder_warning(view: Loaded) -> None:
    """Warn beside decoded images when the checkpoint recorded a degenerate decoder."""
    message = view.decoder_warning
    if message is not None:
        st.warning(message, icon=":material/warning:")


# ----- the map -----
#: How long a page waits for a map computed in the background before it shows PCA's meanwhile.
MAP_WAIT_S = 0.5


def map_pending(view: Loaded, method: str, params: dict) -> bool:
    """Start the split's map by ``method`` in the background, wait up to :data:`MAP_WAIT_S` for it,
    and say whether it is still being computed."""
    table = view.table
    if shipped_map(view, method, params) is not None:
        return False
    future, _ = jobs.projection_map(view.ckpt.meta["weights"]["sha256"], view.data.name, view.data.split,
                                    table.latents, table.labels, method, params)
    jobs.ready(future, MAP_WAIT_S)
    return not future.done()


def shipped_map(view: Loaded, method: str, params: dict) -> np.ndarray | None:
    """The split's map by ``method`` if the checkpoint carries it in its ``maps/`` folder
    (:func:`vqviz.projection.store_beside`), else None."""
    return projection.read_beside(view.entry.path, len(view.table.latents), method,
                                  checkpoint_sha=view.ckpt.meta["weights"]["sha256"], dataset=view.data.name,
                                  split=view.data.split, **params)


def map_or_meanwhile(view: Loaded, method: str, params: dict, wait: float = MAP_WAIT_S) -> tuple[np.ndarray, str]:
    """The split's map by ``method``, or, if the background has not computed it within ``wait``
    seconds, its PCA map (instant) with the computation's progress above it. Returns the (N, 2) map
    and the method it is by."""
    table = view.table
    sha = view.ckpt.meta["weights"]["sha256"]
    shipped = shipped_map(view, method, params)
    if shipped is not None:
        return shipped, method
    future, progress = jobs.projection_map(sha, view.data.name, view.data.split, table.latents, table.labels,
                                           method, params)
    xy = jobs.ready(future, wait)
    if isinstance(xy, dict):  # the method failed: say why, and show PCA's map
        st.error(f"The {projection.METHODS.get(method, method)} map cannot be made: {xy.get('error')}")
    elif xy is not None:
        return xy, method
    if method != "pca" and xy is None:
        note = " (UMAP's first run also compiles, about half a minute)" if method == "umap" else ""
        st.progress(progress.fraction, text=f"{projection.METHODS.get(method, method)} map, computed in the "
                                            f"background: {progress.message}{note}. PCA's map meanwhile.")
    return projection.cached_project(table.latents, "pca", checkpoint_sha=sha, dataset=view.data.name,
                                     split=view.data.split, labels=table.labels), "pca"


def train_map_pending(view: Loaded, method: str, params: dict) -> bool:
    """Start the train split's map and the placing of this split's points on it in the background, wait
    up to :data:`MAP_WAIT_S`, and say whether they are still being computed."""
    _, placed, _ = _train_map(view, method, params)
    jobs.ready(placed, MAP_WAIT_S)
    return not placed.done()


def _train_map(view: Loaded, method: str, params: dict):
    entry = view.entry
    train = cache.point_table(entry.path, entry.stamp, view.data.name, "train")
    return jobs.train_map(view.ckpt.meta["weights"]["sha256"], view.data.name, view.data.split, train.latents,
                          train.labels, view.table.latents, method, params)


def placed_on_train(view: Loaded, method: str, params: dict):
    """The split's points placed on the train split's map (openTSNE's or UMAP's ``transform``), that map,
    and its fitted Projector; or None, with the computation's progress shown, while they are computed
    in the background.

    The train map is fitted once per model, method and parameters and kept in memory; each split
    placed on it afterwards costs only the placing. The placed points (N, 2) and the train map
    (N_train, 2) are in the same coordinates.
    """
    fitted, placed, progress = _train_map(view, method, params)
    xy, model = jobs.ready(placed), jobs.ready(fitted)
    for out in (model, xy):
        if isinstance(out, dict):
            raise VqvizError(f"the train map cannot be made: {out.get('error')}")
    if xy is None:
        message = progress.message
        st.progress(progress.fraction, text=message if message.startswith("placing") else
                    f"The train map, computed in the background: {message}. This split's PCA map meanwhile.")
        return None
    return xy, model.embedding_, model


def append_clicks(widget_key: str, state_key: str, traces: list, keep: int = 3):
    """An ``on_select`` callback that adds the clicked rows to the list ``state_key``, keeping the last ``keep``."""

    def callback() -> None:
        rows = analysis.selected_rows(st.session_state.get(widget_key, {}).get("selection", {}), traces)
        if len(rows):
            st.session_state[state_key] = [*st.session_state.get(state_key, []), *rows.tolist()][-keep:]

    return callback


# ----- the cluster panel -----
def show_group(view: analysis.GroupView, picture: bytes, classes: tuple[str, ...], histogram=None) -> None:
    """The panel of one cluster or selection: one picture (centroid, then members), purity and label
    histogram (``histogram``: its figure, made beforehand)."""
    label = classes[view.label] if 0 <= view.label < len(classes) else "none"
    st.markdown(f"**{view.title}** · label **{label}** · {len(view.rows)} members in this split")
    st.image(picture, caption=f"decoded centroid · {len(view.members)} of its members")
    left, right = st.columns([2, 5], vertical_alignment="center")
    left.metric("Purity", "–" if np.isnan(view.purity) else f"{view.purity:.0%}")
    if histogram is None:
        histogram = figures.histogram_figure(view.histogram, classes, view.label)
    right.plotly_chart(histogram, width="stretch", config=figures.PLAIN)
