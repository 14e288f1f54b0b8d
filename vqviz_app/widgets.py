"""The app's shared Streamlit pieces: the page guard, the sidebar, loading the sidebar's
choice, the map's projection with a progress bar, and the cluster panel."""

from __future__ import annotations

import dataclasses
import gc
import logging
import sys

import numpy as np
import streamlit as st

from vqviz import analysis, checkpoints, data, projection
from vqviz.data.folder import skipped_notes
from vqviz.errors import ConfigError, DataError, VqvizError

from . import cache, catalog, figures, jobs, uploads
from . import state as state_url
from .state import COLOURS, SPLITS, Context, Loaded

log = logging.getLogger(__name__)


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count and its noun, in the right number: "1 member", "2 members", "1,000 classes" (``many``
    for an irregular plural)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def error(e: BaseException) -> None:
    """Show an intended error's message (its line breaks kept)."""
    st.error(catalog.printable(str(e)).replace("\n", "  \n"), icon=":material/error:")


def run_page(render, page: str = "") -> None:
    """Draw the sidebar, then the page ``render(ctx)``; a VqvizError or a bug in either becomes
    a message, never a traceback. ``page`` is the page's URL path, kept in the view's link."""
    try:
        render(sidebar(page))
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
def _resolve(value, by_path: dict[str, catalog.Entry], labels: dict[str, str]) -> str | None:
    """The checkpoint path a picker value stands for: a path, or a label the browser sent back (it
    sends the text it showed, which Streamlit maps back to the option; a label it no longer lists
    would otherwise come back as the value itself)."""
    if value in by_path:
        return value
    return next((p for p, label in labels.items() if label == value), None)


def _follow_checkpoint(by_path: dict[str, catalog.Entry], labels: dict[str, str]) -> None:
    """The checkpoint changed: show the data set it was trained on."""
    entry = by_path.get(_resolve(st.session_state.get("checkpoint"), by_path, labels))
    if entry is not None and entry.offered_dataset:
        st.session_state["dataset"] = entry.offered_dataset


def _follow_dataset(entries: list[catalog.Entry], labels: dict[str, str]) -> None:
    """The data set changed: switch to a checkpoint that fits it (one trained on it first), if any."""
    name = st.session_state.get("dataset")
    by_path = {e.path: e for e in entries}
    current = by_path.get(_resolve(st.session_state.get("checkpoint"), by_path, labels))
    fit, _ = catalog.for_dataset(entries, name)
    if fit and (current is None or current.dataset != name) and (fit[0].dataset == name or current not in fit):
        st.session_state["checkpoint"] = fit[0].path


def _from_url(entries: list[catalog.Entry], names: list[str]) -> catalog.Entry | None:
    """A session's first run: take the view the link names (data set, split, colouring, projection,
    selection) into the session, and return the checkpoint it names (by path or label), if listed."""
    state = st.session_state
    wanted = state_url.url_get("checkpoint")
    picked = next((e for e in entries if wanted in (e.path, e.label)), None) if wanted else None
    dataset = state_url.url_get("dataset")
    if dataset in names or (dataset or "").startswith("folder:") and picked is not None and picked.dataset == dataset:
        state["dataset"] = dataset
    elif picked is not None and picked.offered_dataset:
        state["dataset"] = picked.offered_dataset
    if state_url.url_get("split") in SPLITS:
        state["split"] = state_url.url_get("split")
    if state_url.url_get("colour") in COLOURS:
        state["colour"] = state_url.url_get("colour")
    if state_url.url_get("projection") in projection.METHODS:
        state["method"] = state_url.url_get("projection")  # the Latent map's projection control
    rows = state_url.url_ids("selection")
    if rows and picked is not None:  # the Latent map's selection, for that checkpoint and split
        state["map_selection"] = {"rows": rows}
        state["map_of"] = (picked.path, state.get("dataset"), state.get("split", "test"))
    return picked


