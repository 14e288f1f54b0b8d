"""Encoder and decoder builders for any image shape (1x8x8, 1x28x28, 3x32x32, ...).

Every encoder maps ``(N, C, H, W) -> (N, latent_dim)``; every decoder maps
``(N, latent_dim) -> (N, C, H, W)`` with values in [0, 1] (a final sigmoid).
Decoders mirror their encoders layer for layer.

Architectures:

- ``lae2``: dense(1024)-dense(d), the SEQ paper's LAE-2 (section 3.1, d = 128).
- ``lae4``: dense(1024)-dense(512)-dense(256)-dense(d), the SEQ paper's LAE-4.
- ``cae4``: conv(32x5x5)-conv(64x5x5)-dense(1024)-dense(d), the SEQ paper's CAE-4 as
  its authors' code builds it: "same" padding, ReLU after each conv and no pooling, so
  the dense layer sees the whole H x W x 64 map (28 x 28 x 64 = 50,176 inputs on MNIST).
- ``cae4_pool``: the same with 2x2 max-pooling after each conv: 16 times fewer inputs to
  the dense layer and about 6 times less compute per image. Not the paper's network;
  checkpoints made before vqviz 0.2 called it ``cae4``.
- ``mlp``: dense(500)-dense(500)-dense(2000)-dense(d), the soft VQ-VAE paper's MLP.

And SK-VQ's network (:func:`small_cnn`): conv(32, 3x3, /2)-conv(64, 3x3, /2)-dense(d), a small
CNN in place of the paper's WRN-28-2, whose encoder can also keep its map of positions
(``spatial``) and whose decoder gives logits; :func:`blind_positions` says which positions
of such a map see only zeros in the input.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

#: Hidden widths of the fully connected architectures, input side first.
MLP_HIDDEN: dict[str, tuple[int, ...]] = {
    "lae2": (1024,),
    "lae4": (1024, 512, 256),
    "mlp": (500, 500, 2000),
}
CONV_CHANNELS = (32, 64)
CONV_DENSE = 1024
#: The convolutional architectures, and whether each max-pools after its convs.
CONV_POOLED = {"cae4": False, "cae4_pool": True}
ARCHITECTURES = (*MLP_HIDDEN, *CONV_POOLED)
#: Weight initialisations: "glorot" (Glorot-uniform weights, zero biases, as Keras and
#: TensorFlow's dense layers) or "torch" (PyTorch's default, Kaiming-uniform).
INITS = ("glorot", "torch")


def auto_architecture(in_shape: Sequence[int]) -> str:
    """The default network for an input shape: the MLP for grey images, CAE-4 for colour."""
    return "cae4_pool" if int(in_shape[0]) > 1 else "mlp"


def resolve_encoder(in_shape: Sequence[int], encoder: str, choices: Sequence[str] = ARCHITECTURES,
                    auto: str | None = None) -> tuple[tuple[int, int, int], str]:
    """Check a config's ``in_shape`` and ``encoder``; resolve ``"auto"``.

    ``"auto"`` becomes ``auto`` if given, else :func:`auto_architecture`. Returns the
    shape as a tuple of ints and the encoder's name; raises ConfigError otherwise.
    """
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"in_shape must be (channels, height, width), got {shape}")
    if encoder == "auto":
        encoder = auto or auto_architecture(shape)
    if encoder not in choices:
        raise ConfigError(f"unknown encoder {encoder!r}; choose auto or one of {', '.join(choices)}")
    return shape, encoder


def _check(name: str, in_shape: Sequence[int], latent_dim: int) -> tuple[int, int, int]:
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown network {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    if len(in_shape) != 3 or min(in_shape) < 1:
        raise ConfigError(f"in_shape must be (channels, height, width), got {tuple(in_shape)}")
    if latent_dim < 1:
        raise ConfigError(f"latent_dim must be at least 1, got {latent_dim}")
    c, h, w = (int(s) for s in in_shape)
    return c, h, w


def _dense_stack(widths: Sequence[int]) -> list[nn.Module]:
    """Linear layers between consecutive ``widths``, ReLU between them (not after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return layers


def _conv_sizes(h: int, w: int, pooled: bool = True) -> list[tuple[int, int]]:
    """Spatial sizes after each conv (and its 2x2 max-pool, floor), input size first."""
    sizes = [(h, w)]
    for _ in CONV_CHANNELS:
        if pooled:
            h, w = max(h // 2, 1), max(w // 2, 1)
        sizes.append((h, w))
    return sizes


def init_weights(module: nn.Module, init: str) -> nn.Module:
    """Re-initialise every dense and conv layer of ``module`` in place; returns it.

    ``"glorot"``: Glorot-uniform weights and zero biases (Glorot and Bengio 2010), the
    initialisation of the soft VQ-VAE paper (section 5) and of Keras; ``"torch"`` keeps
    PyTorch's default.
    """
    if init not in INITS:
        raise ConfigError(f"init must be one of {INITS}, got {init!r}")
    if init == "glorot":
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return module


def build_encoder(
    name: str, in_shape: Sequence[int], latent_dim: int = 128, latent_activation: str = "none"
) -> nn.Module:
    """Build an encoder ``(N, C, H, W) -> (N, latent_dim)``.

    Parameters
    ----------
    name : {"lae2", "lae4", "cae4", "cae4_pool", "mlp"}
    in_shape : (C, H, W) of one input image.
    latent_dim : width of the last layer.
    latent_activation : {"none", "relu"}
        Activation on the latent. SEQ's reference code ends CAE-4 with a ReLU.
    """
    c, h, w = _check(name, in_shape, latent_dim)
    if latent_activation not in ("none", "relu"):
        raise ConfigError(f"latent_activation must be 'none' or 'relu', got {latent_activation!r}")
    layers: list[nn.Module]
    if name in CONV_POOLED:
        pooled = CONV_POOLED[name]
        layers = []
        channels = (c, *CONV_CHANNELS)
        for a, b in zip(channels[:-1], channels[1:]):
            # "Same" padding keeps the size and the pool halves it (floor); the
            # decoder upsamples back to the recorded sizes, so odd sizes mirror too.
            layers += [nn.Conv2d(a, b, 5, padding=2), nn.ReLU(), *([nn.MaxPool2d(2)] if pooled else [])]
        fh, fw = _conv_sizes(h, w, pooled)[-1]
        layers += [nn.Flatten(), *_dense_stack((CONV_CHANNELS[-1] * fh * fw, CONV_DENSE, latent_dim))]
    else:
        layers = [nn.Flatten(), *_dense_stack((c * h * w, *MLP_HIDDEN[name], latent_dim))]
    if latent_activation == "relu":
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_decoder(name: str, in_shape: Sequence[int], latent_dim: int = 128, logits: bool = False) -> nn.Module:
    """Build the decoder that mirrors :func:`build_encoder`: ``(N, d) -> (N, C, H, W)`` in [0, 1].

    With ``logits=True`` the final sigmoid is left out (the parameters are named the
    same), for losses computed from logits, which stay finite where a sigmoid saturates.
    """
    c, h, w = _check(name, in_shape, latent_dim)
    layers: list[nn.Module]
    if name in CONV_POOLED:
        pooled = CONV_POOLED[name]
        sizes = _conv_sizes(h, w, pooled)
        fh, fw = sizes[-1]
        layers = [
            *_dense_stack((latent_dim, CONV_DENSE, CONV_CHANNELS[-1] * fh * fw)),
            nn.ReLU(),
            nn.Unflatten(1, (CONV_CHANNELS[-1], fh, fw)),
        ]
        channels = (*reversed(CONV_CHANNELS), c)
        for i, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
            # Upsampling to the encoder's recorded sizes inverts the pooling exactly,
            # odd sizes included (7 -> 14 -> 28, 8 -> 4 -> 2 -> 4 -> 8).
            if pooled:
                layers.append(nn.Upsample(size=sizes[-2 - i], mode="nearest"))
            layers.append(nn.Conv2d(a, b, 5, padding=2))
            if i < len(channels) - 2:
                layers.append(nn.ReLU())
    else:
        widths = (latent_dim, *reversed(MLP_HIDDEN[name]), c * h * w)
        layers = [*_dense_stack(widths), nn.Unflatten(1, (c, h, w))]
    if not logits:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def flat_dim(in_shape: Sequence[int]) -> int:
    """Number of values in one input image."""
    return math.prod(int(s) for s in in_shape)


def small_cnn_sizes(h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Sizes after one and two stride-2, padding-1 3x3 convs: ceil(h / 2), then ceil again."""
    h1, w1 = -(-h // 2), -(-w // 2)
    return (h1, w1), (-(-h1 // 2), -(-w1 // 2))


def small_cnn(in_shape: Sequence[int], latent_dim: int, spatial: bool = False) -> tuple[nn.Module, nn.Module]:
    """conv(32, 3x3, /2)-conv(64, 3x3, /2)-dense(d) and its mirror (decoder logits), any image size.

    ``spatial``: the last layer is a 1x1 conv to d channels, and the encoder gives the
    (N, d, h / 4, w / 4) map; the decoder takes that map back.
    """
    c, h, w = in_shape
    (h1, w1), (h2, w2) = small_cnn_sizes(h, w)
    convs = [nn.Conv2d(c, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU()]
    ups = [nn.Upsample(size=(h1, w1)), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
           nn.Upsample(size=(h, w)), nn.Conv2d(32, c, 3, padding=1)]
    if spatial:
        return (nn.Sequential(*convs, nn.Conv2d(64, latent_dim, 1)),
                nn.Sequential(nn.Conv2d(latent_dim, 64, 1), nn.ReLU(), *ups))
    encoder = nn.Sequential(*convs, nn.Flatten(), nn.Linear(64 * h2 * w2, latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, 64 * h2 * w2), nn.ReLU(), nn.Unflatten(1, (64, h2, w2)), *ups)
    return encoder, decoder


def blind_positions(encoder: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, P) bool: the positions of a convolutional ``encoder``'s output map whose
    receptive field in ``x`` is all zeros.

    Each conv of the encoder maps "some input in my window is not zero" by a max-pool with its
    window, stride and padding; the ReLUs keep it. This is exact and the same on every device,
    where comparing latents with a blank image's is not: a GPU's TF32 convolutions differ by
    about 1e-3 between batch sizes.
    """
    seen = (x != 0).any(1, keepdim=True).float()
    for layer in encoder:
        if isinstance(layer, nn.Conv2d):
            seen = F.max_pool2d(seen, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        elif not isinstance(layer, nn.ReLU):
            raise ConfigError(f"blank positions need an encoder of convolutions and ReLUs, not {layer}")
    return (seen == 0).reshape(len(x), -1)
