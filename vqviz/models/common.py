"""Pieces shared by every model family: the quantizer output, distances, k-means,
majority-vote labelling and convex mixing of latents. Written once, used everywhere."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError


class QuantizerOutput(NamedTuple):
    """What every quantizer returns.

    Attributes
    ----------
    quantized : Tensor (N, d)
        The quantized latents (for a hard quantizer, the chosen codewords).
    indices : LongTensor (N,) or (N, L)
        Index of the chosen codeword (one column per codebook for depthwise VQ).
    probs : Tensor (N, K) or (N, L, K)
        Assignment probabilities; one-hot for a hard assignment.
    loss : Tensor ()
        The quantizer's total loss (zero when it has none, as for k-means).
    terms : dict[str, Tensor]
        The named terms that add up to ``loss``, for logging.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    probs: torch.Tensor
    loss: torch.Tensor
    terms: dict


RECON_LOSSES = ("bce", "mse", "nmse")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str, variance: float = 1.0) -> torch.Tensor:
    """Decoder logits and images (N, C, H, W) -> (N,): the reconstruction term of each image.

    - ``"bce"``: Bernoulli -log p(x | z), summed over the pixels; computed from the
      logits, which stays finite where the sigmoid saturates.
    - ``"mse"``: squared error of the sigmoid output, summed over the pixels (Gaussian
      -log p(x | z) up to constants).
    - ``"nmse"``: squared error of the sigmoid output **averaged** over the pixels and
      divided by ``variance``, the data's pixel variance: the soft VQ-VAE authors'
      normalised MSE, ``mean((x_hat - x)^2) / var(x)`` (their MNIST notebook).
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    if kind == "mse":
        return ((torch.sigmoid(logits) - x) ** 2).flatten(1).sum(1)
    if kind == "nmse":
        return ((torch.sigmoid(logits) - x) ** 2).flatten(1).mean(1) / variance
    raise ConfigError(f"recon_loss must be one of {RECON_LOSSES}, got {kind!r}")


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
    """

    def __init__(self, n_clusters: int, n_init: int = 4, max_iter: int = 100, tol: float = 1e-4,
                 random_state: int = 0):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, x: torch.Tensor | np.ndarray) -> "KMeans":
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
        for _ in range(self.n_init):
            centres, labels, inertia, n_iter = self._single(x, gen, tol)
            if best is None or inertia < best[2]:
                best = (centres, labels, inertia, n_iter)
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def _single(self, x, gen, tol):
        k = self.n_clusters
        centres = _kmeans_pp(x, k, gen)
        for it in range(1, self.max_iter + 1):
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


def convex_mix(latents: torch.Tensor, alphas: tuple[float, float]) -> torch.Tensor:
    """z = a1 z1 + a2 z2 + a3 z3 with a3 = 1 - a1 - a2 (the SEQ paper's section 3.3).

    Parameters
    ----------
    latents : (3, d) the three latents z1, z2, z3.
    alphas : (a1, a2), each in [0, 0.5]; a3 = 1 - a1 - a2 is then in [0, 1].

    Returns
    -------
    (d,) the mixture.
    """
    if latents.ndim != 2 or latents.shape[0] != 3:
        raise ConfigError(f"convex mixing takes three latents of shape (3, d), got {tuple(latents.shape)}")
    a1, a2 = (float(a) for a in alphas)
    if not (0.0 <= a1 <= 0.5 and 0.0 <= a2 <= 0.5):
        raise ConfigError(f"alpha1 and alpha2 must lie in [0, 0.5], got ({a1}, {a2}); "
                          "weights off the simplex would not be a convex mixture")
    weights = torch.tensor([a1, a2, 1.0 - a1 - a2], dtype=latents.dtype, device=latents.device)
    return weights @ latents


def mixing_grid(latents: torch.Tensor, steps: int = 6) -> tuple[torch.Tensor, np.ndarray]:
    """The SEQ paper's Fig. 5: convex mixtures of three latents laid out on a triangle.

    Cell (row, col) with ``col >= row`` of a ``steps x steps`` grid holds the
    mixture with barycentric weights ``w3 = row / n``, ``w2 = (col - row) / n``,
    ``w1 = 1 - w2 - w3`` (``n = steps - 1``), so z1 sits top left, z2 top right and
    z3 bottom right, as in the paper. Every weight is in [0, 1] and they sum to 1.

    Returns
    -------
    mixtures : (M, d) one latent per filled cell, row by row; M = steps (steps + 1) / 2.
    cells : (M, 5) float array of (row, col, w1, w2, w3).
    """
    if steps < 2:
        raise ConfigError(f"the mixing grid needs at least 2 steps, got {steps}")
    n = steps - 1
    cells = np.asarray([(row, col, 1.0 - col / n, (col - row) / n, row / n)
                        for row in range(steps) for col in range(row, steps)])
    weights = torch.as_tensor(cells[:, 2:], dtype=latents.dtype, device=latents.device)
    return weights @ latents, cells


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1024
            ) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches under no_grad and concatenate the results."""
    with torch.no_grad():
        return torch.cat([fn(part) for part in x.split(batch_size)]) if len(x) else fn(x)
