"""Soft VQ-VAE (Wu and Flierl, "Vector Quantization-Based Regularization for
Autoencoders", AAAI 2020).

The encoder's latent z_e is perturbed by white noise, z'_e = z_e + eps (training
only), and a Bayesian estimator replaces the nearest-neighbour search of VQ-VAE:
the decoder gets the posterior mean of the codewords (eq. 6),

    z_hat_q = sum_k mu_k p(mu_k | z'_e),   p(mu_k | z'_e) ~ N(z'_e; mu_k, sigma_k^2 I)

with a uniform prior over the K codewords (eqs. 5 and 7), so the quantization is
soft: a convex combination of the codewords. Training minimises eq. (27),

    L = -log p(x | z_hat_q) + ||sg(z'_e) - z_hat_q||^2 + beta ||z'_e - sg(z_hat_q)||^2,

with the straight-through decoder input z_e + sg(z_hat_q - z_e).

The per-component log-variances log sigma_k^2 are a head of size K on z_e, as in
the authors' code (there a head on the encoder's last hidden layer; here on z_e so
that ``quantize(z)`` stays a function of z alone), or K free parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError
from ..nets import build_decoder, build_encoder, resolve_encoder
from ..utils import to_tensor
from . import register
from .base import Model
from .common import RECON_LOSSES, QuantizerOutput, batched, reconstruction_loss, squared_distances

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Trainer

VARIANCES = ("input", "global")
#: log sigma_k^2 is clamped to this range: exp(40) * a squared distance of 1e4 is
#: still far from float32's limit, and sigma^2 = e^-40 is already hard VQ.
LOG_VAR_RANGE = (-40.0, 40.0)


@dataclass
class SoftVQVAEConfig:
    """Settings of a soft VQ-VAE.

    Attributes
    ----------
    in_shape : (C, H, W) of the input images; set from the data set.
    n_classes : number of classes; set from the data set (not used in training).
    encoder : "auto" (the paper's MLP D-500-500-2000-d for grey images, CAE-4 for colour), "mlp", "lae2", "lae4" or "cae4".
    latent_dim : size d of the latent z_e (64 in the paper's MNIST table).
    codebook_size : number K of codewords (128 in the paper's MNIST table).
    beta : weight of the commitment term of eq. (27); the paper gives no value, 2.5 is the authors' MNIST code.
    noise_std : standard deviation of the training noise on z_e; the paper gives no value and the authors' code disables it (0).
    variance : "input" (log sigma_k^2 from a linear head on z_e, as the authors' code) or "global" (K learned values).
    recon_loss : -log p(x | z) per image, "bce" (Bernoulli) or "mse" (summed squared error).
    """

    in_shape: tuple[int, int, int] = (1, 8, 8)
    n_classes: int = 10
    encoder: str = "auto"
    latent_dim: int = 64
    codebook_size: int = 128
    beta: float = 2.5
    noise_std: float = 0.0
    variance: str = "input"
    recon_loss: str = "bce"

    def __post_init__(self):
        self.in_shape, self.encoder = resolve_encoder(self.in_shape, self.encoder)
        if self.latent_dim < 1 or self.codebook_size < 1:
            raise ConfigError(f"latent_dim and codebook_size must be at least 1, "
                              f"got {self.latent_dim} and {self.codebook_size}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ConfigError(f"beta must be a finite number >= 0, got {self.beta}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ConfigError(f"noise_std must be a finite number >= 0, got {self.noise_std}")
        if self.variance not in VARIANCES:
            raise ConfigError(f"variance must be one of {VARIANCES}, got {self.variance!r}")
        if self.recon_loss not in RECON_LOSSES:
            raise ConfigError(f"recon_loss must be one of {RECON_LOSSES}, got {self.recon_loss!r}")


def soft_assign(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior weights and posterior mean of the codewords (eqs. 5-7 and 6).

    Parameters
    ----------
    z : (N, d) the (noisy) latents z'_e.
    codebook : (K, d) the codewords mu_k.
    log_var : (N, K) or (K,) log sigma_k^2 of each component (clamped to ``LOG_VAR_RANGE``).

    Returns
    -------
    probs : (N, K) p(mu_k | z), each row summing to 1.
    z_hat : (N, d) sum_k p(mu_k | z) mu_k.
    """
    d = z.shape[1]
    log_var = log_var.clamp(*LOG_VAR_RANGE).expand(z.shape[0], codebook.shape[0])
    # (N, d), (K, d) -> (N, K): log N(z; mu_k, sigma_k^2 I) up to a constant, eq. (5);
    # the uniform prior 1/K cancels in eq. (7). Normalising in log space keeps the
    # weights finite where exp(-||z - mu||^2 / 2 sigma^2) underflows for every k.
    logits = -0.5 * squared_distances(z, codebook) * torch.exp(-log_var) - 0.5 * d * log_var
    probs = torch.softmax(logits, dim=1)
    return probs, probs @ codebook  # (N, K) @ (K, d) -> (N, d): eq. (6)


@register
class SoftVQVAE(Model):
    """Soft VQ-VAE: noisy latents, a Gaussian-mixture posterior mean as a soft quantizer."""

    Config = SoftVQVAEConfig
    name = "soft_vqvae"
    has_quantizer = True

    def __init__(self, config: SoftVQVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        # The authors' "uniform unit scaling": U(-a, a) with a = sqrt(3 / d), so each
        # codeword has a squared norm of about 1.
        bound = math.sqrt(3.0 / c.latent_dim)
        self.codebook = nn.Parameter(torch.empty(c.codebook_size, c.latent_dim).uniform_(-bound, bound))
        # Every component starts at sigma^2 = 1 / d, the per-dimension variance of the
        # initial codebook: sigma^2 = 1 leaves the posterior near uniform (z_hat_q is
        # then the same for every input), a much smaller one starts as hard VQ.
        log_var0 = -math.log(c.latent_dim)
        if c.variance == "input":
            # Zero weights: the head starts input-independent and learns its
            # dependence on z_e from there.
            self.log_var_head = nn.Linear(c.latent_dim, c.codebook_size)
            nn.init.zeros_(self.log_var_head.weight)
            nn.init.constant_(self.log_var_head.bias, log_var0)
        else:
            self.log_var = nn.Parameter(torch.full((c.codebook_size,), log_var0))

    # ----- the contract -----
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d): the noiseless latent z_e (the representation scored in Table 1)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's training path, decode(z_hat_q); noiseless in eval mode."""
        return self.decode(self.quantize(self.encode(x)).quantized)

    def component_log_var(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K) or (K,): log sigma_k^2 of every component, eq. (5)."""
        if self.config.variance == "input":
            return self.log_var_head(z)
        return self.log_var

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codeword indices -> the codewords mu[indices]."""
        return self.codebook[indices]

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """Soft quantization of z_e (eq. 6) and the latent terms of eq. (27).

        In train mode z'_e = z_e + eps with eps ~ N(0, noise_std^2 I); in eval mode
        z'_e = z_e, so the output is a deterministic function of ``z``.
        ``quantized`` has the value z_hat_q and passes its gradient straight to z_e;
        ``indices`` is the most probable component and ``probs`` the posterior (N, K).
        """
        noisy = z
        if self.training and self.config.noise_std > 0:
            noisy = z + self.config.noise_std * torch.randn_like(z)
        probs, z_hat = soft_assign(noisy, self.codebook, self.component_log_var(z))
        # Per-sample squared norms (summed over d), averaged over the batch, eq. (27).
        codebook_loss = ((noisy.detach() - z_hat) ** 2).sum(1).mean()
        commitment = ((noisy - z_hat.detach()) ** 2).sum(1).mean()
        loss = codebook_loss + self.config.beta * commitment
        quantized = z + (z_hat - z).detach()  # straight-through, as below eq. (27)
        return QuantizerOutput(quantized, probs.argmax(1), probs, loss,
                               {"codebook": codebook_loss, "commitment": commitment})

    # ----- training -----
    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """One stage minimising eq. (27); then reconstruction, codebook use and the
        paper's Table 1 clustering scores (k-means, 10 clusters, on the scored split's z_e)."""
        from .. import metrics as m

        out = super().fit(train, test, trainer)
        split = test if test is not None else train
        z = batched(lambda b: self.encode(b.to(self.device)).cpu(), to_tensor(split.images).float())
        scores = m.kmeans_scores(z, split.labels, n_clusters=self.config.n_classes,
                                 random_state=trainer.config.seed)
        out.update({f"{split.split}_{k}": v for k, v in scores.items()})
        return out

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (27): reconstruction + codebook + beta * commitment, one batch."""
        q = self.quantize(self.encode(x))
        recon = reconstruction_loss(self.decoder(q.quantized), x, self.config.recon_loss).mean()
        entropy = -(q.probs * torch.log(q.probs.clamp_min(1e-12))).sum(1).mean()
        return {"loss": recon + q.loss, "recon": recon.detach(),
                **{k: v.detach() for k, v in q.terms.items()}, "assignment_entropy": entropy.detach()}
