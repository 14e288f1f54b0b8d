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

Two recipes, chosen field by field in :class:`SoftVQVAEConfig`:

- **The authors' (the default).** The paper's Table 1 numbers come from the authors'
  MNIST notebook (github.com/AlbertOh90/Soft-VQ-VAE, ``MINIST_clustering.ipynb``),
  which departs from a literal reading of eqs. 5-7, and only this recipe reaches them:
  - ``posterior="authors"``: the weight of component k is exp(-D_k / 2 sigma_k^2) *
    sigma_k (``soft_prob``), i.e. the log-weight -D_k / 2 sigma_k^2 + log sigma_k.
  - ``variance="hidden"``: log sigma_k comes from a dense head (hidden -> K) on the
    encoder's last hidden layer (2000 units for the MLP), so sigma is input-dependent.
    With Glorot weights and zero biases it starts at sigma ~ 1.
  - ``init="glorot"``: the whole network Glorot-uniform (the paper, section 5); the
    codebook by uniform unit scaling, U(-sqrt(3/d), sqrt(3/d)).
  - ``recon_loss="nmse"``, ``latent_reduction="mean"``, ``vq_weight=3``, ``beta=2.5``:
    the loss ``mean((x_hat - x)^2) / var(x) + 3 (codebook + 2.5 commitment)``, the two
    latent terms as per-element means.
  - No latent noise (``noise_std=0``): the notebook's noise line is commented out.
- **The paper's, read literally:** ``posterior="paper"`` normalises the Gaussian in d
  dimensions, the log-weight -D_k / 2 sigma_k^2 - (d/2) log sigma_k^2. In d = 64 its
  second term dominates: the softmax saturates at the start, sigma's gradient vanishes
  and the model trains as a hard VQ (test posterior entropy 0.02 nats of ln 128).
  ``variance="latent"`` (a head on z_e) or ``"global"`` (K free values), ``init="torch"``,
  BCE summed over pixels and latent terms summed over d are the other literal choices.

With ``variance="hidden"`` the posterior depends on the image, not only on z_e.
:meth:`SoftVQVAE.quantize_input` uses it exactly (training, ``reconstruct`` and
``evaluate`` go through it); ``quantize(z)`` from a latent alone (a map point, a
mixture) uses each component's mean log-variance over training instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from ..cluster import squared_distances
from ..errors import ConfigError
from ..nets import INITS, build_decoder, build_encoder, init_weights
from ..utils import to_tensor
from .base import Assignment, Model, older_than
from .common import QuantizerOutput, batched, reconstruction_loss
from .config import ModelConfig, check_choice, check_number
from .registry import register
from .vq import LATENT_REDUCTIONS

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Trainer

VARIANCES = ("hidden", "latent", "global")
POSTERIORS = ("authors", "paper")
#: log sigma_k^2 is clamped to this range: exp(40) * a squared distance of 1e4 is
#: still far from float32's limit, and sigma^2 = e^-40 is already hard VQ.
LOG_VAR_RANGE = (-40.0, 40.0)
#: Momentum of the running mean of log sigma_k^2 that ``quantize(z)`` uses with the hidden head.
LOG_VAR_MOMENTUM = 0.99


@dataclass
class SoftVQVAEConfig(ModelConfig):
    """Settings of a soft VQ-VAE (the classes are not used in training).

    Attributes
    ----------
    encoder : the network; "auto" is the paper's MLP D-500-500-2000-d for grey images (pooled CAE-4 for colour).
    latent_dim : size d of the latent z_e (64 in the paper's MNIST table).
    recon_loss : "nmse" (mean squared error over the data's variance, the authors'), "bce" or "mse" (summed over pixels).
    codebook_size : number K of codewords (128 in the paper's MNIST table).
    beta : weight of the commitment term of eq. (27); the paper gives no value, 2.5 is the authors' MNIST code.
    noise_std : standard deviation of the training noise on z_e; the paper gives no value and the authors' code disables it (0).
    posterior : "authors" (log-weight -D/2 sigma^2 + log sigma, their notebook) or "paper" (the d-dimensional Gaussian of eq. 5, -D/2 sigma^2 - d/2 log sigma^2).
    variance : where log sigma_k comes from: "hidden" (a head on the encoder's last hidden layer, the authors'), "latent" (a head on z_e) or "global" (K learned values).
    init : "glorot" (Glorot-uniform weights, zero biases, as the paper) or "torch" (PyTorch's default).
    latent_reduction : "mean" (the latent terms as per-element means, the authors') or "sum" (squared norms summed over d, eq. 27).
    vq_weight : weight of (codebook + beta commitment) in the loss; the authors' notebook uses 3.
    """

    recon_loss: str = "nmse"
    codebook_size: int = 128
    beta: float = 2.5
    noise_std: float = 0.0
    posterior: str = "authors"
    variance: str = "hidden"
    init: str = "glorot"
    latent_reduction: str = "mean"
    vq_weight: float = 3.0

    K_FIELD: ClassVar[str | None] = "codebook_size"

    def validate(self) -> None:
        if self.variance == "input":  # the name of "latent" before vqviz 0.2
            self.variance = "latent"
        if self.codebook_size < 1:
            raise ConfigError(f"codebook_size must be at least 1, got {self.codebook_size}")
        for name in ("beta", "noise_std", "vq_weight"):
            check_number(name, getattr(self, name))
        for name, choices in (("variance", VARIANCES), ("posterior", POSTERIORS), ("init", INITS),
                              ("latent_reduction", LATENT_REDUCTIONS)):
            check_choice(name, getattr(self, name), choices)


