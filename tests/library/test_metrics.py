"""Each metric against a hand-computed example, and against scikit-learn where it has one."""

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from vqviz import metrics
from vqviz.errors import ConfigError


def test_clustering_accuracy_hand_example():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    # Cluster 5 holds the 0s, cluster 1 mostly the 2s, cluster 0 the 1s and one 2.
    pred = np.array([5, 5, 5, 0, 0, 1, 1, 0])
    # Best map: 5->0 (3), 0->1 (2), 1->2 (2): 7 of 8.
    assert metrics.clustering_accuracy(y, pred) == pytest.approx(7 / 8)
    # A relabelling of perfect clusters is perfect.
    assert metrics.clustering_accuracy(y, (y + 1) % 3) == 1.0
    # More clusters than labels: one cluster stays unmatched.
    assert metrics.clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)


def test_nmi_matches_sklearn_and_extremes():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 5, 200)
    assert metrics.nmi(y, p) == pytest.approx(normalized_mutual_info_score(y, p))
    assert metrics.nmi(y, (y + 2) % 4) == pytest.approx(1.0)


def test_kmeans_scores_on_separated_clusters():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    z = np.eye(3)[y] * 10 + rng.normal(size=(90, 3)) * 0.1
    s = metrics.kmeans_scores(z, y, n_clusters=3)
    assert s["kmeans_accuracy"] == 1.0 and s["kmeans_nmi"] == pytest.approx(1.0)


def test_kmeans_scores_every_restart_against_the_restarts_scored_one_by_one():
    from vqviz.cluster import KMeans

    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(200, 3)), rng.integers(0, 4, 200)  # restarts that disagree
    s = metrics.kmeans_scores(z, y, n_clusters=4, n_init=8, every_restart=True)
    km = KMeans(4, n_init=8, random_state=0, keep_restarts=True).fit(z)
    accuracies = [metrics.clustering_accuracy(y, labels) for _, labels in km.restarts_]
    assert s["kmeans_accuracy"] == metrics.clustering_accuracy(y, km.labels_)
    assert s["kmeans_accuracy_best_restart"] == max(accuracies) > s["kmeans_accuracy_median_restart"]
    assert s["kmeans_accuracy_median_restart"] == pytest.approx(np.median(accuracies))
    assert "kmeans_accuracy_best_restart" not in metrics.kmeans_scores(z, y, n_clusters=4)


def test_linear_probe_separable_and_chance():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    z = np.c_[y * 4.0 - 2 + rng.normal(size=400) * 0.3, rng.normal(size=400)]
    assert metrics.linear_probe(z[:300], y[:300], z[300:], y[300:]) == 1.0
    noise = rng.normal(size=(400, 2))
    assert metrics.linear_probe(noise[:300], y[:300], noise[300:], y[300:]) < 0.7


def test_linear_probe_readings_are_scikit_learns_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    z = rng.normal(size=(600, 5)) * [10.0, 1.0, 1.0, 0.1, 1.0] + y[:, None] * [0.5, 0.3, 0.0, 0.05, 0.2]
    split = (z[:450], y[:450], z[450:], y[450:])
    for c, l2 in ((1.0, True), (np.inf, False)):
        reference = LogisticRegression(C=c, max_iter=2000).fit(z[:450], y[:450]).score(z[450:], y[450:])
        assert metrics.linear_probe(*split, max_iter=2000, standardise=False, l2=l2) == reference


def test_reconstruction_errors_hand_example():
    x = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    x_hat = np.array([[[0.5, 0.0]], [[0.5, 1.0]]])
    r = metrics.reconstruction_errors(x, x_hat, eps=1e-12)
    assert r["mse_per_image"] == pytest.approx((0.25 + 0.25) / 2)
    assert r["mse_per_pixel"] == pytest.approx(0.5 / 4)
    # image 1: -ln 0.5 - ln 1 ; image 2: 2 (-0.5 ln 0.5 - 0.5 ln 0.5) + big term from x_hat = 1 with x = 0.5
    bce1 = -np.log(0.5)
    bce2 = -(0.5 * np.log(0.5) + 0.5 * np.log(0.5)) - (0.5 * np.log(1 - 1e-12) + 0.5 * np.log(1e-12))
    assert r["bce_per_image"] == pytest.approx((bce1 + bce2) / 2)
    with pytest.raises(ConfigError):
        metrics.reconstruction_errors(x, x_hat[:1])


def test_assignment_entropy_rows():
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(metrics.assignment_entropy(p), [0.0, np.log(4), np.log(2)])


def test_codebook_usage_over_a_split():
    idx = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    u = metrics.codebook_usage(idx, 8)
    assert u["usage_entropy"] == pytest.approx(np.log(4))
    assert u["perplexity"] == pytest.approx(4.0)
    assert u["dead_codes"] == 4
    assert u["counts"] == [2, 2, 2, 2, 0, 0, 0, 0]
    # Depthwise: one value per codebook.
    two = metrics.codebook_usage(np.c_[idx, np.zeros(8, int)], 8)
    assert two["dead_codes"] == [4, 7]
    np.testing.assert_allclose(two["perplexity"], [4.0, 1.0])
    with pytest.raises(ConfigError):
        metrics.codebook_usage(np.array([0, 9]), 8)
