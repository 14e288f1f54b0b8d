"""The latent map, in one place: its one key (:class:`MapKey`), its background jobs, the maps shipped
beside a checkpoint or cached on disk, a split's points placed on the train split's map, the user's
own images placed on it, its payload for the map component (:mod:`vqviz_app.mapview`), and the callbacks
that keep what is clicked on it.

t-SNE and UMAP take seconds to minutes, so a map is computed by the "maps" worker of
:mod:`vqviz_app.jobs`; meanwhile a page shows the split's PCA map (instant) with the computation's
progress. The pages draw the map with :func:`draw` (the Latent map) and :func:`draw_picker` (the
Style mixer's small map, whose clicks pick latents).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import streamlit as st

from vqviz import analysis, map_store, projection, web
from vqviz.analysis import placement
from vqviz.data.latents import NO_IMAGES
from vqviz.errors import DataError, VqvizError
from vqviz.web import MapData

from . import cache, figures, jobs, mapview
from .cache import View
from .state import Field, Loaded, Session, session

#: How long a page waits for a map computed in the background before it shows PCA's meanwhile.
MAP_WAIT_S = 0.5
#: Fitted train maps kept in memory (a t-SNE of 60,000 latents holds its affinities: tens of MB).
KEEP_TRAIN_MAPS = 2
#: A split's t-SNE or UMAP map is fitted again in memory, to place new images by the method's
#: transform, up to this many points (digits' 360 test points: a few seconds); past it, new images
#: are placed among their nearest latents instead of waiting minutes.
REFIT_MAX = 1000
#: The user's images placed at once.
MAX_OWN = 12
#: The file types the uploader offers (anything else Pillow reads is refused with a message).
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]


@dataclass(frozen=True)
class MapKey:
    """One map: the split it lays out (``view``), by which projection and parameters, and whether its
    points are placed on the train split's map (``on_train``, openTSNE's or UMAP's ``transform``).

    The map's one key: of its background jobs, its caches (the figure, the user's placed images,
    the projector fitted in memory) and its chart. The file it is kept in on disk is named by
    :func:`vqviz.map_store.cache_key` from the same fields and the checkpoint's weights, so that a
    copy of the checkpoint finds it (:func:`_store_key`)."""

    view: View
    method: str
    params: tuple[tuple[str, float], ...] = ()
    on_train: bool = False

    @classmethod
    def of(cls, view: View, method: str, params: dict | None = None, on_train: bool = False) -> MapKey:
        return cls(view, method, tuple(sorted((params or {}).items())), on_train)

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    @property
    def train(self) -> MapKey:
        """The train split's own map by the same method and parameters: the one this map's points are
        placed on, when ``on_train``."""
        return MapKey(self.view.on("train"), self.method, self.params)

    @property
    def pca(self) -> MapKey:
        """The split's PCA map, shown while this one is computed."""
        return MapKey(self.view, "pca")


class Shown(NamedTuple):
    """The map on screen: the one ``asked`` for, or while it is computed, the split's PCA map (``key``).

    xy : (N, 2) the split's points.
    background : (N_train, 2) the train split's map under them, when they are placed on it.
    train : the fitted train map (a :class:`vqviz.projection.Projector`) they were placed by.
    """

    asked: MapKey
    key: MapKey
    xy: np.ndarray
    background: np.ndarray | None = None
    train: projection.Projector | None = None

    @property
    def arrived(self) -> bool:
        return self.key == self.asked


# ----- the background jobs -----
def _store_key(key: MapKey, sha: str) -> dict:
    """The arguments that name the map ``key`` on disk (:func:`vqviz.map_store.cache_key`)."""
    return dict(checkpoint_sha=sha, dataset=key.view.dataset, split=key.view.split, **key.kwargs)


def _sha(loaded: Loaded) -> str:
    return loaded.ckpt.meta["weights"]["sha256"]


def projection_job(key: MapKey, sha: str, latents: np.ndarray, labels: np.ndarray) -> tuple[Future, jobs.Progress]:
    """The map ``key`` of ``latents`` (N, d) from the disk cache, or computed in the background (t-SNE and
    UMAP take seconds; UMAP's first call also compiles). ``sha``: the checkpoint's weights. Returns the
    future (an (N, 2) array, or {"error": message}) and its progress."""
    job = ("map", key)
    worker = jobs.background("maps")
    progress = worker.progress.setdefault(job, jobs.Progress())
    folder = map_store.cache_dir()  # read now: the environment is the page's

    def compute() -> np.ndarray:
        return map_store.cached_project(latents, key.method, labels=labels, progress=progress, cache=folder,
                                        **_store_key(key, sha))

    return worker.submit(job, compute), progress


