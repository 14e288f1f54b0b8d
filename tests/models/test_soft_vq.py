"""Soft VQ-VAE: the posterior weights against NumPy, their hard-VQ limit, the
training noise, the straight-through gradient, and the model contract."""

import math

import numpy as np
import pytest
import torch

from vqviz import checkpoints, cli
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.soft_vq import SoftVQVAE, soft_assign
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def reference(z, codebook, log_var, posterior="authors"):
    """The posterior weights and mean in float64 NumPy, uniform prior.

    "paper": eqs. (5)-(7) and (6), d-dimensional Gaussian likelihoods. "authors": the
    notebook's ``soft_prob``, exp(-D / 2 sigma^2) / sqrt(1 / sigma^2), normalised.
    """
    z, codebook = np.asarray(z, np.float64), np.asarray(codebook, np.float64)
    log_var = np.broadcast_to(np.asarray(log_var, np.float64), (len(z), len(codebook)))
    d = z.shape[1]
    sq = ((z[:, None, :] - codebook[None]) ** 2).sum(-1)
    if posterior == "paper":
        log_w = -0.5 * sq / np.exp(log_var) - 0.5 * d * (np.log(2 * np.pi) + log_var)
    else:
        smooth = 1.0 / np.exp(log_var)  # 1 / sigma^2
        with np.errstate(divide="ignore"):  # the notebook's form: exp may underflow to 0, its log to -inf
            log_w = np.log(np.exp(-0.5 * sq * smooth - (-0.5 * sq * smooth).max(1, keepdims=True)) / np.sqrt(smooth))
    log_post = log_w - log_w.max(1, keepdims=True)
    post = np.exp(log_post) / np.exp(log_post).sum(1, keepdims=True)
    return post, post @ codebook


def small(**config):
    set_seed(0)
    config = {"variance": "latent", **config}
    return build("soft_vqvae", latent_dim=6, codebook_size=10, encoder="lae2", **config)


@pytest.fixture
def x(digits):
    return torch.as_tensor(np.array(digits[1].images[:24]))


def test_registered_and_bad_config():
    assert "soft_vqvae" in names()
    model = build("soft_vqvae")
    assert isinstance(model, SoftVQVAE) and model.has_quantizer
    assert model.config.encoder == "mlp"  # "auto" on grey images: the paper's MLP
    assert build("soft_vqvae", in_shape=(3, 8, 8)).config.encoder == "cae4_pool"
    c = model.config
    assert (c.latent_dim, c.codebook_size, c.noise_std, c.variance, c.recon_loss) == (64, 128, 0.0, "hidden", "nmse")
    assert (c.posterior, c.init, c.latent_reduction, c.vq_weight, c.beta) == ("authors", "glorot", "mean", 3.0, 2.5)
    assert build("soft_vqvae", variance="input").config.variance == "latent"  # the name before vqviz 0.2
    for bad, match in [({"variance": "local"}, "variance"), ({"noise_std": -0.1}, "noise_std"),
                       ({"posterior": "bayes"}, "posterior"), ({"init": "zeros"}, "init"),
                       ({"latent_reduction": "max"}, "latent_reduction"), ({"vq_weight": -1.0}, "vq_weight"),
                       ({"beta": float("nan")}, "beta"), ({"recon_loss": "l1"}, "recon_loss"),
                       ({"codebook_size": 0}, "codebook_size"), ({"encoder": "resnet"}, "encoder")]:
        with pytest.raises(ConfigError, match=match):
            build("soft_vqvae", **bad)


def test_weights_sum_to_one_and_stay_finite_far_from_every_codeword():
    gen = torch.Generator().manual_seed(0)
    codebook = torch.randn(16, 8, generator=gen)
    # 30 away from codewords 3 and 7 along one axis: squared distances of 1e3 or more.
    z = codebook[[3, 7]] + torch.tensor([[30.0] + [0.0] * 7, [0.0] * 7 + [-30.0]])
    dist = torch.cdist(z, codebook) ** 2
    assert dist.min() > 800
    # exp(-dist / 2) underflows to 0 for every k in float32: a naive normalisation gives 0/0.
    assert torch.all(torch.exp(-0.5 * dist) == 0)
    probs, z_hat = soft_assign(z, codebook, torch.zeros(16), "paper")
    assert torch.isfinite(probs).all() and torch.isfinite(z_hat).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    ref_p, ref_z = reference(z, codebook, np.zeros(16), "paper")
    np.testing.assert_allclose(probs.numpy(), ref_p, atol=1e-5)
    np.testing.assert_allclose(z_hat.numpy(), ref_z, atol=1e-4)
    # Squared distances of 1e4 and more, with a very small variance.
    far = torch.full((3, 8), 40.0)
    assert (torch.cdist(far, codebook) ** 2).min() > 1e4
    for posterior in ("authors", "paper"):
        probs, z_hat = soft_assign(far, codebook, torch.full((3, 16), -20.0), posterior)
        assert torch.isfinite(probs).all() and torch.isfinite(z_hat).all()
        torch.testing.assert_close(probs.sum(1), torch.ones(3))


