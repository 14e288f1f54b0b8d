"""Speed ratios measured within one run: our code against the libraries it wraps.

    python -m vqviz bench perf                                # digits; a minute or two on two cores
    python -m vqviz bench perf --dataset mnist --n 10000 --json perf.json
    python -m vqviz bench perf --quick                        # a few seconds: a smoke run

Every row times our path and a reference on the same input in the same process, in turns
(ours, reference, reference, ours, ...) so that a change in the machine's load hits both,
and prints the medians and ours / reference:

- t-SNE and UMAP: vqviz.projection.project against openTSNE and umap-learn called directly
  with the parameters project uses (our overhead);
- the projection cache: cached_project reading a t-SNE map against computing it (a
  temporary cache folder, so the cold call is cold and the user's cache is untouched);
- k-means: vqviz.models.KMeans against scikit-learn's, with the same K, restarts,
  iterations and tolerance: time, and inertia (below 1: ours found tighter clusters);
- training: Trainer.run against a bare loop (Adam, randperm, the same batch size and
  epochs) on the same SEQ encoder, loss and initial weights, in samples/s;
- decoding 1 and 100 latents: decode_array (the app's path) against model.decode on a
  tensor, and the cost per latent in a batch of 100 against a batch of 1.

The latents are those of a SEQ encoder trained (by the training measure) on N images of
the data set. When a CUDA GPU is present the torch measures (training, k-means, decoding)
run again on it. Where ours and the reference should compute the same thing (maps,
decoded images) the largest difference is printed too. Benchmarks print figures;
they assert nothing. The measures themselves are :mod:`vqviz.bench.perf_measures`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import __version__, data, flags
from ..errors import ConfigError, VqvizError
from ..models import build
from ..utils import atomic_write_bytes, set_seed
from .host import machine
from .perf_measures import DECODE_BATCH, MIN_POINTS, Measure, decoding, kmeans, projections, training

#: Settings of a full run and of ``--quick``; flags given on the command line override them.
PRESETS = {
    "full": {"n": 2000, "epochs": 3, "repeats": 3, "fast_repeats": 50, "k": 50, "n_init": 4},
    "quick": {"n": 200, "epochs": 1, "repeats": 1, "fast_repeats": 5, "k": 10, "n_init": 1},
}


@dataclass
class Settings:
    """What one run measures; the flags of ``bench perf``.

    Attributes
    ----------
    dataset : data set to encode
    data_dir : folder holding the data set's files
    n : images to train on, encode and map (default: 2000, or all if fewer)
    encoder : SEQ encoder: lae2, lae4, cae4 or mlp
    latent_dim : width of the latents
    k : k-means clusters
    n_init : k-means++ restarts, n_init
    epochs : training epochs
    batch_size : training batch size
    repeats : runs of each slow measure; medians are printed (default: 3; decoding and cache reads run 50 times)
    fast_repeats : runs of each fast measure (decoding, cache reads)
    seed : seed of the model, the subset and the maps
    device : auto: the CPU, then the GPU too when CUDA is available; cpu: the CPU only; cuda: as auto, but an error without a GPU
    quick : tiny sizes and one repeat: a smoke run of seconds
    """

    dataset: str = "digits"
    data_dir: str | None = None
    n: int | None = None  # None: the preset's number, or every image if there are fewer
    encoder: str = "cae4"
    latent_dim: int = 128
    k: int = PRESETS["full"]["k"]
    n_init: int = field(default=PRESETS["full"]["n_init"], metadata={"flag": "--kmeans-restarts"})
    epochs: int = PRESETS["full"]["epochs"]
    batch_size: int = 128
    repeats: int = PRESETS["full"]["repeats"]
    fast_repeats: int = PRESETS["full"]["fast_repeats"]
    seed: int = 0
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    quick: bool = field(default=False, metadata={"switch": True})

    def __post_init__(self):
        if self.n is not None and self.n < MIN_POINTS:
            raise ConfigError(f"--n must be at least {MIN_POINTS} (t-SNE, UMAP and k-means need neighbours), "
                              f"got {self.n}")
        for flag, value, low in (("--latent-dim", self.latent_dim, 2), ("--k", self.k, 1),
                                 ("--kmeans-restarts", self.n_init, 1), ("--epochs", self.epochs, 1),
                                 ("--batch-size", self.batch_size, 1), ("--repeats", self.repeats, 1)):
            if value < low:
                raise ConfigError(f"{flag} must be at least {low}, got {value}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Settings":
        """Settings from parsed flags, the preset filling in those not given (``n`` is chosen later)."""
        preset = {k: v for k, v in PRESETS["quick" if args.quick else "full"].items() if k != "n"}
        return cls(**{**preset, **flags.given(args, cls)})


@dataclass
class Options(Settings):
    """The flags of ``bench perf``: the settings, and where the figures go.

    Attributes
    ----------
    json : also write the figures to PATH as JSON
    """

    json: str | None = field(default=None, metadata={"metavar": "PATH"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench perf`` flags."""
    flags.add(parser, Options, skip=("fast_repeats",))


