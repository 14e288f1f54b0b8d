"""The latent map page: the map, a selection's cluster panels, projections and colourings."""

from __future__ import annotations

import numpy as np
import pytest
from driving import ROOT, images, maps, open_app, reference, settled

from vqviz import checkpoints, data


@pytest.fixture
def held_maps(tmp_path, monkeypatch):
    """An empty map cache in ``tmp_path / "cache"``, and every map but PCA's held back until the
    returned event is set (at most 60 s): the page's background work, caught in the middle."""
    import threading

    from vqviz import map_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no map made by an earlier test
    gate = threading.Event()
    cached_project = map_store.cached_project

    def slow(latents, method="tsne", **kwargs):
        if method != "pca":
            gate.wait(60)
        return cached_project(latents, method, **kwargs)

    monkeypatch.setattr(map_store, "cached_project", slow)
    return gate


def test_opens_on_the_bundled_model_with_a_map_of_binary_columns():
    _, ds, idx = reference()
    at = open_app()
    assert at.title[0].value == "Latent map"
    assert at.selectbox(key="dataset").value == "digits"
    assert at.selectbox(key="checkpoint").value.endswith("seq-digits-cae4")
    assert at.button_group(key="split").value == "test"
    (drawn,) = maps(at)
    assert drawn.key == "latent_map" and drawn.props["colour"] == "label"  # coloured by true label
    assert drawn.xy.shape == (360, 2) and len(drawn.background) == 0
    # every colouring travels at once, as typed columns: a change of colour sends no points
    assert list(drawn.fields) == ["label", "cluster", "predicted", "correct", "entropy"]
    assert drawn.fields["label"].dtype == np.uint8 and (drawn.fields["label"] == ds.labels).all()
    assert (drawn.fields["cluster"] == idx).all()
    assert [f["names"] for f in drawn.head["fields"]][0] == list("0123456789")
    assert drawn.props["hover"] == ["label", "cluster"]
    assert not at.error


def test_hovering_a_point_shows_its_own_image_from_the_atlas():
    import io

    from PIL import Image

    _, ds, _ = reference()
    at = open_app()
    (drawn,) = maps(at)
    atlas = drawn.head["atlas"]
    assert atlas["thumb"] == [8, 8] and atlas["mime"] == "image/png" and atlas["shrunk"] == 1
    # the atlas travels apart from the points, after them: "VQA1", its digest, the PNG
    blob = drawn.data.atlas
    assert blob[:4] == b"VQA1" and atlas["digest"].encode() in blob[:64]
    grid = np.asarray(Image.open(io.BytesIO(blob[8 + len(atlas["digest"]):])))
    for row in (0, 5, 359):  # each point's cell is its own image
        r, c = divmod(row, atlas["cols"])
        cell = grid[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]
        np.testing.assert_array_equal(cell, np.round(ds.images[row, 0] * 255).astype(np.uint8))


def test_a_selection_opens_the_panel_of_its_cluster_and_leaves_the_map_as_it_was():
    _, ds, idx = reference()
    row = 17
    k = int(idx[row])
    members = np.flatnonzero(idx == k)
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    label = int(ckpt.model.cluster_labels[k])
    purity = np.mean(ds.labels[members] == label)

    at = open_app()
    before = maps(at)[0]
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
    after = maps(at)[0]
    assert after.props["store"] == before.props["store"]  # the same points: no payload is packed again
    assert after.props["select"]["rows"] == [row]  # the browser is told the selection (e.g. from a link)

    # A lasso over points of several clusters opens one panel per cluster, the largest share first.
    rows = [int(r) for r in np.flatnonzero(ds.labels == 1)[:12]]
    at.session_state["map_selection"] = {"rows": rows}
    at.run()
    assert at.subheader[0].value == "12 points selected"
    shown = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    counts = np.bincount(idx[rows])
    assert len(shown) == min(3, (counts > 0).sum())
    assert shown[0].startswith(f"**Cluster {counts.argmax()}**")


def test_the_panel_of_a_one_member_cluster_reads_1_member():
    from vqviz_app import catalog

    ckpt, _, idx = reference("seq-digits-lae2")
    k = int(np.flatnonzero(np.bincount(idx, minlength=ckpt.model.k) == 1)[0])  # LAE-2 has clusters of one image
    (row,) = np.flatnonzero(idx == k)
    at = open_app(settle=False)
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / "seq-digits-lae2")).run()
    at.button_group(key="method").set_value("pca").run()
    at.session_state["map_selection"] = {"rows": [int(row)]}
    at.run()
    assert not at.exception and not at.error
    assert any(m.value.startswith(f"**Cluster {k}** · label") and m.value.endswith(" · 1 member in this split")
               for m in at.markdown)
    assert "decoded centroid · its only member" in images(at)


