"""Cluster VAEs (Wang, Blair & Belkhale, "Encouraging Categorical Meaning in the Latent
Space of a VAE"): the VAE of ``autoencoders.py`` with another prior in its KL term.

- Lambda-hot VAE (section 4, supervised): KL(q(z|x) || N(lambda e_y, I)) where e_y is
  the one-hot label on the first C latent dimensions and 0 on the rest. The first C
  dimensions of the posterior mean then classify by a plain argmax (section 5.1).
- k-means VAE (section 4, unsupervised): KL(q(z|x) || N(c_k, I)) with c_k the k-means
  centre nearest to the posterior mean; the centres are recomputed on the training
  set's posterior means after every epoch, starting from those of the untrained encoder.

The paper gives no code, architecture, optimiser or number of epochs: here the networks
are ``vqviz.nets``' (config ``encoder``) and training is the shared trainer's (Adam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from ..cluster import KMeans, nearest
from ..errors import ConfigError
from ..train import Trainer
from ..utils import to_tensor
from .autoencoders import VAE, VAEConfig
from .common import QuantizerOutput, batched
from .config import check_number
from .history import CodebookHistory
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset


@dataclass
class LambdaVAEConfig(VAEConfig):
    """Settings of a lambda-hot VAE.

    Attributes
    ----------
    latent_dim : size of z (20 in the paper); the first n_classes dimensions carry the class.
    lam : lambda, the prior mean on the label's dimension (5.0 in the paper).
    """

    latent_dim: int = 20
    lam: float = 5.0

    def validate(self) -> None:
        super().validate()
        if self.latent_dim < self.n_classes:
            raise ConfigError(f"the lambda-hot prior puts one dimension per class on the first latent "
                              f"dimensions: latent_dim ({self.latent_dim}) must be at least n_classes "
                              f"({self.n_classes})")
        check_number("lam", self.lam, low_open=True)

    @classmethod
    def tiny(cls, in_shape, n_classes: int, **settings) -> LambdaVAEConfig:
        """:meth:`ModelConfig.tiny`, with a latent wide enough for one dimension per class."""
        return super().tiny(in_shape, n_classes, **{"latent_dim": max(16, n_classes), **settings})


@dataclass
class KMeansVAEConfig(VAEConfig):
    """Settings of a k-means VAE (the classes are used only for scoring).

    Attributes
    ----------
    n_clusters : K, the number of k-means centres in the latent space.
    kmeans_restarts : k-means++ restarts at every recomputation; the lowest inertia wins.
    """

    latent_dim: int = 20
    n_clusters: int = 10
    kmeans_restarts: int = 2

    K_FIELD: ClassVar[str | None] = "n_clusters"

    def validate(self) -> None:
        super().validate()
        if self.n_clusters < 1 or self.kmeans_restarts < 1:
            raise ConfigError(f"n_clusters and kmeans_restarts must be at least 1, "
                              f"got {self.n_clusters} and {self.kmeans_restarts}")


@register
class LambdaVAE(VAE):
    """Lambda-hot VAE: a class-dependent prior N(lambda e_y, I) on the first C latent dimensions."""

    Config = LambdaVAEConfig
    name = "lambda_vae"

    def prior_labels(self) -> torch.Tensor:
        return torch.arange(self.config.n_classes)

    def prior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """(N,) labels -> (N, d): lambda on dimension y, 0 elsewhere (section 4)."""
        c = self.config
        mean = torch.zeros(len(y), c.latent_dim, device=self.device)
        mean[:, : c.n_classes] = c.lam * F.one_hot(y.long().to(self.device), c.n_classes)
        return mean

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,): argmax over the first C dimensions of the posterior mean (section 5.1)."""
        return self.encode(x)[:, : self.config.n_classes].argmax(1)

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Reconstruction errors and the naive argmax accuracy."""
        out = super().evaluate(dataset, batch_size)
        x = to_tensor(dataset.images).float()
        pred = batched(lambda b: self.classify(b.to(self.device)).cpu(), x, batch_size)
        out[f"{dataset.split}_argmax_accuracy"] = float((pred.numpy() == dataset.labels).mean())
        return out


@register
class KMeansVAE(VAE):
    """k-means VAE: the KL term pulls each posterior to its nearest k-means centre, N(c_k, I).

    The centres are its quantizer (``quantize``, ``codes``) and the components it samples
    from; ``reconstruct`` still decodes the posterior mean, which is what the decoder is
    trained on (z ~ q(z|x)), not the centre.
    """

    Config = KMeansVAEConfig
    name = "kmeans_vae"

    @property
    def n_codes(self) -> int:
        """K, the k-means centres of the prior."""
        return self.config.n_clusters

    def __init__(self, config: KMeansVAEConfig):
        super().__init__(config)
        # Real state, so persistent buffers: they go into the safetensors file.
        self.register_buffer("centres", torch.zeros(config.n_clusters, config.latent_dim))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # times the centres were set
        self._train_images: torch.Tensor | None = None
        self._seed = 0

    # ----- the prior -----
    def prior_labels(self) -> torch.Tensor:
        return torch.arange(self.config.n_clusters)

    def prior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """(N,) cluster indices -> (N, d) their centres."""
        return self.centres[y.long().to(self.centres.device)]

    def kl_target(self, mu: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, d): the nearest centre to each posterior mean (labels unused)."""
        return self.centres[nearest(mu, self.centres)]

    def sample(self, k=None, n: int = 16, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws around centre ``k`` (or around every centre, cluster by cluster, for None)."""
        self._check_fitted()
        return super().sample(k, n, generator)

    # ----- the quantizer: the nearest centre -----
    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """Nearest centre: a hard assignment, so ``probs`` is one-hot (N, K)."""
        self._check_fitted()
        idx = nearest(z, self.centres)
        probs = F.one_hot(idx, self.config.n_clusters).to(z.dtype)
        return QuantizerOutput(self.centres[idx], idx, probs, z.new_zeros(()), {})

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        return self.centres[indices]

    def _check_fitted(self) -> None:
        if int(self.updates) == 0:
            raise ConfigError("this k-means VAE has no centres yet: call fit() first")

    # ----- training -----
    def update_centres(self, images: torch.Tensor, seed: int = 0) -> None:
        """k-means on the posterior means of ``images`` (N, C, H, W); the result becomes the centres."""
        was_training = self.training
        self.eval()
        mu = batched(lambda b: self.encode(b.to(self.device)), images)  # (N, d)
        self.train(was_training)
        km = KMeans(self.config.n_clusters, n_init=self.config.kmeans_restarts, random_state=seed).fit(mu)
        self.centres.copy_(km.cluster_centers_)
        self.updates.add_(1)

    def after_epoch(self, epoch: int) -> None:
        """Recompute the centres on the training set's posterior means (section 4)."""
        if self._train_images is not None:
            self.update_centres(self._train_images, self._seed + epoch)

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Centres of the untrained encoder, then the VAE stage with the centres recomputed every epoch."""
        self.to(trainer.device)
        trainer.plan(["kmeans", "train"])
        self._seed = trainer.config.seed
        x, y = to_tensor(train.images), to_tensor(train.labels)
        self._train_images = x.to(trainer.device)
        history = CodebookHistory.for_fit(self, train, test, trainer)  # after each epoch's new centres
        try:
            self.update_centres(self._train_images, self._seed)
            trainer.report("kmeans", 1.0, f"initial {self.config.n_clusters} centres")
            with history.watching(trainer):
                trainer.run("train", self.parameters(), self.training_loss, (x, y), modules=(self,),
                            after_epoch=self.after_epoch)
        finally:
            self._train_images = None
        return history.into(self.evaluate(test if test is not None else train))

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Reconstruction errors, codebook use, and the Hungarian accuracy and NMI of the clusters."""
        from .. import metrics

        out = super().evaluate(dataset, batch_size)
        assign = self.quantize_array(dataset.images, batch_size).indices
        out[f"{dataset.split}_cluster_accuracy"] = metrics.clustering_accuracy(dataset.labels, assign)
        out[f"{dataset.split}_cluster_nmi"] = metrics.nmi(dataset.labels, assign)
        return out
