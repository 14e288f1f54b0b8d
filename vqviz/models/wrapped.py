"""A model you already have, explored as a vqviz model: :func:`wrap` puts any PyTorch encoder, and
optionally a decoder and a quantizer, behind the model contract (:mod:`vqviz.models.base`).

The modules are rebuilt by a *factory*: a function ``"module:function"`` that takes JSON
keyword arguments and returns ``{"encoder": ..., "decoder": ..., "quantizer": ...}`` (the last
two may be left out). A checkpoint stores the factory's name and arguments in its config and the
modules' weights in safetensors, never a pickle; loading calls the factory only where
:mod:`vqviz.models.factories` allows it.

The modules' contract:

- ``encoder(x)``: (N, C, H, W) images in [0, 1] -> (N, d) latents (any (N, ...) is flattened);
- ``decoder(z)``: (N, d) -> (N, C, H, W) or (N, C·H·W) pixels in [0, 1] (logits with ``logits=True``);
- ``quantizer(z)``: an ``nn.Module`` that takes (N, d) and returns either a tuple
  ``(quantized, indices)`` or ``(quantized, indices, loss)``, or an object with the attributes
  ``quantized`` (N, d), ``indices`` (N,) int in [0, K) and optionally ``loss`` (a scalar added to the
  training loss) and ``probs`` (N, K), a soft assignment (one-hot of ``indices`` where absent). It
  goes back from indices to codewords with ``codes(indices) -> (N, d)`` and tells K by
  ``n_codes``, or has a ``codebook`` tensor (K, d), a parameter or buffer, that gives both. An
  attribute ``is_soft = True`` says its ``probs`` can be other than one-hot.

The decoder takes the quantized latent where there is a quantizer. Without a decoder no page
decodes (:attr:`Model.has_decoder`); without a quantizer the model has no clusters, as the plain
autoencoder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cluster import nearest
from ..errors import ConfigError
from . import factories
from .base import Model
from .common import QuantizerOutput, reconstruction_loss
from .config import ModelConfig
from .registry import register

if TYPE_CHECKING:
    from ..data import Dataset
    from ..train import Trainer

#: The factory of :meth:`WrappedConfig.tiny` and of ``vqviz train wrapped`` by default: :func:`mlp`.
MLP = "vqviz.models.wrapped:mlp"
PARTS = ("encoder", "decoder", "quantizer")


@dataclass
class WrappedConfig(ModelConfig):
    """Settings of a wrapped model: the factory that rebuilds its modules, and how to read them.

    Attributes
    ----------
    encoder : "factory": the networks are the factory's.
    latent_dim : d, the size of the encoder's output (wrap measures it).
    recon_loss : what training (vqviz train wrapped) minimises: "mse" or "bce" summed over an image's pixels, or "nmse".
    factory : "module:function" that returns the modules, {"encoder": ..., "decoder": ..., "quantizer": ...}; imported only for installed entry points (vqviz.factories, vqviz.models) or module prefixes in VQVIZ_ALLOWED_FACTORIES.
    factory_args : the factory's keyword arguments, as a JSON object (vqviz.models.wrapped:mlp's in_shape and latent_dim default to this config's).
    logits : the decoder outputs logits, passed through a sigmoid, rather than pixels in [0, 1].
    """

    encoder: str = "factory"
    latent_dim: int = 16
    recon_loss: str = "mse"
    factory: str = MLP
    factory_args: dict[str, Any] = field(default_factory=dict)
    logits: bool = False

    ENCODERS = ("factory",)

    def auto_encoder(self, in_shape: tuple[int, int, int]) -> str:
        return "factory"

    def validate(self) -> None:
        factories.parse(self.factory)  # its form only; whether it may be imported is asked when it is
        if not isinstance(self.factory_args, dict):
            raise ConfigError(f"factory_args must be a JSON object, got {type(self.factory_args).__name__}")
        try:  # JSON as it will be saved: tuples become lists, so the factory sees what a reload gives it
            self.factory_args = json.loads(json.dumps(self.factory_args, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"factory_args must hold JSON values only: {e}") from None
        if self.factory == MLP:
            self.factory_args = {"in_shape": list(self.in_shape), "latent_dim": self.latent_dim, **self.factory_args}

    @classmethod
    def tiny(cls, in_shape: Sequence[int], n_classes: int, **settings: Any) -> WrappedConfig:
        """The built-in MLP factory's small model with an 8-code quantizer."""
        settings = {"factory_args": {"hidden": 64, "n_codes": 8}, **settings}
        return super().tiny(in_shape, n_classes, **settings)


class NearestCodeword(nn.Module):
    """A quantizer that follows the protocol: the nearest of K codewords (a VQ-VAE's, van den Oord et al.
    2017), with the straight-through estimator and the codebook + 0.25 commitment loss of their eq. (3)."""

    def __init__(self, n_codes: int, dim: int):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(n_codes, dim) / dim**0.5)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = nearest(z, self.codebook)  # (N, d) -> (N,)
        c = self.codebook[idx]
        loss = F.mse_loss(c, z.detach()) + 0.25 * F.mse_loss(z, c.detach())
        return z + (c - z).detach(), idx, loss


