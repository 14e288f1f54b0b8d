"""What the app shows, computed here so that its pages stay thin.

Cluster summaries (size, purity, majority label), the clusters grouped by their
label, and the decoded centroid images (the SEQ paper's Fig. 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import Model


@dataclass
class ClusterSummary:
    """One row per cluster, over one split.

    Attributes
    ----------
    labels : (K,) majority label of each cluster (from training).
    sizes : (K,) members of each cluster in the split.
    purity : (K,) fraction of members whose true label is the cluster's label
        (NaN for a cluster with no member in the split).
    assignments : (N,) cluster index of every sample of the split.
    """

    labels: np.ndarray
    sizes: np.ndarray
    purity: np.ndarray
    assignments: np.ndarray


def assign(model: Model, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """(N, C, H, W) -> (N,): each image's codeword or cluster index."""
    z = torch.as_tensor(model.encode_array(images, batch_size))
    with torch.no_grad():
        idx = model.quantize(z.to(model.device)).indices
    return idx.cpu().numpy()


def summarize(model: Model, images: np.ndarray, labels: np.ndarray) -> ClusterSummary:
    """Cluster sizes and purity of a SEQ-like model (one with ``cluster_labels``) on a split."""
    cluster_labels = model.cluster_labels.cpu().numpy()
    k = len(cluster_labels)
    idx = assign(model, images)
    sizes = np.bincount(idx, minlength=k)
    right = np.bincount(idx, weights=(cluster_labels[idx] == np.asarray(labels)), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(sizes > 0, right / np.maximum(sizes, 1), np.nan)
    return ClusterSummary(cluster_labels, sizes, purity, idx)


def clusters_by_label(cluster_labels: np.ndarray, order: np.ndarray | None = None) -> dict[int, list[int]]:
    """Cluster indices grouped by majority label, each group in ``order`` (default: by index).

    Pass ``order=np.argsort(-sizes)`` to list each label's largest clusters first.
    """
    order = np.arange(len(cluster_labels)) if order is None else np.asarray(order)
    groups: dict[int, list[int]] = {}
    for k in order:
        groups.setdefault(int(cluster_labels[k]), []).append(int(k))
    return dict(sorted(groups.items()))


def centroid_images(model: Model) -> np.ndarray:
    """(K, C, H, W): the decoded mean feature of every cluster."""
    return model.decode_array(model.centres.cpu().numpy())
