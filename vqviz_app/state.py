"""What the sidebar picked, passed to each page as an object."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from vqviz import checkpoints, data
from vqviz.analysis import PointTable

from .catalog import Entry

#: What the map can be coloured by; all but "label" need a model with a quantizer.
COLOURS = {"label": "True label", "cluster": "Cluster", "predicted": "Predicted label",
           "correct": "Right / wrong", "entropy": "Assignment entropy"}
#: The splits the sidebar offers; "all" is train then test (the whole 70,000 of MNIST).
SPLITS = ("test", "train", "all")


@dataclass(frozen=True)
class Context:
    """What the sidebar picked, for every page of this run: data set, split, checkpoint
    (None when there is none) and what the map is coloured by."""

    dataset: str
    split: str
    entry: Entry | None
    colour: str


@dataclass
class Loaded:
    """The sidebar's choice, loaded: checkpoint, data split and the split's point table."""

    entry: Entry
    ckpt: checkpoints.Checkpoint
    data: data.Dataset
    table: PointTable

    @property
    def model(self):
        return self.ckpt.model

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes

    @property
    def foreign_labels(self) -> bool:
        """Whether the model's own cluster labels name another data set's classes (a SEQ checkpoint of
        another data set with images of the same shape): predicted labels then say nothing here."""
        return bool(self.ckpt.dataset) and self.ckpt.dataset != self.data.name \
            and self.model.cluster_labels is not None

    @property
    def decoder_warning(self) -> str | None:
        """The warning to show beside this model's decoded images, or None."""
        from vqviz.health import decoder_warning

        return decoder_warning(self.entry.metrics)


def session_id() -> str:
    """This browser session's own id, made at its first use and kept in its state ("" outside a
    script run): its training jobs are counted by it (``VQVIZ_MAX_JOBS_PER_SESSION``). Not
    Streamlit's session id, which is one constant for every AppTest."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return ""
    return st.session_state.setdefault("_session_id", uuid.uuid4().hex)


# ----- the view in the URL -----
#: The query parameters that make a shareable view, in the order the link lists them.
URL_KEYS = ("page", "dataset", "split", "checkpoint", "projection", "colour", "selection")
#: The most selected ids a link holds; a larger selection is left out of it.
URL_MAX_IDS = 500


def start_page(default: str) -> str:
    """The page a session opens on: the one its link names (``?page=models``), else ``default``;
    read once per session, so that later runs keep it."""
    return st.session_state.setdefault("_start_page", url_get("page") or default)


def url_get(key: str) -> str | None:
    """One setting of the view as the URL holds it (``?dataset=mnist``), or None."""
    return st.query_params.get(key) or None


def url_set(key: str, value) -> None:
    """Put one setting of the view in the URL; None, "" or an empty list removes it. A list of
    ids (a selection) is written comma-separated, read back by :func:`url_ids`."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(int(v)) for v in value)
    if value is None or value == "":
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != str(value):
        st.query_params[key] = str(value)


def url_ids(key: str = "selection") -> list[int]:
    """The ids a URL setting lists (``?selection=3,17``); what is not a whole number is ignored."""
    return [int(v) for v in (url_get(key) or "").split(",") if v.strip().isdigit()]


def share_link() -> str:
    """The link to this view: the app's address and the view's query parameters."""
    base = (st.context.url or "http://localhost:8501/").split("?")[0]
    params = {k: st.query_params[k] for k in URL_KEYS if st.query_params.get(k)}
    return f"{base}?{urlencode(params)}" if params else base
