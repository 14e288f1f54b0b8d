"""SK-VQ: momentum Sinkhorn-Knopp against a NumPy reference, the gradient penalty,
the constant codebook, the model contract, checkpoints, the command line and digits."""

import math

import numpy as np
import pytest
import torch

from vqviz import checkpoints
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build, names
from vqviz.models.common import gradient_penalty, sinkhorn
from vqviz.models.sinkhorn_vq import SinkhornVQ
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed


def _log_kernel(n=40, k=24, d=5, lam=0.5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z, e = torch.randn(n, d, generator=g, dtype=dtype), torch.randn(k, d, generator=g, dtype=dtype)
    # A skewed cloud: half the samples crowd near one codeword.
    z[: n // 2] = e[0] + 0.3 * z[: n // 2]
    return -lam * torch.cdist(z, e) ** 2


def _numpy_sinkhorn(log_p, n_iters, alpha=None, momentum=0.0):
    """Reference in float64 and linear space: Cuturi's scaling with a moving average.

    Rows target 1, columns N / K; alpha is set to geometric mean 1 before each average,
    and the average is geometric, as the implementation does.
    """
    p = np.exp(np.asarray(log_p, dtype=np.float64))
    n, k = p.shape
    a = np.ones(k) if alpha is None else np.asarray(alpha, dtype=np.float64)
    b = 1.0 / (p @ a)
    for _ in range(n_iters):
        new = (n / k) / (p.T @ b)
        new = new / np.exp(np.log(new).mean())
        a = new ** (1 - momentum) * a**momentum
        b = (1.0 / (p @ a)) ** (1 - momentum) * b**momentum
    return b[:, None] * p * a[None, :], a, b


def test_registered_and_bad_config():
    assert "skvq" in names()
    model = build("skvq")
    assert isinstance(model, SinkhornVQ) and model.config.encoder == "cnn"
    for bad, message in [(dict(quantizer="kmeans"), "quantizer"), (dict(momentum=1.0), "momentum"),
                         (dict(quantizer="none", gradient_penalty=1.0), "needs a codebook"),
                         (dict(sinkhorn_lambda=0.0), "sinkhorn_lambda"), (dict(encoder="resnet"), "encoder"),
                         (dict(gp_sigma=0.0), "gp_sigma"), (dict(codebook_size=1), "codebook_size")]:
        with pytest.raises(ConfigError, match=message):
            build("skvq", **bad)


def test_sinkhorn_reaches_uniform_marginals_without_momentum():
    log_p = _log_kernel(dtype=torch.float32)
    n, k = log_p.shape
    plan, log_alpha, log_beta = sinkhorn(log_p, 300)
    assert plan.shape == (n, k) and log_alpha.shape == (k,) and log_beta.shape == (n,)
    # plan / N is a transport plan with marginals 1/N (rows) and 1/K (columns).
    np.testing.assert_allclose((plan / n).sum(1).numpy(), 1 / n, rtol=1e-3)
    np.testing.assert_allclose((plan / n).sum(0).numpy(), 1 / k, rtol=1e-3)
    # ... unlike nearest assignment, which sends half the samples to codeword 0.
    assert (log_p.argmax(1) == 0).sum() >= n // 2
    assert torch.bincount(plan.argmax(1), minlength=k).max() <= 3 * n / k


@pytest.mark.parametrize("n_iters", [1, 4, 200])
def test_sinkhorn_matches_numpy_reference(n_iters):
    log_p = _log_kernel()
    plan, log_alpha, _ = sinkhorn(log_p, n_iters)
    ref, ref_alpha, _ = _numpy_sinkhorn(log_p.numpy(), n_iters)
    # The row shift by the minimum distance is absorbed by beta: the plans agree.
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(log_alpha.exp().numpy(), ref_alpha, rtol=1e-9)


def test_momentum_sinkhorn_matches_numpy_reference_across_batches():
    alpha = torch.zeros(24, dtype=torch.float64)
    ref_alpha = np.ones(24)
    for seed in range(5):  # five batches, the running alpha carried from one to the next
        log_p = _log_kernel(seed=seed)
        plan, alpha, _ = sinkhorn(log_p, 3, alpha, momentum=0.9)
        shifted = log_p - log_p.max(1, keepdim=True).values
        ref, ref_alpha, _ = _numpy_sinkhorn(shifted.numpy(), 3, ref_alpha, momentum=0.9)
        np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(alpha.exp().numpy(), ref_alpha, rtol=1e-9)
    # An explicit beta-bar is used as given (the paper's beta_{t-1}).
    plan_b, _, _ = sinkhorn(log_p, 1, alpha, torch.zeros(1, dtype=log_p.dtype), momentum=0.5)
    assert not torch.allclose(plan_b, sinkhorn(log_p, 1, alpha, momentum=0.5)[0])


def test_sinkhorn_is_finite_for_large_lambda_and_distances():
    g = torch.Generator().manual_seed(0)
    d = 1e3 + 10 * torch.rand(64, 32, generator=g)  # squared distances of 1e3
    plan, log_alpha, log_beta = sinkhorn(-100.0 * d, 50)  # exp(-1e5) underflows in linear space
    assert torch.isfinite(plan).all() and torch.isfinite(log_alpha).all() and torch.isfinite(log_beta).all()
    torch.testing.assert_close(plan.sum(1), torch.ones(64))  # rows are exact after the last update
    assert torch.isfinite(sinkhorn(-100.0 * d, 5, log_alpha, momentum=0.999)[0]).all()
    # The same through the model's training path, thousands (squared) away from every codeword.
    set_seed(0)
    model = build("skvq", latent_dim=8, codebook_size=16, sinkhorn_lambda=100.0).train()
    out = model.quantize(30 * torch.randn(32, 8))
    assert torch.isfinite(out.probs).all() and torch.isfinite(model.log_alpha).all()
    assert torch.isfinite(out.loss) and 0 <= out.indices.min() and out.indices.max() < 16


def test_gradient_penalty_finite_on_a_codeword_and_matches_formula():
    torch.manual_seed(0)
    codebook = torch.randn(16, 8, dtype=torch.float64)
    z = codebook[:5].clone().requires_grad_(True)  # exactly on codewords
    z.data[4] += 0.2  # and one off
    sigma = 0.7
    penalty = gradient_penalty(z, codebook, sigma)
    penalty.backward()
    assert torch.isfinite(penalty) and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    # eq. (9) by hand: grad C = -sum_k C_k (z - e_k) / (d sigma^2), C_k = exp(-||z - e_k||^2 / (2 d sigma^2)).
    zz, e = z.detach().numpy(), codebook.numpy()
    diff = zz[:, None, :] - e[None]
    ck = np.exp(-(diff**2).sum(2) / (2 * 8 * sigma**2))
    grad = -(ck[:, :, None] * diff).sum(1) / (8 * sigma**2)
    expected = (((grad**2).sum(1) - 1) ** 2).mean()
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-10)


def test_constant_embedding_never_changes():
    set_seed(0)
    model = build("skvq", latent_dim=8, codebook_size=16, constant_embedding=True)
    assert "codebook" in dict(model.named_buffers()) and "codebook" not in dict(model.named_parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(32, 1, 8, 8), torch.arange(32) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    model.training_loss(x, y)["loss"].backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(after["codebook"], before["codebook"])
    assert not torch.equal(after["encoder.0.weight"], before["encoder.0.weight"])
    assert not torch.equal(after["log_alpha"], before["log_alpha"])  # the Sinkhorn momentum moved
    # A learnt codebook does move under the same step.
    set_seed(0)
    learnt = build("skvq", latent_dim=8, codebook_size=16)
    start = learnt.codebook.detach().clone()
    opt = torch.optim.Adam(learnt.parameters(), lr=1e-2)
    learnt.train()
    learnt.training_loss(x, y)["loss"].backward()
    opt.step()
    assert not torch.equal(learnt.codebook.detach(), start)


def test_quantize_train_is_sinkhorn_eval_is_nearest():
    set_seed(0)
    model = build("skvq", latent_dim=8, codebook_size=16, sinkhorn_lambda=0.5, momentum=0.0, sinkhorn_iters=50)
    z = torch.randn(64, 8)
    z[:48] = model.codebook[3].detach() + 0.1 * z[:48]  # most samples crowd one codeword
    model.eval()
    out = model.quantize(z)
    nearest = torch.cdist(z, model.codebook.detach()).argmin(1)
    assert torch.equal(out.indices, nearest)
    torch.testing.assert_close(out.probs, torch.nn.functional.one_hot(nearest, 16).float())
    assert torch.equal(model.log_alpha, torch.zeros(16))  # evaluation leaves the state alone
    model.train()
    out = model.quantize(z)
    d = torch.cdist(z, model.codebook.detach()) ** 2
    # The row argmax of the plan is argmax_k (-lambda d + log alpha-bar), with the updated alpha.
    assert torch.equal(out.indices, (-0.5 * d + model.log_alpha).argmax(1))
    assert (out.indices == 3).sum() < (nearest == 3).sum()  # Sinkhorn spreads the crowd
    torch.testing.assert_close(out.probs.sum(1), torch.ones(64))


def test_shapes_and_contract():
    set_seed(0)
    model = build("skvq", in_shape=(3, 7, 9), latent_dim=8, codebook_size=16).eval()
    x = torch.rand(5, 3, 7, 9)
    z = model.encode(x)
    out = model.quantize(z)
    assert z.shape == (5, 8) and out.quantized.shape == (5, 8) and out.indices.shape == (5,)
    assert out.probs.shape == (5, 16) and out.loss.shape == ()
    torch.testing.assert_close(model.codes(out.indices), out.quantized)
    assert model.decode(z).shape == (5, 3, 7, 9)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape and 0 <= x_hat.min() and x_hat.max() <= 1
    torch.testing.assert_close(model.soft_probs(z).sum(1), torch.ones(5))
    assert model.predict(x).shape == (5,)
    plain = build("skvq", quantizer="none", latent_dim=8)
    assert not plain.has_quantizer and model.has_quantizer
    with pytest.raises(ConfigError, match="no codebook"):
        plain.quantize(torch.randn(2, 8))


def test_checkpoint_round_trip_keeps_momentum(tmp_path, digits):
    train, _ = digits
    set_seed(0)
    model = build("skvq", latent_dim=8, codebook_size=16, momentum=0.9, gradient_penalty=0.1, decoder_epochs=1)
    model.fit(train, None, Trainer(TrainConfig(epochs=1)))
    assert model.log_alpha.abs().sum() > 0
    ck = checkpoints.load(checkpoints.save(model, tmp_path / "ck"))
    assert torch.equal(ck.model.log_alpha, model.log_alpha)
    for (k, a), b in zip(model.state_dict().items(), ck.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.as_tensor(np.array(train.images[:20]))
    torch.testing.assert_close(ck.model.reconstruct(x), model.reconstruct(x))
    assert torch.equal(ck.model.quantize(ck.model.encode(x)).indices, model.quantize(model.encode(x)).indices)


def test_same_seed_same_model(digits):
    train, _ = digits
    runs = []
    for _ in range(2):
        set_seed(3)
        model = build("skvq", latent_dim=8, codebook_size=16, momentum=0.9, decoder_epochs=1)
        model.fit(train, None, Trainer(TrainConfig(epochs=1, seed=3)))
        runs.append(model.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_command_line_train(tmp_path):
    out = tmp_path / "skvq"
    assert main(["train", "skvq", "--epochs", "1", "--latent-dim", "8", "--codebook-size", "16",
                 "--constant-embedding", "--gradient-penalty", "0.1", "--quiet", "--out", str(out)]) == 0
    ck = checkpoints.load(out)
    assert ck.name == "skvq" and ck.model.config.constant_embedding
    for key in ("test_accuracy", "test_usage_entropy", "test_mse_per_pixel"):
        assert key in ck.metrics


@pytest.mark.slow  # trains to an accuracy on the digits: 4 s
def test_digits_accuracy_and_sinkhorn_uses_more_codes(digits):
    """Same tiny setting (constant codebook, K = 256): SK-VQ spreads the codes, both classify well."""
    train, test = digits
    results = {}
    for quantizer in ("nearest", "sinkhorn"):
        set_seed(0)
        model = build("skvq", quantizer=quantizer, constant_embedding=True, beta=1.0, momentum=0.9,
                      decoder_epochs=2)
        results[quantizer] = model.fit(train, test, Trainer(TrainConfig(epochs=12, batch_size=64)))
    for m in results.values():
        assert m["test_accuracy"] >= 0.93, m
        assert 0 < m["test_mse_per_pixel"] < 0.08
        assert 0 < m["test_usage_entropy"] <= math.log(256)
    assert results["sinkhorn"]["test_usage_entropy"] > results["nearest"]["test_usage_entropy"] + 1.0, results


# ----- the paper's map of codes -----
def test_spatial_map_of_codes_shapes_and_contract():
    set_seed(0)
    model = build("skvq", in_shape=(1, 28, 28), n_classes=3, latent_dim=8, codebook_size=16, spatial=True).eval()
    assert model.map_shape == (7, 7) and model.n_positions == 49
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
        code_map = model.code_map(x)
        soft = model.soft_probs(z)
        x_hat = model.reconstruct(x)
    assert z.shape == (5, 49 * 8) and q.quantized.shape == (5, 49 * 8)
    assert q.indices.shape == (5, 49) and q.probs.shape == (5, 49, 16) and soft.shape == (5, 49, 16)
    assert code_map.shape == (5, 7, 7) and torch.equal(code_map.reshape(5, 49), q.indices)
    torch.testing.assert_close(model.codes(q.indices), q.quantized)  # indices -> codes round trip
    # Position p of image i is quantized alone: its nearest codeword.
    positions = z.reshape(5, 49, 8)
    nearest = torch.cdist(positions.reshape(-1, 8), model.codebook).argmin(1).reshape(5, 49)
    assert torch.equal(q.indices, nearest)
    assert x_hat.shape == (5, 1, 28, 28) and 0 <= x_hat.min() and x_hat.max() <= 1
    assert model.predict(x).shape == (5,)
    with pytest.raises(ConfigError, match="spatial"):
        build("skvq", encoder="mlp", spatial=True)


@pytest.mark.slow  # trains a map of codes: 1.5 s
def test_spatial_training_balances_the_codes_and_reports_both_assignments(digits):
    train, test = digits
    set_seed(0)
    model = build("skvq", latent_dim=16, codebook_size=32, spatial=True, momentum=0.9, decoder_epochs=1)
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=8, batch_size=64)))
    assert metrics["test_accuracy"] > 0.85  # 0.93 after 10 epochs
    for key in ("test_usage_entropy", "test_usage_entropy_sinkhorn"):
        assert isinstance(metrics[key], float) and 0.5 * math.log(32) < metrics[key] <= math.log(32) + 1e-9, key
    assert metrics["test_perplexity_sinkhorn"] == pytest.approx(math.exp(metrics["test_usage_entropy_sinkhorn"]))
    assert metrics["test_dead_codes"] < 32 and "decoder_seconds" in metrics


def test_blank_positions_are_those_that_see_only_zeros_and_usage_is_also_counted_without_them():
    from vqviz import data, metrics

    set_seed(0)
    model = build("skvq", in_shape=(1, 28, 28), n_classes=2, latent_dim=8, codebook_size=16, spatial=True).eval()
    x = np.zeros((3, 1, 28, 28), np.float32)
    x[1, 0, :4, :4] = 1.0  # a bright top-left corner
    x[2] = np.random.default_rng(0).random((1, 28, 28))  # content everywhere
    blank = model.blank_positions(x).reshape(3, 7, 7)
    assert blank[0].all() and not blank[2].any()
    assert not blank[1, 0, 0] and blank[1, 6, 6]  # the corner's position sees it, the far corner does not
    assert 0 < (~blank[1]).sum() < 49
    # The reference in float64: a position is blank where its latent is the all-zero image's, and only there
    # (the corner reaches positions (0..1, 0..1): 3x3 convolutions of stride 2, twice).
    with torch.no_grad():
        double = model.double()
        z = double.encode(torch.as_tensor(x, dtype=torch.float64)).reshape(3, 49, -1)
        z0 = double.encode(torch.zeros(1, 1, 28, 28, dtype=torch.float64)).reshape(1, 49, -1)
        model.float()
    np.testing.assert_array_equal(blank.reshape(3, 49), (z - z0).abs().amax(-1).numpy() == 0)
    assert (~blank[1]).sum() == 4

    split = data.Dataset("toy", "test", x, np.array([0, 1, 1]), ["a", "b"])
    m = model.evaluate(split)
    assert m["test_blank_share"] == pytest.approx(blank.mean())
    idx = model.quantize_array(x).indices.reshape(-1)
    expected = metrics.codebook_usage(idx[~blank.reshape(-1)], 16)["usage_entropy"]
    assert m["test_usage_entropy_content"] == pytest.approx(expected)
    assert "test_usage_entropy_sinkhorn_content" in model.sinkhorn_usage(split)
    with pytest.raises(ConfigError, match="map of codes"):
        build("skvq", in_shape=(1, 28, 28), n_classes=2).blank_positions(x)
