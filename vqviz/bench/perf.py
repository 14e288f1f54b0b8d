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
they assert nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__, data, flags
from ..errors import ConfigError, VqvizError
from ..models import KMeans, build
from ..train import TrainConfig, Trainer
from ..utils import atomic_write_bytes, set_seed
from .host import machine

#: Settings of a full run and of ``--quick``; flags given on the command line override them.
PRESETS = {
    "full": {"n": 2000, "epochs": 3, "repeats": 3, "fast_repeats": 50, "k": 50, "n_init": 4},
    "quick": {"n": 200, "epochs": 1, "repeats": 1, "fast_repeats": 5, "k": 10, "n_init": 1},
}
#: t-SNE, UMAP and k-means need some neighbours to work with.
MIN_POINTS = 20
DECODE_BATCH = 100


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


@dataclass
class Measure:
    """One row: our figure, the reference's, and the runs they are medians of."""

    key: str
    label: str
    device: str
    unit: str  # "s", "samples/s", or "" for inertia
    ours_runs: list[float]
    reference_runs: list[float]
    difference: float | None = None  # how far apart two results that should agree are
    difference_of: str = ""  # ... and what is compared, e.g. "largest |difference| of the maps"
    ours: float = field(init=False)
    reference: float = field(init=False)
    ratio: float | None = field(init=False)  # None when the reference is 0 (an inertia, with K = N)

    def __post_init__(self):
        self.ours = statistics.median(self.ours_runs)
        self.reference = statistics.median(self.reference_runs)
        self.ratio = self.ours / self.reference if self.reference else None


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
            rows.append(_training(model, initial, x, y, s, device))
        if z is None:  # the latents of the trained encoder, computed once on the first device
            z = model.encode_array(x.numpy())
        with progress(f"k-means on {device}: ours against scikit-learn"):
            rows += _kmeans(z, s, device)
        with progress(f"decoding on {device}: 1 and {DECODE_BATCH} latents"):
            rows += _decoding(model, z, s, device)
        if device.type == "cpu":
            rows += _projections(z, s, progress)
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


# ----- the measures -----

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _turns(ours: Callable, reference: Callable, repeats: int, device: torch.device = torch.device("cpu")):
    """Seconds of ``repeats`` calls of each, in ABBA order; returns both lists and both last results."""
    times: tuple[list, list] = ([], [])
    results = [None, None]
    for r in range(repeats):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            _sync(device)
            t0 = time.perf_counter()
            results[i] = (ours, reference)[i]()
            _sync(device)
            times[i].append(time.perf_counter() - t0)
    return times[0], times[1], results


def _max_difference(a, b) -> float:
    a, b = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64) for v in (a, b))
    return float(np.abs(a - b).max())


def _training(model, initial: dict, x: torch.Tensor, y: torch.Tensor, s: Settings, device: torch.device) -> Measure:
    """Samples/s of Trainer.run and of a bare loop, both from ``initial``, with batches of the same size.

    The batch order differs (the trainer draws it from a sampler), which changes no cost.
    """
    modules = (model.encoder, model.head)
    params = lambda: [p for m in modules for p in m.parameters()]  # noqa: E731

    def ce(xb, yb):  # one loss for both, so the ratio is the trainer's own cost
        return {"loss": F.cross_entropy(model.head(model.encoder(xb)), yb)}

    def ours(x, y, epochs):
        model.load_state_dict(initial)
        trainer = Trainer(TrainConfig(epochs=epochs, batch_size=s.batch_size, seed=s.seed, device=str(device)))
        trainer.run("encoder", params(), ce, (x, y), modules=modules)

    def bare(x, y, epochs):
        model.load_state_dict(initial)
        x, y = x.to(device), y.to(device)
        optimiser = torch.optim.Adam(params(), lr=1e-3)
        gen = torch.Generator().manual_seed(s.seed)
        for m in modules:
            m.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).to(device).split(s.batch_size):
                loss = ce(x[idx], y[idx])["loss"]
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        for m in modules:
            m.eval()

    few = s.batch_size * 2  # a warm-up of two steps each: first-call costs out of the timing
    _turns(lambda: ours(x[:few], y[:few], 1), lambda: bare(x[:few], y[:few], 1), 1, device)
    t_ours, t_bare, _ = _turns(lambda: ours(x, y, s.epochs), lambda: bare(x, y, s.epochs), s.repeats, device)
    samples = len(x) * s.epochs
    return Measure("train", "training, Trainer.run vs bare loop", device.type, "samples/s",
                   [samples / t for t in t_ours], [samples / t for t in t_bare])


def _kmeans(z: np.ndarray, s: Settings, device: torch.device) -> list[Measure]:
    """Time and inertia of our k-means against scikit-learn's, with the same settings."""
    from sklearn.cluster import KMeans as SKKMeans

    zt = torch.as_tensor(z).to(device)
    make = lambda: KMeans(s.k, n_init=s.n_init, random_state=s.seed)  # noqa: E731
    make().fit(zt[: 2 * s.k])  # a warm-up: first-call costs (kernels, allocator) out of the timing
    spec = make()
    ours = lambda: make().fit(zt).cluster_centers_.cpu().numpy()  # noqa: E731
    reference = lambda: SKKMeans(s.k, n_init=s.n_init, max_iter=spec.max_iter, tol=spec.tol,  # noqa: E731
                                 random_state=s.seed).fit(z).cluster_centers_
    t_ours, t_ref, (c_ours, c_ref) = _turns(ours, reference, s.repeats, device)
    return [Measure("kmeans_time", "k-means time, ours vs scikit-learn", device.type, "s", t_ours, t_ref),
            Measure("kmeans_inertia", "k-means inertia, ours vs scikit-learn", device.type, "",
                    [_inertia(z, c_ours)], [_inertia(z, c_ref)])]


