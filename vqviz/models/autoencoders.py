"""The baselines: a plain autoencoder, the VAE (Kingma & Welling 2014), the beta-VAE
(Higgins et al. 2017), the conditional VAE (Sohn et al. 2015) and information dropout
(Achille & Soatto 2018).

The VAE is written once. Its prior is reached only through two hooks, so that the
cluster VAEs of ``cluster_vae.py`` change the prior and nothing else:

- ``prior_mean(y) -> (N, d)``: the mean of p(z | y) = N(m_y, I) used for sampling;
- ``kl_target(mu, y) -> (N, d)``: the mean m that the KL term of one batch pulls to.

Decoders give logits internally (the nets' final sigmoid is applied in ``decode``),
so the BCE term is computed from logits and never takes the log of a saturated 0 or 1.

The soft VQ-VAE paper's Table 1 trains these baselines with its authors' recipe
(their MNIST notebook), which ``recon_loss="nmse"`` and ``init="glorot"`` select:
the AE minimises the normalised MSE ``mean((x_hat - x)^2) / var(x)``; the VAE and
the beta-VAE minimise ``D * NMSE + beta * KL`` with D the number of pixels and the
KL summed over the latent's dimensions (their beta-VAE uses beta = 20). The
defaults (BCE summed over pixels, PyTorch's initialisation) are the textbook ELBO.

Information dropout follows the same notebook: z = mu * exp(alpha * eps), eps ~ N(0, I),
alpha = 0.7 * a with a in (0, 1) from a second encoder head, and the loss
``D * NMSE + 0.5 * mean(-log(a / 0.7 + 0.001))`` over the batch and the latent's
dimensions. The notebook's head has no activation, which leaves the log undefined
where it is negative; ``a`` is its sigmoid, as Achille & Soatto's ``alpha = 0.7 *
sigmoid(.)`` has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nets import INITS, build_decoder, build_encoder, init_weights
from ..utils import to_tensor
from .base import Model
from .common import reconstruction_loss
from .config import ModelConfig, check_choice, check_number
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset

#: log-variances are clamped to this range: exp() stays finite, the KL stays defined.
LOGVAR_RANGE = (-15.0, 10.0)


@dataclass
class AEConfig(ModelConfig):
    """Settings of a plain autoencoder.

    Attributes
    ----------
    init : "torch" (PyTorch's default) or "glorot" (Glorot-uniform weights, zero biases, as the soft VQ-VAE paper).
    """

    init: str = "torch"

    def validate(self) -> None:
        check_choice("init", self.init, INITS)

    @property
    def architecture(self) -> str:
        """The network built: ``encoder`` ("auto" is resolved on construction)."""
        return self.encoder


@dataclass
class VAEConfig(AEConfig):
    """Settings of a VAE (the encoder outputs the mean and log-variance of z).

    Attributes
    ----------
    recon_loss : "bce" or "mse" summed over an image's pixels, or "nmse" (the soft VQ-VAE authors' normalised MSE) times the number of pixels.
    beta : weight of the KL term (1 = the VAE's ELBO).
    """

    beta: float = 1.0

    def validate(self) -> None:
        super().validate()
        check_number("beta", self.beta)


@dataclass
class BetaVAEConfig(VAEConfig):
    """Settings of a beta-VAE: a VAE whose KL term weighs ``beta`` > 1."""

    beta: float = 4.0


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(target, I)) per row: (N, d) -> (N,).

    0.5 sum_j (exp(logvar_j) + (mu_j - m_j)^2 - 1 - logvar_j); target 0 gives the VAE's term.
    """
    return 0.5 * (logvar.exp() + (mu - target) ** 2 - 1.0 - logvar).sum(1)


@register
class AE(Model):
    """Plain autoencoder: deterministic encoder and decoder, reconstruction loss only."""

    Config = AEConfig
    name = "ae"
    #: encoder outputs per latent dimension (the VAE's are mean and log-variance).
    _enc_factor = 1

    def __init__(self, config: AEConfig):
        super().__init__(config)
        c = config
        arch = c.architecture
        self.encoder = build_encoder(arch, c.in_shape, self._enc_factor * c.latent_dim)
        self.decoder = build_decoder(arch, c.in_shape, c.latent_dim + self._decoder_extra(), logits=True)
        init_weights(self, c.init)

    def _decoder_extra(self) -> int:
        """Decoder inputs beyond z (the CVAE's one-hot label)."""
        return 0

    def reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) logits and targets -> (N,): BCE or squared error summed over pixels, or the NMSE."""
        return reconstruction_loss(logits, x, self.config.recon_loss, self.data_variance)

    def summed_reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N,): the reconstruction term on a per-image sum's scale, beside a KL-like term; the NMSE is
        multiplied by the number of pixels, as the soft VQ-VAE authors' ``original_dim * NMSE``."""
        recon = self.reconstruction_loss(logits, x)
        return recon * x[0].numel() if self.config.recon_loss == "nmse" else recon

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        recon = self.reconstruction_loss(self.decode_logits(self.encode(x)), x).mean()
        return {"loss": recon, "recon": recon.detach()}


