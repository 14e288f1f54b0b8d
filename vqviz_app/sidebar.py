"""The sidebar, drawn once for every page: data set (the user's own image folders too), split,
checkpoint and colouring, written to the URL; and loading what it picked (:func:`loaded`), or
saying why it cannot be shown and stopping the page."""

from __future__ import annotations

import dataclasses
import os

import streamlit as st

from vqviz import analysis, checkpoints, data, projection
from vqviz.data.folder import skipped_notes
from vqviz.errors import ConfigError, DataError, VqvizError

from . import cache, catalog, joblist, latents, state, uploads
from .state import COLOURS, SPLITS, Context, Loaded, Session, session
from .widgets import error, plural

#: The largest .zip of images the sidebar takes.
OWN_ZIP_LIMIT_MB = 200


def _resolve(value, by_path: dict[str, catalog.Entry], labels: dict[str, str]) -> str | None:
    """The checkpoint path a picker value stands for: a path, or a label the browser sent back (it
    sends the text it showed, which Streamlit maps back to the option; a label it no longer lists
    would otherwise come back as the value itself)."""
    if value in by_path:
        return value
    return next((p for p, label in labels.items() if label == value), None)


def _follow_checkpoint(by_path: dict[str, catalog.Entry], labels: dict[str, str]) -> None:
    """The checkpoint changed: show the data set it was trained on."""
    entry = by_path.get(_resolve(session.checkpoint, by_path, labels))
    if entry is not None and entry.offered_dataset:
        session.dataset = entry.offered_dataset


def _follow_dataset(entries: list[catalog.Entry], labels: dict[str, str]) -> None:
    """The data set changed: switch to a checkpoint that fits it (one trained on it first), if any."""
    name = session.dataset
    by_path = {e.path: e for e in entries}
    current = by_path.get(_resolve(session.checkpoint, by_path, labels))
    fit, _ = catalog.for_dataset(entries, name)
    if fit and (current is None or current.dataset != name) and (fit[0].dataset == name or current not in fit):
        session.checkpoint = fit[0].path


def _from_url(entries: list[catalog.Entry], names: list[str]) -> catalog.Entry | None:
    """A session's first run: take the view the link names (data set, split, colouring, projection,
    selection) into the session, and return the checkpoint it names (by path or label), if listed."""
    wanted = state.url_get("checkpoint")
    picked = next((e for e in entries if wanted in (e.path, e.label)), None) if wanted else None
    dataset = state.url_get("dataset")
    if dataset in names or (dataset or "").startswith("folder:") and picked is not None and picked.dataset == dataset:
        session.dataset = dataset
    elif picked is not None and picked.offered_dataset:
        session.dataset = picked.offered_dataset
    if state.url_get("split") in SPLITS:
        session.split = state.url_get("split")
    if state.url_get("colour") in COLOURS:
        session.colour = state.url_get("colour")
    if state.url_get("projection") in projection.METHODS:
        session.method = state.url_get("projection")  # the Latent map's projection control
    rows = state.url_ids("selection")
    if rows and picked is not None:  # the Latent map's selection, for that checkpoint and split
        session.map_selection = {"rows": rows}
        session.map_of = (picked.path, session.dataset, session.split)
    return picked