def _inertia(z: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances to the nearest centre, in float64 for both sides alike."""
    z, c = z.astype(np.float64), np.asarray(centres, dtype=np.float64)
    d = (z * z).sum(1)[:, None] - 2 * z @ c.T + (c * c).sum(1)
    return float(np.maximum(d.min(1), 0).sum())


def _decoding(model, z: np.ndarray, s: Settings, device: torch.device) -> list[Measure]:
    """Milliseconds to decode 1 and 100 latents, through decode_array and through decode."""
    model.eval()
    batch = z[np.arange(DECODE_BATCH) % len(z)]
    out = {}
    for size in (1, DECODE_BATCH):
        arr = batch[:size]
        tensor = torch.as_tensor(arr).to(device)

        def reference():
            with torch.no_grad():
                return model.decode(tensor)

        ours = lambda: model.decode_array(arr)  # noqa: E731
        _turns(ours, reference, 3, device)  # warm-up
        out[size] = _turns(ours, reference, s.fast_repeats, device)
    rows = [Measure(f"decode_{size}", f"decode {size} latent{'s' * (size > 1)}, decode_array vs decode",
                    device.type, "s", t_ours, t_ref, _max_difference(*results), "largest |difference| of the pixels")
            for size, (t_ours, t_ref, results) in out.items()]
    rows.append(Measure("decode_per_latent", f"decode per latent, batch of {DECODE_BATCH} vs 1", device.type, "s",
                        [t / DECODE_BATCH for t in out[DECODE_BATCH][1]], out[1][1]))
    return rows


def _projections(z: np.ndarray, s: Settings, progress: "_Progress") -> list[Measure]:
    """project against openTSNE and umap-learn called directly, and cached_project warm against cold."""
    import umap
    from openTSNE import TSNE

    from ..projection import (
        DEFAULTS,
        EXACT_NEIGHBOURS_BELOW,
        THREADS_FROM,
        cached_project,
        project,
    )

    n = len(z)
    n_jobs = (os.cpu_count() or 1) if n >= THREADS_FROM else 1  # project's default
    tsne, um = DEFAULTS["tsne"], DEFAULTS["umap"]

    def tsne_direct():  # the parameters of projection._tsne
        neighbors = "exact" if n < EXACT_NEIGHBOURS_BELOW else "auto"
        return np.asarray(TSNE(n_components=2, perplexity=min(tsne["perplexity"], (n - 1) / 3.0),
                               random_state=s.seed, n_jobs=n_jobs, neighbors=neighbors, verbose=False).fit(z))

    def umap_direct():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return umap.UMAP(n_components=2, n_neighbors=int(min(um["n_neighbors"], n - 1)),
                             min_dist=float(um["min_dist"]), random_state=s.seed, n_jobs=n_jobs).fit_transform(z)

    with progress("warming up openTSNE and UMAP (numba compiles UMAP on its first call)"):
        for method in ("tsne", "umap"):
            project(z[:MIN_POINTS * 5], method, random_state=s.seed)
    rows = []
    for key, label, direct in (("tsne", "t-SNE, project vs openTSNE", tsne_direct),
                               ("umap", "UMAP, project vs umap-learn", umap_direct)):
        with progress(f"{label}: {n:,} points"):
            t_ours, t_ref, (xy, xy_ref) = _turns(partial(project, z, key, random_state=s.seed), direct, s.repeats)
            xy_ref = np.asarray(xy_ref, dtype=np.float32)
            rows.append(Measure(key, label, "cpu", "s", t_ours, t_ref, _max_difference(xy, xy_ref - xy_ref.mean(0)),
                                "largest |difference| of the maps' coordinates"))
    with progress(f"the projection cache: a t-SNE map read against computed, {n:,} points"), \
            tempfile.TemporaryDirectory(prefix="vqviz-perf-") as tmp:
        where = dict(checkpoint_sha="bench-perf", dataset=s.dataset, split="bench", random_state=s.seed)
        cold, cold_maps = [], []
        for r in range(s.repeats):  # a new folder each time, so every cold call misses
            t0 = time.perf_counter()
            cold_maps.append(cached_project(z, "tsne", cache=Path(tmp) / str(r), **where))
            cold.append(time.perf_counter() - t0)
        warm = []
        for _ in range(s.fast_repeats):
            t0 = time.perf_counter()
            xy = cached_project(z, "tsne", cache=Path(tmp) / "0", **where)
            warm.append(time.perf_counter() - t0)
        rows.append(Measure("projection_cache", "t-SNE map, cached vs cold", "cpu", "s", warm, cold,
                            _max_difference(xy, cold_maps[0]), "largest |difference| of the maps' coordinates"))
    return rows


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
