"""2-D maps of latents: t-SNE (openTSNE), UMAP or PCA, with a disk cache.

A map of the whole of MNIST takes minutes, so :func:`cached_project` keeps every
map it makes in ``$XDG_CACHE_HOME/vqviz/projections/`` (default
``~/.cache/vqviz/projections/``), one ``.npy`` file per key: the checkpoint's
weights SHA-256, the data set, the split, the number of points, the method, its
parameters and the seed. A revisit loads the file instead of recomputing. Files
are written atomically; one that cannot be read, or has the wrong shape, is
ignored and the map is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConfigError
from .utils import atomic_path

#: Method name -> what the app calls it.
METHODS = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
#: The parameters of each method that change the map (and so the cache key), with defaults.
DEFAULTS: dict[str, dict] = {
    "tsne": {"perplexity": 30.0},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
    "pca": {},
}
#: Bump when a method's code changes what it returns, so old cache files stop matching.
CACHE_VERSION = 1
#: Maps of at least this many points use every core (see :func:`project`).
THREADS_FROM = 10_000
#: openTSNE's two phases: early exaggeration, then the main optimisation (its defaults).
_TSNE_ITERS = (250, 500)

Progress = Callable[[float, str], None]


def _check(latents: np.ndarray, method: str, params: dict) -> tuple[np.ndarray, dict]:
    if method not in METHODS:
        raise ConfigError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    unknown = sorted(set(params) - set(DEFAULTS[method]))
    if unknown:
        raise ConfigError(f"{METHODS[method]} has no parameter {', '.join(unknown)}; "
                          f"its parameters are {', '.join(DEFAULTS[method]) or 'none'}")
    z = np.asarray(latents, dtype=np.float32)
    if z.ndim != 2:
        raise ConfigError(f"latents must be (N, d), got shape {z.shape}")
    if len(z) < 3:
        raise ConfigError(f"a map needs at least 3 points, got {len(z)}")
    if not np.isfinite(z).all():
        raise ConfigError("the latents contain NaN or infinite values; the model may have diverged")
    return z, {**DEFAULTS[method], **params}


def project(latents: np.ndarray, method: str = "tsne", *, random_state: int = 0,
            progress: Progress | None = None, n_jobs: int | None = None, **params) -> np.ndarray:
    """Embed (N, d) latents in 2-D.

    Parameters
    ----------
    latents : (N, d) array.
    method : "tsne" (openTSNE, FFT-accelerated), "umap" or "pca".
    random_state : seed of the method's randomness.
    progress : called as ``progress(fraction, message)``; t-SNE reports every 25
        iterations, UMAP and PCA only at the start and the end.
    n_jobs : threads for t-SNE and UMAP: a matter of speed (and, for large maps, of rounding).
        The default, None, uses one below :data:`THREADS_FROM` points and every core above:
        threads cost more than they save on a small map.
    params : the method's parameters (see :data:`DEFAULTS`); a perplexity or a
        neighbour count too large for N is lowered to fit.

    Returns
    -------
    (N, 2) float32 array, centred.
    """
    z, params = _check(latents, method, params)
    report = progress or (lambda fraction, message: None)
    n = len(z)
    if n_jobs is None:
        n_jobs = (os.cpu_count() or 1) if n >= THREADS_FROM else 1
    report(0.0, f"{METHODS[method]} of {n:,} points")
    if method == "pca":
        from sklearn.decomposition import PCA

        if z.shape[1] < 2:  # a 1-D latent: the map is a line
            z = np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
        xy = PCA(n_components=2, random_state=random_state).fit_transform(z)
    elif method == "umap":
        import umap

        with warnings.catch_warnings():  # "n_jobs overridden by random_state", numba notes
            warnings.simplefilter("ignore")
            xy = umap.UMAP(n_components=2, n_neighbors=int(min(params["n_neighbors"], n - 1)),
                           min_dist=float(params["min_dist"]), random_state=random_state,
                           n_jobs=n_jobs).fit_transform(z)
    else:
        xy = _tsne(z, float(params["perplexity"]), random_state, n_jobs, report)
    report(1.0, "done")
    xy = np.asarray(xy, dtype=np.float32)
    return xy - xy.mean(0)


def _tsne(z: np.ndarray, perplexity: float, random_state: int, n_jobs: int, report: Progress) -> np.ndarray:
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

    # Exact neighbours are faster than the approximate index below a few thousand points.
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(z) - 1) / 3.0), random_state=random_state,
                n_jobs=n_jobs, neighbors="exact" if len(z) < 3000 else "auto",
                callbacks=callback, callbacks_every_iters=25, verbose=False)
    return np.asarray(tsne.fit(z))


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vqviz/projections`` (default ``~/.cache/vqviz/projections``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vqviz" / "projections"


def cache_key(checkpoint_sha: str, dataset: str, split: str, n: int, method: str, params: dict,
              random_state: int = 0) -> str:
    """The name of one map's cache file: a SHA-256 of everything that changes the map."""
    if method not in METHODS:
        raise ConfigError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    spec = {"v": CACHE_VERSION, "weights": checkpoint_sha, "dataset": dataset, "split": split, "n": int(n),
            "method": method, "params": {k: v for k, v in sorted({**DEFAULTS[method], **params}.items())},
            "seed": int(random_state)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def cached_project(latents: np.ndarray, method: str = "tsne", *, checkpoint_sha: str, dataset: str,
                   split: str, random_state: int = 0, progress: Progress | None = None, n_jobs: int | None = None,
                   cache: str | Path | None = None, **params) -> np.ndarray:
    """:func:`project`, but loaded from the disk cache when this map was made before.

    ``checkpoint_sha`` is the weights' SHA-256 from the checkpoint's ``meta.json``,
    so a retrained checkpoint gets a new map. ``cache`` overrides :func:`cache_dir`.
    ``progress`` is called only when the map is computed; ``n_jobs`` is not part of
    the key, since it only changes the speed.
    """
    n = len(latents)
    key = cache_key(checkpoint_sha, dataset, split, n, method, params, random_state)
    path = Path(cache or cache_dir()) / f"{method}-{key}.npy"
    xy = _read(path, n)
    if xy is not None:
        return xy
    xy = project(latents, method, random_state=random_state, progress=progress, n_jobs=n_jobs, **params)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, xy, allow_pickle=False)
    except OSError:  # a read-only cache is no reason to fail: the map is still shown
        pass
    return xy


def _read(path: Path, n: int) -> np.ndarray | None:
    """The cached (n, 2) map at ``path``, or None if it is missing, unreadable or malformed."""
    try:
        xy = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if xy.shape != (n, 2) or xy.dtype != np.float32 or not np.isfinite(xy).all():
        return None
    return xy
