"""vqviz explorer: ``streamlit run app.py``.

Opens on the bundled digits data with a shipped SEQ checkpoint, on the latent map.
The pages are wired here, in one place: each is a module of ``app/pages/`` with a
``render(ctx)`` function, and to add one, add its ``st.Page`` line and its entry in
``RENDER``. The sidebar is drawn here, once for every page, and its choice is passed
to the page as an :class:`app.state.Context`; both run inside one error guard
(:func:`app.widgets.run_page`). ``st.Page`` names each module's file, so that a page
has its URL and AppTest's ``switch_page`` finds it. (Not ``pages/`` beside this
script: Streamlit would treat that folder as a legacy multipage app.)
"""

from __future__ import annotations

import os

import streamlit as st

from app import widgets
from app.pages import assignment_entropy, cluster_styles, latent_map, metrics, models, style_mixer

if "OMP_NUM_THREADS" not in os.environ:  # decoding one image on many threads is slower on a busy machine
    import torch

    torch.set_num_threads(1)

st.set_page_config(page_title="vqviz", page_icon=":material/scatter_plot:", layout="wide")

PAGES = {
    "Explore": [
        st.Page("app/pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:", default=True),
        st.Page("app/pages/cluster_styles.py", title="Cluster styles", icon=":material/grid_view:"),
        st.Page("app/pages/style_mixer.py", title="Style mixer", icon=":material/blender:"),
        st.Page("app/pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("app/pages/assignment_entropy.py", title="Assignment entropy", icon=":material/bar_chart:"),
    ],
    "Manage": [
        st.Page("app/pages/models.py", title="Models", icon=":material/model_training:"),
    ],
}
RENDER = {"Latent map": latent_map.render, "Cluster styles": cluster_styles.render,
          "Style mixer": style_mixer.render, "Metrics": metrics.render,
          "Assignment entropy": assignment_entropy.render, "Models": models.render}

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports the main script of a process
    page = st.navigation(PAGES)
    widgets.run_page(RENDER[page.title])
    widgets.freeze_new_imports()