def mlp(in_shape: Sequence[int] = (1, 8, 8), latent_dim: int = 16, hidden: int = 64, n_codes: int = 0) -> dict:
    """A small factory: dense encoder and decoder (one hidden layer of ``hidden``) and, with ``n_codes``,
    a :class:`NearestCodeword` quantizer. The example that the contract test wraps, and a template."""
    c, h, w = (int(s) for s in in_shape)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, c * h * w), nn.Sigmoid())
    parts = {"encoder": encoder, "decoder": decoder}
    if n_codes:
        parts["quantizer"] = NearestCodeword(n_codes, latent_dim)
    return parts


def _parts(parts: Any, where: str) -> dict[str, nn.Module | None]:
    """The factory's (or the caller's) modules, checked: an encoder, and a decoder and quantizer or None."""
    if not isinstance(parts, Mapping) or set(parts) - set(PARTS):
        got = type(parts).__name__
        if isinstance(parts, Mapping):
            got = f"the keys {', '.join(sorted(map(str, parts)))[:120]}"
        raise ConfigError(f"{where} must give a dict with the keys {', '.join(PARTS)} (decoder and quantizer "
                          f"optional), not {got}")
    out = {k: parts.get(k) for k in PARTS}
    for key, module in out.items():
        if (module is not None or key == "encoder") and not isinstance(module, nn.Module):
            raise ConfigError(f"{where}: the {key} must be a torch.nn.Module (so that its weights are saved), "
                              f"got {type(module).__name__}")
    q = out["quantizer"]
    goes_back = callable(getattr(q, "codes", None)) and isinstance(getattr(q, "n_codes", None), int)
    if q is not None and not (isinstance(getattr(q, "codebook", None), torch.Tensor) or goes_back):
        raise ConfigError(f"{where}: the quantizer needs a codebook tensor (K, d), or a codes(indices) method and "
                          "an n_codes count, to go back from indices to codewords")
    return out


@register
class Wrapped(Model):
    """A model you already have: your encoder, and optionally decoder and quantizer, rebuilt by a factory."""

    Config = WrappedConfig
    name = "wrapped"

    def __init__(self, config: WrappedConfig, parts: Mapping | None = None):
        super().__init__(config)
        #: The entry point that declares the factory, where one does (recorded in a checkpoint's versions).
        self.factory_origin = None
        if parts is None:
            build, self.factory_origin = factories.load(config.factory)
            parts = build(**config.factory_args)
        parts = _parts(parts, f"the factory {config.factory!r}")
        self.encoder, self.decoder, self.quantizer = parts["encoder"], parts["decoder"], parts["quantizer"]

    # ----- what every caller may ask -----
    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    @property
    def n_codes(self) -> int | None:
        q = self.quantizer
        if q is None:
            return None
        book = getattr(q, "codebook", None)
        return int(book.shape[0]) if isinstance(book, torch.Tensor) else int(q.n_codes)

    @property
    def is_soft(self) -> bool:
        return self.quantizer is not None and getattr(self.quantizer, "is_soft", False) is True

    # ----- the modules behind the contract -----
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def _decoded(self, z: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise ConfigError("this model has no decoder: it cannot draw a latent")
        return self.decoder(z).reshape(len(z), *self.config.in_shape)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoded(z)
        return out if self.config.logits else torch.logit(out.clamp(1e-6, 1 - 1e-6))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoded(z)
        return torch.sigmoid(out) if self.config.logits else out.clamp(0, 1)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        if self.quantizer is None:
            raise NotImplementedError("this wrapped model has no quantizer")
        out = self.quantizer(z)
        if hasattr(out, "quantized") and hasattr(out, "indices"):  # a named output (our QuantizerOutput too)
            quantized, idx = out.quantized, out.indices
            loss, probs = getattr(out, "loss", None), getattr(out, "probs", None)
        elif isinstance(out, (tuple, list)) and len(out) in (2, 3):
            quantized, idx, loss, probs = out[0], out[1], out[2] if len(out) == 3 else None, None
        else:
            raise ConfigError("the quantizer must return (quantized, indices[, loss]) or an object with quantized "
                              f"and indices, got {type(out).__name__}")
        idx = torch.as_tensor(idx).long()
        if idx.shape != (len(z),) or quantized.shape != z.shape:
            raise ConfigError(f"the quantizer returned indices {tuple(idx.shape)} and quantized "
                              f"{tuple(quantized.shape)} for latents {tuple(z.shape)}: expected ({len(z)},) and "
                              "the latents' shape")
        if probs is None:
            probs = F.one_hot(idx, self.n_codes).to(z.dtype)
        loss = torch.as_tensor(0.0 if loss is None else loss, device=z.device).mean()
        return QuantizerOutput(quantized, idx, probs, loss, {"quantizer": loss.detach()})

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        q = self.quantizer
        if q is None:
            raise NotImplementedError("this wrapped model has no quantizer")
        book = getattr(q, "codebook", None)
        return book[indices.long()] if isinstance(book, torch.Tensor) else q.codes(indices)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        return self.decode(self.quantize(z).quantized if self.has_quantizer else z)

    # ----- training: the reconstruction through the quantizer, and its own loss -----
    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        terms = {}
        if self.has_quantizer:
            q = self.quantize(z)
            z, terms["quantizer"] = q.quantized, q.loss
        if self.has_decoder:
            terms["recon"] = reconstruction_loss(self.decode_logits(z), x, self.config.recon_loss,
                                                 self.data_variance).mean()
        loss = sum(terms.values())
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}

    def fit(self, train: Dataset, test: Dataset | None, trainer: Trainer) -> dict:
        """Fine-tune on ``train`` where there is a decoder to train against; a model without one is
        only scored, as it came.

        Raises
        ------
        ConfigError
            The encoder's latents are not ``latent_dim`` wide (a checkpoint would say otherwise).
        """
        self.to(trainer.device)
        with torch.no_grad():
            d = self.eval().encode(torch.as_tensor(np.array(train.images[:1]), device=trainer.device)).shape[1]
        if d != self.config.latent_dim:
            raise ConfigError(f"the factory's encoder gives latents of {d}, not latent_dim = {self.config.latent_dim}: "
                              f"set latent_dim (--latent-dim) to {d}")
        if self.has_decoder:
            return super().fit(train, test, trainer)
        return self.evaluate(test if test is not None else train)

    def evaluate(self, dataset: Dataset, batch_size: int = 1024) -> dict:
        """:meth:`Model.evaluate`; without a decoder, only the codebook's usage and entropy."""
        if self.has_decoder:
            return super().evaluate(dataset, batch_size)
        from .. import metrics

        out = {}
        if self.has_quantizer:
            a = self.assign(dataset.images, batch_size)
            out.update(metrics.named_usage(a.indices, a.n_codes, dataset.split))
            out[f"{dataset.split}_assignment_entropy"] = float(a.entropy.mean())
        return out