def test_a_degenerate_decoder_is_warned_about_beside_its_pictures(tmp_path, monkeypatch):
    from driving import variant

    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2")
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
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
        assert any("decoder is degenerate" in w.value for w in at.warning), (page, at.error, at.info, at.warning)


def test_projection_and_colouring_change_the_map():
    at = open_app()
    tsne = maps(at)[0]
    at.button_group(key="method").set_value("pca").run()
    assert not at.exception and not at.error
    pca = maps(at)[0]
    assert pca.props["store"] != tsne.props["store"] and not np.allclose(pca.xy, tsne.xy)
    at.radio(key="colour").set_value("entropy").run()
    drawn = maps(at)[0]
    assert drawn.props["colour"] == "entropy" and drawn.props["store"] == pca.props["store"]  # no points re-sent
    entropy = next(f for f in drawn.head["fields"] if f["name"] == "entropy")
    assert entropy["kind"] == "continuous" and entropy["range"][0] == 0 and "entropy" in drawn.props["hover"]
    assert any("entropy is 0" in c.value for c in at.caption)  # SEQ's k-means is a hard quantizer
    at.radio(key="colour").set_value("correct").run()
    drawn = maps(at)[0]
    correct = next(f for f in drawn.head["fields"] if f["name"] == "correct")
    assert drawn.props["colour"] == "correct" and correct["names"] == ["right", "wrong"]
    _, ds, idx = reference()
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    wrong = ckpt.model.cluster_labels.numpy()[idx] != ds.labels
    np.testing.assert_array_equal(drawn.fields["correct"], wrong)


def test_the_test_split_placed_on_the_train_map():
    from sklearn.decomposition import PCA

    at = open_app()
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    settled(at)  # the train map is fitted in the background
    assert not at.exception and not at.error
    (drawn,) = maps(at)
    assert len(drawn.background) == 1437 and len(drawn.xy) == 360  # the train map under the test points
    # The test points sit where the train map's own PCA puts them, in the same coordinates.
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    test = data.load("digits", "test")
    z_train = ckpt.model.encode_array(data.load("digits", "train").images)
    z_test = ckpt.model.encode_array(test.images)
    pca = PCA(n_components=2, random_state=0).fit(z_train)
    want = pca.transform(z_test) - pca.transform(z_train).mean(0)
    np.testing.assert_allclose(drawn.xy, want, atol=1e-3)
    np.testing.assert_allclose(drawn.background, pca.transform(z_train) - pca.transform(z_train).mean(0), atol=1e-3)
    assert any("placed" in c.value and "1,437 training points" in c.value for c in at.caption)
    # The toggle belongs to the test split only.
    at.button_group(key="split").set_value("train").run()
    assert at.toggle(key="on_train").disabled and not at.exception
    assert len(maps(at)[0].background) == 0


def test_the_train_map_toggle_is_kept_across_a_page_switch():
    at = open_app()
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    settled(at)
    at.switch_page("vqviz_app/pages/cluster_styles.py").run()
    at.switch_page("vqviz_app/pages/latent_map.py").run()
    settled(at)
    assert not at.exception and at.toggle(key="on_train").value
    assert len(maps(at)[0].background) == 1437


def test_the_map_shows_pca_while_its_t_sne_is_computed_in_the_background(held_maps):
    at = open_app(settle=False)
    assert not at.exception and not at.error
    (progress,) = at.get("progress")
    assert "t-SNE map, computed in the background" in progress.proto.text and "PCA's map meanwhile" in \
        progress.proto.text
    meanwhile = maps(at)[0]
    assert len(meanwhile.xy) == 360  # every point, on PCA's map
    at.session_state["map_selection"] = {"rows": [5]}  # a click works meanwhile too
    at.run()
    assert at.subheader[0].value == "1 point selected"
    held_maps.set()
    settled(at)
    assert not at.get("progress") and not at.exception
    assert not np.allclose(maps(at)[0].xy, meanwhile.xy)  # the t-SNE map has arrived
    assert at.subheader[0].value == "1 point selected"  # with the selection kept


