"""The model contract (vqviz/models/base.py), checked on every family that trains alike (a file of latents, which only holds results, has its own tests): each is built
from its ``Config.tiny`` and trained one epoch on the digits, and no family is named here."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints, data
from vqviz.models import get, trainable_names
from vqviz.models.config import ModelConfig
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed

#: The bundled digits' image shape, from their registration, and their classes.
IN_SHAPE, N_CLASSES = data.shape_of("digits"), 10


def untrained(name: str):
    set_seed(0)
    return get(name)(get(name).Config.tiny(IN_SHAPE, N_CLASSES))


#: The families with a quantizer and those without, as they are built.
QUANTIZING = [n for n in trainable_names() if untrained(n).has_quantizer]
PLAIN = [n for n in trainable_names() if n not in QUANTIZING]


@pytest.fixture(scope="module")
def trained(digits):
    """``trained(name) -> (model, metrics)``: the family built from its tiny config and trained one epoch
    on the digits, in eval mode; each family is trained once for this module."""
    train, test = digits
    done = {}

    def get_trained(name: str):
        if name not in done:
            model = untrained(name)
            metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=64)))
            done[name] = model.eval(), metrics
        return done[name]

    return get_trained


@pytest.fixture
def x(digits):
    return torch.as_tensor(np.array(digits[1].images[:12]))


@pytest.mark.parametrize("name", trainable_names())
def test_shapes_and_deterministic_eval(name, x, trained):
    model, _ = trained(name)
    assert isinstance(model.config, ModelConfig) and model.config == get(name).Config(**vars(model.config))
    with torch.no_grad():
        z, again = model.encode(x), model.encode(x)
        x_hat = model.decode(z)
        rec = model.reconstruct(x)
    assert z.shape[0] == 12 and z.ndim == 2
    torch.testing.assert_close(z, again, rtol=0, atol=0)  # eval mode is deterministic
    assert x_hat.shape == x.shape == rec.shape
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1


@pytest.mark.parametrize("name", QUANTIZING)
def test_quantizer_indices_go_back_to_codes_and_probabilities_sum_to_one(name, x, trained):
    model, metrics = trained(name)
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
        back = model.codes(q.indices)
    assert q.quantized.shape == z.shape and back.shape == z.shape
    assert q.indices.shape[0] == 12 and q.probs.shape[:-1] == q.indices.shape
    torch.testing.assert_close(q.probs.sum(-1), torch.ones(q.indices.shape))
    assert torch.equal(q.probs.argmax(-1), q.indices)
    # What callers ask, answered by the model: K, and the L codebooks whose indices lie side by side
    # (a map of codes, one code per position, is one codebook).
    side_by_side = q.indices.shape[1] if q.indices.ndim == 2 and model.code_map_shape is None else 1
    assert q.probs.shape[-1] == model.n_codes and model.n_codebooks == side_by_side
    soft = model.assignment_probs(z)
    assert soft.shape == q.probs.shape
    torch.testing.assert_close(soft.sum(-1), torch.ones(q.indices.shape))
    # A model that labels its codes is scored by those labels, and only such a model.
    labels = model.cluster_labels
    assert (labels is not None) == ("quantizer_test_accuracy" in metrics)
    assert labels is None or (labels.shape == (model.n_codes,) and 0 <= labels.min() and labels.max() < N_CLASSES)
    hard = bool(((q.probs == 0) | (q.probs == 1)).all())
    if hard:  # a hard quantizer's output is the chosen codewords
        torch.testing.assert_close(back, q.quantized)
    # The whole-split assignment is the per-image one: quantize(encode(x)) for a hard quantizer, which
    # picks from z alone; a soft one may also read the image (its own variances).
    with torch.no_grad():
        own = model.quantize_input(x)
    np.testing.assert_array_equal(model.quantize_array(np.asarray(x)).indices, own.indices.numpy())
    if hard:
        assert torch.equal(own.indices, q.indices)


@pytest.mark.parametrize("name", PLAIN)
def test_a_model_without_a_quantizer_says_so(name, trained):
    model, _ = trained(name)
    assert (model.n_codes, model.n_codebooks, model.cluster_labels) == (None, None, None)


@pytest.mark.parametrize("name", trainable_names())
def test_checkpoint_round_trip(name, x, tmp_path, trained):
    model, _ = trained(name)
    folder = checkpoints.save(model, tmp_path / name, dataset="digits")
    loaded = checkpoints.load(folder, expect=name).model
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", QUANTIZING)
def test_the_map_the_codebook_page_and_the_stored_metrics_read_one_assignment(name, digits, tmp_path, trained):
    from vqviz import analysis

    model, _ = trained(name)
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
    # The per-image path (an assignment that reads the image, not only z, reads it here too).
    with torch.no_grad():
        own = ckpt.model.quantize_input(torch.as_tensor(np.array(test.images[:32])))
    np.testing.assert_array_equal(a.indices[:32], own.indices.numpy())
    # "Is this model soft?" has one answer, and the entropies follow it.
    assert stats.hard == (not ckpt.model.is_soft)
    assert (a.entropy > 1e-6).any() == ckpt.model.is_soft


@pytest.mark.parametrize("name", trainable_names())
def test_every_family_with_a_codebook_records_its_use_over_training(name, digits, trained):
    """One entry per epoch of the stages that can move a code (SEQ: one, at its k-means), and the last
    is the trained model's own usage of the same held-out sample: no later stage moved a code."""
    from vqviz.models.history import sample_rows, usage_of

    model, metrics = trained(name)  # one epoch, the default sample: the whole test split of 360
    h = metrics.get("codebook_history")
    if name in PLAIN:
        assert h is None
        return
    test = digits[1]
    assert (h["n_codes"], h["sample"], h["split"]) == (model.n_codes, len(test.images), "test")
    assert h["epoch"] == ([0] if name == "seq" else [1]) and len(h["stage"]) == 1
    usage = usage_of(model, model.assign(test.images[sample_rows(len(test.images), 2000)]))
    for key in ("usage_entropy", "perplexity", "dead_codes"):
        assert h[key][-1] == pytest.approx(usage[key], abs=1e-9), key
