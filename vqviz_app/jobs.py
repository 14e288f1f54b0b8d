"""Work that outlives one rerun: a training run, and long computations done once in the background.

Both run in threads, so that a page never blocks on them: it shows what is ready and
polls the rest (``st.fragment(run_every=...)``). Background work calls :mod:`vqviz`
directly, never Streamlit. Here: the training jobs and their registry, the background workers
(:class:`Background`), and the scores' computations; the map's own jobs are in
:mod:`vqviz_app.maps`, the job list the pages draw in :mod:`vqviz_app.joblist`.
"""

from __future__ import annotations

import atexit
import gc
import itertools
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import fields
from pathlib import Path
from typing import Callable, Hashable

import numpy as np
# What the threads below import on first use is imported here, by the thread that imports this module:
# two threads importing scikit-learn for the first time at once (a training job and a map) can meet its
# circular imports half done, and one of them fails with ImportError.
import openTSNE  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.model_selection  # noqa: F401
import streamlit as st
import torch

from vqviz import analysis, checkpoints, data, health, map_store, models, settings, workflow
from vqviz.errors import VqvizError
from vqviz.train import EndStage, StopTraining, TrainConfig, plateau
from vqviz.utils import atomic_write_bytes

from . import state
from .catalog import Entry, user_dir

log = logging.getLogger(__name__)


# ----- training from the browser -----
def train_fields(family: str) -> dict[str, tuple[str, object]]:
    """The defaults of the settings the Models page asks for, by the family's config field."""
    config = models.get(family).Config
    out = {f.name: (f.name, f.default) for f in fields(config) if f.name in ("encoder", "latent_dim")}
    if config.K_FIELD is not None:  # the family's own answer to "which setting is K"
        out["k"] = (config.K_FIELD, next(f.default for f in fields(config) if f.name == config.K_FIELD))
    return out


def encoder_options(family: str) -> list[str]:
    """The networks the family can build, "auto" first (its own default for the data's shape)."""
    return ["auto", *models.get(family).Config.ENCODERS]


