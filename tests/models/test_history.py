"""Codebook use over training (vqviz/models/history.py): one entry per epoch, equal to the usage of
``Model.assign`` on the same held-out sample, a collapse that dead-code restarts prevent, and the
history kept in the checkpoint. Every family's own history is checked in test_contract.py."""

import numpy as np
import pytest
import torch

from vqviz import checkpoints, metrics
from vqviz.models import build
from vqviz.models.history import sample_rows
from vqviz.train import EndStage, Trainer, TrainConfig
from vqviz.utils import set_seed

#: A VQ-VAE on the digits that trains in well under a second an epoch.
SMALL = dict(encoder="lae2", latent_dim=8, codebook_size=32)


def _fit(digits, epochs=3, callbacks=None, history_sample=2000, **settings):
    train, test = digits
    set_seed(0)
    model = build("vqvae", in_shape=train.shape, **{**SMALL, **settings})
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=64, seed=0, history_sample=history_sample), callbacks)
    return model, model.fit(train, test, trainer), trainer


def test_one_entry_per_epoch_equal_to_the_usage_of_assign_on_the_same_sample(digits):
    test = digits[1]
    model, out, _ = _fit(digits, epochs=3, history_sample=100)
    h = out["codebook_history"]
    assert (h["epoch"], h["stage"]) == ([1, 2, 3], ["train"] * 3)
    assert (h["n_codes"], h["sample"], h["split"]) == (32, 100, "test")
    # The last entry is a recomputation after training: the same sample, the same assignment.
    rows = sample_rows(len(test.images), 100, seed=0)
    assert len(rows) == len(np.unique(rows)) == 100
    usage = metrics.codebook_usage(model.assign(test.images[rows]).indices, model.n_codes)
    assert h["usage_entropy"][-1] == pytest.approx(usage["usage_entropy"], abs=1e-12)
    assert h["perplexity"][-1] == pytest.approx(usage["perplexity"], abs=1e-12)
    assert h["dead_codes"][-1] == usage["dead_codes"] and isinstance(h["dead_codes"][-1], int)
    # A sample as large as the split is the split: the whole test set, as evaluate scores it.
    _, whole, _ = _fit(digits, epochs=1)
    assert whole["codebook_history"]["sample"] == len(test.images)
    assert whole["codebook_history"]["perplexity"][-1] == pytest.approx(whole["test_perplexity"], abs=1e-12)


def test_recording_changes_nothing_in_training_and_leaves_the_modes_as_they_were(digits):
    train, test = digits
    set_seed(0)
    model, modes = build("vqvae", in_shape=train.shape, **SMALL), []

    def seen(progress):
        modes.append(all(m.training for m in model.modules()))

    trainer = Trainer(TrainConfig(epochs=2, batch_size=64, seed=0), {"on_epoch": seen})
    out = model.fit(train, test, trainer)
    off, none, off_trainer = _fit(digits, epochs=2, history_sample=0)
    assert "codebook_history" in out and "codebook_history" not in none
    assert trainer.history == off_trainer.history  # the same losses, epoch by epoch
    for a, b in zip(model.state_dict().values(), off.state_dict().values()):
        assert torch.equal(a, b)
    assert modes == [True, True]  # the next callback finds the model in train mode, as the trainer left it
    assert trainer.callbacks["on_epoch"] == [seen]  # the history's callback is gone after the fit


def test_a_stage_ended_by_a_callback_still_records_its_last_epoch(digits):
    def end(progress):
        if progress.epoch == 2:
            raise EndStage

    _, out, _ = _fit(digits, epochs=5, callbacks={"on_epoch": end})
    assert out["codebook_history"]["epoch"] == [1, 2]


def test_a_collapsing_codebook_shows_dead_codes_that_restarts_prevent(digits):
    """PyTorch's usual codebook start, U(-1/K, 1/K), sits far inside the encoder's outputs: one codeword
    is nearest to everything and the others are never used. Restarting codes whose running use falls
    below one a batch (``dead_code_threshold``) moves them to encoder outputs. On seeds 0-2 the plain
    run ends with 26-27 of 32 codes dead, the restarted one with 3."""
    _, plain, _ = _fit(digits, epochs=5)
    _, restarted, _ = _fit(digits, epochs=5, dead_code_threshold=1.0)
    dead, revived = plain["codebook_history"]["dead_codes"], restarted["codebook_history"]["dead_codes"]
    assert dead[0] >= 30 and dead[-1] >= 16, dead  # collapsed from the start, and it stays so
    assert all(r < d for r, d in zip(revived, dead)), (revived, dead)
    assert revived[-1] <= 8, revived
    assert restarted["codebook_history"]["perplexity"][-1] > 2 * plain["codebook_history"]["perplexity"][-1]


def test_the_history_round_trips_through_the_checkpoint(digits, tmp_path):
    model, out, _ = _fit(digits, epochs=2)
    folder = checkpoints.save(model, tmp_path / "ck", dataset="digits", metrics=out)
    assert checkpoints.load(folder).metrics["codebook_history"] == out["codebook_history"]
    assert checkpoints.read_meta(folder)["metrics"]["codebook_history"] == out["codebook_history"]


def test_dvq_records_each_codebook(digits):
    train, test = digits
    set_seed(0)
    model = build("dvq", in_shape=train.shape, encoder="lae2", latent_dim=8, codebook_size=8, n_codebooks=2)
    h = model.fit(train, test, Trainer(TrainConfig(epochs=2, batch_size=64)))["codebook_history"]
    assert [len(v) for v in h["perplexity"]] == [2, 2] and [len(v) for v in h["dead_codes"]] == [2, 2]
    usage = metrics.codebook_usage(model.assign(test.images).indices, 8)  # (N, 2): lists of 2
    assert h["perplexity"][-1] == pytest.approx(usage["perplexity"]) and h["dead_codes"][-1] == usage["dead_codes"]