def train_jobs(key: MapKey, train_latents: np.ndarray, train_labels: np.ndarray,
               latents: np.ndarray) -> tuple[Future, Future, jobs.Progress]:
    """The train split's map (``key.train``) as a fitted :class:`vqviz.projection.Projector`, and the
    ``latents`` of ``key``'s split placed on it by its ``transform``, both in the background (the fit
    of a large train split takes minutes). Returns the fit's future, the placed points' future (an
    (N, 2) array) and their progress; a failure is {"error": message} in either. The fitted maps
    are kept in memory, the :data:`KEEP_TRAIN_MAPS` most recently asked for (a Projector is never
    written to disk)."""
    fit_job = ("fit", key.train)
    worker = jobs.background("maps")
    progress = worker.progress.setdefault(fit_job, jobs.Progress())

    def fit() -> projection.Projector:
        return projection.Projector(key.method, **key.kwargs).fit(train_latents, train_labels, progress=progress)

    fitted = worker.submit(fit_job, fit)
    worker.keep_recent(fit_job, KEEP_TRAIN_MAPS, made_from=lambda k, old: k[0] == "placed" and k[1].train == old[1])

    def place() -> np.ndarray:
        model = fitted.result()  # submitted before this one, to the same single worker: already done
        return model if isinstance(model, dict) else model.transform(latents, progress)

    return fitted, worker.submit(("placed", key), place), progress


def _project(loaded: Loaded, key: MapKey) -> tuple[Future, jobs.Progress]:
    return projection_job(key, _sha(loaded), loaded.table.latents, loaded.table.labels)


def _on_train(loaded: Loaded, key: MapKey) -> tuple[Future, Future, jobs.Progress]:
    train = cache.point_table(key.train.view)
    return train_jobs(key, train.latents, train.labels, loaded.table.latents)


def shipped(loaded: Loaded, key: MapKey) -> np.ndarray | None:
    """The map ``key`` if the checkpoint carries it in its ``maps/`` folder
    (:func:`vqviz.map_store.store_beside`), else None."""
    return map_store.read_beside(loaded.entry.path, len(loaded.table.latents), key.method,
                                 **_store_key(key, _sha(loaded)))


def pending(loaded: Loaded, key: MapKey) -> bool:
    """Start the map ``key`` in the background (with ``on_train``, the train map and the placing of this
    split's points on it), wait up to :data:`MAP_WAIT_S` for it, and say whether it is still being
    computed."""
    if key.on_train:
        _, future, _ = _on_train(loaded, key)
    elif shipped(loaded, key) is not None:
        return False
    else:
        future, _ = _project(loaded, key)
    jobs.ready(future, MAP_WAIT_S)
    return not future.done()


def shown(loaded: Loaded, key: MapKey, wait: float = MAP_WAIT_S) -> Shown:
    """The map ``key`` if the background has computed it within ``wait`` seconds; else the split's PCA
    map (instant), with the computation's progress above it."""
    if key.on_train:
        placed = _placed_on_train(loaded, key)
        if placed is not None:
            return placed
        xy, at = _or_meanwhile(loaded, key.pca, wait=0.0)
    else:
        xy, at = _or_meanwhile(loaded, key, wait)
    return Shown(key, at, xy)


def _or_meanwhile(loaded: Loaded, key: MapKey, wait: float) -> tuple[np.ndarray, MapKey]:
    """The split's map ``key``, or its PCA map with the computation's progress; and the key of the map returned."""
    xy = shipped(loaded, key)
    if xy is not None:
        return xy, key
    future, progress = _project(loaded, key)
    xy = jobs.ready(future, wait)
    method = projection.METHODS.get(key.method, key.method)
    if isinstance(xy, dict):  # the method failed: say why, and show PCA's map
        st.error(f"The {method} map cannot be made: {xy.get('error')}")
    elif xy is not None:
        return xy, key
    if key.method != "pca" and xy is None:
        note = " (UMAP's first run also compiles, about half a minute)" if key.method == "umap" else ""
        st.progress(progress.fraction, text=f"{method} map, computed in the background: {progress.message}{note}. "
                                            "PCA's map meanwhile.")
    table = loaded.table
    return map_store.cached_project(table.latents, "pca", labels=table.labels, **_store_key(key.pca, _sha(loaded))), \
        key.pca


