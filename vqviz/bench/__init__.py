"""Benchmarks: ``python -m vqviz bench repro|perf|ui``.

- ``repro`` (:mod:`vqviz.bench.repro`) runs the seed papers' protocols (:mod:`vqviz.bench.protocols`,
  one module per paper) and writes ``vqviz_app/results/<dataset>.json`` and a markdown table of our
  figures next to the papers' (:mod:`vqviz.bench.repro_table`).
- ``perf`` (:mod:`vqviz.bench.perf`) prints speed ratios measured within one run
  (:mod:`vqviz.bench.perf_measures`).
- ``ui`` (:mod:`vqviz.bench.ui`) times the app's gestures in a real browser against the floor,
  the smallest Streamlit app.

Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    """Add the ``bench`` command and its sub-commands to the CLI's subparsers."""
    from . import perf, repro, ui

    bench = sub.add_parser("bench", help="reproduce the papers' tables, or measure speed",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for module in (repro, perf, ui):
        doc = (module.__doc__ or "").strip()
        p = which.add_parser(module.__name__.rsplit(".", 1)[1], help=doc.splitlines()[0], description=doc,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(bench_main=module.main)


def main(args: argparse.Namespace) -> int:
    """Run the chosen benchmark with its parsed arguments."""
    return args.bench_main(args)