@register
class VAE(AE):
    """Variational autoencoder: Gaussian encoder, N(0, I) prior, loss = recon + beta KL."""

    Config = VAEConfig
    name = "vae"
    _enc_factor = 2

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) -> mean and clamped log-variance of q(z|x), each (N, d)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: deterministic, as the contract's latent."""
        return self.posterior(x)[0]

    # ----- the prior: the hooks the cluster VAEs override -----
    def prior_labels(self) -> torch.Tensor:
        """The labels that index the prior's components; one component for the VAE."""
        return torch.zeros(1, dtype=torch.long)

    def prior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """(N,) labels -> (N, d) mean of p(z | y); the VAE's prior is N(0, I) for every y."""
        return torch.zeros(len(y), self.config.latent_dim, device=self.device)

    def kl_target(self, mu: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, d), (N,) -> (N, d): the mean of the Gaussian the KL term pulls q(z|x) to."""
        return self.prior_mean(y)

    def decode_for(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Decoder logits given labels; only the CVAE uses them."""
        return self.decode_logits(z)

    def posterior_for(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x) given labels; only a CVAE whose encoder is conditioned uses them."""
        return self.posterior(x)

    # ----- training -----
    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO per image, mean over the batch: recon + beta KL(q(z|x) || p(z|y))."""
        mu, logvar = self.posterior_for(x, y)
        z = mu
        if self.training:  # reparameterisation, z = mu + sigma * eps (Kingma & Welling, eq. 10)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = self.summed_reconstruction_loss(self.decode_for(z, y), x)  # (N,)
        kl = gaussian_kl(mu, logvar, self.kl_target(mu.detach(), y))  # (N,)
        loss = (recon + self.config.beta * kl).mean()
        return {"loss": loss, "recon": recon.mean().detach(), "kl": kl.mean().detach()}

    def sample(self, y: int | Sequence[int] | torch.Tensor | None = None, n: int = 16,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of z ~ N(prior_mean(y), I) for each label in ``y``.

        ``y`` None takes every component of the prior (``prior_labels()``). Returns
        (len(y) * n, C, H, W), label by label.
        """
        labels = self._labels(y).to(self.device).repeat_interleave(n)  # (M n,)
        mean = self.prior_mean(labels)
        noise_device = generator.device if generator is not None else mean.device
        eps = torch.randn(mean.shape, generator=generator, device=noise_device).to(mean.device)
        with torch.no_grad():
            return torch.sigmoid(self.decode_for(mean + eps, labels))

    def _labels(self, y) -> torch.Tensor:
        valid = self.prior_labels()
        if y is None:
            return valid
        labels = torch.as_tensor(y, dtype=torch.long).reshape(-1).cpu()
        if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(valid):
            raise ConfigError(f"{self.name} samples labels in 0..{len(valid) - 1}, got {labels.tolist()}")
        return labels


@register
class BetaVAE(VAE):
    """beta-VAE: the VAE with a heavier KL term (beta > 1) for a more disentangled latent."""

    Config = BetaVAEConfig
    name = "beta_vae"


@dataclass
class CVAEConfig(VAEConfig):
    """Settings of a conditional VAE.

    Attributes
    ----------
    condition_encoder : give the encoder the one-hot label too, q(z | x, y), as the cluster-VAE paper's CVAE (its section 3.2: the label is concatenated to x and to z) and Sohn et al. do; False: q(z | x), so that encode(x) needs no label.
    """

    condition_encoder: bool = False


@register
class CVAE(VAE):
    """Conditional VAE: the decoder sees the one-hot label beside z; the encoder sees x, and
    with ``condition_encoder`` the label too.

    By default the encoder is left unconditioned so that ``encode(x)`` needs no label, as
    the contract asks. With ``condition_encoder`` (the cluster-VAE paper's CVAE), the label
    enters the encoder's first layer: concatenating a one-hot to a dense layer's input adds
    one learned vector per class to its output, so that is what ``label_in`` adds (per channel
    after a first conv). ``encode(x)`` without labels then gives the uniform class vector 1/C,
    as ``decode(z)`` without a label does: a class-agnostic encode and decode. Training and
    ``evaluate`` use the true labels.
    """

    Config = CVAEConfig
    name = "cvae"

    def __init__(self, config: CVAEConfig):
        super().__init__(config)
        first = next(m for m in self.encoder if isinstance(m, (nn.Linear, nn.Conv2d)))
        width = first.out_features if isinstance(first, nn.Linear) else first.out_channels
        #: The one-hot label's weights into the encoder's first layer; zero at the start, so that
        #: training starts from the unconditioned encoder. None without ``condition_encoder``.
        self.label_in = nn.Linear(config.n_classes, width, bias=False) if config.condition_encoder else None
        if self.label_in is not None:
            nn.init.zeros_(self.label_in.weight)

    def posterior_for(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y): the label's vector added to the encoder's first layer (see the class docstring)."""
        if self.label_in is None:
            return self.posterior(x)
        h, added = x, False
        for layer in self.encoder:
            h = layer(h)
            if not added and isinstance(layer, (nn.Linear, nn.Conv2d)):
                shift = self.label_in(self._label_vector(len(h), y, h))
                h = h + (shift[:, :, None, None] if h.dim() == 4 else shift)
                added = True
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x); with a conditioned encoder, given the uniform class vector."""
        return super().posterior(x) if self.label_in is None else self.posterior_for(x, None)

    def _label_vector(self, n: int, y: torch.Tensor | int | None, like: torch.Tensor) -> torch.Tensor:
        """(N, C): the one-hot of labels ``y``, or the uniform 1/C for None."""
        c = self.config.n_classes
        if y is None:
            return like.new_full((n, c), 1.0 / c)
        y = torch.as_tensor(y, device=like.device).long().reshape(-1).expand(n)
        return F.one_hot(y, c).to(like.dtype)

    def _decoder_extra(self) -> int:
        return self.config.n_classes

    def _condition(self, z: torch.Tensor, y: torch.Tensor | int | None) -> torch.Tensor:
        """(N, d), labels (N,) or None -> (N, d + C): z beside the one-hot (or uniform) class vector."""
        return torch.cat([z, self._label_vector(len(z), y, z)], dim=1)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
        return self.decoder(self._condition(z, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """(N, d), optional labels -> images; y None is the class-agnostic decode (uniform 1/C)."""
        return torch.sigmoid(self.decode_logits(z, y))

    def decode_for(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.decode_logits(z, y)

    def prior_labels(self) -> torch.Tensor:
        return torch.arange(self.config.n_classes)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Encode and decode the posterior mean with the true labels ``y`` (or class-agnostically without)."""
        return self.decode(self.posterior_for(x, y)[0], y)

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Reconstruction errors with the true labels given to the decoder."""
        from .. import metrics

        self.eval()
        x, y = to_tensor(dataset.images).float(), to_tensor(dataset.labels).long()
        with torch.no_grad():
            x_hat = torch.cat([self.reconstruct(xb.to(self.device), yb.to(self.device)).cpu()
                               for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
        return {f"{dataset.split}_{k}": v for k, v in metrics.reconstruction_errors(x, x_hat).items()}


@dataclass
class InfoDropoutConfig(AEConfig):
    """Settings of an information-dropout autoencoder.

    Attributes
    ----------
    max_alpha : the largest log-normal noise scale, alpha = max_alpha * sigmoid(head) (0.7, as Achille & Soatto and the soft VQ-VAE authors).
    beta : weight of the dropout cost -log(a / max_alpha + 0.001), a mean over the latent's dimensions (0.5 in the soft VQ-VAE authors' notebook).
    """

    max_alpha: float = 0.7
    beta: float = 0.5

    def validate(self) -> None:
        super().validate()
        check_number("max_alpha", self.max_alpha, low_open=True)
        check_number("beta", self.beta)


@register
class InfoDropoutAE(AE):
    """Information dropout: multiplicative log-normal noise on z, its scale learnt per image."""

    Config = InfoDropoutConfig
    name = "info_dropout"
    _enc_factor = 2

    def noise_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) -> z's mean mu and the head's a in (0, 1), each (N, d); alpha = max_alpha * a."""
        mu, head = self.encoder(x).chunk(2, dim=1)
        return mu, torch.sigmoid(head)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The noiseless mu: deterministic, as the contract's latent (and the notebook's k-means input)."""
        return self.noise_scale(x)[0]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """recon + beta * mean over d of -log(a / max_alpha + 0.001), mean over the batch."""
        c = self.config
        mu, a = self.noise_scale(x)
        z = mu * torch.exp(c.max_alpha * a * torch.randn_like(mu)) if self.training else mu
        recon = self.summed_reconstruction_loss(self.decode_logits(z), x)  # (N,)
        cost = -torch.log(a / c.max_alpha + 1e-3).mean(1)  # (N,)
        return {"loss": (recon + c.beta * cost).mean(), "recon": recon.mean().detach(), "kl": cost.mean().detach()}