def sidebar(page: str = "") -> Context:
    """The picker shared by every page: data set, split, checkpoint and colouring; the view is
    also written to the URL's query parameters (``page`` names the page, by its URL path)."""
    entries = catalog.entries()
    by_path = {e.path: e for e in entries}
    labels = catalog.picker_labels(entries)
    names = list(dict.fromkeys([*data.NAMES, *(e.offered_dataset for e in entries if e.offered_dataset),
                                *catalog.own_folders(), *session.own_datasets]))
    picked = by_path.get(Session.pick.pop())  # set by the Models page after training or an upload
    if not session.url_read:  # a session's first run: the link may name the view
        session.url_read = True
        picked = picked or _from_url(entries, names)
        opened = by_path.get(os.environ.get("VQVIZ_OPEN", "")) if picked is None else None
        if opened is not None:  # `vqviz app --latents FILE`: the file's checkpoint, on its own rows
            picked, session.dataset = opened, opened.offered_dataset or session.dataset
        if picked is None and Session.dataset.stored:  # a link that names only the data set: a checkpoint for it
            _follow_dataset(entries, labels)
    elif picked is not None:
        session.dataset = picked.offered_dataset or session.dataset
    if picked is not None:
        session.checkpoint = picked.path
    resolved = _resolve(session.checkpoint, by_path, labels)
    if resolved is None:
        usable = [e for e in entries if not e.error]
        default = next((e for e in usable if e.label == catalog.DEFAULT_CHECKPOINT),
                       usable[0] if usable else entries[0] if entries else None)
        resolved = default.path if default else None
        if default is not None and default.offered_dataset and not Session.dataset.stored:
            session.dataset = default.offered_dataset
    session.checkpoint = resolved
    if session.dataset not in names:
        session.dataset = "digits"
    with st.sidebar:
        shown = catalog.dataset_labels(names)
        dataset = st.selectbox("Data set", names, key=Session.dataset.key, on_change=_follow_dataset,
                               args=(entries, labels), format_func=shown.get,
                               help="The built-in sets, and your own image folders (below: a folder on the "
                                    "server, or a .zip of one).")
        _own_images(entries, labels)
        latents.expander()
        # The default goes in the state, not in default=: a widget given both a default and a value
        # set through the state (a link's ?split=all) makes Streamlit log a warning with a stack trace.
        Session.split.setdefault()
        splits = list(SPLITS)
        if latents.is_latents(dataset):  # a file of latents is one split, all its rows
            session.split, splits = "test", ["test"]
        split = st.segmented_control("Split", splits, key=Session.split.key, required=True, width="stretch",
                                     format_func=lambda s: "all rows" if latents.is_latents(dataset) else s)
        entry = None
        if entries:
            entry = _checkpoint_picker(entries, by_path, labels, dataset)
        else:
            st.caption("No checkpoints found.")
        colours = _colour_options(entry)
        if session.colour not in colours:
            session.colour = "label"
        colour = st.radio("Colour the map by", colours, key=Session.colour.key, format_func=COLOURS.get)
    for key, value in (("page", page), ("dataset", dataset), ("split", split),
                       ("checkpoint", entry.label if entry else None), ("colour", colour),
                       ("projection", session.method),
                       ("selection", _selection_for_url())):
        state.url_set(key, value)
    with st.sidebar.expander("Share this view", icon=":material/link:"):
        st.code(state.share_link(), language=None, wrap_lines=True)
        st.caption("Copy the link (the button at its corner): it opens this page, data set, split, checkpoint, "
                   f"projection, colouring and selection (up to {state.URL_MAX_IDS} selected points).")
    return Context(dataset, split, entry, colour)


def _own_images(entries, labels) -> None:
    """A data set of the user's own: a folder on the server, or an uploaded .zip of one."""
    result = session.own_result
    with st.expander("Your own images", icon=":material/folder_open:", expanded=result is not None):
        st.caption("One sub-folder of images per class (`cats/1.png`, `dogs/7.jpg`, ...); `train/` and `test/` "
                   "sub-folders, if present, are the splits. Images are read as 28x28 grey.")
        st.text_input("Folder on the server (Enter to use it)", key=Session.own_path.key,
                      placeholder="data/my-images", on_change=_use_folder, args=(entries, labels),
                      help="A path inside a folder this server lets you read, starting with its name: "
                           + ", ".join(f"`{r.label}/`" for r in catalog.roots()) + " (set by `VQVIZ_ROOTS`).")
        st.file_uploader(f"Or a .zip of such a folder (at most {OWN_ZIP_LIMIT_MB} MB)", type=["zip"],
                         key=Session.own_zip.key, max_upload_size=OWN_ZIP_LIMIT_MB, on_change=_use_zip,
                         args=(entries, labels))
        if result is not None:
            kind, message, skipped = result
            (st.success if kind == "success" else st.error)(catalog.printable(message))
            for note in skipped:
                st.caption(f":orange[{catalog.printable(note)}]")


def _use_folder(entries, labels) -> None:
    try:
        folder = catalog.check_folder(session.own_path)
    except VqvizError as e:
        session.own_result = ("error", str(e), ())
        return
    _adopt(folder, entries, labels)


