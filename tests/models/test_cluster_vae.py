"""Cluster VAEs: the lambda-hot and nearest-centre priors against NumPy, the argmax
classifier and class sampling on digits, the k-means centres' updates, the quantizer
contract, checkpoints and the command line."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints, metrics
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.cluster_vae import KMeansVAE, LambdaVAE
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def _np_kl(mu, logvar, mean):
    mu, logvar, mean = (np.asarray(a, dtype=np.float64) for a in (mu, logvar, mean))
    return 0.5 * (np.exp(logvar) + (mu - mean) ** 2 - 1 - logvar).sum(1)


def _x(dataset, n=40):
    return torch.as_tensor(np.array(dataset.images[:n])), torch.as_tensor(np.array(dataset.labels[:n]))


@pytest.fixture(scope="module")
def lambda_fit(digits):
    """Five epochs on digits (under a second): argmax accuracy about 0.93."""
    train, test = digits
    set_seed(0)
    model = build("lambda_vae", encoder="lae2")
    return model, model.fit(train, test, Trainer(TrainConfig(epochs=5, batch_size=64)))


@pytest.fixture(scope="module")
def kmeans_fit(digits):
    train, test = digits
    set_seed(0)
    model = build("kmeans_vae", encoder="lae2", latent_dim=10)
    snapshots = []
    trainer = Trainer(TrainConfig(epochs=4, batch_size=64))
    trainer.add_callback("on_epoch", lambda p: snapshots.append(model.centres.clone()))
    return model, model.fit(train, test, trainer), snapshots


def test_registered_with_the_papers_defaults():
    assert {"lambda_vae", "kmeans_vae"} <= set(names())
    lam = build("lambda_vae")
    assert isinstance(lam, LambdaVAE) and lam.config.latent_dim == 20 and lam.config.lam == 5.0
    km = build("kmeans_vae")
    assert isinstance(km, KMeansVAE) and km.has_quantizer and km.config.n_clusters == 10


@pytest.mark.parametrize("name, kwargs, message", [
    ("lambda_vae", {"latent_dim": 9}, "latent_dim .9. must be at least n_classes .10."),
    ("lambda_vae", {"lam": 0.0}, "lam"),
    ("kmeans_vae", {"n_clusters": 0}, "n_clusters"),
    ("kmeans_vae", {"recon_loss": "l2"}, "recon_loss"),
])
def test_bad_config_is_a_clear_error(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build(name, **kwargs)


def test_lambda_kl_against_numpy(digits):
    """KL to N(lambda e_y, I) on the first C dimensions and N(0, I) on the rest."""
    set_seed(0)
    model = build("lambda_vae", encoder="lae2", latent_dim=13, lam=3.0).eval()
    x, y = _x(digits[1])
    with torch.no_grad():
        mu, logvar = model.posterior(x)
    mean = np.zeros((len(y), 13))
    mean[np.arange(len(y)), y.numpy()] = 3.0
    np.testing.assert_allclose(model.prior_mean(y).numpy(), mean)
    terms = model.training_loss(x, y)
    assert terms["kl"].item() == pytest.approx(_np_kl(mu, logvar, mean).mean(), rel=1e-5)
    # The prior differs from the VAE's by exactly the mean shift: KL_lambda - KL_0 is
    # 0.5 sum((mu - m)^2 - mu^2) = 0.5 (lam^2 - 2 lam mu_y) per image.
    shift = 0.5 * (9.0 - 6.0 * mu[torch.arange(len(y)), y].double()).mean().item()
    vae_kl = _np_kl(mu, logvar, np.zeros_like(mean)).mean()
    assert terms["kl"].item() - vae_kl == pytest.approx(shift, abs=1e-3)


def test_lambda_argmax_classifies_after_a_short_fit(lambda_fit, digits):
    model, m = lambda_fit
    assert m["test_argmax_accuracy"] > 0.85, m  # chance is 0.1; seeds 0-2 give 0.925-0.933
    x = torch.as_tensor(np.array(digits[1].images))
    with torch.no_grad():
        pred = model.classify(x)
        assert torch.equal(pred, model.encode(x)[:, :10].argmax(1))
    assert m["test_argmax_accuracy"] == pytest.approx(float((pred.numpy() == digits[1].labels).mean()))
    assert m["test_bce_per_image"] > 0


def test_lambda_samples_are_of_their_class(lambda_fit):
    model, _ = lambda_fit
    gen = torch.Generator().manual_seed(0)
    per_class = []
    for y in range(10):
        s = model.sample(y, 100, generator=gen)
        assert s.shape == (100, 1, 8, 8) and 0 <= s.min() and s.max() <= 1
        per_class.append((model.classify(s) == y).float().mean().item())
    assert min(per_class) > 0.7 and np.mean(per_class) > 0.9, per_class
    assert model.sample(n=3).shape == (30, 1, 8, 8)
    with pytest.raises(ConfigError):
        model.sample(10)


def test_kmeans_kl_target_is_the_nearest_centre():
    set_seed(0)
    model = build("kmeans_vae", encoder="lae2", latent_dim=2, n_clusters=3).eval()
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, -3.0]], dtype=np.float32)
    model.centres.copy_(torch.as_tensor(centres))
    mu = torch.tensor([[3.0, 0.5], [0.2, -0.1], [-0.5, -2.0], [1.9, 0.0]])
    nearest = ((mu.numpy()[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    assert nearest.tolist() == [1, 0, 2, 0]
    np.testing.assert_array_equal(model.kl_target(mu, torch.zeros(4)).numpy(), centres[nearest])
    # The training loss pulls each posterior to its own nearest centre, whatever the label.
    x = torch.rand(6, 1, 8, 8)
    terms = model.training_loss(x, torch.arange(6))
    with torch.no_grad():
        mu, logvar = model.posterior(x)
    target = centres[((mu.numpy()[:, None] - centres[None]) ** 2).sum(-1).argmin(1)]
    assert terms["kl"].item() == pytest.approx(_np_kl(mu, logvar, target).mean(), rel=1e-5)


def test_kmeans_centres_are_recomputed_every_epoch(kmeans_fit, digits):
    model, m, snapshots = kmeans_fit
    assert int(model.updates) == 1 + 4  # before the first epoch, then after each of 4
    assert len(snapshots) == 4
    for a, b in zip(snapshots[:-1], snapshots[1:]):
        assert not torch.allclose(a, b)
    assert torch.equal(snapshots[-1], model.centres)
    # The final centres are k-means centres of the training posterior means: each is
    # the mean of the points nearest to it.
    with torch.no_grad():
        mu = model.encode(torch.as_tensor(np.array(digits[0].images)))
    assign = torch.cdist(mu, model.centres).argmin(1)
    means = torch.stack([mu[assign == k].mean(0) for k in range(10)])
    torch.testing.assert_close(means, model.centres, atol=1e-3, rtol=1e-3)


def test_kmeans_quantize_contract(kmeans_fit, digits):
    model, _, _ = kmeans_fit
    x, _ = _x(digits[1])
    with torch.no_grad():
        z = model.encode(x)
    q = model.quantize(z)
    assert q.quantized.shape == (40, 10) and q.indices.shape == (40,) and q.probs.shape == (40, 10)
    assert torch.equal(q.indices, torch.cdist(z, model.centres).argmin(1))
    torch.testing.assert_close(q.probs.sum(1), torch.ones(40))
    assert torch.equal(q.probs.argmax(1), q.indices)
    torch.testing.assert_close(model.codes(q.indices), q.quantized)
    assert q.loss.item() == 0.0
    assert model.sample(3, 5).shape == (5, 1, 8, 8)
    assert model.sample(n=2).shape == (20, 1, 8, 8)  # cluster by cluster
    with pytest.raises(ConfigError, match="fit"):
        build("kmeans_vae", encoder="lae2").quantize(z)


def test_kmeans_reports_clustering_accuracy(kmeans_fit, digits):
    model, m, _ = kmeans_fit
    test = digits[1]
    assign = model.quantize_array(test.images).indices
    assert m["test_cluster_accuracy"] == pytest.approx(metrics.clustering_accuracy(test.labels, assign))
    assert m["test_cluster_accuracy"] > 0.4, m  # chance is about 0.1
    assert 0 < m["test_perplexity"] <= 10 and m["test_assignment_entropy"] == 0.0


@pytest.mark.parametrize("which", ["lambda", "kmeans"])
def test_checkpoint_round_trip(which, lambda_fit, kmeans_fit, digits, tmp_path):
    model = (lambda_fit if which == "lambda" else kmeans_fit)[0]
    ckpt = checkpoints.load(checkpoints.save(model, tmp_path / "ck"), expect=model.name)
    x, _ = _x(digits[1])
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))
        gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
        assert torch.equal(ckpt.model.sample(2, 4, generator=gen()), model.sample(2, 4, generator=gen()))
        if which == "kmeans":
            assert torch.equal(ckpt.model.centres, model.centres)
            assert torch.equal(ckpt.model.quantize(model.encode(x)).indices, model.quantize(model.encode(x)).indices)
        else:
            assert torch.equal(ckpt.model.classify(x), model.classify(x))


@pytest.mark.parametrize("name, metric", [("lambda_vae", "test_argmax_accuracy"),
                                          ("kmeans_vae", "test_cluster_accuracy")])
def test_command_line_train(name, metric, tmp_path, capsys):
    out = tmp_path / name
    assert main(["train", name, "--epochs", "1", "--encoder", "lae2", "--latent-dim", "12",
                 "--quiet", "--out", str(out)]) == 0
    assert metric in capsys.readouterr().out
    ckpt = checkpoints.load(out, expect=name)
    assert ckpt.model.config.latent_dim == 12 and 0 <= ckpt.metrics[metric] <= 1
