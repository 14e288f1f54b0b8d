"""The app, driven by Streamlit's AppTest: every page starts and reacts, and bad input
(a checkpoint of another data set, a missing data set, a corrupted checkpoint, a bad
upload, a diverging run) shows a message, never a traceback.

The bundled checkpoints are copied into a private folder, so that checkpoints other
people add to ``checkpoints/`` do not change what these tests see.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from vqviz import checkpoints, data, explore, metrics, ui, workflow
from vqviz.bench import repro
from vqviz.errors import CheckpointError, ConfigError, TrainingError
from vqviz.models import Model, QuantizerOutput
from vqviz.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SHIPPED = ("seq-digits-cae4", "seq-digits-lae2")


@pytest.fixture(scope="session")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled")
    for name in SHIPPED:
        shutil.copytree(ROOT / "checkpoints" / name, root / name)
    return root


@pytest.fixture(scope="session")
def map_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # shared: each map is computed once per session


@pytest.fixture(autouse=True)
def app_env(bundled, map_cache, tmp_path, monkeypatch):
    """Private checkpoint folders and caches; Streamlit's caches cleared around every test."""
    monkeypatch.setattr(ui, "BUNDLED_DIR", bundled)
    monkeypatch.setattr(repro, "RESULTS", tmp_path / "results")  # no published benchmark unless a test writes one
    monkeypatch.setenv("XDG_CACHE_HOME", str(map_cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("VQVIZ_CHECKPOINTS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _images(at) -> dict[str, str]:
    """Caption -> URL of every image; the URL is a hash of the PNG, so it changes with the picture."""
    return {c: u for el in at.get("image") for c, u in zip(el.captions, el.value)}


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _reference(name="seq-digits-cae4", split="test"):
    """Clusters of a split computed straight from the model, independently of the app."""
    ckpt = checkpoints.load(ROOT / "checkpoints" / name)
    ds = data.load("digits", split)
    with torch.no_grad():
        idx = ckpt.model.quantize(ckpt.model.encode(torch.as_tensor(np.array(ds.images)))).indices.numpy()
    return ckpt, ds, idx


# ----- the latent map -----
def test_opens_on_the_bundled_model_with_a_webgl_map():
    at = _app()
    assert at.title[0].value == "Latent map"
    assert at.selectbox(key="dataset").value == "digits"
    assert Path(at.selectbox(key="checkpoint").value).name == "seq-digits-cae4"
    assert at.button_group(key="split").value == "test"
    (fig,) = _figures(at)
    traces = fig["data"]
    assert {t["type"] for t in traces} == {"scattergl"}
    assert [t["name"] for t in traces] == list("0123456789")  # coloured by true label
    rows = np.concatenate([_rows(t) for t in traces])
    assert sorted(rows) == list(range(360))  # customdata holds the global row of every point
    assert not at.error


def _rows(trace) -> np.ndarray:
    """The global row numbers of a trace, from its customdata (plotly's typed-array encoding)."""
    cd = trace["customdata"]
    flat = np.frombuffer(base64.b64decode(cd["bdata"]), dtype=np.dtype(cd["dtype"]))
    return flat.reshape([int(s) for s in str(cd["shape"]).split(",")])[:, 0]


def test_a_selection_opens_the_panel_of_its_cluster():
    _, ds, idx = _reference()
    row = 17
    k = int(idx[row])
    members = np.flatnonzero(idx == k)
    ckpt = checkpoints.load(ROOT / "checkpoints" / "seq-digits-cae4")
    label = int(ckpt.model.cluster_labels[k])
    purity = np.mean(ds.labels[members] == label)

    at = _app()
    assert any("Click a point" in i.value for i in at.info)
    # What the map's on_select callback stores: plotly's selection, global row first in customdata.
    at.session_state["map_selection"] = {"points": [{"curve_number": 3, "point_index": 0,
                                                     "customdata": {"0": row, "1": 0, "2": k}}]}
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == "1 point selected"
    assert any(m.value.startswith(f"**Cluster {k}** · label **{label}** · {len(members)} members")
               for m in at.markdown)
    assert [m.value for m in at.metric if m.label == "Purity"] == [f"{purity:.0%}"]
    captions = _images(at)
    assert "decoded centroid" in captions and f"{min(24, len(members))} of its members" in captions
    # The selected point and its cluster's members are highlighted on the map.
    traces = {t["name"]: t for t in _figures(at)[0]["data"]}
    assert list(_rows(traces["selected"])) == [row]
    assert sorted(_rows(traces["cluster members"])) == list(members)

    # A lasso over points of several clusters opens one panel per cluster, the largest share first.
    rows = [int(r) for r in np.flatnonzero(ds.labels == 1)[:12]]
    at.session_state["map_selection"] = {"points": [{"customdata": [r, 1, int(idx[r])]} for r in rows]}
    at.run()
    assert at.subheader[0].value == "12 points selected"
    shown = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    counts = np.bincount(idx[rows])
    assert len(shown) == min(3, (counts > 0).sum())
    assert shown[0].startswith(f"**Cluster {counts.argmax()}**")


def test_projection_and_colouring_change_the_map():
    at = _app()
    tsne = _figures(at)[0]
    at.button_group(key="method").set_value("pca").run()
    assert not at.exception and not at.error
    pca = _figures(at)[0]
    assert pca["data"][0]["x"] != tsne["data"][0]["x"]
    at.radio(key="colour").set_value("entropy").run()
    (trace,) = _figures(at)[0]["data"]
    assert trace["marker"]["colorscale"] and trace["name"] == "entropy"
    assert any("entropy is 0" in c.value for c in at.caption)  # SEQ's k-means is a hard quantizer
    at.radio(key="colour").set_value("correct").run()
    assert [t["name"] for t in _figures(at)[0]["data"]] == ["right", "wrong"]


def _xy(trace) -> np.ndarray:
    return np.stack([_array(trace["x"]), _array(trace["y"])], 1).astype(float)


def test_the_test_split_placed_on_the_train_map():
    from sklearn.decomposition import PCA

    at = _app()
    at.button_group(key="method").set_value("pca").run()
    at.toggle(key="on_train").set_value(True).run()
    assert not at.exception and not at.error
    traces = _figures(at)[0]["data"]
    assert traces[0]["name"] == "train map" and "customdata" not in traces[0]
    assert len(_array(traces[0]["x"])) == 1437
    # The test points sit where the train map's own PCA puts them, in the same coordinates.
    ckpt = checkpoints.load(ROOT / "checkpoints" / "seq-digits-cae4")
    z_train = ckpt.model.encode_array(data.load("digits", "train").images)
    z_test = ckpt.model.encode_array(data.load("digits", "test").images)
    pca = PCA(n_components=2, random_state=0).fit(z_train)
    offset = pca.transform(z_train).mean(0)
    want = pca.transform(z_test) - offset
    got = np.zeros_like(want)
    for t in traces[1:]:
        got[_rows(t)] = _xy(t)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert any("placed" in c.value and "1,437 training points" in c.value for c in at.caption)
    # The toggle belongs to the test split only.
    at.button_group(key="split").set_value("train").run()
    assert at.toggle(key="on_train").disabled and not at.exception
    assert _figures(at)[0]["data"][0]["name"] != "train map"


# ----- cluster styles -----
def test_cluster_styles_shows_every_centroid_and_the_subclasses_of_a_class():
    ckpt, _, idx = _reference()
    cluster_labels = ckpt.model.cluster_labels.numpy()
    at = _app("cluster_styles")
    assert at.title[0].value == "Cluster styles"
    assert not at.error
    tiles = [c for c in _images(at) if c.startswith("#")]
    assert len(tiles) == ckpt.model.k == 50
    assert [m.value for m in at.metric][:1] == ["50"]
    at.button_group(key="styles_class").set_value(6).run()
    assert not at.exception
    used = [k for k in range(50) if cluster_labels[k] == 6 and (idx == k).any()]
    rows = [c for c in _images(at) if c.startswith("cluster ")]
    assert sorted(rows) == sorted(f"cluster {k}" for k in used)


# ----- the style mixer -----
def test_moving_a_slider_changes_the_decoded_mixture():
    at = _app("style_mixer")
    assert at.title[0].value == "Style mixer"
    assert not at.error
    before = _images(at)
    mix = next(c for c in before if c.startswith("mixture"))
    assert mix == "mixture 0.25 z1 + 0.25 z2 + 0.50 z3"
    assert [c[:2] for c in before if c.startswith("z")] == ["z1", "z2", "z3"]
    assert at.download_button[0].label == "Download as PNG"
    at.slider(key="alpha1").set_value(0.5).run()
    assert not at.exception
    after = _images(at)
    assert "mixture 0.50 z1 + 0.25 z2 + 0.25 z3" in after
    assert after["mixture 0.50 z1 + 0.25 z2 + 0.25 z3"] != before[mix]
    assert [m.value for m in at.metric] == ["0.25"]  # a3 = 1 - a1 - a2


def test_the_mixer_takes_its_latents_from_a_cluster_or_at_random():
    at = _app("style_mixer")
    first = [c for c in _images(at) if c.startswith("z")]
    at.button_group(key="mix_source").set_value("one cluster").run()
    k = at.selectbox(key="mix_cluster").value
    picked = [c for c in _images(at) if c.startswith("z")]
    assert all(c.endswith(f"cluster {k}") for c in picked)
    at.button_group(key="mix_source").set_value("random").run()
    at.button[-1].click().run()  # draw again
    assert not at.exception and [c for c in _images(at) if c.startswith("z")] != first


# ----- metrics -----
def test_metrics_show_the_k_curve_and_the_downstream_table():
    meta = checkpoints.read_meta(ROOT / "checkpoints" / "seq-digits-cae4")
    at = _app("metrics")
    assert at.title[0].value == "Metrics" and not at.error
    values = {m.label: m.value for m in at.metric}
    assert values["Encoder P_E"] == f"{meta['metrics']['p_e']:.2%}"
    assert values["K picked by the rule"] == str(meta["metrics"]["k_rule"])
    (fig,) = _figures(at)
    assert [len(t["x"]) for t in fig["data"]] == [len(meta["metrics"]["k_curve"])] * 2
    saved, table = (d.value for d in at.dataframe)
    assert dict(zip(saved["metric"], saved["value"]))["k_rule"] == meta["metrics"]["k_rule"]
    assert list(table["checkpoint"]) == list(SHIPPED)
    assert (table["k-means accuracy"] > 0.5).all() and (table["linear probe"] > 0.8).all()
    # Picking the other checkpoint in the sidebar changes the curve.
    lae2 = next(o for o in at.selectbox(key="checkpoint").options if o.endswith("lae2"))
    at.selectbox(key="checkpoint").set_value(str(ui.BUNDLED_DIR / lae2)).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Encoder P_E"] != values["Encoder P_E"]


def _bench_record(protocol, label, seed, figures):
    run = {"label": label, "model": "seq", "config": {}, "epochs": 3, "batch_size": 32, "lr": 1e-3}
    return {"protocol": protocol, "run": run, "seed": seed, "figures": figures, "cpu_seconds": 60.0}


def test_metrics_show_the_benchmark_next_to_the_papers(tmp_path):
    ks = [10, 50, 120]
    runs = [_bench_record("seq", enc, seed, {"p_e": p_e, "k_rule": 50, "test_accuracy_kmax": acc[-1],
                                             "train_accuracy_kmax": 0.995,
                                             "k_curve": [{"k": k, "test_accuracy": a} for k, a in zip(ks, acc)]})
            for seed in (0, 1)
            for enc, p_e, acc in (("lae2", 0.98, [0.90, 0.97, 0.979]), ("cae4", 0.992, [0.95, 0.99, 0.991]))]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mnist.json").write_text(json.dumps({"dataset": "mnist", "runs": runs}))
    at = _app("metrics")
    assert at.segmented_control(key="bench_dataset").value == "mnist"
    curves = next(f for f in _figures(at) if "Fig. 3" in f["layout"].get("title", {}).get("text", ""))
    assert [t["name"] for t in curves["data"]] == ["LAE-2 P_Q", "LAE-2 P_E", "CAE-4 P_Q", "CAE-4 P_E"]
    assert curves["data"][2]["x"] == ks and curves["data"][1]["y"] == [0.98, 0.98]
    table = at.dataframe[-1].value
    pq = "quantizer accuracy P_Q (test), largest K"
    row = table[(table["model"] == "CAE-4") & (table["figure"] == pq)].iloc[0]
    assert row["ours"] == "99.10 % ± 0 % (2)" and row["paper"] == "99.00 %" and row["verdict"].startswith("met")
    lae2 = table[(table["model"] == "LAE-2") & (table["figure"] == "encoder accuracy P_E (test)")].iloc[0]
    assert lae2["paper"] == "" and lae2["verdict"] == "no figure in the paper"


def test_metrics_without_benchmark_results_say_how_to_make_them():
    at = _app("metrics")
    assert any("bench repro" in i.value for i in at.info)


def test_a_corrupt_benchmark_file_is_a_warning(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mnist.json").write_text("{broken")
    at = _app("metrics")
    assert any("cannot be read" in w.value for w in at.warning)


# ----- models: list, train, upload -----
def _wait_for_training(at, seconds=60):
    deadline = time.monotonic() + seconds
    while at.session_state["train_job"].running and time.monotonic() < deadline:
        time.sleep(0.25)
        at.run()
    at.run()
    return at


def test_training_from_the_browser_adds_a_checkpoint_to_the_picker():
    at = _app("models")
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
    assert new.parent == ui.user_dir()
    assert at.selectbox(key="checkpoint").value == str(new)  # listed in the picker, and picked
    assert new.name in at.selectbox(key="checkpoint").options
    assert checkpoints.load(new).meta["config"]["latent_dim"] == 16


def test_a_diverging_run_shows_an_error_and_the_app_goes_on(monkeypatch):
    def diverge(*args, **kwargs):
        raise TrainingError("the loss became nan in stage 'encoder' at epoch 1, step 3; training stopped")

    monkeypatch.setattr(workflow, "train", diverge)
    at = _app("models")
    at.button[0].click().run()
    _wait_for_training(at)
    assert not at.exception
    assert "the loss became nan" in at.error[0].value
    at.switch_page("app_pages/latent_map.py").run()
    assert not at.exception and not at.error and _figures(at)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return buf.getvalue()


def _checkpoint_zip(folder="seq-digits-lae2", prefix="my-model/") -> bytes:
    src = ROOT / "checkpoints" / folder
    return _zip({prefix + p.name: p.read_bytes() for p in src.iterdir()})


def test_an_uploaded_checkpoint_is_installed_and_picked():
    at = _app("models")
    at.file_uploader(key="upload").upload("my-model.zip", _checkpoint_zip(), "application/zip").run()
    assert not at.exception and not at.error
    assert any("Added **my-model**" in s.value for s in at.success)
    installed = Path(ui.user_dir()) / "uploads" / "my-model"
    assert at.selectbox(key="checkpoint").value == str(installed)
    assert checkpoints.load(installed).name == "seq"


@pytest.mark.parametrize("name, blob, message", [
    ("noise.zip", b"\x00" * 100, "not a .zip file"),
    ("model.pt", b"\x80\x04\x95" + b"\x00" * 50, "pickle"),
    ("torch.zip", _zip({"archive/data.pkl": b"\x80\x04", "archive/version": b"3"}), "never unpickles"),
    ("slip.zip", _zip({"../../evil/meta.json": b"{}"}), "unsafe path"),
    ("empty.zip", _zip({"readme.txt": b"hi"}), "no meta.json"),
])
def test_a_bad_upload_is_refused_with_a_message(name, blob, message, tmp_path):
    at = _app("models")
    at.file_uploader(key="upload").upload(name, blob).run()
    assert not at.exception
    assert message in at.error[0].value
    assert not (ui.user_dir() / "uploads").exists() or not any((ui.user_dir() / "uploads").iterdir())


# ----- bad checkpoints and data -----
def _variant(tmp_path, monkeypatch, name="variant", **meta_changes) -> Path:
    folder = tmp_path / "mine" / name
    shutil.copytree(ROOT / "checkpoints" / "seq-digits-lae2", folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(meta_changes)
    (folder / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "mine"))
    return folder


def test_a_corrupted_checkpoint_shows_an_error_and_the_others_still_work(tmp_path, monkeypatch):
    bad = _variant(tmp_path, monkeypatch, "broken")
    for w in bad.glob("weights-*"):
        w.write_bytes(w.read_bytes()[:50])
    at = _app()
    at.selectbox(key="checkpoint").set_value(str(bad)).run()
    assert not at.exception
    assert "corrupted or truncated" in at.error[0].value
    for page in ("cluster_styles", "style_mixer", "models"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception
    at.selectbox(key="checkpoint").set_value(str(ui.BUNDLED_DIR / "seq-digits-cae4")).run()
    assert not at.exception and not at.error


def test_a_checkpoint_for_a_missing_data_set_shows_an_error(tmp_path, monkeypatch):
    other = _variant(tmp_path, monkeypatch, dataset="folder:/nonexistent/images")
    at = _app()
    at.selectbox(key="checkpoint").set_value(str(other)).run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "folder:/nonexistent/images"  # the data follows the model
    assert "/nonexistent/images" in at.error[0].value


def test_a_checkpoint_of_another_data_sets_shape_is_refused(tmp_path, monkeypatch):
    images = tmp_path / "letters"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (images / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(images / cls / f"{i}.png")
    wrong = _variant(tmp_path, monkeypatch, dataset=f"folder:{images}")
    at = _app("style_mixer")
    at.selectbox(key="checkpoint").set_value(str(wrong)).run()
    assert not at.exception
    assert "takes 1x8x8 images" in at.error[0].value and "1x28x28" in at.error[0].value


# ----- the computing behind the pages -----
def test_selected_rows_reads_customdata_of_every_shape():
    sel = {"points": [{"customdata": [5, 1, 2]}, {"customdata": {"0": 3, "1": 0}}, {"customdata": 5},
                      {"x": 0.0}]}
    assert explore.selected_rows(sel).tolist() == [3, 5]
    assert explore.selected_rows(None).tolist() == []


def test_mixing_picture_puts_the_three_latents_in_its_corners():
    ckpt = checkpoints.load(ROOT / "checkpoints" / "seq-digits-lae2")
    z = ckpt.model.encode_array(data.load("digits", "test").images[:3])
    picture = explore.mixing_picture(ckpt.model, z, steps=4, scale=2, gap=8, frame=4)
    tile = 8 * 2
    assert picture.shape == (4 * (tile + 8) + 8, 4 * (tile + 8) + 8, 3)
    decoded = ckpt.model.decode_array(z)
    for i, (row, col) in enumerate([(0, 0), (0, 3), (3, 3)]):
        y, x = 8 + row * (tile + 8), 8 + col * (tile + 8)
        expected = (np.clip(decoded[i, 0], 0, 1) * 255 + 0.5).astype(np.uint8).repeat(2, 0).repeat(2, 1)
        np.testing.assert_array_equal(picture[y:y + tile, x:x + tile, 0], expected)
        assert tuple(picture[y - 2, x - 2]) == explore.MARKS[i]  # its frame
    assert (picture[8 + 3 * (tile + 8):, :8 + 3 * (tile + 8) - 4] == 255).all()  # below the diagonal: empty


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
    src = ROOT / "checkpoints" / "seq-digits-lae2"
    weights = next(src.glob("weights-*"))
    broken = _zip({"meta.json": (src / "meta.json").read_bytes(), weights.name: weights.read_bytes()[:100]})
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        checkpoints.install_checkpoint_zip(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model-2"]  # nothing else left behind


def test_the_stop_button_ends_a_run_and_saves_nothing():
    at = _app("models")
    at.number_input(key="t_epochs").set_value(500)
    at.button[0].click().run()
    stop = next(b for b in at.button if b.label == "Stop")
    stop.click().run()
    _wait_for_training(at)
    assert not at.exception and at.session_state["train_job"].state == "stopped"
    assert "nothing was saved" in at.warning[0].value
    assert not checkpoints.find(ui.user_dir())


def test_without_any_checkpoint_every_page_points_to_the_models_page(tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "BUNDLED_DIR", tmp_path / "none")
    at = _app()
    assert "Train one on the **Models** page" in at.info[0].value
    for page in ("cluster_styles", "style_mixer", "metrics", "models"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception and not at.error


# ----- assignment entropy (the SK-VQ paper's Table 1) -----
CODEBOOK_SHIPPED = ("skvq-digits", "skvq-digits-vq", "vqvae-digits")


@pytest.fixture(scope="session")
def bundled_codebooks(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled-codebooks")
    for name in (*SHIPPED, *CODEBOOK_SHIPPED):
        shutil.copytree(ROOT / "checkpoints" / name, root / name)
    return root


@pytest.fixture
def codebooks(app_env, bundled_codebooks, monkeypatch):
    """The private bundled folder with the shipped VQ-VAE and SK-VQ checkpoints added."""
    monkeypatch.setattr(ui, "BUNDLED_DIR", bundled_codebooks)
    return bundled_codebooks


def _entropy_metrics(at) -> list[dict[str, str]]:
    """Left's and right's {label: value} of the page's st.metric rows, three each."""
    values = [(m.label, m.value) for m in at.metric]
    return [dict(values[:3]), dict(values[3:6])]


def _expected(name: str, split: str = "test") -> dict[str, str]:
    """The three numbers as the page should print them, from metrics.codebook_usage on the model's own indices."""
    ckpt = checkpoints.load(ROOT / "checkpoints" / name)
    q = ckpt.model.quantize_array(data.load("digits", split).images)
    k = q["probs"].shape[-1]
    usage = metrics.codebook_usage(q["indices"], k)
    return {"Usage entropy": f"{usage['usage_entropy']:.2f} nats", "Perplexity": f"{usage['perplexity']:.1f}",
            "Dead codes": f"{usage['dead_codes']:.3g} of {k}"}


def _array(values) -> np.ndarray:
    """A plotly data array, plain or typed ({"bdata", "dtype"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values)


def _pick(at, name: str) -> None:
    at.selectbox(key="checkpoint").set_value(str(ui.BUNDLED_DIR / name)).run()


def test_assignment_entropy_opens_on_the_default_seq_checkpoint(codebooks):
    at = _app("assignment_entropy")
    assert at.title[0].value == "Assignment entropy" and not at.error
    assert Path(at.selectbox(key="checkpoint").value).name == "seq-digits-cae4"
    # SEQ's k-means quantizer is hard: a caption says so instead of a histogram of zeros.
    assert any("Every assignment of this model is hard" in c.value for c in at.caption)
    left, right = _entropy_metrics(at)
    assert left == _expected("seq-digits-cae4")
    right_path = Path(at.selectbox(key="entropy_right").value)
    assert right_path.name == "skvq-digits"  # another family by default
    assert right == _expected("skvq-digits")
    assert [t["type"] for fig in _figures(at) for t in fig["data"]] == ["bar", "histogram", "bar"]


def test_assignment_entropy_compares_sk_vq_with_plain_vq(codebooks):
    at = _app("assignment_entropy")
    _pick(at, "skvq-digits")
    assert not at.exception and not at.error
    assert Path(at.selectbox(key="entropy_right").value).name == "skvq-digits-vq"  # its plain-VQ twin
    sk, vq = _entropy_metrics(at)
    assert sk == _expected("skvq-digits") and vq == _expected("skvq-digits-vq")
    meta = checkpoints.read_meta(ROOT / "checkpoints" / "skvq-digits")["metrics"]
    assert sk["Perplexity"] == f"{meta['test_perplexity']:.1f}"  # as Model.evaluate counted it when trained
    # Momentum Sinkhorn-Knopp spreads the samples over more codewords than plain VQ.
    assert float(sk["Perplexity"]) > 2 * float(vq["Perplexity"])
    assert int(sk["Dead codes"].split()[0]) < int(vq["Dead codes"].split()[0])
    # Two charts a model: the histogram of soft entropies (both SK-VQs have soft_probs), the sorted usage.
    figs = _figures(at)
    assert [[t["type"] for t in f["data"]] for f in figs] == [["histogram"], ["bar"]] * 2
    for hist, bars in (figs[:2], figs[2:]):
        assert len(_array(hist["data"][0]["x"])) == 360  # one entropy per test image
        counts = _array(bars["data"][0]["y"])
        assert counts.sum() == 360 and (np.diff(counts) <= 0).all()  # most used first
    assert not any("Every assignment of this model is hard" in c.value for c in at.caption)


def test_assignment_entropy_right_model_choice_updates_its_numbers(codebooks):
    at = _app("assignment_entropy")
    _pick(at, "skvq-digits")
    before = _entropy_metrics(at)
    at.selectbox(key="entropy_right").set_value(str(ui.BUNDLED_DIR / "vqvae-digits")).run()
    assert not at.exception and not at.error
    left, right = _entropy_metrics(at)
    assert left == before[0]
    assert right == _expected("vqvae-digits") != before[1]
    assert any("Every assignment of this model is hard" in c.value for c in at.caption)  # VQ-VAE: one-hot
    assert [[t["type"] for t in f["data"]] for f in _figures(at)] == [["histogram"], ["bar"], ["bar"]]
    # The choice outlives a visit to another page and a change of split; the numbers follow the split.
    at.switch_page("app_pages/cluster_styles.py").run()
    at.switch_page("app_pages/assignment_entropy.py").run()
    assert Path(at.selectbox(key="entropy_right").value).name == "vqvae-digits"
    at.button_group(key="split").set_value("train").run()
    assert Path(at.selectbox(key="entropy_right").value).name == "vqvae-digits"
    assert _entropy_metrics(at) == [_expected("skvq-digits", "train"), _expected("vqvae-digits", "train")]


def test_assignment_entropy_of_a_model_without_a_codebook_says_so(codebooks, tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "ae-digits"
    workflow.train("ae", "digits", out=folder, train_config=TrainConfig(epochs=1, seed=0), encoder="lae2",
                   latent_dim=8)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "mine"))
    at = _app("assignment_entropy")
    at.selectbox(key="checkpoint").set_value(str(folder)).run()
    assert not at.exception and not at.error
    assert "has no codebook" in at.info[0].value
    assert not at.metric and not _figures(at)
    # ... and it is never offered on the right.
    _pick(at, "skvq-digits")
    assert str(folder) not in at.selectbox(key="entropy_right").options


class _Stub(Model):
    """A hand-made quantizer: each 'image' holds its L indices, then its L rows of K probabilities."""

    name = "stub"
    has_quantizer = True

    def __init__(self, k: int, n_codebooks: int = 1):
        super().__init__(None)
        self.k, self.n_codebooks = k, n_codebooks
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return x.flatten(1)

    def quantize(self, z):
        n, l, k = len(z), self.n_codebooks, self.k
        idx = z[:, :l].long().squeeze(1) if l == 1 else z[:, :l].long()
        probs = z[:, l:].reshape(n, k) if l == 1 else z[:, l:].reshape(n, l, k)
        return QuantizerOutput(z, idx, probs, z.new_zeros(()), {})


def _stub_images(idx, probs) -> np.ndarray:
    idx, probs = np.asarray(idx, np.float32).reshape(len(idx), -1), np.asarray(probs, np.float32)
    return np.concatenate([idx, probs.reshape(len(idx), -1)], 1)[:, None, None, :]


def test_codebook_stats_match_codebook_usage_on_a_hand_example():
    idx = [0, 0, 1, 3]
    probs = [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 1, 0, 0], [0.25] * 4]
    s = explore.codebook_stats(_Stub(4), _stub_images(idx, probs))
    usage = metrics.codebook_usage(np.array(idx), 4)
    assert s.counts.tolist() == [usage["counts"]] == [[2, 1, 0, 1]]
    assert s.sorted_counts.tolist() == [[2, 1, 1, 0]] and s.order.tolist() == [[0, 1, 3, 2]]
    np.testing.assert_allclose(s.usage_entropy, [usage["usage_entropy"]])
    np.testing.assert_allclose(s.usage_entropy, [1.5 * np.log(2)])  # -(1/2 ln 1/2 + 2 * 1/4 ln 1/4)
    np.testing.assert_allclose(s.perplexity, [2 ** 1.5])
    assert s.dead_codes.tolist() == [usage["dead_codes"]] == [1]
    np.testing.assert_allclose(s.entropy, [0, np.log(2), 0, np.log(4)], atol=1e-6)
    assert not s.hard and s.max_entropy == pytest.approx(np.log(4)) and s.soft_source == "quantize"

    # Two codebooks: one value per codebook; a sample's entropy is the mean over its codebooks.
    idx2 = np.array([[0, 2], [1, 2], [1, 2]])
    one_hot = np.eye(3)[idx2]  # (N, L, K)
    s2 = explore.codebook_stats(_Stub(3, 2), _stub_images(idx2, one_hot))
    usage2 = metrics.codebook_usage(idx2, 3)
    assert s2.n_codebooks == 2 and s2.counts.tolist() == usage2["counts"] == [[1, 2, 0], [0, 0, 3]]
    np.testing.assert_allclose(s2.perplexity, usage2["perplexity"])
    assert s2.dead_codes.tolist() == usage2["dead_codes"] == [1, 2]
    assert s2.hard and not s2.entropy.any()


def test_codebook_stats_take_sk_vq_entropies_from_its_soft_probs():
    ckpt = checkpoints.load(ROOT / "checkpoints" / "skvq-digits")
    images = data.load("digits", "test").images
    s = explore.codebook_stats(ckpt.model, images)
    assert s.soft_source == "soft_probs"
    with torch.no_grad():
        probs = ckpt.model.soft_probs(torch.as_tensor(ckpt.model.encode_array(images)))
    np.testing.assert_allclose(s.entropy, metrics.assignment_entropy(probs), rtol=1e-5, atol=1e-6)
    assert (s.entropy <= s.max_entropy + 1e-9).all() and s.entropy.mean() > 0.5
    assert s.counts.sum() == len(images)
    assert explore.has_codebook("skvq", {"quantizer": "sinkhorn"})
    assert not explore.has_codebook("skvq", {"quantizer": "none"}) and not explore.has_codebook("ae", {})
    assert not explore.has_codebook("no-such-family", {})
    plain = type(ckpt.model)(type(ckpt.model.config)(quantizer="none"))  # a classifier without a codebook
    with pytest.raises(ConfigError, match="no codebook"):
        explore.codebook_stats(plain, images)
