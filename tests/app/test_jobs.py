"""Training jobs belong to the server: every session sees them and can stop them, within a second or two."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch
from driving import open_app

from vqviz_app import catalog, jobs
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


@pytest.mark.slow  # waits for k-means iterations made slow on purpose
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


# ----- the quick training's budget, and time left -----
def _progress(stage, epoch, step=4, steps=4, epochs=100, loss=1.0):
    from vqviz.train import Progress

    return Progress(stage, 0, 3, epoch, epochs, step, steps, {"loss": loss})


def test_a_budget_ends_each_stage_at_its_share_or_its_plateau_and_says_what_is_left():
    from vqviz.train import EndStage

    now = [0.0]
    budget = jobs.Budget(10.0, ends={"encoder": 0.4, "decoder": 0.9}, max_epochs=100, clock=lambda: now[0])
    assert budget.left() is None  # no pace yet
    for step in range(1, 5):  # 0.1 s a step: 0.4 s an epoch
        now[0] = 0.1 * (step - 1)
        budget.on_step(_progress("encoder", 1, step))
    # the encoder until its deadline (4 s; its 99 epochs left would take 40 s), then the decoder until its own (9 s)
    assert budget.left() == pytest.approx(9.0 - 0.3)
    epoch = 1
    with pytest.raises(EndStage):
        while True:  # the loss still improves: only the clock ends it, before an epoch that would end past 4 s
            now[0] = 0.4 * epoch
            budget.on_epoch(_progress("encoder", epoch, loss=1.0 / epoch))
            epoch += 1
    assert budget.ended["encoder"] == (10, "its share of the time budget was spent") and now[0] == 4.0
    budget.on_stage(_progress("kmeans", 0))
    assert budget.left() == pytest.approx(9.0 - 4.0)  # the decoder's 100 epochs at the encoder's pace: past 9 s
    with pytest.raises(EndStage):
        for epoch in range(1, 20):  # the loss stops improving: the plateau ends it long before its deadline
            now[0] = 4.0 + 0.01 * epoch
            budget.on_epoch(_progress("decoder", epoch, loss=0.5))
    assert budget.ended["decoder"] == (6, "its loss stopped improving")
    assert budget.left() == 0.0


def test_end_stage_ends_one_stage_there_and_the_fit_goes_on():
    from torch import nn

    from vqviz.train import EndStage, TrainConfig, Trainer

    def end_at_3(p):
        if p.stage == "first" and p.epoch == 3:
            raise EndStage

    trainer = Trainer(TrainConfig(epochs=10, batch_size=8, device="cpu"), {"on_epoch": end_at_3})
    net = nn.Linear(2, 1)
    x = torch.randn(32, 2)

    def loss(xb):
        return {"loss": net(xb).pow(2).mean()}

    assert len(trainer.run("first", net.parameters(), loss, (x,), modules=(net,))) == 3  # its weights kept
    assert len(trainer.run("second", net.parameters(), loss, (x,), modules=(net,))) == 10


def test_an_unbudgeted_job_says_the_time_left_in_its_stage(monkeypatch):
    at = open_app("models")
    at.number_input(key="t_epochs").set_value(500)
    at.number_input(key="t_threads").set_value(1)
    at.button[0].click().run()
    job = at.session_state["train_job"]
    _wait_until(lambda: job.eta is not None, 120)
    at.run()
    rows = [p.proto.text for p in at.get("progress") if "**seq** on **digits**" in p.proto.text]
    assert rows and "left in this stage" in rows[0], rows  # not the whole run's: k-means and the decoder follow
    job.stop()
    assert job.wait(10)


def test_background_work_runs_in_daemon_threads_that_exit_does_not_wait_for(monkeypatch):
    import concurrent.futures.thread as executor_threads

    monkeypatch.setattr(jobs, "IDLE_S", 0.2)
    worker = jobs.Background()
    release = threading.Event()
    future = worker.submit(("blocked",), release.wait)
    _wait_until(future.running)
    (thread,) = [t for t in threading.enumerate() if t is worker._worker]
    assert thread.daemon and thread not in executor_threads._threads_queues  # no join at the interpreter's exit
    assert worker.submit(("blocked",), lambda: 1) is future  # once per key
    release.set()
    assert future.result(5) is True
    assert worker.submit(("next",), lambda: 2).result(5) == 2
    _wait_until(lambda: not thread.is_alive() and worker._worker is None, 10)  # idle: its thread ends
    assert worker.submit(("after",), lambda: 3).result(5) == 3  # and a new one starts for more work
