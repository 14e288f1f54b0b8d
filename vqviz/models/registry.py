"""The model registry: every family registers its class here, and callers build by name.

It imports nothing from the families, so a family module imports ``register`` from here
without a loop; ``vqviz.models`` imports the families once, which registers them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Model

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
