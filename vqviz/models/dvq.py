"""DVQ, depthwise vector quantization (Fostiropoulos, "Depthwise Discrete
Representation Learning").

The latent z (N, d) is cut along the feature axis into L disjoint slices of d / L
(eq. 3) and slice i is quantized by its own codebook of K codewords; the quantized
slices are concatenated. L codebooks of K codewords can express K^L codes (section 3.1)
where one codebook of L K codewords expresses L K. The objective, eq. (4), is eq. (2)
with the codebook and commitment terms summed over the slices.

Deviation: the authors' code grows the latent with L (L slices of D each, d = L D),
whereas here a fixed d is split, so that VQ-VAE with K codewords and DVQ with L
codebooks of K / L codewords compare at an equal latent size and an equal total number
of codewords.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .common import QuantizerOutput
from .registry import register
from .vq import VQVAE, VectorQuantizer, VQVAEConfig


class DepthwiseQuantizer(nn.Module):
    """L independent :class:`VectorQuantizer` s, one per slice of the feature axis.

    Parameters
    ----------
    n_codebooks : L; ``dim`` must be divisible by it.
    n_codes : K, codewords per codebook.
    dim : d, the size of the whole latent; each codeword has d / L values.
    **options : passed to every :class:`VectorQuantizer` (beta, ema, kmeans_init, ...).
    """

    def __init__(self, n_codebooks: int, n_codes: int, dim: int, **options):
        super().__init__()
        if n_codebooks < 1 or dim % n_codebooks:
            raise ConfigError(f"the latent size {dim} must be divisible by the number of codebooks "
                              f"{n_codebooks}: each codebook quantizes a slice of d / L features")
        self.n_codebooks, self.n_codes, self.dim = n_codebooks, n_codes, dim
        self.slice = dim // n_codebooks
        self.quantizers = nn.ModuleList(VectorQuantizer(n_codes, self.slice, **options)
                                        for _ in range(n_codebooks))

    def forward(self, z: torch.Tensor, update: bool = True) -> QuantizerOutput:
        """(N, d) -> quantized (N, d), indices (N, L), probs (N, L, K), loss () and terms.

        ``loss`` and each term are means over the codebooks of per-element means, so they
        equal the per-element means over the whole latent, as for one codebook.
        """
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ConfigError(f"the quantizer takes (N, {self.dim}) latents, got {tuple(z.shape)}")
        # (N, d) -> L slices (N, d / L), eq. (3); each goes to its own codebook.
        outs = [q(part, update) for q, part in zip(self.quantizers, z.split(self.slice, dim=1))]
        terms = {name: torch.stack([o.terms[name] for o in outs]).mean() for name in outs[0].terms}
        return QuantizerOutput(
            quantized=torch.cat([o.quantized for o in outs], dim=1),  # (N, d)
            indices=torch.stack([o.indices for o in outs], dim=1),  # (N, L)
            probs=torch.stack([o.probs for o in outs], dim=1),  # (N, L, K)
            loss=torch.stack([o.loss for o in outs]).mean(),
            terms=terms,
        )

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, L) indices -> (N, d): the concatenated codewords."""
        if indices.ndim != 2 or indices.shape[1] != self.n_codebooks:
            raise ConfigError(f"indices must be (N, {self.n_codebooks}), got {tuple(indices.shape)}")
        return torch.cat([q.codes(indices[:, i]) for i, q in enumerate(self.quantizers)], dim=1)


@dataclass
class DVQConfig(VQVAEConfig):
    """Settings of a depthwise VQ-VAE.

    Attributes
    ----------
    latent_dim : d, the size of the whole latent; must be divisible by n_codebooks.
    codebook_size : K, the number of codewords of each codebook.
    n_codebooks : L, the number of codebooks, each quantizing latent_dim / L features.
    """

    n_codebooks: int = 4

    def validate(self) -> None:
        super().validate()
        if self.n_codebooks < 1:
            raise ConfigError(f"n_codebooks must be at least 1, got {self.n_codebooks}")
        if self.latent_dim % self.n_codebooks:
            raise ConfigError(f"latent_dim {self.latent_dim} must be divisible by n_codebooks "
                              f"{self.n_codebooks}: each codebook quantizes latent_dim / n_codebooks features")


@register
class DVQ(VQVAE):
    """Depthwise VQ-VAE: L codebooks, each on its own slice of the latent (Fostiropoulos).

    Everything but the quantizer is :class:`~vqviz.models.vq.VQVAE`'s, including the
    loss: eq. (4) per image, the quantizer terms summed over all d latent features.
    ``evaluate`` reports codebook usage, perplexity and dead codes as lists of L values.
    """

    Config = DVQConfig
    name = "dvq"

    @property
    def n_codebooks(self) -> int:
        return self.config.n_codebooks

    def _build_quantizer(self) -> nn.Module:
        c = self.config
        return DepthwiseQuantizer(c.n_codebooks, c.codebook_size, c.latent_dim, beta=c.beta, ema=c.ema,
                                  kmeans_init=c.kmeans_init, dead_code_threshold=c.dead_code_threshold,
                                  codebook_init=c.codebook_init)
