"""The decoder checks on a user's kind of folder: decoded centres that an independent reader
cannot read are recorded and warned about; well-trained ones pass."""

from __future__ import annotations

import warnings

import pytest

from vqviz import health, workflow
from vqviz.train import TrainConfig

from glyphs import glyph_folder


@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    return glyph_folder(tmp_path_factory.mktemp("letters") / "letters")


def _train(folder, out, epochs: int):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ckpt = workflow.train("seq", f"folder:{folder}", out=out, encoder="lae2", k=40,
                              train_config=TrainConfig(epochs=epochs))
    return ckpt, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_blobs_decoded_after_a_short_training_are_recorded_and_warned_about(letters, tmp_path):
    ckpt, said = _train(letters, tmp_path / "short", epochs=2)
    check = ckpt.metrics["decoder_check"]
    assert not check["degenerate"]  # not blank, not all the same: the first check alone passes them
    assert check["decoded"] == 40 and check["recognisable"] < 0.3 < check["recognisable_on_data"]
    message = health.decoder_warning(ckpt.metrics)
    assert message and "say little" in message and f"{check['recognisable']:.0%}" in message
    assert message in said  # the command line says it too


@pytest.mark.slow  # trains a reader and a model: 2 s
def test_well_trained_centres_are_read_as_their_labels(letters, tmp_path):
    ckpt, said = _train(letters, tmp_path / "long", epochs=15)
    check = ckpt.metrics["decoder_check"]
    assert check["recognisable"] >= 0.8, check
    assert health.decoder_warning(ckpt.metrics) is None and not any("say little" in m for m in said)


def test_the_warning_reads_only_well_formed_records():
    ok = {"recognisable": 0.9, "recognisable_on_data": 0.6, "recognisable_ratio": 0.6}
    assert health.decoder_warning({"decoder_check": ok}) is None
    assert "say little" in health.decoder_warning({"decoder_check": {**ok, "recognisable": 0.2}})
    for bad in ("0.2", None, True, [0.2]):  # a hand-edited meta.json: no warning, and no crash
        assert health.decoder_warning({"decoder_check": {**ok, "recognisable": bad}}) is None
    assert health.decoder_warning({"decoder_check": {}}) is None and health.decoder_warning(None) is None