def default_threads() -> int:
    """The torch threads a training job gets unless told: the cores minus one (one is left to the
    server and the pages), at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


class TrainingJob:
    """One training run in a background thread, so that the page stays live and can stop it.

    Any session sees it through :func:`registry`, and it runs on when the tab that started it
    closes. The page polls ``fraction``, ``stage``, ``eta``, ``losses`` and ``curve`` (SEQ's
    accuracy against K, point by point as its sweep scores them); :meth:`stop` makes the next
    step, or the next k-means iteration, raise :class:`StopTraining`; :meth:`wait` blocks until
    the run ends. ``state`` ends as "done", "stopped" or "failed" (with ``error``); a stopped or
    failed run writes no checkpoint. With a ``budget`` (:class:`Budget`, the quick training's),
    each stage ends when its loss stops improving or its share of the time is spent, and ``eta``
    and ``fraction`` follow the budget's clock.

    ``threads`` is set with ``torch.set_num_threads`` inside the run's own thread, when it starts,
    so the run's operators use that many threads. The setting is process-wide in effect: PyTorch
    keeps one count, which every thread takes up at its first parallel operation (the run's
    thread at once, as it calls it itself). Threads that start meanwhile may take it up too; the
    pages' script threads are set back to one at every run by ``app.py`` (when
    ``OMP_NUM_THREADS`` is unset), and when the last run ends the count the server had before
    comes back. Unset, a thread started by the server would take every core (the OpenMP
    default), which on a busy machine makes an epoch many times slower.
    """

    def __init__(self, family: str, dataset: str, out: Path, train_config: TrainConfig, config: dict,
                 threads: int | None = None, session: str = "", budget: Budget | None = None):
        self.family, self.dataset, self.out, self.session, self.budget = family, dataset, out, session, budget
        self.id = uuid.uuid4().hex[:12]
        self.threads = max(1, int(threads or default_threads()))
        self.state, self.error, self.path, self.warning = "running", "", None, None
        self.fraction, self.message, self.stage = 0.0, "starting", "starting"
        self.losses: list[tuple[int, str, float]] = []
        self.curve: list[dict] = []
        self.torch_threads = None  # what torch reports in the run's thread, once it has started
        self.started, self.ended = time.time(), None
        self.last_stage = False  # whether the stage running is the fit's last
        self._stage: tuple[str, float, float] = ("", time.monotonic(), 0.0)  # (name, its start, share of it done)
        self._stop = threading.Event()
        self._args = (train_config, config)
        self.thread = threading.Thread(target=self._run, name=f"vqviz-train-{family}", daemon=True)
        registry().add(self)  # raises JobLimit over a cap: then nothing starts
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return (self.ended or time.time()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left: with a :class:`Budget`, the whole run's (:meth:`Budget.left`); else the current
        stage's alone, at its own pace (``last_stage`` says whether another follows). None until
        there is a pace to go by.

        Not the run's elapsed time scaled by its fraction done: the trainer counts every stage as
        an equal share, and SEQ's k-means, a third of the bar, takes a second, so that estimate
        said "about 50 s left" where 28 s were."""
        if not self.running:
            return None
        if self.budget is not None:
            return self.budget.left()
        _, start, done = self._stage
        spent = time.monotonic() - start
        return spent * (1 - done) / done if done >= 0.02 and spent >= 0.5 else None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and self.running

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends, or ``timeout`` seconds; whether it has ended."""
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _check(self) -> None:
        if self._stop.is_set():
            raise StopTraining

    def _step(self, p) -> None:
        if self.budget is not None:
            self.budget.on_step(p)
        self._track(p, ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps))
        # under a budget the epochs are a ceiling that the plateau or the clock ends sooner
        self.stage = f"{p.stage} · epoch {p.epoch}" + ("" if self.budget else f"/{p.epochs}")
        self.message = f"{self.stage} · loss {p.terms.get('loss', float('nan')):.4g}"
        self.losses.append((len(self.losses), p.stage, float(p.terms.get("loss", np.nan))))
        self._check()

    def _epoch(self, p) -> None:
        if self.budget is not None:
            self.budget.on_epoch(p)  # raises EndStage when the stage's loss has stopped improving, or its time is up

    def _stage_report(self, p) -> None:
        if self.budget is not None:
            self.budget.on_stage(p)
        self._track(p, p.fraction * p.n_stages - p.stage_index)
        self.stage = f"{p.stage}: {p.message}"
        self.message = self.stage
        if p.stage == "kmeans" and "k" in p.terms:
            self.curve.append(dict(p.terms))
        self._check()

    def _track(self, p, done: float) -> None:
        """Note the stage's share done (and when it began), for :attr:`eta`, and the bar's fraction."""
        if p.stage != self._stage[0]:
            self._stage = (p.stage, time.monotonic(), 0.0)
        self._stage = (p.stage, self._stage[1], min(max(done, 0.0), 1.0))
        self.last_stage = p.stage_index == p.n_stages - 1
        left = self.eta if self.budget is not None else None
        # the trainer's fraction counts each stage alike; under a budget, the time spent and left is truer
        self.fraction = p.fraction if left is None else min(0.99, self.elapsed / (self.elapsed + left))

    def _download(self, done: int, total: int) -> None:
        self.message = self.stage = f"downloading {self.dataset}: {done / 2**20:.1f} MB"
        self._check()

    def _run(self) -> None:
        train_config, config = self._args
        registry().threads_for(self)  # see the class's docstring
        self.torch_threads = torch.get_num_threads()
        if self.budget is not None:
            self.budget.start()
        try:
            ckpt = workflow.train(self.family, self.dataset, out=self.out, train_config=train_config,
                                  callbacks={"on_step": self._step, "on_epoch": self._epoch,
                                             "on_stage": self._stage_report},
                                  download_progress=self._download, **config)
            self.warning = health.decoder_warning(ckpt.metrics)
            self.path, self.fraction = ckpt.path, 1.0
            self.state = "done"
        except StopTraining:
            self.state = "stopped"
        except VqvizError as e:
            self.state, self.error = "failed", str(e)
        except OSError as e:  # a full disk, a read-only folder: the system's reason, not a traceback
            self.state, self.error = "failed", f"the checkpoint could not be written: {e.strerror or e}"
        except Exception as e:  # a bug in a model: report it, keep the app alive
            log.exception("training %s failed", self.family)
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            self.ended = time.time()
            registry().threads_back(self)


class Registry:
    """The server's training jobs, running and finished, seen by every session (and tab)."""

    def __init__(self):
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()
        self._server_threads: int | None = None  # torch's count before the first of the running jobs

    def threads_for(self, job: TrainingJob) -> None:
        """Set torch's thread count for a job that starts, in its thread (see :class:`TrainingJob`)."""
        with self._lock:
            if self._server_threads is None:
                self._server_threads = torch.get_num_threads()
            torch.set_num_threads(job.threads)

    def threads_back(self, job: TrainingJob) -> None:
        """A job ended: if no other job runs, give the server back the count it had before."""
        with self._lock:
            if self._server_threads is not None and not any(
                    j.running for j in self._jobs.values() if j is not job):
                torch.set_num_threads(self._server_threads)
                self._server_threads = None

    def add(self, job: TrainingJob) -> None:
        """List a job that is about to start, or raise :class:`JobLimit` if the server
        (``VQVIZ_MAX_JOBS``) or the job's session (``VQVIZ_MAX_JOBS_PER_SESSION``) runs as many as
        it may. Checked and listed under one lock, so that two sessions pressing Train at once
        cannot both pass."""
        limits = settings.server_settings()
        with self._lock:
            running = [j for j in self._jobs.values() if j.running]
            off = "VQVIZ_MAX_JOBS" if limits.max_jobs == 0 else \
                "VQVIZ_MAX_JOBS_PER_SESSION" if limits.max_jobs_per_session == 0 and job.session else ""
            if off:
                raise JobLimit(f"training is turned off on this server ({off} = 0); pick a checkpoint that "
                               "is already trained")
            mine = [j for j in running if job.session and j.session == job.session]
            if len(mine) >= limits.max_jobs_per_session:
                raise JobLimit(f"this session already runs {_jobs(len(mine))}, the most one session may run "
                               f"at once (VQVIZ_MAX_JOBS_PER_SESSION = {limits.max_jobs_per_session}). Wait "
                               "for it to end, or stop it in the Jobs list of the Models page.")
            if len(running) >= limits.max_jobs:
                raise JobLimit(f"{_jobs(len(running))} already run on this server, the most it runs at once "
                               f"(VQVIZ_MAX_JOBS = {limits.max_jobs}). Wait for one to end, or stop one in "
                               "the Jobs list of the Models page.")
            self._jobs[job.id] = job

    def get(self, job_id: str) -> TrainingJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[TrainingJob]:
        """Every job, the newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def running(self) -> list[TrainingJob]:
        return [j for j in self.jobs() if j.running]

    def forget_finished(self) -> None:
        """Drop the jobs that have ended from the list."""
        with self._lock:
            self._jobs = {k: j for k, j in self._jobs.items() if j.running}


class JobLimit(VqvizError):
    """Starting a training job would go over the server's or the session's cap on running jobs."""


def _jobs(n: int) -> str:
    return f"{n} training job{'s' * (n != 1)}"


#: One per server process: a module global, not a Streamlit cache, so that clearing the caches
#: never loses sight of a running job.
_REGISTRY = Registry()


def registry() -> Registry:
    """The server's training jobs (:class:`Registry`)."""
    return _REGISTRY


