"""A file of latents of the user's own, in the sidebar: a path on the server (inside the folders it lets
visitors read, as image folders) or an upload. Either is checked by :mod:`vqviz.data.latents` and saved
as a checkpoint of the ``latents`` family in the user's checkpoints folder
(:func:`vqviz.explorer.open_latents`), which the sidebar then picks, with its rows as the data set."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vqviz import checkpoints, settings
from vqviz.errors import DataError, VqvizError
from vqviz.explorer import open_latents

from . import catalog, uploads
from .state import Session, session

#: The largest file of latents the sidebar takes as an upload.
UPLOAD_LIMIT_MB = 500
SUFFIXES = (".npz", ".parquet")


def is_latents(dataset: str) -> bool:
    """Whether the data set is the rows of a file of latents (one split: all its rows)."""
    return dataset.startswith("latents:")


def expander() -> None:
    """The sidebar's "Your own latents": a path or an upload, and what came of the last one."""
    result = session.latents_result
    with st.expander("Your own latents", icon=":material/scatter_plot:", expanded=result is not None):
        st.caption("A `.npz` or `.parquet` file of embeddings: `latents` (N x d), and optionally `labels`, "
                   "`images` (or image `paths` beside the file) and `codes`. See the docs' *Your own model*.")
        st.text_input("File on the server (Enter to open it)", key=Session.latents_path.key,
                      placeholder="data/embeddings.npz", on_change=_use_path,
                      help="A path inside a folder this server lets you read, starting with its name: "
                           + ", ".join(f"`{r.label}/`" for r in catalog.roots()) + " (set by `VQVIZ_ROOTS`).")
        st.file_uploader(f"Or upload one (at most {UPLOAD_LIMIT_MB} MB; images inside it, not as paths)",
                         type=[s[1:] for s in SUFFIXES], key=Session.latents_upload.key,
                         max_upload_size=UPLOAD_LIMIT_MB, on_change=_use_upload)
        if result is not None:
            kind, message = result
            (st.success if kind == "success" else st.error)(catalog.printable(message))


def _use_path() -> None:
    try:
        _picked(*open_path(session.latents_path or ""))
    except VqvizError as e:
        session.latents_result = ("error", str(e))


def _use_upload() -> None:
    upload = session.latents_upload
    if upload is None:
        return
    try:
        _picked(*open_upload(upload.name, upload.getvalue()))
    except VqvizError as e:
        session.latents_result = ("error", f"{upload.name} was refused: {e}")


def _picked(folder: Path, message: str) -> None:
    session.pick = str(folder)
    session.latents_result = ("success", message)


def open_path(text: str) -> tuple[Path, str]:
    """Open the file a visitor typed, inside the folders the server lets visitors read (any other path gets
    one message, whether it exists or not); its checkpoint folder and what to say of it."""
    text, allowed = text.strip(), catalog.roots()
    if not text:
        raise DataError("type the path of a .npz or .parquet file of latents on the server")
    path = settings.locate(text, allowed)
    if path is None:
        raise DataError(catalog.outside_message(text, allowed))
    shown = settings.shown(path, allowed)
    if not path.is_file():
        raise DataError(f"{shown}: no such file on the server")
    return _open(path, shown)


def open_upload(name: str, value: bytes) -> tuple[Path, str]:
    """Open an uploaded file of latents, kept with the uploads within their quota; its checkpoint folder and
    what to say of it. Image paths in an upload lead nowhere (it is read in a private temporary folder):
    it holds its images itself."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{name}: not a file of latents; expected a .npz or a .parquet file")
    if len(value) > UPLOAD_LIMIT_MB * 2**20:
        raise DataError(f"{name}: {len(value) / 2**20:.0f} MB; the limit is {UPLOAD_LIMIT_MB} MB")
    return uploads.install_latents(value, name, lambda path, out: _open(path, name, out))


def _open(path: Path, shown: str, out: Path | None = None) -> tuple[Path, str]:
    """Check the file and save it as a checkpoint (:func:`vqviz.explorer.open_latents`); messages name it
    ``shown``, never by its place on the server."""
    try:
        folder = open_latents(path, out, name=Path(shown).stem)
    except VqvizError as e:
        raise type(e)(str(e).replace(str(path), shown)) from None
    cfg = checkpoints.read_meta(folder)["config"]  # what was just saved; its weights need not be read back
    how = "its codes" if cfg["clusters_from"] == "codes" else \
        f"k-means with K = {cfg['n_codes']} (the file has no codes)"
    return folder, (f"**{shown}**: {cfg['n_rows']:,} latents of {cfg['latent_dim']} dimensions; clusters from "
                    f"{how}. It is the checkpoint and the data set now.")