def _placed_on_train(loaded: Loaded, key: MapKey) -> Shown | None:
    """The split's points placed on the train split's map, that map, and its fitted Projector; or None,
    with the computation's progress shown, while they are computed in the background.

    The train map is fitted once per model, method and parameters and kept in memory; each split
    placed on it afterwards costs only the placing. The placed points (N, 2) and the train map
    (N_train, 2) are in the same coordinates.
    """
    fitted, placed, progress = _on_train(loaded, key)
    xy, model = jobs.ready(placed), jobs.ready(fitted)
    for out in (model, xy):
        if isinstance(out, dict):
            raise VqvizError(f"the train map cannot be made: {out.get('error')}")
    if xy is None:
        message = progress.message
        st.progress(progress.fraction, text=message if message.startswith("placing") else
                    f"The train map, computed in the background: {message}. This split's PCA map meanwhile.")
        return None
    return Shown(key, key, xy, model.embedding_, model)


# ----- the map component, and what is selected on it -----
#: The map's key in the page (its elements are keyed from it: see :func:`vqviz_app.mapview.map_view`).
MAP = "latent_map"
#: The hover card's thumbnails are at most this many pixels a side (larger images are shrunk for the atlas).
THUMB_MAX = 32
#: Thumbnail pixels in one atlas, at most: past it, the thumbnails shrink (70,000 MNIST digits: 55 M).
ATLAS_PIXELS = 64_000_000
#: The point fields the hover card shows under the image.
HOVER = ("label", "cluster")


def payload(loaded: Loaded, at: Shown) -> MapData:
    """The map ``at`` packed for the browser: positions, every colouring's field, and each point's image
    as a thumbnail; built once per map (a colouring, a selection or a mark sends no points again)."""
    return _payload(at.key, at.xy, loaded.table, loaded.classes, at.background)


@st.cache_resource(max_entries=16, show_spinner=False)
def _payload(key: MapKey, _xy: np.ndarray, _table: analysis.PointTable, _classes: tuple,
             _background: np.ndarray | None = None) -> MapData:
    atlas, size, cols, shrunk = thumbnails(key.view.dataset, key.view.split) or (None, 1, None, 1)
    return web.pack(_xy[:, 0], _xy[:, 1], fields(_table, _classes), atlas=atlas, thumb_size=size, atlas_cols=cols,
                    shrunk=shrunk, background=_background)


def fields(table: analysis.PointTable, classes: tuple) -> dict[str, web.Field]:
    """Every colouring of the map (:data:`vqviz_app.state.COLOURS`) as a field of its points."""
    n_classes = max(len(classes), int(table.labels.max()) + 1 if len(table.labels) else 0)
    names = [classes[c] if c < len(classes) else str(c) for c in range(n_classes)]
    out = {"label": web.Field(table.labels, names, figures.palette(n_classes))}
    if table.has_clusters:
        k = len(table.cluster_labels)
        out["cluster"] = web.Field(table.clusters, [str(i) for i in range(k)], figures.palette(k))
        predicted = table.cluster_labels[table.clusters]  # -1: a cluster with no label
        out["predicted"] = web.Field(np.where(predicted < 0, n_classes, predicted), [f"→ {c}" for c in names] + ["no label"],
                                     [*figures.palette(n_classes), "#7f7f7f"])
        out["correct"] = web.Field((predicted != table.labels).astype(np.uint8), ["right", "wrong"],
                                   ["#9ab3c9", "#d55e00"])
    if table.entropy is not None:
        # 0 (a hard assignment) to ln K (uniform over the K codewords), whatever the model
        out["entropy"] = web.Field(table.entropy, continuous=True, range=(0.0, max(float(table.max_entropy), 1e-6)))
    return out


