"""A model's decoder as an ONNX file, so that a browser can decode latents itself (onnxruntime-web).

What is exported is :meth:`Model.decode_array`'s computation and nothing else: the input ``"z"``,
(n, d) float32 latents with n free, gives the output ``"image"``, (n, C, H, W) float32 in [0, 1],
what ``model.decode_array(z)`` returns. The encoder and the quantizer stay on the server.

:func:`decoder_onnx` exports (seconds: it traces the model). :func:`decoder_file` keeps the result
beside the checkpoint, ``<folder>/decoder-<first 16 hex digits of the weights' SHA-256>.onnx``, so
that it is exported once per set of weights; where the checkpoint's folder cannot be written (a
checkpoint shipped inside an installed package) it goes to ``$XDG_CACHE_HOME/vqviz/decoders/``
(default ``~/.cache/vqviz/decoders/``) under the same name.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .data import paths
from .errors import ConfigError, ExportError
from .models import Model
from .utils import atomic_write_bytes, open_regular

#: The largest decoder sent to a browser.
MAX_BROWSER_BYTES = 50 * 2**20
#: The ONNX operator set: onnxruntime-web 1.17 and later run every operator of opset 18.
OPSET = 18
#: A serialized ModelProto is one protobuf message, which cannot pass 2 GiB.
MAX_FILE_BYTES = 2**31
#: A temporary of a write older than this is a leftover of a killed process, and is removed.
STALE_SECONDS = 3600.0
_FILE = re.compile(r"decoder-[0-9a-f]{16}\.onnx")
_TEMPORARY = re.compile(r"\.decoder-[0-9a-f]{16}\.onnx\..+\.tmp")
_SHA = re.compile(r"[0-9a-f]{16,64}")
#: What the exporter's two usual failures mean for a decoder's code: (a clue in its message, the meaning).
_MEANINGS = (("Constraints violated", "its code fixes the batch size (e.g. a reshape to a constant number of rows), "
                                      "where the browser decodes batches of any size"),
             ("data-dependent", "its code branches on the latents' values (a Python if on a tensor), which a "
                                "traced graph cannot hold"))
#: The packages whose loggers report the exporter's progress and the graphs it failed on (torch sets
#: levels on its loggers one by one, so each is quietened).
_CHATTY = ("torch", "onnxscript", "onnx_ir")
#: One export at a time: tracing is not thread-safe, and :func:`_quiet` sets process-wide log levels.
_EXPORTING = threading.RLock()


class _Decoding(nn.Module):
    """``model.decode`` as a module's forward: the one graph that is exported."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


def decoder_onnx(model: Model) -> bytes:
    """Export ``model``'s decoder to ONNX: one self-contained serialized ModelProto.

    The graph maps the input ``"z"`` (n, d) float32, n dynamic, to the output ``"image"``
    (n, C, H, W) float32 in [0, 1], what ``model.decode_array(z)`` returns. The export runs on
    the CPU in float32 and eval mode; a model whose weights are of another type or device is
    copied first, and the caller's model is left as it was.

    Raises
    ------
    ConfigError
        The model has no decoder (a file of latents, a wrapped encoder alone).
    ExportError
        The exporter cannot trace the decoder's code (e.g. a wrapped decoder that branches on
        the values of its input), or its packages (onnx, onnxscript) are not installed.
    """
    if not model.has_decoder:
        raise ConfigError(f"this {model.name} model has no decoder to export: it cannot draw a latent")
    if not all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript")):  # torch's exporter writes through them
        raise ExportError("exporting a decoder to ONNX needs onnx and onnxscript: pip install onnx onnxscript")
    source = _float32_cpu(model)
    with _EXPORTING, _eval_mode(source), _quiet():
        try:
            z = torch.zeros(2, _latent_width(source))  # 2, not 1: a batch of 1 would be traced as a constant
            program = torch.onnx.export(_traced(_Decoding(source).eval(), z), dynamo=True, input_names=["z"],
                                        output_names=["image"], opset_version=OPSET, external_data=False,
                                        verbose=False)
            return program.model_proto.SerializeToString()
        except Exception as e:  # noqa: BLE001  whatever the tracer meets in a user's code is one failure
            raise ExportError(f"the decoder of this {model.name} model cannot be exported to ONNX: "
                              f"{_short(e)}") from None