def _digit_png(image: np.ndarray, scale: int = 8, invert: bool = False) -> bytes:
    """An (1, 8, 8) digit as a PNG, enlarged (and as dark ink on white paper, if ``invert``)."""
    import io

    from PIL import Image

    pixels = np.uint8(np.round((1 - image[0] if invert else image[0]) * 255)).repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_images_are_placed_marked_and_shown_with_their_cluster_and_neighbours():
    from vqviz.analysis import placement

    ckpt, ds, idx = reference()
    table_z = ckpt.model.encode_array(ds.images)
    at = open_app()
    at.button_group(key="method").set_value("pca").run()
    # one digit of the split as a person would draw it (black on white), a second one, and a text file
    files = [("seven.png", _digit_png(ds.images[7], invert=True), "image/png"),
             ("twelve.png", _digit_png(ds.images[12]), "image/png"),
             ("notes.png", b"not an image at all", "image/png")]
    at.file_uploader(key="place_upload").set_value(files).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "notes.png: not an allowed image format (allowed: PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM)"]
    marks = maps(at)[0].props["marks"]
    assert [(m["label"], m["title"]) for m in marks] == [("1", "seven.png"), ("2", "twelve.png")]
    xy = np.array([[m["x"], m["y"]] for m in marks])
    # each lands where its own digit lies on the PCA map (the image comes back as itself, up to rounding)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0).fit(table_z)
    want = pca.transform(table_z[[7, 12]]) - pca.transform(table_z).mean(0)
    np.testing.assert_allclose(xy, want, atol=0.05 * np.abs(want).max())
    # each panel: quantized label and cluster of the digit it copies, and its nearest neighbours
    cls = ckpt.model.cluster_labels.numpy()
    for star, (name, row) in enumerate((("seven.png", 7), ("twelve.png", 12)), 1):
        head = next(m.value for m in at.markdown if m.value.startswith(f"**★{star} {name}**"))
        assert f"quantized label **{cls[idx[row]]}** · cluster **{idx[row]}**" in head
    rows = [c.value for c in at.caption if c.value.startswith("Your image, decoded; then its 8 nearest")]
    assert len(rows) == 2  # one picture each: the image, its decoding and its neighbours
    near = placement.nearest(table_z, table_z[[7]], k=8).rows[0]
    assert near[0] == 7  # the uploaded copy's nearest latent is the digit itself
    listed = rows[0].split("(true label, distance): ")[1].split(", ")
    assert [item.split(" (")[0] for item in listed] == [str(ds.labels[r]) for r in near]
    assert float(listed[0].split(" (")[1][:-1]) < 0.1  # its own digit, up to the upload's rounding
    assert any(c.value == "Placed by PCA's transform." for c in at.caption)


def test_a_click_on_an_empty_spot_decodes_the_latent_there():
    at = open_app()
    assert at.button_group(key="method").value == "tsne"
    at.session_state["map_selection"] = {"rows": [], "spot": [0.0, 0.0]}  # what a click on an empty spot stores
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == "A decoded spot of the map"
    assert "decoded spot" in images(at)
    text = " ".join(m.value for m in at.markdown)
    assert "a mix of the latents of the 8 nearest map points" in text
    weights = next(el for el in at.get("image") if len(el.captions) == 8).captions
    assert all(c.endswith("%") for c in weights) and abs(sum(float(c[:-1]) for c in weights) - 100) <= 4
    assert maps(at)[0].props["spot"] == [0.0, 0.0]  # marked with a cross
    # on PCA's map, the exact inverse
    at.button_group(key="method").set_value("pca").run()
    at.session_state["map_selection"] = {"rows": [], "spot": [1.0, -0.5]}
    at.run()
    assert "PCA's exact inverse" in " ".join(m.value for m in at.markdown)
    # a click on a point opens its panels again
    at.session_state["map_selection"] = {"rows": [3]}
    at.run()
    assert at.subheader[0].value == "1 point selected"


def test_the_browsers_selection_becomes_rows_and_anything_malformed_none():
    from vqviz_app.mapview import _selection

    lasso = _selection({"kind": "lasso", "rows": [9, 3, 3], "polygon": [[0, 0], [1, 0], [0, 1]], "seq": 4})
    assert lasso.kind == "lasso" and lasso.rows.tolist() == [3, 9] and len(lasso.polygon) == 3 and lasso.seq == 4
    assert _selection({"kind": "spot", "rows": [], "spot": [1.5, -2]}).spot == (1.5, -2.0)
    for bad in (None, "rows", {"rows": ["a"]}, {"kind": "spot", "spot": [1]}, {"rows": [[1, 2], 3]}):
        assert _selection(bad).kind == "none" and len(_selection(bad).rows) == 0


