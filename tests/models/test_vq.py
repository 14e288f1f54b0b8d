"""VQ-VAE: the nearest-codeword quantizer against NumPy, the straight-through gradient,
EMA, k-means initialisation, dead-code restarts, and the vqvae model end to end."""

import math

import numpy as np
import pytest
import torch

from vqviz import checkpoints
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.vq import VQVAE, VectorQuantizer
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def _blobs(centres, per_blob=20, spread=0.01, seed=0):
    """(B, d) centres -> (B * per_blob, d) tight Gaussian blobs, and each point's blob."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float32)
    labels = torch.arange(len(centres)).repeat_interleave(per_blob)
    return centres[labels] + spread * torch.randn(len(labels), centres.shape[1], generator=g), labels


@pytest.fixture(scope="module")
def trained(digits):
    """A vqvae with the default quantizer trained for 1 epoch: enough for round trips."""
    train, test = digits
    set_seed(0)
    model = build("vqvae", encoder="lae2", latent_dim=16, codebook_size=16)
    model.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=64)))
    return model


def test_registered_and_bad_config():
    assert "vqvae" in names() and isinstance(build("vqvae"), VQVAE)
    assert build("vqvae").config.encoder == "mlp"
    assert build("vqvae", in_shape=(3, 32, 32)).config.encoder == "cae4_pool"
    for bad, match in [({"recon_loss": "l1"}, "recon_loss"), ({"beta": -1.0}, "beta"),
                       ({"encoder": "resnet"}, "unknown encoder"), ({"codebook_size": 0}, "codebook_size"),
                       ({"dead_code_threshold": -0.5}, "dead_code_threshold")]:
        with pytest.raises(ConfigError, match=match):
            build("vqvae", **bad)


def test_nearest_codeword_and_loss_match_numpy():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=7, dim=5, beta=0.3).eval()
    with torch.no_grad():
        vq.codebook.normal_()
    z = torch.randn(40, 5)
    out = vq(z)
    zn, cn = z.numpy().astype(np.float64), vq.codebook.detach().numpy().astype(np.float64)
    ref = ((zn[:, None, :] - cn[None]) ** 2).sum(-1).argmin(1)  # (N, K) -> (N,)
    np.testing.assert_array_equal(out.indices.numpy(), ref)
    torch.testing.assert_close(out.quantized, vq.codebook[out.indices].detach())
    assert out.probs.shape == (40, 7)
    torch.testing.assert_close(out.probs, torch.eye(7)[out.indices])
    sq = ((zn - cn[ref]) ** 2).mean()
    assert out.terms["codebook"].item() == pytest.approx(sq, rel=1e-5)
    assert out.terms["commitment"].item() == pytest.approx(0.3 * sq, rel=1e-5)
    assert out.loss.item() == pytest.approx(1.3 * sq, rel=1e-5)


def test_straight_through_gradient():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=6, dim=4)
    z = torch.randn(10, 4, requires_grad=True)
    out = vq(z)
    out.quantized.retain_grad()
    w = torch.randn(10, 4)
    (w * out.quantized ** 2).sum().backward()  # a decoder-like loss of the quantized vectors only
    assert z.grad is not None and z.grad.abs().sum() > 0
    torch.testing.assert_close(z.grad, out.quantized.grad)
    # The codebook term moves the codebook, the commitment term only the encoder output.
    z2 = z.detach().clone().requires_grad_(True)
    vq.zero_grad()
    vq(z2).terms["commitment"].backward()
    assert vq.codebook.grad is None or vq.codebook.grad.abs().sum() == 0
    vq(z2).terms["codebook"].backward()
    assert vq.codebook.grad.abs().sum() > 0


def test_ema_updates_in_training_only():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=5, dim=3, ema=True)
    z = torch.randn(30, 3)
    before = vq.codebook.clone()
    vq.eval()
    vq(z)
    assert torch.equal(vq.codebook, before)
    vq.train()
    vq(z, update=False)  # what VQVAE.quantize does: never an update
    assert torch.equal(vq.codebook, before)
    vq(z)
    assert not torch.equal(vq.codebook, before)
    # Without EMA the codebook moves only by gradient, but the usage counts still run.
    plain = VectorQuantizer(n_codes=5, dim=3).train()
    before, usage = plain.codebook.detach().clone(), plain.cluster_size.clone()
    plain(z)
    assert torch.equal(plain.codebook.detach(), before) and not torch.equal(plain.cluster_size, usage)


def test_ema_codebook_has_no_gradient_and_converges_to_cluster_means():
    vq = VectorQuantizer(n_codes=3, dim=2, ema=True).train()
    assert not vq.codebook.requires_grad and not list(vq.parameters())
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    z, labels = _blobs(centres, spread=0.1)
    with torch.no_grad():
        vq.codebook.copy_(centres + 0.5)
        vq.embed_sum.copy_(vq.codebook)
    zg = z.clone().requires_grad_(True)
    out = vq(zg)
    assert out.terms["codebook"].item() == 0.0 and out.terms["commitment"].requires_grad
    out.loss.backward()
    assert zg.grad is not None and vq.codebook.grad is None
    for _ in range(1500):  # 0.99^1500 ~ 3e-7: the EMA forgets its start
        out = vq(z)
    means = torch.stack([z[labels == i].mean(0) for i in range(3)])
    assert torch.equal(out.indices, labels)
    torch.testing.assert_close(vq.codebook, means, atol=1e-3, rtol=0)


def test_kmeans_init_puts_codewords_at_the_blob_centres():
    set_seed(0)
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    z, labels = _blobs(centres)
    vq = VectorQuantizer(n_codes=3, dim=3, kmeans_init=True)
    vq.eval()
    vq(z)
    assert not vq.initialised  # eval mode: no initialisation
    vq.train()
    out = vq(z)
    means = torch.stack([z[labels == i].mean(0) for i in range(3)])
    order = out.indices[:: len(z) // 3]  # the codeword each blob got
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(vq.codebook.detach()[order], means, atol=1e-5, rtol=0)
    assert vq.initialised
    # Only the first batch initialises.
    vq(z + 1.0)
    torch.testing.assert_close(vq.codebook.detach()[order], means, atol=1e-5, rtol=0)


def test_kmeans_init_with_fewer_vectors_than_codes_samples_the_batch():
    set_seed(0)
    vq = VectorQuantizer(n_codes=5, dim=2, kmeans_init=True).train()
    z = torch.tensor([[1.0, 2.0], [-3.0, 4.0]])
    vq(z)
    rows = {tuple(r) for r in vq.codebook.detach().tolist()}
    assert rows == {(1.0, 2.0), (-3.0, 4.0)}  # each batch vector is used, and nothing else


@pytest.mark.parametrize("ema", [False, True])
def test_dead_codes_restart_at_batch_vectors(ema):
    set_seed(0)
    vq = VectorQuantizer(n_codes=8, dim=2, ema=ema, dead_code_threshold=0.5).train()
    z, _ = _blobs([[0.0, 0.0], [1.0, 1.0]], per_blob=16, spread=0.1)
    with torch.no_grad():
        vq.codebook.data[:2] = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        vq.codebook.data[2:] = 100.0  # never the nearest: dead
        if ema:
            vq.embed_sum.copy_(vq.codebook)
    kept = vq.codebook.detach()[:2].clone()
    for step in range(1, 200):
        vq(z)
        if vq.codebook[2:].max() < 50:
            break
    # Usage starts at 1 and decays by 0.99 a batch while unused: restarted once below 0.5.
    assert step == math.ceil(math.log(0.5) / math.log(0.99)) == 69
    restarted = vq.codebook.detach()[2:]
    assert (restarted[:, None, :] == z[None]).all(-1).any(1).all()  # each is a batch vector
    assert vq.cluster_size[:2].min() > 0.5
    if not ema:
        assert torch.equal(vq.codebook.detach()[:2], kept)  # the used codes were left alone
    # With the threshold at 0 (off) dead codes stay where they are.
    off = VectorQuantizer(n_codes=8, dim=2).train()
    with torch.no_grad():
        off.codebook.data[2:] = 100.0
    for _ in range(100):
        off(z)
    assert torch.all(off.codebook.detach()[2:] == 100.0)


def test_codes_round_trip():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=9, dim=4).eval()
    out = vq(torch.randn(25, 4))
    torch.testing.assert_close(vq.codes(out.indices), out.quantized.detach())
    idx = torch.arange(9)
    assert torch.equal(vq(vq.codes(idx).detach()).indices, idx)  # each codeword is its own nearest


def test_vqvae_shapes_and_contract(digits):
    set_seed(0)
    model = build("vqvae", latent_dim=12, codebook_size=10, ema=True)
    x = torch.as_tensor(np.array(digits[1].images[:20]))
    z = model.encode(x)
    assert z.shape == (20, 12)
    model.train()
    before = model.quantizer.codebook.clone()
    out = model.quantize(z)  # eval semantics even in train mode
    assert torch.equal(model.quantizer.codebook, before)
    assert out.quantized.shape == (20, 12) and out.indices.shape == (20,) and out.probs.shape == (20, 10)
    torch.testing.assert_close(model.codes(out.indices), out.quantized)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape and 0 <= x_hat.min() and x_hat.max() <= 1
    torch.testing.assert_close(x_hat, model.decode(model.codes(out.indices)))


def test_training_loss_is_the_per_image_objective(digits):
    """recon summed over pixels + squared norms summed over d, averaged over the batch (eq. 3)."""
    set_seed(0)
    model = build("vqvae", latent_dim=6, codebook_size=5, beta=0.25).eval()
    x = torch.as_tensor(np.array(digits[0].images[:16]))
    terms = model.training_loss(x, None)
    z = model.encode(x).detach().numpy().astype(np.float64)
    q = model.quantize(model.encode(x))
    e = q.quantized.detach().numpy().astype(np.float64)
    p = model.reconstruct(x).detach().numpy().astype(np.float64)
    xn = x.numpy().astype(np.float64)
    bce = -(xn * np.log(p) + (1 - xn) * np.log(1 - p)).reshape(16, -1).sum(1).mean()
    sq = ((z - e) ** 2).sum(1).mean()  # ||z_e - e||^2 per image
    assert terms["recon"].item() == pytest.approx(bce, rel=1e-4)
    assert terms["codebook"].item() == pytest.approx(sq, rel=1e-4)
    assert terms["commitment"].item() == pytest.approx(0.25 * sq, rel=1e-4)
    assert terms["loss"].item() == pytest.approx(bce + 1.25 * sq, rel=1e-4)
    mse = build("vqvae", latent_dim=6, codebook_size=5, recon_loss="mse").eval()
    x_hat = mse.reconstruct(x).detach().numpy()
    assert mse.training_loss(x, None)["recon"].item() == pytest.approx(
        ((x_hat - xn) ** 2).reshape(16, -1).sum(1).mean(), rel=1e-4)


def test_checkpoint_round_trip(trained, digits, tmp_path):
    path = checkpoints.save(trained, tmp_path / "ck")
    loaded = checkpoints.load(path).model
    assert loaded.config == trained.config
    for (k, a), b in zip(trained.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.as_tensor(np.array(digits[1].images[:50]))
    with torch.no_grad():
        torch.testing.assert_close(loaded.reconstruct(x), trained.reconstruct(x), rtol=0, atol=0)
        assert torch.equal(loaded.quantize(loaded.encode(x)).indices, trained.quantize(trained.encode(x)).indices)


@pytest.mark.slow  # trains through the command line: 1.5 s
def test_cli_train(tmp_path, capsys):
    out = tmp_path / "vqvae"
    code = main(["train", "vqvae", "--epochs", "1", "--latent-dim", "8", "--codebook-size", "16", "--ema",
                 "--kmeans-init", "--dead-code-threshold", "0.2", "--recon-loss", "mse", "--quiet",
                 "--out", str(out)])
    assert code == 0
    ckpt = checkpoints.load(out)
    assert ckpt.name == "vqvae" and ckpt.model.config.codebook_size == 16 and ckpt.model.config.ema
    assert ckpt.model.config.recon_loss == "mse"
    assert 1 <= ckpt.metrics["test_perplexity"] <= 16
    assert "test_mse_per_image" in capsys.readouterr().out


@pytest.mark.slow  # trains on the digits: 3 s
def test_digits_fit_lowers_the_loss_and_uses_several_codes(digits):
    """EMA codebook, k-means start and restarts, 10 epochs on digits (about 2 s).

    Seeds 0, 1, 2 end at about 0.7 times the first epoch's loss, test MSE 2.3 per image
    (the mean image: 4.7) and perplexity 28 of 32.
    """
    train, test = digits
    set_seed(0)
    model = build("vqvae", encoder="lae2", latent_dim=16, codebook_size=32, ema=True, kmeans_init=True,
                  dead_code_threshold=0.1)
    trainer = Trainer(TrainConfig(epochs=10, batch_size=32))
    metrics = model.fit(train, test, trainer)
    losses = [h["loss"] for h in trainer.history["train"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert bool(model.quantizer.initialised)
    assert metrics["test_perplexity"] > 16 and metrics["test_dead_codes"] < 8, metrics
    assert metrics["test_assignment_entropy"] == 0.0  # hard assignments
    # Better than decoding the mean image for everyone.
    mean_img = np.asarray(train.images).mean(0)
    baseline = ((np.asarray(test.images) - mean_img) ** 2).reshape(len(test), -1).sum(1).mean()
    assert metrics["test_mse_per_image"] < 0.7 * baseline, (metrics, baseline)
