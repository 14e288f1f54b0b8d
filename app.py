"""vqviz explorer from a source checkout: ``streamlit run app.py``. (Installed, ``vqviz app``
runs :mod:`vqviz_app.main` itself.)"""

from vqviz_app.main import main

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports the main script of a process
    main()
