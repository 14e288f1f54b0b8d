"""Binary blobs for decoding in the browser: a model's decoder (ONNX, :mod:`vqviz.export`) and the
latents behind a map (to decode any spot of it there). The frontend's ``src/blobs.ts`` reads them::

    "VQB1" | u32 header length | header JSON | zero padding to 8 | body
    decoder: header {digest, kind: "decoder", shape: [C, H, W], d}, body the ONNX model
    latents: header {digest, kind: "latents", n, d}, body float32 map positions (n, 2), then latents (n, d)

Each travels once per browser session in its own element and is kept there by its digest, as the
map's payload is (:mod:`.payload`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import NamedTuple, Sequence

import numpy as np

MAGIC = b"VQB1"


class Blob(NamedTuple):
    """A packed blob: its digest (by which views name it) and its bytes."""

    digest: str
    data: bytes


def pack_blob(kind: str, body: bytes, **meta) -> Blob:
    """``body`` behind a header of its ``kind`` and ``meta`` (JSON values), named by a digest of all three."""
    digest = hashlib.blake2b(body, digest_size=16)
    digest.update(json.dumps([kind, meta], sort_keys=True).encode())
    head = json.dumps(dict(meta, digest=digest.hexdigest(), kind=kind)).encode()
    pad = -(8 + len(head)) % 8
    return Blob(digest.hexdigest(), MAGIC + struct.pack("<I", len(head)) + head + b"\0" * pad + body)


def unpack_blob(raw: bytes) -> tuple[dict, bytes]:
    """A blob's header and body, as the browser reads them."""
    if raw[:4] != MAGIC:
        raise ValueError("not a VQB1 blob")
    (n,) = struct.unpack("<I", raw[4:8])
    return json.loads(raw[8:8 + n]), raw[8 + n + (-(8 + n) % 8):]


def decoder_blob(onnx: bytes, shape: Sequence[int], d: int) -> Blob:
    """A decoder's ONNX model, which takes (n, ``d``) latents "z" to (n, *``shape``) images "image"."""
    return pack_blob("decoder", bytes(onnx), shape=[int(s) for s in shape], d=int(d))


def latents_blob(map_xy: np.ndarray, latents: np.ndarray) -> Blob:
    """A map's (n, 2) points and their (n, d) latents, as float32: what a spot of it is mixed from."""
    xy = np.ascontiguousarray(map_xy, dtype="<f4")
    z = np.ascontiguousarray(latents, dtype="<f4")
    if xy.ndim != 2 or xy.shape[1] != 2 or z.ndim != 2 or len(z) != len(xy):
        raise ValueError(f"map points {xy.shape} do not fit latents {z.shape}")
    return pack_blob("latents", xy.tobytes() + z.tobytes(), n=len(z), d=int(z.shape[1]))
