""""Train one now" on a folder of the user's own: decoded centroids an independent reader recognises,
within its time budget, with an honest time-left estimate; the checkpoint named after the folder; the
decoder warning when the pictures say little; and no Streamlit warning about the split widget."""

from __future__ import annotations

import logging
import time

import pytest
from driving import APP, open_app
from glyphs import glyph_folder
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from vqviz_app import catalog, jobs
from vqviz import checkpoints, data, health


@pytest.fixture
def letters(tmp_path, monkeypatch):
    """A folder of 10 letters x 48 styles (384 training images), one the server lets visitors read."""
    monkeypatch.setenv("VQVIZ_ROOTS", str(tmp_path))
    monkeypatch.delenv("VQVIZ_CONFIG", raising=False)
    return glyph_folder(tmp_path / "letters").resolve()


@pytest.fixture
def streamlit_warnings(monkeypatch):
    """What Streamlit's widget policies log (the "default value but also ... Session State API" warning,
    logged once per process: the flag is reset so that this test sees it)."""
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger(policies.__name__)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


def test_the_quick_path_draws_recognisable_centroids_within_its_budget(letters):
    name = f"folder:{letters}"
    train = data.load(name, "train")
    job = jobs.train_quick(name, len(train), train.n_classes)  # what the "Train one now" button calls
    budget = job.budget.seconds
    estimates = []  # (time, seconds left as the job row shows them)
    while not job.wait(0.5):
        if job.eta is not None and job.stage.startswith(("encoder", "decoder")):
            estimates.append((time.monotonic(), job.eta))
    ended = time.monotonic()
    assert job.state == "done", job.error
    assert job.elapsed <= budget, f"took {job.elapsed:.1f} s of a {budget:.0f} s budget"
    assert job.path.name == "seq-letters"
    metrics = checkpoints.load(job.path).metrics
    check = metrics["decoder_check"]
    print(f"\nquick training on {len(train)} letters: {job.elapsed:.1f} s (budget {budget:.0f} s), K = "
          f"{metrics['k']}, recognisable {check['recognisable']:.0%} (reader on real images "
          f"{check['recognisable_on_data']:.0%}), stages {job.budget.ended}", end="")
    assert check["recognisable"] >= 0.8 and health.decoder_warning(metrics) is None
    # K by the paper's rule (or its most accurate K), among a sweep capped by the data's size
    sweep = jobs.quick_sweep(len(train), train.n_classes)
    assert metrics["k"] in sweep and max(sweep) <= len(train) // 10 and len(metrics["k_curve"]) == len(sweep)
    assert set(job.budget.ended) == {"encoder", "decoder"}
    # the time left it showed was the time that was left: an upper estimate, not twice the truth
    assert estimates
    for at, eta in estimates:
        truth = ended - at
        assert 0.5 * truth - 2 <= eta <= 1.5 * truth + 3, (eta, truth)


def test_a_quick_checkpoint_is_named_after_its_folder():
    assert jobs.new_folder("seq", "folder:/srv/data/my letters") == catalog.user_dir() / "seq-my_letters"
    (catalog.user_dir() / "seq-letters").mkdir(parents=True)
    assert jobs.new_folder("seq", "folder:/srv/data/letters") == catalog.user_dir() / "seq-letters-2"
    assert jobs.new_folder("vqvae", "digits") == catalog.user_dir() / "vqvae-digits"


def test_train_one_now_on_a_folder_finishes_and_opens_it(letters, monkeypatch, streamlit_warnings):
    monkeypatch.setattr(jobs, "QUICK_BUDGET_S", 15.0)  # the stages end sooner; the budget is the rule's
    at = open_app(settle=False)
    at.text_input(key="own_path").input(str(letters)).run()
    assert any("within about 15 s" in i.value and "K by the paper's rule among 10, 14" in i.value for i in at.info)
    at.button(key="train_now").click().run()
    job = at.session_state["quick_job"]
    at.run()
    rows = [p.proto.text for p in at.get("progress")]
    assert rows and "**seq** on **folder letters**" in rows[0] and "budget" in rows[0], rows
    assert job.wait(120) and job.state == "done", job.error
    assert job.elapsed <= 15.0 + 2  # within its budget (a last epoch's slack on a busy machine)
    at.run()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="checkpoint").value == str(job.path) and job.path.name == "seq-letters"
    at.switch_page("vqviz_app/pages/models.py").run()
    assert any("Trained seq on folder letters" in s.value and "seq-letters" in s.value for s in at.success)
    assert any("encoder:" in c.value and "decoder:" in c.value and "epochs" in c.value for c in at.caption)
    assert not [m for m in streamlit_warnings if "Session State API" in m], streamlit_warnings


def test_a_quick_model_whose_pictures_say_little_is_warned_about(letters, monkeypatch):
    monkeypatch.setitem(jobs.QUICK, "max_epochs", 1)  # one epoch a stage: grey blobs
    at = open_app(settle=False)
    at.text_input(key="own_path").input(str(letters)).run()
    at.button(key="train_now").click().run()
    job = at.session_state["quick_job"]
    assert job.wait(120) and job.state == "done", job.error
    assert job.warning and "decoded pictures say little" in job.warning
    at.run()
    at.run()
    at.switch_page("vqviz_app/pages/models.py").run()
    assert any("decoded pictures say little" in w.value for w in at.warning)  # in its row of the Jobs list
    at.switch_page("vqviz_app/pages/cluster_styles.py").run()
    assert any("decoded pictures say little" in w.value for w in at.warning)  # beside the decoded centroids


def test_a_link_to_the_split_all_logs_no_widget_warning(streamlit_warnings):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["split"] = "all"
    at.run()
    assert not at.exception
    assert at.session_state["split"] == "all"
    at.run()
    assert not [m for m in streamlit_warnings if "Session State API" in m], streamlit_warnings
