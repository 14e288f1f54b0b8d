"""``python -m vqviz``: the command line."""

from .cli import main

raise SystemExit(main())
