"""2-D maps of latents: t-SNE (openTSNE), UMAP or PCA.

A :class:`Projector` fits the method on at most :data:`MAX_FIT` latents, a seeded
random sample (each label keeping its share when labels are given), and places every
other latent with the fitted model's own ``transform``: openTSNE's
``TSNEEmbedding.transform`` (Poličar et al. 2019, which optimises each new point
against the fixed map), UMAP's or PCA's. A map of a million latents then costs a fit
of MAX_FIT points and a cheap placement of the rest; every latent still gets
coordinates, so every one can be selected. The same Projector places new latents on
the map later without moving any point already there. A fitted Projector lives in
memory only: its model holds a nearest-neighbour index that only pickle could save,
and vqviz never unpickles; the maps themselves are kept on disk by :mod:`vqviz.map_store`.

The way back from the map, for decoding any spot: :meth:`Projector.inverse` (PCA's exact
inverse, UMAP's ``inverse_transform``) and, for t-SNE, :func:`interpolate`, a convex mix of
the latents of the nearest map points.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, NamedTuple

import numpy as np

from .errors import ConfigError

#: Method name -> what the app calls it.
METHODS = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
#: The parameters of each method that change the map (and so its key in :mod:`vqviz.map_store`), with defaults.
DEFAULTS: dict[str, dict] = {
    "tsne": {"perplexity": 30.0},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
    "pca": {},
}
#: Maps of at least this many points use every core (see :class:`Projector`).
THREADS_FROM = 10_000
#: Past this many latents the method is fitted on a sample of this size and places the rest.
MAX_FIT = 100_000
#: Latents placed per call of the fitted model's transform, so that progress is reported between calls.
CHUNK = 10_000
#: Below this many points t-SNE finds exact neighbours: faster than the approximate index there.
EXACT_NEIGHBOURS_BELOW = 3000
#: openTSNE's two phases: early exaggeration, then the main optimisation (its defaults).
_TSNE_ITERS = (250, 500)
#: openTSNE's perplexity for placing new points (its default): each one attends to its few nearest fitted neighbours.
_TSNE_PLACE_PERPLEXITY = 5.0
#: Optimisation steps that place a new point. openTSNE's default is 250; on MNIST latents 100 place points
#: as well (10-NN label accuracy and trustworthiness of the placed points within 0.001) in 40% of the time.
_TSNE_PLACE_ITERS = 100
#: Time to fit one point over time to place one (t-SNE on MNIST: about 6; UMAP taken alike), for the progress bar.
_FIT_COST = {"tsne": 6.0, "umap": 6.0, "pca": 1.0}

Progress = Callable[[float, str], None]


def _silent(fraction: float, message: str) -> None:
    pass


def _within(report: Progress, start: float, end: float) -> Progress:
    """``report`` with fractions 0..1 mapped onto ``start``..``end`` of the whole bar."""
    return lambda fraction, message: report(start + (end - start) * fraction, message)


def _as_latents(latents: np.ndarray) -> np.ndarray:
    z = np.asarray(latents, dtype=np.float32)
    if z.ndim != 2:
        raise ConfigError(f"latents must be (N, d), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ConfigError("the latents contain NaN or infinite values; the model may have diverged")
    return z


def _check(latents: np.ndarray, method: str, params: dict) -> tuple[np.ndarray, dict]:
    if method not in METHODS:
        raise ConfigError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    unknown = sorted(set(params) - set(DEFAULTS[method]))
    if unknown:
        raise ConfigError(f"{METHODS[method]} has no parameter {', '.join(unknown)}; "
                          f"its parameters are {', '.join(DEFAULTS[method]) or 'none'}")
    z = _as_latents(latents)
    if len(z) < 3:
        raise ConfigError(f"a map needs at least 3 points, got {len(z)}")
    return z, {**DEFAULTS[method], **params}


def fit_sample(n: int, size: int, labels: np.ndarray | None = None, random_state: int = 0) -> np.ndarray:
    """Sorted rows of a seeded random sample of ``size`` of ``n`` points (all ``n`` if ``size >= n``).

    With ``labels``, each label keeps its share of the sample (rounded): a point's rank
    among its label's points, in random order, divided by the label's count, says how
    early it is taken, so every label is drawn down at the same rate.
    """
    if size >= n:
        return np.arange(n)
    order = np.random.default_rng(random_state).permutation(n)
    if labels is None:
        return np.sort(order[:size])
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ConfigError(f"labels must be ({n},), one per latent, got shape {labels.shape}")
    _, label_of, counts = np.unique(labels[order], return_inverse=True, return_counts=True)
    by_label = np.argsort(label_of, kind="stable")  # positions in `order`, label after label
    rank = np.empty(n)
    rank[by_label] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.sort(order[np.argsort((rank + 0.5) / counts[label_of], kind="stable")[:size]])


class Projector:
    """A 2-D map fitted on at most ``max_fit`` latents, onto which any latent can be placed.

    Parameters
    ----------
    method : "tsne" (openTSNE, FFT-accelerated), "umap" or "pca".
    max_fit : the most latents the method is fitted on (None: :data:`MAX_FIT`); past it, :meth:`fit`
        fits a seeded sample (see :func:`fit_sample`) and places the others with :meth:`transform`.
    random_state : seed of the sample and of the method's randomness.
    n_jobs : threads for t-SNE and UMAP: a matter of speed (and, for large maps, of rounding).
        The default, None, uses one below :data:`THREADS_FROM` points and every core above:
        threads cost more than they save on a small map.
    params : the method's parameters (see :data:`DEFAULTS`); a perplexity or a
        neighbour count too large for the fitted sample is lowered to fit.

    Attributes
    ----------
    embedding_ : (N, 2) float32 map of the latents given to :meth:`fit`, centred.
    fit_rows_ : (n_fit,) sorted rows of those latents that the method was fitted on.
    model_ : the fitted openTSNE ``TSNEEmbedding``, ``umap.UMAP`` or scikit-learn ``PCA``.
    offset_ : (2,) what is taken off the model's coordinates to centre the map.
    n_features_in_ : d, the width of the latents.
    """

    def __init__(self, method: str = "tsne", *, max_fit: int | None = None, random_state: int = 0,
                 n_jobs: int | None = None, **params):
        self.method = method
        self.max_fit = max_fit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.params = params

    def fit(self, latents: np.ndarray, labels: np.ndarray | None = None,
            progress: Progress | None = None) -> Projector:
        """Map (N, d) ``latents``; ``labels`` (N,), if given, stratify the fitted sample.

        ``progress(fraction, message)`` hears of the fit (t-SNE every 25 iterations,
        UMAP and PCA at the start) and of every :data:`CHUNK` latents placed.
        """
        z, params = _check(latents, self.method, self.params)
        max_fit = MAX_FIT if self.max_fit is None else self.max_fit
        if max_fit < 3:
            raise ConfigError(f"max_fit must be at least 3, got {max_fit}")
        report = progress or _silent
        n, name = len(z), METHODS[self.method]
        n_jobs = self.n_jobs if self.n_jobs is not None else (os.cpu_count() or 1) if n >= THREADS_FROM else 1
        rows = fit_sample(n, max_fit, labels, self.random_state)
        rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
        cost = _FIT_COST[self.method] * len(rows)
        share = cost / (cost + len(rest))
        report(0.0, f"{name} of {n:,} points" if not len(rest) else
               f"{name} of a sample of {len(rows):,} of the {n:,} points")
        self.model_, fitted = _fit(self.method, z[rows], params, self.random_state, n_jobs,
                                   _within(report, 0.0, share))
        self.n_features_in_ = z.shape[1]
        raw = np.empty((n, 2))
        raw[rows] = fitted
        raw[rest] = self._place(z[rest], _within(report, share, 1.0))
        self.offset_ = raw.mean(0)
        self.embedding_ = (raw - self.offset_).astype(np.float32)
        self.fit_rows_ = rows
        report(1.0, "done")
        return self

    def transform(self, latents: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Place (M, d) new latents on the fitted map, moving none of its points; (M, 2) float32."""
        if not hasattr(self, "model_"):
            raise ConfigError("this Projector has not been fitted: call fit(latents) first")
        z = _as_latents(latents)
        if z.shape[1] != self.n_features_in_:
            raise ConfigError(f"the map was fitted on {self.n_features_in_}-D latents, but these are "
                              f"{z.shape[1]}-D: encode them with the same model")
        report = progress or _silent
        xy = self._place(z, report) - self.offset_
        report(1.0, "done")
        return xy.astype(np.float32)

    def fit_transform(self, latents: np.ndarray, labels: np.ndarray | None = None,
                      progress: Progress | None = None) -> np.ndarray:
        return self.fit(latents, labels, progress).embedding_

    def inverse(self, xy: np.ndarray, latents: np.ndarray | None = None, k: int = 8) -> np.ndarray:
        """(M, d) latents of (M, 2) map positions: the way back from the map.

        PCA: its exact inverse, the point of the plane of the two principal directions (so
        ``transform(inverse(xy)) == xy``). UMAP: its ``inverse_transform``. t-SNE has no
        inverse: a convex mix of the ``latents`` (N, d) given to :meth:`fit` at the ``k``
        nearest points of the map (:func:`interpolate`).
        """
        if not hasattr(self, "model_"):
            raise ConfigError("this Projector has not been fitted: call fit(latents) first")
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.method == "pca":
            return self.model_.inverse_transform(xy + self.offset_)[:, :self.n_features_in_].astype(np.float32)
        if self.method == "umap":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(self.model_.inverse_transform(xy + self.offset_), dtype=np.float32)
        if latents is None or len(latents) != len(self.embedding_):
            raise ConfigError("t-SNE has no inverse: pass the latents the map was fitted on, to mix them")
        return interpolate(xy, self.embedding_, latents, k).latents

    def _place(self, z: np.ndarray, report: Progress) -> np.ndarray:
        """(M, 2) float64 model coordinates of ``z``, :data:`CHUNK` latents per call of the model."""
        out = np.empty((len(z), 2))
        for start in range(0, len(z), CHUNK):
            report(start / len(z), f"placing points {start + 1:,} to {min(start + CHUNK, len(z)):,} "
                                   f"of {len(z):,} on the map")
            out[start:start + CHUNK] = _transform(self.method, self.model_, z[start:start + CHUNK])
        return out


