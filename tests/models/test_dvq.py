"""DVQ: L codebooks on disjoint slices of the latent, against one VectorQuantizer,
a per-slice NumPy reference, slice independence, and the dvq model end to end."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.dvq import DVQ, DepthwiseQuantizer
from vqviz.models.vq import VectorQuantizer
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def _randomised(dq: DepthwiseQuantizer, seed: int = 0) -> DepthwiseQuantizer:
    """Spread the codewords out (N(0, 1)) so that nearest-code choices are not all alike."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in dq.quantizers:
            q.codebook.copy_(torch.randn(q.codebook.shape, generator=g))
    return dq.eval()


@pytest.fixture(scope="module")
def trained(digits):
    train, test = digits
    set_seed(0)
    model = build("dvq", encoder="lae2", latent_dim=16, n_codebooks=4, codebook_size=8, ema=True)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=64)))
    return model, metrics


def test_registered_and_bad_config():
    assert "dvq" in names() and isinstance(build("dvq"), DVQ)
    c = build("dvq").config
    assert (c.latent_dim, c.n_codebooks, c.codebook_size, c.encoder) == (64, 4, 128, "mlp")
    with pytest.raises(ConfigError, match="divisible by n_codebooks"):
        build("dvq", latent_dim=10, n_codebooks=4)
    with pytest.raises(ConfigError, match="n_codebooks"):
        build("dvq", n_codebooks=0)
    with pytest.raises(ConfigError, match="recon_loss"):  # the VQ-VAE checks hold too
        build("dvq", recon_loss="l1")
    with pytest.raises(ConfigError, match="divisible"):
        DepthwiseQuantizer(3, 8, 10)


def test_one_codebook_equals_the_vector_quantizer():
    torch.manual_seed(0)
    dq = _randomised(DepthwiseQuantizer(1, 6, 5, beta=0.3))
    vq = VectorQuantizer(6, 5, beta=0.3).eval()
    with torch.no_grad():
        vq.codebook.copy_(dq.quantizers[0].codebook)
    z = torch.randn(30, 5)
    a, b = dq(z), vq(z)
    assert torch.equal(a.indices[:, 0], b.indices) and a.indices.shape == (30, 1)
    assert torch.equal(a.quantized, b.quantized)
    assert torch.equal(a.probs[:, 0], b.probs)
    assert torch.equal(a.loss, b.loss)
    for name in ("codebook", "commitment"):
        assert torch.equal(a.terms[name], b.terms[name])


def test_one_codebook_model_equals_vqvae(digits):
    """dvq with L = 1 and vqvae with the same weights give the same training loss."""
    set_seed(0)
    vqvae = build("vqvae", encoder="lae2", latent_dim=8, codebook_size=6).eval()
    dvq = build("dvq", encoder="lae2", latent_dim=8, codebook_size=6, n_codebooks=1).eval()
    state = {k.replace("quantizer.", "quantizer.quantizers.0."): v for k, v in vqvae.state_dict().items()}
    dvq.load_state_dict(state)
    x = torch.as_tensor(np.array(digits[1].images[:32]))
    a, b = dvq.training_loss(x, None), vqvae.training_loss(x, None)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_each_slice_is_the_nearest_codeword_of_its_own_codebook():
    torch.manual_seed(0)
    L, K, d = 4, 5, 12
    dq = _randomised(DepthwiseQuantizer(L, K, d, beta=0.25))
    z = torch.randn(50, d)
    out = dq(z)
    zn = z.numpy().astype(np.float64)
    losses = []
    for i, q in enumerate(dq.quantizers):
        part = zn[:, 3 * i: 3 * i + 3]  # slice i of d / L = 3 features, eq. (3)
        cb = q.codebook.detach().numpy().astype(np.float64)
        ref = ((part[:, None] - cb[None]) ** 2).sum(-1).argmin(1)
        np.testing.assert_array_equal(out.indices[:, i].numpy(), ref)
        np.testing.assert_allclose(out.quantized[:, 3 * i: 3 * i + 3].detach().numpy(), cb[ref], atol=1e-6)
        losses.append(1.25 * ((part - cb[ref]) ** 2).mean())
    # Mean over codebooks of per-element means = the per-element mean over the whole latent.
    assert out.loss.item() == pytest.approx(np.mean(losses), rel=1e-5)
    whole = ((zn - out.quantized.detach().numpy()) ** 2).mean()
    assert out.terms["codebook"].item() == pytest.approx(whole, rel=1e-5)
    assert out.terms["commitment"].item() == pytest.approx(0.25 * whole, rel=1e-5)


