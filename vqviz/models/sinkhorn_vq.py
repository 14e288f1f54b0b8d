"""SK-VQ: a classifier with vector quantization in an intermediate layer (Suzuki,
Matsuzawa, Takimoto and Kambayashi, "Vector Quantization to Visualize the Detection
Process", ICAART 2022).

encoder -> BatchNorm -> VQ -> linear classifier, trained with cross-entropy plus the
VQ-VAE terms (eq. 3, straight through eq. 2). The code of a latent z is (eq. 8)

    training:   the row argmax of the Sinkhorn-Knopp plan of P = exp(-lambda ||e_k - z||^2)
    evaluation: argmin_k ||e_k - z||^2

with the code-side scaling carried across batches by momentum (section 3.1). Options:
a constant codebook sampled once from N(0, 1) (section 3.2) and the gradient penalty
(||grad_z C(z)||^2 - 1)^2 of eqs. (6) and (9). A decoder is then trained on the frozen
quantized latents (section 4.2).

The latent is one vector per image by default. ``spatial=True`` is the paper's layout:
a convolutional encoder whose feature map is quantized position by position (the paper's
8x8 map of codes on CIFAR-10's 32x32; 7x7 on 28x28 images here), then average-pooled
for the classifier. Each image then has a map of codes, :meth:`SinkhornVQ.code_map`,
which is the paper's visualisation: which codeword each region uses. In the contract the
map is flattened: ``encode`` gives (N, P d) for P positions, and ``quantize`` returns
indices (N, P) and probs (N, P, K), as a model with P codebooks would.

The decoder outputs logits and is trained with BCE by default (``recon_loss``): the
sigmoid stays out of the loss, so it cannot saturate into a constant picture.

Codebook usage is reported for two assignments on the scored split: the nearest
codeword, which the model uses at evaluation (eq. 8, ``usage_entropy``), and the
Sinkhorn assignment, the row argmax of the plan with the trained code scaling
alpha-bar, argmax_k (-lambda ||e_k - z||^2 + log alpha-bar_k) (``usage_entropy_sinkhorn``).
With a map of codes, each is also counted over the positions with content only (``..._content``):
a position that sees only blank input (Fashion-MNIST's background) has the blank image's latent,
which no assignment can spread over the codebook (:meth:`SinkhornVQ.blank_positions`).

Momentum Sinkhorn-Knopp and the gradient penalty are :func:`vqviz.models.common.sinkhorn`
(in log space, with the three readings of section 3.1 it makes, each measured) and
:func:`vqviz.models.common.gradient_penalty`; the small CNN is :func:`vqviz.nets.small_cnn`.
The model carries only the running code scaling alpha-bar (a (K,) buffer, ``log_alpha``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cluster import squared_distances
from ..errors import ConfigError
from ..metrics import named_usage
from ..nets import ARCHITECTURES, blind_positions, build_decoder, build_encoder, small_cnn, small_cnn_sizes
from ..train import Trainer
from ..utils import to_tensor
from .base import Model
from .common import QuantizerOutput, batched, gradient_penalty, reconstruction_loss, sinkhorn
from .config import ModelConfig, check_choice, check_number
from .history import CodebookHistory
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset

QUANTIZERS = ("none", "nearest", "sinkhorn")

ENCODERS = ("cnn", *ARCHITECTURES)


@dataclass
class SinkhornVQConfig(ModelConfig):
    """Settings of an SK-VQ classifier.

    Attributes
    ----------
    encoder : "auto" (= "cnn": a small CNN in place of the paper's WRN-28-2), or a network of vqviz.nets.
    latent_dim : d, the size of the latent and of each codeword.
    recon_loss : the decoder's loss on its logits, per pixel: "bce" or "mse".
    codebook_size : K, the number of codewords (256 in the paper).
    quantizer : "none" (plain classifier), "nearest" (plain VQ) or "sinkhorn" (SK-VQ, eq. 8).
    sinkhorn_lambda : lambda of P = exp(-lambda ||e_k - z||^2), eq. (8), not given in the paper; larger makes each row of the plan sharper, so that its argmax is as balanced as the plan, and takes more iterations to converge.
    sinkhorn_iters : Sinkhorn-Knopp iterations per batch.
    momentum : m of the running code scaling (0.999 in the paper; 0 = per-batch Sinkhorn-Knopp).
    constant_embedding : sample the codebook once from N(0, 1) and never update it (section 3.2).
    gradient_penalty : weight of the gradient penalty of eq. (9); 0 = off.
    gp_sigma : sigma of eq. (9); DUQ's 0.1 gives no gradient here, 0.5 and above swamp the cross-entropy.
    beta : commitment weight (VQ-VAE's 0.25; eq. 3 of the paper has 1).
    decoder_epochs : epochs of the decoder stage; 0 means the trainer's epochs.
    spatial : quantize the small CNN's feature map position by position and average-pool it (the paper's map of codes); needs encoder "cnn".
    """

    codebook_size: int = 256
    quantizer: str = "sinkhorn"
    sinkhorn_lambda: float = 0.1
    sinkhorn_iters: int = 3
    momentum: float = 0.999
    constant_embedding: bool = False
    gradient_penalty: float = 0.0
    gp_sigma: float = 0.3
    beta: float = 0.25
    decoder_epochs: int = 0
    spatial: bool = False

    ENCODERS: ClassVar[tuple[str, ...]] = ENCODERS
    RECON_LOSSES: ClassVar[tuple[str, ...]] = ("bce", "mse")
    MIN_CLASSES: ClassVar[int] = 2
    K_FIELD: ClassVar[str | None] = "codebook_size"

    def auto_encoder(self, in_shape: tuple[int, int, int]) -> str:
        return "cnn"

    def validate(self) -> None:
        check_choice("quantizer", self.quantizer, QUANTIZERS)
        if self.spatial and self.encoder != "cnn":
            raise ConfigError(f"spatial quantizes the small CNN's feature map: use encoder 'cnn', not {self.encoder!r}")
        if self.codebook_size < 2:
            raise ConfigError(f"codebook_size must be at least 2, got {self.codebook_size}")
        check_number("sinkhorn_lambda", self.sinkhorn_lambda, low_open=True)
        if self.sinkhorn_iters < 1 or self.decoder_epochs < 0:
            raise ConfigError(f"sinkhorn_iters must be at least 1 and decoder_epochs at least 0; "
                              f"got {self.sinkhorn_iters}, {self.decoder_epochs}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum}")
        check_number("gradient_penalty", self.gradient_penalty)
        check_number("beta", self.beta)
        check_number("gp_sigma", self.gp_sigma, low_open=True)
        if self.gradient_penalty > 0 and self.quantizer == "none":
            raise ConfigError("gradient_penalty needs a codebook: use quantizer 'nearest' or 'sinkhorn'")


@register
class SinkhornVQ(Model):
    """SK-VQ: a classifier with a (momentum Sinkhorn-Knopp) vector quantizer inside, then a decoder."""

    Config = SinkhornVQConfig
    name = "skvq"

    @property
    def n_codes(self) -> int | None:
        """K, or None for quantizer "none" (a plain classifier)."""
        return None if self.config.quantizer == "none" else self.config.codebook_size

    def __init__(self, config: SinkhornVQConfig):
        super().__init__(config)
        c = config
        if c.encoder == "cnn":
            self.encoder, self.decoder = small_cnn(c.in_shape, c.latent_dim, c.spatial)
        else:
            self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
            self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        #: (h, w) of the map of codes, (1, 1) for one code per image.
        self.map_shape = small_cnn_sizes(*c.in_shape[1:])[1] if c.spatial else (1, 1)
        self.n_positions = self.map_shape[0] * self.map_shape[1]
        # BatchNorm before VQ keeps z near N(0, 1), the codebook's scale (section 4.1).
        self.norm = nn.BatchNorm2d(c.latent_dim) if c.spatial else nn.BatchNorm1d(c.latent_dim)
        self.head = nn.Linear(c.latent_dim, c.n_classes)
        codebook = torch.randn(c.codebook_size, c.latent_dim)
        if c.constant_embedding:
            self.register_buffer("codebook", codebook)  # constant embedding space (section 3.2)
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("log_alpha", torch.zeros(c.codebook_size))  # running code scaling

    # ----- the contract -----
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d), or (N, P d) position by position when spatial: the
        batch-normalised latent that the quantizer takes."""
        z = self.norm(self.encoder(x))
        return z.permute(0, 2, 3, 1).flatten(1) if self.config.spatial else z  # (N, d, h, w) -> (N, h w d)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) or (N, P d) -> (N, C, H, W): the decoder before its sigmoid."""
        if self.config.spatial:  # (N, h w d) -> (N, d, h, w)
            z = z.reshape(len(z), *self.map_shape, self.config.latent_dim).permute(0, 3, 1, 2)
        return self.decoder(z)

    @property
    def code_map_shape(self) -> tuple[int, int] | None:
        return self.map_shape if self.config.spatial else None

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(N,) or (N, P) indices -> (N, d) or (N, P d) codewords. With a map of codes, (N,)
        indices give each codeword at every position: the picture of that code alone."""
        e = self.codebook[indices]
        if self.config.spatial and indices.ndim == 1:
            e = e[:, None].expand(len(e), self.n_positions, -1)
        return e.flatten(1) if self.config.spatial else e

    def _positions(self, z: torch.Tensor) -> torch.Tensor:
        """(N, P d) -> (N P, d): one row per position of the map (a no-op for one code per image)."""
        return z.reshape(-1, self.config.latent_dim)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """(N, P d) -> (N, d): the average over the map's positions, what the classifier sees."""
        return h.reshape(len(h), self.n_positions, self.config.latent_dim).mean(1)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) or (N, P d) -> QuantizerOutput, eq. (8), position by position.

        In training with quantizer "sinkhorn", the code is the row argmax of the momentum
        Sinkhorn-Knopp plan (the running code scaling is updated), and ``probs`` is the
        plan's row, normalised. Otherwise the nearest codeword, ``probs`` one-hot.
        ``quantized`` is straight through: z + sg[e - z] (eq. 2). Indices are (N,) or
        (N, P), probs (N, K) or (N, P, K).
        """
        if not self.has_quantizer:
            raise ConfigError("this skvq model has quantizer 'none': it has no codebook to quantize with")
        c = self.config
        zp = self._positions(z)
        d = squared_distances(zp.detach(), self.codebook.detach())  # (N P, d), (K, d) -> (N P, K)
        if self.training and c.quantizer == "sinkhorn":
            with torch.no_grad():
                plan, log_alpha, _ = sinkhorn(-c.sinkhorn_lambda * d, c.sinkhorn_iters, self.log_alpha,
                                              momentum=c.momentum)
                self.log_alpha.copy_(log_alpha)
            idx, probs = plan.argmax(1), plan / plan.sum(1, keepdim=True)
        else:
            idx = d.argmin(1)
            probs = F.one_hot(idx, c.codebook_size).to(z.dtype)
        e = self.codebook[idx]  # (N P, d)
        commitment = c.beta * F.mse_loss(zp, e.detach())  # beta ||z - sg[e]||^2
        terms = {"commitment": commitment}
        if not c.constant_embedding:
            terms["codebook"] = F.mse_loss(e, zp.detach())  # ||sg[z] - e||^2, eq. (3)
        shape = (len(z), self.n_positions) if c.spatial else (len(z),)
        return QuantizerOutput(z + (e.reshape(z.shape) - z).detach(), idx.reshape(shape),
                               probs.reshape(*shape, -1), sum(terms.values()), terms)

    def soft_probs(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K), or (N, P d) -> (N, P, K): softmax(-lambda d + log alpha-bar), a soft,
        balanced assignment for per-sample entropies (alpha-bar = 1 unless trained with Sinkhorn-Knopp).
        Its argmax is the Sinkhorn assignment: the row argmax of the plan with the trained scaling."""
        d = squared_distances(self._positions(z), self.codebook)
        p = torch.softmax(-self.config.sinkhorn_lambda * d + self.log_alpha, 1)
        return p.reshape(len(z), self.n_positions, -1) if self.config.spatial else p

    @property
    def is_soft(self) -> bool:
        """:meth:`soft_probs` is soft, wherever there is a codebook."""
        return self.has_quantizer

    def assignment_probs(self, z: torch.Tensor) -> torch.Tensor:
        """The soft assignment: :meth:`soft_probs`."""
        return self.soft_probs(z)

    def assign_input(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor]:
        """(N, C, H, W) -> z, the nearest codeword's ``quantize`` output and :meth:`soft_probs`."""
        z = self.encode(x)
        return z, self.quantize(z), self.soft_probs(z)

    def code_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, h, w): the nearest codeword of every position of each image's map."""
        return self.quantize(self.encode(x)).indices.reshape(len(x), *self.map_shape)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d) or (N, P d): what the decoder sees (quantized, or z)."""
        z = self.encode(x)
        return self.quantize(z).quantized if self.has_quantizer else z

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.latent(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,): the classifier's label."""
        return self.head(self.pool(self.latent(x))).argmax(1)

    # ----- training -----
    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy on the (quantized) latent + VQ terms (eq. 3) + gradient penalty (eq. 9)."""
        c = self.config
        z = self.encode(x)
        terms: dict[str, torch.Tensor] = {}
        h = z
        if self.has_quantizer:
            q = self.quantize(z)
            h = q.quantized
            terms.update(q.terms)
            if c.gradient_penalty > 0:
                terms["gradient_penalty"] = c.gradient_penalty * gradient_penalty(self._positions(z), self.codebook,
                                                                                  c.gp_sigma)
        logits = self.head(self.pool(h))
        terms["cross_entropy"] = F.cross_entropy(logits, y)
        loss = sum(terms.values())
        terms = {k: v.detach() for k, v in terms.items()}
        return {"loss": loss, **terms, "accuracy": (logits.argmax(1) == y).float().mean()}

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Classifier (encoder, BN, VQ, head), then a decoder on its frozen latents (section 4.2)."""
        c, dev = self.config, trainer.device
        self.to(dev)
        trainer.plan(["classifier", "decoder"])
        x, y = to_tensor(train.images).float(), to_tensor(train.labels)
        t0 = time.perf_counter()
        params = [*self.encoder.parameters(), *self.norm.parameters(), *self.head.parameters()]
        if self.has_quantizer and not c.constant_embedding:
            params.append(self.codebook)
        history = CodebookHistory.for_fit(self, train, test, trainer)  # the decoder stage moves no code
        with history.watching(trainer):
            trainer.run("classifier", params, self.training_loss, (x, y), modules=(self,))
        metrics: dict = {"classifier_seconds": time.perf_counter() - t0}

        # The decoder learns x from the frozen classifier's latent, computed once (section 4.2).
        self.eval()
        h = batched(lambda b: self.latent(b.to(dev)), x)
        t0 = time.perf_counter()
        trainer.run("decoder", self.decoder.parameters(),
                    lambda hb, xb: {"loss": self.reconstruction_loss(self.decode_logits(hb), xb)}, (h, x),
                    modules=(self.decoder,), epochs=c.decoder_epochs or None)
        metrics["decoder_seconds"] = time.perf_counter() - t0
        for split in (train, test) if test is not None else (train,):
            metrics[f"{split.split}_accuracy"] = self.accuracy(split)
        scored = test if test is not None else train
        metrics.update(self.evaluate(scored))
        if self.has_quantizer:
            metrics.update(self.sinkhorn_usage(scored))
        return history.into(metrics)

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """``Model.evaluate``; with a map of codes, usage counts every position in one codebook,
        and again over the positions with content only (``<split>_usage_entropy_content``; see
        :meth:`blank_positions`), with ``<split>_blank_share``, the share of blank positions."""
        out = super().evaluate(dataset, batch_size)
        if self.has_quantizer and self.config.spatial:
            idx, blank = self._assignments(dataset.images, batch_size, "nearest")
            k, split = self.config.codebook_size, dataset.split
            out.update(named_usage(idx, k, split))
            out[f"{split}_blank_share"] = float(blank.mean())
            if not blank.all():
                out.update(named_usage(idx[~blank], k, split, "_content"))
        return out

    def sinkhorn_usage(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Codebook usage of the Sinkhorn assignment (argmax of :meth:`soft_probs`) on a split,
        beside ``evaluate``'s usage of the nearest codeword: ``<split>_usage_entropy_sinkhorn``, ...
        and, with a map of codes, over its positions with content: ``..._sinkhorn_content``."""
        idx, blank = self._assignments(dataset.images, batch_size, "sinkhorn")
        k, split = self.config.codebook_size, dataset.split
        out = named_usage(idx, k, split, "_sinkhorn")
        if blank is not None and not blank.all():
            out.update(named_usage(idx[~blank], k, split, "_sinkhorn_content"))
        return out

    def _assignments(self, images: np.ndarray, batch_size: int, rule: str) -> tuple[np.ndarray, np.ndarray | None]:
        """One pass over ``images``: every position's code by ``rule`` ("nearest" or "sinkhorn"),
        (N P,), and with a map of codes which positions are blank (:meth:`blank_positions`), (N P,)."""
        self.eval()
        codes, blank = [], []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = torch.as_tensor(np.array(images[i : i + batch_size], np.float32)).to(self.device)
                _, q, soft = self.assign_input(x)  # the one assignment (Model.assign), batch by batch
                idx = q.indices if rule == "nearest" else soft.argmax(-1)
                codes.append(idx.reshape(-1).cpu())
                if self.config.spatial:
                    blank.append(blind_positions(self.encoder, x).reshape(-1).cpu())
        return torch.cat(codes).numpy(), torch.cat(blank).numpy() if blank else None

    def blank_positions(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(N, C, H, W) -> (N, P) bool: the positions of the map of codes whose receptive field in
        the image is all zeros, so that their latent is an all-zero image's at that position.

        Such a position sees only blank input (Fashion-MNIST's background: about a fifth of
        its 7x7 positions). They share a few latents, at most one per position, so no
        assignment can spread them over the codebook; this bounds the usage entropy over all
        positions below ln K, where photographs such as the paper's CIFAR-10 have no such bound.
        """
        if not self.config.spatial:
            raise ConfigError("blank positions need a map of codes: this skvq model is not spatial")
        x = to_tensor(images).float()  # the input alone decides: nothing is encoded
        return batched(lambda b: blind_positions(self.encoder, b.to(self.device)).cpu(), x, batch_size).numpy()

    def accuracy(self, dataset: Dataset, batch_size: int = 1024) -> float:
        """The classifier's accuracy on a split (evaluation mode: nearest codeword)."""
        self.eval()
        x = to_tensor(dataset.images).float()
        pred = batched(lambda b: self.predict(b.to(self.device)).cpu(), x, batch_size)
        return float((pred == to_tensor(dataset.labels)).float().mean())

    def reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The decoder's loss from its logits, a per-pixel mean: BCE or MSE of the sigmoid."""
        return reconstruction_loss(logits, x, self.config.recon_loss, per_pixel=True).mean()
