"""The checkpoints the picker lists: bundled, in ``VQVIZ_CHECKPOINTS`` and the user's own.

Reading one entry never breaks the list: a checkpoint whose ``meta.json`` cannot be
read, or holds fields of the wrong type, is listed greyed with the reason, and the
Models page can remove it. So is one whose path is not UTF-8 (a folder name made of
other bytes): Streamlit sends only UTF-8 to the browser, so it is listed by its
:func:`printable` path, which escapes those bytes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from vqviz import checkpoints, data, settings, workflow
from vqviz.errors import CheckpointError
from vqviz.utils import printable, read_regular

from . import cache

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_CHECKPOINT = "seq-digits-cae4"
#: The types a listed checkpoint's meta.json fields must have (absent is fine where None is allowed).
META_TYPES = {"model": (str,), "config": (dict,), "weights": (dict,), "dataset": (str, type(None)),
              "metrics": (dict, type(None)), "format_version": (int,)}


#: The folder under :func:`user_dir` where uploaded checkpoints are installed.
UPLOADS = "uploads"


def user_dir() -> Path:
    """Where the app writes trained and uploaded checkpoints, and ``vqviz train`` by default:
    ``$XDG_DATA_HOME/vqviz/checkpoints``."""
    return workflow.checkpoints_dir()


def data_dir() -> Path:
    """Where the app unpacks uploaded image folders: ``$XDG_DATA_HOME/vqviz/data``."""
    return user_dir().parent / "data"


def extra_dirs() -> list[Path]:
    """More checkpoint folders, separated like PATH: ``VQVIZ_CHECKPOINTS=~/runs:/data/models``."""
    return [Path(p).expanduser() for p in os.environ.get("VQVIZ_CHECKPOINTS", "").split(os.pathsep) if p]


@dataclass(frozen=True)
class Entry:
    """One checkpoint folder as the picker lists it; ``error`` says why it cannot be used
    (then ``meta`` is None)."""

    path: str
    label: str
    stamp: int
    meta: dict | None = field(default=None, hash=False, compare=False)
    error: str = ""
    bundled: bool = False
    uploaded: bool = False
    real_path: str = ""  # the folder as the file system names it, where ``path`` escapes bytes that are not UTF-8

    @property
    def dataset(self) -> str:
        return (self.meta or {}).get("dataset") or ""

    @property
    def family(self) -> str:
        return (self.meta or {}).get("model", "?")

    @property
    def metrics(self) -> dict:
        return (self.meta or {}).get("metrics") or {}

    @property
    def config(self) -> dict:
        return (self.meta or {}).get("config") or {}

    @property
    def summary(self) -> dict:
        """The checkpoint's summary (family, K, L, data set, input shape, headline metrics)."""
        return (self.meta or {}).get("summary") or {}

    @property
    def n_codes(self) -> int | None:
        """K, as the model itself reports it; None without a quantizer."""
        return self.summary.get("n_codes")

    @property
    def has_codebook(self) -> bool:
        return self.n_codes is not None

    @property
    def offered_dataset(self) -> str:
        """The data set the sidebar may offer for this checkpoint: its own, unless an uploaded
        checkpoint names a folder (an upload never chooses which server folder is read) other than
        its own (an uploaded file of latents, whose checked copy it holds)."""
        name = self.dataset
        own = name.startswith("latents:") and Path(name[8:]).parent == Path(self.path)
        return name if name in data.NAMES or not self.uploaded or own else ""


def check_meta(meta) -> str:
    """Why a meta.json cannot be listed as usable ("" when it can): the fields the app reads, by type."""
    if not isinstance(meta, dict):
        return f"its meta.json holds {json_type(meta)}, not an object"
    for key, types in META_TYPES.items():
        if key in meta and not isinstance(meta[key], types) or isinstance(meta.get(key), bool):
            kind = " or ".join("null" if t is type(None) else {"str": "text", "dict": "an object",
                                                                 "int": "a whole number"}[t.__name__]
                               for t in types)
            return f"its meta.json field {key!r} should be {kind}, not {json_type(meta[key])}"
    if not isinstance(meta["weights"].get("sha256"), str):
        return "its meta.json field 'weights' has no sha256 of the weights"
    return ""


def json_type(value) -> str:
    """A JSON value's kind and its start, for a message: ``a list (['digits'])``."""
    kind = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    return kind if value is None else f"{kind} ({str(value if not isinstance(value, str) else repr(value))[:40]})"


