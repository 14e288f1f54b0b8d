"""Baselines (AE, VAE, beta-VAE, CVAE, information dropout): shapes, the KL and BCE against NumPy, beta,
the CVAE's label conditioning, checkpoints, the command line and a tiny fit."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints, metrics
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.autoencoders import AE, CVAE, VAE, BetaVAE, InfoDropoutAE, gaussian_kl
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed

NAMES = ("ae", "vae", "beta_vae", "cvae", "info_dropout")


def _x(digits, n=32):
    return torch.as_tensor(np.array(digits[1].images[:n])), torch.as_tensor(np.array(digits[1].labels[:n]))


def _np_kl(mu, logvar, mean):
    mu, logvar, mean = (np.asarray(a, dtype=np.float64) for a in (mu, logvar, mean))
    return 0.5 * (np.exp(logvar) + (mu - mean) ** 2 - 1 - logvar).sum(1)


def _np_bce(x, p):
    x, p = np.asarray(x, np.float64), np.asarray(p, np.float64)
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).sum(1)


def test_registered_with_their_defaults():
    assert set(NAMES) <= set(names())
    for name, cls in zip(NAMES, (AE, VAE, BetaVAE, CVAE, InfoDropoutAE)):
        assert type(build(name)) is cls
    assert build("vae").config.beta == 1.0 and build("beta_vae").config.beta == 4.0
    assert build("ae").config.latent_dim == 64 and build("ae").config.recon_loss == "bce"
    assert build("ae").config.architecture == "mlp"
    assert build("ae", in_shape=(3, 32, 32)).config.architecture == "cae4_pool"


@pytest.mark.parametrize("kwargs, message", [
    ({"recon_loss": "l1"}, "recon_loss"),
    ({"encoder": "resnet"}, "unknown encoder"),
    ({"latent_dim": 0}, "latent_dim"),
    ({"beta": -1.0}, "beta"),
    ({"in_shape": (8, 8)}, "in_shape"),
])
def test_bad_config_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build("vae", **kwargs)


@pytest.mark.parametrize("kwargs, message", [({"max_alpha": 0.0}, "max_alpha"), ({"beta": -0.5}, "beta"),
                                             ({"max_alpha": float("nan")}, "max_alpha")])
def test_bad_information_dropout_config_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build("info_dropout", **kwargs)


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", NAMES)
def test_shapes(name, in_shape):
    set_seed(0)
    model = build(name, in_shape=in_shape, latent_dim=6).eval()
    x = torch.rand(3, *in_shape)
    y = torch.tensor([0, 4, 9])
    z = model.encode(x)
    assert z.shape == (3, 6)
    out = model.decode(z)
    assert out.shape == (3, *in_shape) and 0 <= out.min() and out.max() <= 1
    assert model.reconstruct(x).shape == (3, *in_shape)
    terms = model.training_loss(x, y)
    assert terms["loss"].shape == () and torch.isfinite(terms["loss"])
    assert ("kl" in terms) == (name != "ae")  # information dropout's cost is its KL term
    if name not in ("ae", "info_dropout"):  # the generative ones
        assert model.sample(n=2).shape[1:] == in_shape


def test_gaussian_kl_against_numpy():
    gen = torch.Generator().manual_seed(0)
    mu, logvar, mean = (torch.randn(5, 7, generator=gen) for _ in range(3))
    np.testing.assert_allclose(gaussian_kl(mu, logvar, mean).numpy(), _np_kl(mu, logvar, mean), rtol=1e-5)
    np.testing.assert_allclose(gaussian_kl(mu, logvar).numpy(), _np_kl(mu, logvar, 0 * mu), rtol=1e-5)
    # The KL of the prior to itself is zero.
    assert torch.allclose(gaussian_kl(mean, torch.zeros_like(mean), mean), torch.zeros(5))


@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
def test_vae_loss_is_recon_plus_kl_per_image(digits, recon_loss):
    """In eval mode z = mu, so the loss can be recomputed in NumPy from the network's outputs."""
    set_seed(0)
    model = build("vae", latent_dim=5, beta=1.0, recon_loss=recon_loss, encoder="lae2").eval()
    x, y = _x(digits)
    terms = model.training_loss(x, y)
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        p = model.decode(mu).numpy()
    kl = _np_kl(mu, logvar, np.zeros_like(mu))
    rec = _np_bce(x, p) if recon_loss == "bce" else ((x.numpy() - p) ** 2).reshape(len(x), -1).sum(1)
    assert terms["kl"].item() == pytest.approx(kl.mean(), rel=1e-4)
    assert terms["recon"].item() == pytest.approx(rec.mean(), rel=1e-4)
    assert terms["loss"].item() == pytest.approx((rec + kl).mean(), rel=1e-4)