def test_a_click_shows_the_sample_itself_above_its_cluster():
    ckpt, ds, idx = reference()
    at = open_app()
    at.session_state["map_selection"] = {"rows": [17]}
    at.run()
    assert not at.exception and not at.error
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert heads[0].startswith(f"**Sample 17** · true label **{ds.labels[17]}** · cluster **{idx[17]}**")
    assert heads[1].startswith(f"**Cluster {idx[17]}**")  # its cluster's panel below it
    assert any(c.value.startswith("The sample, decoded; then its 8 nearest neighbours") for c in at.caption)


def test_a_selection_over_many_clusters_shows_a_strip_of_all_of_them_and_the_first_three_in_full():
    _, ds, idx = reference()
    rows = list(range(0, 360, 3))  # 120 points over many clusters
    counts = np.bincount(idx[rows])
    touched = int((counts > 0).sum())
    assert touched > 5
    at = open_app()
    at.session_state["map_selection"] = {"rows": rows}
    at.run()
    assert not at.exception and not at.error
    assert any(f"falls in **{touched} clusters**" in c.value for c in at.caption)
    strip = next(el for el in at.get("image") if len(el.captions) == touched)
    order = [int(c.split("·")[0]) for c in strip.captions]
    assert [counts[k] for k in order] == sorted(counts[counts > 0], reverse=True)  # most selected first
    first = strip.captions[0]
    assert f" {counts[order[0]]}/{np.sum(idx == order[0])} " in first and first.endswith("%")
    full = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    assert [int(m.split()[1].rstrip("*")) for m in full] == order[:3]


def test_a_projection_started_on_the_map_finishes_while_the_user_is_on_another_page(held_maps, tmp_path,
                                                                                   monkeypatch):
    from vqviz_app import jobs
    from vqviz import projection

    at = open_app(settle=False)
    assert at.get("progress")  # t-SNE in the background, PCA's map meanwhile
    at.switch_page("vqviz_app/pages/cluster_styles.py").run()  # the user moves on before it ends
    assert not at.exception
    held_maps.set()
    assert jobs.wait_all(120)
    (landed,) = (tmp_path / "cache" / "vqviz" / "projections").glob("tsne-*.npy")  # it landed in the cache
    calls = []
    monkeypatch.setattr(projection, "project", lambda *a, **k: calls.append(1))
    at.switch_page("vqviz_app/pages/latent_map.py").run()
    assert not at.get("progress") and not at.exception and calls == []  # back: the t-SNE map, not recomputed
    _, ds, _ = reference()
    np.testing.assert_allclose(maps(at)[0].xy, np.load(landed), atol=1e-4)  # float32 on the wire


def test_a_map_shipped_beside_the_checkpoint_opens_at_once(tmp_path, monkeypatch):
    from driving import variant

    from vqviz_app import maps as app_maps
    from vqviz import map_store

    folder = variant(tmp_path, monkeypatch, "shipped-map")
    ckpt = checkpoints.load(folder)
    ds = data.load("digits", "test")
    shipped = np.random.default_rng(0).normal(size=(360, 2)).astype(np.float32)
    map_store.store_beside(folder, shipped, "tsne", checkpoint_sha=ckpt.meta["weights"]["sha256"],
                           dataset="digits", split="test")
    at = open_app()
    calls = []
    monkeypatch.setattr(app_maps, "projection_job", lambda *a, **k: calls.append(1))  # nothing to compute
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    assert not at.exception and not at.error and not at.get("progress") and calls == []
    np.testing.assert_allclose(maps(at)[0].xy, shipped, atol=1e-5)


def test_an_image_on_the_t_sne_map_is_placed_by_its_transform_among_its_own_kind():
    _, ds, _ = reference()
    at = open_app()
    assert at.button_group(key="method").value == "tsne"
    at.file_uploader(key="place_upload").set_value(("a-four.png", _digit_png(ds.images[40]), "image/png")).run()
    assert not at.exception and not at.error
    # the map fitted again in memory is the map on screen, so the image is placed by openTSNE's transform
    assert any(c.value == "Placed by t-SNE's transform." for c in at.caption)
    drawn = maps(at)[0]
    (mark,) = drawn.props["marks"]
    at_xy = np.array([mark["x"], mark["y"]])
    where = drawn.xy[40]
    spread = drawn.xy.max(0) - drawn.xy.min(0)
    assert (np.abs(at_xy - where) < 0.1 * spread).all()  # beside the digit it copies