@st.cache_data(max_entries=512, show_spinner=False)
def _read(path: str, stamp: int) -> tuple[dict | None, str]:
    try:
        meta = checkpoints.read_meta(path)
    except Exception as e:  # any failure of one entry: list it with the reason, keep the others
        return None, _explain(path) or str(e) or type(e).__name__
    problem = check_meta(meta)
    if problem:
        return None, problem
    weights = meta["weights"]["file"]  # one lstat: a folder or a link there is known before a page loads it
    if not stat.S_ISREG(getattr(_lstat(Path(path) / weights), "st_mode", 0)):
        return None, f"the weights file {weights} named in its meta.json is missing or not a regular file"
    try:  # what the model reports of itself: K, L, shape (worked out for checkpoints saved without it)
        meta["summary"] = checkpoints.summary(meta)
    except Exception as e:  # any failure of one entry: list it with the reason, keep the others
        return None, str(e) or type(e).__name__
    return meta, ""


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


#: Checkpoints that failed to load, by (path, stamp), with the reason. Listing reads only meta.json;
#: what only loading finds (weights with NaN, a wrong hash) is learnt here, so that from then on the
#: checkpoint is listed as unusable, with its Remove button, until its meta.json changes.
_refused: dict[tuple[str, int], str] = {}


def load(entry: Entry) -> checkpoints.Checkpoint:
    """The listed checkpoint, loaded (and cached); a refusal is remembered, then raised.

    Raises
    ------
    CheckpointError
        It does not load; the catalogue lists it as unusable from then on.
    """
    try:
        return cache.checkpoint(entry.path, entry.stamp)
    except CheckpointError as e:
        _refused[(entry.path, entry.stamp)] = printable(str(e))
        raise


def _explain(path: str) -> str:
    """What is wrong with the types of a meta.json that failed to read, when that is what failed."""
    try:  # read as the library reads it: no blocking open, a regular file, capped
        raw = read_regular(Path(path) / checkpoints.META, checkpoints.MAX_META_BYTES, error=ValueError, what="")
        return check_meta(json.loads(raw))
    except Exception:
        return ""


def _stamp(path: Path) -> int:
    try:
        return (path / checkpoints.META).stat().st_mtime_ns
    except OSError:
        return 0


def entries() -> list[Entry]:
    """Checkpoints under the bundled folder, ``VQVIZ_CHECKPOINTS`` and :func:`user_dir`, bundled first."""
    out, seen = [], set()
    bundled, mine = BUNDLED_DIR, user_dir()
    for root in (bundled, *extra_dirs(), mine):
        try:
            found = checkpoints.find(root)
        except OSError as e:
            log.warning("cannot list %s: %s", root, e)
            continue
        for path in found:
            shown = printable(str(path))
            if shown in seen:
                continue
            seen.add(shown)
            inside = root in (bundled, mine) and path != root
            label = printable(str(path.relative_to(root)) if inside else shown_path(path))  # no full server path
            where = dict(bundled=root == bundled, uploaded=root == mine and path.is_relative_to(mine / UPLOADS))
            if shown != str(path):  # listed, to be removed or renamed; never loaded, nor cached by its path
                out.append(Entry(shown, label, 0, None, "its folder's path is not valid UTF-8: rename the folder "
                                 "to use it", real_path=str(path), **where))
                continue
            stamp = _stamp(path)
            meta, error = _read(str(path), stamp)
            if (str(path), stamp) in _refused:
                meta, error = None, _refused[str(path), stamp]
            out.append(Entry(str(path), label, stamp, meta, printable(error), **where))
    return out


def remove(entry: Entry) -> None:
    """Delete a listed checkpoint's folder (never a bundled one, nor anything but a checkpoint folder)."""
    path = Path(entry.real_path or entry.path)
    if entry.bundled or not os.path.lexists(path / checkpoints.META):  # one that is a FIFO or a link counts too
        raise ValueError(f"{shown_path(entry.path)} is not a removable checkpoint folder")
    shutil.rmtree(path)
    _read.clear()
    _refused.pop((entry.path, entry.stamp), None)


