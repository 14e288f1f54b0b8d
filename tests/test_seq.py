"""SEQ: the K rule, the quantizer contract, and accuracy on real data."""

import numpy as np
import pytest
import torch

from vqviz import data
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.seq import SEQ, choose_k
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def test_registered():
    assert "seq" in names()
    assert isinstance(build("seq"), SEQ)
    with pytest.raises(ConfigError, match="no setting"):
        build("seq", kk=3)
    with pytest.raises(ConfigError):
        build("nope")


def test_k_rule_on_a_given_curve():
    ks = [10, 20, 50, 100, 120]
    acc = [0.90, 0.95, 0.975, 0.986, 0.988]
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.005) == 100   # 0.986 > 0.985, 0.975 is not
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.02) == 50
    assert choose_k(ks, acc, p_e=0.99, epsilon=0.1) == 10
    # No K qualifies: the most accurate one.
    assert choose_k(ks, acc, p_e=0.999, epsilon=0.001) == 120
    # The comparison is strict, as in the paper (P_Q > P_E - eps).
    assert choose_k([10, 20], [0.985, 0.99], p_e=0.99, epsilon=0.005) == 20


def test_quantize_contract(tiny_seq, digits):
    model, _ = tiny_seq
    x = torch.as_tensor(np.array(digits[1].images[:20]))
    z = model.encode(x)
    out = model.quantize(z)
    assert z.shape == (20, 16)
    assert out.quantized.shape == (20, 16) and out.indices.shape == (20,)
    assert out.probs.shape == (20, model.k)
    torch.testing.assert_close(out.probs.sum(1), torch.ones(20))
    # Hard assignment: the quantized vector is the centre at the index, the nearest one.
    torch.testing.assert_close(out.quantized, model.centres[out.indices])
    d = torch.cdist(z, model.centres)
    assert torch.equal(out.indices, d.argmin(1))
    # Going back from indices to codes.
    torch.testing.assert_close(model.codes(out.indices), out.quantized)
    assert model.decode(z).shape == (20, 1, 8, 8)
    assert model.centre_images().shape == (model.k, 1, 8, 8)
    assert model.predict(x).shape == (20,)


def test_evaluate_reports_reconstruction_and_codebook_use(tiny_seq, digits):
    model, _ = tiny_seq
    m = model.evaluate(digits[1])
    assert m["test_mse_per_pixel"] > 0 and m["test_bce_per_image"] > 0
    assert 0 < m["test_usage_entropy"] <= np.log(model.k) + 1e-9
    assert m["test_assignment_entropy"] == 0.0  # hard assignments
    assert 0 <= m["test_dead_codes"] < model.k


def test_fit_reports_the_k_curve(tiny_seq):
    model, metrics = tiny_seq
    assert [p["k"] for p in metrics["k_curve"]] == [6, 12]
    assert model.k == 12 and metrics["k"] == 12
    assert metrics["k_rule"] in (6, 12)
    for p in metrics["k_curve"]:
        assert 0 <= p["train_accuracy"] <= 1 and 0 <= p["test_accuracy"] <= 1
    assert set(model.cluster_labels.tolist()) <= set(range(10))


def test_k_zero_takes_the_rules_choice(digits):
    train, test = digits
    model = build("seq", latent_dim=8, k=0, k_sweep=(5, 10, 15), kmeans_restarts=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1)))
    assert model.k == metrics["k_rule"] == metrics["k"]


def test_same_seed_same_model(digits):
    train, _ = digits
    runs = []
    for _ in range(2):
        set_seed(7)
        m = build("seq", latent_dim=8, k=5, k_sweep=(5,), kmeans_restarts=1)
        m.fit(train, None, Trainer(TrainConfig(epochs=1, seed=7)))
        runs.append(m)
    for (k, a), b in zip(runs[0].state_dict().items(), runs[1].state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(runs[0].centres, runs[1].centres)


def test_seq_on_digits_reaches_95_percent(digits):
    """>= 95 % test accuracy through the k-means quantizer with K = 50 (about 5 s on 2 CPU cores)."""
    train, test = digits
    model = build("seq", encoder="lae2", k=50, k_sweep=(50,))
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=20, batch_size=64)))
    assert metrics["quantizer_test_accuracy"] >= 0.95, metrics
    pred = model.predict(torch.as_tensor(np.array(test.images)))
    assert float((pred.numpy() == test.labels).mean()) == pytest.approx(metrics["quantizer_test_accuracy"])
    assert metrics["k"] == 50


@pytest.mark.slow
def test_seq_on_mnist_lae2_reaches_97_percent(shared_data):
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    model = build("seq", in_shape=train.shape, encoder="lae2", k=100, k_sweep=(100,), decoder_epochs=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))
    assert metrics["quantizer_test_accuracy"] >= 0.97, metrics
