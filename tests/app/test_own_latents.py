"""A file of latents in the app: opened from the sidebar (a path on the server, an upload) or by
``vqviz.explore``, shown on the Latent map with its codes or the app's k-means as clusters, clicked, and
refused with its own message when it is bad; no page offers to decode it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from driving import open_app, settled

import vqviz
from vqviz import checkpoints, data
from vqviz.data import latents as files


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's data folder (checkpoints go there) and a folder the server lets visitors read."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("VQVIZ_ROOTS", str(shared))  # listed as "shared/"
    monkeypatch.delenv("VQVIZ_CONFIG", raising=False)
    return shared


def digits_latents(codes: bool) -> dict:
    """The digits' test split with stand-in latents: each image's first 12 pixels plus a little noise, and
    for ``codes`` a code per image (its label's parity and a half of the map: 4 codes)."""
    test = data.load("digits", "test")
    rng = np.random.default_rng(0)
    z = test.images.reshape(len(test.images), -1)[:, 20:32] + rng.normal(0, 0.01, (len(test.images), 12))
    out = {"latents": z.astype(np.float32), "labels": test.labels, "images": test.images, "classes": test.classes}
    if codes:
        out["codes"] = (test.labels % 2) * 2 + (z[:, 0] > np.median(z[:, 0]))
    return out


def _open_path(at, text: str):
    at.text_input(key="latents_path").input(text).run()
    settled(at)
    return at


def _click(at, row: int):
    at.session_state["map_selection"] = {"rows": [row]}
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])


def test_a_file_with_codes_opens_from_the_sidebar_and_its_cluster_is_clicked(home):
    arrays = digits_latents(codes=True)
    files.write(home / "emb.npz", **arrays)
    at = open_app("latent_map", settle=False)
    _open_path(at, "shared/emb.npz")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert any("360 latents of 12 dimensions; clusters from its codes" in s.value for s in at.success)
    assert at.selectbox(key="dataset").value.startswith("latents:")
    assert at.segmented_control(key="split").options == ["all rows"]
    row = 7
    code = int(arrays["codes"][row])
    _click(at, row)
    members = int((arrays["codes"] == code).sum())
    assert any(m.value.startswith(f"**Cluster {code}** · label") and f"· {members} members in this split" in m.value
               for m in at.markdown), [m.value for m in at.markdown]
    assert not any("Click an empty spot to decode" in c.value for c in at.caption)  # no decoder: not offered


def test_a_file_without_images_is_mapped_with_no_thumbnails_and_no_image_to_place(home):
    from driving import maps

    arrays = digits_latents(codes=True)
    del arrays["images"]
    files.write(home / "bare.npz", **arrays)
    at = open_app("latent_map", settle=False)
    _open_path(at, "shared/bare.npz")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    (drawn,) = maps(at)
    assert drawn.head["atlas"] is None and drawn.data.atlas is None  # the hover card shows the fields alone
    assert len(drawn.xy) == 360 and (drawn.fields["cluster"] == arrays["codes"]).all()
    assert not at.get("file_uploader") or all(u.label != "Place your own images on the map"
                                              for u in at.get("file_uploader"))
    _click(at, 3)


def test_an_upload_without_codes_gets_k_means_clusters_and_opens(home):
    """AppTest has no file uploader: the upload's handler gets the bytes as the widget's callback would."""
    from vqviz_app import latents

    buf = io.BytesIO()
    np.savez(buf, **digits_latents(codes=False))
    folder, message = latents.open_upload("mine.npz", buf.getvalue())
    assert "360 latents of 12 dimensions; clusters from k-means with K = 10 (the file has no codes)" in message
    assert folder.parent == home.parent / "home" / "vqviz" / "checkpoints" / "uploads"  # kept with the uploads
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".latents-")]  # the upload is not kept
    with pytest.raises(vqviz.errors.DataError, match="mine.txt: not a file of latents"):
        latents.open_upload("mine.txt", b"")
    at = open_app("latent_map", settle=False)
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    settled(at)
    _click(at, 3)
    assert any(m.value.startswith("**Cluster ") for m in at.markdown)


@pytest.mark.parametrize("arrays, message", [
    ({"labels": np.zeros(3)}, "no 'latents' array"),
    ({"latents": np.full((3, 2), np.nan, np.float32)}, "NaN"),
    ({"latents": np.zeros((3, 2), np.float32), "labels": np.zeros(4, np.int64)}, "labels"),
])
def test_a_bad_file_is_refused_with_its_own_message(home, arrays, message):
    np.savez(home / "bad.npz", **arrays)
    at = open_app("latent_map", settle=False)
    _open_path(at, "shared/bad.npz")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors
    assert not any(str(home) in e for e in errors)  # the server's folders are not shown


