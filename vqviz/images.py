"""Image composition with numpy and Pillow: grids, framed tiles and the mixing triangle,
what the app and the reports show."""

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


#: Frame colours of z1, z2 and z3 in the mixer's pictures (red, green, blue, colour-blind-safe shades).
MARKS = ((213, 94, 0), (0, 158, 115), (0, 114, 178))


def _rgb(tiles: np.ndarray) -> np.ndarray:
    return np.repeat(tiles, 3, axis=-1) if tiles.shape[-1] == 1 else tiles


def triangle(images: np.ndarray, cells: np.ndarray, steps: int, scale: int = 4, gap: int = 8,
             frame: int = 4) -> np.ndarray:
    """Lay (M, C, H, W) images out on a ``steps x steps`` grid at their (M, 2) (row, col) ``cells``.

    Returns one (H', W', 3) uint8 picture on white. The corners (0, 0), (0, steps - 1)
    and (steps - 1, steps - 1) get a frame in the colours of :data:`MARKS`; ``scale``
    enlarges each image, ``gap`` and ``frame`` are in screen pixels.
    """
    tiles = _rgb(to_uint8(images)).repeat(scale, 1).repeat(scale, 2)
    h, w = tiles.shape[1:3]
    out = np.full((steps * (h + gap) + gap, steps * (w + gap) + gap, 3), 255, dtype=np.uint8)
    corners = {(0, 0): 0, (0, steps - 1): 1, (steps - 1, steps - 1): 2}
    for tile, (row, col) in zip(tiles, np.asarray(cells, dtype=int)):
        y, x = gap + row * (h + gap), gap + col * (w + gap)
        if (row, col) in corners:
            out[y - frame : y + h + frame, x - frame : x + w + frame] = MARKS[corners[row, col]]
        out[y : y + h, x : x + w] = tile
    return out


def framed(images: np.ndarray, scale: int = 1, frame: int = 6) -> list[np.ndarray]:
    """Each of three (C, H, W) images, enlarged ``scale`` times, in a frame of its colour of :data:`MARKS`."""
    out = []
    for image, colour in zip(images, MARKS):
        tile = _rgb(grid(image[None], pad=0, scale=scale))
        picture = np.empty((tile.shape[0] + 2 * frame, tile.shape[1] + 2 * frame, 3), dtype=np.uint8)
        picture[:] = colour
        picture[frame:-frame, frame:-frame] = tile
        out.append(picture)
    return out


def side_by_side(pictures: list[np.ndarray], gap: int = 8, fill: int = 255) -> np.ndarray:
    """(H, W, C) uint8 pictures in one row, top-aligned, ``gap`` pixels apart: one image to send, not many."""
    c = max(p.shape[-1] for p in pictures)
    pictures = [_rgb(p) if p.shape[-1] != c else p for p in pictures]
    h = max(p.shape[0] for p in pictures)
    w = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((h, w, c), fill, dtype=np.uint8)
    x = 0
    for p in pictures:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 distinct colours, by golden-ratio steps around the hue circle."""
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    rgb = np.stack([np.clip(np.abs(((hues * 6 + k) % 6) - 3) - 1, 0, 1) for k in (0, 4, 2)], axis=1)  # HSV, S = V = 1
    return (rgb * 200 + 30).astype(np.uint8)


def code_map_picture(image: np.ndarray, codes: np.ndarray, n_codes: int, scale: int = 16,
                     alpha: float = 0.45) -> np.ndarray:
    """An image with its map of codes laid over it: each region tinted by its codeword's colour.

    Parameters
    ----------
    image : (C, H, W) in [0, 1].
    codes : (h, w) codeword indices, one per region of an (H / h) x (W / w) grid (SK-VQ's map).
    n_codes : K, for the colours (:func:`palette`); index k always gets the same colour.
    scale : nearest-neighbour enlargement of the image.
    alpha : weight of the tint.

    Returns
    -------
    (H scale, W scale, 3) uint8, with a one-pixel white line between regions.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.size == 0 or codes.min() < 0 or codes.max() >= n_codes:
        raise ConfigError(f"a map of codes is (h, w) indices in [0, {n_codes}), got shape {codes.shape}")
    base = _rgb(grid(np.asarray(image)[None], pad=0, scale=scale)).astype(np.float64)
    height, width = base.shape[:2]
    # Region (i, j) of the map covers rows ys[i]:ys[i + 1] and columns xs[j]:xs[j + 1] of the picture.
    ys = np.linspace(0, height, codes.shape[0] + 1).round().astype(int)
    xs = np.linspace(0, width, codes.shape[1] + 1).round().astype(int)
    colours = palette(n_codes).astype(np.float64)
    tint = colours[codes].repeat(np.diff(ys), 0).repeat(np.diff(xs), 1)  # (h, w, 3) -> (H', W', 3)
    out = ((1 - alpha) * base + alpha * tint).round().astype(np.uint8)
    out[ys[1:-1], :] = 255
    out[:, xs[1:-1]] = 255
    return out
