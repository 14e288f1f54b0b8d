"""The sidebar keeps what the user picked, lists the checkpoints that fit first, and the view is in the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from driving import ROOT, open_app, settled
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1.element_tree import Selectbox

from vqviz_app import catalog


@pytest.fixture
def browser_labels(monkeypatch):
    """Make AppTest send the checkpoint picker's value as a browser does: the label it showed when
    the user last touched the widget, even after the labels changed (AppTest recomputes it)."""
    sent = {}
    plain = Selectbox._widget_state

    def widget_state(self):
        ws = plain.fget(self)
        if self.key == "checkpoint":
            sent.setdefault("label", ws.string_value)  # first shown, never touched since
            ws = WidgetState(id=ws.id, string_value=sent["label"])
        return ws

    monkeypatch.setattr(Selectbox, "_widget_state", property(widget_state))
    return sent


@pytest.mark.parametrize("with_data", [False, True])
def test_a_data_set_change_after_an_error_lands_on_the_new_data_set(with_data, browser_labels, monkeypatch,
                                                                     tmp_path, request):
    if with_data:
        request.getfixturevalue("shared_data")  # real MNIST files, where this checkout has them
    else:
        monkeypatch.setenv("VQVIZ_DATA", str(tmp_path / "no-data"))
    at = open_app(settle=False)
    assert at.selectbox(key="dataset").value == "digits"
    at.selectbox(key="dataset").set_value("fashion-mnist").run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "fashion-mnist"
    assert any("fashion-mnist" in m.value for m in [*at.error, *at.info, *at.warning])  # why no map
    at.selectbox(key="dataset").set_value("mnist").run()
    assert not at.exception and not any("Something went wrong" in e.value for e in at.error)
    assert at.selectbox(key="dataset").value == "mnist"
    at.run()  # and it stays there on the next run
    assert at.selectbox(key="dataset").value == "mnist"
    assert at.query_params["dataset"] == "mnist"


def test_picker_labels_are_short_unique_and_do_not_depend_on_the_data_set(tmp_path):
    entries = [catalog.Entry(str(tmp_path / r / "run"), "run", 0, {"model": "seq", "dataset": d})
               for r, d in (("a", "digits"), ("b", "digits"), ("c", "folder:/x/letters"))]
    entries.append(catalog.Entry(str(tmp_path / "d" / "broken"), "broken", 0, None, "no meta.json"))
    labels = catalog.picker_labels(entries)
    assert list(labels.values()) == ["run · seq · digits", "run · seq · digits (2)", "run · seq · folder letters",
                                     "broken (unreadable)"]


def test_the_checkpoints_that_fit_the_data_set_come_first(tmp_path, monkeypatch):
    from driving import variant

    other = variant(tmp_path, monkeypatch, "big", summary={"family": "seq", "in_shape": [1, 28, 28],
                                                           "n_codes": 10, "n_codebooks": 1, "dataset": "mnist"},
                    dataset="mnist")
    at = open_app(settle=False)
    options = at.selectbox(key="checkpoint").options
    assert not any(o.startswith("big") for o in options)  # 1x28x28: behind the toggle on digits
    at.toggle(key="all_checkpoints").set_value(True).run()
    assert at.selectbox(key="checkpoint").options[-1].startswith("big · seq · mnist")
    at.selectbox(key="dataset").set_value("mnist").run()
    assert at.selectbox(key="checkpoint").value == str(other)  # the one trained on mnist
    assert at.selectbox(key="checkpoint").options[0].startswith("big · seq · mnist")
    assert Path(at.selectbox(key="checkpoint").value).name == "big"


def test_the_url_holds_the_view_and_opening_it_restores_it():
    at = open_app("metrics", settle=False)
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / "seq-digits-lae2")).run()
    at.segmented_control(key="split").set_value("train").run()
    at.radio(key="colour").set_value("cluster").run()
    params = dict(at.query_params)
    assert params == {"page": "metrics", "dataset": "digits", "split": "train", "checkpoint": "seq-digits-lae2",
                      "colour": "cluster", "projection": "tsne"}
    assert any("?page=metrics&dataset=digits&split=train&checkpoint=seq-digits-lae2" in c.value
               for c in at.sidebar.code)  # the link to copy

    from streamlit.testing.v1 import AppTest

    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    again.query_params.update({**params, "projection": "pca", "selection": "3,17"})
    again.run()
    assert not again.exception
    assert again.title[0].value == "Metrics"
    assert Path(again.selectbox(key="checkpoint").value).name == "seq-digits-lae2"
    assert again.segmented_control(key="split").value == "train"
    assert again.radio(key="colour").value == "cluster"
    again.switch_page("vqviz_app/pages/latent_map.py").run()
    settled(again)
    assert again.segmented_control(key="method").value == "pca"
    assert again.session_state["map_selection"]["rows"] == [3, 17]
    assert again.query_params["selection"] == "3,17"
    assert "2 points selected" in [s.value for s in again.subheader]


def test_counts_take_the_right_number():
    from vqviz_app.widgets import plural

    assert [plural(n, "member") for n in (0, 1, 2, 1500)] == ["0 members", "1 member", "2 members", "1,500 members"]
    assert plural(1, "class", "classes") == "1 class" and plural(3, "class", "classes") == "3 classes"


def test_a_link_that_names_only_the_data_set_opens_a_checkpoint_for_it(tmp_path, monkeypatch):
    from driving import variant
    from streamlit.testing.v1 import AppTest

    big = variant(tmp_path, monkeypatch, "big", summary={"family": "seq", "in_shape": [1, 28, 28], "n_codes": 10,
                                                         "n_codebooks": 1, "dataset": "mnist"}, dataset="mnist")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["dataset"] = "mnist"
    at.run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "mnist" and at.selectbox(key="checkpoint").value == str(big)
