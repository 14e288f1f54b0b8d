"""Reproduce the seed papers' tables on MNIST or Fashion-MNIST, next to the papers' numbers.

    python -m vqviz bench repro [--dataset mnist|fashion-mnist] [--seeds 3] [--epochs N] [--only P[:RUN],...]
    python -m vqviz bench repro --quick            # every protocol on digits in about a minute

Protocols (each on the data sets its paper uses):
  seq         SEQ, Fig. 3 (test accuracy against K, with P_E) and Table 1 (train clustering
              accuracy) for LAE-2, LAE-4 and CAE-4: MNIST and Fashion-MNIST
  softvq      soft VQ-VAE paper, Table 1: k-means accuracy, NMI and linear probe on z_e for AE,
              VAE, beta-VAE (20), information dropout, VQ-VAE and soft VQ-VAE (K = 128), d = 64,
              and on the raw pixels: MNIST
  skvq        SK-VQ, Tables 1 and 2: accuracy, assignment entropy and the decoder's error for
              no VQ, VQ + CE, + SK, + SK + GP: Fashion-MNIST with a small CNN
  dvq         DVQ against VQ at 128 codewords in all, L = 1, 2, 4, 8: MNIST
  clustervae  cluster-VAE paper, Table 1: reconstruction BCE of VAE, beta-VAE, CVAE, lambda-hot
              and k-means VAE, and the lambda-hot VAE's argmax accuracy: MNIST and Fashion-MNIST

Every run (protocol, model, seed, budget) is saved to vqviz_app/results/<dataset>.json as soon
as it ends, so an interrupted benchmark resumes where it stopped; --fresh starts over, and
--table-only rewrites the tables from the saved runs, training nothing. The budgets default to
the papers'; --epochs overrides them, and the table says so. On a machine lent for a fixed time,
--time-limit MIN stops each run's first training stage at the end of the epoch past it, and
the table says after how many epochs; --first-seed splits seeds between processes. The markdown
table (also written to <dataset>.md) gives, for each figure, our mean and standard deviation
over the seeds, the paper's number, the differences in protocol and the time (CPU, or wall time
on a GPU). The JSON also holds everything the app's Metrics page shows (see :func:`_save`), so
that the app reads it as plain data, without this package. The table is built by
:mod:`vqviz.bench.repro_table`; the protocols are :mod:`vqviz.bench.protocols`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .. import data, flags
from ..errors import ConfigError
from ..models import build
from ..train import TrainConfig, Trainer, plateau
from ..utils import atomic_write_bytes, set_seed
from .host import machine
from .protocols import PROTOCOLS, SEQ_PAPER_BEST, Run
from .protocols.seq import fig3_curves
from .repro_table import markdown, summarise

#: Where the results are published: ``vqviz_app/results/`` of the checkout.
RESULTS = Path(__file__).resolve().parents[2] / "vqviz_app" / "results"

#: Budgets of --quick: a smoke run of every protocol on digits.
QUICK = {"epochs": 1, "seeds": 1, "k_sweep": (10, 20, 30)}


def _quick(run: Run) -> Run:
    cfg = dict(run.config)
    if "k_sweep" in cfg:
        cfg.update(k_sweep=QUICK["k_sweep"], k=max(QUICK["k_sweep"]), kmeans_restarts=1)
    return Run(run.label, run.model, cfg, QUICK["epochs"], min(run.batch_size, 128), run.lr)


def plan(dataset: str, quick: bool = False, epochs: int | None = None, only: str = "") -> list[tuple[str, Run]]:
    """The (protocol, run) pairs to measure on ``dataset``.

    ``only`` is a comma-separated list of protocols or ``protocol:run label`` entries.
    Quick mode runs every protocol, on any data set, with the :data:`QUICK` budgets.
    """
    picks = [p.strip() for p in only.split(",") if p.strip()]
    for pick in picks:
        name = pick.split(":", 1)[0]
        if name not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {name!r} in --only; choose from {', '.join(PROTOCOLS)}")
    out = []
    for p in PROTOCOLS.values():
        if not quick and dataset not in p.datasets:
            continue
        for run in p.runs(dataset):
            if picks and p.name not in picks and f"{p.name}:{run.label}" not in picks:
                continue
            if quick:
                run = _quick(run)
            if epochs and run.model:  # the new budget; a run trained until its plateau takes it as its ceiling
                run = replace(run, epochs=epochs)
            out.append((p.name, run))
    if picks and not out:
        raise ConfigError(f"--only {only!r} matches no run on {dataset}")
    if not out:
        raise ConfigError(f"no protocol runs on {dataset!r}; the papers use mnist and fashion-mnist "
                          f"(or use --quick on any data set)")
    return out


def _key(protocol: str, run: Run, seed: int) -> str:
    return json.dumps({"protocol": protocol, "run": asdict(run), "seed": seed}, sort_keys=True)


def measure(protocol: str, run: Run, seed: int, train, test, quick: bool = False, device: str = "auto",
            time_limit: float | None = None) -> dict:
    """Train one run and score it; return its record (figures, CPU and wall seconds).

    ``time_limit`` (seconds): the run's first training stage (the encoder, the classifier, the VAE) stops at
    the end of the first epoch that ends past it; later stages (a decoder) keep their budgets. The record
    then holds ``epochs_run`` and ``time_limited``.
    """
    set_seed(seed)
    if not run.model:  # nothing to train: the protocol scores the data itself
        cpu, wall = time.process_time(), time.perf_counter()
        figures = PROTOCOLS[protocol].score(None, {"seed": seed}, train, test, quick)
        return _record(protocol, run, seed, figures, cpu, wall, "cpu")
    model = build(run.model, in_shape=train.shape, n_classes=train.n_classes, **run.config)
    trainer = Trainer(TrainConfig(epochs=run.epochs, batch_size=run.batch_size, lr=run.lr, seed=seed, device=device))
    rules = [plateau(patience=5, min_delta=1e-3)] if run.until_plateau and not quick else []
    out_of_time = _OutOfTime(time_limit) if time_limit is not None else None
    if rules or out_of_time:  # the plateau first: a run that has converged was not cut short
        trainer.converged = lambda stage, history: any(rule(stage, history) for rule in rules) or \
            bool(out_of_time and out_of_time(stage, history))
    held_out: list[float] = []
    if rules:
        sample = data.Dataset(test.name, test.split, test.images[:PLATEAU_SAMPLE], test.labels[:PLATEAU_SAMPLE],
                              test.classes)
        trainer.add_callback("on_epoch", lambda p: held_out.append(_held_out_bce(model, sample)))
    cpu, wall = time.process_time(), time.perf_counter()
    m = model.fit(train, test, trainer)
    figures = PROTOCOLS[protocol].score(model, m, train, test, quick)
    if held_out:  # the learning curve: epochs run, training loss and held-out BCE per epoch
        longest = max(trainer.history.values(), key=len, default=[])  # the stage that trained longest
        figures.update(epochs_run=len(held_out), held_out_bce_curve=held_out,
                       loss_curve=[h["loss"] for h in longest if "loss" in h])
    if out_of_time and 0 < out_of_time.stopped < run.epochs:
        figures.update(epochs_run=out_of_time.stopped, time_limited=True)
    return _record(protocol, run, seed, figures, cpu, wall, str(trainer.device))


def _record(protocol: str, run: Run, seed: int, figures: dict, cpu: float, wall: float, device: str) -> dict:
    """A run's record, its CPU and wall seconds counted from ``cpu`` and ``wall``."""
    # Through JSON, so that a fresh record compares equal to one read back from the file.
    return {"protocol": protocol, "run": json.loads(json.dumps(asdict(run))), "seed": seed, "figures": figures,
            "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall, "device": device}


class _OutOfTime:
    """A :attr:`Trainer.converged` rule: the first stage it is asked about ends once ``seconds`` have passed
    since this rule was made; ``stopped`` is then the epochs that stage ran (0: it was not cut short)."""

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds
        self.stage: str | None = None
        self.stopped = 0

    def __call__(self, stage: str, history: list[dict]) -> bool:
        self.stage = self.stage or stage
        if stage != self.stage or time.perf_counter() < self.deadline:
            return False
        self.stopped = len(history)
        return True


#: Test images scored after every epoch of a run trained until its plateau (its learning curve).
PLATEAU_SAMPLE = 2000


def _held_out_bce(model, split) -> float:
    """The model's own ``evaluate`` BCE per image on ``split`` (train mode restored after)."""
    was_training = model.training
    bce = model.evaluate(split)[f"{split.split}_bce_per_image"]
    model.train(was_training)
    return bce


def _read(path: Path) -> dict:
    """The results file at ``path`` ({} if there is none), its runs with the fields a run gained since it
    was saved, at their defaults."""
    try:
        body = json.loads(path.read_text())
        for r in body["runs"]:
            r["run"] = json.loads(json.dumps(asdict(Run(**r["run"]))))
        return body
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a results file of this benchmark ({e}); move it away or pass --fresh")


def _load(path: Path) -> list[dict]:
    """The runs saved at ``path`` ([] if there is no file)."""
    return _read(path).get("runs", [])


def _save(path: Path, dataset: str, records: list[dict], host: dict | None = None) -> list[dict]:
    """Write the results file and its markdown; return the table's rows.

    The file holds everything the app's Metrics page shows, as plain data, so that the app reads it
    without this package: the runs; the table (each row's numbers, the text it is shown with in
    ``shown`` and the paper's ``citation``); SEQ's Fig. 3 curves and the paper's best, ``seq_curves``
    and ``seq_paper_best``. ``host``: the machine the runs were measured on (default: this one).
    """
    rows = summarise(records, dataset)
    body = {"dataset": dataset, "machine": host or machine(), "runs": records, "table": rows,
            "seq_curves": fig3_curves(records), "seq_paper_best": SEQ_PAPER_BEST.get(dataset)}
    atomic_write_bytes(path, json.dumps(body, indent=1).encode())
    atomic_write_bytes(path.with_suffix(".md"), markdown(rows, dataset, records).encode())
    return rows


@dataclass
class Options:
    """The flags of ``bench repro``.

    Attributes
    ----------
    dataset : mnist or fashion-mnist (default: mnist; with --quick: digits)
    quick : every protocol, 1 epoch, 1 seed: a smoke run
    seeds : seeds per run
    first_seed : the first of the seeds (to add seeds to saved runs, or split them between processes)
    epochs : override every protocol's epochs
    only : protocols (seq, softvq, skvq, dvq, clustervae, quantizers) or protocol:run labels to run
    out : results folder
    data_dir : folder holding the data set's files
    device : auto, cpu, cuda...
    time_limit : minutes for the whole command (a lent GPU's): each run's first stage stops at the end of the epoch past it, and no run starts after it
    fresh : ignore the runs already saved in the results file
    table_only : run nothing: write and print the tables of the runs already saved
    """

    dataset: str | None = None
    quick: bool = field(default=False, metadata={"switch": True})
    seeds: int = 3
    first_seed: int = 0
    epochs: int | None = None
    only: str = field(default="", metadata={"metavar": "P[:RUN],..."})
    out: str = str(RESULTS)
    data_dir: str | None = None
    device: str = "auto"
    time_limit: float | None = field(default=None, metadata={"metavar": "MIN"})
    fresh: bool = field(default=False, metadata={"switch": True})
    table_only: bool = field(default=False, metadata={"switch": True})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench repro`` flags."""
    flags.add(parser, Options)


def main(args: argparse.Namespace) -> int:
    args = Options(**flags.given(args, Options))
    dataset = args.dataset or ("digits" if args.quick else "mnist")
    seeds = QUICK["seeds"] if args.quick else args.seeds
    if seeds < 1 or (args.epochs is not None and args.epochs < 1) or args.first_seed < 0:
        raise ConfigError("--seeds and --epochs must be at least 1, and --first-seed at least 0")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ConfigError(f"--time-limit must be a positive number of minutes, got {args.time_limit}")
    deadline = time.perf_counter() + 60 * args.time_limit if args.time_limit else None
    path = Path(args.out) / f"{dataset}.json"
    if args.table_only:  # the runs' machine is kept: no run is measured here
        saved = _read(path)
        records = saved.get("runs")
        if not records:
            raise ConfigError(f"{path} holds no runs yet: run `python -m vqviz bench repro --dataset {dataset}`")
        print(markdown(_save(path, dataset, records, saved.get("machine")), dataset, records))
        return 0
    runs = plan(dataset, args.quick, args.epochs, args.only)
    records = [] if args.fresh else _load(path)
    done = {_key(r["protocol"], Run(**r["run"]), r["seed"]) for r in records}
    todo = [(p, run, s) for s in range(args.first_seed, args.first_seed + seeds) for p, run in runs
            if _key(p, run, s) not in done]
    print(f"{len(todo)} runs to measure on {dataset} ({len(runs) * seeds - len(todo)} already in {path})",
          file=sys.stderr)
    if todo:
        train = data.load(dataset, "train", args.data_dir)
        test = data.load(dataset, "test", args.data_dir)
    for i, (protocol, run, seed) in enumerate(todo, 1):
        left = deadline - time.perf_counter() if deadline else None
        if left is not None and left <= 0:
            print(f"the time limit is reached: {len(todo) - i + 1} runs left for a later call", file=sys.stderr)
            break
        print(f"[{i}/{len(todo)}] {protocol}: {run.label}, seed {seed}, {run.epochs} epochs", file=sys.stderr,
              flush=True)
        record = measure(protocol, run, seed, train, test, args.quick, args.device, left)
        records = [r for r in records if _key(r["protocol"], Run(**r["run"]), r["seed"])
                   != _key(protocol, run, seed)] + [record]
        _save(path, dataset, records)
        shown = {k: round(v, 4) for k, v in record["figures"].items() if isinstance(v, (int, float))}
        print(f"    {shown}  ({record['cpu_seconds']:.0f} s CPU)", file=sys.stderr, flush=True)
    rows = _save(path, dataset, records)
    print(markdown(rows, dataset, records))
    print(f"wrote {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return 0