def test_a_path_outside_the_servers_folders_is_refused(home, tmp_path):
    files.write(tmp_path / "secret.npz", np.zeros((3, 2), np.float32))
    at = open_app("latent_map", settle=False)
    _open_path(at, str(tmp_path / "secret.npz"))
    assert any("not inside" in e.value or "outside" in e.value or "lets you read" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_explore_saves_a_file_where_the_app_looks_and_opens_its_view(home, monkeypatch, capsys):
    files.write(home / "emb.npz", **digits_latents(codes=False))
    link = vqviz.explore(home / "emb.npz", k=6)
    out = capsys.readouterr().out
    assert link in out and "start it with `vqviz app`" in out
    folder = next((home.parent / "home" / "vqviz" / "checkpoints").glob("latents-emb-*"))
    ckpt = checkpoints.load(folder)
    assert ckpt.name == "latents" and ckpt.model.n_codes == 6 and ckpt.model.config.clusters_from == "kmeans"
    assert ckpt.dataset.startswith("latents:") and data.shape_of(ckpt.dataset) == (1, 8, 8)
    from streamlit.testing.v1 import AppTest
    from driving import APP
    from urllib.parse import parse_qsl, urlsplit

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(dict(parse_qsl(urlsplit(link).query)))  # the link's view
    at.run()
    settled(at)
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.selectbox(key="checkpoint").value == str(folder) and at.selectbox(key="dataset").value == ckpt.dataset


def test_every_page_shows_a_file_of_latents_and_says_what_it_cannot_draw(home):
    from urllib.parse import parse_qsl, urlsplit

    from streamlit.testing.v1 import AppTest
    from driving import APP

    files.write(home / "emb.npz", **digits_latents(codes=True))
    link = vqviz.explore(home / "emb.npz", quiet=True)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(dict(parse_qsl(urlsplit(link).query)))
    at.run()
    for page in ("cluster_styles", "style_mixer", "assignment_entropy", "metrics", "models"):
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
        settled(at)
        assert not at.exception and not at.error, (page, at.exception, [e.value for e in at.error])
        shown = " ".join(e.value for kind in ("info", "caption", "markdown") for e in at.get(kind))
        assert str(home.parent) not in shown, page  # no server path on any page
        if page == "style_mixer":
            assert "This model has no decoder: no mixture of its latents can be drawn" in shown
        if page == "cluster_styles":
            assert "its most typical member, the one nearest its mean latent (this model has no decoder)" in shown


def test_codes_too_sparse_to_show_are_refused_by_name(home, monkeypatch):
    from vqviz import explorer
    from vqviz.errors import ConfigError

    monkeypatch.setattr(explorer, "MAX_ASSIGNMENT", 1000)
    files.write(home / "sparse.npz", np.zeros((10, 2), np.float32), codes=np.array([0] * 9 + [500]))
    with pytest.raises(ConfigError, match="its codes run up to 500 over 10 rows, too many to show"):
        explorer.open_latents(home / "sparse.npz")
    assert not list((home.parent / "home").rglob("meta.json"))  # nothing saved


def test_the_docs_example_of_a_file_of_latents_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    block, = re.findall(r"```python\n(.*?)```", text[text.index("### A file of latents"):text.index("### Open it")], re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/models.md", "exec"), {"__name__": "docs"})  # noqa: S102
    got = files.read(tmp_path / "embeddings.npz")
    assert (got.n, got.dim, got.classes) == (1000, 32, tuple("0123456789"))


def test_the_app_started_by_vqviz_app_latents_opens_on_the_file(home, monkeypatch):
    """`vqviz app --latents FILE` hands the server the checkpoint through VQVIZ_OPEN: the first page shows it."""
    from vqviz import explorer

    files.write(home / "emb.npz", **digits_latents(codes=True))
    folder = explorer.open_latents(home / "emb.npz")
    monkeypatch.setenv("VQVIZ_OPEN", str(folder))
    at = open_app("latent_map")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.selectbox(key="checkpoint").value == str(folder)
    assert at.selectbox(key="dataset").value == checkpoints.load(folder).dataset


def test_explore_saves_a_trained_model_on_its_data_set_and_refuses_a_wrong_one(home, capsys, tiny_seq):
    from vqviz.errors import ConfigError

    model, _ = tiny_seq
    with pytest.raises(ConfigError, match="name the data set the model is shown on"):
        vqviz.explore(model)
    with pytest.raises(ConfigError, match=r"the model takes \(1, 8, 8\) images, but mnist has \(1, 28, 28\)"):
        vqviz.explore(model, "mnist")
    link = vqviz.explore(model, "digits")
    assert "dataset=digits" in link and "listed" not in capsys.readouterr().out
    folder = home.parent / "home" / "vqviz" / "checkpoints" / "seq-digits"
    assert checkpoints.load(folder).dataset == "digits"
    vqviz.explore(model, "digits", out=home / "elsewhere")
    assert f"the app lists it when VQVIZ_CHECKPOINTS names {home}" in capsys.readouterr().out

    from urllib.parse import parse_qsl, urlsplit

    from streamlit.testing.v1 import AppTest
    from driving import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(dict(parse_qsl(urlsplit(link).query)))
    at.run()
    settled(at)
    assert not at.exception and at.selectbox(key="checkpoint").value == str(folder)


def test_an_uploaded_file_of_latents_counts_against_the_upload_quota(home, monkeypatch):
    from vqviz_app import latents, uploads

    buf = io.BytesIO()
    np.savez(buf, **digits_latents(codes=True))
    monkeypatch.setenv("VQVIZ_UPLOAD_QUOTA_MB", "0.05")  # 50 KB: less than the file
    with pytest.raises(vqviz.errors.DataError, match="does not fit in the disk this server keeps for uploads"):
        latents.open_upload("big.npz", buf.getvalue())
    assert not list((home.parent / "home").rglob("meta.json"))  # nothing kept
    monkeypatch.setenv("VQVIZ_UPLOAD_QUOTA_MB", "100")
    folder, _ = latents.open_upload("big.npz", buf.getvalue())
    assert folder in [u.path for u in uploads.listed()]  # listed with the uploads, and removable there