#: Seconds the exiting server gives its stopped training jobs to end their step.
EXIT_WAIT_S = 2.0


@atexit.register
def _stop_at_exit() -> None:
    """The server is exiting (Ctrl+C, SIGTERM): ask every running job to stop, and give them
    :data:`EXIT_WAIT_S` together to end their step. They are daemon threads, so none holds the exit
    up longer, and a stopped job writes nothing: no half-written checkpoint is left.

    Then every object alive goes to the garbage collector's permanent generation: the
    interpreter's last collections would otherwise walk the millions of objects that torch,
    Streamlit and plotly hold, seconds on a busy machine, only to free memory the exiting
    process gives back anyway."""
    running = _REGISTRY.running()
    for job in running:
        job.stop()
    deadline = time.monotonic() + EXIT_WAIT_S
    for job in running:
        job.wait(max(0.0, deadline - time.monotonic()))
    gc.freeze()


def start_training(family: str, dataset: str, train_config: TrainConfig, config: dict,
                   threads: int | None = None, session: str | None = None,
                   budget: Budget | None = None) -> TrainingJob:
    """Start a run whose checkpoint goes to a new folder under :func:`user_dir`, named after the
    family and the data set (:func:`new_folder`), on behalf of ``session`` (by default the browser
    session of this script run). ``budget``: a :class:`Budget` that ends its stages sooner.

    Raises
    ------
    JobLimit
        The server, or the session, already runs as many jobs as its cap allows.
    """
    session = state.session_id() if session is None else session
    with _naming:  # two sessions pressing Train at once get two folders
        return TrainingJob(family, dataset, new_folder(family, dataset), train_config, config, threads, session,
                           budget)


