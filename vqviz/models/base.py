"""The model contract that every family follows, written down once.

A model is an ``nn.Module`` with

- ``config``: an instance of its config dataclass (saved in every checkpoint);
- ``encode(x) -> z`` of shape (N, d) and ``decode(z) -> x_hat`` of shape (N, C, H, W);
- ``quantize(z) -> QuantizerOutput`` when it has a quantizer (``has_quantizer``),
  and ``codes(indices) -> quantized`` to go back from indices to codes. A model
  with L codebooks (depthwise VQ) returns indices (N, L) and probs (N, L, K);
- what callers ask of any model, answered by the model and never guessed from its
  config: ``n_codes`` (K, None without a quantizer), ``n_codebooks`` (L),
  ``has_quantizer``, ``cluster_labels`` (the label of each code, where the model
  assigns one; None otherwise), ``is_soft`` (whether its soft assignment can be other
  than one-hot), ``assignment_probs(z)`` (its soft assignment) and ``assign(images)``,
  a whole split's assignment: the one answer that the map, the codebook page and the
  metrics all read;
- ``reconstruct(x)``: the path the decoder was trained on (through the quantizer
  for VQ models);
- ``fit(train, test, trainer) -> metrics``, which runs its training stages. The
  default runs one stage minimising ``training_loss(x, y)``, then ``evaluate``;
- ``evaluate(dataset) -> metrics``: reconstruction error and, for a quantizer,
  codebook usage over the whole split;
- ``extra_state()`` / ``load_extra_state(state)``: JSON-able state that is not a
  weight (e.g. SEQ's k-means centres and cluster labels), stored in the
  checkpoint's JSON file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..train import Trainer
from ..utils import to_tensor
from .common import QuantizerOutput, batched
from .history import CodebookHistory

if TYPE_CHECKING:
    from ..data import Dataset


def older_than(version: str, other: str) -> bool:
    """Whether vqviz version ``version`` ("0.1.0") precedes ``other`` ("0.2")."""
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("+")[0].split(".") if p.isdigit())
    return parts(version) < parts(other)


class QuantizedArray(NamedTuple):
    """A whole split's assignment, as numpy arrays (:meth:`Model.quantize_array`).

    Attributes
    ----------
    indices : (N,) or (N, L) int64, the chosen codeword of each sample (and codebook).
    probs : (N, K) or (N, L, K) float32, the assignment probabilities (one-hot for a hard one).
    """

    indices: np.ndarray
    probs: np.ndarray


class Assignment(NamedTuple):
    """A whole split's assignment (:meth:`Model.assign`): which code each sample gets, how
    surely, and the cluster it counts in. The map, the codebook page and the metrics read
    this one answer, so they cannot disagree.

    Attributes
    ----------
    latents : (N, d) float32, the encoder's outputs.
    indices : (N,) or (N, L) int64, the code the model picks for each sample (and codebook;
        L positions for a map of codes), as it quantizes in evaluation.
    probs : (N, K) or (N, L, K) float32, the quantizer's own assignment probabilities (one-hot
        for a hard quantizer).
    soft_probs : like ``probs``: the model's soft assignment (SK-VQ's balanced softmax, the soft
        VQ-VAE's posterior with each image's own variances); ``probs`` for a hard model.
    clusters : (N,) int64, each sample's cluster: its code; for L codebooks the index of its
        tuple of codes among those that occur; for a map of codes its most used code.
    codes : (M,) or (M, L) int64, the indices that give each cluster's codeword through
        :meth:`Model.codes`.
    entropy : (N,) float64, the entropy of each sample's ``soft_probs`` in nats (for L
        codebooks or positions, the mean over them); all 0 for a hard model.
    """

    latents: np.ndarray
    indices: np.ndarray
    probs: np.ndarray
    soft_probs: np.ndarray
    clusters: np.ndarray
    codes: np.ndarray
    entropy: np.ndarray

    @property
    def n_codes(self) -> int:
        """K, the codewords of each codebook."""
        return self.probs.shape[-1]

    @property
    def max_entropy(self) -> float:
        """ln K: the entropy of a uniform assignment over the K codewords."""
        return float(np.log(self.n_codes))


class Model(nn.Module):
    """Base class of every model family. Subclasses set ``Config`` and ``name``."""

    Config: ClassVar[type]
    name: ClassVar[str] = ""
    #: Whether ``fit`` trains it: False for what only holds results (a file of latents), which the
    #: command line's and the app's training forms leave out.
    trainable: ClassVar[bool] = True
    #: The training images' pixel variance, which the "nmse" reconstruction loss divides
    #: by; ``fit`` sets it (it is not needed after training, so not saved).
    data_variance: float = 1.0

    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ----- what every caller may ask, answered once -----
    @property
    def n_codes(self) -> int | None:
        """K, the codewords of each codebook (SEQ: its k-means clusters); None without a quantizer."""
        return None

    @property
    def n_codebooks(self) -> int | None:
        """L, the codebooks whose indices ``quantize`` gives side by side; None without a quantizer."""
        return None if self.n_codes is None else 1

    @property
    def has_quantizer(self) -> bool:
        """Whether this model quantizes: ``quantize``, ``codes`` and the codebook statistics apply."""
        return self.n_codes is not None

    @property
    def has_decoder(self) -> bool:
        """Whether this model draws latents: ``decode``, ``reconstruct`` and every decoded picture apply
        (a wrapped encoder may come without a decoder)."""
        return True

    @property
    def code_map_shape(self) -> tuple[int, int] | None:
        """(h, w) of the map of codes that a spatial quantizer gives each image (SK-VQ's
        ``spatial``, whose ``quantize`` then returns (N, h w) indices of one codebook); None otherwise."""
        return None

    @property
    def cluster_labels(self) -> torch.Tensor | None:
        """(K,) the class label the model gives each code (SEQ's majority vote); None if it gives none."""
        return None

    @property
    def is_soft(self) -> bool:
        """Whether the model's soft assignment (:meth:`assignment_probs`) can be other than
        one-hot, so that a sample's assignment entropy can be above 0. False for the hard
        quantizers (nearest codeword, k-means centre)."""
        return False

    def assignment_probs(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K) or (N, L, K): the model's soft assignment of ``z`` to its codes,
        ``quantize(z).probs`` unless the family has a softer one (SK-VQ)."""
        return self.quantize(z).probs

    def assign_input(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor]:
        """(N, C, H, W) -> z (N, d), ``quantize``'s output and the soft assignment, in one pass.

        Families whose assignment reads more of the image than z (the soft VQ-VAE's variance
        head) or have a softer assignment than ``probs`` (SK-VQ) override this.
        """
        z = self.encode(x)
        q = self.quantize(z)
        return z, q, q.probs

    @classmethod
    def upgrade_config(cls, config: dict, version: str) -> dict:
        """A checkpoint's config, written by vqviz ``version``, in today's terms.

        Families whose defaults changed meaning override this and call it first.
        """
        config = dict(config)
        if older_than(version, "0.2") and config.get("encoder") == "cae4":
            config["encoder"] = "cae4_pool"  # before 0.2, cae4 max-pooled after each conv
        return config

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d); by default the family's ``encoder`` network."""
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, C, H, W): the decoder before its sigmoid; by default the family's ``decoder`` network."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, C, H, W) in [0, 1]: the sigmoid of :meth:`decode_logits`."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput; only for models with a quantizer."""
        raise NotImplementedError(f"{self.name} has no quantizer")

    def quantize_input(self, x: torch.Tensor) -> QuantizerOutput:
        """(N, C, H, W) -> QuantizerOutput: the quantizer's output of :meth:`assign_input`."""
        return self.assign_input(x)[1]

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices as returned by ``quantize`` -> the quantized vectors (N, d)."""
        raise NotImplementedError(f"{self.name} has no quantizer")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W): what the decoder makes of ``x``."""
        return self.decode(self.encode(x))

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of one batch for the default one-stage ``fit``; must hold "loss"."""
        raise NotImplementedError

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Train on ``train``, then score on ``test`` (or ``train``); return the metrics.

        The default minimises :meth:`training_loss` over all parameters in one stage and, for a
        model with a codebook, records its use after every epoch (``codebook_history``,
        :class:`~vqviz.models.history.CodebookHistory`).
        """
        self.data_variance = float(np.var(train.images, dtype=np.float64)) or 1.0
        self.to(trainer.device)
        trainer.plan(["train"])
        history = CodebookHistory.for_fit(self, train, test, trainer)  # a model without a codebook records nothing
        with history.watching(trainer):
            trainer.run("train", self.parameters(), self.training_loss,
                        (to_tensor(train.images), to_tensor(train.labels)), modules=(self,),
                        after_epoch=self.after_epoch)
        return history.into(self.evaluate(test if test is not None else train))

    def after_epoch(self, epoch: int) -> None:
        """Called by the default ``fit`` after every epoch; override to update state."""

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """Metrics on one split: reconstruction errors (per image and per pixel) and,
        for a quantizer, codebook usage and mean assignment entropy over the split."""
        from .. import metrics

        self.eval()
        x = to_tensor(dataset.images).float()
        with torch.no_grad():
            x_hat = batched(lambda b: self.reconstruct(b.to(self.device)).cpu(), x, batch_size)
        split = dataset.split
        out = {f"{split}_{k}": v for k, v in metrics.reconstruction_errors(x, x_hat).items()}
        if self.has_quantizer:
            a = self.assign(dataset.images, batch_size)
            out.update(metrics.named_usage(a.indices, a.n_codes, split))
            out[f"{split}_assignment_entropy"] = float(a.entropy.mean())
        return out

    def assign(self, images: np.ndarray, batch_size: int = 1024) -> Assignment:
        """Encode and assign a whole split in batches (:meth:`assign_input`): the one answer
        to which code each sample gets, with what probability, and in which cluster it counts.

        Parameters
        ----------
        images : (N, C, H, W) float images in [0, 1].

        Returns
        -------
        Assignment (see its attributes). Only for a model with a quantizer.
        """
        from .. import metrics

        if not self.has_quantizer:
            raise ConfigError(f"{self.name} has no quantizer: there is nothing to assign")
        if len(images) == 0:
            raise ConfigError("an assignment of no samples")
        self.eval()
        x = to_tensor(images).float()
        parts = []
        with torch.no_grad():
            for b in x.split(batch_size):
                z, q, soft = self.assign_input(b.to(self.device))
                parts.append((z.cpu(), q.indices.cpu(), q.probs.cpu(), soft.cpu()))
        z, idx, probs, soft = (torch.cat(p).numpy() for p in zip(*parts))
        k = probs.shape[-1]
        # (N, K) or (N, L, K) -> (N,): one entropy per sample, the mean over its codebooks or positions
        entropy = metrics.assignment_entropy(soft.reshape(-1, k)).reshape(len(z), -1).mean(1)
        idx = idx.astype(np.int64)
        if self.code_map_shape is not None:  # a map of codes: an image's cluster is its most used code
            counts = np.apply_along_axis(np.bincount, 1, idx, minlength=k)  # (N, K)
            clusters, codes = counts.argmax(1).astype(np.int64), np.arange(k)
        elif idx.ndim == 1:
            clusters, codes = idx, np.arange(k)
        else:  # L codebooks: a cluster is one tuple of codes that occurs in the split
            codes, clusters = np.unique(idx, axis=0, return_inverse=True)
            clusters = clusters.reshape(-1).astype(np.int64)
        return Assignment(z, idx, probs, soft, clusters, codes, entropy)

    #: What :meth:`cluster_centres` gives, in words a page can show after "each cluster's picture is".
    CENTRE_MEANING: ClassVar[str] = "its codeword passed through the decoder"

    def cluster_centres(self, a: Assignment) -> np.ndarray:
        """(M, d) float32: the latent that shows each cluster of ``a`` when decoded, its codeword
        (:meth:`codes`). A model whose decoder sees a mix of codewords overrides this."""
        with torch.no_grad():
            return self.codes(torch.as_tensor(a.codes, device=self.device)).cpu().numpy().astype(np.float32)

    def quantize_array(self, images: np.ndarray, batch_size: int = 1024) -> QuantizedArray:
        """A whole split's codes and the quantizer's probabilities: :meth:`assign`'s."""
        a = self.assign(images, batch_size)
        return QuantizedArray(a.indices, a.probs)

    def extra_state(self) -> dict:
        """JSON-able state beyond the weights (saved in the checkpoint's JSON)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned."""

    # Helpers for numpy arrays of a whole split, used by the app and the metrics.
    def encode_array(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Encode an (N, C, H, W) float array in batches; returns (N, d) float32.

        Batch by batch, so a read-only split (data sets are cached) is never copied whole.
        """
        self.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = torch.as_tensor(np.array(images[i : i + batch_size], dtype=np.float32))
                out.append(self.encode(x.to(self.device)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def decode_array(self, z: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Decode an (N, d) array in batches; returns (N, C, H, W) float32 in [0, 1]."""
        self.eval()
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        return batched(lambda b: self.decode(b.to(self.device)).cpu(), z, batch_size).numpy()
