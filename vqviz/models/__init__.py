"""The model families, reached by name: ``build(name, **config)``, ``get(name)`` and ``names()``.

The command line and the app reach every model family through the registry
(:mod:`vqviz.models.registry`), so adding a family needs no per-model code anywhere else.
Importing this package imports every family module, which registers it; the families of other
packages (the entry-point group ``vqviz.models``) are added the first time the registry is asked.
:func:`wrap` puts a model you already have behind the same contract.
"""

from __future__ import annotations

from ..cluster import KMeans, majority_vote
from . import autoencoders, cluster_vae, dvq, seq, sinkhorn_vq, soft_vq, table, vq, vqlib, wrapped  # noqa: F401  (registers the families)
from .base import Model
from .common import QuantizerOutput, convex_mix, mixing_grid
from .registry import build, forget_plugins, get, names, register, trainable_names
from .wrapped import wrap

__all__ = ["Model", "QuantizerOutput", "KMeans", "build", "names", "trainable_names", "get", "register", "forget_plugins", "wrap",
           "majority_vote", "convex_mix", "mixing_grid"]