def sidebar(page: str = "") -> Context:
    """The picker shared by every page: data set, split, checkpoint and colouring; the view is
    also written to the URL's query parameters (``page`` names the page, by its URL path)."""
    entries = catalog.entries()
    by_path = {e.path: e for e in entries}
    labels = catalog.picker_labels(entries)
    state = st.session_state
    names = list(dict.fromkeys([*data.NAMES, *(e.offered_dataset for e in entries if e.offered_dataset),
                                *catalog.own_folders(), *state.get("own_datasets", [])]))
    picked = by_path.get(state.pop("_pick", None))  # set by the Models page after training or an upload
    if "_url_read" not in state:  # a session's first run: the link may name the view
        state["_url_read"] = True
        picked = picked or _from_url(entries, names)
        if picked is None and "dataset" in state:  # a link that names only the data set: a checkpoint for it
            _follow_dataset(entries, labels)
    elif picked is not None:
        state["dataset"] = picked.offered_dataset or state.get("dataset")
    if picked is not None:
        state["checkpoint"] = picked.path
    resolved = _resolve(state.get("checkpoint"), by_path, labels)
    if resolved is None:
        usable = [e for e in entries if not e.error]
        default = next((e for e in usable if e.label == catalog.DEFAULT_CHECKPOINT),
                       usable[0] if usable else entries[0] if entries else None)
        resolved = default.path if default else None
        if default is not None and default.offered_dataset and "dataset" not in state:
            state["dataset"] = default.offered_dataset
    state["checkpoint"] = resolved
    if state.get("dataset") not in names:
        state["dataset"] = "digits"
    with st.sidebar:
        shown = catalog.dataset_labels(names)
        dataset = st.selectbox("Data set", names, key="dataset", on_change=_follow_dataset, args=(entries, labels),
                               format_func=shown.get, help="The built-in sets, and your own image folders "
                               "(below: a folder on the server, or a .zip of one).")
        _own_images(entries, labels)
        # The default goes in the state, not in default=: a widget given both a default and a value
        # set through the state (a link's ?split=all) makes Streamlit log a warning with a stack trace.
        state.setdefault("split", "test")
        split = st.segmented_control("Split", list(SPLITS), key="split", required=True, width="stretch")
        entry = None
        if entries:
            entry = _checkpoint_picker(entries, by_path, labels, dataset)
        else:
            st.caption("No checkpoints found.")
        colours = _colour_options(entry)
        if state.get("colour") not in colours:
            state["colour"] = "label"
        colour = st.radio("Colour the map by", colours, key="colour", format_func=COLOURS.get)
    for key, value in (("page", page), ("dataset", dataset), ("split", split),
                       ("checkpoint", entry.label if entry else None), ("colour", colour),
                       ("projection", state.get("method")),
                       ("selection", _selection_for_url())):
        state_url.url_set(key, value)
    with st.sidebar.expander("Share this view", icon=":material/link:"):
        st.code(state_url.share_link(), language=None, wrap_lines=True)
        st.caption("Copy the link (the button at its corner): it opens this page, data set, split, checkpoint, "
                   f"projection, colouring and selection (up to {state_url.URL_MAX_IDS} selected points).")
    return Context(dataset, split, entry, colour)


def _own_images(entries, labels) -> None:
    """A data set of the user's own: a folder on the server, or an uploaded .zip of one."""
    result = st.session_state.get("own_result")
    with st.expander("Your own images", icon=":material/folder_open:", expanded=result is not None):
        st.caption("One sub-folder of images per class (`cats/1.png`, `dogs/7.jpg`, ...); `train/` and `test/` "
                   "sub-folders, if present, are the splits. Images are read as 28x28 grey.")
        st.text_input("Folder on the server (Enter to use it)", key="own_path", placeholder="data/my-images",
                      on_change=_use_folder, args=(entries, labels),
                      help="A path inside a folder this server lets you read, starting with its name: "
                           + ", ".join(f"`{r.label}/`" for r in catalog.roots()) + " (set by `VQVIZ_ROOTS`).")
        st.file_uploader(f"Or a .zip of such a folder (at most {OWN_ZIP_LIMIT_MB} MB)", type=["zip"],
                         key="own_zip", max_upload_size=OWN_ZIP_LIMIT_MB, on_change=_use_zip, args=(entries, labels))
        if result is not None:
            kind, message, skipped = result
            (st.success if kind == "success" else st.error)(catalog.printable(message))
            for note in skipped:
                st.caption(f":orange[{catalog.printable(note)}]")


#: The largest .zip of images the sidebar takes.
OWN_ZIP_LIMIT_MB = 200


