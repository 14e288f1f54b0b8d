"""Training jobs belong to the server: every session sees them and can stop them, within a second or two."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch
from driving import open_app

from app import catalog, jobs
from vqviz import checkpoints, cluster


def _wait_until(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_job_is_seen_and_stopped_from_a_second_session():
    at = open_app("models")
    at.number_input(key="t_epochs").set_value(500)
    at.number_input(key="t_threads").set_value(1)
    at.button[0].click().run()
    job = at.session_state["train_job"]
    assert job.running and job.threads == 1
    _wait_until(lambda: job.fraction > 0)
    other = open_app("models", settle=False)  # another tab, or the same user after closing the first
    rows = [p for p in other.get("progress") if "**seq** on **digits**" in p.proto.text]
    assert rows and "encoder · epoch" in rows[0].proto.text and "1 thread" in rows[0].proto.text
    assert jobs.registry().get(job.id) is job
    other.button(key=f"stop-{job.id}").click().run()
    assert job.wait(10) and job.state == "stopped"
    other.run()
    assert any("was stopped" in w.value and "nothing was saved" in w.value for w in other.warning)
    assert not checkpoints.find(catalog.user_dir())


def test_stop_is_heard_inside_k_means(monkeypatch):
    plain = cluster.squared_distances

    def slow(z, codebook):  # k-means iterations of a large data set: each takes a while
        time.sleep(0.01)
        return plain(z, codebook)

    monkeypatch.setattr(cluster, "squared_distances", slow)
    at = open_app("models")
    at.number_input(key="t_epochs").set_value(1)
    at.toggle(key="t_kauto_seq").set_value(True).run()
    at.button[0].click().run()
    job = at.session_state["train_job"]
    _wait_until(lambda: job.stage.startswith("kmeans") and len(job.curve) >= 2, 120)
    at.run()
    assert any("restart" in p.proto.text and "K=" in p.proto.text for p in at.get("progress"))  # the stage
    assert any("as the sweep scores it" in c.value for c in at.caption)  # its curve, so far
    asked = time.monotonic()
    at.button(key=f"stop-{job.id}").click().run()
    assert job.wait(2.0), "the stop took more than 2 s"
    assert job.state == "stopped" and time.monotonic() - asked < 2.5
    assert len(job.curve) < 12  # it did not wait for the sweep to end


def test_a_job_runs_on_its_thread_count_and_the_server_gets_its_own_back():
    before = torch.get_num_threads()
    # a count the page offers (1 to the cores) other than the server's own
    want = next((n for n in range(1, (os.cpu_count() or 1) + 1) if n != before), None)
    if want is None:
        pytest.skip("one core, and torch already on one thread: no other count to set")
    at = open_app("models")
    at.number_input(key="t_epochs").set_value(500)
    at.number_input(key="t_threads").set_value(want)
    at.button[0].click().run()
    job = at.session_state["train_job"]
    _wait_until(lambda: job.fraction > 0)
    assert job.threads == job.torch_threads == want  # in the job's thread
    job.stop()
    assert job.wait(10) and job.state == "stopped"
    assert torch.get_num_threads() == before  # the count is process-wide: it is given back


# ----- caps on the jobs that run at once (VQVIZ_MAX_JOBS, VQVIZ_MAX_JOBS_PER_SESSION) -----
def _endless(*args, download_progress, **kwargs):
    """Training that runs until it is stopped, fast to start and to stop."""
    while True:
        download_progress(0, 1)  # the job's stop check: raises StopTraining once stopped
        time.sleep(0.01)


@pytest.fixture
def endless(monkeypatch):
    from vqviz import workflow

    monkeypatch.setattr(workflow, "train", _endless)
    monkeypatch.delenv("VQVIZ_MAX_JOBS", raising=False)
    monkeypatch.delenv("VQVIZ_MAX_JOBS_PER_SESSION", raising=False)
    yield
    for job in jobs.registry().running():
        job.stop()


def _start(session):
    from vqviz.train import TrainConfig

    return jobs.start_training("seq", "digits", TrainConfig(epochs=1), {}, threads=1, session=session)


def test_the_caps_hold_per_session_and_per_server_and_refused_jobs_never_start(endless, monkeypatch):
    first = _start("a")
    with pytest.raises(jobs.JobLimit, match=r"this session already runs 1 training job.*PER_SESSION = 1"):
        _start("a")
    second = _start("b")
    with pytest.raises(jobs.JobLimit, match=r"2 training jobs already run on this server.*VQVIZ_MAX_JOBS = 2"):
        _start("c")
    assert jobs.registry().running() == [second, first] and len(jobs.registry().jobs()) == 2
    assert sum(t.name.startswith("vqviz-train") for t in threading.enumerate()) == 2
    first.stop()
    assert first.wait(10) and first.state == "stopped"
    third = _start("c")  # a place came free
    assert third.running
    monkeypatch.setenv("VQVIZ_MAX_JOBS_PER_SESSION", "2")
    monkeypatch.setenv("VQVIZ_MAX_JOBS", "3")
    assert _start("c").running
    monkeypatch.setenv("VQVIZ_MAX_JOBS", "0")
    with pytest.raises(jobs.JobLimit, match="training is turned off"):
        _start("d")


def test_pressing_train_over_a_cap_warns_where_train_is_pressed(endless, tmp_path, monkeypatch):
    mine = open_app("models", settle=False)
    mine.button[0].click().run()
    job = mine.session_state["train_job"]
    assert job.running
    mine.button[0].click().run()  # a second job in the same session
    assert not mine.exception and not mine.error
    assert any("VQVIZ_MAX_JOBS_PER_SESSION" in w.value for w in mine.warning)
    assert mine.session_state["train_job"] is job and len(jobs.registry().running()) == 1
    other = open_app("models", settle=False)  # another session may: two per server
    other.button[0].click().run()
    assert len(jobs.registry().running()) == 2 and not other.warning
    from PIL import Image

    for cls in ("dark", "light"):  # 28x28 images, which no bundled checkpoint takes
        (tmp_path / "own" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (28, 28), 40 * i + (100 if cls == "light" else 0)).save(tmp_path / "own" / cls / f"{i}.png")
    monkeypatch.setenv("VQVIZ_ROOTS", str(tmp_path))
    third = open_app(settle=False)  # "Train one now" in a third session
    third.text_input(key="own_path").input(str(tmp_path / "own")).run()
    third.button(key="train_now").click().run()
    assert not third.exception
    assert any("already run on this server" in w.value and "VQVIZ_MAX_JOBS = 2" in w.value for w in third.warning)
    assert len(jobs.registry().running()) == 2