def test_logvar_is_clamped(digits):
    model = build("vae", latent_dim=4, encoder="lae2")
    with torch.no_grad():
        model.encoder[-1].bias[4:] = 1e4  # the log-variance half
    _, logvar = model.posterior(_x(digits)[0])
    assert logvar.max() <= 10.0
    assert torch.isfinite(model.training_loss(*_x(digits))["loss"])


def test_encode_is_deterministic_and_sampling_is_not_in_training(digits):
    set_seed(0)
    model = build("vae", latent_dim=5, encoder="lae2")
    x, y = _x(digits)
    model.eval()
    assert torch.equal(model.encode(x), model.encode(x))
    assert torch.equal(model.encode(x), model.posterior(x)[0])
    assert model.training_loss(x, y)["loss"] == model.training_loss(x, y)["loss"]
    model.train()
    assert torch.equal(model.encode(x), model.encode(x))  # the mean, even in train mode
    assert model.training_loss(x, y)["recon"] != model.training_loss(x, y)["recon"]  # z is sampled


def test_beta_scales_only_the_kl_term(digits):
    set_seed(0)
    one = build("vae", latent_dim=5, encoder="lae2").eval()
    three = build("vae", latent_dim=5, encoder="lae2", beta=3.0).eval()
    three.load_state_dict(one.state_dict())
    x, y = _x(digits)
    a, b = one.training_loss(x, y), three.training_loss(x, y)
    assert a["recon"] == b["recon"] and a["kl"] == b["kl"]
    assert b["loss"].item() - a["loss"].item() == pytest.approx(2 * a["kl"].item(), abs=1e-5 * b["loss"].item())


def test_cvae_decode_depends_on_the_label(digits):
    set_seed(0)
    model = build("cvae", latent_dim=4, encoder="lae2").eval()
    z = torch.randn(5, 4)
    with torch.no_grad():
        images = torch.stack([model.decode(z, torch.full((5,), c)) for c in range(10)])  # (10, 5, ...)
        assert (images[0] - images[1]).abs().max() > 1e-3
        # An int label broadcasts; no label is the uniform class vector 1/C.
        assert torch.equal(model.decode(z, 3), images[3])
        uniform = torch.sigmoid(model.decoder(torch.cat([z, torch.full((5, 10), 0.1)], 1)))
        torch.testing.assert_close(model.decode(z), uniform)
        # The decoder is linear in the one-hot input up to its first layer: the mean of the
        # ten label-conditioned pre-activations is the uniform one's.
        first = model.decoder[0]
        pre = torch.stack([first(torch.cat([z, torch.nn.functional.one_hot(torch.full((5,), c), 10).float()], 1))
                           for c in range(10)]).mean(0)
        torch.testing.assert_close(pre, first(torch.cat([z, torch.full((5, 10), 0.1)], 1)))
    s = model.sample(7, n=3)
    assert s.shape == (3, 1, 8, 8)
    assert model.sample(n=2).shape == (20, 1, 8, 8)  # every class, class by class
    with pytest.raises(ConfigError, match="labels"):
        model.sample(10)