def decoder_file(model: Model, folder: str | os.PathLike, weights_sha256: str) -> Path:
    """The ONNX file of ``model``'s decoder (:func:`decoder_onnx`), exported on first use and kept.

    Parameters
    ----------
    model : the model loaded from the checkpoint folder ``folder``.
    folder : the checkpoint's folder; the file is written there,
        ``decoder-<weights_sha256[:16]>.onnx``, and any decoder of other weights beside it is removed.
    weights_sha256 : the SHA-256 of the checkpoint's weights (``meta["weights"]["sha256"]``), which
        names the file, so that new weights get a new decoder.

    Returns
    -------
    The file's path: beside the checkpoint, or in ``$XDG_CACHE_HOME/vqviz/decoders/`` when the
    folder cannot be written. A file already there is reused if it reads as an ONNX model
    (a quick look at its framing, no unpickling); a broken one is exported again.

    Raises
    ------
    ConfigError
        ``weights_sha256`` is not hex digits, ``folder`` is not a folder, or the model has no decoder.
    ExportError
        The decoder cannot be exported (:func:`decoder_onnx`), or written anywhere.
    """
    sha = str(weights_sha256).lower()
    if not _SHA.fullmatch(sha):
        raise ConfigError(f"weights_sha256 must be the weights' SHA-256 in hex, got {str(weights_sha256)[:80]!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder.name}: no such checkpoint folder")
    name = f"decoder-{sha[:16]}.onnx"
    beside, cached = folder / name, cache_dir() / name
    with _EXPORTING:  # a second caller of the same checkpoint waits, then finds the file
        for path in (beside, cached):
            if _is_onnx_file(path):
                return path
        data = decoder_onnx(model)
        try:
            atomic_write_bytes(beside, data)
        except OSError:  # a checkpoint inside an installed package: its folder is read-only
            try:
                atomic_write_bytes(cached, data)
            except OSError as e:
                raise ExportError(f"the decoder of {folder.name} can be written neither beside it nor in "
                                  f"{cached.parent}: {e.strerror or e}") from None
            return cached
        _sweep(folder, keep=name)
        return beside


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vqviz/decoders`` (default ``~/.cache/vqviz/decoders``)."""
    return paths.user_cache_dir() / "decoders"


def _float32_cpu(model: Model) -> Model:
    """``model`` if its weights are float32 on the CPU, else a float32 CPU copy (the graph's input is float32)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device.type == "cpu" and (t.dtype == torch.float32 or not t.is_floating_point()) for t in tensors):
        return model
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32)


def _traced(module: nn.Module, z: torch.Tensor) -> torch.export.ExportedProgram:
    """``module``'s graph for a batch of any size, traced by ``torch.export``: without dynamo first,
    with it where that fails (``len(z)``, which Python makes an int, fixes the batch without dynamo).

    ``torch.onnx.export`` given the module would instead fall back to a graph of the example's
    batch size, with no error; here a decoder that fixes it fails to export.
    """
    batch = {"z": {0: torch.export.Dim("n")}}
    try:
        return torch.export.export(module, (z,), dynamic_shapes=batch, strict=False)
    except Exception as first:  # noqa: BLE001  the first message tells most; dynamo's is kept only if it works
        try:
            return torch.export.export(module, (z,), dynamic_shapes=batch, strict=True)
        except Exception:  # noqa: BLE001
            raise first from None


def _latent_width(model: Model) -> int:
    """d, the width of the latents the decoder takes: that of the encoder's output (P d for a map of
    codes), else the config's ``latent_dim``."""
    try:
        with torch.no_grad():
            return int(model.encode(torch.zeros(2, *model.config.in_shape)).shape[1])
    except Exception:  # noqa: BLE001  a decoder without an encoder to ask
        return int(model.config.latent_dim)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the export (no dropout, batch norm's running statistics); each submodule's own mode back after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's warnings and log lines kept off the console; an export that fails says why in its error.

    ``torch.export`` prints the partial graph of a failed trace to ``sys.stderr`` itself, so that is
    redirected too (log handlers keep their own streams: other threads' logs still show).
    """
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in _CHATTY]
    loggers = [logging.getLogger(n) for n in {*_CHATTY, *names}]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _short(e: BaseException) -> str:
    """The exporter's message cut to its first line (at most 200 characters), after what it means
    for the two failures a decoder's own code causes."""
    text = str(e)
    first = next((s.strip() for s in text.splitlines() if s.strip()), type(e).__name__)
    first = first if len(first) <= 200 else first[:197] + "..."
    for clue, meaning in _MEANINGS:
        if clue in text:
            return f"{meaning} (the exporter says: {first})"
    return first


def _is_onnx_file(path: Path) -> bool:
    """Whether ``path`` is a regular file framed as a serialized ONNX ModelProto.

    Only the top-level fields are walked, each skipped by its length: ``ir_version`` (field 1) first,
    a graph (7) and an opset (8) among them, and lengths that end exactly at the file's end, so an
    empty, truncated or foreign file is told apart without reading the weights.
    """
    try:
        with open_regular(path, MAX_FILE_BYTES, error=ValueError, what=path.name) as f:
            size, seen = os.fstat(f.fileno()).st_size, set()
            if f.read(1) != b"\x08":
                return False
            f.seek(0)
            while f.tell() < size:
                key = _varint(f)
                field, wire = key >> 3, key & 7
                if field == 0:
                    return False
                if wire == 0:
                    _varint(f)
                elif wire == 2:  # length-delimited: a string or a message, e.g. the whole graph
                    f.seek(_varint(f), os.SEEK_CUR)
                elif wire in (1, 5):  # fixed 64 or 32 bits
                    f.seek(8 if wire == 1 else 4, os.SEEK_CUR)
                else:
                    return False
                seen.add(field)
            return f.tell() == size and {7, 8} <= seen
    except (OSError, ValueError):
        return False


def _varint(f) -> int:
    """A protobuf varint read from ``f``; ValueError at the end of the file or past 10 bytes."""
    value = 0
    for shift in range(0, 70, 7):
        byte = f.read(1)
        if not byte:
            raise ValueError("the file ends inside a number")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    raise ValueError("a number longer than 10 bytes")


def _sweep(folder: Path, keep: str) -> None:
    """Remove the decoders of other weights in ``folder``, and temporaries of killed writes."""
    now = time.time()
    for entry in os.scandir(folder):
        try:
            stale = (_FILE.fullmatch(entry.name) and entry.name != keep) or (
                _TEMPORARY.fullmatch(entry.name) and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS)
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:  # gone already, or another writer's: the file asked for is written either way
            pass


__all__ = ["MAX_BROWSER_BYTES", "cache_dir", "decoder_file", "decoder_onnx"]
