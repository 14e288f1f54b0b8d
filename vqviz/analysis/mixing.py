"""The style mixer: three latents and their decoded convex mixtures (the SEQ paper's section 3.3, Fig. 5)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..images import triangle
from ..models import Model, convex_mix, mixing_grid
from .panels import cluster_table, typical_rows
from .points import PointTable

MIX_SOURCES = ("random", "one cluster", "clusters of one class")


def pick_triplet(table: PointTable, source: str, seed: int = 0, cluster: int | None = None,
                 label: int | None = None) -> np.ndarray:
    """Three row numbers to mix.

    ``"random"``: any three samples. ``"one cluster"``: three members of ``cluster``.
    ``"clusters of one class"``: the most typical member (nearest its cluster's mean)
    of three different clusters labelled ``label``, i.e. three styles of one class.
    """
    rng = np.random.default_rng(seed)
    n = len(table.labels)
    if source == "random" or not table.has_clusters:
        return rng.choice(n, 3, replace=n < 3)
    if source == "one cluster":
        rows = np.flatnonzero(table.clusters == cluster)
        if len(rows) == 0:
            raise ConfigError(f"cluster {cluster} has no member in this split")
        return rng.choice(rows, 3, replace=len(rows) < 3)
    if source == "clusters of one class":
        ks = [k for k in cluster_table(table).get(label, []) if table.sizes[k] > 0]
        if not ks:
            raise ConfigError(f"no cluster of class {label} has a member in this split")
        out = []
        for k in rng.choice(ks, 3, replace=len(ks) < 3):
            typical = typical_rows(table, int(k))
            out.append(next((r for r in typical if r not in out), typical[0]))
        return np.asarray(out)
    raise ConfigError(f"unknown source {source!r}; choose one of {', '.join(MIX_SOURCES)}")


def mixture(model: Model, latents: np.ndarray, alphas: tuple[float, float]) -> np.ndarray:
    """(C, H, W): the decoded a1 z1 + a2 z2 + (1 - a1 - a2) z3 of three (3, d) latents."""
    z = convex_mix(torch.as_tensor(np.asarray(latents, dtype=np.float32)), alphas)
    return model.decode_array(z[None])[0]


def slider_grid(model: Model, latents: np.ndarray, steps: int = 101, top: float = 1.0) -> np.ndarray:
    """Every mixture the mixer's two sliders can ask for, decoded in one batch.

    Returns (steps, steps, C, H, W): entry (i, j) is the decoded mixture with
    a1 = i * top / (steps - 1) and a2 = j * top / (steps - 1), the same as
    :func:`mixture` gives for those weights (the default: α steps of 0.01 on [0, 1]).
    Only the convex mixtures (a1 + a2 <= 1) are decoded; the other entries are 0.
    """
    z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
    if z.ndim != 2 or z.shape[0] != 3:
        raise ConfigError(f"expected three latents of shape (3, d), got {tuple(z.shape)}")
    a = torch.linspace(0.0, top, steps, dtype=z.dtype)
    a1, a2 = (g.reshape(-1) for g in torch.meshgrid(a, a, indexing="ij"))
    # (M, 3) weights of the convex mixtures; each row sums to 1 like convex_mix's (a tolerance for linspace)
    convex = a1 + a2 <= 1 + 1e-6
    w = torch.stack([a1, a2, (1 - a1 - a2).clamp_min(0)], 1)[convex]
    decoded = model.decode_array(w @ z)
    images = np.zeros((steps * steps, *decoded.shape[1:]), np.float32)
    images[convex.numpy()] = decoded
    return images.reshape(steps, steps, *decoded.shape[1:])


def mixing_picture(model: Model, latents: np.ndarray, steps: int = 6, scale: int = 4, gap: int = 8,
                   frame: int = 4) -> np.ndarray:
    """The Fig. 5 triangle as one (H', W', 3) uint8 picture: z1 top left, z2 top right,
    z3 bottom right, each framed in its colour of :data:`vqviz.images.MARKS`.

    ``scale`` enlarges each decoded image; ``gap`` and ``frame`` are in screen pixels.
    """
    z, cells = mixing_grid(torch.as_tensor(np.asarray(latents, dtype=np.float32)), steps)
    return triangle(model.decode_array(z), cells[:, :2].astype(int), steps, scale, gap, frame)


__all__ = ["MIX_SOURCES", "pick_triplet", "mixture", "slider_grid", "mixing_picture"]
