"""Codebook usage and assignment entropy over a whole split (the SK-VQ paper's Table 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import metrics
from ..errors import ConfigError
from ..models import Model


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
    idx = a.indices.reshape(-1) if model.code_map_shape is not None else a.indices  # a map: one codebook
    usage = metrics.codebook_usage(idx, k)
    counts = np.asarray(usage["counts"], dtype=np.int64).reshape(-1, k)  # (L, K)
    return CodebookStats(
        n_codes=k, counts=counts, order=np.argsort(-counts, axis=1, kind="stable"),
        usage_entropy=np.atleast_1d(np.asarray(usage["usage_entropy"], dtype=np.float64)),
        perplexity=np.atleast_1d(np.asarray(usage["perplexity"], dtype=np.float64)),
        dead_codes=np.atleast_1d(np.asarray(usage["dead_codes"], dtype=np.int64)),
        entropy=a.entropy, soft=model.is_soft, counted="samples" if model.code_map_shape is None else "regions")


__all__ = ["CodebookStats", "codebook_stats"]
