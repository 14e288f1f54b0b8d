"""Pieces shared by every model family: the quantizer output, the reconstruction loss,
convex mixing of latents and batched evaluation. Written once, used everywhere.
(Distances, k-means and majority-vote labelling are in :mod:`vqviz.cluster`.)"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError


class QuantizerOutput(NamedTuple):
    """What every quantizer returns.

    Attributes
    ----------
    quantized : Tensor (N, d)
        The quantized latents (for a hard quantizer, the chosen codewords).
    indices : LongTensor (N,) or (N, L)
        Index of the chosen codeword (one column per codebook for depthwise VQ).
    probs : Tensor (N, K) or (N, L, K)
        Assignment probabilities; one-hot for a hard assignment.
    loss : Tensor ()
        The quantizer's total loss (zero when it has none, as for k-means).
    terms : dict[str, Tensor]
        The named terms that add up to ``loss``, for logging.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    probs: torch.Tensor
    loss: torch.Tensor
    terms: dict


RECON_LOSSES = ("bce", "mse", "nmse")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str, variance: float = 1.0,
                        per_pixel: bool = False) -> torch.Tensor:
    """Decoder logits and images (N, C, H, W) -> (N,): the reconstruction term of each image.

    - ``"bce"``: Bernoulli -log p(x | z), summed over the pixels; computed from the
      logits, which stays finite where the sigmoid saturates.
    - ``"mse"``: squared error of the sigmoid output, summed over the pixels (Gaussian
      -log p(x | z) up to constants).
    - ``"nmse"``: squared error of the sigmoid output **averaged** over the pixels and
      divided by ``variance``, the data's pixel variance: the soft VQ-VAE authors'
      normalised MSE, ``mean((x_hat - x)^2) / var(x)`` (their MNIST notebook).

    ``per_pixel`` divides "bce" and "mse" by the number of pixels: the per-pixel means
    that the decoders of SEQ and SK-VQ, trained on frozen latents, minimise.
    """
    if kind == "bce":
        per_image = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    elif kind == "mse":
        per_image = ((torch.sigmoid(logits) - x) ** 2).flatten(1).sum(1)
    elif kind == "nmse":
        return ((torch.sigmoid(logits) - x) ** 2).flatten(1).mean(1) / variance
    else:
        raise ConfigError(f"recon_loss must be one of {RECON_LOSSES}, got {kind!r}")
    return per_image / x[0].numel() if per_pixel else per_image


def convex_mix(latents: torch.Tensor, alphas: tuple[float, float]) -> torch.Tensor:
    """z = a1 z1 + a2 z2 + a3 z3 with a3 = 1 - a1 - a2 (the SEQ paper's section 3.3, whose figures vary
    a1 and a2 in (0, 0.5); any convex mixture is allowed here, the corners z1, z2 and z3 included).

    Parameters
    ----------
    latents : (3, d) the three latents z1, z2, z3.
    alphas : (a1, a2), each at least 0 and together at most 1, so that a3 = 1 - a1 - a2 is in [0, 1].

    Returns
    -------
    (d,) the mixture.
    """
    if latents.ndim != 2 or latents.shape[0] != 3:
        raise ConfigError(f"convex mixing takes three latents of shape (3, d), got {tuple(latents.shape)}")
    a1, a2 = (float(a) for a in alphas)
    if not (a1 >= 0.0 and a2 >= 0.0 and a1 + a2 <= 1.0 + 1e-6):
        raise ConfigError(f"alpha1 and alpha2 must be at least 0 and together at most 1, got ({a1}, {a2}); "
                          "weights off the simplex would not be a convex mixture")
    weights = torch.tensor([a1, a2, 1.0 - a1 - a2], dtype=latents.dtype, device=latents.device)
    return weights @ latents


def mixing_grid(latents: torch.Tensor, steps: int = 6) -> tuple[torch.Tensor, np.ndarray]:
    """The SEQ paper's Fig. 5: convex mixtures of three latents laid out on a triangle.

    Cell (row, col) with ``col >= row`` of a ``steps x steps`` grid holds the
    mixture with barycentric weights ``w3 = row / n``, ``w2 = (col - row) / n``,
    ``w1 = 1 - w2 - w3`` (``n = steps - 1``), so z1 sits top left, z2 top right and
    z3 bottom right, as in the paper. Every weight is in [0, 1] and they sum to 1.

    Returns
    -------
    mixtures : (M, d) one latent per filled cell, row by row; M = steps (steps + 1) / 2.
    cells : (M, 5) float array of (row, col, w1, w2, w3).
    """
    if steps < 2:
        raise ConfigError(f"the mixing grid needs at least 2 steps, got {steps}")
    n = steps - 1
    cells = np.asarray([(row, col, 1.0 - col / n, (col - row) / n, row / n)
                        for row in range(steps) for col in range(row, steps)])
    weights = torch.as_tensor(cells[:, 2:], dtype=latents.dtype, device=latents.device)
    return weights @ latents, cells


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1024
            ) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches under no_grad and concatenate the results."""
    with torch.no_grad():
        return torch.cat([fn(part) for part in x.split(batch_size)]) if len(x) else fn(x)