def test_cvae_evaluate_uses_the_true_labels(digits):
    set_seed(0)
    model = build("cvae", latent_dim=4, encoder="lae2").eval()
    test = digits[1]
    x, y = torch.as_tensor(np.array(test.images)), torch.as_tensor(np.array(test.labels))
    with torch.no_grad():
        labelled = metrics.reconstruction_errors(x, model.reconstruct(x, y))
        agnostic = metrics.reconstruction_errors(x, model.reconstruct(x))
    m = model.evaluate(test)
    assert m["test_bce_per_image"] == pytest.approx(labelled["bce_per_image"], rel=1e-6)
    assert m["test_bce_per_image"] != pytest.approx(agnostic["bce_per_image"], rel=1e-6)


def test_a_conditioned_cvae_encoder_is_the_encoder_on_x_beside_the_one_hot(digits, tmp_path):
    """The cluster-VAE paper's CVAE: q(z | x, y) from the concatenation of x and the one-hot label."""
    train, test = digits
    set_seed(0)
    model = build("cvae", latent_dim=4, encoder="mlp", condition_encoder=True).eval()
    assert torch.equal(model.label_in.weight, torch.zeros_like(model.label_in.weight))  # starts unconditioned
    torch.nn.init.normal_(model.label_in.weight)
    x, y = _x(digits)
    first = model.encoder[1]  # Flatten, then the first dense layer

    def reference(labels: torch.Tensor) -> torch.Tensor:
        """In float64: one dense layer on [x, labels], then the encoder's other layers; the mean."""
        weight = torch.cat([first.weight, model.label_in.weight], 1).double()
        h = torch.cat([x.flatten(1), labels], 1).double() @ weight.T + first.bias.double()
        for layer in model.encoder[2:]:
            h = torch.nn.functional.linear(h, layer.weight.double(), layer.bias.double()) \
                if isinstance(layer, torch.nn.Linear) else layer(h)
        return h[:, :4].float()

    with torch.no_grad():
        torch.testing.assert_close(model.posterior_for(x, y)[0],
                                   reference(torch.nn.functional.one_hot(y, 10).float()), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(model.posterior_for(x, y)[0], model.posterior_for(x, (y + 1) % 10)[0])
        # No label: the uniform class vector, as decode(z) without a label.
        torch.testing.assert_close(model.encode(x), reference(torch.full((len(x), 10), 0.1)), rtol=1e-5, atol=1e-5)
    m = model.evaluate(test)
    with torch.no_grad():
        xt, yt = torch.as_tensor(np.array(test.images)), torch.as_tensor(np.array(test.labels))
        labelled = metrics.reconstruction_errors(xt, model.decode(model.posterior_for(xt, yt)[0], yt))
    assert m["test_bce_per_image"] == pytest.approx(labelled["bce_per_image"], rel=1e-6)

    set_seed(0)
    fitted = build("cvae", latent_dim=4, encoder="lae2", condition_encoder=True)
    fitted.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=64)))
    assert fitted.label_in.weight.abs().sum() > 0  # the label's weights are trained
    ckpt = checkpoints.load(checkpoints.save(fitted, tmp_path / "ck"), expect="cvae")
    assert ckpt.model.config.condition_encoder
    with torch.no_grad():
        assert torch.equal(ckpt.model.reconstruct(x, y), fitted.reconstruct(x, y))


@pytest.mark.parametrize("name", NAMES)
def test_tiny_fit_lowers_the_loss_and_round_trips(name, digits, tmp_path):
    train, test = digits
    set_seed(0)
    model = build(name, latent_dim=8, encoder="lae2")
    before = model.evaluate(test)["test_bce_per_image"]
    trainer = Trainer(TrainConfig(epochs=4, batch_size=64))
    after = model.fit(train, test, trainer)["test_bce_per_image"]
    history = [h["loss"] for h in trainer.history["train"]]
    assert history[-1] < 0.92 * history[0], history
    assert after < 0.75 * before, (before, after)

    ckpt = checkpoints.load(checkpoints.save(model, tmp_path / "ck"), expect=name)
    x, y = _x(digits)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))
        assert torch.equal(ckpt.model.encode(x), model.encode(x))
        if name == "cvae":
            assert torch.equal(ckpt.model.reconstruct(x, y), model.reconstruct(x, y))
    assert ckpt.model.config == model.config


