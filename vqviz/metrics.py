"""Metrics shared by every model: clustering, probing, reconstruction and codebook use.

Entropies are in nats. Codebook statistics are taken over a whole split, not per
batch: a per-batch histogram of a few hundred samples underestimates how many
codewords a model really uses.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ConfigError


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def clustering_accuracy(y_true, y_pred) -> float:
    """Accuracy of cluster ids under the best one-to-one map to labels (Hungarian matching).

    Clusters beyond the number of labels (or the reverse) stay unmatched and count as errors.
    """
    y_true, y_pred = _np(y_true).astype(np.int64), _np(y_pred).astype(np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ConfigError(f"y_true and y_pred must be 1-D of one length: {y_true.shape}, {y_pred.shape}")
    if len(y_true) == 0:
        raise ConfigError("clustering accuracy of no samples")
    # (clusters, labels) contingency table; the assignment maximises matched counts.
    table = np.zeros((y_pred.max() + 1, y_true.max() + 1), dtype=np.int64)
    np.add.at(table, (y_pred, y_true), 1)
    from scipy.optimize import linear_sum_assignment  # imported here: SciPy and scikit-learn take seconds

    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y_true))


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information (scikit-learn's, arithmetic normalisation)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(_np(y_true), _np(y_pred)))


def kmeans_scores(z, y, n_clusters: int = 10, random_state: int = 0, n_init: int = 10,
                  every_restart: bool = False) -> dict:
    """k-means with ``n_clusters`` on latents ``z``, scored against labels ``y``.

    The soft VQ-VAE paper's protocol (Table 1): k-means on the test latents,
    Hungarian accuracy and NMI of the restart with the lowest inertia, of ``n_init`` = 100
    (as the authors' notebook keeps scikit-learn's pick). ``every_restart`` also scores each
    restart and adds the most accurate one's and the median accuracy: how much the pick
    among restarts alone moves the figure.
    """
    from .cluster import KMeans

    km = KMeans(n_clusters, n_init=n_init, random_state=random_state, keep_restarts=every_restart).fit(_np(z))
    out = {"kmeans_accuracy": clustering_accuracy(y, km.labels_), "kmeans_nmi": nmi(y, km.labels_)}
    if every_restart:
        accuracies = [clustering_accuracy(y, labels) for _, labels in km.restarts_]
        out.update(kmeans_accuracy_best_restart=max(accuracies),
                   kmeans_accuracy_median_restart=float(np.median(accuracies)))
    return out


def linear_probe(z_train, y_train, z_test, y_test, random_state: int = 0, max_iter: int = 200,
                 standardise: bool = True, l2: bool = True) -> float:
    """Test accuracy of a linear classifier on the latents: multinomial logistic regression
    (a softmax layer) with scikit-learn's default L2 penalty (C = 1) unless ``l2`` is False,
    on standardised latents unless ``standardise`` is False."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scale = [StandardScaler()] if standardise else []
    clf = make_pipeline(*scale, LogisticRegression(C=1.0 if l2 else np.inf, max_iter=max_iter,
                                                   random_state=random_state))
    clf.fit(_np(z_train), _np(y_train))
    return float(clf.score(_np(z_test), _np(y_test)))


def reconstruction_errors(x, x_hat, eps: float = 1e-7) -> dict:
    """Mean over images of the summed squared error and binary cross-entropy per image.

    Also the mean squared error per pixel. ``x`` and ``x_hat`` are (N, ...) in [0, 1].
    """
    x, x_hat = _np(x).astype(np.float64), _np(x_hat).astype(np.float64)
    if x.shape != x_hat.shape:
        raise ConfigError(f"x and x_hat differ in shape: {x.shape} vs {x_hat.shape}")
    n = len(x)
    sq = ((x - x_hat) ** 2).reshape(n, -1)
    p = np.clip(x_hat, eps, 1 - eps)
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(n, -1)
    return {"mse_per_image": float(sq.sum(1).mean()), "bce_per_image": float(bce.sum(1).mean()),
            "mse_per_pixel": float(sq.mean())}


def assignment_entropy(probs) -> np.ndarray:
    """(N, K) assignment probabilities -> (N,) entropy of each row, in nats (0 log 0 = 0)."""
    p = _np(probs).astype(np.float64)
    if p.ndim != 2:
        raise ConfigError(f"assignment probabilities must be (N, K), got shape {p.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(1)


def codebook_usage(indices, n_codes: int) -> dict:
    """Usage of a codebook over a whole split.

    Parameters
    ----------
    indices : (N,) or (N, L) codeword indices (L codebooks of ``n_codes`` each).
    n_codes : codewords per codebook, K.

    Returns
    -------
    dict with, for one codebook, floats (for L codebooks, lists of L values):
    ``usage_entropy`` (nats; at most ln K), ``perplexity`` (exp of it: the effective
    number of codewords) and ``dead_codes`` (codewords never used); plus ``counts``.
    """
    idx = _np(indices).astype(np.int64)
    single = idx.ndim == 1
    idx = idx[:, None] if single else idx
    if idx.ndim != 2 or len(idx) == 0:
        raise ConfigError(f"indices must be (N,) or (N, L) with N > 0, got shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= n_codes:
        raise ConfigError(f"indices must lie in [0, {n_codes}), found {idx.min()}..{idx.max()}")
    counts = np.stack([np.bincount(col, minlength=n_codes) for col in idx.T])  # (L, K)
    freq = counts / counts.sum(1, keepdims=True)
    entropy = assignment_entropy(freq)
    out = {"usage_entropy": entropy, "perplexity": np.exp(entropy), "dead_codes": (counts == 0).sum(1),
           "counts": counts}
    if single:
        return {k: (v[0].tolist() if k == "counts" else float(v[0])) for k, v in out.items()}
    return {k: v.tolist() for k, v in out.items()}


def named_usage(indices, n_codes: int, split: str, suffix: str = "") -> dict:
    """:func:`codebook_usage` less its counts, each figure named as a checkpoint's metrics name it:
    ``<split>_usage_entropy<suffix>``, ``<split>_perplexity<suffix>``, ``<split>_dead_codes<suffix>``."""
    return {f"{split}_{k}{suffix}": v for k, v in codebook_usage(indices, n_codes).items() if k != "counts"}