def test_placing_and_decoding_on_the_train_map_and_with_a_codebook_model(codebooks):
    _, ds, _ = reference()
    at = open_app()
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    settled(at)
    at.file_uploader(key="place_upload").set_value(("mine.png", _digit_png(ds.images[3]), "image/png")).run()
    assert not at.exception and not at.error
    assert any(c.value == "Placed by PCA's transform." for c in at.caption)
    at.session_state["map_selection"] = {"rows": [], "spot": [0.5, 0.5]}
    at.run()
    assert "PCA's exact inverse" in " ".join(m.value for m in at.markdown) and not at.exception
    # a codebook model (SK-VQ): a click, a selection over many clusters, an upload, a spot
    at.toggle(key="on_train").set_value(False).run()
    at.selectbox(key="checkpoint").set_value(str(codebooks / "skvq-digits")).run()
    at.session_state["map_selection"] = {"rows": [8]}
    at.run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**Sample 8**") for m in at.markdown)
    at.session_state["map_selection"] = {"rows": list(range(0, 360, 4))}
    at.run()
    assert not at.exception and not at.error and any("clusters**, most selected" in c.value for c in at.caption)
    at.file_uploader(key="place_upload").set_value(("mine.png", _digit_png(ds.images[3]), "image/png")).run()
    assert not at.exception, "\n".join(at.exception[0].stack_trace)
    assert not at.error and any(m.value.startswith("**★1 mine.png**") for m in at.markdown)
    at.session_state["map_selection"] = {"rows": [], "spot": [0.0, 0.0]}
    at.run()
    assert not at.exception and not at.error and at.subheader[0].value == "A decoded spot of the map"


def test_the_train_map_is_fitted_in_the_background_with_this_splits_pca_map_meanwhile(monkeypatch):
    import threading

    from vqviz import projection

    gate = threading.Event()
    fit = projection.Projector.fit

    def slow(self, *args, **kwargs):
        if threading.current_thread().name.startswith("vqviz-background"):  # not the page's own PCA map
            gate.wait(60)
        return fit(self, *args, **kwargs)

    at = open_app()
    monkeypatch.setattr(projection.Projector, "fit", slow)
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    assert not at.exception and not at.error
    (progress,) = at.get("progress")
    assert "The train map, computed in the background" in progress.proto.text
    assert len(maps(at)[0].xy) == 360 and len(maps(at)[0].background) == 0  # the split's PCA map meanwhile
    at.session_state["map_selection"] = {"rows": [5]}  # the page works meanwhile
    at.run()
    assert at.subheader[0].value == "1 point selected" and not at.exception
    gate.set()
    settled(at)
    assert not at.exception and not at.get("progress")
    assert len(maps(at)[0].background) == 1437


@pytest.mark.slow  # UMAP's first fit and inverse compile numba code: 15 s of a quick run
def test_a_spot_of_the_umap_map_goes_back_by_its_inverse_transform():
    at = open_app()
    at.button_group(key="method").set_value("umap").run()
    settled(at)
    at.session_state["map_selection"] = {"rows": [], "spot": [0.0, 0.0]}
    at.run()
    assert not at.exception and not at.error
    # the map fitted again in memory is the map on screen (same seed), so its own inverse is used
    assert "UMAP's inverse_transform" in " ".join(m.value for m in at.markdown)
    assert "decoded spot" in images(at)


def test_only_the_last_two_fitted_train_maps_are_kept_in_memory():
    from vqviz_app import jobs, maps as app_maps
    from vqviz_app.cache import View

    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(60, 4)).astype(np.float32), np.arange(60) % 3
    worker = jobs.background("maps")

    def key(n):  # a checkpoint of each size: three train maps
        return app_maps.MapKey(View(f"ckpt-{n}", n, "digits", "test"), "pca", on_train=True)

    for n in (20, 30, 40):
        fitted, placed, _ = app_maps.train_jobs(key(n), z[:n], y[:n], z[:5])
        assert placed.result(60).shape == (5, 2)
    kept = sorted(k[1].view.stamp for k in worker.keys() if k[0] == "fit")
    assert kept == [30, 40] and sum(k[0] == "placed" for k in worker.keys()) == 2
    again, _, _ = app_maps.train_jobs(key(40), z[:40], y[:40], z[:5])
    assert again is fitted  # the newest is kept, not fitted again