@pytest.mark.parametrize("name", NAMES)
def test_command_line_train(name, tmp_path, capsys):
    out = tmp_path / name
    assert main(["train", name, "--epochs", "1", "--encoder", "lae2", "--latent-dim", "4",
                 "--quiet", "--out", str(out)]) == 0
    assert "test_bce_per_image" in capsys.readouterr().out
    ckpt = checkpoints.load(out, expect=name)
    assert ckpt.model.config.latent_dim == 4 and ckpt.dataset == "digits"
    assert ckpt.metrics["test_bce_per_image"] > 0


def test_the_soft_vq_vae_authors_baseline_losses():
    """Their notebook: AE mean((x_hat - x)^2) / var; VAE 784 NMSE + beta KL summed over d;
    VQ-VAE NMSE + 3 (codebook + 2.5 commitment), both as per-element means."""
    torch.manual_seed(0)
    x = torch.rand(6, 1, 8, 8)
    ae = build("ae", latent_dim=4, recon_loss="nmse", init="glorot").train()
    ae.data_variance = 0.2
    nmse = ((ae.decode(ae.encode(x)) - x) ** 2).mean() / 0.2
    torch.testing.assert_close(ae.training_loss(x, None)["loss"], nmse)

    vae = build("beta_vae", latent_dim=4, recon_loss="nmse", init="glorot", beta=20.0).eval()  # eval: z = mu
    vae.data_variance = 0.2
    mu, logvar = vae.posterior(x)
    per_image = ((vae.decode(mu) - x) ** 2).flatten(1).mean(1) / 0.2
    kl = 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(1)
    y = torch.zeros(6, dtype=torch.long)
    torch.testing.assert_close(vae.training_loss(x, y)["loss"], (64 * per_image + 20 * kl).mean())

    vq = build("vqvae", latent_dim=4, codebook_size=8, recon_loss="nmse", init="glorot", beta=2.5, vq_weight=3.0,
               latent_reduction="mean", codebook_init="unit_scaling").eval()
    vq.data_variance = 0.2
    z = vq.encode(x)
    e = vq.quantizer.codebook[torch.cdist(z, vq.quantizer.codebook).argmin(1)]
    expected = ((vq.decode(e) - x) ** 2).mean() / 0.2 + 3 * (((e - z) ** 2).mean() + 2.5 * ((z - e) ** 2).mean())
    torch.testing.assert_close(vq.training_loss(x, None)["loss"], expected)
    assert vq.quantizer.codebook.abs().max() <= (3 / 4) ** 0.5  # uniform unit scaling, U(-sqrt(3/d), sqrt(3/d))


def test_information_dropout_is_the_authors_log_normal_noise_and_cost():
    """Their notebook: z = mu exp(0.7 a eps), loss 784 NMSE + 0.5 mean(-log(a / 0.7 + 0.001)), in float64."""
    torch.manual_seed(0)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    model = build("info_dropout", latent_dim=4, recon_loss="nmse", init="glorot").double().train()
    model.data_variance = 0.2
    torch.manual_seed(1)
    loss = model.training_loss(x, None)["loss"]

    h = model.encoder(x).detach().numpy()
    mu, a = h[:, :4], 1 / (1 + np.exp(-h[:, 4:]))
    torch.manual_seed(1)
    eps = torch.randn(6, 4, dtype=torch.float64).numpy()  # the draw training_loss made
    z = mu * np.exp(0.7 * a * eps)
    x_hat = model.decode(torch.as_tensor(z)).detach().numpy()
    recon = 64 * ((x_hat - x.numpy()) ** 2).reshape(6, -1).mean(1) / 0.2
    cost = -np.log(a / 0.7 + 0.001).mean(1)
    np.testing.assert_allclose(loss.item(), (recon + 0.5 * cost).mean(), rtol=1e-12)

    with torch.no_grad():  # evaluation: the noiseless mean, twice the same
        torch.testing.assert_close(model.eval().encode(x), torch.as_tensor(mu), rtol=0, atol=0)
        assert torch.equal(model.reconstruct(x), model.decode(torch.as_tensor(mu)))
