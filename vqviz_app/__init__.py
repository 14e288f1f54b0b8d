"""The Streamlit app on top of :mod:`vqviz` (``streamlit run app.py``); nothing in ``vqviz`` imports it.

- :mod:`.state`: what the sidebar picked (:class:`~.state.Context`), passed to every page;
- :mod:`.catalog`: the checkpoints the picker lists, unreadable ones included;
- :mod:`.cache`: Streamlit's caches of checkpoints, data, point tables and decoded images;
- :mod:`.figures`: every plotly figure of the app;
- :mod:`.widgets`: the sidebar, the page guard and the shared panels;
- :mod:`.jobs`: training and long computations in background threads;
- :mod:`.pages`: one module per page.
"""
