"""The checkpoints that ship in ``vqviz_app/checkpoints/``: each loads, and the real-data ones
score what their ``meta.json`` says on the real test split."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vqviz import checkpoints, data, health, map_store
from vqviz.models import build

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (ROOT / "vqviz_app" / "checkpoints").iterdir() if (p / "meta.json").is_file())
REAL = [n for n in SHIPPED if "mnist" in n]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ship_checkpoints  # noqa: E402


def test_the_real_data_checkpoints_are_listed_by_the_script_that_makes_them():
    assert set(REAL) == set(ship_checkpoints.SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_checkpoint_loads(name):
    folder = ROOT / "vqviz_app" / "checkpoints" / name
    ckpt = checkpoints.load(folder)
    assert checkpoints.summary(ckpt.meta)["dataset"] == ckpt.dataset
    assert ckpt.dataset.replace("-", "") in name.replace("-", "")
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < ship_checkpoints.MAX_MB * 2**20


def test_float16_weights_load_into_the_float32_model(tmp_path):
    torch.manual_seed(0)
    model = build("vqvae", in_shape=(1, 8, 8), n_classes=10, latent_dim=8, codebook_size=16)
    checkpoints.save(model, tmp_path / "half", dataset="digits", weights_dtype=torch.float16)
    checkpoints.save(model, tmp_path / "full", dataset="digits")
    sizes = [sum(f.stat().st_size for f in (tmp_path / k).glob("weights-*")) for k in ("half", "full")]
    assert sizes[0] < 0.6 * sizes[1]
    loaded = checkpoints.load(tmp_path / "half").model
    for (key, want), got in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert got.dtype == want.dtype, key
        torch.testing.assert_close(got, want.half().to(want.dtype), rtol=0, atol=0)


@pytest.mark.parametrize("name", REAL)
def test_a_real_data_checkpoint_scores_what_it_records(name, shared_data):
    family, dataset, _, _, metric = ship_checkpoints.SHIPPED[name]
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    stored = ckpt.metrics["weights_dtype"]
    score = ship_checkpoints._score(ckpt.model.eval(), data.load(dataset, "test"), metric)
    assert score == pytest.approx(ckpt.metrics[f"{metric}_{stored}"], abs=1e-4)
    assert ship_checkpoints.meets_floor(name, score), (score, ship_checkpoints.FLOORS[name])


@pytest.mark.parametrize("name", SHIPPED)
def test_no_shipped_checkpoint_warns_of_its_decoder(name):
    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / name)
    assert health.decoder_warning(meta["metrics"]) is None


@pytest.mark.parametrize("name", REAL)
def test_a_real_data_checkpoint_draws_recognisable_clusters(name, shared_data):
    """The decoder check, recomputed: an independent reader reads the decoded cluster centres (or,
    without a codebook, the reconstructions) as their labels, nearly as often as the real images."""
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    check = health.check_recognisable(ckpt.model.eval(), data.load(ckpt.dataset, "train"),
                                      data.load(ckpt.dataset, "test"), seed=ckpt.meta.get("seed") or 0)
    # the reader (a logistic regression) may differ in a picture or two between BLAS builds: 0.5 % of 3,000
    assert check["recognisable"] == pytest.approx(ckpt.metrics["decoder_check"]["recognisable"], abs=0.005)
    assert check["recognisable"] >= health.RECOGNISABLE_RATIO * check["recognisable_on_data"], check


def test_sinkhorn_balances_the_codebook_that_plain_vq_leaves_mostly_dead(shared_data):
    test = data.load("fashion-mnist", "test")
    usage = {name: checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name).model.eval().evaluate(test)
             for name in ("skvq-fashion-mnist", "skvq-fashion-mnist-vq")}
    sk, vq = usage["skvq-fashion-mnist"], usage["skvq-fashion-mnist-vq"]
    assert sk["test_usage_entropy"] > vq["test_usage_entropy"] + 1.5  # nats, of ln 256 = 5.55
    assert sk["test_dead_codes"] < vq["test_dead_codes"] / 2


@pytest.mark.parametrize("name", REAL)
def test_a_real_data_checkpoint_carries_its_test_map(name):
    method, params = ship_checkpoints.MAP
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    xy = map_store.read_beside(ckpt.path, ckpt.meta["split_sizes"]["test"], method,
                               checkpoint_sha=ckpt.meta["weights"]["sha256"], dataset=ckpt.dataset, split="test",
                               **params)
    assert xy is not None and xy.shape == (10_000, 2) and np.isfinite(xy).all()


@pytest.mark.parametrize("name", REAL)
def test_the_script_makes_each_real_data_checkpoint_as_it_was_made(name):
    family, dataset, config, train_config, _ = ship_checkpoints.SHIPPED[name]
    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / name)
    assert (meta["model"], meta["dataset"]) == (family, dataset)
    for key, value in config.items():
        assert meta["config"][key] == (list(value) if isinstance(value, tuple) else value), key
    assert (meta["train"]["epochs"], meta["train"]["batch_size"]) == (train_config.epochs, train_config.batch_size)


QUANTIZERS = [pytest.param(n, marks=[] if "digits" in n else [pytest.mark.slow]) for n in SHIPPED
              if "test_assignment_entropy" in checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / n)["metrics"]]


@pytest.mark.parametrize("name", QUANTIZERS)
def test_the_stored_assignment_entropy_is_the_one_the_pages_show(name, request):
    from vqviz import analysis

    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    if ckpt.dataset != "digits":
        request.getfixturevalue("shared_data")
    test = data.load(ckpt.dataset, "test")
    shown = analysis.codebook_stats(ckpt.model, test.images)  # the Assignment entropy page's, and the map's
    assert ckpt.metrics["test_assignment_entropy"] == pytest.approx(float(shown.entropy.mean()), abs=1e-4)
    assert shown.hard == (ckpt.metrics["test_assignment_entropy"] == 0)
