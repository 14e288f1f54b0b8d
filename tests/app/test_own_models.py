"""Your own model in the app: a plug-in family trained on the digits, and models wrapped around plain torch
networks (without a decoder, without a quantizer), each opened on the Latent map from a
``VQVIZ_CHECKPOINTS`` folder and clicked; a listed checkpoint whose factory is not allowed is refused
without importing it."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from driving import images, open_app, settled
from own_models import own_factory, plugin, site  # noqa: F401  (fixtures)

import vqviz
from vqviz import checkpoints, data, workflow
from vqviz.train import TrainConfig

SHAPE = (1, 8, 8)


def _open(folder, monkeypatch):
    """The app on the Latent map of the checkpoint ``folder`` (listed through VQVIZ_CHECKPOINTS), PCA map."""
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(folder.parent))
    at = open_app(settle=False)
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    at.button_group(key="method").set_value("pca").run()
    settled(at)
    assert not at.exception and not at.error, (at.exception, at.error)
    return at


def _click(at, row: int):
    at.session_state["map_selection"] = {"rows": [row]}  # what the map's on_select callback stores
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.subheader[0].value == "1 point selected"


def _clusters(model, images) -> np.ndarray:
    with torch.no_grad():
        return model.quantize(model.encode(torch.as_tensor(np.array(images)))).indices.numpy()


@pytest.mark.filterwarnings("ignore:This model's decoded pictures say little")  # a few epochs
def test_a_plugin_family_trained_on_digits_opens_its_clusters_on_the_latent_map(plugin, tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "mine-digits"
    ckpt = workflow.train("mine", "digits", out=folder, train_config=TrainConfig(epochs=5, batch_size=64), k=8)
    test = data.load("digits", "test")
    idx = _clusters(ckpt.model, test.images)
    row = 17
    k, members = int(idx[row]), int((idx == idx[row]).sum())
    at = _open(folder, monkeypatch)
    assert at.title[0].value == "Latent map" and "mine" in at.selectbox(key="checkpoint").value
    _click(at, row)
    assert any(m.value.startswith(f"**Cluster {k}** · label") and f"· {members} members in this split" in m.value
               for m in at.markdown), [m.value for m in at.markdown]
    assert f"decoded centroid · {min(24, members)} of its members" in images(at)


def _wrapped(**args):
    import own_nets

    torch.manual_seed(0)
    args = {"in_shape": list(SHAPE), "latent_dim": 8, **args}
    parts = own_nets.build(**args)
    return vqviz.wrap(parts["encoder"], parts.get("decoder"), parts.get("quantizer"), in_shape=SHAPE,
                      factory="own_nets:build", factory_args=args, n_classes=10)


def test_a_wrapped_encoder_without_a_decoder_shows_its_clusters_by_their_members(own_factory, tmp_path, monkeypatch):
    model = _wrapped(n_codes=6, decoder=False)
    train, test = data.load("digits", "train"), data.load("digits", "test")
    with torch.no_grad():  # codewords on six training latents: every code is someone's nearest
        model.quantizer.codebook.copy_(model.encode(torch.as_tensor(np.array(train.images[:6]))))
    folder = checkpoints.save(model, tmp_path / "mine" / "wrapped-digits", dataset="digits")
    idx = _clusters(model, test.images)
    row = 5
    k, members = int(idx[row]), int((idx == idx[row]).sum())

    at = _open(folder, monkeypatch)
    _click(at, row)
    assert any(m.value.startswith(f"**Sample {row}**") and f"cluster **{k}**" in m.value for m in at.markdown)
    assert any(m.value.startswith(f"**Cluster {k}** · label") and f"{members} members" in m.value for m in at.markdown)
    shown = images(at)
    assert f"this model has no decoder, so no decoded centroid · {min(24, members)} of its members" in shown
    assert not any("decoded centroid ·" in c and "no decoded" not in c for c in shown)
    at.session_state["map_selection"] = {"rows": [int(r) for r in np.flatnonzero(test.labels == 1)[:12]]}
    at.run()
    assert not at.exception and not at.error
    at.session_state["map_selection"] = {"rows": [], "spot": [0.0, 0.0]}  # a click on an empty spot
    at.run()
    assert not at.exception and not at.error
    assert any("This model has no decoder: an empty spot of the map cannot be decoded" in i.value for i in at.info)

    at.switch_page("vqviz_app/pages/cluster_styles.py").run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert any("its most typical member" in c.value for c in at.caption)
    assert len([c for c in images(at) if c.startswith("#")]) == 6
    at.switch_page("vqviz_app/pages/style_mixer.py").run()
    assert not at.exception and not at.error
    assert any("This model has no decoder: no mixture" in i.value for i in at.info)


def test_a_wrapped_autoencoder_without_a_quantizer_shows_a_sample_and_a_selection(own_factory, tmp_path, monkeypatch):
    folder = checkpoints.save(_wrapped(), tmp_path / "mine" / "wrapped-ae", dataset="digits")
    at = _open(folder, monkeypatch)
    _click(at, 3)
    assert any(m.value.startswith("**Sample 3** · true label") for m in at.markdown)
    assert not any(m.value.startswith("**Cluster") for m in at.markdown)  # no clusters, as the plain autoencoder
    at.session_state["map_selection"] = {"rows": [3, 4, 5]}
    at.run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**3 selected**") for m in at.markdown)
    assert "decoded centroid · 3 of its members" in images(at)


def test_a_listed_checkpoint_whose_factory_is_not_allowed_is_refused_unimported(own_factory, tmp_path, monkeypatch):
    folder = checkpoints.save(_wrapped(), tmp_path / "mine" / "evil", dataset="digits")
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["factory"] = "evil_nets:build"
    (folder / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(folder.parent))
    at = open_app(settle=False)
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    assert not at.exception
    said = " ".join(e.value for e in at.error)
    assert "'evil_nets:build' may not be imported" in said and "VQVIZ_ALLOWED_FACTORIES" in said, said
    assert "evil_nets" not in sys.modules and not own_factory.exists()