def test_vanishing_variance_is_hard_vq():
    gen = torch.Generator().manual_seed(1)
    codebook = torch.randn(32, 5, generator=gen)
    z = torch.randn(200, 5, generator=gen) * 1.5
    nearest = torch.cdist(z, codebook).argmin(1)
    # sigma_k -> 0 together for every k (one value per input in the second case; with
    # different rates the limit would be argmin ||z - mu_k||^2 / sigma_k^2 instead).
    for posterior in ("authors", "paper"):
        for log_var in (torch.full((32,), -30.0), (-30.0 + torch.rand(200, 1, generator=gen)).expand(200, 32)):
            probs, z_hat = soft_assign(z, codebook, log_var, posterior)
            torch.testing.assert_close(probs, torch.nn.functional.one_hot(nearest, 32).float())
            torch.testing.assert_close(z_hat, codebook[nearest])


@pytest.mark.parametrize("posterior", ["authors", "paper"])
@pytest.mark.parametrize("per_input", [True, False])
def test_soft_assign_matches_numpy(per_input, posterior):
    gen = torch.Generator().manual_seed(2)
    codebook = torch.randn(20, 7, generator=gen)
    z = torch.randn(50, 7, generator=gen)
    shape = (50, 20) if per_input else (20,)
    log_var = torch.randn(shape, generator=gen) * 1.5  # variances differ: the log sigma terms count
    probs, z_hat = soft_assign(z, codebook, log_var, posterior)
    ref_p, ref_z = reference(z, codebook, log_var, posterior)
    np.testing.assert_allclose(probs.numpy(), ref_p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(z_hat.numpy(), ref_z, rtol=1e-4, atol=1e-5)
    # A shared (K,) variance is the same as repeating it for every input.
    if not per_input:
        again, _ = soft_assign(z, codebook, log_var.expand(50, 20), posterior)
        torch.testing.assert_close(again, probs)
    with pytest.raises(ConfigError, match="posterior"):
        soft_assign(z, codebook, log_var, "bayes")


def test_the_two_posteriors_differ_by_the_normaliser_only():
    """Same distances, same sigmas: the forms differ by (d + 1) / 2 log sigma^2, which
    cancels when every component shares one sigma and shifts the weights otherwise."""
    gen = torch.Generator().manual_seed(5)
    codebook, z = torch.randn(12, 64, generator=gen) / 8, torch.randn(30, 64, generator=gen) / 8
    shared = torch.full((12,), 0.3)
    torch.testing.assert_close(soft_assign(z, codebook, shared, "authors")[0],
                               soft_assign(z, codebook, shared, "paper")[0])
    # Per-component sigmas: log p_authors - log p_paper = (d + 1) / 2 log sigma_k^2 + a row constant.
    z, codebook, spread = z.double(), codebook.double(), torch.linspace(math.log(1 / 64), 0.0, 12).double()
    diff = soft_assign(z, codebook, spread, "authors")[0].log() - soft_assign(z, codebook, spread, "paper")[0].log()
    expected = 65 / 2 * spread
    torch.testing.assert_close(diff - diff[:, :1], (expected - expected[0]).expand(30, 12), rtol=0, atol=1e-9)


def test_noise_only_in_train_mode(x):
    model = small(noise_std=0.5)
    model.eval()
    with torch.no_grad():
        a = model.quantize(model.encode(x))
        b = model.quantize(model.encode(x))
        z = model.encode(x)
        probs, z_hat = soft_assign(z, model.codebook, model.component_log_var(z))
    torch.testing.assert_close(a.quantized, b.quantized, rtol=0, atol=0)
    torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)
    torch.testing.assert_close(a.quantized, z_hat)  # eval: z'_e = z_e, no noise
    torch.testing.assert_close(a.probs, probs)
    model.train()
    with torch.no_grad():
        z_train = model.encode(x)
        c = model.quantize(z_train)
        d = model.quantize(z_train)
    torch.testing.assert_close(z_train, z)  # the encoder itself is deterministic
    assert not torch.allclose(c.probs, d.probs) and not torch.allclose(c.probs, a.probs)
    # Without noise, train mode is deterministic too.
    quiet = small(noise_std=0.0).train()
    with torch.no_grad():
        z = quiet.encode(x)
        torch.testing.assert_close(quiet.quantize(z).quantized, quiet.quantize(z).quantized, rtol=0, atol=0)


