"""Downstream scores of one model: the soft VQ-VAE paper's protocol (Table 1)."""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..models import Model
from ..models.common import batched


def downstream_scores(model: Model, train, test, max_train: int = 10_000, random_state: int = 0) -> dict:
    """The soft VQ-VAE paper's downstream protocol on one model.

    k-means (as many clusters as classes) on the test latents, scored by Hungarian
    accuracy and NMI; a linear probe trained on at most ``max_train`` training
    latents (a seeded subsample) and scored on the test set; the reconstruction
    error of the test images through the model's own path (its quantizer included), for a
    model with a decoder.
    """
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(len(train), min(max_train, len(train)), replace=False))
    z_train = model.encode_array(train.images[keep])
    z_test = model.encode_array(test.images)
    out = metrics.kmeans_scores(z_test, test.labels, n_clusters=test.n_classes, random_state=random_state)
    out["linear_probe"] = metrics.linear_probe(z_train, train.labels[keep], z_test, test.labels,
                                               random_state=random_state)
    if not model.has_decoder:
        return out
    x = torch.as_tensor(np.array(test.images, dtype=np.float32))
    model.eval()
    x_hat = batched(lambda b: model.reconstruct(b.to(model.device)).cpu(), x)
    out.update(metrics.reconstruction_errors(x, x_hat))
    return out


__all__ = ["downstream_scores"]
