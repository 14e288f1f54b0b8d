"""VQ-VAE: hard nearest-codeword vector quantization (van den Oord, Vinyals and
Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS 2017).

The encoder's output z_e (N, d) is replaced by its nearest codeword e_k, k = argmin_j
||z_e - e_j||^2 (eq. 2); gradients pass the quantizer straight through (section 3.2).
The loss of one image is eq. (3):

    log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2.

Optional, from later work: EMA codebook updates (the paper's appendix A.1, with
Sonnet's Laplace smoothing), k-means initialisation from the first batch and
restarting dead codes at batch vectors (as in Dhariwal et al.'s Jukebox and
lucidrains/vector-quantize-pytorch).

The soft VQ-VAE paper's Table 1 VQ-VAE follows its authors' MNIST notebook, which is
the same quantizer made hard, and which these options select: ``recon_loss="nmse"``,
``latent_reduction="mean"`` (the two latent terms as per-element means),
``vq_weight=3`` on (codebook + beta commitment) with ``beta=2.5``,
``codebook_init="unit_scaling"`` and ``init="glorot"``. The defaults are eq. (3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..cluster import KMeans, nearest
from ..errors import ConfigError
from ..nets import INITS, build_decoder, build_encoder, init_weights
from .base import Model
from .common import QuantizerOutput, reconstruction_loss
from .config import ModelConfig, check_choice, check_number
from .registry import register

CODEBOOK_INITS = ("uniform", "unit_scaling")
LATENT_REDUCTIONS = ("sum", "mean")


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantizer with a straight-through gradient.

    Parameters
    ----------
    n_codes : K, the number of codewords.
    dim : d, the size of a codeword.
    beta : weight of the commitment term.
    ema : update the codebook by exponential moving averages of its assigned
        vectors instead of by gradient; the codebook term is then dropped.
    decay : EMA decay, of the codebook (``ema``) and of the usage counts.
    eps : Laplace smoothing of the EMA cluster sizes.
    kmeans_init : set the codebook to the k-means centres of the first training batch.
    dead_code_threshold : in training, restart codes whose running usage (an EMA of
        their per-batch counts, started at 1) falls below this at random vectors of the
        batch; 0 = off. A restarted code's usage is set to the threshold.
    codebook_init : "uniform", U(-1/K, 1/K) (the common PyTorch VQ-VAE initialisation),
        or "unit_scaling", U(-sqrt(3/d), sqrt(3/d)) (TensorFlow's uniform unit scaling,
        as the soft VQ-VAE authors; each codeword then has a squared norm of about 1).

    Every state update (EMA, initialisation, restart) happens only in training mode,
    under no_grad. The codebook, the usage counts and the EMA sums are in the
    ``state_dict``, so a checkpoint holds them.
    """

    def __init__(self, n_codes: int, dim: int, beta: float = 0.25, ema: bool = False, decay: float = 0.99,
                 eps: float = 1e-5, kmeans_init: bool = False, dead_code_threshold: float = 0.0,
                 codebook_init: str = "uniform"):
        super().__init__()
        if n_codes < 1 or dim < 1:
            raise ConfigError(f"a codebook needs n_codes >= 1 and dim >= 1, got {n_codes}, {dim}")
        self.n_codes, self.dim, self.beta = n_codes, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.kmeans_init, self.dead_code_threshold = kmeans_init, dead_code_threshold
        if codebook_init not in CODEBOOK_INITS:
            raise ConfigError(f"codebook_init must be one of {CODEBOOK_INITS}, got {codebook_init!r}")
        bound = 1.0 / n_codes if codebook_init == "uniform" else math.sqrt(3.0 / dim)
        init = torch.empty(n_codes, dim).uniform_(-bound, bound)
        if ema:
            self.register_buffer("codebook", init)
            # Sum of assigned vectors, started at one pseudo-member per code so that the
            # first update is a weighted mean of the old codeword and its members.
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # EMA of per-batch counts: the EMA cluster sizes N_i, and the usage for restarts.
        self.register_buffer("cluster_size", torch.ones(n_codes))
        self.register_buffer("initialised", torch.tensor(not kmeans_init))

    def extra_repr(self) -> str:
        return (f"n_codes={self.n_codes}, dim={self.dim}, beta={self.beta}, ema={self.ema}, "
                f"kmeans_init={self.kmeans_init}, dead_code_threshold={self.dead_code_threshold}")

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...,) indices -> (..., d) codewords."""
        return self.codebook[indices]

    def forward(self, z: torch.Tensor, update: bool = True) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput; ``update=False`` never changes the state, even in training."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ConfigError(f"the quantizer takes (N, {self.dim}) latents, got {tuple(z.shape)}")
        update = update and self.training
        if update and not bool(self.initialised):
            self._init_from(z.detach())
        with torch.no_grad():
            idx = nearest(z, self.codebook)  # (N, d), (K, d) -> (N,): eq. (2)
        q = self.codebook[idx]  # (N, d), differentiable w.r.t. the codebook when not EMA
        commitment = self.beta * F.mse_loss(z, q.detach())  # beta ||z_e - sg[e]||^2
        codebook = z.new_zeros(()) if self.ema else F.mse_loss(q, z.detach())  # ||sg[z_e] - e||^2
        probs = F.one_hot(idx, self.n_codes).to(z.dtype)  # (N, K)
        if update:
            self._update(z.detach(), probs)
        quantized = z + (q - z).detach()  # straight-through: dL/dz = dL/dz_q (section 3.2)
        return QuantizerOutput(quantized, idx, probs, codebook + commitment,
                               {"codebook": codebook, "commitment": commitment})

    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        """Codebook <- k-means centres of the batch z (N, d), or K of its vectors if N < K."""
        k, n = self.n_codes, len(z)
        if n >= k:
            seed = int(torch.randint(2**31 - 1, ()))  # from torch's global seed
            centres = KMeans(k, random_state=seed).fit(z).cluster_centers_
        else:  # every batch vector once, then repeats
            pick = torch.cat([torch.randperm(n), torch.randint(n, (k - n,))]).to(z.device)
            centres = z[pick]
        self._set_codes(torch.arange(k, device=z.device), centres.to(self.codebook.dtype))
        self.initialised.fill_(True)

    @torch.no_grad()
    def _set_codes(self, which: torch.Tensor, vectors: torch.Tensor) -> None:
        self.codebook.data[which] = vectors
        if self.ema:  # keep codeword = embed_sum / cluster_size
            self.embed_sum[which] = vectors * self.cluster_size[which, None]

    @torch.no_grad()
    def _update(self, z: torch.Tensor, onehot: torch.Tensor) -> None:
        """EMA of counts (and, with ``ema``, of codewords, appendix A.1), then dead-code restarts."""
        d = self.decay
        self.cluster_size.mul_(d).add_(onehot.sum(0), alpha=1 - d)  # (K,)
        if self.ema:
            self.embed_sum.mul_(d).add_(onehot.T @ z, alpha=1 - d)  # (K, N) @ (N, d) -> (K, d)
            # Laplace smoothing keeps unused codes from dividing by zero (Sonnet's VectorQuantizerEMA).
            n = self.cluster_size.sum()
            size = (self.cluster_size + self.eps) / (n + self.n_codes * self.eps) * n
            self.codebook.copy_(self.embed_sum / size[:, None])
        if self.dead_code_threshold > 0:
            dead = (self.cluster_size < self.dead_code_threshold).nonzero().flatten()
            if len(dead):
                self.cluster_size[dead] = self.dead_code_threshold  # a grace of one threshold
                self._set_codes(dead, z[torch.randint(len(z), (len(dead),), device=z.device)])


@dataclass
class VQVAEConfig(ModelConfig):
    """Settings of a VQ-VAE with one latent vector per image (the classes are not used in training).

    Attributes
    ----------
    latent_dim : d, the size of the latent and of each codeword.
    codebook_size : K, the number of codewords.
    beta : commitment weight (0.25 in the paper).
    ema : update the codebook by exponential moving averages (decay 0.99) instead of by gradient.
    kmeans_init : initialise the codebook by k-means on the first training batch.
    dead_code_threshold : restart codes whose EMA usage per batch falls below this; 0 = off.
    latent_reduction : "sum" (the latent terms' squared norms summed over d, eq. 3) or "mean" (per-element means, as Sonnet and the soft VQ-VAE authors).
    vq_weight : weight of the quantizer's terms in the loss (3 in the soft VQ-VAE authors' notebook).
    codebook_init : "uniform" (U(-1/K, 1/K)) or "unit_scaling" (U(-sqrt(3/d), sqrt(3/d)), the soft VQ-VAE authors').
    init : "torch" (PyTorch's default) or "glorot" (Glorot-uniform weights, zero biases, as the soft VQ-VAE paper).
    """

    codebook_size: int = 128
    beta: float = 0.25
    ema: bool = False
    kmeans_init: bool = False
    dead_code_threshold: float = 0.0
    latent_reduction: str = "sum"
    vq_weight: float = 1.0
    codebook_init: str = "uniform"
    init: str = "torch"

    K_FIELD: ClassVar[str | None] = "codebook_size"

    def validate(self) -> None:
        if self.codebook_size < 1:
            raise ConfigError(f"codebook_size must be at least 1, got {self.codebook_size}")
        for name in ("beta", "dead_code_threshold", "vq_weight"):
            check_number(name, getattr(self, name))
        check_choice("latent_reduction", self.latent_reduction, LATENT_REDUCTIONS)
        check_choice("codebook_init", self.codebook_init, CODEBOOK_INITS)
        check_choice("init", self.init, INITS)


@register
class VQVAE(Model):
    """VQ-VAE: encoder, nearest-codeword quantizer, decoder (van den Oord et al. 2017).

    Training minimises eq. (3) per image, averaged over the batch: the reconstruction
    summed over pixels, plus d times the quantizer's per-element mean terms, that is
    ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 with the squared norms summed over the d
    latent dimensions, as in the paper. (Sonnet's example instead averages both over
    elements, which weighs the quantizer terms up by pixels / d relative to this.)
    """

    Config = VQVAEConfig
    name = "vqvae"

    @property
    def n_codes(self) -> int:
        """K, the codewords (of each codebook)."""
        return self.config.codebook_size

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        init_weights(self, c.init)
        self.quantizer = self._build_quantizer()

    def _build_quantizer(self) -> nn.Module:
        c = self.config
        return VectorQuantizer(c.codebook_size, c.latent_dim, c.beta, ema=c.ema, kmeans_init=c.kmeans_init,
                               dead_code_threshold=c.dead_code_threshold, codebook_init=c.codebook_init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d): z_e, before quantization."""
        return self.encoder(x)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput; never updates the codebook (eval semantics)."""
        return self.quantizer(z, update=False)

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.codes(indices)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantize(self.encode(x)).quantized)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (3) per image, averaged over the batch; updates the quantizer's state in training."""
        q = self.quantizer(self.encode(x))
        c = self.config
        recon = reconstruction_loss(self.decode_logits(q.quantized), x, c.recon_loss, self.data_variance).mean()
        # per-element means -> squared norms over the d dimensions (eq. 3), or kept as means
        w = c.vq_weight * (c.latent_dim if c.latent_reduction == "sum" else 1)
        return {"loss": recon + w * q.loss, "recon": recon.detach(),
                **{name: w * value.detach() for name, value in q.terms.items()}}
