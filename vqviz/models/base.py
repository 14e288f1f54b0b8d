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
  assigns one; None otherwise), ``assignment_probs(z)`` (its soft assignment) and
  ``quantize_array(images)`` for a whole split;
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

from ..train import Trainer
from ..utils import to_tensor
from .common import QuantizerOutput, batched

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


class Model(nn.Module):
    """Base class of every model family. Subclasses set ``Config`` and ``name``."""

    Config: ClassVar[type]
    name: ClassVar[str] = ""
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
    def code_map_shape(self) -> tuple[int, int] | None:
        """(h, w) of the map of codes that a spatial quantizer gives each image (SK-VQ's
        ``spatial``, whose ``quantize`` then returns (N, h w) indices of one codebook); None otherwise."""
        return None

    @property
    def cluster_labels(self) -> torch.Tensor | None:
        """(K,) the class label the model gives each code (SEQ's majority vote); None if it gives none."""
        return None

    def assignment_probs(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, K) or (N, L, K): the model's soft assignment of ``z`` to its codes,
        ``quantize(z).probs`` unless the family has a softer one (SK-VQ)."""
        return self.quantize(z).probs

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
        """(N, C, H, W) -> QuantizerOutput: ``quantize(encode(x))``, unless the model's
        assignment also depends on the image beyond z (the soft VQ-VAE's hidden variance head)."""
        return self.quantize(self.encode(x))

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

        The default minimises :meth:`training_loss` over all parameters in one stage.
        """
        self.data_variance = float(np.var(train.images, dtype=np.float64)) or 1.0
        self.to(trainer.device)
        trainer.plan(["train"])
        trainer.run("train", self.parameters(), self.training_loss,
                    (to_tensor(train.images), to_tensor(train.labels)), modules=(self,),
                    after_epoch=self.after_epoch)
        return self.evaluate(test if test is not None else train)

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
            q = self.quantize_array(dataset.images, batch_size)
            k = q.probs.shape[-1]
            usage = metrics.codebook_usage(q.indices, k)
            out.update({f"{split}_{key}": v for key, v in usage.items() if key != "counts"})
            rows = q.probs.reshape(-1, k)
            out[f"{split}_assignment_entropy"] = float(metrics.assignment_entropy(rows).mean())
        return out

    def quantize_array(self, images: np.ndarray, batch_size: int = 1024) -> QuantizedArray:
        """Quantize a whole split in batches (through :meth:`quantize_input`): indices and probs."""
        self.eval()
        x = to_tensor(images).float()
        idx, probs = [], []
        with torch.no_grad():
            for b in x.split(batch_size):
                q = self.quantize_input(b.to(self.device))
                idx.append(q.indices.cpu())
                probs.append(q.probs.cpu())
        return QuantizedArray(torch.cat(idx).numpy(), torch.cat(probs).numpy())

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
