"""Settings of a server that runs the app for a team: the folders it may read, how many training
jobs run at once, how much disk uploads may take, and whose code a checkpoint may have imported.

Each setting comes from an environment variable, else from the ``[server]`` section of a
``vqviz.toml`` (the file ``VQVIZ_CONFIG`` names, else ``vqviz.toml`` in the folder the server
starts in, as Streamlit reads ``.streamlit/config.toml``), else its default:

=============================  ==========================  ==================================
variable                       ``[server]`` key            default
=============================  ==========================  ==================================
``VQVIZ_ROOTS`` (like PATH)    ``roots`` (a list)          the app's own and the data folders
``VQVIZ_MAX_JOBS``             ``max_jobs``                2 training jobs on the server
``VQVIZ_MAX_JOBS_PER_SESSION`` ``max_jobs_per_session``    1 per browser session
``VQVIZ_UPLOAD_QUOTA_MB``      ``upload_quota_mb``         2048 MB for all uploads together
``VQVIZ_MAX_UPLOAD_IMAGES``    ``max_upload_images``       20,000 files in one uploaded .zip
``VQVIZ_ALLOWED_FACTORIES``    ``allowed_factories``       none: only installed entry points
=============================  ==========================  ==================================

``VQVIZ_ALLOWED_FACTORIES`` is a comma list of module prefixes (``mypkg.nets,lab``), and
``allowed_factories`` a list of them (or the same comma list): the modules whose functions a
wrapped model's checkpoint may name as its factory (:mod:`vqviz.models.factories`). Loading
such a checkpoint imports that module and calls the function with the checkpoint's JSON
arguments, so list only modules whose every public function is safe to call that way.

Everything is read at call time, so a changed environment takes effect at once. The paths
helpers (:func:`locate`, :func:`shown`) keep a visitor inside the roots: a typed path is
resolved (links followed) before it is compared, and a path is shown relative to its root.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

from .errors import ConfigError

FILE = "vqviz.toml"


@dataclass(frozen=True)
class ServerSettings:
    """What a server lets its visitors do.

    Attributes
    ----------
    roots : folders visitors may read besides the app's own; None: the standard data locations
    max_jobs : training jobs that may run at once on the server (0: no training)
    max_jobs_per_session : training jobs that one browser session may run at once
    upload_quota_mb : disk, in MB, that all kept uploads may take together (0: no uploads)
    max_upload_images : files (entries) that one uploaded .zip of images may hold
    allowed_factories : module prefixes whose functions a wrapped model's checkpoint may name as its factory
    """

    roots: tuple[Path, ...] | None = None
    max_jobs: int = 2
    max_jobs_per_session: int = 1
    upload_quota_mb: float = 2048
    max_upload_images: int = 20_000
    allowed_factories: tuple[str, ...] = ()


#: The environment variable of each setting; its ``[server]`` key is the field's name.
ENV = {"roots": "VQVIZ_ROOTS", "max_jobs": "VQVIZ_MAX_JOBS", "max_jobs_per_session": "VQVIZ_MAX_JOBS_PER_SESSION",
       "upload_quota_mb": "VQVIZ_UPLOAD_QUOTA_MB", "max_upload_images": "VQVIZ_MAX_UPLOAD_IMAGES",
       "allowed_factories": "VQVIZ_ALLOWED_FACTORIES"}
#: A module prefix of ``allowed_factories``: dotted Python names, nothing else (no pattern, no empty one).
MODULE_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def config_file(environ=None) -> Path:
    """The ``vqviz.toml`` read: ``$VQVIZ_CONFIG``, else ``vqviz.toml`` in the working folder."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("VQVIZ_CONFIG") or FILE).expanduser()


