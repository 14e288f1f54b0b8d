"""Text thumbnails for the map's hover label (a plotly hover label draws no <img>)."""

from __future__ import annotations

import numpy as np
import pytest

from vqviz.errors import ConfigError
from vqviz.images import SHADES, shade_text


def test_a_thumbnail_is_the_image_in_shades_two_characters_per_block():
    image = np.zeros((1, 1, 8, 8), np.float32)
    image[0, 0, 2:6, 3:5] = 1.0  # a bright bar on black
    image[0, 0, 0, 0] = 0.5
    (text,) = shade_text(image)
    rows = text.split("<br>")
    assert len(rows) == 8 and all(len(r) == 16 for r in rows)
    assert rows[3] == "      ████      " and rows[0][:2] == SHADES[2] * 2 and rows[7].strip() == ""
    (dark_ink,) = shade_text(1 - image, ink_bright=False)  # black ink on white: the same thumbnail
    assert dark_ink == text


def test_large_and_colour_images_are_averaged_down_to_at_most_max_side():
    rng = np.random.default_rng(0)
    images = rng.random((3, 3, 28, 28)).astype(np.float32)
    thumbs = shade_text(images, max_side=10, sep="\n")
    assert len(thumbs) == 3
    rows = thumbs[0].split("\n")
    assert len(rows) == 10 and {len(r) for r in rows} == {20}  # 28 -> blocks of 3 -> 10 (padded)
    # an image that is half black, half white keeps its halves
    half = np.zeros((1, 1, 28, 28), np.float32)
    half[..., 14:] = 1.0
    rows = shade_text(half, max_side=14, sep="\n")[0].split("\n")
    assert all(r == " " * 14 + "█" * 14 for r in rows)
    with pytest.raises(ConfigError):
        shade_text(np.zeros((8, 8)))