def soft_assign(z: torch.Tensor, codebook: torch.Tensor, log_var: torch.Tensor, posterior: str = "authors"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior weights and posterior mean of the codewords (eqs. 5-7 and 6).

    Parameters
    ----------
    z : (N, d) the (noisy) latents z'_e.
    codebook : (K, d) the codewords mu_k.
    log_var : (N, K) or (K,) log sigma_k^2 of each component (clamped to ``LOG_VAR_RANGE``).
    posterior : "authors", log-weight -D_k / 2 sigma_k^2 + log sigma_k (their notebook's
        exp(-D / 2 sigma^2) * sigma); "paper", -D_k / 2 sigma_k^2 - (d / 2) log sigma_k^2,
        the d-dimensional Gaussian of eq. (5).

    Returns
    -------
    probs : (N, K) p(mu_k | z), each row summing to 1.
    z_hat : (N, d) sum_k p(mu_k | z) mu_k.
    """
    if posterior not in POSTERIORS:
        raise ConfigError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
    d = z.shape[1]
    log_var = log_var.clamp(*LOG_VAR_RANGE).expand(z.shape[0], codebook.shape[0])
    # (N, d), (K, d) -> (N, K): the log-weights, up to a constant; the uniform prior
    # 1/K cancels in eq. (7). Normalising in log space keeps the weights finite where
    # exp(-||z - mu||^2 / 2 sigma^2) underflows for every k (the notebook's does not).
    scale = 0.5 if posterior == "authors" else -0.5 * d
    logits = -0.5 * squared_distances(z, codebook) * torch.exp(-log_var) + scale * log_var
    probs = torch.softmax(logits, dim=1)
    return probs, probs @ codebook  # (N, K) @ (K, d) -> (N, d): eq. (6)


@register
class SoftVQVAE(Model):
    """Soft VQ-VAE: noisy latents, a Gaussian-mixture posterior mean as a soft quantizer."""

    Config = SoftVQVAEConfig
    name = "soft_vqvae"

    @property
    def n_codes(self) -> int:
        """K, the codewords."""
        return self.config.codebook_size

    @classmethod
    def upgrade_config(cls, config: dict, version: str) -> dict:
        config = super().upgrade_config(config, version)
        if older_than(version, "0.2"):  # the literal paper recipe was the only one
            for key, value in (("posterior", "paper"), ("init", "torch"), ("latent_reduction", "sum"),
                               ("vq_weight", 1.0)):
                config.setdefault(key, value)
        return config

    def __init__(self, config: SoftVQVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        init_weights(self, c.init)
        # The authors' "uniform unit scaling": U(-a, a) with a = sqrt(3 / d), so each
        # codeword has a squared norm of about 1.
        bound = math.sqrt(3.0 / c.latent_dim)
        self.codebook = nn.Parameter(torch.empty(c.codebook_size, c.latent_dim).uniform_(-bound, bound))
        if c.variance == "hidden":
            # The authors' z_log_var head: (N, hidden) -> (N, K), read as log sigma_k.
            hidden = self.encoder[-1].in_features
            self.log_sigma_head = init_weights(nn.Linear(hidden, c.codebook_size), "glorot")
            self.register_buffer("log_var_mean", torch.zeros(c.codebook_size))
        elif c.variance == "latent":
            self.log_var_head = nn.Linear(c.latent_dim, c.codebook_size)
            if c.init == "glorot":
                init_weights(self.log_var_head, "glorot")  # sigma ~ 1 at the start, as the authors'
            else:
                # Zero weights at sigma^2 = 1 / d, the per-dimension variance of the initial
                # codebook: the head starts input-independent and learns from there.
                nn.init.zeros_(self.log_var_head.weight)
                nn.init.constant_(self.log_var_head.bias, -math.log(c.latent_dim))
        else:
            self.log_var = nn.Parameter(torch.full((c.codebook_size,), -math.log(c.latent_dim)))

    # ----- the contract -----
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d): the noiseless latent z_e (the representation scored in Table 1)."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's training path, decode(z_hat_q); noiseless in eval mode."""
        return self.decode(self.quantize_input(x).quantized)

    def encode_with_log_var(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) -> z_e (N, d) and log sigma_k^2 of every component, (N, K) or (K,)."""
        if self.config.variance != "hidden":
            z = self.encode(x)
            return z, self.component_log_var(z)
        h = self.encoder[:-1](x)  # (N, hidden): the last hidden layer, after its ReLU
        return self.encoder[-1](h), 2.0 * self.log_sigma_head(h)

    def component_log_var(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K) or (K,): log sigma_k^2 of every component given z_e alone, eq. (5).

        With the hidden head this is each component's running mean over training.
        """
        if self.config.variance == "hidden":
            return self.log_var_mean
        if self.config.variance == "latent":
            return self.log_var_head(z)
        return self.log_var

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codeword indices -> the codewords mu[indices]."""
        return self.codebook[indices]

    def quantize(self, z: torch.Tensor, log_var: torch.Tensor | None = None) -> QuantizerOutput:
        """Soft quantization of z_e (eq. 6) and the latent terms of eq. (27).

        In train mode z'_e = z_e + eps with eps ~ N(0, noise_std^2 I); in eval mode
        z'_e = z_e, so the output is a deterministic function of ``z`` (and ``log_var``:
        log sigma_k^2, (N, K) or (K,); by default :meth:`component_log_var`).
        ``quantized`` has the value z_hat_q and passes its gradient straight to z_e;
        ``indices`` is the most probable component and ``probs`` the posterior (N, K).
        """
        c = self.config
        noisy = z
        if self.training and c.noise_std > 0:
            noisy = z + c.noise_std * torch.randn_like(z)
        log_var = self.component_log_var(z) if log_var is None else log_var
        probs, z_hat = soft_assign(noisy, self.codebook, log_var, c.posterior)
        codebook_loss = (noisy.detach() - z_hat) ** 2
        commitment = (noisy - z_hat.detach()) ** 2
        if c.latent_reduction == "sum":  # per-sample squared norms, averaged over the batch, eq. (27)
            codebook_loss, commitment = codebook_loss.sum(1).mean(), commitment.sum(1).mean()
        else:  # per-element means, as the authors' notebook
            codebook_loss, commitment = codebook_loss.mean(), commitment.mean()
        loss = c.vq_weight * (codebook_loss + c.beta * commitment)
        quantized = z + (z_hat - z).detach()  # straight-through, as below eq. (27)
        return QuantizerOutput(quantized, probs.argmax(1), probs, loss,
                               {"codebook": c.vq_weight * codebook_loss,
                                "commitment": c.vq_weight * c.beta * commitment})

    @property
    def is_soft(self) -> bool:
        """The posterior over the codewords (eq. 6) is soft."""
        return True

    def assign_input(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor]:
        """(N, C, H, W) -> z, ``quantize``'s output and its posterior, with the image's own
        variances (exact for every head; ``quantize(z)`` alone uses their running mean)."""
        z, log_var = self.encode_with_log_var(x)
        q = self.quantize(z, log_var)
        return z, q, q.probs

    CENTRE_MEANING = ("its members' mean posterior mean (the decoder's input, a mix of codewords) passed through "
                      "the decoder")

    def cluster_centres(self, a: Assignment) -> np.ndarray:
        """(K, d): each cluster's mean decoder input, the mean of its members' posterior means
        z_hat_q (eq. 6), which is what the decoder learned to draw; a codeword alone, far from
        every z_hat_q, decodes to a picture the decoder never saw. A cluster with no member
        keeps its codeword."""
        centres = super().cluster_centres(a)
        k = len(a.codes)
        counts = np.bincount(a.clusters, minlength=k)
        weights = np.zeros((k, a.n_codes))
        np.add.at(weights, a.clusters, a.soft_probs)  # the summed posteriors of each cluster's members
        filled = counts > 0
        codebook = self.codebook.detach().cpu().numpy().astype(np.float64)
        centres[filled] = (weights[filled] / counts[filled, None]) @ codebook
        return centres

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
        """Eq. (27), or the authors' weighting of it: reconstruction + the quantizer's terms, one batch."""
        z, log_var = self.encode_with_log_var(x)
        q = self.quantize(z, log_var)
        if self.config.variance == "hidden" and self.training:
            with torch.no_grad():  # the running mean that quantize(z) uses without the image
                self.log_var_mean.lerp_(log_var.detach().mean(0), 1 - LOG_VAR_MOMENTUM)
        recon = reconstruction_loss(self.decoder(q.quantized), x, self.config.recon_loss, self.data_variance).mean()
        entropy = -(q.probs * torch.log(q.probs.clamp_min(1e-12))).sum(1).mean()
        return {"loss": recon + q.loss, "recon": recon.detach(),
                **{k: v.detach() for k, v in q.terms.items()}, "assignment_entropy": entropy.detach()}