def test_straight_through_gradient_reaches_z_e():
    model = small(beta=0.7, latent_reduction="sum", vq_weight=1.0).train()
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(9, 6, generator=gen, requires_grad=True)
    q = model.quantize(z)
    probs, z_hat = soft_assign(z.detach(), model.codebook, model.component_log_var(z.detach()))
    torch.testing.assert_close(q.quantized, z_hat)  # value: the posterior mean, eq. (6)
    w = torch.randn(9, 6, generator=gen)
    (q.quantized * w).sum().backward(retain_graph=True)
    torch.testing.assert_close(z.grad, w)  # gradient: copied to z_e unchanged
    assert model.codebook.grad is None  # the decoder's loss does not reach the codebook
    z.grad = None
    q.terms["commitment"].backward(retain_graph=True)  # ||z'_e - sg(z_hat)||^2: z_e only
    torch.testing.assert_close(z.grad, 0.7 * 2 * (z - z_hat).detach() / 9)  # beta-weighted
    assert model.codebook.grad is None
    torch.testing.assert_close(q.loss, q.terms["codebook"] + q.terms["commitment"])
    q.terms["codebook"].backward()  # ||sg(z'_e) - z_hat||^2 trains the codebook and the variances
    assert model.codebook.grad.abs().sum() > 0
    assert model.log_var_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("variance", ["latent", "global"])
def test_contract_and_shapes(x, variance):
    model = small(variance=variance, recon_loss="bce").eval()
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
        x_hat = model.reconstruct(x)
    assert z.shape == (24, 6) and x_hat.shape == (24, 1, 8, 8)
    assert 0 <= x_hat.min() and x_hat.max() <= 1
    assert q.quantized.shape == (24, 6) and q.indices.shape == (24,) and q.probs.shape == (24, 10)
    assert model.component_log_var(z).shape == ((24, 10) if variance == "latent" else (10,))
    torch.testing.assert_close(q.probs.sum(1), torch.ones(24))
    assert torch.equal(q.indices, q.probs.argmax(1))
    torch.testing.assert_close(model.codes(q.indices), model.codebook[q.indices])
    torch.testing.assert_close(x_hat, model.decode(q.quantized))
    terms = model.training_loss(x, None)
    assert set(terms) >= {"loss", "recon", "codebook", "commitment"}
    torch.testing.assert_close(terms["loss"].detach(), terms["recon"] + terms["codebook"] + terms["commitment"])
    bce = torch.nn.functional.binary_cross_entropy(x_hat, x, reduction="sum") / 24  # -log p(x|z) per image
    torch.testing.assert_close(terms["recon"], bce)


def test_checkpoint_round_trip(tmp_path, digits, x):
    train, test = digits
    model = small(variance="global", noise_std=0.1)
    model.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=128)))
    folder = checkpoints.save(model, tmp_path / "ck")
    loaded = checkpoints.load(folder, expect="soft_vqvae").model
    assert loaded.config == model.config
    with torch.no_grad():
        a, b = model.quantize(model.encode(x)), loaded.quantize(loaded.encode(x))
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)
    assert torch.equal(a.indices, b.indices)


def test_command_line_train(tmp_path):
    out = tmp_path / "soft"
    code = cli.main(["train", "soft_vqvae", "--epochs", "1", "--batch-size", "256", "--encoder", "lae2",
                     "--latent-dim", "8", "--codebook-size", "16", "--variance", "global",
                     "--noise-std", "0.05", "--quiet", "--out", str(out)])
    assert code == 0
    ckpt = checkpoints.load(out)
    assert ckpt.name == "soft_vqvae" and ckpt.model.codebook.shape == (16, 8)
    assert (ckpt.model.config.variance, ckpt.model.config.noise_std) == ("global", 0.05)
    assert 0 <= ckpt.metrics["test_kmeans_accuracy"] <= 1
    assert cli.main(["train", "soft_vqvae", "--variance", "nope", "--quiet", "--out", str(tmp_path / "x")]) == 2


PAPER = {"posterior": "paper", "variance": "latent", "init": "torch", "recon_loss": "bce",
         "latent_reduction": "sum", "vq_weight": 1.0}


