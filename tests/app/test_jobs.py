"""Training jobs belong to the server: every session sees them and can stop them, within a second or two."""

from __future__ import annotations

import os
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