def main(args: argparse.Namespace) -> int:
    """Run every measure, print the table and write ``--json``."""
    start = time.perf_counter()
    s = Settings.from_args(args)
    if args.json and Path(args.json).is_dir():
        raise ConfigError(f"--json {args.json} is a folder; give a file name")
    devices = _devices(s.device)
    host = _machine(devices)
    _print_machine(host, s.device)
    progress = _Progress(8 + 3 * (len(devices) - 1))

    with progress("loading the data"):
        s, x, y, n_classes = _load(s)
    print(f"data: {s.n:,} images of {s.dataset} ({'x'.join(map(str, x.shape[1:]))}) -> SEQ {s.encoder} "
          f"encoder, latents of {s.latent_dim}; {s.epochs} epoch(s) of batch {s.batch_size}; K={s.k}, "
          f"{s.n_init} restart(s); medians of {s.repeats} run(s), {s.fast_repeats} for decoding and cache reads",
          flush=True)
    set_seed(s.seed)
    model = build("seq", in_shape=x.shape[1:], n_classes=n_classes, encoder=s.encoder, latent_dim=s.latent_dim,
                  k=s.k)
    initial = copy.deepcopy(model.state_dict())
    rows: list[Measure] = []
    z = None
    for device in devices:
        model.to(device)
        with progress(f"training on {device}: Trainer.run against a bare loop"):
            rows.append(training(model, initial, x, y, s, device))
        if z is None:  # the latents of the trained encoder, computed once on the first device
            z = model.encode_array(x.numpy())
        with progress(f"k-means on {device}: ours against scikit-learn"):
            rows += kmeans(z, s, device)
        with progress(f"decoding on {device}: 1 and {DECODE_BATCH} latents"):
            rows += decoding(model, z, s, device)
        if device.type == "cpu":
            rows += projections(z, s, progress)
    _print_table(rows)
    figures = {"benchmark": "perf", "vqviz": __version__, "machine": host, "settings": asdict(s),
               "seconds": time.perf_counter() - start, "measures": {}}
    for row in rows:
        fields = asdict(row)
        del fields["key"], fields["device"]
        if row.difference is None:
            del fields["difference"], fields["difference_of"]
        figures["measures"].setdefault(row.device, {})[row.key] = fields
    if args.json:
        try:
            atomic_write_bytes(args.json, (json.dumps(figures, indent=1) + "\n").encode())
        except OSError as e:
            raise VqvizError(f"cannot write {args.json}: {e}") from None
        print(f"wrote {args.json}")
    print(f"done in {figures['seconds']:.0f} s", file=sys.stderr)
    return 0


# ----- data, machine, output -----

def _load(s: Settings) -> tuple[Settings, torch.Tensor, torch.Tensor, int]:
    """A seeded subset of N images of the train split (and the test split if it is too small)."""
    parts = [data.load(s.dataset, "train", s.data_dir)]
    want = s.n or PRESETS["quick" if s.quick else "full"]["n"]
    if want > len(parts[0]):
        parts.append(data.load(s.dataset, "test", s.data_dir))
    total = sum(len(p) for p in parts)
    if s.n is not None and s.n > total:
        raise ConfigError(f"--n {s.n:,} exceeds the {total:,} images of {s.dataset}")
    n = min(want, total)
    if s.k > n:
        raise ConfigError(f"--k {s.k} is more clusters than the {n} images measured")
    pick = np.sort(np.random.default_rng(s.seed).permutation(total)[:n])
    images = np.concatenate([p.images for p in parts])[pick]
    labels = np.concatenate([p.labels for p in parts])[pick]
    return replace(s, n=n), torch.from_numpy(images), torch.from_numpy(labels), parts[0].n_classes


def _devices(choice: str) -> list[torch.device]:
    has_cuda = torch.cuda.is_available()
    if choice == "cuda" and not has_cuda:
        raise ConfigError("--device cuda, but torch finds no CUDA GPU (torch.cuda.is_available() is False)")
    return [torch.device("cpu")] + ([torch.device("cuda")] if has_cuda and choice != "cpu" else [])


def _machine(devices: list[torch.device]) -> dict:
    # "gpu" names the GPU only when it is measured (not under --device cpu).
    m = machine()
    return {**m, "devices": [d.type for d in devices], "gpu": m["gpu"] if len(devices) > 1 else None}


def _print_machine(m: dict, choice: str) -> None:
    load = f", load average {m['load_average']:.2f}" if m["load_average"] is not None else ""
    print(f"machine: {m['platform']}, Python {m['python']}, {m['cpus']} CPUs ({m['usable_cpus']} usable){load}")
    print(f"torch {m['versions']['torch']}: {m['torch_threads']} thread(s), OMP_NUM_THREADS={m['omp_num_threads']}")
    if m["gpu"]:
        print(f"devices: cpu and cuda ({m['gpu']}); t-SNE, UMAP and scikit-learn run on the CPU only")
    elif choice == "cpu":
        print("devices: cpu (--device cpu: the GPU measures are off)")
    else:
        print("devices: cpu; no CUDA GPU found, so the GPU measures were skipped")
    sys.stdout.flush()  # before the progress lines on stderr


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"
    if unit == "samples/s":
        return f"{value:,.0f} samples/s"
    return f"{value:,.6g}"


def _print_table(rows: list[Measure]) -> None:
    cells = [("measure", "device", "ours", "reference", "ratio")]
    cells += [(r.label, r.device, _fmt(r.ours, r.unit), _fmt(r.reference, r.unit),
               "n/a" if r.ratio is None else f"{r.ratio:.4g}" if r.unit == "" else f"{r.ratio:.3g}") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    print()
    for i, c in enumerate(cells):
        print(f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(c[2:], widths[2:])))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("\nratio = ours / reference. Times: below 1, ours is faster. samples/s: above 1, ours is faster. "
          "Inertia: below 1, ours found tighter clusters.")
    print("results that should agree:")
    for r in rows:
        if r.difference is not None:
            print(f"  {r.label.split(',')[0]} ({r.device}): {r.difference_of} {r.difference:.2g}")


class _Progress:
    """One line on stderr per step: ``[i/total] label ... 1.2 s``."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        self.done += 1
        print(f"[{self.done}/{self.total}] {label} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
