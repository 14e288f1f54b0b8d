"""What a benchmark ran on, recorded beside its figures."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def machine() -> dict:
    """What a benchmark ran on: platform, CPUs, threads, load, GPU and library versions."""
    import torch

    from vqviz import __version__

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