def server_settings(environ=None) -> ServerSettings:
    """The server's settings: each from its environment variable, else ``vqviz.toml``, else its default.

    Raises
    ------
    ConfigError
        A value of the wrong kind, or a ``vqviz.toml`` that cannot be read, named with its source.
    """
    environ = os.environ if environ is None else environ
    path = config_file(environ)
    given: dict[str, tuple[object, str]] = {}
    if path.is_file() or environ.get("VQVIZ_CONFIG"):  # a file named on purpose must be there
        try:
            section = tomllib.loads(path.read_text()).get("server", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read the settings file {path}: {e}") from None
        unknown = set(section) - set(ENV)
        if unknown:
            raise ConfigError(f"{path}: unknown [server] setting(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(ENV)}")
        given = {k: (v, f"{path} [server] {k}") for k, v in section.items()}
        if isinstance(section.get("roots"), list):  # a file's relative roots are relative to the file
            given["roots"] = ([str(path.parent / Path(str(p)).expanduser()) for p in section["roots"]],
                              given["roots"][1])
    for name, variable in ENV.items():
        if environ.get(variable, "").strip():
            given[name] = (environ[variable], variable)
    return ServerSettings(**{name: _parse(name, *given[name]) for name in given})


def _parse(name: str, value, source: str):
    """One setting's value from a file (typed) or the environment (text), or a ConfigError naming ``source``."""
    if name == "roots":
        parts = value.split(os.pathsep) if isinstance(value, str) else value
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ConfigError(f"{source}: expected a list of folders")
        return tuple(Path(p).expanduser() for p in parts if p.strip())
    if name == "allowed_factories":
        return _prefixes(value, source)
    kind = {f.name: f.type for f in fields(ServerSettings)}[name]
    try:
        number = float(value) if kind == "float" else int(value)
        if isinstance(value, bool) or number < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{source} = {value!r}: expected a {'number' if kind == 'float' else 'whole number'} "
                          "of 0 or more") from None
    return number


def _prefixes(value, source: str) -> tuple[str, ...]:
    """Module prefixes from a comma list or a list of names; each must be a dotted Python name."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise ConfigError(f"{source}: expected module prefixes, a list or a comma list (mypkg.nets,lab)")
    out = tuple(p.strip() for p in parts if p.strip())
    bad = [p for p in out if not MODULE_PREFIX.fullmatch(p)]
    if bad:
        raise ConfigError(f"{source}: {bad[0][:60]!r} is not a module name; give dotted module prefixes such as "
                          "mypkg.nets")
    return out


class Root(NamedTuple):
    """A folder visitors may read, and the short name it is shown by (``data``, ``datasets``)."""

    label: str
    path: Path


def label_roots(folders: list[tuple[str | None, Path]]) -> tuple[Root, ...]:
    """Roots from (label or None, folder) pairs: None takes the folder's name; labels are made unique
    (``runs``, ``runs-2``) and a folder listed twice (after resolving links) is kept once."""
    out, taken, seen = [], set(), set()
    for label, folder in folders:
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        base = label or Path(folder).name or "root"
        name, i = base, 1
        while name in taken:
            i += 1
            name = f"{base}-{i}"
        taken.add(name)
        out.append(Root(name, Path(folder)))
    return tuple(out)


def inside(path: str | os.PathLike, roots: tuple[Root, ...]) -> bool:
    """Whether ``path``, its links resolved, lies in one of ``roots`` (their links resolved too)."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(r.path)) for r in roots)


def locate(text: str, roots: tuple[Root, ...]) -> Path | None:
    """The real folder a visitor typed, or None when it is not inside one of ``roots``.

    ``text`` is a full path (``~`` expanded) or starts with a root's label (``data/my-letters``).
    Links are resolved before the check, so one that leads out of the roots gives None; None
    says nothing of whether the path exists.
    """
    path = Path(text.strip()).expanduser()
    if not path.is_absolute():
        first, *rest = path.parts or ("",)
        root = next((r for r in roots if r.label == first), None)
        if root is None:
            return None
        path = root.path.joinpath(*rest)
    real = Path(os.path.realpath(path))
    return real if inside(real, roots) else None


def shown(path: str | os.PathLike, roots: tuple[Root, ...]) -> str:
    """``path`` as a visitor sees it: relative to the deepest root that holds it (``data/my-letters``),
    else only its last part, so that no page shows where the server keeps its files."""
    path = Path(path)
    best = None
    for root in roots:
        for here, base in ((path, root.path), (Path(os.path.realpath(path)), Path(os.path.realpath(root.path)))):
            if here.is_relative_to(base) and (best is None or len(base.parts) > len(best[1].parts)):
                best = (root.label, base, here.relative_to(base))
    if best is None:
        return path.name
    label, _, rel = best
    return label if rel == Path(".") else f"{label}/{rel.as_posix()}"