_naming = threading.Lock()


def new_folder(family: str, dataset: str) -> Path:
    """A folder under :func:`user_dir` that neither exists nor is a running job's: ``seq-digits``, a
    folder data set by its last part (``seq-letters``, not ``seq-folder-_home_..._letters``: the
    sidebar shows the name), then ``seq-letters-2``, ``-3``, ..."""
    name = Path(dataset[len("folder:"):]).name if dataset.startswith("folder:") else dataset
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "data"  # a name that is one folder, on any system
    base = f"{family}-{safe}"
    taken = {j.out for j in registry().jobs()}
    for i in itertools.count(1):
        out = user_dir() / (base if i == 1 else f"{base}-{i}")
        if out not in taken and not os.path.lexists(out):
            return out


class Budget:
    """The quick training's stopping rules: each gradient stage ends when its loss stops improving
    (:func:`vqviz.train.plateau`), or before an epoch that would end past the stage's share of a
    wall-clock budget, whichever comes first; its epochs are only a ceiling.

    Parameters
    ----------
    seconds : the whole run's budget, counted from :meth:`start` (loading the data included).
    ends : stage -> the share of ``seconds`` by which it ends. SEQ's encoder by 40 %, its decoder (after
        the k-means) by 90 %: the decoder's pictures are the point, and the last 10 % are for the
        checks and the writing that follow the fit. A stage that ends early leaves its time to the next.
    max_epochs : the ceiling of every stage (the :class:`TrainConfig`'s epochs).
    patience, min_delta : the plateau rule's.
    clock : seconds, monotonic (a test's own clock).

    Attributes
    ----------
    ended : stage -> (epochs run, why it ended), as each gradient stage ends.
    """

    def __init__(self, seconds: float = 60.0, ends: dict[str, float] | None = None, max_epochs: int = 200,
                 patience: int = 5, min_delta: float = 1e-3, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.max_epochs, self.clock = float(seconds), max_epochs, clock
        self.ends = dict(ends or {"encoder": 0.4, "decoder": 0.9})
        self.rule = plateau(patience, min_delta)
        self.ended: dict[str, tuple[int, str]] = {}
        self._history: dict[str, list[dict]] = {}
        self._pace: dict[str, float] = {}  # stage -> seconds per epoch, measured
        self._at = ("", 0, 0.0)  # (stage, epochs left in it, time of its first step)
        self.start()

    def start(self) -> None:
        """Start the clock (the run's thread calls it as it starts)."""
        self.t0 = self.clock()

    def deadline(self, stage: str) -> float:
        return self.t0 + self.ends.get(stage, 1.0) * self.seconds

    def on_step(self, p) -> None:
        now = self.clock()
        if p.stage != self._at[0]:
            self._at = (p.stage, 0, now)
        done = (p.epoch - 1) * p.steps + p.step  # steps of this stage so far
        if done > 1:  # the pace from the first step's end on
            self._pace[p.stage] = (now - self._at[2]) / (done - 1) * p.steps
        self._at = (p.stage, p.epochs - (done / p.steps), self._at[2])

    def on_stage(self, p) -> None:
        if p.stage != self._at[0]:
            self._at = (p.stage, 0, self.clock())

    def on_epoch(self, p) -> None:
        """Raise :class:`EndStage` once the stage's loss has stopped improving, or the next epoch would
        end past its deadline."""
        history = self._history.setdefault(p.stage, [])
        history.append(p.terms)
        pace = self._pace.get(p.stage, 0.0)
        why = "its loss stopped improving" if self.rule(p.stage, history) else \
            "its share of the time budget was spent" if self.clock() + pace > self.deadline(p.stage) else \
            "the most epochs allowed" if p.epoch >= p.epochs else ""
        if why:
            self.ended[p.stage] = (p.epoch, why)
            if p.epoch < p.epochs:
                raise EndStage

    def left(self) -> float | None:
        """Seconds the run has left, an upper estimate: the current stage's epochs left at its measured pace,
        within its deadline, then each later stage's ceiling at the pace so far, within its own; None
        before the first pace. (A stage whose loss stops improving ends sooner; the k-means and the
        checks after the fit are not counted, they take seconds.)"""
        stage, epochs_left, _ = self._at
        pace = self._pace.get(stage) or next(reversed(self._pace.values()), None)
        if pace is None:
            return None
        now = end = self.clock()
        for name in [s for s in self.ends if s not in self.ended]:  # the stages to come, this one first
            epochs = epochs_left if name == stage else self.max_epochs
            end = max(end, min(self.deadline(name), end + epochs * self._pace.get(name, pace)))
        return max(0.0, end - now)


#: Quick settings for "Train one now": SEQ on LAE-2, each stage until its loss stops improving within
#: :data:`QUICK_BUDGET_S`, K by the paper's rule among :func:`quick_sweep`, one k-means restart each.
QUICK = {"family": "seq", "max_epochs": 200, "config": {"encoder": "lae2", "latent_dim": 32, "kmeans_restarts": 1}}
#: Seconds "Train one now" may take, loading and checks included: about a minute on 2 cores for a few
#: thousand images, and a large set (MNIST) gets a few epochs of each stage.
QUICK_BUDGET_S = 60.0


def quick_sweep(n_train: int, n_classes: int, values: int = 5) -> tuple[int, ...]:
    """The K values a quick SEQ scores for the paper's rule to choose from, on its validation split:
    ``values`` of them evenly spaced on a log scale from one cluster per class to ten, none above a tenth
    of the images it fits (SEQ holds 10 % out), so that a cluster's centre is a mean of several images;
    but at least one cluster per class, where there are that many images."""
    fit = n_train - round(0.1 * n_train)
    top = max(1, min(n_classes, fit), min(10 * n_classes, fit // 10))
    return tuple(sorted({int(round(k)) for k in np.geomspace(min(n_classes, top), top, values)}))


def train_quick(dataset: str, n_train: int, n_classes: int, budget_s: float | None = None) -> TrainingJob:
    """Start :data:`QUICK` training on ``dataset`` (``n_train`` training images of ``n_classes``
    classes), within ``budget_s`` seconds (:data:`QUICK_BUDGET_S` by default): what "Train one now" does.

    Raises
    ------
    JobLimit
        The server, or the session, already runs as many jobs as its cap allows.
    """
    epochs = QUICK["max_epochs"]
    budget = Budget(QUICK_BUDGET_S if budget_s is None else budget_s, max_epochs=epochs)
    return start_training(QUICK["family"], dataset, TrainConfig(epochs=epochs),
                          {**QUICK["config"], "k": 0, "k_sweep": quick_sweep(n_train, n_classes)}, budget=budget)


# ----- long computations, once, in the background -----
class Background:
    """One worker thread that runs long computations one after the other, each once per key.

    On two cores, one at a time finishes the first sooner than several side by side.
    A result (or the :class:`VqvizError` message) is kept for the life of the server.

    The worker is a daemon thread of its own, not a ``ThreadPoolExecutor``'s: the interpreter
    joins an executor's threads at exit, so Ctrl+C during a 70,000-point t-SNE would leave the
    server printing "Stopping..." until the t-SNE ended. A computation is only ever cached,
    never half-written, so dropping one at exit loses nothing. The thread ends when it has
    been idle for :data:`IDLE_S`, and the next submission starts another.
    """

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._futures: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self._recent: list[Hashable] = []  # the keys passed to keep_recent, the most recent last
        self.progress: dict[Hashable, Progress] = {}

    def submit(self, key: Hashable, fn: Callable[[], object]) -> Future:
        """The future of ``fn``'s result: queued now, unless ``key`` was submitted before (and not
        forgotten by :meth:`keep_recent`), whose future it then is."""
        with self._lock:
            if key not in self._futures:
                self._futures[key] = future = Future()
                self._queue.put((future, fn))
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="vqviz-background", daemon=True)
                    self._worker.start()
            return self._futures[key]

    def _work(self) -> None:
        while True:
            try:
                future, fn = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:  # under the lock that submit holds: no job is put and left unseen
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(_guarded(fn))
                except BaseException as e:  # SystemExit and the like: the waiting page hears of it
                    future.set_exception(e)

    def keep_recent(self, key: Hashable, keep: int,
                    made_from: Callable[[Hashable, Hashable], bool] = lambda k, old: False) -> None:
        """Count ``key`` as the most recently asked for of the results this worker keeps only a few of
        (large ones), and forget the finished ones beyond the ``keep`` most recent: their futures, their
        progress, and the results ``made_from(k, old)`` says were made from one of them. One still being
        computed is kept. A key forgotten is computed again if it is submitted again."""
        with self._lock:
            if key in self._recent:
                self._recent.remove(key)
            self._recent.append(key)
            for old in self._recent[:-keep]:
                if old in self._futures and not self._futures[old].done():
                    continue
                self._recent.remove(old)
                for k in [k for k in self._futures if k == old or made_from(k, old)]:
                    del self._futures[k]
                self.progress.pop(old, None)

    def keys(self) -> list[Hashable]:
        """The keys whose results (or computations) this worker holds."""
        with self._lock:
            return list(self._futures)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is done, or ``timeout`` seconds; whether it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in list(self._futures.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.exception(left)
            except TimeoutError:
                return False
        return True


#: Seconds a background worker waits for more work before its thread ends.
IDLE_S = 5.0


def _guarded(fn):
    try:
        return fn()
    except VqvizError as e:
        return {"error": str(e)}
    except Exception as e:  # a bug: report it in the page, keep the worker alive
        log.exception("background computation failed")
        return {"error": f"{type(e).__name__}: {e}"}


@st.cache_resource(show_spinner=False)
def background(name: str) -> Background:
    """The server's background worker ``name`` (one per process; cleared with Streamlit's caches):
    "scores" for the downstream scores and codebook statistics, "maps" for projections
    (:mod:`vqviz_app.maps`), so that
    a map never waits behind a table. Always called with the name: Streamlit's cache keys on the
    arguments as passed, so ``background()`` and ``background("scores")`` would be two workers."""
    return Background()


def wait_all(timeout: float | None = None) -> bool:
    """Block until every background computation and training job is done, or ``timeout`` seconds
    (each); whether they are."""
    trained = all([job.wait(timeout) for job in registry().running()])
    return all([background(name).wait(timeout) for name in ("scores", "maps")]) and trained


class Progress:
    """What a background computation last reported: a fraction in [0, 1] and a message."""

    def __init__(self):
        self.fraction, self.message = 0.0, "waiting for its turn"

    def __call__(self, fraction: float, message: str) -> None:
        self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), message


def ready(future: Future, wait: float = 0.0):
    """The result if it is ready within ``wait`` seconds, else None."""
    try:
        return future.result(wait)
    except TimeoutError:
        return None


def _store(kind: str, key: str) -> Path:
    return map_store.cache_dir().parent / kind / f"{key}.json"


def downstream(entry: Entry, dataset: str) -> Future:
    """Downstream scores of one checkpoint on ``dataset`` (a dict, or {"error": message}).

    Computed once in the background and kept on disk beside the map cache, keyed by the
    checkpoint's weights, so that a restart does not pay for them again.
    """
    sha = entry.meta["weights"]["sha256"]

    def compute() -> dict:
        path = _store("downstream", f"{sha[:32]}-{dataset.replace('/', '_').replace(':', '_')}")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
        model = checkpoints.load(entry.path).model
        train, test = data.load(dataset, "train", download=False), data.load(dataset, "test", download=False)
        analysis.check_inputs(model, dataset, test.shape)
        scores = analysis.downstream_scores(model, train, test)
        try:
            atomic_write_bytes(path, json.dumps(scores).encode())
        except OSError as e:
            log.warning("cannot keep the downstream scores in %s: %s", path, e)
        return scores

    return background("scores").submit(("downstream", entry.path, entry.stamp, dataset), compute)


def codebook_stats(entry: Entry, dataset: str, split: str) -> Future:
    """Codebook usage and assignment entropy of one checkpoint on a split, in the background."""

    def compute():
        model = checkpoints.load(entry.path).model
        if split == "all":
            images = np.concatenate([data.load(dataset, s, download=False).images for s in data.SPLITS])
        else:
            images = data.load(dataset, split, download=False).images
        analysis.check_inputs(model, dataset, images.shape[1:], entry.dataset)
        return analysis.codebook_stats(model, images)

    return background("scores").submit(("codebook", entry.path, entry.stamp, dataset, split), compute)
