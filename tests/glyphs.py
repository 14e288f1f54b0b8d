"""A folder of rendered glyphs for tests: one sub-folder per class (the letters A, B, ...), each
letter drawn in several styles (size, stroke, slant, position), as a user's own folder would be.

Only Pillow's own font (``ImageFont.load_default``) is used, so the pictures are the same on every
machine whatever fonts it has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def glyph(letter: str, size: int, stroke: int, slant: float, shift: tuple[int, int], side: int = 28) -> Image.Image:
    """One white-on-black ``letter`` of ``side`` x ``side`` pixels."""
    font = ImageFont.load_default(size)
    big = Image.new("L", (side * 2, side * 2), 0)
    draw = ImageDraw.Draw(big)
    draw.text((side + shift[0], side + shift[1]), letter, fill=255, font=font, anchor="mm", stroke_width=stroke,
              stroke_fill=255)
    big = big.transform(big.size, Image.Transform.AFFINE, (1, slant, -slant * side, 0, 1, 0),
                        Image.Resampling.BILINEAR)
    return big.crop((side // 2, side // 2, side // 2 + side, side // 2 + side))


def glyph_folder(root: Path, n_classes: int = 10, per_class: int = 48, seed: int = 0, side: int = 28) -> Path:
    """Write ``per_class`` styles of each of the first ``n_classes`` letters under ``root/<letter>/``."""
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        letter = chr(ord("A") + c)
        (root / letter).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = glyph(letter, size=int(rng.integers(14, 22)), stroke=int(rng.integers(0, 2)),
                          slant=float(rng.uniform(-0.3, 0.3)), shift=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))),
                          side=side)
            image.save(root / letter / f"{i}.png")
    return root