def fits(entry: Entry, dataset: str) -> bool:
    """Whether a readable checkpoint takes the images of ``dataset``: the input shape that the data set's
    registration gives (:func:`vqviz.data.shape_of`, known without reading its files, which may be absent)."""
    shape = entry.summary.get("in_shape") if not entry.error else None
    return shape is not None and tuple(shape) == data.shape_of(dataset)


def for_dataset(found: list[Entry], dataset: str) -> tuple[list[Entry], list[Entry]]:
    """The readable checkpoints that fit ``dataset``, those trained on it first, and the others."""
    fit = [e for e in found if fits(e, dataset)]
    fit.sort(key=lambda e: e.dataset != dataset)  # stable: the catalogue's order within each group
    return fit, [e for e in found if e not in fit]


def dataset_label(name: str) -> str:
    """A data set's name as the picker shows it: a folder by its last part, a file of latents by the
    checkpoint folder that holds its checked copy (never the server's path)."""
    if name.startswith("latents:"):
        return f"latents {Path(name[8:]).parent.name}"
    return f"folder {Path(name[7:]).name or name[7:]}" if name.startswith("folder:") else name or "?"


def dataset_labels(names: list[str]) -> dict[str, str]:
    """:func:`dataset_label` of each name, made unique (two folders may end alike)."""
    out, taken = {}, set()
    for name in names:
        label, i = dataset_label(name), 1
        while label in taken:
            i += 1
            label = f"{dataset_label(name)} ({i})"
        taken.add(label)
        out[name] = label
    return out


def picker_labels(found: list[Entry]) -> dict[str, str]:
    """Short, unique labels by path: the folder's name, then family and data set.

    They do not depend on the data set picked, and no two are alike: the browser sends back the
    label a selectbox showed, and Streamlit maps it back to the path by this text.
    """
    out, taken = {}, set()
    for e in found:
        name = Path(e.path).name
        base = f"{name} (unreadable)" if e.error else f"{name} · {e.family} · {dataset_label(e.dataset)}"
        label, i = base, 1
        while label in taken:
            i += 1
            label = f"{base} ({i})"
        taken.add(label)
        out[e.path] = label
    return out


def caption_of(entry: Entry) -> str:
    if entry.error:
        return f"This checkpoint cannot be used: {entry.error}. Remove it on the **Models** page."
    k = entry.n_codes
    return f"{entry.family} · trained on {dataset_label(entry.dataset)}" + (f" · K = {k}" if k else "")


def number(value) -> float | None:
    """A metric as one number: lists (one value per codebook) by their mean; anything else None."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return float(np.mean(value))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def rows(found: list[Entry]) -> list[dict]:
    """One row per checkpoint for the Models page's table."""
    out = []
    for e in found:
        m, cfg = e.metrics, e.config
        out.append({
            "checkpoint": e.label, "family": e.family if not e.error else "unreadable",
            "data set": dataset_label(e.dataset), "encoder": str(cfg.get("encoder", "")), "latent": number(cfg.get("latent_dim")),
            "K": number(e.n_codes), "P_E": number(m.get("encoder_test_accuracy")),
            "P_Q": number(m.get("quantizer_test_accuracy")),
            "recon MSE / pixel": number(m.get("test_recon_mse", m.get("test_mse_per_pixel"))),
            "perplexity": number(m.get("test_perplexity")),
            "train s": number(m.get("train_seconds")), "folder": shown_path(e.path) if not e.error else e.error,
        })
    return out


# ----- the user's own image folders -----
@dataclass(frozen=True)
class Folder:
    """An image folder checked for use as a data set: its ``folder:`` name, classes, split sizes and
    the loader's notes on the files it skipped."""

    name: str
    classes: tuple[str, ...]
    sizes: tuple[int, int]
    skipped: tuple[str, ...] = ()


