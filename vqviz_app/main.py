"""vqviz explorer, the Streamlit entry script: ``vqviz app`` (installed), or ``streamlit run
app.py`` from a checkout, whose ``app.py`` calls :func:`main`.

Opens on the bundled digits data with a shipped SEQ checkpoint, on the latent map.
The pages are wired here, in one place: each is a module of ``vqviz_app/pages/`` with a
``render(ctx)`` function, and to add one, add its line in ``PAGES`` and its entry in
``RENDER``. The sidebar (:mod:`vqviz_app.sidebar`) is drawn here, once for every page, and
its choice is passed to the page as a :class:`vqviz_app.state.Context`; both run inside one
error guard (:func:`vqviz_app.widgets.run_page`). ``st.Page`` names each module's file (by its full
path, so that either entry script finds it), so that a page has its URL and AppTest's
``switch_page`` finds it; a link's ``?page=`` (the file's name) picks the page a session
opens on. Streamlit's ``st.navigation`` turns off its legacy ``pages/`` folder handling,
so ``pages/`` beside this script is only this package's modules.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from vqviz_app import sidebar, state, widgets
from vqviz_app.pages import assignment_entropy, cluster_styles, latent_map, metrics, models, style_mixer

if "OMP_NUM_THREADS" not in os.environ:  # decoding one image on many threads is slower on a busy machine
    import torch

    torch.set_num_threads(1)

#: The package's folder: the pages are named by full path, whichever script is the entry.
HERE = Path(__file__).resolve().parent
#: (file, title, icon) of each page, by group; a page's URL path is its file's name.
PAGES = {
    "Explore": [
        (str(HERE / "pages" / "latent_map.py"), "Latent map", ":material/scatter_plot:"),
        (str(HERE / "pages" / "cluster_styles.py"), "Cluster styles", ":material/grid_view:"),
        (str(HERE / "pages" / "style_mixer.py"), "Style mixer", ":material/blender:"),
        (str(HERE / "pages" / "metrics.py"), "Metrics", ":material/monitoring:"),
        (str(HERE / "pages" / "assignment_entropy.py"), "Assignment entropy", ":material/bar_chart:"),
    ],
    "Manage": [
        (str(HERE / "pages" / "models.py"), "Models", ":material/model_training:"),
    ],
}
NAMES = {t: Path(f).stem for pages in PAGES.values() for f, t, _ in pages}  # title -> ?page= name
RENDER = {"Latent map": latent_map.render, "Cluster styles": cluster_styles.render,
          "Style mixer": style_mixer.render, "Metrics": metrics.render,
          "Assignment entropy": assignment_entropy.render, "Models": models.render}


def main() -> None:
    """Draw the app once: the page config, the navigation, the sidebar and the picked page."""
    # the icon from the package: a Material icon as the page's icon is fetched from Google's servers
    st.set_page_config(page_title="vqviz", page_icon=str(HERE / "icon.png"), layout="wide")
    # The page a link names (?page=models) opens first: it is the default, which "/" shows.
    start = state.start_page("latent_map")
    page = st.navigation({group: [st.Page(f, title=t, icon=i, default=f.endswith(f"/{start}.py"))
                                  for f, t, i in pages] for group, pages in PAGES.items()})
    widgets.run_page(RENDER[page.title], sidebar.sidebar, NAMES[page.title])
    widgets.freeze_new_imports()


if __name__ == "__main__":  # `streamlit run` of this file; not multiprocessing's spawn re-importing it
    main()
