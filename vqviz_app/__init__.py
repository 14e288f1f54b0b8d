"""The Streamlit app on top of :mod:`vqviz` (``streamlit run app.py``); nothing in ``vqviz`` imports it.

- :mod:`.main`: the entry script; the pages wired in one place;
- :mod:`.state`: the session's state: what the sidebar picked (:class:`~.state.Context`, passed to
  every page), and every key of ``st.session_state`` as a typed field (:class:`~.state.Session`);
- :mod:`.catalog`: the checkpoints the picker lists, unreadable ones included;
- :mod:`.cache`: Streamlit's caches of checkpoints, data, point tables and decoded images, each keyed
  by one :class:`~.cache.View` (checkpoint, stamp, data set, split);
- :mod:`.figures`: every plotly figure of the app;
- :mod:`.widgets`: the shared small widgets and the page guard;
- :mod:`.sidebar`: the sidebar, and loading what it picked;
- :mod:`.maps`: the latent map: its key, background jobs, shipped and cached maps, placing points on
  it, its figure and its selection;
- :mod:`.panel`: the panels beside the map: the cluster panel, a sample, placed images, a spot;
- :mod:`.joblist`: the training jobs as the pages list them, and "Train one now";
- :mod:`.jobs`: training and long computations in background threads;
- :mod:`.uploads`: what visitors upload and the server keeps, within a quota;
- :mod:`.published`: the published benchmark results (the ``results/`` folder) the Metrics page shows;
- :mod:`.pages`: one module per page.

Modules import downwards only: pages import the modules, never the reverse; ``maps``, ``panel``
and ``sidebar`` import ``state``, ``cache``, ``figures`` and ``jobs``, which import none of them.
"""
