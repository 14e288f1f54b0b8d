"""The measures of ``bench perf``: each times our path and a reference on the same input, in turns.

Every measure returns :class:`Measure` rows; :mod:`vqviz.bench.perf` runs them and prints the table.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..models import KMeans
from ..train import TrainConfig, Trainer

if TYPE_CHECKING:
    from .perf import Settings

#: t-SNE, UMAP and k-means need some neighbours to work with.
MIN_POINTS = 20
DECODE_BATCH = 100


@dataclass
class Measure:
    """One row: our figure, the reference's, and the runs they are medians of."""

    key: str
    label: str
    device: str
    unit: str  # "s", "samples/s", or "" for inertia
    ours_runs: list[float]
    reference_runs: list[float]
    difference: float | None = None  # how far apart two results that should agree are
    difference_of: str = ""  # ... and what is compared, e.g. "largest |difference| of the maps"
    ours: float = field(init=False)
    reference: float = field(init=False)
    ratio: float | None = field(init=False)  # None when the reference is 0 (an inertia, with K = N)

    def __post_init__(self):
        self.ours = statistics.median(self.ours_runs)
        self.reference = statistics.median(self.reference_runs)
        self.ratio = self.ours / self.reference if self.reference else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _turns(ours: Callable, reference: Callable, repeats: int, device: torch.device = torch.device("cpu")):
    """Seconds of ``repeats`` calls of each, in ABBA order; returns both lists and both last results."""
    times: tuple[list, list] = ([], [])
    results = [None, None]
    for r in range(repeats):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            _sync(device)
            t0 = time.perf_counter()
            results[i] = (ours, reference)[i]()
            _sync(device)
            times[i].append(time.perf_counter() - t0)
    return times[0], times[1], results


def _max_difference(a, b) -> float:
    a, b = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64) for v in (a, b))
    return float(np.abs(a - b).max())


def training(model, initial: dict, x: torch.Tensor, y: torch.Tensor, s: Settings, device: torch.device) -> Measure:
    """Samples/s of Trainer.run and of a bare loop, both from ``initial``, with batches of the same size.

    The batch order differs (the trainer draws it from a sampler), which changes no cost.
    """
    modules = (model.encoder, model.head)
    params = lambda: [p for m in modules for p in m.parameters()]  # noqa: E731

    def ce(xb, yb):  # one loss for both, so the ratio is the trainer's own cost
        return {"loss": F.cross_entropy(model.head(model.encoder(xb)), yb)}

    def ours(x, y, epochs):
        model.load_state_dict(initial)
        trainer = Trainer(TrainConfig(epochs=epochs, batch_size=s.batch_size, seed=s.seed, device=str(device)))
        trainer.run("encoder", params(), ce, (x, y), modules=modules)

    def bare(x, y, epochs):
        model.load_state_dict(initial)
        x, y = x.to(device), y.to(device)
        optimiser = torch.optim.Adam(params(), lr=1e-3)
        gen = torch.Generator().manual_seed(s.seed)
        for m in modules:
            m.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).to(device).split(s.batch_size):
                loss = ce(x[idx], y[idx])["loss"]
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        for m in modules:
            m.eval()

    few = s.batch_size * 2  # a warm-up of two steps each: first-call costs out of the timing
    _turns(lambda: ours(x[:few], y[:few], 1), lambda: bare(x[:few], y[:few], 1), 1, device)
    t_ours, t_bare, _ = _turns(lambda: ours(x, y, s.epochs), lambda: bare(x, y, s.epochs), s.repeats, device)
    samples = len(x) * s.epochs
    return Measure("train", "training, Trainer.run vs bare loop", device.type, "samples/s",
                   [samples / t for t in t_ours], [samples / t for t in t_bare])


def kmeans(z: np.ndarray, s: Settings, device: torch.device) -> list[Measure]:
    """Time and inertia of our k-means against scikit-learn's, with the same settings."""
    from sklearn.cluster import KMeans as SKKMeans

    zt = torch.as_tensor(z).to(device)
    make = lambda: KMeans(s.k, n_init=s.n_init, random_state=s.seed)  # noqa: E731
    make().fit(zt[: 2 * s.k])  # a warm-up: first-call costs (kernels, allocator) out of the timing
    spec = make()
    ours = lambda: make().fit(zt).cluster_centers_.cpu().numpy()  # noqa: E731
    reference = lambda: SKKMeans(s.k, n_init=s.n_init, max_iter=spec.max_iter, tol=spec.tol,  # noqa: E731
                                 random_state=s.seed).fit(z).cluster_centers_
    t_ours, t_ref, (c_ours, c_ref) = _turns(ours, reference, s.repeats, device)
    return [Measure("kmeans_time", "k-means time, ours vs scikit-learn", device.type, "s", t_ours, t_ref),
            Measure("kmeans_inertia", "k-means inertia, ours vs scikit-learn", device.type, "",
                    [_inertia(z, c_ours)], [_inertia(z, c_ref)])]


