"""Which code a wrapped model's checkpoint may have imported: the factory rule.

A wrapped model (:mod:`vqviz.models.wrapped`) is rebuilt by a factory, a function named
``"module:function"`` in its ``meta.json`` and called with the JSON arguments saved beside it.
Rebuilding imports that module, so a checkpoint, which anyone may upload, must never choose it.
A factory is allowed only when

1. it is one of vqviz's own (:data:`BUILTIN`);
2. an installed distribution declares it: an entry point of the group ``vqviz.factories`` that
   names this function (``mine = "mypkg.nets:build"``) or its module (``mine = "mypkg.nets"``),
   or one of the group ``vqviz.models`` whose module is this one;
3. or its module is, or lies under, a prefix that the server's operator lists in the setting
   ``VQVIZ_ALLOWED_FACTORIES`` (``[server] allowed_factories`` in ``vqviz.toml``; see
   :mod:`vqviz.settings`).

Everything is decided from the name alone, before anything is imported; a factory that is not
allowed raises :class:`~vqviz.errors.UntrustedCodeError`, which names it and the setting.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Callable

from ..errors import ConfigError, UntrustedCodeError
from ..settings import ENV, server_settings
from .registry import GROUP as FAMILIES
from .registry import Origin, plugin_origins

#: The entry-point group through which installed packages declare factories.
GROUP = "vqviz.factories"
#: vqviz's own factories.
BUILTIN = ("vqviz.models.wrapped:mlp",)
#: The setting that lists the module prefixes an operator allows.
SETTING = ENV["allowed_factories"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FACTORY = re.compile(rf"({_NAME}(?:\.{_NAME})*):([A-Za-z]\w*)")


def parse(factory: str) -> tuple[str, str]:
    """``"module:function"`` -> (module, function); the function a public name of the module itself.

    Raises
    ------
    ConfigError
        Anything else (a path, an attribute of an attribute, a private name).
    """
    found = FACTORY.fullmatch(factory) if isinstance(factory, str) else None
    if found is None:
        raise ConfigError(f"factory must be 'module:function' (e.g. 'mypkg.nets:build'), got {str(factory)[:80]!r}")
    return found.group(1), found.group(2)


def under(module: str, prefix: str) -> bool:
    """Whether ``module`` is ``prefix`` or one of its submodules."""
    return module == prefix or module.startswith(prefix + ".")


def allowed(factory: str) -> tuple[bool, Origin | None]:
    """Whether ``factory`` may be imported, and the entry point that declares it (None: built in, or
    allowed by the setting). Reads entry points and settings only; imports nothing."""
    module, function = parse(factory)
    if factory in BUILTIN:
        return True, None
    for ep in entry_points(group=GROUP):
        if ep.module == module and ep.attr in (None, function):
            return True, Origin.of(GROUP, ep)
    for family in plugin_origins():
        if family.module == module:
            return True, family
    if any(under(module, prefix) for prefix in server_settings().allowed_factories):
        return True, None
    return False, None


def load(factory: str) -> tuple[Callable, Origin | None]:
    """The factory function, imported only if :func:`allowed`, and the entry point that declares it.

    Raises
    ------
    UntrustedCodeError
        The factory is not allowed: its module is not imported.
    ConfigError
        It is allowed, but its module has no such function.
    """
    module, function = parse(factory)
    ok, origin = allowed(factory)
    if not ok:
        top = module.split(".")[0]
        raise UntrustedCodeError(
            f"the factory {factory!r} may not be imported: a wrapped model's checkpoint names the code that "
            f"rebuilds it, so vqviz imports only the factories of installed packages (the entry-point groups {GROUP!r} "
            f"and {FAMILIES!r}) and those under the module prefixes that the setting {SETTING} (vqviz.toml: "
            f"[server] allowed_factories) lists. If you trust the module {module!r}, add "
            + (f"{top!r} or {module!r}" if top != module else repr(module)) + " there")
    return _import(factory, module, function), origin


def import_unchecked(factory: str) -> tuple[Callable, Origin | None]:
    """The factory function and its entry point, imported without :func:`allowed`: only for a factory
    that the caller's own code names (:func:`vqviz.wrap`), never one read from a checkpoint or a visitor."""
    module, function = parse(factory)
    return _import(factory, module, function), allowed(factory)[1]


def _import(factory: str, module: str, function: str) -> Callable:
    try:
        found = getattr(importlib.import_module(module), function, None)
    except ImportError as e:
        raise ConfigError(f"the factory {factory!r} cannot be imported: {type(e).__name__}: {str(e)[:200]}") from None
    if not callable(found):
        raise ConfigError(f"the factory {factory!r} names nothing callable in {module}")
    return found


__all__ = ["GROUP", "BUILTIN", "SETTING", "FACTORY", "parse", "allowed", "load", "import_unchecked", "under"]
