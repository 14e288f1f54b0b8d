"""The map component: a Streamlit component (components v2) that draws a packed map
(:func:`vqviz.web.pack`) with WebGL, shows each point's own image on hover, and sends back what is
selected on it as a :class:`Selection` of rows.

Each map is three elements in one gap-less container:

- the *store*, whose data is the points' binary payload, sent once per session and payload
  (:data:`SENT`): later reruns leave it out, and the decoded payload stays in the page;
- the *view*, whose data is small JSON naming the payload by its digest (colour, marks, a spot, a
  selection to restore): a click, a new colour or a new mark re-sends a few hundred bytes;
- the *atlas* store, the thumbnails, sent once like the points but after the view, so that the map is
  drawn before its hover images arrive.

With decoding under the cursor on, two blobs (:mod:`vqviz.web.blobs`) travel likewise before the view: the
decoder and, for a map without an exact inverse, the map's points and latents. The style mixer
(:func:`mixer_view`) is a view of the same component, sent its decoder the same way.

If the page lacks a payload it was not sent again (the browser keeps the last three), the view asks
for it (its ``missing`` trigger) and the next run sends it. The built frontend is ``vqviz/web/static``
(its source: the repository's ``frontend/``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import streamlit as st

from vqviz.web import Blob, MapData

#: The component's name: "<distribution>.<component>" of the manifest vqviz/pyproject.toml.
COMPONENT = "vqviz.map"
#: session state: the digests of the payloads this session's browser has, per map key
SENT = "_vqviz_map_sent"
#: Packed maps kept by digest, for a view whose payload the page lost (and for the tests to read).
KEEP = 8
_recent: OrderedDict[str, MapData] = OrderedDict()


class Mark(NamedTuple):
    """A star drawn over the map (the user's placed image): its data position, label and title."""

    x: float
    y: float
    label: str
    title: str = ""


class Decode(NamedTuple):
    """What decoding under the cursor needs in the browser: the decoder's blob, the way back from the
    map (``inverse``: PCA's {kind: "pca", mean, components, offset, d, how}, or {kind: "mix", k, how}
    over ``latents``, the blob of the map's points and latents)."""

    decoder: Blob
    inverse: dict
    latents: Blob | None = None


class Selection(NamedTuple):
    """What is selected on the map.

    kind : "none", "point", "lasso", "box" or "spot".
    rows : the selected rows (int64), sorted; empty for "none" and "spot". Background points never count.
    spot : (x, y) in data coordinates, for a click on an empty spot; else None.
    polygon : the lasso's or the box's vertices in data coordinates; else None.
    seq : the browser's count of selections (tells two identical selections apart).
    """

    kind: str = "none"
    rows: np.ndarray = np.zeros(0, np.int64)
    spot: tuple[float, float] | None = None
    polygon: list[tuple[float, float]] | None = None
    seq: int = 0


@st.cache_resource(show_spinner=False)
def _component() -> Callable[..., Any]:
    # isolate_styles=False: regl-scatterplot's lasso puts its styles in the document's head, which a
    # shadow root would keep out; the component's own CSS is scoped under .vqm-root instead
    return st.components.v2.component(COMPONENT, js="map.js", css="map.css", isolate_styles=False)


def remember(data: MapData) -> MapData:
    """Keep ``data`` among the :data:`KEEP` most recently drawn maps, findable by :func:`packed`."""
    _recent[data.digest] = data
    _recent.move_to_end(data.digest)
    while len(_recent) > KEEP:
        _recent.popitem(last=False)
    return data


def packed(digest: str) -> MapData | None:
    """A map drawn recently, by its payload's digest."""
    return _recent.get(digest)


def map_view(data: MapData, *, key: str, generation: int = 0, colour: str | None = None,
             hover: Sequence[str] | None = None, marks: Sequence[Mark] = (), spot: tuple[float, float] | None = None,
             selected: Sequence[int] | None = None, height: int = 620, point_size: float | None = None,
             legend_max: int = 40, decode: Decode | None = None,
             on_change: Callable[[], None] | None = None) -> Selection:
    """Draw the packed map ``data`` and return its :class:`Selection`.

    key : the map's key; its elements are keyed "<key>-store", "<key>-atlas" and "<key>-<generation>".
    generation : a new generation is a new view with no selection (e.g. "Clear selection"); the payload
        is not sent again.
    colour : the field that colours the map (default: the first); ``hover``: the fields the hover card
        shows under the image (default: all).
    marks : stars drawn on the map; ``spot``: a cross (a decoded empty spot).
    selected : rows to select in the browser, applied once per distinct list (e.g. from the URL, or the
        mixer's picked latents); None leaves the browser's selection alone.
    decode : decode under the cursor, in the browser (None: off). Where the browser cannot, the map's
        toolbar says so, and a click decodes on the server as ever.
    on_change : called (as a widget callback) when the selection changes; read it there with
        :func:`selection_of`.
    """
    remember(data)
    select = None
    if selected is not None:
        rows = [int(r) for r in selected]
        # once per list and payload: a new layout of the same points shows the selection again
        token = hashlib.blake2b(np.asarray(rows, np.int64).tobytes() + data.digest.encode(), digest_size=8)
        select = dict(rows=rows, token=token.hexdigest())
    props = dict(store=data.digest, colour=colour or (data.fields[0] if data.fields else ""),
                 hover=list(hover if hover is not None else data.fields),
                 marks=[dict(x=float(m.x), y=float(m.y), label=str(m.label), title=str(m.title)) for m in marks],
                 spot=[float(spot[0]), float(spot[1])] if spot is not None else None, select=select,
                 height=int(height), point_size=point_size, legend_max=int(legend_max), decode=None)
    if decode is not None:
        inverse = dict(decode.inverse, latents=decode.latents.digest) if decode.latents else dict(decode.inverse)
        props["decode"] = dict(decoder=decode.decoder.digest, inverse=inverse)
    sent = st.session_state.setdefault(SENT, {})
    mine = sent.setdefault(key, set())

    def missing() -> None:  # the page lacks a payload: send it again
        mine.clear()

    component = _component()
    with st.container(gap=None):
        if data.digest not in mine:
            component(key=f"{key}-store", data=data.blob)
            mine.add(data.digest)
        if decode is not None:
            for name, blob in (("decoder", decode.decoder), ("latents", decode.latents)):
                if blob is not None and blob.digest not in mine:
                    component(key=f"{key}-{name}", data=blob.data)
                    mine.add(blob.digest)
        result = component(key=f"{key}-{generation}", data=props, on_selection_change=on_change or _nothing,
                           on_missing_change=missing)
        if data.atlas is not None and data.atlas_digest not in mine:
            component(key=f"{key}-atlas", data=data.atlas)
            mine.add(data.atlas_digest)
    return _selection(result.get("selection") if result is not None else None)


def mixer_view(*, key: str, latents: np.ndarray, shape: tuple[int, int, int], scale: int,
               alpha: tuple[float, float], step: float, decoder: Blob | None, why: str = "",
               image: str | None = None, on_change: Callable[[], None] | None = None) -> None:
    """The style mixer's sliders and mixture, decoded in the browser by ``decoder`` (sent once per session).

    latents : (3, d) z1, z2, z3; ``shape``: (C, H, W) of a decoded image, shown ``scale`` times enlarged.
    alpha : the weights (a1, a2) to show; ``step``: the sliders' step.
    decoder : the decoder's blob; None: the server decodes, for the reason ``why``, and ``image`` (a data
        URL) is its picture of the mixture at ``alpha``.
    on_change : called (as a widget callback) when the sliders rest at new weights, or when the browser
        could not decode; read them there with :func:`mixer_state`.
    """
    sent = st.session_state.setdefault(SENT, {})
    mine = sent.setdefault(key, set())

    def missing() -> None:
        mine.clear()

    component = _component()
    props = dict(kind="mixer", decoder=decoder.digest if decoder else None,
                 latents=np.asarray(latents, dtype=np.float32).tolist(), shape=[int(s) for s in shape],
                 scale=int(scale), alpha=[float(alpha[0]), float(alpha[1])], step=float(step), image=image,
                 why=why or None)
    with st.container(gap=None):
        if decoder is not None and decoder.digest not in mine:
            component(key=f"{key}-decoder", data=decoder.data)
            mine.add(decoder.digest)
        component(key=key, data=props, on_mixer_change=on_change or _nothing, on_missing_change=missing)


def mixer_state(key: str) -> tuple[tuple[float, float] | None, str | None]:
    """The weights the mixer's sliders rest at (None before the first move), and why the browser could
    not decode (None if it could), as the session holds them."""
    state = _state_value(key, "mixer")
    raw, why = (state.get("alpha"), state.get("error")) if isinstance(state, dict) else (None, None)
    try:
        alpha = (float(raw[0]), float(raw[1])) if raw is not None else None
    except (TypeError, ValueError, IndexError):
        alpha = None
    return alpha, str(why)[:300] if why else None


def _state_value(element: str, name: str) -> Any:
    """A value the component set for ``element`` (its key), as the session holds it."""
    state = st.session_state.get(element)
    return state.get(name) if isinstance(state, dict) else None


def selection_of(key: str, generation: int = 0) -> Selection:
    """The selection of the map ``key`` as the session holds it: for an ``on_change`` callback, which
    runs before the script (and so before :func:`map_view` returns)."""
    return _selection(_state_value(f"{key}-{generation}", "selection"))


def _nothing() -> None:
    pass


def _selection(raw: Any) -> Selection:
    """A :class:`Selection` from the browser's value, whatever it holds: anything malformed is no selection."""
    if not isinstance(raw, dict):
        return Selection()
    try:
        kind = str(raw.get("kind", "none"))
        rows = np.unique(np.asarray(raw.get("rows") or [], dtype=np.int64))
        spot = raw.get("spot")
        polygon = raw.get("polygon")
        return Selection(kind, rows, (float(spot[0]), float(spot[1])) if spot else None,
                         [(float(a), float(b)) for a, b in polygon] if polygon else None, int(raw.get("seq", 0)))
    except (TypeError, ValueError, IndexError):
        return Selection()
