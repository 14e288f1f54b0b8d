"""Models: the checkpoints, training a new one from the browser, and uploading one."""

import os

import streamlit as st

from vqviz import data, models
from vqviz.errors import VqvizError
from vqviz.train import TrainConfig

from vqviz_app import catalog, joblist, jobs, uploads, widgets
from vqviz_app.state import Context, Session, session

UPLOAD_LIMIT_MB = 200


def render(ctx: Context) -> None:
    st.title("Models")
    entries = catalog.entries()
    st.caption(f"{widgets.plural(len(entries), 'checkpoint')}: the bundled ones, those in `VQVIZ_CHECKPOINTS`, and yours "
               f"(trained or uploaded here) in `{catalog.shown_path(catalog.user_dir())}/`.")
    st.dataframe(catalog.rows(entries), hide_index=True, width="stretch", placeholder="–", column_config={
        "P_E": st.column_config.NumberColumn("P_E", format="percent", help="the encoder's test accuracy"),
        "P_Q": st.column_config.NumberColumn("P_Q", format="percent", help="the quantizer's test accuracy"),
        "recon MSE / pixel": st.column_config.NumberColumn(format="%.4f"),
        "train s": st.column_config.NumberColumn(format="%.0f")})
    _unreadable([e for e in entries if e.error])
    if ctx.entry is not None and not ctx.entry.error:  # the sidebar's checkpoint
        st.subheader(f"Codebook over training: {ctx.entry.label}")
        widgets.codebook_history(ctx.entry)

    st.subheader("Train a new model")
    names = models.trainable_names()
    cols = st.columns(3)
    family = cols[0].selectbox("Family", names, index=names.index("seq") if "seq" in names else 0,
                               key=Session.t_family.key, persist_state="session")
    sets = list(dict.fromkeys([*data.NAMES, *session.own_datasets,
                               *([ctx.dataset] if ctx.dataset.startswith("folder:") else [])]))
    if session.t_follows != ctx.dataset:  # the sidebar's data set changed: train on it
        session.t_follows = ctx.dataset
        if ctx.dataset in sets:
            session.t_dataset = ctx.dataset
    shown = catalog.dataset_labels(sets)
    dataset = cols[1].selectbox("Data set", sets, key=Session.t_dataset.key, format_func=shown.get,
                                help="The built-in sets, and the image folders picked in the sidebar.")
    asked = jobs.train_fields(family)
    epochs = cols[2].number_input("Epochs", 1, 500, 5, key=Session.t_epochs.key, persist_state="session")
    config = {}
    cols = st.columns(3)
    if "encoder" in asked:
        default = asked["encoder"][1]
        options = jobs.encoder_options(family)
        config["encoder"] = cols[0].selectbox("Encoder", options, index=options.index(default) if default in options
                                              else 0, key=Session.t_encoder.key(family), persist_state="session")
    if "latent_dim" in asked:
        config["latent_dim"] = cols[1].number_input("Latent size", 1, 4096, int(asked["latent_dim"][1]),
                                                    key=Session.t_latent.key(family), persist_state="session")
    if "k" in asked:
        config.update(_k_input(cols[2], family, *asked["k"]))
    with st.expander("Optimiser and threads"):
        cols = st.columns(4)
        lr = cols[0].number_input("Learning rate", 1e-6, 10.0, 1e-3, format="%g", key=Session.t_lr.key,
                                  persist_state="session")
        batch = cols[1].number_input("Batch size", 1, 4096, 128, key=Session.t_batch.key, persist_state="session")
        seed = cols[2].number_input("Seed", 0, 2**31 - 1, 0, key=Session.t_seed.key, persist_state="session")
        threads = cols[3].number_input("Threads", 1, os.cpu_count() or 1, jobs.default_threads(),
                                       key=Session.t_threads.key,
                                       help="torch threads for this run; by default the cores minus one, so that "
                                            "the app stays responsive. One setting for the whole server while the "
                                            "run lasts.")
    if st.button("Train", type="primary", icon=":material/play_arrow:"):
        try:
            settings = TrainConfig(epochs=int(epochs), batch_size=int(batch), lr=float(lr), seed=int(seed))
            session.train_job = jobs.start_training(family, dataset, settings, config, int(threads))
        except jobs.JobLimit as e:  # the server's or this session's cap on running jobs
            st.warning(str(e), icon=":material/hourglass_top:")
        except VqvizError as e:
            widgets.error(e)
    joblist.job_list()

    st.subheader("Add a checkpoint")
    st.caption("A .zip of a checkpoint folder: its `meta.json` and `weights-*.safetensors`, as `python -m vqviz "
               f"train` writes them (at most {UPLOAD_LIMIT_MB} MB). It is checked by loading it before it is "
               "kept; pickles and torch.save files are refused, since loading them can run code.")
    upload = st.file_uploader("Checkpoint .zip", max_upload_size=UPLOAD_LIMIT_MB, key=Session.upload.key)
    if upload is not None and session.upload_id != upload.file_id:
        session.upload_id = upload.file_id
        try:
            path = uploads.install_checkpoint(upload.getvalue(), upload.name)  # within the uploads' quota
            session.upload_result = ("success", f"Added **{path.name}**; it is selected in the sidebar.")
            session.pick = str(path)
            st.rerun()
        except VqvizError as e:
            session.upload_result = ("error", f"{upload.name} was refused: {e}")
    if upload is not None and Session.upload_result.stored:
        kind, message = session.upload_result
        (st.success if kind == "success" else st.error)(message)
    uploads.panel()


def _unreadable(bad: list[catalog.Entry]) -> None:
    """The checkpoints that cannot be used, each with its reason, and a button to remove it."""
    if Session.removed.stored:
        st.success(f"Removed **{Session.removed.pop()}**.")
    if not bad:
        return
    st.markdown(f"**{widgets.plural(len(bad), 'checkpoint')} cannot be used**")
    for e in bad:
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f":gray[{e.label}]  \n:gray[{e.error}]")
        if e.bundled:
            right.caption("bundled")
        elif right.button("Remove", key=Session.remove.key(e.path), icon=":material/delete:", width="stretch",
                          help=f"Delete the folder {catalog.shown_path(e.path)}"):
            try:
                catalog.remove(e)
                session.removed = e.label
            except (OSError, ValueError) as err:
                st.error(f"{e.label} could not be removed: {catalog.printable(str(err))}")
                return
            st.rerun()


def _k_input(col, family: str, name: str, default) -> dict:
    """K: a number, or for SEQ "auto" (the sweep and the paper's rule, which take longer)."""
    if name != "k":
        return {name: col.number_input("K (codewords)", 1, 4096, int(default), key=Session.t_k.key(family),
                                       persist_state="session")}
    auto = col.toggle("K auto", key=Session.t_kauto.key(family), help="Sweep K = 10, 20, ..., 120 (each with its "
                      "k-means restarts) and keep the smallest K that the paper's rule accepts; a fixed K runs one "
                      "k-means.")
    if auto:
        return {name: 0}
    return {name: col.number_input("K (clusters)", 1, 4096, max(int(default), 10), key=Session.t_k.key(family),
                                   persist_state="session")}