class Interpolation(NamedTuple):
    """Latents mixed from the points of a map.

    latents : (M, d) the mixtures.
    rows : (M, k) the map points mixed for each, nearest first.
    weights : (M, k) their weights: >= 0, summing to 1 (a convex combination).
    """

    latents: np.ndarray
    rows: np.ndarray
    weights: np.ndarray


def interpolate(xy: np.ndarray, map_xy: np.ndarray, latents: np.ndarray, k: int = 8) -> Interpolation:
    """The latents behind (M, 2) positions of a map that has no inverse (t-SNE).

    Each is a convex combination of the latents of its ``k`` nearest points of the (N, 2)
    ``map_xy``, weighted by the inverse of their squared distance on the map (Shepard's
    interpolation), so it lies in the convex hull of those latents; on a map point itself
    it is that point's latent. Moving across the map moves smoothly between styles.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(map_xy, dtype=np.float64)
    z = _as_latents(latents)
    if m.ndim != 2 or m.shape[1] != 2 or len(m) != len(z):
        raise ConfigError(f"a map of shape {m.shape} does not fit latents of shape {z.shape}")
    k = max(1, min(int(k), len(m)))
    d2 = ((xy[:, None, :] - m[None, :, :]) ** 2).sum(-1)  # (M, N) squared distances on the map
    rows = np.argsort(d2, axis=1, kind="stable")[:, :k]
    near = np.take_along_axis(d2, rows, 1)
    on_point = near[:, :1] == 0.0  # exactly on a map point: that point's latent
    w = np.where(on_point, (np.arange(k) == 0).astype(float), 1.0 / np.where(on_point, 1.0, near))
    w /= w.sum(1, keepdims=True)
    return Interpolation((w[..., None] * z[rows].astype(np.float64)).sum(1).astype(np.float32), rows, w)


def _pad(z: np.ndarray) -> np.ndarray:
    """A 1-D latent as two columns, so that PCA's map is a line."""
    return np.pad(z, ((0, 0), (0, 2 - z.shape[1]))) if z.shape[1] < 2 else z


