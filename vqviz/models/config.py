"""The settings every model family shares, validated in one place.

Each family's config dataclass derives from :class:`ModelConfig` and adds only its own
fields (and its own defaults for the shared ones). The shared checks, and the one
resolution of ``encoder="auto"``, live in :meth:`ModelConfig.__post_init__`; a family
adds its own checks in :meth:`ModelConfig.validate`. The command line reads every
field's help from the ``Attributes`` sections of the class and its parents, so no
docstring is copied from a parent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from ..errors import ConfigError
from ..nets import ARCHITECTURES, auto_architecture, resolve_encoder
from .common import RECON_LOSSES


def check_choice(name: str, value: Any, choices: Sequence) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_number(name: str, value: float, low: float = 0.0, high: float = math.inf,
                 low_open: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a finite number in [low, high] ((low, high] if ``low_open``)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > low if low_open else value >= low)
    if not (ok and value <= high):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{name} must be a finite number {bound}" + (f" and <= {high}" if high < math.inf else "")
                          + f", got {value}")


@dataclass
class ModelConfig:
    """Settings every model has.

    Attributes
    ----------
    in_shape : (C, H, W) of the input images; set from the data set.
    n_classes : number of classes; set from the data set.
    encoder : the network (layers in vqviz.nets); "auto" picks the family's default for the input shape (the MLP for grey images, pooled CAE-4 for colour).
    latent_dim : d, the size of the latent.
    recon_loss : the decoder's reconstruction loss: "bce" or "mse" summed over an image's pixels, or "nmse", the soft VQ-VAE authors' normalised MSE.
    """

    in_shape: tuple[int, int, int] = (1, 8, 8)
    n_classes: int = 10
    encoder: str = "auto"
    latent_dim: int = 64
    recon_loss: str = "bce"

    #: The networks this family can build, besides "auto".
    ENCODERS: ClassVar[tuple[str, ...]] = ARCHITECTURES
    #: The reconstruction losses this family trains with.
    RECON_LOSSES: ClassVar[tuple[str, ...]] = RECON_LOSSES
    #: The fewest classes the family works with (a classifier needs two).
    MIN_CLASSES: ClassVar[int] = 1
    #: The setting that fixes K, the number of codes (None: the family has none).
    K_FIELD: ClassVar[str | None] = None

    def auto_encoder(self, in_shape: tuple[int, int, int]) -> str:
        """What ``encoder="auto"`` means for this family and input shape."""
        return auto_architecture(in_shape)

    def __post_init__(self):
        shape = tuple(int(s) for s in self.in_shape)
        self.in_shape, self.encoder = resolve_encoder(shape, self.encoder, self.ENCODERS,
                                                      auto=self.auto_encoder(shape) if len(shape) == 3 else None)
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if not isinstance(self.n_classes, int) or self.n_classes < self.MIN_CLASSES:
            raise ConfigError(f"n_classes must be at least {self.MIN_CLASSES}, got {self.n_classes}")
        check_choice("recon_loss", self.recon_loss, self.RECON_LOSSES)
        self.validate()

    def validate(self) -> None:
        """The family's own checks; raise ConfigError with the field's name."""

    @classmethod
    def tiny(cls, in_shape: Sequence[int], n_classes: int, **settings: Any) -> ModelConfig:
        """A small config of this family, for ``in_shape`` images of ``n_classes`` classes, that trains
        in seconds on the bundled digits: how the contract tests build every family alike.

        A 16-wide latent and, where the family has K (:attr:`K_FIELD`), 8 codes; ``settings``
        override any field. A family that needs more of a small model says so in its override.
        """
        small = {"latent_dim": 16, **({cls.K_FIELD: 8} if cls.K_FIELD else {})}
        return cls(in_shape=tuple(in_shape), n_classes=n_classes, **{**small, **settings})


__all__ = ["ModelConfig", "check_choice", "check_number"]
