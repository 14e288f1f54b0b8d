"""The latents of a split and what the map is coloured by.

Everything goes through the model contract (``encode``, and for a model with a
quantizer ``quantize`` and ``codes``), so every family works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..models import Model, majority_vote


def check_inputs(model: Model, dataset_name: str, shape: tuple[int, ...], trained_on: str = "") -> None:
    """Refuse a data set whose images do not have the shape the model was built for."""
    want = tuple(model.config.in_shape)
    if tuple(shape) != want:
        fmt = "x".join
        where = f" (it was trained on {trained_on})" if trained_on else ""
        raise ConfigError(f"this checkpoint takes {fmt(map(str, want))} images{where}, but {dataset_name} has "
                          f"{fmt(map(str, shape))} images: pick a checkpoint trained on {dataset_name}")


@dataclass
class PointTable:
    """One row per sample of a split.

    Attributes
    ----------
    latents : (N, d) float32 encoder outputs.
    labels : (N,) true labels.
    clusters : (N,) cluster of each sample (its codeword; for L codebooks, its tuple
        of codewords; for a map of codes, its most used codeword), or None for a model
        without a quantizer.
    cluster_labels : (K,) label of each cluster: the model's own (SEQ's majority vote on
        the training set) if it has one, else the majority on this split (-1: no member).
    codes : (K,) or (K, L) indices that give each cluster's codeword through ``model.codes``.
    centres : (K, d) the latent that shows each cluster when decoded (:meth:`Model.cluster_centres`:
        its codeword, or for the soft VQ-VAE its members' mean posterior mean).
    entropy : (N,) entropy of each sample's soft assignment in nats (``Assignment.entropy``:
        0 for a hard quantizer; for L codebooks the mean over them), or None.
    max_entropy : ln K, the entropy of a uniform assignment over the K codewords.
    """

    latents: np.ndarray
    labels: np.ndarray
    clusters: np.ndarray | None = None
    cluster_labels: np.ndarray | None = None
    codes: np.ndarray | None = None
    entropy: np.ndarray | None = None
    max_entropy: float = 0.0
    centres: np.ndarray | None = None

    @property
    def has_clusters(self) -> bool:
        return self.clusters is not None

    @property
    def predicted(self) -> np.ndarray | None:
        """(N,) the label of each sample's cluster."""
        return None if self.clusters is None else self.cluster_labels[self.clusters]

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.clusters, minlength=len(self.cluster_labels))

    @property
    def purity(self) -> np.ndarray:
        """(K,) fraction of each cluster's members whose label is the cluster's (NaN if empty)."""
        right = np.bincount(self.clusters, weights=self.predicted == self.labels, minlength=len(self.sizes))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.sizes > 0, right / np.maximum(self.sizes, 1), np.nan)


def point_table(model: Model, images: np.ndarray, labels: np.ndarray, n_classes: int | None = None,
                batch_size: int = 1024) -> PointTable:
    """Encode a split once and, for a model with a quantizer, assign every sample (:meth:`Model.assign`)."""
    labels = np.array(labels)  # a writable copy: torch warns about read-only arrays
    if not model.has_quantizer:
        return PointTable(model.encode_array(images, batch_size), labels)
    a = model.assign(images, batch_size)
    own = model.cluster_labels
    if own is not None and a.indices.ndim == 1 and len(own) == a.n_codes:
        cluster_labels = own.cpu().numpy().astype(np.int64)
    else:
        cluster_labels = majority_vote(a.clusters, labels, len(a.codes), n_classes)
    return PointTable(a.latents, labels, a.clusters, cluster_labels, a.codes, a.entropy, a.max_entropy,
                      model.cluster_centres(a))


def centroid_images(model: Model, table: PointTable) -> np.ndarray | None:
    """(K, C, H, W): every cluster's centre (its codeword; SEQ: its k-means centre), decoded; None for a
    model without a decoder."""
    return model.decode_array(table.centres) if model.has_decoder else None


def clusters_of(table: PointTable, rows: np.ndarray) -> list[int]:
    """The clusters of ``rows``, the one holding most of them first."""
    if not table.has_clusters or len(rows) == 0:
        return []
    counts = np.bincount(table.clusters[rows])
    order = np.argsort(-counts, kind="stable")
    return [int(k) for k in order if counts[k] > 0]


__all__ = ["PointTable", "point_table", "check_inputs", "centroid_images", "clusters_of"]
