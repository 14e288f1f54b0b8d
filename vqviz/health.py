"""Checks that what a model shows is not silently wrong.

A decoder can collapse to a constant picture: a sigmoid output whose pre-activations
all sit far below zero decodes every latent to black, and its mean squared error is
then that of an all-zero image, which looks like a small number. Nothing in the loss
curve says so. :func:`check_decoder` measures the collapse on a sample of decoded
images, training records its result in the checkpoint's metrics under
``"decoder_check"``, and :func:`decoder_warning` turns that record into the sentence
that the command line prints and the app shows wherever decoded images appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .models import Model

#: A decoder is degenerate when its decoded images vary, per image, by less than this
#: share of the data's own per-image standard deviation.
BLANK_RATIO = 0.01


def check_decoder(decoded: np.ndarray, data: np.ndarray, threshold: float = BLANK_RATIO) -> dict:
    """Measure whether decoded images are near-constant.

    Parameters
    ----------
    decoded : (N, C, H, W) decoded images of a sample of the data, in [0, 1].
    data : (M, C, H, W) images of the data set (the reference spread).
    threshold : the ratio below which the decoder counts as degenerate.

    Returns
    -------
    A JSON-ready dict: ``degenerate`` (bool), ``std_ratio`` (the median per-image
    standard deviation of the decoded images over that of the data), ``between_ratio``
    (the spread across decoded images, pixel by pixel, over the data's), and
    ``threshold``. A decoder is degenerate when either ratio is below the threshold:
    every image flat, or every image the same.
    """
    decoded = np.asarray(decoded, dtype=np.float64).reshape(len(decoded), -1)
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    eps = 1e-12
    within = float(np.median(decoded.std(axis=1)) / max(float(np.median(data.std(axis=1))), eps))
    between = float(decoded.std(axis=0).mean() / max(float(data.std(axis=0).mean()), eps))
    return {"degenerate": bool(within < threshold or between < threshold),
            "std_ratio": round(within, 6), "between_ratio": round(between, 6), "threshold": threshold}


def check_model(model: Model, images: np.ndarray, n: int = 512, seed: int = 0) -> dict:
    """:func:`check_decoder` on ``model``'s reconstructions of a seeded sample of ``images``."""
    rows = np.sort(np.random.default_rng(seed).choice(len(images), min(n, len(images)), replace=False))
    sample = np.asarray(images[rows], dtype=np.float32)
    model.eval()
    with torch.no_grad():
        decoded = model.reconstruct(torch.as_tensor(sample, device=model.device)).cpu().numpy()
    return check_decoder(decoded, sample)


def decoder_warning(metrics: Mapping | None) -> str | None:
    """The warning to show beside decoded images, or None when the decoder is fine.

    ``metrics`` is a checkpoint's metrics; checkpoints made before the check existed
    have no ``decoder_check`` and get None.
    """
    check = (metrics or {}).get("decoder_check")
    if not isinstance(check, Mapping) or not check.get("degenerate"):
        return None
    within, between = check.get("std_ratio", 0.0), check.get("between_ratio", 0.0)
    what = "are nearly blank" if within < check.get("threshold", BLANK_RATIO) else "are all nearly the same"
    return (f"This model's decoder is degenerate: its decoded images {what} (spread within an image "
            f"{within:.1%} of the data's, across images {between:.1%}). Pictures decoded by it do not show "
            "what its latents hold; retrain it (for example with the BCE reconstruction loss).")


__all__ = ["BLANK_RATIO", "check_decoder", "check_model", "decoder_warning"]
