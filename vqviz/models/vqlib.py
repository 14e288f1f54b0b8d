"""A VQ-VAE whose quantizer is one of lucidrains' ``vector-quantize-pytorch``: the library most VQ
code is written with, behind the model contract, so that its quantizers sit on the same map and the
same codebook pages as the seed papers'.

The autoencoder is :class:`~vqviz.models.vq.VQVAE`'s (vqviz.nets' encoder and decoder, one latent
vector of d per image, the reconstruction loss summed over pixels); only the quantizer is the
library's, with the library's own defaults wherever this config is silent:

- ``"vq"``: ``VectorQuantize``, nearest codeword (van den Oord et al. 2017). The codebook is
  updated by EMA (the library's default, decay 0.8) unless ``learnable_codebook``; optional k-means
  initialisation, cosine similarity and dead-code restarts (``threshold_ema_dead_code``). With
  ``heads`` > 1, each head quantizes d / heads features with its own codebook: a product code, whose
  indices are tuples (N, heads), shown as DVQ's are.
- ``"rvq"``: ``ResidualVQ`` (Zeghidour et al., SoundStream, 2021): ``n_quantizers`` codebooks, each
  quantizing what the ones before left; indices (N, n_quantizers), tuples as well.
- ``"fsq"``: ``FSQ``, finite scalar quantization (Mentzer et al., ICLR 2024): the latent is projected
  to ``len(levels)`` values, each rounded to one of its levels; K = the product of the levels, an
  implicit codebook with no loss and no dead codes to restart.
- ``"lfq"``: ``LFQ``, lookup-free quantization (Yu et al., MAGVIT-v2, ICLR 2024): log2 K signs, with
  the library's entropy and commitment losses. The latent is standardised per feature first (a
  BatchNorm without scale or shift, part of ``encode``): signs need features centred on 0. Without
  it, an MLP's outputs at initialisation differ by about 2 % between images, all share one sign
  pattern, and the entropy loss (a softmax at inverse temperature 100) gives no gradient to part
  them: on MNIST every image stayed on one code of 128; with it, 111 codes on a sample of 1,000
  after 300 steps.

Training minimises eq. (3) of the VQ-VAE paper per image, as :class:`~vqviz.models.vq.VQVAE`: the
reconstruction summed over pixels plus the library's loss (``commitment_weight`` times its
commitment term, and LFQ's entropy term), a per-element mean that is multiplied by d so that it is
summed over the latent's features as the reconstruction is over pixels. ``quantize`` never changes
the codebook.

One addition: the decoder's logits start from the training images' mean (a fixed offset, the logit
of each pixel's mean, set by ``fit``). Without it, the first steps push every latent the same way,
towards the mean image: FSQ's tanh then saturates, every image lands on one code and the gradient
dies (seen on MNIST: one code of 125 after 100 steps; with the offset, 119 codes on a sample of
1,000 after 300 steps). The version is pinned in
pyproject.toml, as the quantizers' state is saved by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nets import build_decoder, build_encoder
from .base import Model
from .common import QuantizerOutput, reconstruction_loss
from .config import ModelConfig, check_choice, check_number
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Trainer

QUANTIZERS = ("vq", "rvq", "fsq", "lfq")


@dataclass
class VQLibConfig(ModelConfig):
    """Settings of a VQ-VAE with a vector-quantize-pytorch quantizer.

    Attributes
    ----------
    quantizer : the library's quantizer: "vq" (VectorQuantize), "rvq" (ResidualVQ), "fsq" (FSQ) or "lfq" (LFQ).
    codebook_size : K, codewords of each codebook (vq, rvq); for lfq a power of two; fsq takes K from levels.
    levels : fsq's levels per projected dimension; K is their product (5,5,5: 125 codes).
    heads : vq: heads with a codebook each, on latent_dim / heads features (a product code, shown as tuples).
    n_quantizers : rvq: the residual codebooks, each quantizing what the ones before left.
    learnable_codebook : vq, rvq: learn the codebook by gradient instead of the library's EMA updates.
    ema_decay : vq, rvq: the EMA decay of the codebook and of the usage counts (the library's default, 0.8).
    kmeans_init : vq, rvq: initialise each codebook by k-means on the first training batch.
    cosine : vq, rvq: the nearest codeword by cosine similarity on unit vectors.
    dead_code_threshold : vq, rvq: restart codes whose EMA usage falls below this at batch vectors; 0 = off.
    commitment_weight : weight of the commitment term (vq, rvq, lfq).
    entropy_loss_weight : lfq: weight of its entropy term (per-sample sharpness, codebook diversity).
    """

    latent_dim: int = 64
    quantizer: str = "vq"
    codebook_size: int = 128
    levels: tuple[int, ...] = (5, 5, 5)
    heads: int = 1
    n_quantizers: int = 2
    learnable_codebook: bool = False
    ema_decay: float = 0.8
    kmeans_init: bool = False
    cosine: bool = False
    dead_code_threshold: float = 0.0
    commitment_weight: float = 1.0
    entropy_loss_weight: float = 0.1

    K_FIELD: ClassVar[str | None] = "codebook_size"

    def validate(self) -> None:
        check_choice("quantizer", self.quantizer, QUANTIZERS)
        self.levels = tuple(int(v) for v in self.levels)  # a checkpoint's JSON gives a list
        if not 2 <= self.codebook_size <= 2**16:
            raise ConfigError(f"codebook_size must be in 2..65,536, got {self.codebook_size}")
        if self.latent_dim > 2**16:
            raise ConfigError(f"latent_dim must be at most 65,536, got {self.latent_dim}")
        if self.quantizer == "lfq" and self.codebook_size & (self.codebook_size - 1):
            raise ConfigError(f"lfq's codebook_size must be a power of two (log2 K signs), got {self.codebook_size}")
        if self.quantizer == "fsq" and (not self.levels or min(self.levels) < 2 or math.prod(self.levels) > 2**16):
            raise ConfigError(f"fsq's levels must be at least 2 each, at most 65,536 codes in all, got {self.levels}")
        if self.heads < 1 or self.latent_dim % self.heads:
            raise ConfigError(f"latent_dim {self.latent_dim} must be divisible by heads {self.heads}: each head "
                              "quantizes latent_dim / heads features")
        if self.heads > 1 and self.quantizer != "vq":
            raise ConfigError(f"heads is vq's; {self.quantizer} has one head")
        if self.cosine and self.learnable_codebook:
            raise ConfigError("cosine and learnable_codebook cannot go together: the library's cosine codebook is "
                              "updated by EMA only")
        if self.n_quantizers < 1:
            raise ConfigError(f"n_quantizers must be at least 1, got {self.n_quantizers}")
        check_number("ema_decay", self.ema_decay, 0.0, 1.0)
        for name in ("dead_code_threshold", "commitment_weight", "entropy_loss_weight"):
            check_number(name, getattr(self, name))

    @classmethod
    def tiny(cls, in_shape: Sequence[int], n_classes: int, **settings) -> VQLibConfig:
        """VectorQuantize with 8 EMA codewords and k-means initialisation."""
        return super().tiny(in_shape, n_classes, **{"kmeans_init": True, **settings})


def _library():
    try:
        import vector_quantize_pytorch as vqp
    except ImportError as e:  # a dependency of vqviz; a broken install says so
        raise ConfigError("the vqlib family needs the package vector-quantize-pytorch: "
                          "pip install 'vector-quantize-pytorch==1.32.0'") from e
    return vqp


def build_quantizer(c: VQLibConfig) -> nn.Module:
    """The library's quantizer of ``c``, taking (N, 1, d): a sequence of one latent vector per image."""
    try:
        return _build(_library(), c)
    except AssertionError as e:  # the library checks its arguments with assert
        raise ConfigError(f"vector-quantize-pytorch refuses this {c.quantizer} quantizer: {e}") from None


def _build(vqp, c: VQLibConfig) -> nn.Module:
    shared = {"kmeans_init": c.kmeans_init, "use_cosine_sim": c.cosine, "decay": c.ema_decay,
              "threshold_ema_dead_code": c.dead_code_threshold, "commitment_weight": c.commitment_weight,
              **({"learnable_codebook": True, "ema_update": False} if c.learnable_codebook else {})}
    if c.quantizer == "vq":
        heads = {"heads": c.heads, "separate_codebook_per_head": True, "codebook_dim": c.latent_dim // c.heads} \
            if c.heads > 1 else {}
        return vqp.VectorQuantize(dim=c.latent_dim, codebook_size=c.codebook_size, **heads, **shared)
    if c.quantizer == "rvq":
        return vqp.ResidualVQ(dim=c.latent_dim, codebook_size=c.codebook_size, num_quantizers=c.n_quantizers,
                              **shared)
    if c.quantizer == "fsq":
        # FSQ reads its levels' product with .item(), which a model built on the meta device (as a checkpoint's
        # skeleton is) cannot: its few parameters, 2 d len(levels), are built on the CPU.
        with torch.device("cpu"):
            return vqp.FSQ(levels=list(c.levels), dim=c.latent_dim)
    return vqp.LFQ(dim=c.latent_dim, codebook_size=c.codebook_size, commitment_loss_weight=c.commitment_weight,
                   entropy_loss_weight=c.entropy_loss_weight)


@register
class VQLib(Model):
    """VQ-VAE with a quantizer of vector-quantize-pytorch (VectorQuantize, ResidualVQ, FSQ or LFQ)."""

    Config = VQLibConfig
    name = "vqlib"

    def __init__(self, config: VQLibConfig):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        self.quantizer = build_quantizer(c)
        # LFQ's signs need centred features (see the module's docstring); the others take z as it is
        self.standardise = nn.BatchNorm1d(c.latent_dim, affine=False) if c.quantizer == "lfq" else nn.Identity()
        # (C, H, W): the logit of the training images' mean pixel, added to the decoder's logits (set by fit)
        self.register_buffer("logit_offset", torch.zeros(c.in_shape))

    @property
    def n_codes(self) -> int:
        c = self.config
        return math.prod(c.levels) if c.quantizer == "fsq" else c.codebook_size

    @property
    def n_codebooks(self) -> int:
        c = self.config
        return c.heads if c.quantizer == "vq" else c.n_quantizers if c.quantizer == "rvq" else 1

    def _quantize(self, z: torch.Tensor, train: bool) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput through the library's module, in its training mode only if ``train``
        (which is when it updates its EMA codebook, initialises it and restarts dead codes)."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ConfigError(f"the quantizer takes (N, {self.config.latent_dim}) latents, got {tuple(z.shape)}")
        mode = self.quantizer.training
        self.quantizer.train(train)
        try:
            out = self.quantizer(z[:, None])  # (N, 1, d): one latent vector per image
        finally:
            self.quantizer.train(mode)
        quantized, indices = out[0][:, 0], out[1][:, 0].long()  # (N, d), (N,) or (N, L)
        loss = out[2].sum() if len(out) > 2 and torch.is_tensor(out[2]) else z.new_zeros(())
        probs = F.one_hot(indices, self.n_codes).to(z.dtype)  # (N, K) or (N, L, K): a hard assignment
        return QuantizerOutput(quantized, indices, probs, loss, {"quantizer": loss.detach()})

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput; never updates the codebook (eval semantics)."""
        return self._quantize(z, train=False)

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(N,) or (N, L) indices -> (N, d): the quantized latents they stand for."""
        c, q = self.config, self.quantizer
        want = (len(indices), self.n_codebooks) if self.n_codebooks > 1 else (len(indices),)
        if tuple(indices.shape) != want:
            raise ConfigError(f"indices must be {want[1:] and f'(N, {want[1]})' or '(N,)'}, got {tuple(indices.shape)}")
        indices = indices.long()[:, None]  # (N, 1) or (N, 1, L)
        if c.quantizer in ("fsq", "lfq"):
            return q.indices_to_codes(indices)[:, 0]
        return q.get_output_from_indices(indices)[:, 0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d), the quantizer's input (for LFQ, standardised per feature)."""
        return self.standardise(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z) + self.logit_offset

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantize(self.encode(x)).quantized)

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """The default one-stage fit, the decoder's logits starting from the training images' mean."""
        mean = np.asarray(train.images[:10_000], dtype=np.float64).mean(0).clip(1e-3, 1 - 1e-3)  # (C, H, W)
        self.logit_offset.copy_(torch.as_tensor(np.log(mean / (1 - mean)), dtype=torch.float32))
        return super().fit(train, test, trainer)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Recon per image, averaged over the batch, plus d times the library's per-element quantizer loss."""
        q = self._quantize(self.encode(x), train=self.training)
        recon = reconstruction_loss(self.decode_logits(q.quantized), x, self.config.recon_loss,
                                    self.data_variance).mean()
        vq = self.config.latent_dim * q.loss  # per-element means -> sums over the d features, as eq. (3)
        return {"loss": recon + vq, "recon": recon.detach(), "quantizer": vq.detach()}