def test_slices_are_independent():
    torch.manual_seed(0)
    L, K, d = 4, 8, 16
    dq = _randomised(DepthwiseQuantizer(L, K, d))
    z = torch.randn(20, d)
    before = dq(z)
    for j in range(L):
        changed = z.clone()
        # Put slice j on a codeword other than its current one: only code j may change.
        new_idx = (before.indices[:, j] + 1) % K
        changed[:, 4 * j: 4 * j + 4] = dq.quantizers[j].codes(new_idx).detach()
        after = dq(changed)
        assert torch.equal(after.indices[:, j], new_idx)
        others = [i for i in range(L) if i != j]
        assert torch.equal(after.indices[:, others], before.indices[:, others])
        keep = torch.ones(d, dtype=torch.bool)
        keep[4 * j: 4 * j + 4] = False
        assert torch.equal(after.quantized[:, keep], before.quantized[:, keep])


def test_state_updates_stay_in_their_own_codebook():
    """k-means initialisation: codebook i gets the centres of slice i of the first batch."""
    set_seed(0)
    dq = DepthwiseQuantizer(2, 2, 4, kmeans_init=True).train()
    g = torch.Generator().manual_seed(0)
    labels0 = torch.arange(40) % 2
    labels1 = (torch.arange(40) // 20) % 2  # a different split of the batch for slice 1
    z = torch.cat([5.0 * labels0[:, None].float().repeat(1, 2), -5.0 * labels1[:, None].float().repeat(1, 2)], 1)
    z = z + 0.01 * torch.randn(40, 4, generator=g)
    out = dq(z)
    for i, lab in enumerate((labels0, labels1)):
        part = z[:, 2 * i: 2 * i + 2]
        means = torch.stack([part[lab == c].mean(0) for c in (0, 1)])
        got = dq.quantizers[i].codebook.detach()[out.indices[:, i][[lab.tolist().index(0), lab.tolist().index(1)]]]
        torch.testing.assert_close(got, means, atol=1e-5, rtol=0)


def test_shapes_and_codes_round_trip(digits):
    set_seed(0)
    model = build("dvq", encoder="lae2", latent_dim=12, n_codebooks=3, codebook_size=5)
    x = torch.as_tensor(np.array(digits[1].images[:20]))
    z = model.encode(x)
    out = model.quantize(z)
    assert z.shape == (20, 12) and out.quantized.shape == (20, 12)
    assert out.indices.shape == (20, 3) and out.probs.shape == (20, 3, 5)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(20, 3))
    assert torch.equal(out.probs.argmax(-1), out.indices)
    torch.testing.assert_close(model.codes(out.indices), out.quantized)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape and 0 <= x_hat.min() and x_hat.max() <= 1
    with pytest.raises(ConfigError, match="indices must be"):
        model.codes(out.indices[:, 0])


def test_evaluate_reports_usage_per_codebook(trained, digits):
    model, metrics = trained
    for key in ("test_perplexity", "test_usage_entropy", "test_dead_codes"):
        assert isinstance(metrics[key], list) and len(metrics[key]) == 4, key
    assert all(1 <= p <= 8 + 1e-9 for p in metrics["test_perplexity"])
    # Each entry is that codebook's own usage over the split.
    idx = model.quantize_array(digits[1].images).indices
    for i in range(4):
        counts = np.bincount(idx[:, i], minlength=8)
        assert metrics["test_dead_codes"][i] == int((counts == 0).sum())
        f = counts[counts > 0] / counts.sum()
        assert metrics["test_perplexity"][i] == pytest.approx(float(np.exp(-(f * np.log(f)).sum())))


def test_checkpoint_round_trip(trained, digits, tmp_path):
    model, metrics = trained
    path = checkpoints.save(model, tmp_path / "ck", metrics=metrics)
    ckpt = checkpoints.load(path)
    assert ckpt.name == "dvq" and ckpt.model.config == model.config
    for (k, a), b in zip(model.state_dict().items(), ckpt.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.as_tensor(np.array(digits[1].images[:50]))
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
        assert torch.equal(ckpt.model.quantize(ckpt.model.encode(x)).indices,
                           model.quantize(model.encode(x)).indices)
    assert ckpt.metrics["test_perplexity"] == metrics["test_perplexity"]


def test_cli_train(tmp_path, capsys):
    out = tmp_path / "dvq"
    code = main(["train", "dvq", "--epochs", "1", "--encoder", "lae2", "--latent-dim", "8", "--n-codebooks", "2",
                 "--codebook-size", "4", "--kmeans-init", "--quiet", "--out", str(out)])
    assert code == 0
    ckpt = checkpoints.load(out)
    assert ckpt.name == "dvq" and ckpt.model.config.n_codebooks == 2 and ckpt.model.config.kmeans_init
    assert len(ckpt.metrics["test_perplexity"]) == 2
    assert "test_perplexity" in capsys.readouterr().out
    assert main(["train", "dvq", "--latent-dim", "10", "--n-codebooks", "4", "--quiet",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "divisible" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
