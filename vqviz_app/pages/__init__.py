"""The app's pages, one module each: ``render(ctx)`` draws the page for the sidebar's choice.

(Not a ``pages/`` folder beside ``app.py``: Streamlit would treat that as a legacy
multipage app and could run its files without the entry script.)
"""
