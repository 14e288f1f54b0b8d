"""The session's state, in one place: what the sidebar picked (:class:`Context`, passed to each page
as an object, and :class:`Loaded`), every key of ``st.session_state`` as a typed field of
:class:`Session`, and the view in the URL.

Nothing else reads or writes ``st.session_state`` by its key's name: a module reads and assigns
``session.map_selection``, and a widget takes its ``key=`` from ``Session.split.key``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, overload
from urllib.parse import urlencode

import streamlit as st

from vqviz import checkpoints, data
from vqviz.analysis import PointTable

from .cache import View
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
    """The sidebar's choice, loaded: checkpoint, data split and the split's point table, and the
    :class:`~vqviz_app.cache.View` that the caches know them by."""

    entry: Entry
    ckpt: checkpoints.Checkpoint
    data: data.Dataset
    table: PointTable
    view: View

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


# ----- the session's keys -----
T = TypeVar("T")
_ABSENT = object()


class Field(Generic[T]):
    """One key of ``st.session_state`` as a typed attribute of :class:`Session`.

    On the :data:`session` object, reading the attribute gives the stored value, or the
    field's default when there is none (without storing it); assigning stores it; ``del``
    removes it (absent or not). On the class, the attribute is the field itself: its ``key``
    (a widget's ``key=``), :meth:`get`, :meth:`set`, :meth:`pop`, :meth:`setdefault` and
    :attr:`stored` (for code handed a field, and what the attribute syntax cannot say).
    """

    def __init__(self, default: T = None, *, key: str = "", factory: Callable[[], T] | None = None):
        self.default, self.factory, self.key = default, factory, key

    def __set_name__(self, owner, name: str) -> None:
        self.key = self.key or name

    @overload
    def __get__(self, obj: None, owner=None) -> Field[T]: ...
    @overload
    def __get__(self, obj: Session, owner=None) -> T: ...
    def __get__(self, obj, owner=None):
        return self if obj is None else self.get()

    def __set__(self, obj, value: T) -> None:
        self.set(value)

    def __delete__(self, obj) -> None:
        st.session_state.pop(self.key, None)

    def _default(self) -> T:
        return self.factory() if self.factory is not None else self.default

    def get(self) -> T:
        """The stored value, or the default (not stored)."""
        return st.session_state.get(self.key, self._default())

    def set(self, value: T) -> None:
        st.session_state[self.key] = value

    @property
    def stored(self) -> bool:
        """Whether the session holds a value for this key (a widget's own, or one assigned)."""
        return self.key in st.session_state

    def pop(self) -> T:
        """The value (or the default), removed from the session."""
        value = st.session_state.pop(self.key, _ABSENT)
        return self._default() if value is _ABSENT else value

    def setdefault(self, value: Any = _ABSENT) -> T:
        """The stored value; when there is none, ``value`` (by default, the field's default) is stored
        first. A mutable value taken this way is the stored one: changing it changes the session's."""
        return st.session_state.setdefault(self.key, self._default() if value is _ABSENT else value)


class Keys:
    """A family of keys made of a prefix and a suffix, for widgets drawn once per item: the Stop
    button of each job is ``Session.stop_job.key(job.id)``, i.e. ``"stop-<id>"``."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def key(self, *suffix) -> str:
        return self.prefix + "-".join(str(s) for s in suffix)


def widget_value(key: str, default: Any = None) -> Any:
    """The value Streamlit keeps for the widget ``key`` (a key made by a :class:`Keys` family, whose
    name is not known beforehand), e.g. a chart's selection inside its ``on_select`` callback."""
    return st.session_state.get(key, default)


class Session:
    """Every key of ``st.session_state`` that the app uses, each a typed :class:`Field` named as its key
    (``key=`` where the key differs: those that start with "_", which no widget has). Use the
    :data:`session` object; the pages' widgets take their ``key=`` from the fields."""

    # --- the sidebar (vqviz_app.sidebar)
    dataset: str | None = Field()
    split: str = Field("test")
    checkpoint: str | None = Field()
    colour: str | None = Field()
    all_checkpoints: bool = Field(False)  # the picker's "Also those for other image shapes"
    own_path: str = Field("")  # a folder of the user's own images, on the server
    own_zip = Field()  # the uploaded .zip of one (a Streamlit UploadedFile)
    own_result: tuple[str, str, tuple[str, ...]] | None = Field()  # (kind, message, skipped notes)
    own_datasets: list[str] = Field(factory=list)  # "folder:..." data sets picked in this session
    latents_path: str = Field("")  # a file of latents on the server (vqviz_app.latents)
    latents_upload = Field()  # an uploaded one (a Streamlit UploadedFile)
    latents_result: tuple[str, str] | None = Field()  # (kind, message) of the last one opened
    pick: str | None = Field(key="_pick")  # the checkpoint the sidebar picks next run (after training, an upload)
    url_read: bool = Field(False, key="_url_read")  # whether this session's link was read
    session_id: str = Field("", key="_session_id")
    start_page: str | None = Field(key="_start_page")

    # --- the latent map (vqviz_app.maps and its page)
    method: str | None = Field()  # the projection
    perplexity: float = Field()
    n_neighbors: int = Field()
    min_dist: float = Field()
    on_train: bool = Field(False)  # place the test points on the train map
    decode_hover: bool = Field(False)  # decode under the cursor on the Latent map
    mixer_alpha: tuple | None = Field()  # (a1, a2) where the mixer's sliders rest, as the browser said
    place_upload = Field()  # the user's own images to place
    map_selection: dict | None = Field()  # {"rows", "kind"} or {"rows": [], "spot": [x, y]}
    map_of: tuple[str, str, str] | None = Field()  # (checkpoint, data set, split) the selection belongs to
    map_generation: int = Field(0)  # counts "Clear selection", so that the map's element is a new one

    # --- the style mixer
    mix_source: str = Field()
    mix_class: int = Field()
    mix_cluster: int = Field()
    mix_steps: int = Field()
    mix_seed: int = Field(0)  # counts "Draw again"
    mix_rows: list[int] = Field(factory=list)  # the three rows mixed
    mix_of: tuple[str, str, str] | None = Field()  # (checkpoint, data set, split) the rows belong to
    mix_for: tuple | None = Field()  # (source, choice, seed) the rows were drawn for

    # --- cluster styles
    styles_class: int = Field()

    # --- assignment entropy
    entropy_right: str | None = Field()  # the checkpoint compared with
    entropy_right_picked: bool = Field(False)  # whether the user picked it
    entropy_swapped: str | None = Field()  # the sidebar's hard model, put on the right beside a soft one
    code_map_image = Keys("code_map_image-")

    # --- models: training, uploads
    t_family: str = Field()
    t_dataset: str = Field()
    t_follows: str | None = Field(key="_t_follows")  # the sidebar's data set that t_dataset last followed
    t_epochs: int = Field()
    t_lr: float = Field()
    t_batch: int = Field()
    t_seed: int = Field()
    t_threads: int = Field()
    t_encoder = Keys("t_encoder_")  # by family
    t_latent = Keys("t_latent_")
    t_k = Keys("t_k_")
    t_kauto = Keys("t_kauto_")
    upload = Field()  # a checkpoint's .zip
    upload_id: str | None = Field()  # the file id of the upload last installed
    upload_result: tuple[str, str] | None = Field()  # (kind, message)
    removed: str | None = Field()  # the label of the checkpoint just removed
    remove = Keys("remove-")  # by checkpoint path
    upload_removed: str | None = Field()  # the kept upload just removed
    upload_remove = Keys("upload-remove-")  # by upload

    # --- training jobs (vqviz_app.joblist)
    train_job = Field()  # the jobs.TrainingJob this session started last
    quick_job = Field()  # the one "Train one now" started
    announced: set[str] = Field(factory=set, key="_announced")  # ids of the ended jobs already noticed
    train_now: bool = Field(False)
    stop_job = Keys("stop-")  # by job id

    # --- metrics
    bench_dataset: str = Field()


#: The session's state: ``session.split``, ``session.map_selection = {...}``, ``del session.mix_for``.
session = Session()


def session_id() -> str:
    """This browser session's own id, made at its first use and kept in its state ("" outside a
    script run): its training jobs are counted by it (``VQVIZ_MAX_JOBS_PER_SESSION``). Not
    Streamlit's session id, which is one constant for every AppTest."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return ""
    return Session.session_id.setdefault(uuid.uuid4().hex)


# ----- the view in the URL -----
#: The query parameters that make a shareable view, in the order the link lists them.
URL_KEYS = ("page", "dataset", "split", "checkpoint", "projection", "colour", "selection")
#: The most selected ids a link holds; a larger selection is left out of it.
URL_MAX_IDS = 500


def start_page(default: str) -> str:
    """The page a session opens on: the one its link names (``?page=models``), else ``default``;
    read once per session, so that later runs keep it."""
    return Session.start_page.setdefault(url_get("page") or default)


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
