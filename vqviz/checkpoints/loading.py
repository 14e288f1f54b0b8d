"""Reading a checkpoint, each part checked before it is trusted.

``meta.json`` is checked against its schema (:mod:`vqviz.schema`) by :func:`read_meta`; then
:func:`load` checks the config and the number of parameters it implies before anything is
built (on PyTorch's ``meta`` device, which allocates no memory), the weights file's name,
size, safetensors header and hash before a tensor is read, and last that no weight is NaN
or infinite. Every file is opened by :func:`vqviz.utils.open_regular` (no blocking open, a
regular file, capped). Messages name the checkpoint folder and the field, never a full
server path. A reader takes no lock: if a writer removes the weights it was about to read,
it reads ``meta.json`` again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from ..errors import CheckpointError, ConfigError, UntrustedCodeError
from ..models import Model, get
from ..schema import META, _is_int, check_config, check_meta
from ..utils import open_regular, read_regular

PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}

#: Caps on what a checkpoint may ask for; settings of :mod:`vqviz.checkpoints`, so a deployment can change them.
MAX_META_BYTES = 32 * 2**20
MAX_PARAMS = 160_000_000  # weights plus buffers, 640 MB as float32: the paper's CAE-4 SEQ on 32x32 colour is 135 million
MAX_HEADER_BYTES = 4 * 2**20  # the safetensors JSON header
READ_RETRIES = 5

_SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                       "I8": 1, "U8": 1, "BOOL": 1}


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, ready in eval mode, and its metadata.

    Attributes
    ----------
    model : the rebuilt model.
    meta : the whole ``meta.json`` (``meta["metrics"]``, ``meta["dataset"]``, ...).
    path : the checkpoint folder.
    previous : where the checkpoint this one replaced was kept, when it scored clearly
        better (see :func:`vqviz.checkpoints.keep_if_better`); else None.
    previous_message : why it was kept, in a sentence; else "".
    """

    model: Model
    meta: dict
    path: Path
    previous: Path | None = None
    previous_message: str = ""

    @property
    def name(self) -> str:
        return self.meta["model"]

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset") or ""

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})


def label(folder: Path) -> str:
    """How messages name a checkpoint folder: its name only, never the server path."""
    return f"checkpoint {folder.name[:80]!r}"


def find(*roots: str | Path) -> list[Path]:
    """Checkpoint folders (those with a ``meta.json``) under ``roots``, sorted by path."""
    found = set()
    for root in roots:
        root = Path(root).expanduser()
        if (root / META).is_file():
            found.add(root)
        elif root.is_dir():
            found.update(p.parent for p in root.rglob(META))
    return sorted(found)


def _refuse_foreign(path: Path) -> None:
    """Refuse pickles and torch.save files with a message that says why."""
    try:
        with open_regular(path, sys.maxsize, error=CheckpointError, what=path.name) as f:
            head = f.read(4)
    except (OSError, CheckpointError):
        head = b""
    if path.suffix.lower() in PICKLE_SUFFIXES or head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(
            f"{path.name} looks like a pickle or torch.save file. vqviz never unpickles checkpoints, "
            "because unpickling can run arbitrary code; a vqviz checkpoint is a folder with "
            f"{META} and a .safetensors weights file (see `python -m vqviz train --help`).")


def config_of(meta: dict) -> Any:
    """The config dataclass of a checked ``meta``, upgraded from the vqviz version that saved it."""
    name = meta["model"]
    version = str((meta.get("versions") or {}).get("vqviz", "0.1.0"))
    return check_config(name, get(name).upgrade_config(meta["config"], version))


