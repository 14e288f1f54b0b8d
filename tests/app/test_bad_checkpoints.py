"""One bad checkpoint in ``VQVIZ_CHECKPOINTS`` breaks nothing else: every page renders with each one
picked, the good ones stay listed, and the bad ones can be removed from the Models page.

The bad kinds (``tests/bad_checkpoints.py``): a lone surrogate in ``meta.json``, a folder name that is
not UTF-8, a FIFO and a link to ``/dev/zero`` in place of ``meta.json``, a folder in place of the
weights, a decoder check and a codebook history of the wrong types, and weights holding NaN; all in one folder, with one
good checkpoint beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

import bad_checkpoints
import pytest
from driving import SHIPPED, open_app

from vqviz_app import catalog, main


PAGES = list(main.NAMES.values())  # the pages as the app wires them, by module name
#: The pages that load the picked checkpoint: only there do its weights (NaN) come to light.
LOADING = {"latent_map", "cluster_styles", "style_mixer", "assignment_entropy"}
#: What the app says of each bad kind, in the sidebar or the page.
SAYS = {"surrogate-dataset": "'dataset' holds text that is not valid Unicode",
        "undecodable-name": "path is not valid UTF-8", "fifo-meta": "meta.json is not a regular file",
        "endless-meta": "meta.json is not a regular file", "weights-folder": "missing or not a regular file",
        "decoder-check-type": "'metrics.decoder_check.std_ratio' must be a number",
        "codebook-history-type": "'metrics.codebook_history.perplexity[1]' must be a perplexity",
        "nan-weights": "holds NaN or infinite values"}


@pytest.fixture
def bad(tmp_path, monkeypatch) -> dict[str, Path]:
    made = bad_checkpoints.make_all(tmp_path / "mine")
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(tmp_path / "mine"))
    return made


def _shown(at) -> str:
    return "\n".join(el.value for el in (*at.error, *at.warning))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_each_bad_checkpoint_picked(page, bad):
    at = open_app(page)
    assert not at.exception and not at.error  # the default checkpoint opens as before
    listed = {o.split(" · ")[0] for o in at.selectbox(key="checkpoint").options}
    assert {*SHIPPED, "good"} <= listed  # the good ones, usable
    for name, folder in bad.items():
        at.selectbox(key="checkpoint").set_value(catalog.printable(str(folder))).run()
        assert not at.exception, (page, name, at.exception)
        assert "Something went wrong" not in _shown(at), (page, name, _shown(at))
        if name == "good":
            assert not at.error, (page, at.error)
        elif name != "nan-weights" or page in LOADING:  # elsewhere nothing loads its weights
            assert SAYS[name] in _shown(at), (page, name, _shown(at))


def test_the_bad_ones_are_listed_and_removed_on_the_models_page(bad):
    at = open_app(settle=False)
    at.selectbox(key="checkpoint").set_value(str(bad["nan-weights"])).run()  # loading finds the NaN
    assert SAYS["nan-weights"] in at.error[0].value
    at.switch_page("vqviz_app/pages/models.py").run()
    assert not at.exception and "Something went wrong" not in _shown(at)
    table = at.dataframe[0].value
    labels = {e.path: e.label for e in catalog.entries()}
    for name, folder in bad.items():
        row = table[table["checkpoint"] == labels[catalog.printable(str(folder))]].iloc[0]
        assert (row["family"] == "seq") == (name == "good"), name
        if name != "good":
            assert SAYS[name] in row["folder"], name
    for name, folder in bad.items():
        if name == "good":
            continue
        at.button(key=f"remove-{catalog.printable(str(folder))}").click().run()
        assert not at.exception, name
        assert not os.path.lexists(folder), name
        assert any("Removed" in s.value for s in at.success), name
    assert sorted(os.listdir(bad["good"].parent)) == ["good"]
    assert not any(b.key.startswith("remove-") for b in at.button if b.key)
    options = at.selectbox(key="checkpoint").options
    assert "good · seq · digits" in options and all("unreadable" not in o for o in options)