def check_folder(path: str | Path, shown: str | None = None) -> Folder:
    """Load both splits of an image folder (one sub-folder per class) as the trainer will, or raise
    :class:`DataError` saying what is wrong with it; ``shown`` names it in messages instead of its path.

    The path must resolve inside :func:`roots` (a link naming the folder itself is followed): any
    other path gets one message, the same whether it exists or not, so that a visitor cannot probe
    the server's files. A link inside the folder that leads out of the roots is refused; the loader
    follows no link inside a folder in any case, and reports the links it skipped."""
    import warnings

    from vqviz.errors import DataError

    text = str(path).strip()
    if not text:
        raise DataError("type the path of a folder on the server: one sub-folder of images per class")
    allowed = roots()
    root = settings.locate(text, allowed)
    if root is None:
        raise DataError(outside_message(text, allowed))
    shown = shown or settings.shown(root, allowed)
    if not root.exists():
        raise DataError(f"{shown}: no such folder on the server")
    if not root.is_dir():
        raise DataError(f"{shown}: a file, not a folder; give the folder that holds one sub-folder per class")
    link = _link_out(root, allowed)
    if link is not None:
        raise DataError(f"{shown}: {link} is a link that leads outside the folders this server lets you read "
                        f"({_root_list(allowed)}); refused")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            splits = [data.load(f"folder:{root}", s) for s in data.SPLITS]
        except DataError as e:
            notes = "".join(f"; {w.message}" for w in caught)
            raise DataError(f"{e}{notes}".replace(str(root), shown)) from None  # the loader's notes too
    skipped = tuple(dict.fromkeys(str(w.message).replace(str(root), shown) for w in caught
                                  if issubclass(w.category, UserWarning)))
    classes = tuple(splits[0].classes)
    if len(classes) < 2:
        raise DataError(f"{shown}: only one class ({classes[0] if classes else 'none'}); a model learns to tell "
                        "classes apart, so it needs at least two sub-folders of images")
    return Folder(splits[0].name, classes, (len(splits[0]), len(splits[1])), skipped)


def own_folders() -> list[str]:
    """The ``folder:`` names of the image folders uploaded into :func:`data_dir`."""
    try:
        found = sorted(p for p in data_dir().iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [f"folder:{p.resolve()}" for p in found if not p.is_symlink()]


# ----- the folders a visitor may read -----
def roots() -> tuple[settings.Root, ...]:
    """The folders a visitor may read, by label: the app's own (``data``: uploaded image folders,
    ``checkpoints``: trained and uploaded ones, ``bundled``, and each ``VQVIZ_CHECKPOINTS`` folder),
    then ``VQVIZ_ROOTS`` (:mod:`vqviz.settings`), by default where data sets are looked for
    (each ``VQVIZ_DATA`` folder, ``datasets``: the system's, ``downloads``: vqviz's cache)."""
    configured = settings.server_settings().roots
    own = [("data", data_dir()), ("checkpoints", user_dir()), ("bundled", BUNDLED_DIR),
           *((None, p) for p in extra_dirs())]
    more = [(None, p) for p in configured] if configured is not None else [
        *((None, p) for p in data.paths.env_data_dirs()), ("datasets", data.paths.SYSTEM_DIR),
        ("downloads", data.paths.cache_dir())]
    return settings.label_roots(own + more)


def shown_path(path: str | Path) -> str:
    """A server path as the pages show it: relative to its root (``data/my-letters``), never in full."""
    return settings.shown(path, roots())


def _root_list(found: tuple[settings.Root, ...]) -> str:
    return ", ".join(f"`{r.label}/`" for r in found)


def outside_message(text: str, found: tuple[settings.Root, ...]) -> str:
    """The one message for any typed path outside the roots: it echoes the text, and says nothing
    of what is there (nor whether anything is)."""
    typed = text.strip().replace("`", "")[:200]
    return (f"`{typed}` is not inside a folder this server lets you read. Type a path inside one of "
            f"{_root_list(found)} (e.g. `data/my-images`); the server's `VQVIZ_ROOTS` setting names them.")


def _link_out(folder: Path, found: tuple[settings.Root, ...]) -> str | None:
    """The first link under ``folder`` (as deep as the loader looks) that leads out of the roots, relative
    to ``folder``; None if there is none. Listing reads no file, so it is cheap beside loading."""
    from vqviz.data import folder as loader

    todo, seen = [(folder, 0)], 0
    while todo:
        here, depth = todo.pop()
        try:
            listed = list(os.scandir(here))
        except OSError:
            continue  # the loader says what it cannot read
        for entry in listed:
            seen += 1
            if seen > loader.MAX_FOLDER_FILES:  # the loader refuses such a folder anyway
                return None
            if entry.is_symlink():
                if not settings.inside(entry.path, found):
                    return Path(entry.path).relative_to(folder).as_posix()
            elif entry.is_dir(follow_symlinks=False) and depth < loader.MAX_FOLDER_DEPTH + 2:
                todo.append((Path(entry.path), depth + 1))  # + 2: train/ or test/, then the class
    return None
