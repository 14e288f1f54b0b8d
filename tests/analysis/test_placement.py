"""A new image on the map: converted like the data set, encoded, assigned, placed; nearest
neighbours in latent space; the latent behind a spot of the map."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqviz import checkpoints, data
from vqviz.analysis import placement, point_table
from vqviz.errors import ConfigError, DataError
from vqviz.projection import Projector, interpolate

ROOT = Path(__file__).resolve().parents[2]


def _png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def digits():
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    test = data.load("digits", "test")
    return ckpt.model, test, point_table(ckpt.model, test.images, test.labels, test.n_classes)


# ----- converting an upload -----
def test_a_digit_of_the_data_set_saved_large_comes_back_as_itself():
    test = data.load("digits", "test")
    image = test.images[7, 0]  # (8, 8) in [0, 1]
    big = np.uint8(np.round(image * 255)).repeat(16, 0).repeat(16, 1)  # 128 x 128, nearest-neighbour enlarged
    back = placement.to_dataset_format(_png(big), (1, 8, 8), background=placement.border_level(test.images))
    assert back.shape == (1, 8, 8) and back.dtype == np.float32
    np.testing.assert_allclose(back[0], image, atol=2 / 255)  # not inverted: the border is dark, like the data's


def test_black_ink_on_white_is_inverted_for_white_on_black_data_and_rgb_alpha_become_grey():
    ink = np.full((64, 64), 255, np.uint8)
    ink[16:48, 24:40] = 0  # a black bar on white paper, two output pixels wide
    level = placement.border_level(data.load("digits", "test").images)
    assert level < 0.3  # digits: white ink on black
    out = placement.to_dataset_format(_png(ink), (1, 8, 8), background=level)
    assert out[0, 0, 0] < 0.05 and out[0, 4, 3:5].min() > 0.9  # background dark, the bar bright
    kept = placement.to_dataset_format(_png(ink), (1, 8, 8), invert=False)
    np.testing.assert_allclose(kept, 1 - out, atol=1e-6)
    # RGBA: the transparent part is laid on white, the colours made grey
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 24:40] = (0, 0, 0, 255)
    np.testing.assert_allclose(placement.to_dataset_format(_png(rgba, "RGBA"), (1, 8, 8), background=level), out,
                               atol=2 / 255)
    rgb = placement.to_dataset_format(_png(np.stack([ink] * 3, -1)), (3, 8, 8), invert=False)
    assert rgb.shape == (3, 8, 8) and np.allclose(rgb[0], rgb[2])
    jpeg = placement.to_dataset_format(_png(ink, fmt="JPEG"), (1, 8, 8), background=level)
    np.testing.assert_allclose(jpeg, out, atol=0.1)


def test_a_wide_image_is_padded_not_stretched():
    wide = np.zeros((20, 80), np.uint8)
    wide[:, 30:50] = 255  # a 20 x 20 white square in the middle of a black strip
    out = placement.to_dataset_format(_png(wide), (1, 8, 8), invert=False)[0]
    # padded to 80 x 80, the square covers the middle 2 of 8 columns and rows, not all the rows
    assert out[0].max() < 0.05 and out[:, 0].max() < 0.05
    assert out[3:5, 3:5].min() > 0.5


def test_bad_uploads_get_clear_errors():
    with pytest.raises(DataError, match="notes.txt: not an allowed image format"):
        placement.to_dataset_format(b"just some text", (1, 8, 8), "notes.txt")
    with pytest.raises(DataError, match="empty"):
        placement.to_dataset_format(b"", (1, 8, 8), "x.png")
    with pytest.raises(DataError, match="the limit is 20 MB"):
        placement.to_dataset_format(b"\0" * (placement.MAX_UPLOAD_BYTES + 1), (1, 8, 8), "huge.png")
    noise = _png(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    with pytest.raises(DataError, match="cut.png: cannot decode"):  # a valid header, the pixels cut off
        placement.to_dataset_format(noise[:len(noise) // 2], (1, 8, 8), "cut.png")
    big = io.BytesIO()
    Image.new("L", (5000, 4000)).save(big, format="PNG")  # compresses to a few kB: the header is checked
    with pytest.raises(DataError, match="5000 x 4000 pixels"):
        placement.to_dataset_format(big.getvalue(), (1, 8, 8), "big.png")
    with pytest.raises(ConfigError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        placement.to_dataset_format(noise, (2, 8, 8))


# ----- encoding, assigning, neighbours -----
def test_new_images_get_the_latents_and_clusters_of_the_table(digits):
    model, test, table = digits
    z, clusters = placement.assign(model, test.images[:20], table)
    np.testing.assert_allclose(z, table.latents[:20], atol=1e-5)
    np.testing.assert_array_equal(clusters, table.clusters[:20])
    with pytest.raises(ConfigError, match="takes images of shape"):
        placement.assign(model, np.zeros((1, 1, 28, 28), np.float32), table)


def test_nearest_matches_a_brute_force_reference_and_can_leave_a_point_out():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 6)).astype(np.float32)
    q = rng.normal(size=(7, 6)).astype(np.float32)
    near = placement.nearest(z, q, k=5, chunk=3)
    ref = np.linalg.norm(q[:, None].astype(np.float64) - z[None], axis=-1)
    np.testing.assert_array_equal(near.rows, np.argsort(ref, 1, kind="stable")[:, :5])
    np.testing.assert_allclose(near.distances, np.sort(ref, 1)[:, :5], rtol=1e-6, atol=1e-9)
    # the neighbours of a point of the set: itself left out
    own = placement.nearest(z, z[[4, 9]], k=3, exclude=np.array([4, 9]))
    assert 4 not in own.rows[0] and 9 not in own.rows[1]
    assert (placement.nearest(z, z[[4]], k=1).rows == 4).all()
    with pytest.raises(ConfigError):
        placement.nearest(z, q[:, :3])


def test_nearest_by_blocks_of_latents_keeps_ties_in_row_order(monkeypatch):
    monkeypatch.setattr(placement, "ROWS_A_BLOCK", 7)  # 300 latents in 43 blocks
    z = np.repeat(np.arange(60, dtype=np.float32)[:, None], 5, axis=0).repeat(2, axis=1)  # each point 5 times
    near = placement.nearest(z, np.array([[10.2, 10.2], [0.0, 0.0]]), k=7)
    # the 5 copies of 10 (rows 50-54), then the 5 of 11 by row: 55, 56
    assert near.rows.tolist() == [[50, 51, 52, 53, 54, 55, 56], [0, 1, 2, 3, 4, 5, 6]]
    np.testing.assert_allclose(near.distances[0, :5], np.hypot(0.2, 0.2), rtol=1e-6)
    assert placement.nearest(z, z[:1], k=300).rows.shape == (1, 300)  # every latent: no partition


def test_the_neighbours_of_a_digit_mostly_share_its_label(digits):
    _, test, table = digits
    rows = np.arange(len(table.labels))
    near = placement.nearest(table.latents, table.latents, k=5, exclude=rows)
    agree = (test.labels[near.rows] == test.labels[:, None]).mean()
    assert agree > 0.85, agree  # a supervised encoder: neighbours in latent space are mostly the same digit


# ----- placing and going back -----
@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.3, (40, 16)) for c in (0.0, 3.0, 6.0)]).astype(np.float32)


def test_pca_inverse_round_trips(blobs):
    proj = Projector("pca").fit(blobs)
    xy = np.random.default_rng(1).normal(size=(10, 2)).astype(np.float32) * 5
    back = proj.inverse(xy)
    assert back.shape == (10, 16)
    np.testing.assert_allclose(proj.transform(back), xy, atol=1e-4)
    # and a latent of the data set comes back to its projection onto the principal plane
    np.testing.assert_allclose(proj.transform(proj.inverse(proj.embedding_[:5])), proj.embedding_[:5], atol=1e-4)


def test_tsne_interpolation_is_a_convex_combination_of_the_nearest_map_points(blobs):
    from scipy.optimize import nnls

    proj = Projector("tsne", perplexity=10).fit(blobs)
    spots = np.array([[0.0, 0.0], proj.embedding_[3] + 0.01, [100.0, -50.0]], np.float32)
    mix = interpolate(spots, proj.embedding_, blobs, k=6)
    assert mix.rows.shape == mix.weights.shape == (3, 6)
    assert (mix.weights >= 0).all()
    np.testing.assert_allclose(mix.weights.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(mix.latents, np.einsum("mk,mkd->md", mix.weights, blobs[mix.rows]), atol=1e-5)
    d2 = ((spots[:, None] - proj.embedding_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(np.sort(mix.rows, 1), np.sort(np.argsort(d2, 1)[:, :6], 1))  # the nearest 6
    for m in range(3):  # in the hull of the mixed latents: non-negative weights summing to 1 reach it (NNLS)
        hull = blobs[mix.rows[m]].astype(np.float64)
        _, residual = nnls(np.vstack([hull.T, 100 * np.ones(6)]), np.append(mix.latents[m], 100.0))
        assert residual < 1e-4, residual
    assert (mix.weights[1].argmax() == 0) and mix.rows[1, 0] == 3  # the nearest point weighs most
    on_point = interpolate(proj.embedding_[[7]], proj.embedding_, blobs, k=6)
    np.testing.assert_allclose(on_point.latents[0], blobs[7])
    np.testing.assert_allclose(proj.inverse(proj.embedding_[[7]], latents=blobs), blobs[[7]])
    with pytest.raises(ConfigError, match="t-SNE has no inverse"):
        proj.inverse(spots)


@pytest.mark.slow  # UMAP's fit and inverse: 12 s
def test_umap_inverse_lands_near_the_latents_of_the_spot(blobs):
    proj = Projector("umap", n_neighbors=10).fit(blobs)
    centres = np.stack([proj.embedding_[i * 40:(i + 1) * 40].mean(0) for i in range(3)])
    back = proj.inverse(centres)
    assert back.shape == (3, 16) and np.isfinite(back).all()
    # each blob's centre on the map goes back to a latent nearest that blob's own centre
    truth = np.stack([blobs[i * 40:(i + 1) * 40].mean(0) for i in range(3)])
    assert (np.linalg.norm(back[:, None] - truth[None], axis=-1).argmin(1) == np.arange(3)).all()


def test_a_map_model_places_with_the_projector_or_among_neighbours_and_goes_back(blobs):
    proj = Projector("pca").fit(blobs)
    fitted = placement.MapModel("pca", proj.embedding_, blobs, proj)
    xy, how = fitted.place(blobs[:4])
    np.testing.assert_allclose(xy, proj.embedding_[:4], atol=1e-4)
    assert "transform" in how
    spot = fitted.spot(xy[0])
    assert "inverse" in spot.how and len(spot.rows) == 0
    np.testing.assert_allclose(proj.transform(spot.latent[None]), xy[:1], atol=1e-4)
    # without a projector (a cached t-SNE map): among the nearest latents, and a convex mix back
    bare = placement.MapModel("tsne", proj.embedding_, blobs)
    xy2, how2 = bare.place(blobs[:4] + 0.01)
    assert "nearest latents" in how2
    assert (np.linalg.norm(xy2 - proj.embedding_[:4], axis=1) < 1.0).all()  # near the points they copy
    spot2 = bare.spot((0.0, 0.0))
    assert len(spot2.rows) == placement.K_NEIGHBOURS and np.isclose(spot2.weights.sum(), 1.0)
    assert "mix" in spot2.how


def test_placing_images_and_describing_a_point_agree_with_the_table(digits):
    model, test, table = digits
    proj = Projector("pca").fit(table.latents)
    where = placement.MapModel("pca", proj.embedding_, table.latents, proj)
    placed = placement.place_images(model, test.images[[10, 11]], table, where, k=5)
    for p, row in zip(placed, (10, 11)):
        assert p.cluster == table.clusters[row] and p.label == table.cluster_labels[table.clusters[row]]
        np.testing.assert_allclose(p.xy, proj.embedding_[row], atol=1e-3)  # lands where the same image is
        assert p.neighbours.rows[0] == row and p.neighbours.distances[0] < 1e-3  # its own copy, nearest
        assert p.reconstruction.shape == (1, 8, 8) and "transform" in p.how
    point = placement.describe_point(model, table, test.images, 10, k=5)
    assert 10 not in point.neighbours.rows and point.xy is None
    np.testing.assert_array_equal(point.neighbours.rows[:4], placed[0].neighbours.rows[1:])  # the same, less itself
    np.testing.assert_allclose(point.reconstruction, placed[0].reconstruction, atol=1e-5)
    with pytest.raises(ConfigError, match="not in this split"):
        placement.describe_point(model, table, test.images, 360)