def _use_folder(entries, labels) -> None:
    try:
        folder = catalog.check_folder(st.session_state.get("own_path", ""))
    except VqvizError as e:
        st.session_state["own_result"] = ("error", str(e), ())
        return
    _adopt(folder, entries, labels)


def _use_zip(entries, labels) -> None:
    upload = st.session_state.get("own_zip")
    if upload is None:
        return
    checked = []
    try:  # within the uploads' disk quota and file count (VQVIZ_UPLOAD_QUOTA_MB, VQVIZ_MAX_UPLOAD_IMAGES)
        path, skipped = uploads.install_images(
            upload.getvalue(), upload.name,
            check=lambda tmp: checked.append(catalog.check_folder(tmp, shown=upload.name)),
            max_bytes=OWN_ZIP_LIMIT_MB * 2**20)
    except VqvizError as e:
        st.session_state["own_result"] = ("error", f"{upload.name} was refused: {e}", ())
        return
    # the zip's files that were not unpacked, worded as the folder's own notes, which follow
    notes = (*(f"{upload.name}: {n}" for n in skipped_notes(skipped, [])), *checked[0].skipped)
    _adopt(dataclasses.replace(checked[0], name=f"folder:{path.resolve()}", skipped=notes), entries, labels,
           f"{upload.name}, unpacked into `{catalog.shown_path(path)}`")


def _adopt(folder: catalog.Folder, entries, labels, what: str = "") -> None:
    """Pick a checked folder as the data set, and say what it holds."""
    state = st.session_state
    state["own_datasets"] = list(dict.fromkeys([*state.get("own_datasets", []), folder.name]))
    state["dataset"] = folder.name
    _follow_dataset(entries, labels)
    n = len(folder.classes)
    classes = ", ".join(folder.classes[:6]) + (", ..." if n > 6 else "")
    message = (f"**{what or catalog.dataset_label(folder.name)}**: {plural(n, 'class', 'classes')} ({classes}), "
               f"{plural(folder.sizes[0], 'training image')} and {plural(folder.sizes[1], 'test image')}. "
               "It is the data set now.")
    state["own_result"] = ("success", message, folder.skipped)


def _selection_for_url() -> list[int] | None:
    """The Latent map's selected rows, when they are few enough for a link."""
    rows = (st.session_state.get("map_selection") or {}).get("rows") or []
    return rows if len(rows) <= state_url.URL_MAX_IDS else None


def _checkpoint_picker(entries, by_path, labels, dataset: str) -> catalog.Entry:
    """The checkpoints that fit the data set first (those trained on it first of all); the others
    behind a toggle, and the unreadable ones last. The one picked is always listed."""
    state = st.session_state
    fit, others = catalog.for_dataset(entries, dataset)
    readable = [e for e in others if not e.error]
    shown = fit
    if readable and fit:
        if st.toggle(f"Also those for other image shapes ({len(readable)})", key="all_checkpoints"):
            shown = fit + readable
    elif readable:
        shown = readable  # none fits: the page says so, and offers to train one
    shown = shown + [e for e in others if e.error]
    if by_path[state["checkpoint"]] not in shown:
        shown.append(by_path[state["checkpoint"]])
    path = st.selectbox("Model checkpoint", [e.path for e in shown], key="checkpoint",
                        format_func=labels.get, on_change=_follow_checkpoint, args=(by_path, labels),
                        help=f"Folder: `{catalog.shown_path(state['checkpoint'])}`")
    entry = by_path[path]
    if entry.error:
        st.warning(catalog.caption_of(entry))
    else:
        fits = "" if catalog.fits(entry, dataset) else \
            f" · :orange[does not take {catalog.dataset_label(dataset)}'s images]"
        st.caption(catalog.caption_of(entry) + fits)
    return entry


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
        ckpt = catalog.load(ctx.entry)  # a refusal is remembered: the entry is listed as unusable, removable
        ds = cache.dataset(ctx.dataset, ctx.split)
        try:
            analysis.check_inputs(ckpt.model, ctx.dataset, ds.shape, ckpt.dataset)
        except ConfigError as e:
            error(e)
            _offer_training(ctx, ds)
            st.stop()
        table = cache.point_table(ctx.entry.path, ctx.entry.stamp, ctx.dataset, ctx.split)
        if ckpt.dataset and ckpt.dataset != ctx.dataset:
            _trained_elsewhere(ctx, ckpt, ds)
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