def wrap(encoder: nn.Module, decoder: nn.Module | None = None, quantizer: nn.Module | None = None, *,
         factory: str, factory_args: dict | None = None, in_shape: Sequence[int] = (1, 28, 28),
         n_classes: int | None = None, logits: bool = False) -> Wrapped:
    """A vqviz model around modules you already have.

    Parameters
    ----------
    encoder, decoder, quantizer : your modules (the contract in :mod:`vqviz.models.wrapped`); the
        decoder and quantizer may be left out.
    factory : ``"module:function"`` that builds the same modules from ``factory_args`` and returns
        ``{"encoder": ..., "decoder": ..., "quantizer": ...}``: what a checkpoint names to rebuild them.
    factory_args : its keyword arguments, JSON values (tuples come back as lists).
    in_shape : (C, H, W) of the images the encoder takes.
    n_classes : the classes of its data, where known.
    logits : the decoder outputs logits rather than pixels in [0, 1].

    Returns
    -------
    Wrapped, which ``vqviz.checkpoints.save(model, folder, dataset=...)`` saves as any other model.

    Raises
    ------
    ConfigError
        A module that breaks the contract, arguments that are not JSON, or a factory whose modules'
        weights do not have the names and shapes of the given ones (it is called once, on PyTorch's
        ``meta`` device, which allocates nothing, to check that a checkpoint will load).
    """
    parts = _parts({"encoder": encoder, "decoder": decoder, "quantizer": quantizer}, "wrap")
    shape = tuple(int(s) for s in in_shape)
    was = encoder.training
    device = next(encoder.parameters(), torch.empty(0)).device
    with torch.no_grad():  # measure d on two blank images, in eval mode (no batch statistics move)
        latent_dim = encoder.eval()(torch.zeros(2, *shape, device=device)).flatten(1).shape[1]
    encoder.train(was)
    config = WrappedConfig(in_shape=shape, n_classes=max(1, n_classes or 1), latent_dim=latent_dim,
                           factory=factory, factory_args=dict(factory_args or {}), logits=logits)
    model = Wrapped(config, parts)
    build, model.factory_origin = factories.import_unchecked(factory)  # the caller's own code, named by the caller
    with torch.device("meta"):
        rebuilt = Wrapped(config, build(**config.factory_args))
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want != got:
        differ = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        raise ConfigError(f"the factory {factory!r} builds modules whose weights differ from the ones given "
                          f"(first: {', '.join(differ[:3])}): a checkpoint of this model would not load")
    return model


__all__ = ["Wrapped", "WrappedConfig", "NearestCodeword", "wrap", "mlp", "MLP"]