def test_thumbnails_of_large_images_shrink_by_a_whole_factor_and_keep_their_shape(monkeypatch):
    import io
    from types import SimpleNamespace

    from PIL import Image

    from vqviz_app import cache, maps as app_maps

    images = np.random.default_rng(0).random((5, 3, 64, 48)).astype(np.float32)  # RGB, taller than wide
    monkeypatch.setattr(cache, "dataset", lambda name, split: SimpleNamespace(images=images))
    app_maps.thumbnails.clear()
    png, (w, h), cols, shrunk = app_maps.thumbnails("tall", "test")
    assert (w, h) == (24, 32) and cols == 3 and shrunk == 2  # 64 px > THUMB_MAX: halved
    grid = np.asarray(Image.open(io.BytesIO(png)))
    assert grid.shape == (2 * 32, 3 * 24, 3)
    want = images[4].reshape(3, 32, 2, 24, 2).mean((2, 4)).transpose(1, 2, 0)  # row 1, column 1
    np.testing.assert_allclose(grid[32:64, 24:48] / 255, want, atol=0.5 / 255 + 1e-6)
    app_maps.thumbnails.clear()


def _blobs(at) -> dict[str, tuple[dict, bytes]]:
    """The blobs this run sent to the browser, by kind: (header, body)."""
    from vqviz.web import unpack_blob
    from vqviz_app import mapview

    out = {}
    for el in at.get("bidi_component"):
        if el.proto.component_name == mapview.COMPONENT and el.proto.bytes[:4] == b"VQB1":
            head, body = unpack_blob(el.proto.bytes)
            out[head["kind"]] = head, body
    return out


def test_decoding_under_the_cursor_sends_the_way_back_from_the_map_as_the_server_takes_it():
    from vqviz import projection
    from vqviz_app import mapview

    at = open_app()
    assert maps(at)[0].props["decode"] is None  # off by default: nothing more is sent
    at.session_state[mapview.SENT] = {}  # a new browser session: everything is sent again
    at.toggle(key="decode_hover").set_value(True).run()
    (drawn,) = maps(at)
    decode = drawn.props["decode"]
    blobs = _blobs(at)
    assert decode["decoder"] == blobs["decoder"][0]["digest"]
    # t-SNE: the map's own points and latents, which the browser mixes as the server does for a click
    inverse = decode["inverse"]
    assert inverse["kind"] == "mix" and inverse["k"] == 8 and inverse["latents"] == blobs["latents"][0]["digest"]
    head, body = blobs["latents"]
    xy = np.frombuffer(body, "<f4", 2 * head["n"]).reshape(-1, 2)
    z = np.frombuffer(body, "<f4", offset=8 * head["n"]).reshape(head["n"], head["d"])
    np.testing.assert_allclose(xy, drawn.xy, atol=1e-4)  # the map drawn
    ckpt, ds, _ = reference()
    np.testing.assert_allclose(z, ckpt.model.encode_array(ds.images), atol=1e-5)  # its latents

    # PCA: its exact inverse, sent as numbers: (x + offset) C + mean is the server's inverse
    at.button_group(key="method").set_value("pca").run()
    (drawn,) = maps(at)
    inverse = drawn.props["decode"]["inverse"]
    assert inverse["kind"] == "pca" and "latents" not in _blobs(at)
    spots = np.array([[0.5, -1.25], [3.0, 2.0]], np.float32)
    mine = (spots + np.array(inverse["offset"])) @ np.array(inverse["components"]) + np.array(inverse["mean"])
    fit = projection.Projector("pca").fit(ckpt.model.encode_array(ds.images))
    np.testing.assert_allclose(mine[:, :inverse["d"]], fit.inverse(spots), atol=1e-5)


def test_decoding_under_the_cursor_says_why_the_server_decodes_when_the_latents_are_too_many(monkeypatch):
    from vqviz_app import decoding

    monkeypatch.setattr(decoding, "MAX_LATENT_BYTES", 1000)
    at = open_app()
    at.toggle(key="decode_hover").set_value(True).run()
    assert maps(at)[0].props["decode"] is None
    shown = " ".join(c.value for c in at.caption)
    assert "Decoding under the cursor is off: the map's 360 latents are" in shown
    assert "A click on an empty spot decodes it on the server." in shown
