"""vqviz explorer: ``streamlit run app.py``.

Opens on the bundled digits data with a shipped SEQ checkpoint, on the latent map.
The sidebar (data set, split, checkpoint, colouring) is shared by every page; the
pages live in ``app_pages/`` and are wired here, in one place: to add a page, add
one ``st.Page`` line. (Not ``pages/``: Streamlit treats a folder of that name as a
legacy multipage app and can run its files without this script, e.g. for a deep
link on a fresh server, and AppTest always does after the first run.)
"""

from __future__ import annotations

import streamlit as st

from vqviz import ui

st.set_page_config(page_title="vqviz", page_icon=":material/scatter_plot:", layout="wide")

PAGES = {
    "Explore": [
        st.Page("app_pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:", default=True),
        st.Page("app_pages/cluster_styles.py", title="Cluster styles", icon=":material/grid_view:"),
        st.Page("app_pages/style_mixer.py", title="Style mixer", icon=":material/blender:"),
        st.Page("app_pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("app_pages/assignment_entropy.py", title="Assignment entropy", icon=":material/bar_chart:"),
    ],
    "Manage": [
        st.Page("app_pages/models.py", title="Models", icon=":material/model_training:"),
    ],
}

navigation = st.navigation(PAGES)
ui.sidebar()
navigation.run()