def _use_zip(entries, labels) -> None:
    upload = session.own_zip
    if upload is None:
        return
    checked = []
    try:  # within the uploads' disk quota and file count (VQVIZ_UPLOAD_QUOTA_MB, VQVIZ_MAX_UPLOAD_IMAGES)
        path, skipped = uploads.install_images(
            upload.getvalue(), upload.name,
            check=lambda tmp: checked.append(catalog.check_folder(tmp, shown=upload.name)),
            max_bytes=OWN_ZIP_LIMIT_MB * 2**20)
    except VqvizError as e:
        session.own_result = ("error", f"{upload.name} was refused: {e}", ())
        return
    # the zip's files that were not unpacked, worded as the folder's own notes, which follow
    notes = (*(f"{upload.name}: {n}" for n in skipped_notes(skipped, [])), *checked[0].skipped)
    _adopt(dataclasses.replace(checked[0], name=f"folder:{path.resolve()}", skipped=notes), entries, labels,
           f"{upload.name}, unpacked into `{catalog.shown_path(path)}`")


def _adopt(folder: catalog.Folder, entries, labels, what: str = "") -> None:
    """Pick a checked folder as the data set, and say what it holds."""
    session.own_datasets = list(dict.fromkeys([*session.own_datasets, folder.name]))
    session.dataset = folder.name
    _follow_dataset(entries, labels)
    n = len(folder.classes)
    classes = ", ".join(folder.classes[:6]) + (", ..." if n > 6 else "")
    message = (f"**{what or catalog.dataset_label(folder.name)}**: {plural(n, 'class', 'classes')} ({classes}), "
               f"{plural(folder.sizes[0], 'training image')} and {plural(folder.sizes[1], 'test image')}. "
               "It is the data set now.")
    session.own_result = ("success", message, folder.skipped)


def _selection_for_url() -> list[int] | None:
    """The Latent map's selected rows, when they are few enough for a link."""
    rows = (session.map_selection or {}).get("rows") or []
    return rows if len(rows) <= state.URL_MAX_IDS else None


def _checkpoint_picker(entries, by_path, labels, dataset: str) -> catalog.Entry:
    """The checkpoints that fit the data set first (those trained on it first of all); the others
    behind a toggle, and the unreadable ones last. The one picked is always listed."""
    fit, others = catalog.for_dataset(entries, dataset)
    readable = [e for e in others if not e.error]
    shown = fit
    if readable and fit:
        if st.toggle(f"Also those for other image shapes ({len(readable)})", key=Session.all_checkpoints.key):
            shown = fit + readable
    elif readable:
        shown = readable  # none fits: the page says so, and offers to train one
    shown = shown + [e for e in others if e.error]
    current = by_path[session.checkpoint]
    if current not in shown:
        shown.append(current)
    path = st.selectbox("Model checkpoint", [e.path for e in shown], key=Session.checkpoint.key,
                        format_func=labels.get, on_change=_follow_checkpoint, args=(by_path, labels),
                        help=f"Folder: `{catalog.shown_path(session.checkpoint)}`")
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
            joblist.offer_training(ctx, ds)
            st.stop()
        view = cache.View(ctx.entry.path, ctx.entry.stamp, ctx.dataset, ctx.split)
        table = cache.point_table(view)
        if ckpt.dataset and ckpt.dataset != ctx.dataset:
            _trained_elsewhere(ctx, ckpt, ds)
    except DataError as e:
        error(e)
        if ctx.dataset in data.NAMES and st.button(f"Download {ctx.dataset}", icon=":material/download:"):
            _download(ctx.dataset)
        st.stop()
    except VqvizError as e:
        error(e)
        st.stop()
    if need_clusters and not table.has_clusters:
        st.info(f"**{ctx.entry.label}** (family {ckpt.name}) has no quantizer, so no clusters to show. Pick a "
                "model with a quantizer or clusters, such as SEQ or a VQ-VAE, in the sidebar.")
        st.stop()
    return Loaded(ctx.entry, ckpt, ds, table, view)


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
        joblist.offer_training(ctx, ds, elsewhere=True)


def _download(name: str) -> None:
    """Download a built-in data set with a progress bar, then draw the page again."""
    bar = st.progress(0.0, text=f"Downloading {name}...")

    def report(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0, text=f"Downloading {name}: {done / 2**20:.1f} MB")

    for split in data.SPLITS:
        data.load(name, split, progress=report)
    cache.dataset.clear()
    st.rerun()
