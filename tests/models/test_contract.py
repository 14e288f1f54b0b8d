"""The model contract (vqviz/models/base.py), checked on every registered family."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints
from vqviz.models import build, get, names
from vqviz.models.config import ModelConfig
from vqviz.utils import set_seed

SMALL = {"latent_dim": 16}
#: Per-family settings that keep the models small, or that the family needs.
EXTRA = {"dvq": {"codebook_size": 8}, "vqvae": {"codebook_size": 8}, "soft_vqvae": {"codebook_size": 8},
         "skvq": {"codebook_size": 8}, "kmeans_vae": {"n_clusters": 4}, "seq": {"k": 4, "k_sweep": (4,)}}


def small(name: str):
    set_seed(0)
    model = build(name, **SMALL, **EXTRA.get(name, {})).eval()
    if name == "seq":  # its quantizer is fitted k-means: give it four centres
        model.set_quantizer(torch.randn(4, 16), np.array([0, 1, 2, 3]))
    if name == "kmeans_vae":  # likewise, its prior's centres
        model.centres.copy_(torch.randn(4, 16))
        model.updates.fill_(1)
    return model


@pytest.fixture
def x(digits):
    return torch.as_tensor(np.array(digits[1].images[:12]))


@pytest.mark.parametrize("name", names())
def test_shapes_and_deterministic_eval(name, x):
    model = small(name)
    assert isinstance(model.config, ModelConfig) and model.config == get(name).Config(**vars(model.config))
    with torch.no_grad():
        z, again = model.encode(x), model.encode(x)
        x_hat = model.decode(z)
        rec = model.reconstruct(x)
    assert z.shape[0] == 12 and z.ndim == 2
    torch.testing.assert_close(z, again, rtol=0, atol=0)  # eval mode is deterministic
    assert x_hat.shape == x.shape == rec.shape
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1


@pytest.mark.parametrize("name", [n for n in names() if small(n).has_quantizer])
def test_quantizer_indices_go_back_to_codes_and_probabilities_sum_to_one(name, x):
    model = small(name)
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
        back = model.codes(q.indices)
    assert q.quantized.shape == z.shape and back.shape == z.shape
    assert q.indices.shape[0] == 12 and q.probs.shape[:-1] == q.indices.shape
    torch.testing.assert_close(q.probs.sum(-1), torch.ones(q.indices.shape))
    assert torch.equal(q.probs.argmax(-1), q.indices)
    # What callers ask, answered by the model.
    assert q.probs.shape[-1] == model.n_codes and model.n_codebooks == (q.indices.shape[1] if name == "dvq" else 1)
    soft = model.assignment_probs(z)
    assert soft.shape == q.probs.shape
    torch.testing.assert_close(soft.sum(-1), torch.ones(q.indices.shape))
    labels = model.cluster_labels
    assert (labels is not None) == (name == "seq") and (labels is None or len(labels) == model.n_codes)
    if name != "soft_vqvae":  # a hard quantizer's output is the chosen codewords
        torch.testing.assert_close(back, q.quantized)
    # The whole-split assignment is the per-image one (quantize(encode(x)), or the image's own
    # variances for the soft VQ-VAE's hidden head).
    with torch.no_grad():
        own = model.quantize_input(x)
    np.testing.assert_array_equal(model.quantize_array(np.asarray(x)).indices, own.indices.numpy())
    if name != "soft_vqvae":
        assert torch.equal(own.indices, q.indices)


@pytest.mark.parametrize("name", [n for n in names() if not small(n).has_quantizer])
def test_a_model_without_a_quantizer_says_so(name):
    model = small(name)
    assert (model.n_codes, model.n_codebooks, model.cluster_labels) == (None, None, None)


@pytest.mark.parametrize("name", names())
def test_checkpoint_round_trip(name, x, tmp_path):
    model = small(name)
    folder = checkpoints.save(model, tmp_path / name, dataset="digits")
    loaded = checkpoints.load(folder, expect=name).model
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


#: The families with a quantizer, and the soft VQ-VAE whose assignment reads the image's own variances.
ASSIGNING = [(n, {}) for n in names() if small(n).has_quantizer] + [("soft_vqvae", {"variance": "hidden"})]


@pytest.mark.parametrize("name, extra", ASSIGNING, ids=[f"{n}{'-hidden' if e else ''}" for n, e in ASSIGNING])
def test_the_map_the_codebook_page_and_the_stored_metrics_read_one_assignment(name, extra, digits, tmp_path):
    from vqviz import analysis

    set_seed(0)
    model = build(name, **SMALL, **{**EXTRA.get(name, {}), **extra}).eval() if extra else small(name)
    test = digits[1]
    folder = checkpoints.save(model, tmp_path / name, dataset="digits", metrics=model.evaluate(test))
    ckpt = checkpoints.load(folder, expect=name)
    table = analysis.point_table(ckpt.model, test.images, test.labels, 10)  # what the map shows
    stats = analysis.codebook_stats(ckpt.model, test.images)  # what the Assignment entropy page shows
    a = ckpt.model.assign(test.images)
    # One entropy per sample, everywhere, and the stored metric is their mean.
    np.testing.assert_array_equal(table.entropy, stats.entropy)
    np.testing.assert_array_equal(table.entropy, a.entropy)
    assert ckpt.metrics["test_assignment_entropy"] == pytest.approx(float(a.entropy.mean()), abs=1e-6)
    # One code per sample: the map's clusters are the codes the stored usage counts.
    idx = a.indices.reshape(-1) if model.code_map_shape is not None else a.indices
    assert stats.counts.sum() == idx.size and (stats.counts.reshape(-1) == np.bincount(
        (idx + model.n_codes * np.arange(idx.shape[1])).reshape(-1) if idx.ndim == 2 else idx,
        minlength=stats.counts.size)).all()
    if idx.ndim == 1:
        np.testing.assert_array_equal(table.clusters, idx)
        assert ckpt.metrics["test_dead_codes"] == int((stats.counts == 0).sum())
    # The per-image path (the soft VQ-VAE's hidden variance head reads the image, not only z).
    with torch.no_grad():
        own = ckpt.model.quantize_input(torch.as_tensor(np.array(test.images[:32])))
    np.testing.assert_array_equal(a.indices[:32], own.indices.numpy())
    # "Is this model soft?" has one answer, and the entropies follow it.
    assert stats.hard == (not ckpt.model.is_soft)
    assert ckpt.model.is_soft == (name in ("soft_vqvae", "skvq"))
    assert (a.entropy > 1e-6).any() == ckpt.model.is_soft
