"""The vqlib family: vector-quantize-pytorch's quantizers (VectorQuantize, ResidualVQ, FSQ, LFQ) behind the
model contract, saved and loaded as every checkpoint, on the same codebook statistics as ours."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints, data
from vqviz.cli import main
from vqviz.errors import ConfigError
from vqviz.models import build
from vqviz.models.vqlib import VQLib
from vqviz.train import TrainConfig, Trainer
from vqviz.utils import set_seed

#: Each kind of quantizer, with what its indices look like: (settings, L codebooks side by side, K).
KINDS = {"vq": ({"quantizer": "vq", "kmeans_init": True}, 1, 8),
         "vq heads": ({"quantizer": "vq", "heads": 4}, 4, 8),
         "rvq": ({"quantizer": "rvq", "n_quantizers": 3, "kmeans_init": True}, 3, 8),
         "fsq": ({"quantizer": "fsq", "levels": (3, 5)}, 1, 15),
         "lfq": ({"quantizer": "lfq", "codebook_size": 16}, 1, 16)}


def model_of(settings: dict, shape=(1, 8, 8)) -> VQLib:
    set_seed(0)
    return build("vqlib", in_shape=shape, latent_dim=16, **{"codebook_size": 8, **settings})


@pytest.fixture(scope="module")
def trained(digits):
    """Each kind trained one epoch on 256 of the digits, in eval mode."""
    train, test = digits
    train = data.Dataset(train.name, train.split, train.images[:256], train.labels[:256], train.classes)
    out = {}
    for name, (settings, _, _) in KINDS.items():
        model = model_of(settings)
        metrics = model.fit(train, test, Trainer(TrainConfig(epochs=1, batch_size=64)))
        out[name] = model.eval(), metrics
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_indices_probs_and_codes_of_each_quantizer(kind, trained, digits):
    model, metrics = trained[kind]
    _, n_codebooks, k = KINDS[kind]
    x = torch.as_tensor(np.array(digits[1].images[:32]))
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
        back = model.codes(q.indices)
    want = (32,) if n_codebooks == 1 else (32, n_codebooks)
    assert tuple(q.indices.shape) == want and tuple(q.probs.shape) == (*want, k)
    assert model.n_codes == k and model.n_codebooks == n_codebooks
    assert int(q.indices.min()) >= 0 and int(q.indices.max()) < k
    torch.testing.assert_close(back, q.quantized, atol=1e-5, rtol=1e-5)  # indices go back to the quantized latents
    assert torch.equal(q.probs.argmax(-1), q.indices)
    # The codebook statistics are the seeds' own: one figure per codebook for tuples of codes.
    usage = metrics["test_usage_entropy"]
    assert (len(usage) == n_codebooks) if n_codebooks > 1 else isinstance(usage, float)
    assert metrics["codebook_history"]["epoch"] == [1]


def test_vectorquantize_picks_the_nearest_codeword(trained, digits):
    model, _ = trained["vq"]
    z = model.encode_array(digits[1].images[:64])
    codebook = model.quantizer.codebook.detach().numpy()  # (K, d)
    want = ((z[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1)  # (N, K) squared distances -> (N,)
    got = model.quantize(torch.as_tensor(z)).indices.numpy()
    assert np.array_equal(got, want)


def test_quantize_never_changes_the_codebook_but_training_does(digits):
    model = model_of({"quantizer": "vq", "kmeans_init": True}).train()
    x = torch.as_tensor(np.array(digits[0].images[:64]))
    state = lambda: {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    before = state()
    model.training_loss(x, torch.zeros(64))  # k-means initialisation, then an EMA step
    after = state()
    assert not torch.equal(before["_codebook.embed"], after["_codebook.embed"])
    model.quantize(model.encode(x))  # in training mode, and still no update
    assert all(torch.equal(v, model.quantizer.state_dict()[k]) for k, v in after.items())
    assert model.quantizer.training  # the module's mode is given back


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip(kind, trained, digits, tmp_path):
    model, metrics = trained[kind]
    path = checkpoints.save(model, tmp_path / kind.replace(" ", "-"), dataset="digits", metrics=metrics)
    again = checkpoints.load(path).model
    x = torch.as_tensor(np.array(digits[1].images[:16]))
    with torch.no_grad():
        assert torch.equal(again.quantize(again.encode(x)).indices, model.quantize(model.encode(x)).indices)
        torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x))
    assert again.config == model.config


@pytest.mark.slow  # trains twice on the digits: 3 s
def test_restarting_dead_codes_keeps_more_of_the_codebook_in_use(digits):
    """The library's dead-code restarts, as its README promises: more codes in use than without."""
    train, test = digits
    used = {}
    for threshold in (0.0, 2.0):
        model = model_of({"quantizer": "vq", "codebook_size": 32, "dead_code_threshold": threshold})
        metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))
        used[threshold] = 32 - metrics["test_dead_codes"]
    assert used[2.0] > used[0.0] + 4, used


@pytest.mark.parametrize("settings, match", [
    ({"quantizer": "pq"}, "quantizer must be one of"),
    ({"quantizer": "lfq", "codebook_size": 12}, "power of two"),
    ({"quantizer": "fsq", "levels": (1, 5)}, "levels must be at least 2"),
    ({"quantizer": "rvq", "heads": 2}, "heads is vq's"),
    ({"heads": 3}, "divisible by heads 3"),
    ({"cosine": True, "learnable_codebook": True}, "cannot go together"),
    ({"codebook_size": 2**17}, "codebook_size must be in"),
    ({"ema_decay": 1.5}, "ema_decay"),
])
def test_bad_settings_are_refused_by_name(settings, match):
    with pytest.raises(ConfigError, match=match):
        build("vqlib", **{"latent_dim": 16, **settings})


def test_the_command_line_trains_a_residual_vq(tmp_path):
    out = tmp_path / "rvq"
    assert main(["train", "vqlib", "--epochs", "1", "--latent-dim", "8", "--quantizer", "rvq", "--n-quantizers", "2",
                 "--codebook-size", "8", "--quiet", "--out", str(out)]) == 0
    ckpt = checkpoints.load(out)
    assert ckpt.name == "vqlib" and ckpt.model.config.quantizer == "rvq" and ckpt.model.n_codebooks == 2


@pytest.mark.slow  # trains on the digits: 2 s
def test_lfq_parts_the_digits_over_its_codes(digits):
    """LFQ takes the signs of standardised features: the digits spread over its codes from the first epoch
    (without the standardisation, every image stayed on one code)."""
    train, test = digits
    model = model_of({"quantizer": "lfq", "codebook_size": 16})
    metrics = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))
    assert metrics["test_perplexity"] > 4, metrics["test_perplexity"]
    x = torch.as_tensor(np.array(test.images[:8]))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.encode(x), model.encode(x))  # the running statistics in evaluation
