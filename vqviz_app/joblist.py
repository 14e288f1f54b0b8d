"""Training jobs as the pages show them: the list of the server's jobs (progress, stage, time left,
Stop, loss curves), and "Train one now", offered where no checkpoint takes the data set's images.
The jobs themselves run in :mod:`vqviz_app.jobs`."""

from __future__ import annotations

import streamlit as st

from vqviz import data

from . import cache, catalog, figures, jobs
from .state import Context, Session, session
from .widgets import duration, listed, plural

#: Finished jobs listed below the running ones, newest first.
FINISHED_SHOWN = 5


def job_list(only: jobs.TrainingJob | None = None) -> None:
    """The server's training jobs (or ``only`` one), each with its progress, stage, ETA and Stop,
    polled every second while one runs. When the job this session started ends, the app reruns
    with its checkpoint picked."""
    reg = jobs.registry()
    polling = bool(reg.running()) if only is None else only.running

    @st.fragment(run_every=1.0 if polling else None)
    def panel() -> None:
        found = [only] if only is not None else reg.jobs()
        if only is None:
            st.subheader("Jobs")
            if not found:
                st.caption("No training job on this server yet. A job runs on when its tab closes; every tab "
                           "sees it here and can stop it.")
        running = [j for j in found if j.running]
        for job in running + [j for j in found if not j.running][:FINISHED_SHOWN]:
            _job_row(job)
        announced = Session.announced.setdefault()
        mine = session.train_job
        ended = [j for j in found if not j.running and j.id not in announced]
        for job in ended:
            announced.add(job.id)
        if mine is not None and mine in ended and mine.state == "done":
            session.pick = str(mine.path)  # the sidebar picks it on the rerun
        if polling and not running or mine in ended:  # something ended: redraw the page, without the timer
            st.rerun()

    panel()


def _job_row(job: jobs.TrainingJob) -> None:
    mine = session.train_job is job
    with st.container(border=True):
        where = catalog.dataset_label(job.dataset)
        threads = plural(job.threads, "thread")
        if job.running:
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            left.progress(job.fraction, text=f"**{job.family}** on **{where}** ({threads}): {job.stage} · "
                                             f"{duration(job.elapsed)}{_time_left(job)}"
                                             + (" · stopping..." if job.stopping else ""))
            right.button("Stop", key=Session.stop_job.key(job.id), on_click=job.stop, icon=":material/stop_circle:",
                         width="stretch", disabled=job.stopping)
        elif job.state == "done":
            picked = " It is selected in the sidebar's checkpoint picker." if mine else ""
            st.success(f"Trained {job.family} on {where} in {duration(job.elapsed)}: saved to "
                       f"`{catalog.shown_path(job.path)}`.{picked}")
            if job.budget is not None and job.budget.ended:
                st.caption(" · ".join(f"{stage}: {plural(n, 'epoch')}, {why}" for stage, (n, why)
                                      in job.budget.ended.items()))
            if job.warning:
                st.warning(job.warning, icon=":material/warning:")
        elif job.state == "stopped":
            st.warning(f"Training {job.family} on {where} was stopped after {duration(job.elapsed)}; "
                       "nothing was saved.")
        else:
            st.error(f"Training {job.family} on {where} failed: {job.error}")
        if job.running or mine:
            _job_curves(job)


def _time_left(job: jobs.TrainingJob) -> str:
    """The job's time left, as its :attr:`~vqviz_app.jobs.TrainingJob.eta` knows it: the whole run's under a
    budget, else the current stage's."""
    eta = job.eta
    if job.budget is not None:  # an upper estimate: a stage whose loss stops improving ends sooner
        total = duration(job.budget.seconds)
        return f" · budget {total}" if eta is None else " · finishing" if eta < 1 else \
            f", up to about {duration(eta)} left of its {total} budget"
    if eta is None:
        return ""
    return f", about {duration(eta)} left" + ("" if job.last_stage else " in this stage")


def _job_curves(job: jobs.TrainingJob) -> None:
    """The loss of every step and, for SEQ, accuracy against K as the sweep scores it."""
    curve = list(job.curve)  # the training thread appends meanwhile
    if len(curve) > 1:
        which = [k for k in ("val_accuracy", "train_accuracy", "test_accuracy") if k in curve[0]]
        st.caption("k-means accuracy against K, as the sweep scores it")
        st.line_chart({"K": [p["k"] for p in curve], **{k: [p[k] for p in curve] for k in which}}, x="K",
                      y=which, height=200)
    if job.losses:
        st.plotly_chart(figures.loss_figure(job.losses), width="stretch")


# ----- "Train one now" -----
def offer_training(ctx: Context, ds: data.Dataset, elsewhere: bool = False) -> None:
    """The picked checkpoint does not take this data set's images: point to those that do, or offer
    to train one now with quick settings; when it is trained, it is picked and the page opens."""
    fit, _ = catalog.for_dataset(catalog.entries(), ctx.dataset)
    job = session.quick_job
    if job is not None and job.dataset == ctx.dataset:  # its progress; when it ends, the app reruns on it
        job_list(only=job)
        if job.running:
            return
    train = cache.dataset(ctx.dataset, "train")  # K is chosen for the training split, whichever split is shown
    ks = jobs.quick_sweep(len(train), train.n_classes)
    quick = (f"Train one now: SEQ on LAE-2, each stage until its loss stops improving, within about "
             f"{duration(jobs.QUICK_BUDGET_S)}; K by the paper's rule among {listed(ks)} (more settings on the "
             "**Models** page).")
    if elsewhere:
        st.caption(f"None is trained on {catalog.dataset_label(ctx.dataset)} yet. {quick}")
    elif fit:
        st.info(f"{plural(len(fit), 'checkpoint')} take{'s' * (len(fit) == 1)} these images: pick "
                "one in the sidebar, or train another.", icon=":material/arrow_back:")
    else:
        st.info(f"No checkpoint takes the images of {catalog.dataset_label(ctx.dataset)} "
                f"({'x'.join(map(str, ds.shape))}). {quick}", icon=":material/info:")
    if st.button("Train one now", type="primary", icon=":material/play_arrow:", key=Session.train_now.key):
        try:
            session.train_job = session.quick_job = jobs.train_quick(ctx.dataset, len(train), train.n_classes)
        except jobs.JobLimit as e:  # the server's or this session's cap on running jobs
            st.warning(str(e), icon=":material/hourglass_top:")
            return
        st.rerun()
