"""The model registry: every family registers its class here, and callers build by name.

It imports nothing from the families, so a family module imports ``register`` from here
without a loop; ``vqviz.models`` imports the families once, which registers them.

Families of other packages arrive through the entry-point group ``vqviz.models`` (as pytest
plugins do): each entry point names a :class:`~vqviz.models.Model` subclass with its ``Config``,
e.g. in the plug-in's ``pyproject.toml``::

    [project.entry-points."vqviz.models"]
    mine = "vqviz_mine.model:Mine"

They are read once, the first time :func:`names`, :func:`get` or :func:`build` is called;
:func:`forget_plugins` makes the next call read them again. An entry point that fails to load,
or names no model family, is left out with a warning that names it; it never breaks the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import warnings
from dataclasses import fields
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Model

#: The entry-point group through which other packages add model families.
GROUP = "vqviz.models"

_REGISTRY: dict[str, type[Model]] = {}


class Origin(NamedTuple):
    """Where a plug-in's code comes from: its entry point and the distribution that provides it.

    Attributes
    ----------
    group : the entry-point group (``vqviz.models``, ``vqviz.factories``).
    entry_point : ``name = value`` as the distribution declares it.
    module : the module the entry point names.
    distribution : the installed distribution's name, or None where unknown.
    version : its version, or None.
    """

    group: str
    entry_point: str
    module: str
    distribution: str | None
    version: str | None

    @classmethod
    def of(cls, group: str, ep: EntryPoint) -> Origin:
        dist = getattr(ep, "dist", None)
        return cls(group, f"{ep.name} = {ep.value}", ep.module, dist.name if dist else None,
                   dist.version if dist else None)

    def __str__(self) -> str:
        by = f" of {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
        return f"the {self.group} entry point {self.entry_point!r}{by}"


_plugins: dict[str, Origin] = {}  # the families that entry points added, by name
_read = False
_lock = threading.RLock()  # the app's threads may ask for the first time at once


def register(cls: type[Model]) -> type[Model]:
    """Class decorator: add a model family to the registry under ``cls.name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"model name {cls.name!r} is empty or already registered")
    _REGISTRY[cls.name] = cls
    return cls


def _not_a_family(obj) -> str:
    """Why ``obj`` is not a model family ("" when it is): a Model subclass with a name and a dataclass Config."""
    from .base import Model
    from .config import ModelConfig

    if not (isinstance(obj, type) and issubclass(obj, Model)):
        what = f"{type(obj).__name__} {getattr(obj, '__name__', '')!s:.60}"
        return f"it names {what}, not a subclass of vqviz.models.Model"
    if not isinstance(obj.name, str) or not obj.name.isidentifier():
        return f"its class {obj.__name__} has no name (a Python identifier, e.g. name = \"mine\")"
    config = getattr(obj, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config) and issubclass(config, ModelConfig)):
        return f"its class {obj.__name__} has no Config, a dataclass derived from vqviz.models.config.ModelConfig"
    return ""


def _read_plugins() -> None:
    """Add the families of the ``vqviz.models`` entry points, once; warn about each one left out."""
    global _read
    with _lock:
        if _read:
            return
        _read = True  # before loading: a plug-in that asks for names() while it loads sees the built-ins
        for ep in entry_points(group=GROUP):
            origin = Origin.of(GROUP, ep)
            try:
                cls = ep.load()
            except Exception as e:  # noqa: BLE001  any failure of one plug-in: leave it out, keep the rest
                warnings.warn(f"{origin} failed to load ({type(e).__name__}: {str(e)[:200]}); its model family is "
                              "left out", RuntimeWarning, stacklevel=3)
                continue
            problem = _not_a_family(cls)
            if not problem and _REGISTRY.get(cls.name, cls) is not cls:
                problem = f"its family's name {cls.name!r} is taken by another family"
            if problem:
                warnings.warn(f"{origin} is left out: {problem}", RuntimeWarning, stacklevel=3)
                continue
            _REGISTRY[cls.name] = cls  # it may have registered itself on import already
            _plugins[cls.name] = origin


def forget_plugins() -> None:
    """Drop the families that entry points added; the next :func:`names`, :func:`get` or :func:`build`
    reads the entry points again (after installing or removing a plug-in in a running process)."""
    global _read
    with _lock:
        for name in _plugins:
            _REGISTRY.pop(name, None)
        _plugins.clear()
        _read = False
        importlib.invalidate_caches()


def origin(name: str) -> Origin | None:
    """Where family ``name`` comes from: its entry point and distribution; None for a family of vqviz."""
    _read_plugins()
    return _plugins.get(name)


def plugin_origins() -> list[Origin]:
    """The entry points of every plug-in family that loaded."""
    _read_plugins()
    return list(_plugins.values())


def names() -> list[str]:
    """The registered model names, the plug-ins' included, sorted."""
    _read_plugins()
    return sorted(_REGISTRY)


def trainable_names() -> list[str]:
    """The families that train (:attr:`Model.trainable`), as the training forms list them."""
    return [n for n in names() if _REGISTRY[n].trainable]


def get(name: str) -> type[Model]:
    """The model class registered under ``name``."""
    _read_plugins()
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


def not_installed(name: str, versions: object) -> str:
    """Why a checkpoint of family ``name`` cannot be read here, and where the family would come from:
    the entry-point group, and the distribution that the checkpoint's ``versions`` recorded."""
    dist = versions.get("family_distribution") if isinstance(versions, dict) else None
    if isinstance(dist, str) and dist:
        version = versions.get(dist)
        pin = f"=={version}" if isinstance(version, str) and version else ""
        where = (f"it was saved with the family from the package {dist[:80]!r}"
                 f"{f' {version[:40]}' if pin else ''}: install it (pip install '{dist[:80]}{pin[:42]}')")
    else:
        where = "the checkpoint does not say which package provided it"
    return (f"names an unknown model {name[:40]!r}: no installed package provides this family (packages add "
            f"families through the entry-point group {GROUP!r}); {where}. This vqviz knows {', '.join(names())}")


def provenance(model: Model) -> dict[str, str]:
    """What a checkpoint's ``versions`` records of the packages whose code rebuilds ``model``: a plug-in
    family's distribution (``family_distribution``) and a wrapped model's factory's
    (``factory_distribution``), each name with its version under the name, as the other libraries."""
    out: dict[str, str] = {}
    for key, where in (("family_distribution", origin(model.name)),
                       ("factory_distribution", getattr(model, "factory_origin", None))):
        if where is not None and where.distribution:
            out[key] = where.distribution
            out[where.distribution] = where.version or "unknown"
    return out