def _fit(method: str, z: np.ndarray, params: dict, random_state: int, n_jobs: int, report: Progress):
    """The fitted model of ``z`` and its (n, 2) coordinates."""
    if method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=2, random_state=random_state).fit(_pad(z))
        return model, model.transform(_pad(z))
    if method == "umap":
        import umap

        with warnings.catch_warnings():  # "n_jobs overridden by random_state", numba notes
            warnings.simplefilter("ignore")
            model = umap.UMAP(n_components=2, n_neighbors=int(min(params["n_neighbors"], len(z) - 1)),
                              min_dist=float(params["min_dist"]), random_state=random_state, n_jobs=n_jobs).fit(z)
        return model, model.embedding_
    model = _tsne(z, float(params["perplexity"]), random_state, n_jobs, report)
    return model, np.array(model)  # a copy: openTSNE's transform moves the model's own array


def _transform(method: str, model, z: np.ndarray) -> np.ndarray:
    if method == "pca":
        return model.transform(_pad(z))
    if method == "umap":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.transform(z)
    # openTSNE's transform first re-centres the fitted map in place; shift the new points back
    # by as much, so that they sit in the frame of the points already on the map.
    before = np.array(model[:1])
    xy = np.array(model.transform(z, perplexity=min(_TSNE_PLACE_PERPLEXITY, (len(model) - 1) / 3.0),
                                  n_iter=_TSNE_PLACE_ITERS))
    return xy + (before - np.asarray(model[:1]))


