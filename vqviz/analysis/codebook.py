"""Codebook usage and assignment entropy over a whole split (the SK-VQ paper's Table 1), and codebook
use over training as a checkpoint records it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..models import Model
from ..models.history import usage_of


@dataclass
class CodebookStats:
    """How a model uses its codebook on one split, and how sure each assignment is.

    Both come from :meth:`Model.assign`, as the map's and ``Model.evaluate``'s do: usage is that
    of the codes the model picks in evaluation, the per-sample entropy that of its soft assignment.

    Attributes
    ----------
    n_codes : K, the codewords of each codebook.
    counts : (L, K) samples assigned to each codeword of each of the L codebooks (L = 1
        for one codebook).
    order : (L, K) each codebook's codewords, most used first (ties by index).
    usage_entropy : (L,) entropy of each codebook's usage frequencies, in nats (at most ln K).
    perplexity : (L,) exp(usage_entropy): the effective number of codewords in use.
    dead_codes : (L,) codewords that no sample of the split is assigned to.
    entropy : (N,) entropy of each sample's assignment probabilities, in nats (for L
        codebooks the mean over them); all 0 for a hard (one-hot) quantizer.
    soft : ``Model.is_soft``: whether the model's assignment can be other than one-hot.
    counted : what ``counts`` counts: "samples", or "regions" for a map of codes (each image
        gives one code per region, all from one codebook).
    """

    n_codes: int
    counts: np.ndarray
    order: np.ndarray
    usage_entropy: np.ndarray
    perplexity: np.ndarray
    dead_codes: np.ndarray
    entropy: np.ndarray
    soft: bool = False
    counted: str = "samples"

    @property
    def n_codebooks(self) -> int:
        return len(self.counts)

    @property
    def max_entropy(self) -> float:
        """ln K: the entropy of a uniform assignment, and the largest usage entropy."""
        return float(np.log(self.n_codes))

    @property
    def sorted_counts(self) -> np.ndarray:
        """(L, K) each codebook's counts, largest first."""
        return np.take_along_axis(self.counts, self.order, 1)

    @property
    def hard(self) -> bool:
        """True for a hard model (not ``Model.is_soft``): every assignment one-hot, every entropy 0."""
        return not self.soft


def codebook_stats(model: Model, images: np.ndarray, batch_size: int = 1024) -> CodebookStats:
    """Codebook usage over a whole split and each sample's assignment entropy.

    Parameters
    ----------
    model : a model with a quantizer (``model.has_quantizer``).
    images : (N, C, H, W) the split.

    Returns
    -------
    CodebookStats; its usage numbers are those of :func:`metrics.codebook_usage` on the
    model's indices, its entropies :func:`metrics.assignment_entropy` of the model's
    soft probabilities (SK-VQ's ``soft_probs``, softmax(-lambda d + log alpha-bar); soft
    VQ-VAE's posterior; one-hot for the nearest-codeword and k-means quantizers).
    """
    if not model.has_quantizer:
        raise ConfigError(f"{model.name} has no codebook: usage and assignment entropy need a quantizer")
    a = model.assign(images, batch_size)
    k = a.n_codes
    usage = usage_of(model, a)  # a map of codes counts as one codebook
    counts = np.asarray(usage["counts"], dtype=np.int64).reshape(-1, k)  # (L, K)
    return CodebookStats(
        n_codes=k, counts=counts, order=np.argsort(-counts, axis=1, kind="stable"),
        usage_entropy=np.atleast_1d(np.asarray(usage["usage_entropy"], dtype=np.float64)),
        perplexity=np.atleast_1d(np.asarray(usage["perplexity"], dtype=np.float64)),
        dead_codes=np.atleast_1d(np.asarray(usage["dead_codes"], dtype=np.int64)),
        entropy=a.entropy, soft=model.is_soft, counted="samples" if model.code_map_shape is None else "regions")


@dataclass
class UsageHistory:
    """A checkpoint's codebook use over training (its ``codebook_history`` metric), as arrays: one row
    per recorded epoch, one column per codebook.

    Attributes
    ----------
    n_codes : K, the codewords of each codebook.
    sample : the held-out images it was measured on, drawn once from ``split``.
    split : the split the sample comes from ("test").
    stage : (T,) the stage of each entry ("train", SK-VQ's "classifier", SEQ's "kmeans").
    epoch : (T,) each entry's epoch within its stage (0: after a stage without epochs).
    usage_entropy, perplexity : (T, L) float64, as :class:`CodebookStats` has them.
    dead_codes : (T, L) int64, codewords no image of the sample is assigned to.
    """

    n_codes: int
    sample: int
    split: str
    stage: np.ndarray
    epoch: np.ndarray
    usage_entropy: np.ndarray
    perplexity: np.ndarray
    dead_codes: np.ndarray

    @property
    def n_codebooks(self) -> int:
        return self.perplexity.shape[1]

    @property
    def step(self) -> np.ndarray:
        """(T,) 1, 2, ...: each entry's place over the whole fit, its stages one after the other."""
        return np.arange(1, len(self.epoch) + 1)


def usage_history(metrics: dict) -> UsageHistory | None:
    """The ``codebook_history`` of a checkpoint's metrics (checked by :mod:`vqviz.schema` when it was
    read), or None where there is none: a checkpoint made before it was recorded, or a model without
    a codebook."""
    h = metrics.get("codebook_history")
    if not isinstance(h, dict):
        return None

    def table(key: str, dtype) -> np.ndarray:
        return np.asarray(h[key], dtype=dtype).reshape(len(h["epoch"]), -1)  # (T,) or (T, L) -> (T, L)

    return UsageHistory(n_codes=h["n_codes"], sample=h["sample"], split=h.get("split", ""),
                        stage=np.asarray(h["stage"], dtype=object), epoch=np.asarray(h["epoch"], dtype=np.int64),
                        usage_entropy=table("usage_entropy", np.float64), perplexity=table("perplexity", np.float64),
                        dead_codes=table("dead_codes", np.int64))


__all__ = ["CodebookStats", "codebook_stats", "UsageHistory", "usage_history"]
