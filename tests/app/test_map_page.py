"""The latent map page: the map, a selection's cluster panels, projections and colourings."""

from __future__ import annotations

import numpy as np
from driving import ROOT, array, figures, images, open_app, reference, settled

from vqviz import checkpoints, data


def points(fig: dict) -> list[dict]:
    """The traces of the map's points: not its invisible grid of empty spots, nor marks."""
    return [t for t in fig["data"] if t["name"] not in ("spots", "your images", "decoded spot")]


def test_opens_on_the_bundled_model_with_a_lean_webgl_map():
    at = open_app()
    assert at.title[0].value == "Latent map"
    assert at.selectbox(key="dataset").value == "digits"
    assert at.selectbox(key="checkpoint").value.endswith("seq-digits-cae4")
    assert at.button_group(key="split").value == "test"
    (fig,) = figures(at)
    traces = fig["data"]
    assert {t["type"] for t in traces} == {"scattergl"}
    assert [t["name"] for t in traces] == [*"0123456789", "spots"]  # coloured by true label; the grid last
    assert sum(len(array(t["x"])) for t in points(fig)) == 360
    # Lean: typed float32 coordinates and no per-point customdata (a trace's rows are known on the server).
    assert all("customdata" not in t and t["x"]["dtype"] == "f4" for t in traces)
    # The grid that catches clicks on empty spots is invisible and shows no hover label.
    grid = traces[-1]
    assert grid["marker"]["opacity"] == 0 and grid["hoverinfo"] == "none" and len(array(grid["x"])) == 48 * 48
    assert not at.error


def test_a_selection_opens_the_panel_of_its_cluster_and_leaves_the_map_as_it_was():
    _, ds, idx = reference()
    row = 17
    k = int(idx[row])
    members = np.flatnonzero(idx == k)
    ckpt = checkpoints.load(ROOT / "checkpoints" / "seq-digits-cae4")
    label = int(ckpt.model.cluster_labels[k])
    purity = np.mean(ds.labels[members] == label)

    at = open_app()
    before = figures(at)
    assert any("Click a point" in i.value for i in at.info)
    at.session_state["map_selection"] = {"rows": [row]}  # what the map's on_select callback stores
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == "1 point selected"
    assert any(m.value.startswith(f"**Cluster {k}** · label **{label}** · {len(members)} members")
               for m in at.markdown)
    assert [m.value for m in at.metric if m.label == "Purity"] == [f"{purity:.0%}"]
    # The panel's pictures arrive as one image: the decoded centroid beside its members.
    assert f"decoded centroid · {min(24, len(members))} of its members" in images(at)
    assert figures(at)[0] == before[0]  # the map is not re-drawn for a selection

    # A lasso over points of several clusters opens one panel per cluster, the largest share first.
    rows = [int(r) for r in np.flatnonzero(ds.labels == 1)[:12]]
    at.session_state["map_selection"] = {"rows": rows}
    at.run()
    assert at.subheader[0].value == "12 points selected"
    shown = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    counts = np.bincount(idx[rows])
    assert len(shown) == min(3, (counts > 0).sum())
    assert shown[0].startswith(f"**Cluster {counts.argmax()}**")


def test_a_degenerate_decoder_is_warned_about_beside_its_pictures(tmp_path, monkeypatch):
    from driving import variant

    meta = checkpoints.read_meta(ROOT / "checkpoints" / "seq-digits-lae2")
    check = {"degenerate": True, "std_ratio": 0.001, "between_ratio": 0.001, "threshold": 0.01}
    blank = variant(tmp_path, monkeypatch, "blank", metrics={**meta["metrics"], "decoder_check": check})
    at = open_app()
    at.selectbox(key="checkpoint").set_value(str(blank)).run()
    assert not at.warning  # no decoded picture yet
    at.session_state["map_selection"] = {"rows": [3]}
    at.run()
    assert not at.exception and not at.error
    assert any("decoder is degenerate" in w.value for w in at.warning)
    for page in ("cluster_styles", "style_mixer"):
        at.switch_page(f"app/pages/{page}.py").run()
        assert any("decoder is degenerate" in w.value for w in at.warning), (page, at.error, at.info, at.warning)


def test_projection_and_colouring_change_the_map():
    at = open_app()
    tsne = figures(at)[0]
    at.button_group(key="method").set_value("pca").run()
    assert not at.exception and not at.error
    pca = figures(at)[0]
    assert pca["data"][0]["x"] != tsne["data"][0]["x"]
    at.radio(key="colour").set_value("entropy").run()
    (trace,) = points(figures(at)[0])
    assert trace["marker"]["colorscale"] and trace["name"] == "entropy"
    assert any("entropy is 0" in c.value for c in at.caption)  # SEQ's k-means is a hard quantizer
    at.radio(key="colour").set_value("correct").run()
    assert [t["name"] for t in points(figures(at)[0])] == ["right", "wrong"]


def test_the_test_split_placed_on_the_train_map():
    from sklearn.decomposition import PCA

    at = open_app()
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    assert not at.exception and not at.error
    traces = points(figures(at)[0])
    assert traces[0]["name"] == "train map"
    assert len(array(traces[0]["x"])) == 1437
    # The test points sit where the train map's own PCA puts them, in the same coordinates.
    ckpt = checkpoints.load(ROOT / "checkpoints" / "seq-digits-cae4")
    test = data.load("digits", "test")
    z_train = ckpt.model.encode_array(data.load("digits", "train").images)
    z_test = ckpt.model.encode_array(test.images)
    pca = PCA(n_components=2, random_state=0).fit(z_train)
    want = pca.transform(z_test) - pca.transform(z_train).mean(0)
    for t in traces[1:]:  # one trace per label, its points in row order
        rows = np.flatnonzero(test.labels == int(t["name"]))
        got = np.stack([array(t["x"]), array(t["y"])], 1).astype(float)
        np.testing.assert_allclose(got, want[rows], atol=1e-3)
    assert any("placed" in c.value and "1,437 training points" in c.value for c in at.caption)
    # The toggle belongs to the test split only.
    at.button_group(key="split").set_value("train").run()
    assert at.toggle(key="on_train").disabled and not at.exception
    assert figures(at)[0]["data"][0]["name"] != "train map"


def test_the_map_shows_pca_while_its_t_sne_is_computed_in_the_background(tmp_path, monkeypatch):
    import threading

    from vqviz import projection

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no map made by an earlier test
    gate = threading.Event()
    cached_project = projection.cached_project

    def slow(latents, method="tsne", **kwargs):
        if method != "pca":
            gate.wait(60)
        return cached_project(latents, method, **kwargs)

    monkeypatch.setattr(projection, "cached_project", slow)
    at = open_app(settle=False)
    assert not at.exception and not at.error
    (progress,) = at.get("progress")
    assert "t-SNE map, computed in the background" in progress.proto.text and "PCA's map meanwhile" in \
        progress.proto.text
    meanwhile = figures(at)[0]
    assert sum(len(array(t["x"])) for t in points(meanwhile)) == 360  # every point, on PCA's map
    at.session_state["map_selection"] = {"rows": [5]}  # a click works meanwhile too
    at.run()
    assert at.subheader[0].value == "1 point selected"
    gate.set()
    settled(at)
    assert not at.get("progress") and not at.exception
    assert figures(at)[0]["data"][0]["x"] != meanwhile["data"][0]["x"]  # the t-SNE map has arrived
    assert at.subheader[0].value == "1 point selected"  # with the selection kept
