"""Bad input never shows a traceback: corrupted or unreadable checkpoints, missing data, wrong shapes."""

from __future__ import annotations

import numpy as np
import pytest
from driving import open_app, variant
from PIL import Image

from vqviz_app import catalog


def test_a_corrupted_checkpoint_shows_an_error_and_the_others_still_work(tmp_path, monkeypatch):
    bad = variant(tmp_path, monkeypatch, "broken")
    for w in bad.glob("weights-*"):
        w.write_bytes(w.read_bytes()[:50])
    at = open_app()
    at.selectbox(key="checkpoint").set_value(str(bad)).run()
    assert not at.exception
    assert "corrupted or truncated" in at.error[0].value
    for page in ("cluster_styles", "style_mixer", "models"):
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
        assert not at.exception
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / "seq-digits-cae4")).run()
    assert not at.exception and not at.error


def test_a_checkpoint_for_a_missing_data_set_shows_an_error(tmp_path, monkeypatch):
    other = variant(tmp_path, monkeypatch, dataset="folder:/nonexistent/images")
    at = open_app()
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
    wrong = variant(tmp_path, monkeypatch, dataset=f"folder:{images}")
    at = open_app("style_mixer")
    at.selectbox(key="checkpoint").set_value(str(wrong)).run()
    assert not at.exception
    assert "takes 1x8x8 images" in at.error[0].value and "1x28x28" in at.error[0].value




@pytest.mark.parametrize("name, raw, changes, reason", [
    ("list-dataset", None, {"dataset": ["digits"]}, "'dataset' should be text or null, not a list"),
    ("list-metrics", None, {"metrics": [1, 2]}, "'metrics' should be an object or null, not a list"),
    ("text-version", None, {"format_version": "2"}, "'format_version' should be a whole number, not text"),
    ("null", "null", {}, "holds null, not an object"),
    ("truncated", '{"format": "vqviz-chec', {}, "not valid JSON"),
])
def test_an_unreadable_checkpoint_is_listed_greyed_explained_and_removable(name, raw, changes, reason, tmp_path,
                                                                          monkeypatch):
    bad = variant(tmp_path, monkeypatch, name, raw=raw, **changes)
    at = open_app()
    assert not at.exception and not at.error  # the default checkpoint opens as before
    assert f"{bad.name} (unreadable)" in at.selectbox(key="checkpoint").options
    at.selectbox(key="checkpoint").set_value(str(bad)).run()
    assert not at.exception and not at.error
    assert any(reason in w.value for w in at.sidebar.warning)  # the picker says why
    assert any("cannot be used" in w.value and reason in w.value for w in at.main.warning)
    for page in ("cluster_styles", "style_mixer", "metrics", "assignment_entropy"):
        at.switch_page(f"vqviz_app/pages/{page}.py").run()
        assert not at.exception and not at.error, page
    at.switch_page("vqviz_app/pages/models.py").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    row = table[table["checkpoint"] == catalog.shown_path(bad)].iloc[0]  # by its root's name, not its full path
    assert row["family"] == "unreadable" and reason in row["folder"]
    at.button(key=f"remove-{bad}").click().run()
    assert not at.exception and not bad.exists()
    assert any(f"Removed **{catalog.shown_path(bad)}**" in s.value for s in at.success)
    assert not any(o.startswith(bad.name) for o in at.selectbox(key="checkpoint").options)
    assert not any(b.key.startswith("remove-") for b in at.button if b.key)


def test_a_bundled_checkpoint_is_never_removed(tmp_path):
    entry = catalog.Entry(str(catalog.BUNDLED_DIR / "seq-digits-lae2"), "seq-digits-lae2", 0, None, "broken",
                          bundled=True)
    with pytest.raises(ValueError, match="not a removable"):
        catalog.remove(entry)
    assert (catalog.BUNDLED_DIR / "seq-digits-lae2" / "meta.json").is_file()


def test_a_failing_sidebar_is_a_message_in_the_page(monkeypatch):
    def broken():
        raise RuntimeError("the catalogue broke")

    monkeypatch.setattr(catalog, "entries", broken)
    at = open_app()
    assert not at.exception
    assert "the catalogue broke" in at.error[0].value and "rest of the app still works" in at.error[0].value


def test_an_uploaded_checkpoint_never_chooses_a_server_folder_to_read(tmp_path):
    """Its meta.json may name any folder: the sidebar does not offer it, nor switch to it."""
    import json
    import shutil

    from driving import ROOT, open_app

    from vqviz_app import catalog

    upload = catalog.user_dir() / catalog.UPLOADS / "model"
    shutil.copytree(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2", upload)
    meta = json.loads((upload / "meta.json").read_text())
    meta["dataset"] = "folder:/etc"
    (upload / "meta.json").write_text(json.dumps(meta))
    at = open_app()
    assert "folder:/etc" not in at.selectbox(key="dataset").options
    at.selectbox(key="checkpoint").set_value(str(upload)).run()
    assert not at.exception and at.selectbox(key="dataset").value == "digits"
    entry = next(e for e in catalog.entries() if e.path == str(upload))
    assert entry.uploaded and entry.dataset == "folder:/etc" and entry.offered_dataset == ""
