"""Codebook usage and assignment entropy over a split, on hand examples and a shipped SK-VQ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vqviz import analysis, checkpoints, data, metrics
from vqviz.errors import ConfigError
from vqviz.models import Model, QuantizerOutput

ROOT = Path(__file__).resolve().parents[2]


class _Stub(Model):
    """A hand-made quantizer: each 'image' holds its L indices, then its L rows of K probabilities."""

    name = "stub"

    def __init__(self, k: int, n_codebooks: int = 1, soft: bool = False):
        super().__init__(None)
        self.k, self.l, self.soft = k, n_codebooks, soft
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    @property
    def n_codes(self) -> int:
        return self.k

    @property
    def n_codebooks(self) -> int:
        return self.l

    @property
    def is_soft(self) -> bool:
        return self.soft

    def encode(self, x):
        return x.flatten(1)

    def quantize(self, z):
        n, l, k = len(z), self.l, self.k
        idx = z[:, :l].long().squeeze(1) if l == 1 else z[:, :l].long()
        probs = z[:, l:].reshape(n, k) if l == 1 else z[:, l:].reshape(n, l, k)
        return QuantizerOutput(z, idx, probs, z.new_zeros(()), {})


def _stubimages(idx, probs) -> np.ndarray:
    idx, probs = np.asarray(idx, np.float32).reshape(len(idx), -1), np.asarray(probs, np.float32)
    return np.concatenate([idx, probs.reshape(len(idx), -1)], 1)[:, None, None, :]


def test_codebook_stats_match_codebook_usage_on_a_hand_example():
    idx = [0, 0, 1, 3]
    probs = [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 1, 0, 0], [0.25] * 4]
    s = analysis.codebook_stats(_Stub(4, soft=True), _stubimages(idx, probs))
    usage = metrics.codebook_usage(np.array(idx), 4)
    assert s.counts.tolist() == [usage["counts"]] == [[2, 1, 0, 1]]
    assert s.sorted_counts.tolist() == [[2, 1, 1, 0]] and s.order.tolist() == [[0, 1, 3, 2]]
    np.testing.assert_allclose(s.usage_entropy, [usage["usage_entropy"]])
    np.testing.assert_allclose(s.usage_entropy, [1.5 * np.log(2)])  # -(1/2 ln 1/2 + 2 * 1/4 ln 1/4)
    np.testing.assert_allclose(s.perplexity, [2 ** 1.5])
    assert s.dead_codes.tolist() == [usage["dead_codes"]] == [1]
    np.testing.assert_allclose(s.entropy, [0, np.log(2), 0, np.log(4)], atol=1e-6)
    assert not s.hard and s.max_entropy == pytest.approx(np.log(4))

    # Two codebooks: one value per codebook; a sample's entropy is the mean over its codebooks.
    idx2 = np.array([[0, 2], [1, 2], [1, 2]])
    one_hot = np.eye(3)[idx2]  # (N, L, K)
    s2 = analysis.codebook_stats(_Stub(3, 2), _stubimages(idx2, one_hot))
    usage2 = metrics.codebook_usage(idx2, 3)
    assert s2.n_codebooks == 2 and s2.counts.tolist() == usage2["counts"] == [[1, 2, 0], [0, 0, 3]]
    np.testing.assert_allclose(s2.perplexity, usage2["perplexity"])
    assert s2.dead_codes.tolist() == usage2["dead_codes"] == [1, 2]
    assert s2.hard and not s2.entropy.any()


def test_codebook_stats_take_sk_vq_entropies_from_its_soft_probs():
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "skvq-digits")
    images = data.load("digits", "test").images
    s = analysis.codebook_stats(ckpt.model, images)
    with torch.no_grad():
        probs = ckpt.model.soft_probs(torch.as_tensor(ckpt.model.encode_array(images)))
    np.testing.assert_allclose(s.entropy, metrics.assignment_entropy(probs), rtol=1e-5, atol=1e-6)
    assert (s.entropy <= s.max_entropy + 1e-9).all() and s.entropy.mean() > 0.5
    assert s.counts.sum() == len(images)
    plain = type(ckpt.model)(type(ckpt.model.config)(quantizer="none"))  # a classifier without a codebook
    with pytest.raises(ConfigError, match="no codebook"):
        analysis.codebook_stats(plain, images)


def test_code_map_picture_tints_each_region_by_its_codeword():
    from vqviz.images import code_map_picture, palette

    image = np.zeros((1, 8, 8), np.float32)  # black: the tint alone shows
    codes = np.array([[0, 1], [1, 3]])
    pic = code_map_picture(image, codes, 4, scale=4, alpha=1.0)
    assert pic.shape == (32, 32, 3) and pic.dtype == np.uint8
    colours = palette(4)
    assert (pic[5, 5] == colours[0]).all() and (pic[5, 25] == colours[1]).all() and (pic[25, 25] == colours[3]).all()
    assert (pic[16] == 255).all() and (pic[:, 16] == 255).all()  # a white line between regions
    assert len({tuple(c) for c in palette(256)}) == 256
    with pytest.raises(ConfigError, match="map of codes"):
        code_map_picture(image, np.array([[0, 4]]), 4)