def skeleton(name: str, config: Any, where: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of the model's state dict, built on the ``meta`` device.

    The meta device records shapes and allocates no memory, so a config asking for
    billions of parameters costs nothing here and is refused (:data:`MAX_PARAMS`) before
    the real build. ``where`` starts the messages.
    """
    cls = get(name)
    try:
        with torch.device("meta"):
            model = cls(config)
        state = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    except UntrustedCodeError as e:  # a factory that may not be imported (and was not): say so in full
        raise UntrustedCodeError(f"{where}: {e}") from None
    except Exception as e:  # noqa: BLE001  any failure means the config describes no model
        raise CheckpointError(f"{where}: cannot build the {name!r} model from its config: "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    n = sum(math.prod(shape) for shape, _ in state.values())
    if n > MAX_PARAMS:
        raise CheckpointError(f"{where}: its config asks for {n:,} parameters; the limit is {MAX_PARAMS:,} "
                              "(vqviz.checkpoints.MAX_PARAMS)")
    return state


def read_meta(path: str | Path) -> dict:
    """Read and check a checkpoint's ``meta.json`` without loading the weights.

    Returns the checked dict, with the optional fields (``train``, ``dataset``,
    ``split_sizes``, ``seed``, ``metrics``, ``versions``, ``state``) filled in.

    Raises
    ------
    CheckpointError
        Missing, unreadable, too large, not JSON, or a field of the wrong type or range.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise CheckpointError(f"no checkpoint at {path.name or path}")
        if path.is_file() and path.name != META:
            _refuse_foreign(path)
            raise CheckpointError(f"{path.name} is not a vqviz checkpoint: expected a folder with {META}")
        folder = path.parent if path.name == META and not path.is_dir() else path
        meta_path = folder / META
        if not meta_path.exists():
            raise CheckpointError(f"{label(folder)} is not a vqviz checkpoint: it has no {META}")
        raw = read_regular(meta_path, MAX_META_BYTES, error=CheckpointError, what=f"{label(folder)}: {META}")
    except OSError as e:
        raise CheckpointError(f"{label(path)}: cannot read {META} ({e.strerror or e})") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise CheckpointError(f"{label(folder)}: {META} is corrupted or truncated: not valid JSON ({reason})") from None
    try:
        return check_meta(meta)
    except RecursionError:
        raise CheckpointError(f"{label(folder)}: {META} is nested too deeply") from None
    except CheckpointError as e:
        raise CheckpointError(f"{label(folder)}: {e}") from None


def load(path: str | Path, *, expect: str | None = None, map_location: str | torch.device = "cpu"
         ) -> Checkpoint:
    """Rebuild a model from its checkpoint folder, with no other input.

    Checks, in order and before anything is allocated: ``meta.json`` against its
    schema, the config and the number of parameters it implies
    (:data:`MAX_PARAMS`), the weights file's name (``weights-*.safetensors`` in
    the folder), size and safetensors header (every tensor's name and shape), and
    its SHA-256, read as a stream. Only then are tensors read, and refused if any
    is NaN or infinite. If a writer replaces the checkpoint meanwhile, the new one is read.

    Parameters
    ----------
    path : the checkpoint folder (or its ``meta.json``).
    expect : if given, the model name the caller needs; another is refused.
    map_location : device of the loaded weights.

    Raises
    ------
    CheckpointError
        For a missing, corrupted or truncated checkpoint, a pickle, another
        architecture, a config beyond the caps, NaN or infinite weights, or a model
        of another name than ``expect``.
    """
    path = Path(path)
    for attempt in range(READ_RETRIES):
        meta = read_meta(path)
        folder = path.parent if path.name == META and path.is_file() else path
        try:
            return _load(folder, meta, expect, map_location)
        except _Vanished:  # a writer replaced the checkpoint between the two reads
            time.sleep(0.02 * 2**attempt)
    raise CheckpointError(f"{label(path)}: the weights file named in {META} is missing or unreadable")


class _Vanished(Exception):
    """The weights file named by meta.json is gone (or was never there)."""


def _load(folder: Path, meta: dict, expect: str | None, map_location) -> Checkpoint:
    where = label(folder)
    name = meta["model"]
    if expect is not None and name != expect:
        raise CheckpointError(f"{where} holds a {name!r} model, not the {expect!r} model asked for")
    config = config_of(meta)
    tensors = _read_weights(folder, meta["weights"], skeleton(name, config, where), name, where)
    model = get(name)(config)
    try:
        model.load_state_dict(tensors, strict=True)
        model.load_extra_state(meta["state"])
    except (RuntimeError, ConfigError, TypeError, ValueError, KeyError, IndexError, AttributeError,
            OverflowError) as e:
        lines = str(e).splitlines()
        raise CheckpointError(
            f"{where}: the weights or the state in {META} do not fit the {name!r} architecture it describes "
            f"(a checkpoint of another architecture?): {' '.join(s.strip() for s in lines[:4])[:400]}") from None
    model.to(map_location).eval()
    return Checkpoint(model, meta, folder)


def _read_weights(folder: Path, entry: dict, skeleton: dict, name: str, where: str) -> dict:
    """The tensors of the weights file, after its size, header and hash are checked."""
    file = entry["file"]
    unreadable = f"{where}: the weights file {file} is not a readable safetensors file (corrupted or truncated)"
    opened = contextlib.ExitStack()
    try:  # no link followed: the weights are the folder's own file
        # the cap: every parameter as float64; the header then fixes the exact size
        f = opened.enter_context(open_regular(folder / file, 8 + MAX_HEADER_BYTES + 8 * MAX_PARAMS,
                                              error=CheckpointError, what=f"{where}: the weights file {file}",
                                              follow=False))
    except FileNotFoundError:
        raise _Vanished() from None
    except OSError:  # a link, a loop, a permission: the same message as missing
        raise CheckpointError(f"{where}: the weights file named in {META} is missing or unreadable") from None
    with opened:
        st = os.fstat(f.fileno())
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(unreadable)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > st.st_size:
            raise CheckpointError(unreadable)
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise CheckpointError(unreadable) from None
        payload = _check_header(header, skeleton, name, where, unreadable)
        if st.st_size != 8 + n + payload:
            raise CheckpointError(unreadable)
        # The size is now known and bounded by MAX_PARAMS: read it once, hashing as it streams.
        blob = bytearray(st.st_size)
        f.seek(0)
        digest, view, done = hashlib.sha256(), memoryview(blob), 0
        while done < st.st_size:
            got = f.readinto(view[done : done + (1 << 20)])
            if not got:
                break
            digest.update(view[done : done + got])
            done += got
    if done != st.st_size or digest.hexdigest() != entry["sha256"]:
        raise CheckpointError(f"{where}: the weights file {file} is corrupted or truncated: its SHA-256 "
                              f"does not match {META}")
    try:
        tensors = safetensors.torch.load(bytes(blob))
    except (SafetensorError, ValueError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{unreadable}: {str(e)[:200]}") from None
    # A diverged run's weights decode to NaN everywhere downstream (maps, pictures, metrics): refuse them here.
    bad = next((k for k in sorted(tensors) if tensors[k].is_floating_point() and not tensors[k].isfinite().all()), None)
    if bad is not None:
        raise CheckpointError(f"{where}: the weights file {file} holds NaN or infinite values (in {bad}); the "
                              "training that wrote it diverged: train the model again")
    return tensors


def _check_header(header: Any, skeleton: dict, name: str, where: str, unreadable: str) -> int:
    """Check the safetensors header against the model's state dict; return the payload's size."""
    if not isinstance(header, dict):
        raise CheckpointError(unreadable)
    header = {k: v for k, v in header.items() if k != "__metadata__"}
    ranges = []
    for key, info in header.items():
        if not (isinstance(info, dict) and info.get("dtype") in _SAFETENSORS_DTYPES
                and isinstance(info.get("shape"), list) and all(_is_int(d) and d >= 0 for d in info["shape"])
                and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
                and all(_is_int(o) and o >= 0 for o in info["data_offsets"])):
            raise CheckpointError(unreadable)
        begin, end = info["data_offsets"]
        if end - begin != math.prod(info["shape"]) * _SAFETENSORS_DTYPES[info["dtype"]]:
            raise CheckpointError(unreadable)
        ranges.append((begin, end))
    missing = sorted(set(skeleton) - set(header))
    extra = sorted(set(header) - set(skeleton))
    wrong = sorted(k for k in set(skeleton) & set(header) if tuple(header[k]["shape"]) != skeleton[k][0])
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}"] if extra else []) + \
                ([f"{k} has shape {header[k]['shape']}, the model {list(skeleton[k][0])}" for k in wrong[:3]])
        raise CheckpointError(f"{where}: the weights do not fit the {name!r} architecture described in {META} "
                              f"(a checkpoint of another architecture?): {'; '.join(parts)[:400]}")
    ranges.sort()
    at = 0
    for begin, end in ranges:  # the tensors tile the payload, as safetensors requires
        if begin != at:
            raise CheckpointError(unreadable)
        at = end
    return at
