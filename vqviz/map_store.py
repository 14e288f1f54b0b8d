"""Where maps are kept: the user's disk cache, and the maps a checkpoint ships in its folder.

A map of the whole of MNIST takes minutes, so :func:`cached_project` keeps every map it
makes (:func:`vqviz.projection.project`) in ``$XDG_CACHE_HOME/vqviz/projections/`` (default
``~/.cache/vqviz/projections/``), one ``.npy`` file per key (:func:`cache_key`): the
checkpoint's weights SHA-256, the data set, the split, the number of points, the method, its
parameters, the seed and, past MAX_FIT points, how the fitted sample was drawn. A revisit
loads the file instead of recomputing. Files are written atomically; one that cannot be
read, or has the wrong shape, is ignored and the map is recomputed. A checkpoint can carry
its maps in its own ``maps/`` folder, under the same file names (:func:`store_beside`);
:func:`cached_project` looks there first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from . import projection
from .data import paths
from .errors import ConfigError
from .utils import atomic_path, open_regular

#: Bump when a method's code (:mod:`vqviz.projection`) changes what it returns, so old cache files stop matching.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vqviz/projections`` (default ``~/.cache/vqviz/projections``)."""
    return paths.user_cache_dir() / "projections"


def cache_key(checkpoint_sha: str, dataset: str, split: str, n: int, method: str, params: dict,
              random_state: int = 0, max_fit: int | None = None, stratified: bool = False) -> str:
    """The name of one map's cache file: a SHA-256 of everything that changes the map.

    ``max_fit`` (None: :data:`vqviz.projection.MAX_FIT`) and ``stratified`` (whether labels chose the fitted
    sample) count only past ``max_fit`` points, so that the keys of maps fitted on every point
    stay as they were.
    """
    max_fit = projection.MAX_FIT if max_fit is None else max_fit
    if method not in projection.METHODS:
        raise ConfigError(f"unknown projection {method!r}; choose one of {', '.join(projection.METHODS)}")
    spec = {"v": CACHE_VERSION, "weights": checkpoint_sha, "dataset": dataset, "split": split, "n": int(n),
            "method": method, "params": {k: v for k, v in sorted({**projection.DEFAULTS[method], **params}.items())},
            "seed": int(random_state)}
    if n > max_fit:
        spec["sample"] = {"max_fit": int(max_fit), "stratified": bool(stratified),
                          "place": {"chunk": projection.CHUNK,
                                    "tsne": [projection._TSNE_PLACE_PERPLEXITY, projection._TSNE_PLACE_ITERS]}}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def cached_project(latents: np.ndarray, method: str = "tsne", *, checkpoint_sha: str, dataset: str,
                   split: str, labels: np.ndarray | None = None, max_fit: int | None = None, random_state: int = 0,
                   progress: projection.Progress | None = None, n_jobs: int | None = None,
                   cache: str | Path | None = None, beside: str | Path | None = None, **params) -> np.ndarray:
    """:func:`vqviz.projection.project`, but loaded from the disk cache when this map was made before.

    ``checkpoint_sha`` is the weights' SHA-256 from the checkpoint's ``meta.json``,
    so a retrained checkpoint gets a new map. ``cache`` overrides :func:`cache_dir`.
    ``beside``, a checkpoint's folder, is looked in first: a map shipped with the
    checkpoint (:func:`store_beside`) is read from there and never computed.
    ``progress`` is called only when the map is computed; ``n_jobs`` is not part of
    the key, since it only changes the speed.
    """
    n = len(latents)
    key = cache_key(checkpoint_sha, dataset, split, n, method, params, random_state, max_fit, labels is not None)
    if beside is not None:
        xy = _read(Path(beside) / MAPS_DIR / f"{method}-{key}.npy", n)
        if xy is not None:
            return xy
    path = Path(cache or cache_dir()) / f"{method}-{key}.npy"
    xy = _read(path, n)
    if xy is not None:
        return xy
    xy = projection.project(latents, method, labels=labels, max_fit=max_fit, random_state=random_state,
                            progress=progress, n_jobs=n_jobs, **params)
    _write(path, xy)
    return xy


#: The folder of a checkpoint that holds the maps shipped with it (see :func:`store_beside`).
MAPS_DIR = "maps"


