"""The cluster styles and style mixer pages."""

from __future__ import annotations

from driving import images, maps, open_app, reference


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
    import numpy as np

    from vqviz_app import catalog

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


def test_moving_a_slider_changes_the_decoded_mixture():
    at = open_app("style_mixer")
    assert at.title[0].value == "Style mixer"
    assert not at.error
    before = images(at)
    mix = next(c for c in before if c.startswith("mixture"))
    assert mix == "mixture 0.25 z1 + 0.25 z2 + 0.50 z3"
    assert [c[:2] for c in before if c.startswith("z")] == ["z1", "z2", "z3"]
    assert at.download_button[0].label == "Download as PNG"
    at.slider(key="alpha1").set_value(0.5).run()
    assert not at.exception
    after = images(at)
    assert "mixture 0.50 z1 + 0.25 z2 + 0.25 z3" in after
    assert after["mixture 0.50 z1 + 0.25 z2 + 0.25 z3"] != before[mix]
    assert [m.value for m in at.metric] == ["0.25"]  # a3 = 1 - a1 - a2
    at.slider(key="alpha1").set_value(0.25).run()
    assert images(at)[mix] == before[mix]  # the same weights, the same picture
    at.slider(key="alpha1").set_value(1.0).run()  # z1 alone; alpha2 is held at 1 - alpha1 and the page says so
    assert "mixture 1.00 z1 + 0.00 z2 + 0.00 z3" in images(at)
    assert any("α2 is taken as 1 − α1 = 0.00" in c.value for c in at.caption)


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
