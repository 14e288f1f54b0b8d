"""One checkpoint format for every model: a folder with two files.

``meta.json``
    Format tag and version, model name, config, training settings, data set,
    split sizes, seed, metrics, library versions, the model's extra state
    (SEQ: k-means centres and cluster labels), and the weights file's name and
    SHA-256.
``weights-<sha>.safetensors``
    The weights. safetensors holds raw tensors only, so loading runs no code.

Writes are atomic: the weights go to a new file named by their hash, then
``meta.json`` is replaced in one rename, which is the commit point; the old
weights file is removed only after that. A crash at any moment leaves either
the old checkpoint or the new one, whole. One writer at a time holds the
folder's lock file (``.vqviz.lock``); a reader takes no lock, and if a writer
removes the weights it was about to read, it reads ``meta.json`` again.

Nothing in a checkpoint is trusted before it is checked: ``meta.json`` against
a schema (:mod:`vqviz.schema`, through :func:`read_meta`), the config and the number of parameters it
implies before anything is built (computed on PyTorch's ``meta`` device, which
allocates no memory), then the weights file's name, size, safetensors header
and hash before a tensor is read, and last that no weight is NaN or infinite.
Every file is read through :func:`vqviz.utils.read_regular` (no blocking open,
a regular file, capped). Messages name the checkpoint folder and the field,
never a full server path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import filelock
import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError

from . import __version__, archive
from .errors import CheckpointError, ConfigError
from .models import Model, get
from .schema import (FORMAT, FORMAT_VERSION, META, WEIGHTS_NAME,  # noqa: F401  (re-exported)
                     check_config, check_meta, _field, _is_int, _is_number)
from .utils import atomic_path, atomic_write_bytes, file_mode, open_regular, read_regular

LOCK = ".vqviz.lock"
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}

#: Caps on what a checkpoint may ask for; module settings, so a deployment can change them.
MAX_META_BYTES = 32 * 2**20
MAX_PARAMS = 160_000_000  # weights plus buffers, 640 MB as float32: the paper's CAE-4 SEQ on 32x32 colour is 135 million
MAX_HEADER_BYTES = 4 * 2**20  # the safetensors JSON header
LOCK_TIMEOUT = 120.0  # seconds a writer waits for another writer of the same folder
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
        better (see :func:`keep_if_better`); else None.
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


def _jsonable(value: Any) -> Any:
    """Convert numpy and torch scalars, arrays and tuples for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _versions() -> dict:
    import sklearn

    return {"vqviz": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def _label(folder: Path) -> str:
    return f"checkpoint {folder.name[:80]!r}"


def writer_lock(folder: str | Path, timeout: float | None = None) -> filelock.FileLock:
    """The lock that every writer of checkpoint ``folder`` holds (``folder/.vqviz.lock``)."""
    return filelock.FileLock(str(Path(folder) / LOCK), timeout=LOCK_TIMEOUT if timeout is None else timeout,
                             mode=file_mode())


def _acquire(lock: filelock.FileLock, folder: Path) -> None:
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CheckpointError(f"{_label(folder)} is being written by another process; "
                              f"gave up after {lock.timeout:.0f} s") from None


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _check_space(folder: Path, needed: int, what: str) -> None:
    free = _free_bytes(folder)
    if free < needed + 2**20:
        raise CheckpointError(f"not enough free disk space to {what}: it needs {needed / 2**20:.1f} MB, "
                              f"{free / 2**20:.1f} MB are free")


_TEMPORARIES = (re.compile(r"\.meta\.json\..+\.tmp"), re.compile(r"\.weights-.+\.safetensors\..+\.tmp"))


def _sweep(folder: Path, keep: str | None) -> None:
    """Remove the package's own leftovers in ``folder``: temporaries and weights other than ``keep``.

    Called with the folder's lock held, so no other writer's temporary is live.
    """
    for entry in os.scandir(folder):
        stale = any(p.fullmatch(entry.name) for p in _TEMPORARIES) or (
            keep is not None and entry.name != keep and WEIGHTS_NAME.fullmatch(entry.name))
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def save(model: Model, path: str | Path, *, dataset: str | None = None, split_sizes: dict | None = None,
         seed: int | None = None, metrics: dict | None = None, train_config: Any = None,
         weights_dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` to the checkpoint folder ``path`` atomically; return the folder.

    ``weights_dtype`` (e.g. ``torch.float16``) stores the floating-point tensors in
    that type, to ship a smaller file; :func:`load` casts them back to the model's
    own type.

    One writer at a time: the folder's lock file is held from the first write to
    the removal of the old weights. Stale temporaries of an earlier crash are
    removed, and the free space is checked before anything is written.

    Raises
    ------
    CheckpointError
        ``path`` is a file, another writer holds the lock too long, or the disk lacks space.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        tensors = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    blob = safetensors.torch.save(tensors)
    digest = hashlib.sha256(blob).hexdigest()
    weights = f"weights-{digest[:16]}.safetensors"
    if dataclasses.is_dataclass(train_config):
        train_config = dataclasses.asdict(train_config)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "config": dataclasses.asdict(model.config),
        "train": train_config or {},
        "dataset": dataset,
        "split_sizes": split_sizes or {},
        "seed": seed,
        "metrics": metrics or {},
        "versions": _versions(),
        "state": model.extra_state(),
        "weights": {"file": weights, "sha256": digest},
        "summary": summary_of(model, dataset, metrics or {}),
    }
    lock = writer_lock(folder)
    _acquire(lock, folder)
    try:
        _sweep(folder, keep=None)
        text = json.dumps(_jsonable(meta), indent=1, allow_nan=True)
        check_meta(json.loads(text))  # never write a checkpoint that would not load
        _check_space(folder, len(blob) + len(text), f"save {_label(folder)}")
        atomic_write_bytes(folder / weights, blob)
        with atomic_path(folder / META) as tmp:
            tmp.write_text(text)
        _sweep(folder, keep=weights)
    finally:
        lock.release()
    return folder


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


# ----- the meta.json schema -----
#: The metrics a catalogue shows for a checkpoint, in this order where present.
HEADLINE = ("quantizer_test_accuracy", "test_accuracy", "test_kmeans_accuracy", "test_bce_per_image",
            "test_mse_per_image", "test_usage_entropy")


def summary_of(model: Model, dataset: str | None, metrics: dict) -> dict:
    """What a catalogue lists about a model, so that listing needs no model import and no guess:
    family, K and L (None without a quantizer), data set, input shape and headline metrics."""
    return {"family": model.name, "n_codes": model.n_codes, "n_codebooks": model.n_codebooks,
            "dataset": dataset, "in_shape": list(model.config.in_shape),
            "headline": {k: metrics[k] for k in HEADLINE if _is_number(metrics.get(k))}}


def summary(meta: dict) -> dict:
    """A checked meta's summary: as saved, or, for a checkpoint saved before summaries, worked
    out from its config and state on PyTorch's ``meta`` device (which allocates nothing)."""
    if isinstance(meta.get("summary"), dict):
        return meta["summary"]
    name = meta["model"]
    version = str((meta.get("versions") or {}).get("vqviz", "0.1.0"))
    config = check_config(name, get(name).upgrade_config(meta["config"], version))
    _skeleton(name, config, META)  # refuses a config over the parameter budget
    with torch.device("meta"):
        model = get(name)(config)
    try:
        model.load_extra_state(meta.get("state") or {})
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{_field('', 'state')} does not fit the {name!r} model: {e}") from None
    return summary_of(model, meta.get("dataset"), meta.get("metrics") or {})


def _skeleton(name: str, config: Any, label: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of the model's state dict, built on the ``meta`` device.

    The meta device records shapes and allocates no memory, so a config asking for
    billions of parameters costs nothing here and is refused before the real build.
    """
    cls = get(name)
    try:
        with torch.device("meta"):
            skeleton = cls(config)
        state = {k: (tuple(v.shape), v.dtype) for k, v in skeleton.state_dict().items()}
    except Exception as e:  # noqa: BLE001  any failure means the config describes no model
        raise CheckpointError(f"{label}: cannot build the {name!r} model from its config: "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    n = sum(math.prod(shape) for shape, _ in state.values())
    if n > MAX_PARAMS:
        raise CheckpointError(f"{label}: its config asks for {n:,} parameters; the limit is {MAX_PARAMS:,} "
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
            raise CheckpointError(f"{_label(folder)} is not a vqviz checkpoint: it has no {META}")
        raw = read_regular(meta_path, MAX_META_BYTES, error=CheckpointError, what=f"{_label(folder)}: {META}")
    except OSError as e:
        raise CheckpointError(f"{_label(path)}: cannot read {META} ({e.strerror or e})") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise CheckpointError(f"{_label(folder)}: {META} is corrupted or truncated: not valid JSON ({reason})") from None
    try:
        return check_meta(meta)
    except RecursionError:
        raise CheckpointError(f"{_label(folder)}: {META} is nested too deeply") from None
    except CheckpointError as e:
        raise CheckpointError(f"{_label(folder)}: {e}") from None


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
    raise CheckpointError(f"{_label(path)}: the weights file named in {META} is missing or unreadable")


class _Vanished(Exception):
    """The weights file named by meta.json is gone (or was never there)."""


def _load(folder: Path, meta: dict, expect: str | None, map_location) -> Checkpoint:
    label = _label(folder)
    name = meta["model"]
    if expect is not None and name != expect:
        raise CheckpointError(f"{label} holds a {name!r} model, not the {expect!r} model asked for")
    version = str((meta.get("versions") or {}).get("vqviz", "0.1.0"))
    config = check_config(name, get(name).upgrade_config(meta["config"], version))
    skeleton = _skeleton(name, config, label)
    tensors = _read_weights(folder, meta["weights"], skeleton, name, label)
    model = get(name)(config)
    try:
        model.load_state_dict(tensors, strict=True)
        model.load_extra_state(meta["state"])
    except (RuntimeError, ConfigError, TypeError, ValueError, KeyError, IndexError, AttributeError,
            OverflowError) as e:
        summary = str(e).splitlines()
        raise CheckpointError(
            f"{label}: the weights or the state in {META} do not fit the {name!r} architecture it describes "
            f"(a checkpoint of another architecture?): {' '.join(s.strip() for s in summary[:4])[:400]}") from None
    model.to(map_location).eval()
    return Checkpoint(model, meta, folder)


def _read_weights(folder: Path, entry: dict, skeleton: dict, name: str, label: str) -> dict:
    """The tensors of the weights file, after its size, header and hash are checked."""
    file = entry["file"]
    unreadable = f"{label}: the weights file {file} is not a readable safetensors file (corrupted or truncated)"
    opened = contextlib.ExitStack()
    try:  # no link followed: the weights are the folder's own file
        # the cap: every parameter as float64; the header then fixes the exact size
        f = opened.enter_context(open_regular(folder / file, 8 + MAX_HEADER_BYTES + 8 * MAX_PARAMS,
                                              error=CheckpointError, what=f"{label}: the weights file {file}",
                                              follow=False))
    except FileNotFoundError:
        raise _Vanished() from None
    except OSError:  # a link, a loop, a permission: the same message as missing
        raise CheckpointError(f"{label}: the weights file named in {META} is missing or unreadable") from None
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
        payload = _check_header(header, skeleton, name, label, unreadable)
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
        raise CheckpointError(f"{label}: the weights file {file} is corrupted or truncated: its SHA-256 "
                              f"does not match {META}")
    try:
        tensors = safetensors.torch.load(bytes(blob))
    except (SafetensorError, ValueError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{unreadable}: {str(e)[:200]}") from None
    # A diverged run's weights decode to NaN everywhere downstream (maps, pictures, metrics): refuse them here.
    bad = next((k for k in sorted(tensors) if tensors[k].is_floating_point() and not tensors[k].isfinite().all()), None)
    if bad is not None:
        raise CheckpointError(f"{label}: the weights file {file} holds NaN or infinite values (in {bad}); the "
                              "training that wrote it diverged: train the model again")
    return tensors


def _check_header(header: Any, skeleton: dict, name: str, label: str, unreadable: str) -> int:
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
        raise CheckpointError(f"{label}: the weights do not fit the {name!r} architecture described in {META} "
                              f"(a checkpoint of another architecture?): {'; '.join(parts)[:400]}")
    ranges.sort()
    at = 0
    for begin, end in ranges:  # the tensors tile the payload, as safetensors requires
        if begin != at:
            raise CheckpointError(unreadable)
        at = end
    return at


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


# ----- keeping the better checkpoint -----
#: Headline metrics, most telling first: (key, higher is better, how much worse is "clearly").
HEADLINES = (("quantizer_test_accuracy", True, 0.02), ("test_accuracy", True, 0.02),
             ("test_mse_per_image", False, 0.25), ("test_recon_mse", False, 0.25))


def headline(metrics: dict) -> tuple[str, float, bool, float] | None:
    """The metric a checkpoint is judged by: (key, value, higher is better, tolerance), or None."""
    for key, higher, tol in HEADLINES:
        value = metrics.get(key)
        if _is_number(value):
            return key, float(value), higher, tol
    return None


def keep_if_better(folder: str | Path, model: str, dataset: str, metrics: dict) -> tuple[Path, str] | None:
    """Before a new checkpoint of ``model`` on ``dataset`` replaces ``folder``, keep the old one
    in ``<folder>.previous`` if it scores clearly better on the headline metric.

    "Clearly": accuracy 2 points higher, or a reconstruction error 25 % lower.
    Returns ``(kept folder, message)``, or None when nothing was kept (no old
    checkpoint, another model or data set, unreadable, or no clear difference).
    """
    folder = Path(folder)
    try:
        old = read_meta(folder)
    except CheckpointError:
        return None
    if old["model"] != model or old["dataset"] != dataset:
        return None
    new, before = headline(metrics), headline(old["metrics"])
    if new is None or before is None or new[0] != before[0]:
        return None
    key, value, higher, tol = new
    worse = (before[1] - value > tol) if higher else (value > before[1] * (1 + tol))
    if not worse:
        return None
    previous = folder.with_name(folder.name + ".previous")
    lock = writer_lock(folder)
    _acquire(lock, folder)
    try:
        meta = read_meta(folder)  # the one under the lock
        weights = folder / meta["weights"]["file"]
        _check_space(folder, weights.stat().st_size + 2**20, f"keep {_label(folder)}")
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.previous-"))
        try:
            for src in (weights, folder / META):
                shutil.copyfile(src, tmp / src.name)
                os.chmod(tmp / src.name, file_mode())
            os.chmod(tmp, file_mode() | 0o111)
            shutil.rmtree(previous, ignore_errors=True)  # an older kept checkpoint
            os.replace(tmp, previous)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    message = (f"the new model's {key} ({value:.4g}) is clearly worse than the {before[1]:.4g} of the "
               f"checkpoint it replaces; the old one is kept in {previous.name} (--overwrite to replace it)")
    return previous, message


# ----- installing an uploaded checkpoint -----
MAX_ZIP_BYTES = 200 * 2**20
MAX_UNPACKED_BYTES = 512 * 2**20
MAX_ENTRIES = 64
MAX_CENTRAL_DIRECTORY = 256 * 2**10  # bytes; 64 entries with long names fit in a few KB


def install_checkpoint_zip(blob: bytes, dest_root: str | Path, name: str = "upload",
                           max_bytes: int = MAX_ZIP_BYTES, max_unpacked: int = MAX_UNPACKED_BYTES) -> Path:
    """Check an uploaded ``.zip`` of a checkpoint folder and install it under ``dest_root``.

    The zip must hold one ``meta.json`` and its ``weights-*.safetensors``, at its top
    level or in one folder. Only those two files are extracted, with the safeguards of
    :mod:`vqviz.archive` (caps on size, entries and what each entry unpacks to; no unsafe
    paths, links, encryption or unknown compression). They go to a temporary folder beside
    the destination, are loaded with :func:`vqviz.checkpoints.load`, and only then is the
    folder renamed into place, under the destination's lock, so a refused upload leaves
    nothing behind.

    Returns
    -------
    The installed checkpoint folder, ``dest_root/<name>`` (``<name>-2``, ... if taken).

    Raises
    ------
    CheckpointError
        For anything but a vqviz checkpoint, with the reason; also a full disk.
    """
    head = " It looks like a pickle, which vqviz never loads." if blob[:1] == b"\x80" else ""
    archive.check_blob(blob, max_bytes=max_bytes, max_entries=MAX_ENTRIES, max_directory=MAX_CENTRAL_DIRECTORY,
                       error=CheckpointError, entries_hint="a checkpoint has 2",
                       directory_hint="a checkpoint's takes a few hundred",
                       not_zip_hint=" Zip a checkpoint folder (meta.json and weights-*.safetensors) and upload "
                                    f"that.{head}")

    def check(tmp: Path) -> None:
        try:
            load(tmp)  # refuses anything that does not rebuild
        except CheckpointError as e:
            raise CheckpointError(str(e).replace(_label(tmp), name)) from None

    return archive.install(blob, dest_root, name, select=_checkpoint_members, check=check,
                           max_unpacked=max_unpacked, error=CheckpointError,
                           free_space=lambda root, n: _check_space(root, n, "install the upload"))


def _checkpoint_members(zipped: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    infos = zipped.infolist()
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"the zip holds {len(infos)} entries; a checkpoint has 2 (at most {MAX_ENTRIES})")
    metas = []
    for info in infos:
        path = archive.safe_path(info, CheckpointError)
        if path.suffix.lower() in PICKLE_SUFFIXES or path.name == "data.pkl":
            raise CheckpointError(
                f"the zip holds {info.filename[:100]!r}, a pickle or torch.save file. vqviz never unpickles "
                "checkpoints (unpickling can run arbitrary code); upload a vqviz checkpoint folder, zipped.")
        if path.name == META and "__MACOSX" not in path.parts:
            metas.append(path)
    if len(metas) != 1:
        raise CheckpointError(f"the zip holds {len(metas) or 'no'} {META} files; a vqviz checkpoint "
                              "is one folder with meta.json and a weights-*.safetensors file")
    folder = metas[0].parent
    out = []
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.parent == folder and not info.is_dir() and (
                path.name == META or WEIGHTS_NAME.fullmatch(path.name)):
            archive.check_readable(info, path.name, CheckpointError)
            out.append((info, path.name))
    return out