def beside_path(checkpoint_dir: str | Path, n: int, method: str = "tsne", *, checkpoint_sha: str, dataset: str,
                split: str, stratified: bool = True, random_state: int = 0, max_fit: int | None = None,
                **params) -> Path:
    """Where a map shipped with a checkpoint lies: ``<checkpoint_dir>/maps/<method>-<key>.npy``, the
    same file name as in the cache (:func:`cache_key`). ``stratified``: whether the map was asked for
    with labels, as the app asks."""
    key = cache_key(checkpoint_sha, dataset, split, n, method, params, random_state, max_fit, stratified)
    return Path(checkpoint_dir) / MAPS_DIR / f"{method}-{key}.npy"


def read_beside(checkpoint_dir: str | Path, n: int, method: str = "tsne", **key) -> np.ndarray | None:
    """The (n, 2) map shipped beside a checkpoint (the arguments of :func:`beside_path`), or None
    if there is none or it is not exactly the map asked for."""
    return _read(beside_path(checkpoint_dir, n, method, **key), n)


def store_beside(checkpoint_dir: str | Path, xy: np.ndarray, method: str = "tsne", *, checkpoint_sha: str,
                 dataset: str, split: str, stratified: bool = True, random_state: int = 0,
                 max_fit: int | None = None, **params) -> Path:
    """Keep the (N, 2) map ``xy`` in the checkpoint's folder, where :func:`cached_project` (with
    ``beside``) finds it before the user's cache: a shipped checkpoint then opens on its map at once.

    The file is the cache's format (a ``.npy`` of float32 read without pickle), written
    atomically. Returns its path.

    Example: ``store_beside(folder, projection.project(z, "tsne", labels=y), checkpoint_sha=meta["weights"]["sha256"],
    dataset="digits", split="test")``.
    """
    xy = np.asarray(xy, dtype=np.float32)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 3 or not np.isfinite(xy).all():
        raise ConfigError(f"a map must be (N, 2) finite numbers with N >= 3, got shape {xy.shape}")
    if not Path(checkpoint_dir).is_dir():
        raise ConfigError(f"{checkpoint_dir}: no such checkpoint folder")
    path = beside_path(checkpoint_dir, len(xy), method, checkpoint_sha=checkpoint_sha, dataset=dataset, split=split,
                       stratified=stratified, random_state=random_state, max_fit=max_fit, **params)
    path.parent.mkdir(exist_ok=True)
    _write(path, xy, strict=True)
    return path


#: A cache temporary older than this is a leftover of a killed write, and is removed.
STALE_SECONDS = 3600.0
_TEMPORARY = re.compile(r"\.(tsne|umap|pca)-[0-9a-f]{32}\.npy\..+\.tmp")


def _write(path: Path, xy: np.ndarray, strict: bool = False) -> None:
    """Write the map atomically; remove stale temporaries of earlier writes beside it. ``strict``:
    raise an OSError instead of passing over it."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, xy, allow_pickle=False)
        now = time.time()
        for entry in os.scandir(path.parent):
            if _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                    and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                os.unlink(entry.path)
    except OSError:  # a read-only cache is no reason to fail: the map is still shown
        if strict:
            raise


def _read(path: Path, n: int) -> np.ndarray | None:
    """The cached (n, 2) map at ``path``, or None if it is missing, unreadable or malformed.

    Only a regular file is opened (a FIFO would block), and its header must describe
    exactly (n, 2) float32 in exactly the file's size before the array is read, so a
    header that claims 10**11 rows costs nothing.
    """
    try:
        with open_regular(path, 64 + 2**20 + 8 * n, error=ValueError, what=path.name) as f:
            size = os.fstat(f.fileno()).st_size
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            if shape != (n, 2) or fortran or dtype != np.dtype("<f4") or size != f.tell() + n * 2 * 4:
                return None
            xy = np.frombuffer(f.read(n * 2 * 4), dtype="<f4").reshape(n, 2).astype(np.float32)
    except (OSError, ValueError, EOFError, SyntaxError, TypeError):
        return None
    if xy.shape != (n, 2) or not np.isfinite(xy).all():
        return None
    return xy
