"""Image grids with numpy and Pillow: what the app and the reports show."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .errors import ConfigError


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ConfigError(f"expected images of shape (N, C, H, W), got {images.shape}")
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 1, pad_value: float = 1.0,
         scale: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (H', W', C) uint8 picture.

    Parameters
    ----------
    ncol : images per row (default: about the square root of N).
    pad : pixels between tiles, of colour ``pad_value``.
    scale : nearest-neighbour enlargement, so that 8x8 digits stay crisp on screen.
    """
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    if n == 0:
        raise ConfigError("no images to tile")
    ncol = max(1, min(ncol or int(np.ceil(np.sqrt(n))), n))
    nrow = int(np.ceil(n / ncol))
    fill = int(round(pad_value * 255))
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y:y + h, x:x + w] = tile
    if scale > 1:
        out = out.repeat(scale, 0).repeat(scale, 1)
    return out


def to_pil(picture: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 with C = 1 or 3 -> a Pillow image."""
    return Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)


def png_bytes(picture: np.ndarray) -> bytes:
    """Encode an (H, W, C) uint8 picture as PNG, e.g. for a download button."""
    buf = io.BytesIO()
    to_pil(picture).save(buf, format="PNG")
    return buf.getvalue()
