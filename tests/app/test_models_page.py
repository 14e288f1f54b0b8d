"""The Models page: the list, training from the browser, uploads, and removing an unusable checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from driving import ROOT, SHIPPED, array, figures, maps, open_app, zipped

from vqviz_app import catalog
from vqviz import checkpoints, workflow
from vqviz.errors import CheckpointError, TrainingError
from vqviz.train import TrainConfig


def _wait_for_training(at, seconds=60):
    at.session_state["train_job"].wait(seconds)
    at.run()
    at.run()  # the run that the end of training asks for
    return at


def test_training_from_the_browser_adds_a_checkpoint_to_the_picker():
    at = open_app("models")
    assert at.title[0].value == "Models"
    assert list(at.dataframe[0].value["checkpoint"]) == list(SHIPPED)
    at.number_input(key="t_epochs").set_value(1)
    at.selectbox(key="t_encoder_seq").set_value("lae2")
    at.number_input(key="t_latent_seq").set_value(16)
    at.number_input(key="t_k_seq").set_value(10)
    at.button[0].click().run()
    assert not at.exception
    _wait_for_training(at)
    assert not at.exception and not at.error
    assert at.session_state["train_job"].state == "done"
    assert any("saved to" in s.value for s in at.success)
    new = at.session_state["train_job"].path
    assert new.parent == catalog.user_dir()
    assert at.selectbox(key="checkpoint").value == str(new)  # listed in the picker, and picked
    assert f"{new.name} · seq · digits" in at.selectbox(key="checkpoint").options
    assert checkpoints.load(new).meta["config"]["latent_dim"] == 16
    # SEQ's k-means codebook is fitted once, after its encoder stage: its history is one point
    assert any(c.value.startswith("Its codebook is fitted once, at its kmeans stage") for c in at.caption)


def test_a_diverging_run_shows_an_error_and_the_app_goes_on(monkeypatch):
    def diverge(*args, **kwargs):
        raise TrainingError("the loss became nan in stage 'encoder' at epoch 1, step 3; training stopped")

    monkeypatch.setattr(workflow, "train", diverge)
    at = open_app("models")
    at.button[0].click().run()
    _wait_for_training(at)
    assert not at.exception
    assert "the loss became nan" in at.error[0].value
    at.switch_page("vqviz_app/pages/latent_map.py").run()
    assert not at.exception and not at.error and maps(at)


def _checkpoint_zip(folder="seq-digits-lae2", prefix="my-model/") -> bytes:
    src = ROOT / "vqviz_app" / "checkpoints" / folder
    return zipped({prefix + p.name: p.read_bytes() for p in src.iterdir()})


def test_an_uploaded_checkpoint_is_installed_and_picked():
    at = open_app("models")
    at.file_uploader(key="upload").upload("my-model.zip", _checkpoint_zip(), "application/zip").run()
    assert not at.exception and not at.error
    assert any("Added **my-model**" in s.value for s in at.success)
    installed = Path(catalog.user_dir()) / "uploads" / "my-model"
    assert at.selectbox(key="checkpoint").value == str(installed)
    assert checkpoints.load(installed).name == "seq"


@pytest.mark.parametrize("name, blob, message", [
    ("noise.zip", b"\x00" * 100, "not a .zip file"),
    ("model.pt", b"\x80\x04\x95" + b"\x00" * 50, "pickle"),
    ("torch.zip", zipped({"archive/data.pkl": b"\x80\x04", "archive/version": b"3"}), "never unpickles"),
    ("slip.zip", zipped({"../../evil/meta.json": b"{}"}), "unsafe path"),
    ("empty.zip", zipped({"readme.txt": b"hi"}), "no meta.json"),
    ("broken.zip", zipped({"m/meta.json": (ROOT / "vqviz_app/checkpoints/seq-digits-lae2/meta.json").read_bytes(),
                         "m/" + next((ROOT / "vqviz_app/checkpoints/seq-digits-lae2").glob("weights-*")).name: b"x" * 100}),
     "broken.zip: the weights file"),
])
def test_a_bad_upload_is_refused_with_a_message(name, blob, message, tmp_path):
    at = open_app("models")
    at.file_uploader(key="upload").upload(name, blob).run()
    assert not at.exception
    assert message in at.error[0].value
    assert ".upload-" not in at.error[0].value and str(catalog.user_dir()) not in at.error[0].value
    assert not (catalog.user_dir() / "uploads").exists() or not any((catalog.user_dir() / "uploads").iterdir())


def test_the_stop_button_ends_a_run_and_saves_nothing():
    at = open_app("models")
    at.number_input(key="t_epochs").set_value(500)
    at.button[0].click().run()
    stop = next(b for b in at.button if b.label == "Stop")
    stop.click().run()
    _wait_for_training(at)
    assert not at.exception and at.session_state["train_job"].state == "stopped"
    assert "nothing was saved" in at.warning[0].value
    assert not checkpoints.find(catalog.user_dir())


def test_without_any_checkpoint_every_page_points_to_the_models_page(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "BUNDLED_DIR", tmp_path / "none")
    at = open_app()
    assert "Train one on the **Models** page" in at.info[0].value
    for page in ("cluster_styles", "style_mixer", "metrics", "models"):
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
        assert not at.exception and not at.error




def test_install_checkpoint_zip_is_atomic_and_capped(tmp_path):
    blob = _checkpoint_zip(prefix="")
    first = checkpoints.install_checkpoint_zip(blob, tmp_path, "model.zip")
    second = checkpoints.install_checkpoint_zip(blob, tmp_path, "model.zip")
    assert (first.name, second.name) == ("model", "model-2")
    assert checkpoints.load(second).name == "seq"
    with pytest.raises(CheckpointError, match="the limit is"):
        checkpoints.install_checkpoint_zip(blob, tmp_path, max_bytes=1000)
    with pytest.raises(CheckpointError, match="unpacks to more than"):
        checkpoints.install_checkpoint_zip(blob, tmp_path, max_unpacked=1000)
    src = ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2"
    weights = next(src.glob("weights-*"))
    broken = zipped({"meta.json": (src / "meta.json").read_bytes(), weights.name: weights.read_bytes()[:100]})
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        checkpoints.install_checkpoint_zip(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model-2"]  # nothing else left behind




def test_the_models_table_leaves_missing_values_blank_not_none(tmp_path, monkeypatch):
    # an autoencoder beside the shipped checkpoints: it has no codebook, so no usage figures
    workflow.train("ae", "digits", out=tmp_path / "ae", train_config=TrainConfig(epochs=1, seed=0), encoder="lae2",
                   latent_dim=8)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path))
    at = open_app("models")
    table = at.dataframe[0]
    assert table.proto.placeholder == "–"  # shown for a checkpoint without, e.g., a perplexity
    assert table.value.isna().any().any()  # and there are such cells


def test_the_picked_checkpoint_shows_its_codebook_over_training(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    vq = workflow.train("vqvae", "digits", out=mine / "vq", train_config=TrainConfig(epochs=3, seed=0),
                        encoder="lae2", latent_dim=8, codebook_size=16)
    ae = workflow.train("ae", "digits", out=mine / "ae", train_config=TrainConfig(epochs=1, seed=0), encoder="lae2",
                        latent_dim=8)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(mine))
    at = open_app("models")
    # The shipped checkpoints were made before codebook use was recorded: one line, no chart.
    assert "Codebook over training: seq-digits-cae4" in [s.value for s in at.subheader]
    assert any(c.value.startswith("No codebook history: seq-digits-cae4") for c in at.caption) and not figures(at)
    at.selectbox(key="checkpoint").set_value(str(vq.path)).run()
    assert not at.exception and not at.error
    (fig,) = figures(at)
    h = vq.metrics["codebook_history"]
    perplexity, dead = fig["data"]
    assert array(perplexity["y"]) == pytest.approx(h["perplexity"]) and array(dead["y"]).tolist() == h["dead_codes"]
    assert len(h["epoch"]) == 3
    assert any("on a fixed sample of 360 test images" in c.value for c in at.caption)
    at.selectbox(key="checkpoint").set_value(str(ae.path)).run()
    assert not at.exception and not figures(at)
    assert any(c.value == "mine/ae has no codebook, so no codebook use over training." for c in at.caption)
