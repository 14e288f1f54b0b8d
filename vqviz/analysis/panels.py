"""The panel of a cluster or a selection, and the styles of each class (the SEQ paper's Fig. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import Model
from .points import PointTable


@dataclass
class GroupView:
    """A cluster, or a selection of points, as the map's side panel shows it.

    Attributes
    ----------
    title : e.g. "Cluster 17".
    label : the cluster's label (-1: none; for a selection, its most frequent label).
    rows : (n,) the members' row numbers in the split.
    centroid : (C, H, W) the decoded codeword (a selection: its decoded mean latent); None for a
        model without a decoder.
    members : (m, C, H, W) up to ``n_members`` members, chosen at random (seeded).
    histogram : (n_classes,) members per true label.
    purity : fraction of members whose label is ``label`` (NaN for no member).
    """

    title: str
    label: int
    rows: np.ndarray
    centroid: np.ndarray | None
    members: np.ndarray
    histogram: np.ndarray
    purity: float


def _view(title, label, rows, centroid, images, labels, n_classes, n_members, seed) -> GroupView:
    hist = np.bincount(labels[rows], minlength=n_classes) if len(rows) else np.zeros(n_classes, np.int64)
    if label < 0 and len(rows):
        label = int(hist.argmax())
    purity = float(hist[label] / len(rows)) if len(rows) and label >= 0 else float("nan")
    rng = np.random.default_rng(seed)
    shown = np.sort(rng.choice(rows, min(n_members, len(rows)), replace=False)) if len(rows) else rows
    return GroupView(title, int(label), rows, centroid, images[shown], hist, purity)


def cluster_view(model: Model, table: PointTable, images: np.ndarray, cluster: int, n_classes: int,
                 n_members: int = 24, seed: int = 0, centroid: np.ndarray | None = None) -> GroupView:
    """The panel of one cluster: its decoded centre and its members in this split.

    ``centroid`` (C, H, W), if given, is the cluster's already decoded codeword (see
    :func:`points.centroid_images`), so that a panel decodes nothing. A model without a decoder
    has none.
    """
    rows = np.flatnonzero(table.clusters == cluster)
    if centroid is None and model.has_decoder:
        centroid = model.decode_array(table.centres[cluster : cluster + 1])[0]
    return _view(f"Cluster {cluster}", int(table.cluster_labels[cluster]), rows, centroid,
                 images, table.labels, n_classes, n_members, seed)


def selection_view(model: Model, table: PointTable, images: np.ndarray, rows: np.ndarray, n_classes: int,
                   n_members: int = 24, seed: int = 0) -> GroupView:
    """The panel of selected points (for a model without clusters): their decoded mean latent (None
    without a decoder)."""
    rows = np.asarray(rows, dtype=np.int64)
    centroid = model.decode_array(table.latents[rows].mean(0, keepdims=True))[0] if model.has_decoder else None
    return _view(f"{len(rows)} selected", -1, rows, centroid, images, table.labels, n_classes, n_members, seed)


@dataclass
class ClusterShare:
    """One cluster's share of a selection, for the summary strip above the full panels.

    cluster : its index; label : its label (-1: none); picked : selected members;
    size : members in the split; purity : fraction of its members with its label (NaN if empty).
    """

    cluster: int
    label: int
    picked: int
    size: int
    purity: float


def cluster_summary(table: PointTable, rows: np.ndarray) -> list[ClusterShare]:
    """Every cluster that ``rows`` touch, the one holding most of them first (ties: the lower index)."""
    rows = np.asarray(rows, dtype=np.int64)
    if not table.has_clusters or len(rows) == 0:
        return []
    picked = np.bincount(table.clusters[rows], minlength=len(table.cluster_labels))
    sizes, purity = table.sizes, table.purity
    order = np.argsort(-picked, kind="stable")
    return [ClusterShare(int(k), int(table.cluster_labels[k]), int(picked[k]), int(sizes[k]), float(purity[k]))
            for k in order if picked[k] > 0]


def cluster_table(table: PointTable) -> dict[int, list[int]]:
    """Cluster indices by label, largest first within each label; label -1 holds unused clusters."""
    order = np.argsort(-table.sizes, kind="stable")
    groups: dict[int, list[int]] = {}
    for k in order:
        groups.setdefault(int(table.cluster_labels[k]), []).append(int(k))
    return dict(sorted(groups.items(), key=lambda item: (item[0] < 0, item[0])))


def typical_rows(table: PointTable, cluster: int) -> np.ndarray:
    """The rows of ``cluster``, nearest to its mean latent in this split first."""
    rows = np.flatnonzero(table.clusters == cluster)
    if len(rows) == 0:
        return rows
    z = table.latents[rows]
    return rows[np.argsort(((z - z.mean(0)) ** 2).sum(1), kind="stable")]


def typical_images(table: PointTable, images: np.ndarray) -> np.ndarray:
    """(K, C, H, W): each cluster's most typical member in this split (nearest its mean latent), blank
    (white) for a cluster without one: what stands for a cluster where the model cannot decode."""
    out = np.ones((len(table.cluster_labels), *images.shape[1:]), np.float32)
    for k in np.flatnonzero(table.sizes):
        out[k] = images[typical_rows(table, int(k))[0]]
    return out


def subclasses(table: PointTable, images: np.ndarray, label: int, n_members: int = 8,
               seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """(cluster, member images) for each non-empty cluster of ``label``, largest first.

    The members shown are the ``n_members`` nearest to the cluster's mean latent in
    this split, so that each row shows the cluster's typical style.
    """
    out = []
    for k in cluster_table(table).get(label, []):
        near = typical_rows(table, k)[:n_members]
        if len(near):
            out.append((k, images[near]))
    return out


__all__ = ["GroupView", "ClusterShare", "cluster_summary", "cluster_view", "selection_view", "cluster_table",
           "typical_rows", "typical_images", "subclasses"]
