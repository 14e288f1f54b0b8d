"""The style mixer's pictures: the Fig. 5 triangle and the slider grid decoded in one batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vqviz import analysis, checkpoints, data
from vqviz.errors import ConfigError
from vqviz.images import MARKS, side_by_side

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lae2():
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2")
    return ckpt.model, ckpt.model.encode_array(data.load("digits", "test").images[:3])


def test_mixing_picture_puts_the_three_latents_in_its_corners(lae2):
    model, z = lae2
    picture = analysis.mixing_picture(model, z, steps=4, scale=2, gap=8, frame=4)
    tile = 8 * 2
    assert picture.shape == (4 * (tile + 8) + 8, 4 * (tile + 8) + 8, 3)
    decoded = model.decode_array(z)
    for i, (row, col) in enumerate([(0, 0), (0, 3), (3, 3)]):
        y, x = 8 + row * (tile + 8), 8 + col * (tile + 8)
        expected = (np.clip(decoded[i, 0], 0, 1) * 255 + 0.5).astype(np.uint8).repeat(2, 0).repeat(2, 1)
        np.testing.assert_array_equal(picture[y:y + tile, x:x + tile, 0], expected)
        assert tuple(picture[y - 2, x - 2]) == MARKS[i]  # its frame
    assert (picture[8 + 3 * (tile + 8):, :8 + 3 * (tile + 8) - 4] == 255).all()  # below the diagonal: empty


def test_the_slider_grid_holds_the_mixture_of_every_slider_position(lae2):
    model, z = lae2
    grid = analysis.slider_grid(model, z)
    assert grid.shape == (101, 101, 1, 8, 8)
    for a1, a2 in ((0.0, 0.0), (0.25, 0.25), (0.5, 0.13), (0.07, 0.5), (1.0, 0.0), (0.0, 1.0), (0.37, 0.63)):
        np.testing.assert_allclose(grid[round(a1 / 0.01), round(a2 / 0.01)], analysis.mixture(model, z, (a1, a2)),
                                   atol=1e-5)
    np.testing.assert_allclose(grid[100, 0], model.decode_array(z[:1])[0], atol=1e-5)  # z1 alone can be seen
    assert not grid[60, 41].any()  # a1 + a2 > 1 is no mixture: not decoded
    with pytest.raises(ConfigError, match="three latents"):
        analysis.slider_grid(model, z[:2])


def test_side_by_side_aligns_pictures_of_different_sizes_on_white():
    a = np.zeros((4, 3, 1), np.uint8)
    b = np.full((2, 5, 3), 7, np.uint8)
    out = side_by_side([a, b], gap=2)
    assert out.shape == (4, 3 + 2 + 5, 3)
    assert (out[:, :3] == 0).all() and (out[:2, 5:] == 7).all() and (out[2:, 5:] == 255).all()
