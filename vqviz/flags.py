"""Command-line flags made from dataclasses: the one mechanism behind every command.

Each field becomes ``--field-name``, typed from its annotation, with its help taken
from the numpydoc ``Attributes`` section of the class or of the nearest parent that
documents it, so a subclass documents only its own fields. A field's ``metadata``
changes what argparse needs to know beyond that:

- ``flag``: another name (``"--kmeans-restarts"`` for ``n_init``), or a positional name;
- ``nargs``: for a positional, e.g. ``"*"``;
- ``choices``, ``metavar``;
- ``switch=True``: a bool that is only ever switched on (``--quick``), without ``--no-quick``.

Every flag's parsed default is None, meaning "not given", so that :func:`given` returns
only what the command line set and the dataclass's own defaults (or a preset) fill the rest.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from dataclasses import MISSING, fields
from typing import Any


def docs(cls: type) -> dict[str, str]:
    """Parse the numpydoc ``Attributes`` sections of ``cls`` and its parents: ``name : text`` lines.

    A class documents only its own fields (and those whose meaning it changes); the
    nearest class that documents a field wins.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for line in (klass.__dict__.get("__doc__") or "").splitlines():
            name, sep, text = line.strip().partition(" : ")
            if sep and name.isidentifier():
                out[name] = text.strip()
    return out


def add(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, skip=()) -> None:
    """Add one flag per field of the dataclass ``cls`` (but those in ``skip``) to ``parser``."""
    hints = typing.get_type_hints(cls)
    doc = docs(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        meta, kind = f.metadata, _unwrap_optional(hints[f.name])
        default = f.default if f.default is not MISSING else \
            f.default_factory() if f.default_factory is not MISSING else MISSING
        text = doc.get(f.name, "")
        shown = "(default" not in text and default not in (MISSING, None, "") and not meta.get("switch")
        help_text = f"{text} (default: {default})".strip() if shown else text
        name = meta.get("flag", "--" + f.name.replace("_", "-"))
        if not name.startswith("-"):  # a positional argument
            parser.add_argument(name, nargs=meta.get("nargs"), help=help_text,
                                **({"default": default} if meta.get("nargs") in ("*", "?") else {}))
            continue
        options: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if kind is bool:
            options["action"] = "store_true" if meta.get("switch") else argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(type=_int_tuple, metavar="N,N,...")
        elif kind is dict or typing.get_origin(kind) is dict:
            options.update(type=_json_object, metavar="JSON")
        else:
            options.update(type=kind, metavar=meta.get("metavar", f.name.upper()))
        if "choices" in meta:
            options.update(choices=meta["choices"], metavar=None)
        parser.add_argument(name, **options)


def given(args: argparse.Namespace, cls: type, skip=()) -> dict[str, Any]:
    """The fields of ``cls`` that the command line set: ``{name: value}`` without the Nones."""
    return {f.name: getattr(args, f.name) for f in fields(cls)
            if f.name not in skip and getattr(args, f.name, None) is not None}


def _unwrap_optional(kind):
    """``X | None`` -> ``X``; anything else as it is."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"width\": 64}}', got {text[:80]!r}")
    return value


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