def _tsne(z: np.ndarray, perplexity: float, random_state: int, n_jobs: int, report: Progress):
    from openTSNE import TSNE

    total = sum(_TSNE_ITERS)
    state = {"phase": 0, "last": 0}

    def callback(iteration: int, error: float, embedding) -> bool:
        # openTSNE counts iterations from 1 again in its second phase.
        if iteration < state["last"]:
            state["phase"] = 1
        state["last"] = iteration
        done = (_TSNE_ITERS[0] if state["phase"] else 0) + iteration
        report(min(done / total, 1.0), f"t-SNE iteration {done} of {total} (KL divergence {error:.3f})")
        return False

    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(z) - 1) / 3.0), random_state=random_state,
                n_jobs=n_jobs, neighbors="exact" if len(z) < EXACT_NEIGHBOURS_BELOW else "auto",
                early_exaggeration_iter=_TSNE_ITERS[0], n_iter=_TSNE_ITERS[1],
                callbacks=callback, callbacks_every_iters=25, verbose=False)
    model = tsne.fit(z)
    # The fitted map keeps its optimiser's settings for transform: placing points must not report as the fit.
    model.gradient_descent_params["callbacks"] = None
    return model


def project(latents: np.ndarray, method: str = "tsne", *, labels: np.ndarray | None = None, max_fit: int | None = None,
            random_state: int = 0, progress: Progress | None = None, n_jobs: int | None = None,
            **params) -> np.ndarray:
    """Embed (N, d) latents in 2-D: the ``embedding_`` of a fitted :class:`Projector`.

    Up to ``max_fit`` latents (None: :data:`MAX_FIT`) the method sees them all; past it, it is
    fitted on a sample (stratified by ``labels`` if given) and the others are placed on that map.

    Returns
    -------
    (N, 2) float32 array, centred.
    """
    return Projector(method, max_fit=max_fit, random_state=random_state, n_jobs=n_jobs,
                     **params).fit(latents, labels, progress).embedding_