def _trained_elsewhere(ctx: Context, ckpt: checkpoints.Checkpoint, ds: data.Dataset) -> None:
    """The picked checkpoint takes these images but learned another data set: its map shows where they
    land in its latent space, and a model that labels its own clusters (SEQ) names the other set's
    classes. Say so, and offer one trained on these images (else to train one now)."""
    here, there = catalog.dataset_label(ctx.dataset), catalog.dataset_label(ckpt.dataset)
    labels = (f" Its clusters' labels are {there}'s classes, so predicted labels and label accuracy say nothing "
              f"about {here}." if ckpt.model.cluster_labels is not None else
              f" Its clusters take the majority label of {here}'s images in them.")
    st.warning(f"**{ctx.entry.label}** was trained on **{there}**, not on {here}. The map shows where these "
               f"images land in its latent space.{labels}", icon=":material/swap_horiz:")
    own = [e for e in catalog.for_dataset(catalog.entries(), ctx.dataset)[0] if e.dataset == ctx.dataset]
    if own:
        st.caption(f"{plural(len(own), 'checkpoint')} trained on {here}: pick one in the sidebar.")
    else:
        _offer_training(ctx, ds, elsewhere=True)


def _offer_training(ctx: Context, ds: data.Dataset, elsewhere: bool = False) -> None:
    """The picked checkpoint does not take this data set's images: point to those that do, or offer
    to train one now with quick settings; when it is trained, it is picked and the page opens."""
    state = st.session_state
    fit, _ = catalog.for_dataset(catalog.entries(), ctx.dataset)
    job = state.get("quick_job")
    if job is not None and job.dataset == ctx.dataset:  # its progress; when it ends, the app reruns on it
        job_list(only=job)
        if job.running:
            return
    train = cache.dataset(ctx.dataset, "train")  # K is chosen for the training split, whichever split is shown
    ks = _quick_sweep(train)
    quick = (f"Train one now: SEQ on LAE-2, each stage until its loss stops improving, within about "
             f"{_duration(jobs.QUICK_BUDGET_S)}; K by the paper's rule among {_listed(ks)} (more settings on the "
             "**Models** page).")
    if elsewhere:
        st.caption(f"None is trained on {catalog.dataset_label(ctx.dataset)} yet. {quick}")
    elif fit:
        st.info(f"{plural(len(fit), 'checkpoint')} take{'s' * (len(fit) == 1)} these images: pick "
                "one in the sidebar, or train another.", icon=":material/arrow_back:")
    else:
        st.info(f"No checkpoint takes the images of {catalog.dataset_label(ctx.dataset)} "
                f"({'x'.join(map(str, ds.shape))}). {quick}", icon=":material/info:")
    if st.button("Train one now", type="primary", icon=":material/play_arrow:", key="train_now"):
        try:
            state["train_job"] = state["quick_job"] = jobs.train_quick(ctx.dataset, len(train), train.n_classes)
        except jobs.JobLimit as e:  # the server's or this session's cap on running jobs
            st.warning(str(e), icon=":material/hourglass_top:")
            return
        st.rerun()


def _quick_sweep(train: data.Dataset) -> tuple[int, ...]:
    """The K values "Train one now" scores on ``train`` (:func:`vqviz_app.jobs.quick_sweep`)."""
    return jobs.quick_sweep(len(train), train.n_classes)