@st.cache_resource(max_entries=6, show_spinner="Making the map's thumbnails...")
def thumbnails(name: str, split: str) -> tuple[bytes, tuple[int, int], int, int] | None:
    """Every image of the split as one PNG atlas for the hover card: the atlas, a thumbnail's (width,
    height), the thumbnails a row and how many times the images were shrunk; None for a file of latents
    without images. Images larger than :data:`THUMB_MAX` (or than :data:`ATLAS_PIXELS` allows, for a very
    large split: a million 28-pixel digits become 7-pixel thumbnails) are shrunk by an integer factor,
    averaging blocks of pixels."""
    if not has_images(name, split):
        return None
    images = cache.dataset(name, split).images  # (N, C, H, W) in [0, 1]
    n, _, h, w = images.shape
    limit = max(4, min(THUMB_MAX, int(np.sqrt(ATLAS_PIXELS / max(n, 1)))))
    f = max(1, -(-max(h, w) // limit))
    if f > 1:
        h, w = h // f * f, w // f * f
        images = images[:, :, :h, :w].reshape(n, images.shape[1], h // f, f, w // f, f).mean((3, 5))
    png, cols = web.atlas_png(np.moveaxis(images, 1, -1))
    return png, (w // f, h // f), cols, f


def has_images(name: str, split: str) -> bool:
    """Whether the split has images: a file of latents may come without (then each is one blank pixel)."""
    return tuple(cache.dataset(name, split).images.shape[1:]) != NO_IMAGES


def follow(key: MapKey) -> None:
    """The map to draw is ``key``: a selection belongs to one split of one model (on another layout of
    it, its rows are kept)."""
    of = (key.view.path, key.view.dataset, key.view.split)
    if session.map_of != of:
        del session.map_selection
        session.map_of = of


def clear_selection() -> None:
    """Forget the selection, and draw a new map element, so that the browser's selection goes too."""
    del session.map_selection
    session.map_generation += 1


def selected(loaded: Loaded, at: Shown) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The rows selected on the map, and the position of a clicked empty spot (or None)."""
    chosen = session.map_selection or {}
    rows = np.unique(np.asarray(chosen.get("rows", []), dtype=np.int64))
    spot = chosen.get("spot")
    return rows[(rows >= 0) & (rows < len(at.xy))], (float(spot[0]), float(spot[1])) if spot else None


def keep_selection(generation: int):
    """An ``on_change`` callback that stores the map's selection in ``session.map_selection``, so that it
    outlives the map element: its rows, or for a click on an empty spot, the spot's position."""

    def callback() -> None:
        chosen = mapview.selection_of(MAP, generation)
        if chosen.kind == "spot":
            session.map_selection = {"rows": [], "spot": list(chosen.spot)}
        else:
            session.map_selection = {"rows": chosen.rows.tolist(), "kind": chosen.kind}

    return callback


def draw(loaded: Loaded, at: Shown, colour: str, own: Own, spot: tuple[float, float] | None,
         decode: bool = False) -> None:
    """The map, with the user's placed images (stars) and a decoded spot (a cross) on top; a click, a box
    or a lasso is kept by :func:`keep_selection`. The browser keeps the points: a rerun sends only what
    changed (colour, marks, the selection restored from the URL). ``decode``: decode under the cursor,
    in the browser."""
    data = payload(loaded, at)
    rows, _ = selected(loaded, at)
    marks = [mapview.Mark(float(p.xy[0]), float(p.xy[1]), str(i + 1), name)
             for i, (p, name) in enumerate(zip(own.placed, own.names))]
    hover = [f for f in HOVER if f in data.fields] + (["entropy"] if colour == "entropy" else [])
    generation = session.map_generation
    mapview.map_view(data, key=MAP, generation=generation, colour=colour if colour in data.fields else "label",
                     hover=hover, marks=marks, spot=spot, selected=rows.tolist(), on_change=keep_selection(generation),
                     decode=_under_cursor(loaded, at) if decode else None)
    xy = at.xy
    if at.background is not None:
        st.caption(f"The {len(xy):,} test points placed, by {projection.METHODS[at.key.method]}'s transform, on the "
                   f"map of the {len(at.background):,} training points (grey): each lands among the training points "
                   "whose latents are most like its own.")
    if colour == "entropy" and loaded.table.entropy is not None and not loaded.model.is_soft:
        st.caption("Every assignment of this model is hard (one-hot), so every entropy is 0.")


def _under_cursor(loaded: Loaded, at: Shown) -> mapview.Decode | None:
    """What decoding under the cursor needs, or None (and the page says why the server decodes)."""
    from vqviz_app import decoding

    sent = decoding.decoder(loaded)
    why = sent.why
    decode = None if why else decoding.under_cursor(at.key, map_model(loaded, at, fitted=False), sent.blob)
    if isinstance(decode, str) or why:
        st.caption(f":material/dns: Decoding under the cursor is off: {why or decode}. A click on an empty spot "
                   "decodes it on the server.")
        return None
    return decode


def draw_picker(loaded: Loaded, colour: str, picked: np.ndarray, rows: Field, keep: int = 3) -> None:
    """A smaller map (by the Latent map's projection) with the ``picked`` rows selected; each click adds
    its point to the list ``rows``, which keeps the last ``keep``."""
    at = shown(loaded, MapKey.of(loaded.view, session.method or "tsne"))
    data = payload(loaded, at)

    def callback() -> None:
        clicked = mapview.selection_of("mix_map").rows
        if len(clicked):
            rows.set([*rows.get(), *clicked.tolist()][-keep:])

    mapview.map_view(data, key="mix_map", colour=colour if colour in data.fields else "label",
                     hover=[f for f in HOVER if f in data.fields], selected=[int(r) for r in picked], height=420,
                     on_change=callback)


# ----- placing on the map, and going back from it -----
def map_model(loaded: Loaded, at: Shown, fitted: bool) -> placement.MapModel:
    """The shown map as a :class:`~vqviz.analysis.placement.MapModel`. When its points are placed on the
    train map, that fitted map. ``fitted``: also fit the map's projector in memory when the map is
    small enough (:data:`REFIT_MAX`), to place new images by its transform; PCA's is always fitted (it
    is instant), so that a spot goes back by its exact inverse."""
    key = at.key
    if at.train is not None:  # the train map is in memory already: the test points were placed on it
        latents = cache.point_table(key.train.view).latents
        return placement.MapModel(key.method, at.train.embedding_, latents, at.train)
    fit = None
    if key.method == "pca" or (fitted and len(at.xy) <= REFIT_MAX):
        fit = _projector(key)
        if fit.embedding_.shape != at.xy.shape or not np.allclose(fit.embedding_, at.xy, atol=1e-3):
            fit = None  # not the map on screen (threads round differently): place among neighbours
    return placement.MapModel(key.method, at.xy, loaded.table.latents, fit)


@st.cache_resource(max_entries=4, show_spinner="Fitting the map's model, to place points on it...")
def _projector(key: MapKey) -> projection.Projector:
    """The map ``key`` as a fitted Projector, kept in memory: the same seed and settings as the cached
    map, so its ``embedding_`` is that map (for a split of one thread's size)."""
    table = cache.point_table(key.view)
    return projection.Projector(key.method, **key.kwargs).fit(table.latents, table.labels)


class Own(NamedTuple):
    """The user's images placed on the map: each :class:`~vqviz.analysis.placement.Placed`, its file's name,
    and a digest of each file."""

    placed: list[placement.Placed]
    names: list[str]
    digests: tuple[str, ...]


def place_own(loaded: Loaded, at: Shown) -> Own:
    """The uploader of the user's own images, and those images placed on the map ``at`` (none for a file of
    latents without images: there is no image format to convert them to)."""
    if not has_images(loaded.data.name, loaded.data.split):
        return Own([], [], ())
    files = st.file_uploader("Place your own images on the map", type=IMAGE_TYPES, accept_multiple_files=True,
                             key=Session.place_upload.key, max_upload_size=placement.MAX_UPLOAD_BYTES // 2**20,
                             help="Each image is converted like the data set (size, grey or colour; dark ink on "
                                  "white is inverted for white-on-black digits), encoded, and marked on the map "
                                  "with a star, beside its cluster and its nearest neighbours.")
    names, images, digests = _own_images(loaded, files or [])
    placed = []
    if len(images):
        placed = _placed_images(at.key, digests, map_model(loaded, at, fitted=True), images)
    return Own(placed, names, digests)


def _own_images(loaded: Loaded, files) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """The uploaded ``files`` converted to the data set's format: their names, (M, C, H, W) images and
    a digest of each file. A file that is not a usable image gets a message naming it; the rest go on."""
    names, images, digests = [], [], []
    if len(files) > MAX_OWN:
        st.warning(f"{len(files)} images uploaded; the first {MAX_OWN} are placed.")
    level = cache.border_level(loaded.data.name, loaded.data.split)
    for f in files[:MAX_OWN]:
        raw = f.getvalue()
        try:
            images.append(placement.to_dataset_format(raw, loaded.data.shape, f.name, background=level))
        except DataError as e:
            st.error(str(e), icon=":material/broken_image:")
            continue
        names.append(f.name)
        digests.append(hashlib.sha256(raw).hexdigest()[:16])
    shape = (0, *loaded.data.shape)
    return names, np.stack(images) if images else np.zeros(shape, np.float32), tuple(digests)


@st.cache_resource(max_entries=16, show_spinner="Placing your images on the map...")
def _placed_images(key: MapKey, digests: tuple, _where: placement.MapModel, _images: np.ndarray):
    """The user's images (``digests`` name them) encoded, assigned and placed on the map ``key``."""
    view = key.view
    return placement.place_images(cache.checkpoint(view.path, view.stamp).model, _images, cache.point_table(view),
                                  _where)