def _inertia(z: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances to the nearest centre, in float64 for both sides alike."""
    z, c = z.astype(np.float64), np.asarray(centres, dtype=np.float64)
    d = (z * z).sum(1)[:, None] - 2 * z @ c.T + (c * c).sum(1)
    return float(np.maximum(d.min(1), 0).sum())


def decoding(model, z: np.ndarray, s: Settings, device: torch.device) -> list[Measure]:
    """Milliseconds to decode 1 and 100 latents, through decode_array and through decode."""
    model.eval()
    batch = z[np.arange(DECODE_BATCH) % len(z)]
    out = {}
    for size in (1, DECODE_BATCH):
        arr = batch[:size]
        tensor = torch.as_tensor(arr).to(device)

        def reference():
            with torch.no_grad():
                return model.decode(tensor)

        ours = lambda: model.decode_array(arr)  # noqa: E731
        _turns(ours, reference, 3, device)  # warm-up
        out[size] = _turns(ours, reference, s.fast_repeats, device)
    rows = [Measure(f"decode_{size}", f"decode {size} latent{'s' * (size > 1)}, decode_array vs decode",
                    device.type, "s", t_ours, t_ref, _max_difference(*results), "largest |difference| of the pixels")
            for size, (t_ours, t_ref, results) in out.items()]
    rows.append(Measure("decode_per_latent", f"decode per latent, batch of {DECODE_BATCH} vs 1", device.type, "s",
                        [t / DECODE_BATCH for t in out[DECODE_BATCH][1]], out[1][1]))
    return rows


def projections(z: np.ndarray, s: Settings, progress: Callable[[str], AbstractContextManager]) -> list[Measure]:
    """project against openTSNE and umap-learn called directly, and cached_project warm against cold."""
    import umap
    from openTSNE import TSNE

    from ..map_store import cached_project
    from ..projection import DEFAULTS, EXACT_NEIGHBOURS_BELOW, THREADS_FROM, project

    n = len(z)
    n_jobs = (os.cpu_count() or 1) if n >= THREADS_FROM else 1  # project's default
    tsne, um = DEFAULTS["tsne"], DEFAULTS["umap"]

    def tsne_direct():  # the parameters of projection._tsne
        neighbors = "exact" if n < EXACT_NEIGHBOURS_BELOW else "auto"
        return np.asarray(TSNE(n_components=2, perplexity=min(tsne["perplexity"], (n - 1) / 3.0),
                               random_state=s.seed, n_jobs=n_jobs, neighbors=neighbors, verbose=False).fit(z))

    def umap_direct():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return umap.UMAP(n_components=2, n_neighbors=int(min(um["n_neighbors"], n - 1)),
                             min_dist=float(um["min_dist"]), random_state=s.seed, n_jobs=n_jobs).fit_transform(z)

    with progress("warming up openTSNE and UMAP (numba compiles UMAP on its first call)"):
        for method in ("tsne", "umap"):
            project(z[:MIN_POINTS * 5], method, random_state=s.seed)
    rows = []
    for key, label, direct in (("tsne", "t-SNE, project vs openTSNE", tsne_direct),
                               ("umap", "UMAP, project vs umap-learn", umap_direct)):
        with progress(f"{label}: {n:,} points"):
            t_ours, t_ref, (xy, xy_ref) = _turns(partial(project, z, key, random_state=s.seed), direct, s.repeats)
            xy_ref = np.asarray(xy_ref, dtype=np.float32)
            rows.append(Measure(key, label, "cpu", "s", t_ours, t_ref, _max_difference(xy, xy_ref - xy_ref.mean(0)),
                                "largest |difference| of the maps' coordinates"))
    with progress(f"the projection cache: a t-SNE map read against computed, {n:,} points"), \
            tempfile.TemporaryDirectory(prefix="vqviz-perf-") as tmp:
        where = dict(checkpoint_sha="bench-perf", dataset=s.dataset, split="bench", random_state=s.seed)
        cold, cold_maps = [], []
        for r in range(s.repeats):  # a new folder each time, so every cold call misses
            t0 = time.perf_counter()
            cold_maps.append(cached_project(z, "tsne", cache=Path(tmp) / str(r), **where))
            cold.append(time.perf_counter() - t0)
        warm = []
        for _ in range(s.fast_repeats):
            t0 = time.perf_counter()
            xy = cached_project(z, "tsne", cache=Path(tmp) / "0", **where)
            warm.append(time.perf_counter() - t0)
        rows.append(Measure("projection_cache", "t-SNE map, cached vs cold", "cpu", "s", warm, cold,
                            _max_difference(xy, cold_maps[0]), "largest |difference| of the maps' coordinates"))
    return rows
