"""The model contract that every family follows, written down once.

A model is an ``nn.Module`` with

- ``config``: an instance of its config dataclass (saved in every checkpoint);
- ``encode(x) -> z`` of shape (N, d) and ``decode(z) -> x_hat`` of shape (N, C, H, W);
- ``quantize(z) -> QuantizerOutput`` when it has a quantizer (``has_quantizer``);
- ``fit(train, test, trainer) -> metrics``, which runs its training stages;
- ``extra_state()`` / ``load_extra_state(state)``: JSON-able state that is not a
  weight (e.g. SEQ's k-means centres and cluster labels), stored in the
  checkpoint's JSON file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from ..train import Trainer
from ..utils import to_tensor
from .common import QuantizerOutput, batched

if TYPE_CHECKING:
    from ..data import Dataset


class Model(nn.Module):
    """Base class of every model family. Subclasses set ``Config`` and ``name``."""

    Config: ClassVar[type]
    name: ClassVar[str] = ""
    has_quantizer: ClassVar[bool] = False

    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, d)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """(N, d) -> QuantizerOutput; only for models with a quantizer."""
        raise NotImplementedError(f"{self.name} has no quantizer")

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Train on ``train`` (scoring on ``test`` where given); return the metrics."""
        raise NotImplementedError

    def extra_state(self) -> dict:
        """JSON-able state beyond the weights (saved in the checkpoint's JSON)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned."""

    # Helpers for numpy arrays of a whole split, used by the app and the metrics.
    def encode_array(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Encode an (N, C, H, W) float array in batches; returns (N, d) float32."""
        self.eval()
        x = to_tensor(images).float()
        z = batched(lambda b: self.encode(b.to(self.device)).cpu(), x, batch_size)
        return z.numpy()

    def decode_array(self, z: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Decode an (N, d) array in batches; returns (N, C, H, W) float32 in [0, 1]."""
        self.eval()
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        return batched(lambda b: self.decode(b.to(self.device)).cpu(), z, batch_size).numpy()
