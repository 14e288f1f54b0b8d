"""Pieces shared by every model family: the quantizer output, the reconstruction loss,
convex mixing of latents, batched evaluation, and the balanced assignment of the SK-VQ paper
(Suzuki et al., ICAART 2022): momentum Sinkhorn-Knopp and the gradient penalty. Written once,
used everywhere. (Distances, k-means and majority-vote labelling are in :mod:`vqviz.cluster`.)"""

from __future__ import annotations

import math
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


def _average(new: torch.Tensor, old: torch.Tensor, m: float) -> torch.Tensor:
    """(1 - m) new + m old of log scalings: a geometric moving average of the scalings."""
    return new if m == 0 else torch.lerp(new, old, m)


def sinkhorn(log_p: torch.Tensor, n_iters: int, log_alpha: torch.Tensor | None = None,
             log_beta: torch.Tensor | None = None, momentum: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Momentum Sinkhorn-Knopp (the SK-VQ paper's eq. 5 and section 3.1) towards uniform marginals.

    Parameters
    ----------
    log_p : (N, K) log-kernel, -lambda ||e_k - z_i||^2 (eq. 8).
    n_iters : Sinkhorn iterations (each a code update, then a sample update).
    log_alpha : (K,) log of the running code scaling alpha-bar; None = ones.
    log_beta : (N,) or broadcastable, log of the running sample scaling beta-bar;
        None = the sample scaling that ``log_alpha`` implies, [P alpha]^-1.
    momentum : m; 0 is plain Sinkhorn-Knopp.

    Returns
    -------
    plan : (N, K) Q_ik = beta_i P_ik alpha_k, with P's rows shifted to a maximum of 1.
        At convergence (m = 0) rows sum to 1 and columns to N / K: N times the
        transport plan with marginals 1/N and 1/K. A row is then the sample's
        distribution over codes; its argmax is the hard assignment, which depends on
        alpha only.
    log_alpha : (K,) the updated code scaling (each new log alpha centred to mean 0, then averaged).
    log_beta : (N,) the updated sample scaling.

    Notes
    -----
    It works in log space (logsumexp), each row of log P shifted by its maximum (the minimum
    distance, as in SeLa and SwAV; beta absorbs it). Three readings of the SK-VQ paper's
    section 3.1, each measured:

    - the moving average is taken of log alpha and log beta (a geometric average), not of
      alpha and beta: the scalings are defined up to alpha -> c alpha, beta -> beta / c,
      which an arithmetic average does not respect, and it lowers a scaling by at most a
      factor m per iteration (on digits at m = 0.999, log alpha fell by 1 per 360 steps and
      the codes collapsed first: usage entropy 2.30 nats against 2.33 here; at m = 0.9,
      3.06 against 4.00);
    - log alpha is centred before each average, which otherwise drifts (to +90 after
      3000 batches at m = 0.9); the plan does not change;
    - beta is per sample and the samples change between batches, so a model carries only
      alpha-bar (SK-VQ's (K,) buffer) and takes for a new batch's beta_{t-1} the scaling that
      alpha-bar implies, [P alpha]^-1 (``log_beta=None``). On a skewed Gaussian mixture the
      literal position-wise average of beta balanced less (usage entropy 3.90 nats) than this
      (4.14; one Sinkhorn-Knopp on all the data: 4.15).
    """
    if log_p.ndim != 2:
        raise ConfigError(f"sinkhorn takes an (N, K) log-kernel, got shape {tuple(log_p.shape)}")
    if not 0 <= momentum < 1:
        raise ConfigError(f"momentum must lie in [0, 1), got {momentum}")
    n, k = log_p.shape
    # Subtract each row's minimum distance (SeLa, SwAV): a per-sample factor that beta absorbs.
    log_p = log_p - log_p.max(1, keepdim=True).values
    la = log_p.new_zeros(k) if log_alpha is None else log_alpha.to(log_p)
    lb = -torch.logsumexp(log_p + la, 1) if log_beta is None else log_beta.to(log_p).expand(n)
    log_col = math.log(n / k)  # column target N / K, row target 1
    for _ in range(n_iters):
        new = log_col - torch.logsumexp(log_p + lb[:, None], 0)  # (K,): alpha_y <- [P beta]_y^-1
        la = _average(new - new.mean(), la, momentum)  # alpha-bar_t <- (1 - m) alpha + m alpha-bar, in log
        new = -torch.logsumexp(log_p + la, 1)  # (N,): beta_i <- [alpha^T P]_i^-1
        lb = _average(new, lb, momentum)
    return (log_p + la + lb[:, None]).exp(), la, lb


def gradient_penalty(z: torch.Tensor, codebook: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, d), (K, d) -> (): mean over samples of (||grad_z C(z)||^2 - 1)^2, the SK-VQ paper's eqs. (6) and (9).

    C(z) = sum_k exp(-(1/d) ||z - e_k||^2 / (2 sigma^2)). The paper writes 1/K; DUQ, which
    eq. (9) follows, averages over the embedding's d dimensions, as here. The squared norm
    of eq. (6) (no square root) keeps the gradient finite when z sits on a codeword.
    The graph is kept (create_graph) so that the penalty trains the encoder.
    """
    with torch.enable_grad():
        if not z.requires_grad:
            z = z.detach().requires_grad_(True)
        # ||z||^2 - 2 z.e + ||e||^2 without clamping: its gradient 2 (z - e) is exact.
        d2 = (z * z).sum(1, keepdim=True) - 2.0 * z @ codebook.T + (codebook * codebook).sum(1)
        c = torch.exp(-d2 / (z.shape[1] * 2.0 * sigma**2)).sum(1)  # (N, K) -> (N,): eq. (9)
        (grad,) = torch.autograd.grad(c.sum(), z, create_graph=True)  # rows are independent
    return ((grad.pow(2).sum(1) - 1.0) ** 2).mean()
