"""The map's payload (vqviz.web.pack), read back as the browser reads it (frontend/src/payload.ts)."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from vqviz import web


def _png(width: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((28, width), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_columns_round_trip_as_typed_arrays_at_aligned_offsets():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=500) * 3 + 1, rng.normal(size=500)
    label, cluster, ink = rng.integers(0, 10, 500), rng.integers(0, 300, 500), rng.random(500) * 7
    data = web.pack(x, y, {"label": web.Field(label, [str(i) for i in range(10)]), "cluster": web.Field(cluster),
                           "ink": web.Field(ink, continuous=True)}, atlas=_png(280), thumb_size=28)
    head, cols = web.unpack(data.blob)
    assert head["digest"] == data.digest and head["n"] == 500 and head["m"] == 0
    assert all(c["offset"] % 8 == 0 for c in head["columns"].values())
    (x0, x1), (y0, y1) = head["domain"]
    assert x1 - x0 == pytest.approx(y1 - y0)  # one scale on both axes: the map keeps its aspect
    assert -1 < cols["x"].min() and cols["x"].max() < 1 and cols["x"].dtype == np.float32
    np.testing.assert_allclose(web.positions(data.blob), np.stack([x, y], 1), atol=1e-5)
    assert cols["f0"].dtype == np.uint8 and (cols["f0"] == label).all()
    assert cols["f1"].dtype == np.uint16 and (cols["f1"] == cluster).all()  # codes past 255
    assert head["fields"][2]["kind"] == "continuous" and head["fields"][2]["range"] == [ink.min(), ink.max()]
    np.testing.assert_allclose(cols["f2"], (ink - ink.min()) / np.ptp(ink), atol=1e-6)
    assert head["atlas"]["cols"] == 10 and head["atlas"]["mime"] == "image/png"
    # the atlas travels apart: "VQA1", the length of its digest, the digest, the image
    (n,) = struct.unpack("<I", data.atlas[4:8])
    assert data.atlas[:4] == b"VQA1" and data.atlas[8:8 + n].decode() == head["atlas"]["digest"] == data.atlas_digest
    assert data.atlas[8 + n:] == _png(280)


def test_the_background_comes_first_and_the_digest_names_the_content():
    xy = np.arange(20.0).reshape(10, 2)
    bg = np.zeros((4, 2))
    a = web.pack(xy[:, 0], xy[:, 1], {"c": web.Field(np.zeros(10, int))}, background=bg)
    head, cols = web.unpack(a.blob)
    assert head["m"] == 4 and len(cols["x"]) == 14 and a.atlas is None and head["atlas"] is None
    np.testing.assert_allclose(web.positions(a.blob), xy, atol=1e-5)  # the background left out
    b = web.pack(xy[:, 0], xy[:, 1], {"c": web.Field(np.ones(10, int))}, background=bg)
    assert a.digest != b.digest
    assert a.digest == web.pack(xy[:, 0], xy[:, 1], {"c": web.Field(np.zeros(10, int))}, background=bg).digest
    assert a.blob == web.pack(xy[:, 0], xy[:, 1], {"c": web.Field(np.zeros(10, int))}, background=bg).blob


def test_a_continuous_field_keeps_its_given_range_and_clips_to_it():
    data = web.pack(np.arange(4.0), np.zeros(4), {"e": web.Field(np.array([0, 1, 2, np.nan]), continuous=True,
                                                                 range=(0.0, 1.0))})
    head, cols = web.unpack(data.blob)
    assert head["fields"][0]["range"] == [0.0, 1.0] and cols["f0"].tolist() == [0, 1, 1, 0]


def test_atlas_png_is_a_row_major_grid():
    images = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    png, cols = web.atlas_png(images, cols=2)
    grid = np.asarray(Image.open(io.BytesIO(png)))
    assert cols == 2 and grid.shape == (12, 6)
    np.testing.assert_array_equal(grid[4:8, 3:6], images[3])  # row 1, column 1
    rgb, _ = web.atlas_png(np.random.default_rng(0).random((3, 4, 4, 3)))
    assert np.asarray(Image.open(io.BytesIO(rgb))).shape == (8, 8, 3)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="one length"):
        web.pack(np.zeros(3), np.zeros(4), {})
    with pytest.raises(ValueError, match="finite"):
        web.pack(np.array([0, np.nan]), np.zeros(2), {})
    with pytest.raises(ValueError, match="'c': \\(2,\\) values for 3 points"):
        web.pack(np.zeros(3), np.zeros(3), {"c": web.Field(np.zeros(2, int))})
    with pytest.raises(ValueError, match="'c': categorical codes must be integers >= 0"):
        web.pack(np.zeros(2), np.zeros(2), {"c": web.Field(np.array([0, -1]))})
    with pytest.raises(ValueError, match="PNG, WebP or JPEG"):
        web.pack(np.zeros(2), np.zeros(2), {}, atlas=b"GIF89a....")
    with pytest.raises(ValueError, match="thumb_index"):
        web.pack(np.zeros(2), np.zeros(2), {}, thumb_index=np.zeros(3))
    with pytest.raises(ValueError, match="not a vqviz map payload"):
        web.unpack(b"PK\x03\x04")
    with pytest.raises(ValueError, match="\\(N, H, W\\)"):
        web.atlas_png(np.zeros((2, 4, 4, 2)))


@pytest.mark.parametrize("n", [1, 16, 17, 1000, 20_000])
def test_the_spatial_index_order_is_a_k_d_tree_as_kdbush_searches_it(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n).astype(np.float32), rng.integers(0, 5, n).astype(np.float32)  # ties on y
    ids = web.payload.kd_order(x, y)
    assert sorted(ids.tolist()) == list(range(n))  # a permutation
    coords = (x[ids], y[ids])
    ranges = [(0, n - 1, 0)]
    while ranges:  # KDBush's range search walks exactly these splits
        left, right, axis = ranges.pop()
        if right - left <= web.payload.KD_NODE:
            continue
        m = (left + right) >> 1
        assert (coords[axis][left:m] <= coords[axis][m]).all() and (coords[axis][m + 1:right + 1] >= coords[axis][m]).all()
        ranges += [(left, m - 1, 1 - axis), (m + 1, right, 1 - axis)]


def test_the_payload_carries_the_index_order_of_every_point_background_included():
    rng = np.random.default_rng(3)
    data = web.pack(rng.normal(size=300), rng.normal(size=300), {}, background=rng.normal(size=(70_000, 2)))
    head, cols = web.unpack(data.blob)
    assert head["kd_node"] == web.payload.KD_NODE and cols["kd"].dtype == np.uint32  # 70,300 ids: past uint16
    np.testing.assert_array_equal(cols["kd"], web.payload.kd_order(cols["x"], cols["y"]))
