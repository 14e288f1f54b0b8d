"""k-means, majority vote, nearest-centre prediction and convex mixing."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs

from vqviz.errors import ConfigError
from vqviz.cluster import KMeans, majority_vote, nearest, squared_distances
from vqviz.models.common import convex_mix, mixing_grid


def test_squared_distances_match_numpy():
    rng = np.random.default_rng(0)
    z, c = rng.normal(size=(20, 5)), rng.normal(size=(7, 5))
    ref = ((z[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    got = squared_distances(torch.tensor(z), torch.tensor(c)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(nearest(torch.tensor(z), torch.tensor(c)).numpy(), ref.argmin(1))


def test_kmeans_matches_sklearn_inertia_on_blobs():
    x, _ = make_blobs(n_samples=600, centers=6, n_features=4, random_state=1)
    ours = KMeans(6, n_init=4, random_state=0).fit(x)
    ref = SKKMeans(6, n_init=4, random_state=0).fit(x)
    assert ours.inertia_ <= ref.inertia_ * 1.01
    assert len(torch.unique(ours.labels_)) == 6
    # Centres are the means of their members.
    xt = torch.tensor(x, dtype=torch.float32)
    for k in range(6):
        torch.testing.assert_close(ours.cluster_centers_[k], xt[ours.labels_ == k].mean(0), rtol=1e-4, atol=1e-4)


def test_kmeans_is_deterministic_and_has_no_empty_cluster():
    # Many duplicated points: Lloyd's iterations would empty clusters without re-seeding.
    x = np.repeat(np.eye(3), [50, 50, 2], axis=0) + 1e-3 * np.random.default_rng(0).normal(size=(102, 3))
    a = KMeans(12, n_init=2, random_state=3).fit(x)
    b = KMeans(12, n_init=2, random_state=3).fit(x)
    torch.testing.assert_close(a.cluster_centers_, b.cluster_centers_)
    assert torch.bincount(a.labels_, minlength=12).min() >= 1


def test_kmeans_keeps_every_restart_and_picks_the_lowest_inertia():
    x = np.random.default_rng(0).normal(size=(300, 4))  # no structure: the restarts end apart
    km = KMeans(5, n_init=6, random_state=0, keep_restarts=True).fit(x)
    inertias = [inertia for inertia, _ in km.restarts_]
    assert len(km.restarts_) == 6 and len(set(inertias)) > 1
    assert km.inertia_ == min(inertias)
    torch.testing.assert_close(km.labels_, km.restarts_[int(np.argmin(inertias))][1])
    assert KMeans(5, n_init=6, random_state=0).fit(x).restarts_ == []  # not kept unless asked


def test_kmeans_rejects_bad_k():
    with pytest.raises(ConfigError):
        KMeans(11).fit(np.zeros((10, 2)))
    with pytest.raises(ConfigError):
        KMeans(2).fit(np.zeros(10))


def test_majority_vote_hand_example():
    # cluster 0: labels 1,1,2 -> 1; cluster 1: labels 0,2 (tie) -> 0, the lowest;
    # cluster 2: label 4 only -> 4 (five classes); cluster 3: empty -> -1.
    assign = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([1, 1, 2, 0, 2, 4])
    np.testing.assert_array_equal(majority_vote(assign, labels, 4, n_classes=5), [1, 0, 4, -1])


def test_nearest_centre_prediction_hand_example():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    cluster_labels = torch.tensor([7, 3, 7])
    z = torch.tensor([[1.0, 1.0], [9.0, -1.0], [-1.0, 6.0], [5.1, 0.0]])
    assert cluster_labels[nearest(z, centres)].tolist() == [7, 3, 7, 3]


def test_convex_mix_weights_on_simplex():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(convex_mix(z, (0.25, 0.5)), torch.tensor([0.25, 0.5]))
    torch.testing.assert_close(convex_mix(z, (0.0, 0.0)), z[2])
    torch.testing.assert_close(convex_mix(z, (1.0, 0.0)), z[0])  # a corner of the simplex: z1 alone
    for bad in [(0.6, 0.5), (-0.1, 0.2), (0.2, 0.81), (1.01, 0.0)]:
        with pytest.raises(ConfigError, match="simplex"):
            convex_mix(z, bad)
    with pytest.raises(ConfigError):
        convex_mix(z[:2], (0.1, 0.1))


def test_mixing_grid_is_the_triangle_with_originals_at_corners():
    z = torch.randn(3, 5, dtype=torch.float64)
    mixtures, cells = mixing_grid(z, steps=5)
    assert mixtures.shape == (15, 5) and cells.shape == (15, 5)
    w = cells[:, 2:]
    assert (w >= -1e-12).all() and np.allclose(w.sum(1), 1)
    corner = {(int(r), int(c)): i for i, (r, c) in enumerate(cells[:, :2])}
    torch.testing.assert_close(mixtures[corner[(0, 0)]], z[0])  # z1 top left
    torch.testing.assert_close(mixtures[corner[(0, 4)]], z[1])  # z2 top right
    torch.testing.assert_close(mixtures[corner[(4, 4)]], z[2])  # z3 bottom right
    torch.testing.assert_close(mixtures, torch.as_tensor(w) @ z)