@pytest.mark.slow  # trains on the digits twice: 2.5 s
@pytest.mark.parametrize("recipe", ["authors", "paper"])
def test_digits_fit_the_authors_recipe_stays_soft_the_literal_one_goes_hard(digits, recipe):
    """d = 64, K = 32, 4 epochs on digits (a few seconds): the loss falls under both recipes.
    The authors' posterior stays soft (1.76 nats of ln 32 = 3.47); the literal eq. (5)
    in d = 64 trains as a hard VQ (0.06 nats), as the soft VQ-VAE issue measured on MNIST."""
    train, test = digits
    set_seed(0)
    model = build("soft_vqvae", latent_dim=64, codebook_size=32, encoder="lae2", **(PAPER if recipe == "paper" else {}))
    trainer = Trainer(TrainConfig(epochs=4, batch_size=32))
    epochs = []
    trainer.add_callback("on_epoch", lambda p: epochs.append(p.terms))
    metrics = model.fit(train, test, trainer)
    assert len(epochs) == 4 and all(math.isfinite(e["loss"]) for e in epochs)
    assert epochs[-1]["loss"] < 0.85 * epochs[0]["loss"], [e["loss"] for e in epochs]
    assert epochs[-1]["recon"] < epochs[0]["recon"]
    entropy = metrics["test_assignment_entropy"]
    if recipe == "authors":
        assert 0.3 * math.log(32) < entropy < 0.95 * math.log(32)  # soft, and not uniform
        assert metrics["test_kmeans_accuracy"] > 0.5  # chance is about 0.1; 0.62 at seed 0
    else:
        assert entropy < 0.05 * math.log(32)  # all but one-hot
    assert 0 < metrics["test_kmeans_nmi"] <= 1 and metrics["test_bce_per_image"] > 0


def test_hidden_head_quantize_input_is_exact_and_quantize_uses_the_running_mean(x):
    model = small(variance="hidden")
    model.train()
    model.training_loss(x, None)  # one step's statistics move the running mean off zero
    assert model.log_var_mean.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        z, log_var = model.encode_with_log_var(x)
        exact = model.quantize_input(x)
        ref_p, _ = reference(z, model.codebook, log_var)
        approx = model.quantize(z)
        ref_q, _ = reference(z, model.codebook, model.log_var_mean)
    assert log_var.shape == (24, 10)
    np.testing.assert_allclose(exact.probs.numpy(), ref_p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(approx.probs.numpy(), ref_q, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(model.reconstruct(x), model.decode(exact.quantized))
    np.testing.assert_array_equal(model.quantize_array(np.asarray(x)).indices, exact.indices.numpy())


def test_checkpoints_before_the_authors_recipe_keep_the_literal_one():
    old = {"in_shape": [1, 8, 8], "n_classes": 10, "encoder": "mlp", "latent_dim": 64, "codebook_size": 128,
           "beta": 2.5, "noise_std": 0.0, "variance": "input", "recon_loss": "bce"}
    config = SoftVQVAE.Config(**SoftVQVAE.upgrade_config(old, "0.1.0"))
    assert (config.posterior, config.variance, config.init, config.latent_reduction, config.vq_weight) == (
        "paper", "latent", "torch", "sum", 1.0)
    assert SoftVQVAE.Config(**SoftVQVAE.upgrade_config(old, "0.2.0")).posterior == "authors"


@pytest.mark.parametrize("variance", ["latent", "hidden"])
def test_a_cluster_shows_its_members_mean_posterior_mean_and_a_hard_model_its_codeword(digits, variance):
    """What the Cluster styles page decodes for a cluster: the decoder's own input averaged over
    the cluster's members (sum_k p(mu_k | x) mu_k, eq. 6), computed here by hand from
    ``assign_input``; a cluster no sample falls in keeps its codeword, as a VQ-VAE's do."""
    from vqviz import analysis

    test = digits[1]
    model = small(variance=variance).eval()
    table = analysis.point_table(model, test.images, test.labels, test.n_classes)
    with torch.no_grad():
        z_hat = model.assign_input(torch.as_tensor(np.array(test.images)))[1].probs @ model.codebook
    for k in range(model.n_codes):
        members = table.clusters == k
        want = z_hat[torch.as_tensor(members)].mean(0) if members.any() else model.codebook[k]
        np.testing.assert_allclose(table.centres[k], want.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert (np.bincount(table.clusters, minlength=model.n_codes) > 0).sum() >= 2
    np.testing.assert_array_equal(analysis.centroid_images(model, table), model.decode_array(table.centres))

    set_seed(0)
    vq = build("vqvae", latent_dim=6, codebook_size=10, encoder="lae2").eval()
    hard = analysis.point_table(vq, test.images, test.labels, test.n_classes)
    np.testing.assert_array_equal(hard.centres, vq.codes(torch.arange(10)).detach().numpy())
