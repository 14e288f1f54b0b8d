"""The cluster styles and style mixer pages."""

from __future__ import annotations

import json

import numpy as np
from driving import images, maps, open_app, reference

from vqviz import data
from vqviz_app import catalog, mapview


def test_cluster_styles_shows_every_centroid_and_the_subclasses_of_a_class():
    ckpt, _, idx = reference()
    cluster_labels = ckpt.model.cluster_labels.numpy()
    at = open_app("cluster_styles")
    assert at.title[0].value == "Cluster styles"
    assert not at.error
    tiles = [c for c in images(at) if c.startswith("#")]
    assert len(tiles) == ckpt.model.k == 50
    assert [m.value for m in at.metric][:1] == ["50"]
    at.button_group(key="styles_class").set_value(6).run()
    assert not at.exception
    used = [k for k in range(50) if cluster_labels[k] == 6 and (idx == k).any()]
    rows = [c for c in images(at) if c.startswith("cluster ")]
    assert sorted(rows) == sorted(f"cluster {k}" for k in used)


def test_a_one_member_cluster_reads_1_member():
    ckpt, _, idx = reference("seq-digits-lae2")
    sizes = np.bincount(idx, minlength=ckpt.model.k)
    k = int(np.flatnonzero(sizes == 1)[0])  # LAE-2 has clusters of one test image
    label = int(ckpt.model.cluster_labels[k])
    at = open_app("cluster_styles", settle=False)
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / "seq-digits-lae2")).run()
    at.button_group(key="styles_class").set_value(label).run()
    assert not at.exception
    captions = list(images(at))
    assert f"cluster {k}" in captions
    assert "1 member · purity 100%" in captions
    assert not any(c.startswith("1 members") for c in captions)
    shown = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert all(m.endswith(" cluster") == (" 1 cluster" in m) for m in shown)  # "1 cluster", "3 clusters"


def mixer(at) -> dict:
    """The props of the style mixer's element, as its browser is told them."""
    views = [json.loads(el.proto.json) for el in at.get("bidi_component")
             if el.proto.component_name == mapview.COMPONENT and el.proto.json]
    return next(v for v in views if v.get("kind") == "mixer")


def sent_blobs(at) -> list[bytes]:
    """The blobs (decoders, a map's latents) this run sent to the browser."""
    return [el.proto.bytes for el in at.get("bidi_component")
            if el.proto.component_name == mapview.COMPONENT and el.proto.bytes[:4] == b"VQB1"]


def test_the_mixer_sends_its_latents_and_decoder_to_the_browser_and_keeps_the_weights():
    from vqviz import checkpoints
    from vqviz.web import unpack_blob

    at = open_app("style_mixer")
    assert at.title[0].value == "Style mixer"
    assert not at.error
    props = mixer(at)
    rows = [int(c.split("sample ")[1].split(" ")[0]) for c in images(at) if c.startswith("z")]
    ckpt = checkpoints.load(catalog.BUNDLED_DIR / "seq-digits-cae4")
    table = ckpt.model.encode_array(data.load("digits", "test").images)
    np.testing.assert_allclose(props["latents"], table[rows], rtol=1e-6)  # z1, z2, z3 of the three samples shown
    assert props["alpha"] == [0.25, 0.25] and props["decoder"] and props["image"] is None
    assert props["shape"] == [1, 8, 8]
    # the decoder's blob, sent once per session in its own element: the ONNX export of this checkpoint's decoder
    at.session_state[mapview.SENT] = {}  # a new browser session
    at.run()
    blobs = sent_blobs(at)
    head, onnx = unpack_blob(blobs[0])
    assert head["digest"] == props["decoder"] and head["kind"] == "decoder" and onnx[:1] == b"\x08"  # a ModelProto
    assert at.download_button[0].label == "Download 0.25 z1 + 0.25 z2 + 0.50 z3 as PNG"
    before = at.download_button[0].proto.url

    # where the browser's sliders come to rest (its state, kept by the callback): the server's download follows
    at.session_state["mixer_alpha"] = (0.5, 0.25)
    at.run()
    assert mixer(at)["alpha"] == [0.5, 0.25]
    assert at.download_button[0].label == "Download 0.50 z1 + 0.25 z2 + 0.25 z3 as PNG"
    assert at.download_button[0].proto.url != before
    assert at.download_button[1].label == "Download as PNG"  # the Fig. 5 triangle
    assert not sent_blobs(at)  # the decoder is not sent again


def test_a_decoder_too_large_for_the_browser_is_decoded_on_the_server(monkeypatch):
    from vqviz import export
    from vqviz_app import decoding

    monkeypatch.setattr(export, "MAX_BROWSER_BYTES", 1000)
    decoding._decoder.clear()
    try:
        at = open_app("style_mixer")
        props = mixer(at)
        assert props["decoder"] is None and "more than the 1 kB sent to a browser" in props["why"]
        assert props["image"].startswith("data:image/png;base64,")
        at.session_state["mixer_alpha"] = (1.0, 0.0)
        at.run()
        assert mixer(at)["image"] != props["image"]  # the server's picture of the new mixture
    finally:
        decoding._decoder.clear()


def test_the_mixer_takes_its_latents_from_a_cluster_at_random_or_from_the_map():
    at = open_app("style_mixer")
    first = [c for c in images(at) if c.startswith("z")]
    at.button_group(key="mix_source").set_value("one cluster").run()
    k = at.selectbox(key="mix_cluster").value
    picked = [c for c in images(at) if c.startswith("z")]
    assert all(c.endswith(f"cluster {k}") for c in picked)
    at.button_group(key="mix_source").set_value("random").run()
    at.button[-1].click().run()  # draw again
    assert not at.exception and [c for c in images(at) if c.startswith("z")] != first
    at.button_group(key="mix_source").set_value("map").run()
    assert not at.exception and not at.error
    (picker,) = maps(at)
    assert picker.key == "mix_map" and picker.props["select"]["rows"] == [int(r) for r in at.session_state["mix_rows"]]
