"""The latents family: a file's latents and codes behind the model contract (no encoder, no decoder)."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints
from vqviz.errors import ConfigError
from vqviz.models import trainable_names
from vqviz.models.table import LatentTable

RNG = np.random.default_rng(0)
Z = np.concatenate([RNG.normal(0, 0.1, (6, 3)), RNG.normal(5, 0.1, (4, 3))]).astype(np.float32)  # two blobs
IMAGES = np.zeros((10, 1, 1, 1), np.float32)


def test_its_own_rows_get_their_stored_latents_and_codes():
    codes = np.array([2] * 6 + [0] * 4)
    model = LatentTable.of(Z, codes, (1, 1, 1), 2)
    a = model.assign(IMAGES)
    np.testing.assert_array_equal(a.latents, Z)
    np.testing.assert_array_equal(a.indices, codes)
    assert a.probs.shape == (10, 3) and np.array_equal(a.probs.argmax(1), codes) and a.probs.sum() == 10
    assert model.n_codes == 3 and model.n_codebooks == 1 and not model.has_decoder and not model.is_soft
    centres = model.cluster_centres(a)  # its members' mean latent; a code no row has: zeros
    np.testing.assert_allclose(centres[2], Z[:6].mean(0), rtol=1e-6)
    np.testing.assert_allclose(centres[0], Z[6:].mean(0), rtol=1e-6)
    assert not centres[1].any()


def test_tuples_of_codes_are_clusters_and_a_spot_gets_the_nearest_one():
    codes = np.array([[0, 1]] * 6 + [[1, 1]] * 4)
    model = LatentTable.of(Z, codes, (1, 1, 1), 2)
    a = model.assign(IMAGES)
    assert a.indices.shape == (10, 2) and a.probs.shape == (10, 2, 2)
    np.testing.assert_array_equal(a.codes, [[0, 1], [1, 1]])
    np.testing.assert_array_equal(a.clusters, [0] * 6 + [1] * 4)
    q = model.quantize(torch.tensor([[5.1, 4.9, 5.0], [0.0, 0.1, 0.0]]))
    np.testing.assert_array_equal(q.indices.numpy(), [[1, 1], [0, 1]])
    torch.testing.assert_close(model.codes(q.indices), q.quantized)
    with pytest.raises(ConfigError, match=r"no row of this file has the codes \(0, 0\)"):
        model.codes(torch.tensor([[0, 0]]))


def test_it_encodes_nothing_but_its_own_rows_and_is_never_trained():
    model = LatentTable.of(Z, np.zeros(10), (1, 1, 1), 1)
    np.testing.assert_array_equal(model.encode_array(IMAGES), Z)
    with pytest.raises(ConfigError, match="holds the latents of its own 10 rows, not of 3 other images"):
        model.encode_array(IMAGES[:3])
    with pytest.raises(ConfigError, match="has no encoder"):
        model.encode(torch.zeros(1, 1, 1, 1))
    with pytest.raises(ConfigError, match="has no decoder"):
        model.decode(torch.zeros(1, 3))
    with pytest.raises(ConfigError, match="is not trained"):
        model.fit(None, None, None)
    assert "latents" not in trainable_names()


def test_a_checkpoint_round_trip(tmp_path):
    model = LatentTable.of(Z, np.array([1] * 6 + [0] * 4), (1, 1, 1), 2, clusters_from="kmeans")
    again = checkpoints.load(checkpoints.save(model, tmp_path / "t", dataset="digits")).model
    assert again.config == model.config and again.config.clusters_from == "kmeans"
    np.testing.assert_array_equal(again.assign(IMAGES).indices, model.assign(IMAGES).indices)
