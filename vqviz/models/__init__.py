"""The model registry: ``build(name, **config)`` and ``names()``.

The command line and the app reach every model family through this registry,
so adding a family needs no per-model code anywhere else.
"""

from __future__ import annotations

from dataclasses import fields

from ..errors import ConfigError
from .base import Model
from .common import KMeans, QuantizerOutput, convex_mix, majority_vote, mixing_grid

_REGISTRY: dict[str, type[Model]] = {}


def register(cls: type[Model]) -> type[Model]:
    """Class decorator: add a model family to the registry under ``cls.name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"model name {cls.name!r} is empty or already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Model]:
    """The model class registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(names())}") from None


def build(name: str, **config) -> Model:
    """Build model ``name`` from keyword arguments of its config dataclass."""
    cls = get(name)
    known = {f.name for f in fields(cls.Config)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(f"{name} has no setting {', '.join(unknown)}; "
                          f"its settings are {', '.join(sorted(known))}")
    return cls(cls.Config(**config))


from . import autoencoders, cluster_vae, dvq, seq, sinkhorn_vq, soft_vq, vq  # noqa: E402,F401  (registers the families)

__all__ = ["Model", "QuantizerOutput", "KMeans", "build", "names", "get", "register",
           "majority_vote", "convex_mix", "mixing_grid"]
