"""Distances, k-means and majority-vote labelling: numpy and torch only.

SEQ's quantizer, the k-means VAE's prior, VQ-VAE's k-means initialisation and the
clustering metrics all use these; they sit below ``vqviz.models`` and ``vqviz.metrics``
so that neither imports the other.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .errors import ConfigError


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, d), (K, d) -> (N, K): squared Euclidean distances, never negative.

    Uses ||z||^2 - 2 z.c + ||c||^2 (one matmul) instead of broadcasting (N, K, d).
    """
    d = (z * z).sum(1, keepdim=True) - 2.0 * z @ codebook.T + (codebook * codebook).sum(1)
    return d.clamp_min_(0.0)


def nearest(z: torch.Tensor, codebook: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """(N, d), (K, d) -> (N,): index of the nearest codeword, in chunks to bound memory."""
    return torch.cat([squared_distances(part, codebook).argmin(1) for part in z.split(chunk)])


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): D^2-weighted sampling."""
    n = x.shape[0]
    centres = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    centres[0] = x[torch.randint(n, (1,), generator=gen, device=gen.device).to(x.device)]
    closest = squared_distances(x, centres[:1]).squeeze(1)
    for i in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: any point will do
            idx = torch.randint(n, (1,), generator=gen, device=gen.device).to(x.device)
        else:
            idx = torch.multinomial(closest / total, 1, generator=gen)
        centres[i] = x[idx]
        closest = torch.minimum(closest, squared_distances(x, centres[i : i + 1]).squeeze(1))
    return centres


class KMeans:
    """Lloyd's k-means with k-means++ seeding, restarts and no empty clusters.

    Follows scikit-learn's estimator conventions and runs on the device of the
    data it is given (a GPU makes the K sweep of SEQ fast).

    Parameters
    ----------
    n_clusters : int
    n_init : int
        Restarts; the run with the lowest inertia is kept.
    max_iter : int
    tol : float
        Stop when the centres move less than ``tol`` times the data's variance.
    random_state : int
    on_iteration : callable, optional
        Called as ``on_iteration(restart, iteration)`` (both 0-based) before every Lloyd
        iteration, and before each restart's seeding. It may raise to abandon the fit: a
        stop button is heard within one iteration, not at the end of all restarts.
    keep_restarts : bool
        Keep every restart's ``(inertia, labels)`` in ``restarts_``, in the order they ran.
    """

    def __init__(self, n_clusters: int, n_init: int = 4, max_iter: int = 100, tol: float = 1e-4,
                 random_state: int = 0, on_iteration: Callable[[int, int], None] | None = None,
                 keep_restarts: bool = False):
        self.n_clusters = n_clusters
        self.keep_restarts = keep_restarts
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.on_iteration = on_iteration

    def fit(self, x: torch.Tensor | np.ndarray) -> "KMeans":
        if isinstance(x, np.ndarray) and not x.flags.writeable:  # a cached split: torch wants its own copy
            x = x.copy()
        x = torch.as_tensor(x)
        if x.ndim != 2:
            raise ConfigError(f"k-means needs (N, d) data, got shape {tuple(x.shape)}")
        if not 1 <= self.n_clusters <= x.shape[0]:
            raise ConfigError(f"n_clusters must be between 1 and the {x.shape[0]} samples, "
                              f"got {self.n_clusters}")
        if self.n_init < 1:
            raise ConfigError(f"n_init must be at least 1, got {self.n_init}")
        x = x.float()
        gen = torch.Generator(device=x.device).manual_seed(self.random_state)
        tol = self.tol * x.var(0).mean().item()
        best = None
        self.restarts_ = []
        for restart in range(self.n_init):
            centres, labels, inertia, n_iter = self._single(x, gen, tol, restart)
            if self.keep_restarts:
                self.restarts_.append((inertia, labels))
            if best is None or inertia < best[2]:
                best = (centres, labels, inertia, n_iter)
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def _single(self, x, gen, tol, restart=0):
        k = self.n_clusters
        tick = self.on_iteration or (lambda restart, iteration: None)
        tick(restart, 0)
        centres = _kmeans_pp(x, k, gen)
        for it in range(1, self.max_iter + 1):
            tick(restart, it)
            dist = squared_distances(x, centres)
            closest, labels = dist.min(1)
            counts = torch.bincount(labels, minlength=k)
            empty = (counts == 0).nonzero().flatten()
            if len(empty):
                # An empty cluster takes over the points farthest from their centres,
                # as scikit-learn does, so that every one of the K clusters is used.
                far = closest.topk(len(empty)).indices
                labels[far] = empty
                counts = torch.bincount(labels, minlength=k)
            sums = torch.zeros_like(centres).index_add_(0, labels, x)
            new = sums / counts.unsqueeze(1).to(x.dtype)
            shift = ((new - centres) ** 2).sum().item()
            centres = new
            if shift <= tol and not len(empty):
                break
        # Final assignment against the final centres; the centres are then the exact
        # means of their members (re-seeded points keep clusters non-empty).
        labels = nearest(x, centres)
        inertia = squared_distances(x, centres).gather(1, labels[:, None]).sum().item()
        return centres, labels, inertia, it

    def predict(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N, d) -> (N,): index of the nearest centre."""
        x = torch.as_tensor(x).float().to(self.cluster_centers_.device)
        return nearest(x, self.cluster_centers_)


def majority_vote(assign: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                  n_clusters: int, n_classes: int | None = None) -> np.ndarray:
    """Label each cluster by the most frequent true label among its members.

    Ties go to the lowest label; a cluster with no members gets label -1.

    Parameters
    ----------
    assign : (N,) cluster index of each sample.
    labels : (N,) true label of each sample, in 0 .. n_classes - 1.
    n_clusters : K.
    n_classes : number of classes (default: the largest label + 1).

    Returns
    -------
    (K,) int64 array of cluster labels.
    """
    assign = np.asarray(torch.as_tensor(assign).cpu(), dtype=np.int64)
    labels = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
    if assign.shape != labels.shape:
        raise ConfigError(f"assign and labels differ in shape: {assign.shape} vs {labels.shape}")
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    counts = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(counts, (assign, labels), 1)
    out = counts.argmax(1)  # argmax returns the first maximum: the lowest label wins ties
    out[counts.sum(1) == 0] = -1
    return out


__all__ = ["squared_distances", "nearest", "KMeans", "majority_vote"]
