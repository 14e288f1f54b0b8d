"""The app, driven by Streamlit's AppTest: it starts, shows the clusters, and survives bad input."""

import json
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _images(at):
    return [e for e in at.main if e.type == "image"]


def test_opens_on_the_bundled_model_with_its_clusters():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "vqviz"
    assert at.selectbox[0].value == "seq-digits-cae4"
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Clusters K", "Encoder accuracy P_E", "Quantizer accuracy P_Q"]
    assert at.metric[0].value == "50"
    # One row of decoded centroids per digit class.
    assert len(_images(at)) == 10
    assert [e for e in at.main if e.type == "plotly_chart"]
    assert not at.error


def test_picking_another_checkpoint_and_split_updates_the_page():
    at = AppTest.from_file(APP, default_timeout=120).run()
    before = [m.value for m in at.metric]
    at.selectbox[0].select("seq-digits-lae2").run()
    assert not at.exception
    after = [m.value for m in at.metric]
    assert after != before
    at.radio[0].set_value("train").run()
    assert at.metric[3].label == "Mean purity (train)"


def test_a_corrupted_checkpoint_shows_an_error_not_a_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "broken"
    shutil.copytree(Path(APP).parent / "checkpoints" / "seq-digits-lae2", bad)
    for w in bad.glob("weights-*"):
        w.write_bytes(w.read_bytes()[:50])
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert str(bad) in at.selectbox[0].options
    at.selectbox[0].select(str(bad)).run()
    assert not at.exception
    assert "corrupted or truncated" in at.error[0].value


def test_a_checkpoint_for_a_missing_data_set_shows_an_error(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    shutil.copytree(Path(APP).parent / "checkpoints" / "seq-digits-lae2", other)
    meta = json.loads((other / "meta.json").read_text())
    meta["dataset"] = "folder:/nonexistent/images"
    (other / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox[0].select(str(other)).run()
    assert not at.exception
    assert "/nonexistent/images" in at.error[0].value
