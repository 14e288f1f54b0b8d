"""The Assignment entropy page (the SK-VQ paper's Table 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from driving import ROOT, array, figures, open_app, settled

from vqviz_app import catalog
from vqviz import checkpoints, data, metrics, workflow
from vqviz.train import TrainConfig


def _entropy_metrics(at) -> list[dict[str, str]]:
    """Left's and right's {label: value} of the page's st.metric rows, three each."""
    values = [(m.label, m.value) for m in at.metric]
    return [dict(values[:3]), dict(values[3:6])]


def _expected(name: str, split: str = "test") -> dict[str, str]:
    """The three numbers as the page should print them, from metrics.codebook_usage on the model's own indices."""
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / name)
    q = ckpt.model.quantize_array(data.load("digits", split).images)
    k = q.probs.shape[-1]
    usage = metrics.codebook_usage(q.indices, k)
    return {"Usage entropy": f"{usage['usage_entropy']:.2f} nats", "Perplexity": f"{usage['perplexity']:.1f}",
            "Dead codes": f"{usage['dead_codes']:.3g} of {k}"}


def _pick(at, name: str) -> None:
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / name)).run()
    settled(at)


def _open_on_own(folder: Path, monkeypatch):
    """The page on the checkpoint in ``folder``, listed from its parent folder; settled, with no error."""
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(folder.parent))
    at = open_app("assignment_entropy", settle=True)
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    settled(at)
    assert not at.exception and not at.error
    return at


def test_assignment_entropy_opens_on_a_soft_model_when_the_sidebar_has_a_hard_one(codebooks):
    at = open_app("assignment_entropy", settle=True)
    assert at.title[0].value == "Assignment entropy" and not at.error
    assert Path(at.selectbox(key="checkpoint").value).name == "seq-digits-cae4"  # the sidebar keeps its choice
    # SEQ's k-means quantizer is hard: the page opens on a soft model and says why
    assert any("has no histogram. The page opens on **skvq-digits**" in c.value for c in at.caption)
    assert at.subheader[0].value == "skvq-digits"
    assert Path(at.selectbox(key="entropy_right").value).name == "seq-digits-cae4"  # the sidebar's, beside it
    left, right = _entropy_metrics(at)
    assert left == _expected("skvq-digits") and right == _expected("seq-digits-cae4")
    assert any("Every assignment of this model is hard" in c.value for c in at.caption)  # why SEQ has none
    assert [t["type"] for fig in figures(at) for t in fig["data"]] == ["histogram", "bar", "bar"]
    # a right-hand choice made here is kept
    at.selectbox(key="entropy_right").set_value(str(catalog.BUNDLED_DIR / "vqvae-digits")).run()
    at.run()
    assert Path(at.selectbox(key="entropy_right").value).name == "vqvae-digits"


def test_assignment_entropy_says_why_when_no_model_is_soft():
    at = open_app("assignment_entropy", settle=True)  # only the two SEQ checkpoints: both hard
    assert not at.error
    assert at.subheader[0].value == "seq-digits-cae4"
    assert any("no checkpoint of digits has soft assignments" in c.value for c in at.caption)


def test_assignment_entropy_compares_sk_vq_with_plain_vq(codebooks):
    at = open_app("assignment_entropy", settle=True)
    _pick(at, "skvq-digits")
    assert not at.exception and not at.error
    assert Path(at.selectbox(key="entropy_right").value).name == "skvq-digits-vq"  # its plain-VQ twin
    sk, vq = _entropy_metrics(at)
    assert sk == _expected("skvq-digits") and vq == _expected("skvq-digits-vq")
    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / "skvq-digits")["metrics"]
    assert sk["Perplexity"] == f"{meta['test_perplexity']:.1f}"  # as Model.evaluate counted it when trained
    # Momentum Sinkhorn-Knopp spreads the samples over more codewords than plain VQ.
    assert float(sk["Perplexity"]) > 2 * float(vq["Perplexity"])
    assert int(sk["Dead codes"].split()[0]) < int(vq["Dead codes"].split()[0])
    # Two charts a model: the histogram of soft entropies (both SK-VQs have soft_probs), the sorted usage.
    figs = figures(at)
    assert [[t["type"] for t in f["data"]] for f in figs] == [["histogram"], ["bar"]] * 2
    for hist, bars in (figs[:2], figs[2:]):
        assert len(array(hist["data"][0]["x"])) == 360  # one entropy per test image
        counts = array(bars["data"][0]["y"])
        assert counts.sum() == 360 and (np.diff(counts) <= 0).all()  # most used first
    assert not any("Every assignment of this model is hard" in c.value for c in at.caption)


