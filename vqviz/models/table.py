"""A file of latents as a model: the latents (and codes) that a model elsewhere computed for the rows of
one file (:mod:`vqviz.data.latents`), behind the model contract, so that the map, the clusters, the
panels and the codebook statistics show them as they show our families.

It has no encoder and no decoder: it holds the latents of its own file's rows and nothing else.
:meth:`LatentTable.assign` and :meth:`~LatentTable.encode_array` give them for that file's images
(the data set ``latents:<file>``, in its order); any other images are refused. Its clusters are the
file's codes or, where the file has none, k-means clusters of the latents, made when the file is
opened (:func:`vqviz.explorer.open_latents`). A cluster's centre is its members' mean latent, and
``quantize`` gives the cluster of the nearest centre, so that a spot of the map has a cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..cluster import nearest
from ..errors import ConfigError
from .base import Assignment, Model
from .common import QuantizerOutput
from .config import ModelConfig
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Trainer

CLUSTERS_FROM = ("codes", "kmeans")


def member_means(latents: np.ndarray, clusters: np.ndarray, m: int) -> np.ndarray:
    """(m, d) float32: the mean of the (N, d) ``latents`` of each of ``m`` clusters (zeros for an empty one)."""
    sums = np.zeros((m, latents.shape[1]))
    np.add.at(sums, clusters, latents.astype(np.float64))
    return (sums / np.maximum(np.bincount(clusters, minlength=m), 1)[:, None]).astype(np.float32)


@dataclass
class LatentTableConfig(ModelConfig):
    """The shape of a file of latents.

    Attributes
    ----------
    encoder : "table": the latents are stored, not computed.
    in_shape : (C, H, W) of the file's images; (1, 1, 1) for a file without images.
    latent_dim : d, the size of a latent.
    n_rows : N, the file's rows.
    n_codes : K, the codes of each codebook (the largest + 1).
    n_codebooks : L, the codes of one row.
    clusters_from : "codes" (the file's) or "kmeans" (made when it was opened: the file has no codes).
    """

    encoder: str = "table"
    n_rows: int = 1
    n_codes: int = 1
    n_codebooks: int = 1
    clusters_from: str = "codes"

    ENCODERS: ClassVar[tuple[str, ...]] = ("table",)

    def auto_encoder(self, in_shape: tuple[int, int, int]) -> str:
        return "table"

    def validate(self) -> None:
        for name in ("n_rows", "n_codes", "n_codebooks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.clusters_from not in CLUSTERS_FROM:
            raise ConfigError(f"clusters_from must be one of {CLUSTERS_FROM}, got {self.clusters_from!r}")

    @classmethod
    def tiny(cls, in_shape: Sequence[int], n_classes: int, **settings: Any) -> LatentTableConfig:
        return cls(in_shape=tuple(in_shape), n_classes=n_classes, **{"latent_dim": 4, "n_rows": 8, "n_codes": 2,
                                                                     **settings})


@register
class LatentTable(Model):
    """The latents and codes of a file's rows (no encoder, no decoder): open one with ``vqviz app --latents``."""

    Config = LatentTableConfig
    name = "latents"
    trainable = False
    CENTRE_MEANING = "its members' mean latent (a file of latents has no decoder)"

    def __init__(self, config: LatentTableConfig):
        super().__init__(config)
        c = config
        self.register_buffer("latents", torch.zeros(c.n_rows, c.latent_dim))  # (N, d)
        self.register_buffer("row_codes", torch.zeros(c.n_rows, c.n_codebooks, dtype=torch.int64))  # (N, L)

    @classmethod
    def of(cls, latents: np.ndarray, codes: np.ndarray, in_shape: Sequence[int], n_classes: int,
           clusters_from: str = "codes") -> LatentTable:
        """The table of (N, d) ``latents`` and (N,) or (N, L) ``codes``, for images of ``in_shape``."""
        codes = np.array(codes, dtype=np.int64).reshape(len(latents), -1)
        model = cls(cls.Config(in_shape=tuple(in_shape), n_classes=max(1, n_classes), latent_dim=latents.shape[1],
                               n_rows=len(latents), n_codes=int(codes.max()) + 1, n_codebooks=codes.shape[1],
                               clusters_from=clusters_from))
        model.latents.copy_(torch.as_tensor(np.array(latents, dtype=np.float32)))
        model.row_codes.copy_(torch.as_tensor(codes))
        return model

    @property
    def n_codes(self) -> int:
        return self.config.n_codes

    @property
    def n_codebooks(self) -> int:
        return self.config.n_codebooks

    @property
    def has_decoder(self) -> bool:
        return False

    def _indices(self, codes: torch.Tensor) -> torch.Tensor:
        return codes[:, 0] if self.config.n_codebooks == 1 else codes

    def _clusters(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tuples of codes that occur (M, L), each row's cluster among them (N,), and their centres (M, d);
        worked out once per version of the stored table (a load or ``of`` writes it in place)."""
        version = (self.latents._version, self.row_codes._version)
        if getattr(self, "_clusters_of", (None,))[0] != version:
            tuples, clusters = np.unique(self.row_codes.cpu().numpy(), axis=0, return_inverse=True)
            clusters = clusters.reshape(-1)
            self._clusters_of = version, (tuples, clusters, member_means(self.latents.cpu().numpy(), clusters,
                                                                         len(tuples)))
        return self._clusters_of[1]

    def _own_rows(self, images: np.ndarray) -> None:
        if len(images) != self.config.n_rows:
            raise ConfigError(f"a file of latents has no encoder: it holds the latents of its own {self.config.n_rows:,} "
                              f"rows, not of {len(images):,} other images")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise ConfigError("a file of latents has no encoder: it cannot place new images, only its own rows")

    def encode_array(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The stored (N, d) latents of the file's own rows (``images``: the file's, in order)."""
        self._own_rows(images)
        return self.latents.cpu().numpy().copy()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise ConfigError("a file of latents has no decoder: nothing can be drawn from a latent")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(x)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) -> the codes of the cluster whose centre is nearest (a spot of the map has a cluster too)."""
        tuples, _, centres = self._clusters()
        near = nearest(z, torch.as_tensor(centres, device=z.device))  # (N,)
        codes = torch.as_tensor(tuples, device=z.device)[near]  # (N, L)
        indices = self._indices(codes)
        return QuantizerOutput(torch.as_tensor(centres, device=z.device)[near], indices,
                               F.one_hot(indices, self.n_codes).to(z.dtype), z.new_zeros(()), {})

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(M,) or (M, L) codes of clusters that occur -> (M, d) their centres."""
        tuples, _, centres = self._clusters()
        want = indices.reshape(len(indices), -1).cpu().numpy()
        lookup = {tuple(t): i for i, t in enumerate(tuples.tolist())}
        missing = [tuple(w) for w in want.tolist() if tuple(w) not in lookup]
        if missing:
            raise ConfigError(f"no row of this file has the codes {missing[0]}")
        return torch.as_tensor(centres[[lookup[tuple(w)] for w in want.tolist()]])

    def assign(self, images: np.ndarray, batch_size: int = 1024) -> Assignment:
        """The file's own rows: their stored latents and codes, hard (one-hot) assignments."""
        self._own_rows(images)
        codes = self.row_codes.cpu().numpy()
        if self.config.n_codebooks == 1:  # a code is a cluster, used or not, as for the families
            indices = codes[:, 0]
            clusters, tuples = indices, np.arange(self.n_codes)
        else:  # a cluster is a tuple of codes that occurs, as DVQ's
            indices = codes
            tuples, clusters, _ = self._clusters()
        probs = np.zeros((*indices.shape, self.n_codes), np.float32)  # (N, K) or (N, L, K): hard
        np.put_along_axis(probs, indices[..., None], 1.0, axis=-1)
        return Assignment(self.latents.cpu().numpy().copy(), indices, probs, probs, clusters.astype(np.int64),
                          tuples, np.zeros(len(indices)))

    def cluster_centres(self, a: Assignment) -> np.ndarray:
        """(M, d) the mean latent of each cluster's members (zeros for a code no row has)."""
        return member_means(a.latents, a.clusters, len(a.codes))

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        raise ConfigError("a file of latents is not trained: open one with `vqviz app --latents FILE` "
                          "or vqviz.explore")

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Codebook usage of the file's codes over its rows (there is nothing to reconstruct)."""
        from .. import metrics

        a = self.assign(dataset.images, batch_size)
        return metrics.named_usage(a.indices, a.n_codes, dataset.split)
