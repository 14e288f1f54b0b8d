"""Benchmarks: ``python -m vqviz bench repro|perf|ui``.

- ``repro`` (:mod:`vqviz.bench.repro`) runs the seed papers' protocols and writes
  ``benchmarks/results/<dataset>.json`` and a markdown table of our figures next to the papers'.
- ``perf`` (:mod:`vqviz.bench.perf`) prints speed ratios measured within one run.
- ``ui`` (:mod:`vqviz.bench.ui`) times the app's gestures in a real browser against the floor,
  the smallest Streamlit app.

Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
from importlib import metadata


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


def machine() -> dict:
    """What a benchmark ran on: platform, CPUs, threads, load, GPU and library versions."""
    import torch

    from .. import __version__

    versions = {"vqviz": __version__}
    for dist in ("torch", "numpy", "scikit-learn", "openTSNE", "umap-learn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "usable_cpus": usable, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "versions": versions}