def test_assignment_entropy_right_model_choice_updates_its_numbers(codebooks):
    at = open_app("assignment_entropy", settle=True)
    _pick(at, "skvq-digits")
    before = _entropy_metrics(at)
    at.selectbox(key="entropy_right").set_value(str(catalog.BUNDLED_DIR / "vqvae-digits")).run()
    settled(at)
    assert not at.exception and not at.error
    left, right = _entropy_metrics(at)
    assert left == before[0]
    assert right == _expected("vqvae-digits") != before[1]
    assert any("Every assignment of this model is hard" in c.value for c in at.caption)  # VQ-VAE: one-hot
    assert [[t["type"] for t in f["data"]] for f in figures(at)] == [["histogram"], ["bar"], ["bar"]]
    # The choice outlives a visit to another page and a change of split; the numbers follow the split.
    at.switch_page("vqviz_app/pages/cluster_styles.py").run()
    at.switch_page("vqviz_app/pages/assignment_entropy.py").run()
    assert Path(at.selectbox(key="entropy_right").value).name == "vqvae-digits"
    at.button_group(key="split").set_value("train").run()
    settled(at)
    assert Path(at.selectbox(key="entropy_right").value).name == "vqvae-digits"
    assert _entropy_metrics(at) == [_expected("skvq-digits", "train"), _expected("vqvae-digits", "train")]


def test_assignment_entropy_of_a_model_without_a_codebook_says_so(codebooks, tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "ae-digits"
    workflow.train("ae", "digits", out=folder, train_config=TrainConfig(epochs=1, seed=0), encoder="lae2",
                   latent_dim=8)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "mine"))
    at = open_app("assignment_entropy", settle=True)
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    assert not at.exception and not at.error
    assert "has no codebook" in at.info[0].value
    assert not at.metric and not figures(at)
    # ... and it is never offered on the right.
    _pick(at, "skvq-digits")
    assert str(folder) not in at.selectbox(key="entropy_right").options




def test_a_map_of_codes_is_drawn_over_its_images(codebooks, tmp_path, monkeypatch):
    """A spatial SK-VQ (the paper's layout): each image with its map of codes laid over it."""
    folder = tmp_path / "mine" / "skvq-map"
    ckpt = workflow.train("skvq", "digits", out=folder, train_config=TrainConfig(epochs=1, seed=0), spatial=True,
                          latent_dim=8, codebook_size=16)
    at = _open_on_own(folder, monkeypatch)
    assert [s.value for s in at.subheader if s.value.startswith("Map of codes")] == ["Map of codes: mine/skvq-map"]
    shown = [c for el in at.get("image") for c in el.captions]
    test = data.load("digits", "test")
    maps = ckpt.model.code_map(torch.as_tensor(np.array(test.images[:4]))).numpy()
    used = [len(np.unique(m)) for m in maps]
    assert shown == [f"#{i}: {test.classes[test.labels[i]]}, {n} codeword{'s' * (n != 1)}" for i, n in enumerate(used)]
    at.number_input(key="code_map_image-mine/skvq-map").set_value(10).run()
    assert [c for el in at.get("image") for c in el.captions][0].startswith("#10: ")


def test_each_model_shows_its_codebook_over_training_or_says_it_has_none(tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "vq"
    ckpt = workflow.train("vqvae", "digits", out=folder, train_config=TrainConfig(epochs=3, seed=0), encoder="lae2",
                          latent_dim=8, codebook_size=16)
    at = _open_on_own(folder, monkeypatch)
    # Left the new VQ-VAE (no model of these digits is soft), right a shipped SEQ made before the history.
    assert at.subheader[0].value == "mine/vq"
    figs = figures(at)
    assert [[t["type"] for t in f["data"]] for f in figs] == [["bar"], ["scatter", "scatter"], ["bar"]]
    h = ckpt.metrics["codebook_history"]
    perplexity, dead = figs[1]["data"]
    assert array(perplexity["y"]) == pytest.approx(h["perplexity"]) and array(dead["y"]).tolist() == h["dead_codes"]
    assert array(perplexity["x"]).tolist() == [1, 2, 3]  # one point per epoch
    right = Path(at.selectbox(key="entropy_right").value).name
    assert any(c.value.startswith(f"No codebook history: {right}") for c in at.caption)