def _listed(values) -> str:
    """1, 2 and 3."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} and {values[-1]}"


def download(name: str) -> None:
    bar = st.progress(0.0, text=f"Downloading {name}...")

    def report(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0, text=f"Downloading {name}: {done / 2**20:.1f} MB")

    for split in data.SPLITS:
        data.load(name, split, progress=report)
    cache.dataset.clear()
    st.rerun()


# ----- training jobs -----
#: Finished jobs listed below the running ones, newest first.
FINISHED_SHOWN = 5


def job_list(only: jobs.TrainingJob | None = None) -> None:
    """The server's training jobs (or ``only`` one), each with its progress, stage, ETA and Stop,
    polled every second while one runs. When the job this session started ends, the app reruns
    with its checkpoint picked."""
    reg = jobs.registry()
    polling = bool(reg.running()) if only is None else only.running

    @st.fragment(run_every=1.0 if polling else None)
    def panel() -> None:
        found = [only] if only is not None else reg.jobs()
        if only is None:
            st.subheader("Jobs")
            if not found:
                st.caption("No training job on this server yet. A job runs on when its tab closes; every tab "
                           "sees it here and can stop it.")
        running = [j for j in found if j.running]
        for job in running + [j for j in found if not j.running][:FINISHED_SHOWN]:
            _job_row(job)
        state = st.session_state
        announced = state.setdefault("_announced", set())
        mine = state.get("train_job")
        ended = [j for j in found if not j.running and j.id not in announced]
        for job in ended:
            announced.add(job.id)
        if mine is not None and mine in ended and mine.state == "done":
            state["_pick"] = str(mine.path)  # the sidebar picks it on the rerun
        if polling and not running or mine in ended:  # something ended: redraw the page, without the timer
            st.rerun()

    panel()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min" + (f" {seconds % 60:02d} s" if seconds % 60 else "")


def _job_row(job: jobs.TrainingJob) -> None:
    mine = st.session_state.get("train_job") is job
    with st.container(border=True):
        where = catalog.dataset_label(job.dataset)
        threads = plural(job.threads, "thread")
        if job.running:
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            left.progress(job.fraction, text=f"**{job.family}** on **{where}** ({threads}): {job.stage} · "
                                             f"{_duration(job.elapsed)}{_time_left(job)}"
                                             + (" · stopping..." if job.stopping else ""))
            right.button("Stop", key=f"stop-{job.id}", on_click=job.stop, icon=":material/stop_circle:",
                         width="stretch", disabled=job.stopping)
        elif job.state == "done":
            picked = " It is selected in the sidebar's checkpoint picker." if mine else ""
            st.success(f"Trained {job.family} on {where} in {_duration(job.elapsed)}: saved to "
                       f"`{catalog.shown_path(job.path)}`.{picked}")
            if job.budget is not None and job.budget.ended:
                st.caption(" · ".join(f"{stage}: {plural(n, 'epoch')}, {why}" for stage, (n, why)
                                      in job.budget.ended.items()))
            if job.warning:
                st.warning(job.warning, icon=":material/warning:")
        elif job.state == "stopped":
            st.warning(f"Training {job.family} on {where} was stopped after {_duration(job.elapsed)}; "
                       "nothing was saved.")
        else:
            st.error(f"Training {job.family} on {where} failed: {job.error}")
        if job.running or mine:
            _job_curves(job)


def _time_left(job: jobs.TrainingJob) -> str:
    """The job's time left, as its :attr:`~vqviz_app.jobs.TrainingJob.eta` knows it: the whole run's under a
    budget, else the current stage's."""
    eta = job.eta
    if job.budget is not None:  # an upper estimate: a stage whose loss stops improving ends sooner
        total = _duration(job.budget.seconds)
        return f" · budget {total}" if eta is None else " · finishing" if eta < 1 else \
            f", up to about {_duration(eta)} left of its {total} budget"
    if eta is None:
        return ""
    return f", about {_duration(eta)} left" + ("" if job.last_stage else " in this stage")


def _job_curves(job: jobs.TrainingJob) -> None:
    """The loss of every step and, for SEQ, accuracy against K as the sweep scores it."""
    curve = list(job.curve)  # the training thread appends meanwhile
    if len(curve) > 1:
        which = [k for k in ("val_accuracy", "train_accuracy", "test_accuracy") if k in curve[0]]
        st.caption("k-means accuracy against K, as the sweep scores it")
        st.line_chart({"K": [p["k"] for p in curve], **{k: [p[k] for p in curve] for k in which}}, x="K",
                      y=which, height=200)
    if job.losses:
        st.plotly_chart(figures.loss_figure(job.losses), width="stretch")


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
    st.markdown(f"**{view.title}** · label **{label}** · {plural(len(view.rows), 'member')} in this split")
    shown = "its only member" if len(view.rows) == 1 else f"{len(view.members)} of its members"
    st.image(picture, caption=f"decoded centroid · {shown}")
    left, right = st.columns([2, 5], vertical_alignment="center")
    left.metric("Purity", "–" if np.isnan(view.purity) else f"{view.purity:.0%}")
    if histogram is None:
        histogram = figures.histogram_figure(view.histogram, classes, view.label)
    right.plotly_chart(histogram, width="stretch", config=figures.PLAIN)
