"""The folders vqviz reads and writes outside the checkout, computed in one place.

``$XDG_CACHE_HOME`` and ``$XDG_DATA_HOME`` are honoured on every platform when set;
otherwise the user's folders come from ``platformdirs`` (on Linux ``~/.cache/vqviz``
and ``~/.local/share/vqviz``, the same as the XDG defaults). Everything is read at
call time, so a changed environment takes effect at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "vqviz"
#: Where distributions install data sets (Debian's ``dataset-fashion-mnist``).
SYSTEM_DIR = Path("/usr/share/datasets")
#: Where downloaded data sets go; None: :func:`user_cache_dir`.
CACHE_DIR: Path | None = None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vqviz``, else the platform's user cache folder (``~/.cache/vqviz``)."""
    return _user_dir("XDG_CACHE_HOME", platformdirs.user_cache_path)


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/vqviz``, else the platform's user data folder (``~/.local/share/vqviz``)."""
    return _user_dir("XDG_DATA_HOME", platformdirs.user_data_path)


def cache_dir() -> Path:
    """Where downloads go: :data:`CACHE_DIR` if set, else :func:`user_cache_dir`."""
    return Path(CACHE_DIR) if CACHE_DIR is not None else user_cache_dir()


def env_data_dirs() -> list[Path]:
    """The folders of ``$VQVIZ_DATA``, separated like ``PATH``."""
    return [Path(p).expanduser() for p in os.environ.get("VQVIZ_DATA", "").split(os.pathsep) if p]


def _user_dir(variable: str, native) -> Path:
    base = os.environ.get(variable)
    return Path(base) / APP if base else native(APP, appauthor=False)
