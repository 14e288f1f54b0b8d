"""Reproduce the seed papers' tables on MNIST or Fashion-MNIST, next to the papers' numbers.

    python -m vqviz bench repro [--dataset mnist|fashion-mnist] [--seeds 3] [--epochs N] [--only P[:RUN],...]
    python -m vqviz bench repro --quick            # every protocol on digits in about a minute

Protocols (each on the data sets its paper uses):
  seq         SEQ, Fig. 3 (test accuracy against K, with P_E) and Table 1 (train clustering
              accuracy) for LAE-2, LAE-4 and CAE-4: MNIST and Fashion-MNIST
  softvq      soft VQ-VAE paper, Table 1: k-means accuracy, NMI and linear probe on z_e for AE,
              VAE, beta-VAE (20), VQ-VAE and soft VQ-VAE (K = 128), d = 64: MNIST
  skvq        SK-VQ, Tables 1 and 2: accuracy, assignment entropy and the decoder's error for
              no VQ, VQ + CE, + SK, + SK + GP: Fashion-MNIST with a small CNN
  dvq         DVQ against VQ at 128 codewords in all, L = 1, 2, 4, 8: MNIST
  clustervae  cluster-VAE paper, Table 1: reconstruction BCE of VAE, beta-VAE, CVAE, lambda-hot
              and k-means VAE, and the lambda-hot VAE's argmax accuracy: MNIST and Fashion-MNIST

Every run (protocol, model, seed, budget) is saved to benchmarks/results/<dataset>.json as soon
as it ends, so an interrupted benchmark resumes where it stopped; --fresh starts over. The
budgets default to the papers'; --epochs overrides them, and the table says so. The markdown
table (also written to <dataset>.md) gives, for each figure, our mean and standard deviation
over the seeds, the paper's number, the differences in protocol and the CPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__, data, metrics
from ..errors import ConfigError
from ..models import build
from ..train import Trainer, TrainConfig
from ..utils import atomic_write_bytes, set_seed


@dataclass(frozen=True)
class Run:
    """One model to train: its label in the protocol, registry name, config and budget."""

    label: str
    model: str
    config: dict
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3


@dataclass(frozen=True)
class Figure:
    """One line of the table: a number computed from one seed's runs, and the paper's.

    ``value(runs)`` takes {run label: that run's figures} for one seed. ``paper`` is the
    paper's number on this data set (None: the paper gives none); ``comparable`` is False
    where the paper measured it on other data or in other units, so only the trend compares.
    """

    source: str
    model: str
    metric: str
    value: Callable[[dict], float]
    uses: tuple[str, ...]
    paper: float | None = None
    better: str = "higher"
    comparable: bool = True
    percent: bool = False
    note: str = ""


@dataclass
class Protocol:
    """A paper's experiment: the runs, how to score one, the figures and the known differences."""

    name: str
    paper: str
    datasets: tuple[str, ...]
    runs: Callable[[str], list[Run]]
    score: Callable[[object, dict, object, object, bool], dict]
    figures: Callable[[str], list[Figure]]
    differences: str
    paper_epochs: str = ""
    extra: dict = field(default_factory=dict)


# ----- SEQ (Le, Ko and Chen): Fig. 3 and Table 1 -----
SEQ_ENCODERS = ("lae2", "lae4", "cae4")
SEQ_NAMES = {"lae2": "LAE-2", "lae4": "LAE-4", "cae4": "CAE-4"}
SEQ_KS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120)


def _seq_runs(dataset: str) -> list[Run]:
    # The authors' code: Adam 1e-3, batch 32, 10 epochs. The decoder is not scored here: one epoch.
    return [Run(e, "seq", {"encoder": e, "k": max(SEQ_KS), "k_sweep": SEQ_KS, "decoder_epochs": 1}, 10, 32)
            for e in SEQ_ENCODERS]


def _seq_score(model, m: dict, train, test, quick: bool) -> dict:
    curve = {p["k"]: p for p in m["k_curve"]}
    out = {"p_e": m["p_e"], "k_rule": m["k_rule"], "k_curve": m["k_curve"]}
    for k in (100, 120, max(curve)):
        if k in curve:
            out[f"test_accuracy_k{k}"] = curve[k]["test_accuracy"]
            out[f"train_accuracy_k{k}"] = curve[k]["train_accuracy"]
    out["train_accuracy_kmax"] = curve[max(curve)]["train_accuracy"]
    out["test_accuracy_kmax"] = curve[max(curve)]["test_accuracy"]
    return out


#: The paper's best test accuracy in Fig. 3 (CAE-4, K >= 100 on MNIST and K >= 120 on Fashion-MNIST).
SEQ_PAPER_BEST = {"mnist": 0.99, "fashion-mnist": 0.918}


def _seq_figures(dataset: str) -> list[Figure]:
    best = SEQ_PAPER_BEST.get(dataset)
    rows = []
    for e in SEQ_ENCODERS:
        name = SEQ_NAMES[e]
        paper = best if e == "cae4" else None
        note = ({"mnist": "read off Fig. 3: about 99 % for K >= 100",
                 "fashion-mnist": "Fig. 3: 91.8 % for K >= 120"}.get(dataset, "") if paper else "")
        rows += [
            Figure("Fig. 3", name, "encoder accuracy P_E (test)", _get(e, "p_e"), (e,), percent=True),
            Figure("Fig. 3", name, "quantizer accuracy P_Q (test), largest K", _get(e, "test_accuracy_kmax"), (e,),
                   paper, percent=True, note=note),
            Figure("Fig. 3", name, "K picked by the rule (eps = 0.5 %)", _get(e, "k_rule"), (e,), better="lower"),
        ]
    rows.append(Figure("Table 1", "CAE-4", "train clustering accuracy, largest K", _get("cae4", "train_accuracy_kmax"),
                       ("cae4",), 0.9974 if dataset == "mnist" else None, percent=True,
                       note="paper: MNIST only, K not stated"))
    return rows


# ----- soft VQ-VAE (Wu and Flierl), Table 1 -----
SOFTVQ_RUNS = (("AE", "ae", {}), ("VAE", "vae", {}), ("beta-VAE (20)", "beta_vae", {"beta": 20.0}),
               ("VQ-VAE", "vqvae", {"codebook_size": 128}), ("soft VQ-VAE", "soft_vqvae", {"codebook_size": 128}))
SOFTVQ_PAPER = {"AE": (52.61, 0.5301, 91.91), "VAE": (56.44, 0.5600, 89.10), "beta-VAE (20)": (73.81, 0.5760, 91.10),
                "VQ-VAE": (51.48, 0.3541, 81.62), "soft VQ-VAE": (77.64, 0.7188, 93.54)}


def _softvq_runs(dataset: str) -> list[Run]:
    # Adam 3e-4, batch 32, 40,000 iterations = 21 epochs of MNIST; MLP 500-500-2000-64.
    return [Run(label, name, {"latent_dim": 64, "encoder": "mlp", **cfg}, 21, 32, 3e-4)
            for label, name, cfg in SOFTVQ_RUNS]


def _softvq_score(model, m: dict, train, test, quick: bool) -> dict:
    z_tr, z_te = model.encode_array(train.images), model.encode_array(test.images)
    scores = metrics.kmeans_scores(z_te, test.labels, 10, n_init=5 if quick else 100)
    probe = metrics.linear_probe(z_tr, train.labels, z_te, test.labels, max_iter=100 if quick else 1000)
    return {**scores, "linear_probe": probe, "test_bce_per_image": m["test_bce_per_image"]}


def _softvq_figures(dataset: str) -> list[Figure]:
    rows = []
    for label, _, _ in SOFTVQ_RUNS:
        acc, nmi, probe = SOFTVQ_PAPER[label] if dataset == "mnist" else (None, None, None)
        rows += [Figure("Table 1", label, "k-means accuracy (test z_e)", _get(label, "kmeans_accuracy"), (label,),
                        _pct(acc), percent=True),
                 Figure("Table 1", label, "k-means NMI", _get(label, "kmeans_nmi"), (label,), nmi),
                 Figure("Table 1", label, "linear probe accuracy", _get(label, "linear_probe"), (label,),
                        _pct(probe), percent=True)]
    return rows


# ----- SK-VQ (Suzuki et al.), Tables 1 and 2 -----
SKVQ_COMMON = {"encoder": "cnn", "latent_dim": 64, "codebook_size": 256, "beta": 1.0, "sinkhorn_lambda": 0.1,
               "sinkhorn_iters": 3}
SKVQ_RUNS = (("no VQ", {"quantizer": "none"}),
             ("VQ + CE", {"quantizer": "nearest", "constant_embedding": True}),
             ("VQ + CE + SK", {"quantizer": "sinkhorn", "constant_embedding": True, "momentum": 0.99}),
             ("VQ + CE + SK + GP", {"quantizer": "sinkhorn", "constant_embedding": True, "momentum": 0.99,
                                    "gradient_penalty": 0.5}))
#: CIFAR-10, WRN-28-2: accuracy and assignment entropy (nats, of 256 codes: at most ln 256 = 5.545).
SKVQ_PAPER = {"no VQ": (94.55, None), "VQ + CE": (92.46, 2.280), "VQ + CE + SK": (92.83, 5.316),
              "VQ + CE + SK + GP": (93.06, 5.311)}


def _skvq_runs(dataset: str) -> list[Run]:
    return [Run(label, "skvq", {**SKVQ_COMMON, **cfg}, 10, 256) for label, cfg in SKVQ_RUNS]


def _skvq_score(model, m: dict, train, test, quick: bool) -> dict:
    k = model.config.codebook_size
    return {"test_accuracy": m["test_accuracy"], "usage_entropy": m.get("test_usage_entropy", math.nan),
            "usage_entropy_fraction": m.get("test_usage_entropy", math.nan) / math.log(k),
            "dead_codes": m.get("test_dead_codes", math.nan), "test_mse_per_pixel": m["test_mse_per_pixel"]}


def _skvq_figures(dataset: str) -> list[Figure]:
    rows = []
    for label, _ in SKVQ_RUNS:
        acc, ent = SKVQ_PAPER[label]
        rows.append(Figure("Table 1", label, "test accuracy", _get(label, "test_accuracy"), (label,), _pct(acc),
                           comparable=False, percent=True, note="paper: CIFAR-10, WRN-28-2"))
        if label != "no VQ":
            rows.append(Figure("Table 1", label, "assignment entropy / ln K", _get(label, "usage_entropy_fraction"),
                               (label,), ent / math.log(256), percent=True,
                               note=f"paper: {ent:.3f} nats of ln 256 = 5.545"))
    rows.append(Figure("Table 1", "VQ + CE + SK + GP", "accuracy minus no VQ (points)",
                       lambda r: 100 * (r["VQ + CE + SK + GP"]["test_accuracy"] - r["no VQ"]["test_accuracy"]),
                       ("VQ + CE + SK + GP", "no VQ"), 93.06 - 94.55, note="the cost of quantizing"))
    rows.append(Figure("Table 2", "SK-VQ-GP / VQ", "decoder error, ratio to VQ",
                       lambda r: r["VQ + CE + SK + GP"]["test_mse_per_pixel"] / r["VQ + CE"]["test_mse_per_pixel"],
                       ("VQ + CE + SK + GP", "VQ + CE"), 0.1862 / 0.2733, better="lower",
                       note="paper: 0.1862 / 0.2733 on CIFAR-10; ours: MSE per pixel"))
    return rows


# ----- DVQ (Fostiropoulos) against VQ at an equal number of codewords -----
DVQ_LS = (1, 2, 4, 8)


def _dvq_runs(dataset: str) -> list[Run]:
    runs = [Run("L=1 (VQ-VAE)", "vqvae", {"latent_dim": 64, "encoder": "mlp", "codebook_size": 128}, 10)]
    return runs + [Run(f"L={n}", "dvq", {"latent_dim": 64, "encoder": "mlp", "n_codebooks": n,
                                         "codebook_size": 128 // n}, 10) for n in DVQ_LS[1:]]


def _dvq_score(model, m: dict, train, test, quick: bool) -> dict:
    return {"test_mse_per_image": m["test_mse_per_image"], "perplexity": m["test_perplexity"]}


def _dvq_figures(dataset: str) -> list[Figure]:
    labels = [r.label for r in _dvq_runs(dataset)]
    rows = [Figure("Sec. 4", label, "test MSE per image", _get(label, "test_mse_per_image"), (label,),
                   better="lower") for label in labels]
    return rows + [Figure("Sec. 4", label, "MSE ratio to VQ-VAE",
                          lambda r, label=label: r[label]["test_mse_per_image"] / r[labels[0]]["test_mse_per_image"],
                          (label, labels[0]), 0.67 if label == labels[-1] else None, better="lower", comparable=False,
                          note="paper: 33 % lower error than VQ-VAE on CIFAR-10" if label == labels[-1] else "")
                   for label in labels[1:]]


# ----- cluster VAEs (Wang, Blair and Belkhale), Table 1 -----
CLUSTERVAE_RUNS = (("VAE", "vae", {}), ("beta-VAE (5)", "beta_vae", {"beta": 5.0}), ("CVAE", "cvae", {}),
                   ("lambda-hot VAE", "lambda_vae", {"lam": 5.0}), ("k-means VAE", "kmeans_vae", {"n_clusters": 10}))
CLUSTERVAE_PAPER = {"mnist": (80.97, 120.76, 80.15, 79.92, 77.59, 91.9),
                    "fashion-mnist": (228.87, 250.37, 228.14, 227.39, 225.68, 81.27)}


def _clustervae_runs(dataset: str) -> list[Run]:
    return [Run(label, name, {"latent_dim": 20, "encoder": "mlp", **cfg}, 10) for label, name, cfg in CLUSTERVAE_RUNS]


def _clustervae_score(model, m: dict, train, test, quick: bool) -> dict:
    out = {"test_bce_per_image": m["test_bce_per_image"]}
    if "test_argmax_accuracy" in m:
        out["argmax_accuracy"] = m["test_argmax_accuracy"]
    return out


def _clustervae_figures(dataset: str) -> list[Figure]:
    paper = CLUSTERVAE_PAPER.get(dataset, (None,) * 6)
    rows = [Figure("Table 1", label, "test BCE per image", _get(label, "test_bce_per_image"), (label,), p,
                   better="lower") for (label, _, _), p in zip(CLUSTERVAE_RUNS, paper)]
    rows.append(Figure("Sec. 5.1", "lambda-hot VAE", "naive argmax accuracy", _get("lambda-hot VAE", "argmax_accuracy"),
                       ("lambda-hot VAE",), _pct(paper[5]), percent=True))
    return rows


def _get(label: str, key: str) -> Callable[[dict], float]:
    return lambda runs: runs[label][key]


def _pct(value: float | None) -> float | None:
    return None if value is None else value / 100


PROTOCOLS = {p.name: p for p in (
    Protocol("seq", "Le, Ko and Chen, SEQ (arXiv 1910.11067)", ("mnist", "fashion-mnist"), _seq_runs, _seq_score,
             _seq_figures, "k-means with 4 restarts per K; decoder (not scored) trained 1 epoch",
             "10 epochs, batch 32, Adam 1e-3 (authors' code)"),
    Protocol("softvq", "Wu and Flierl, soft VQ-VAE (AAAI 2020)", ("mnist",), _softvq_runs, _softvq_score,
             _softvq_figures, "probe: standardised logistic regression (paper: a softmax layer)",
             "40,000 iterations at batch 32 = 21 epochs, Adam 3e-4"),
    Protocol("skvq", "Suzuki et al., SK-VQ", ("fashion-mnist",), _skvq_runs, _skvq_score, _skvq_figures,
             "Fashion-MNIST, small CNN, one code per image, Adam 1e-3 (paper: CIFAR-10, WRN-28-2 with an 8x8 map "
             "of codes, Ranger, RandAugment, 1000 epochs)", "1000 epochs (CIFAR-10)"),
    Protocol("dvq", "Fostiropoulos, DVQ", ("mnist",), _dvq_runs, _dvq_score, _dvq_figures,
             "the paper measures CIFAR-10 and ImageNet (bits/dim); this MNIST MLP comparison is ours",
             "about 100,000 steps (CIFAR-10)"),
    Protocol("clustervae", "Wang, Blair and Belkhale, cluster VAEs", ("mnist", "fashion-mnist"), _clustervae_runs,
             _clustervae_score, _clustervae_figures, "MLP 500-500-2000-20 (paper: architecture not stated)",
             "not stated"),
)}

#: Where the results are published: ``benchmarks/results/`` of the checkout.
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

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
            if epochs:
                run = Run(run.label, run.model, run.config, epochs, run.batch_size, run.lr)
            out.append((p.name, run))
    if picks and not out:
        raise ConfigError(f"--only {only!r} matches no run on {dataset}")
    if not out:
        raise ConfigError(f"no protocol runs on {dataset!r}; the papers use mnist and fashion-mnist "
                          f"(or use --quick on any data set)")
    return out


def _key(protocol: str, run: Run, seed: int) -> str:
    return json.dumps({"protocol": protocol, "run": asdict(run), "seed": seed}, sort_keys=True)


def measure(protocol: str, run: Run, seed: int, train, test, quick: bool = False, device: str = "auto") -> dict:
    """Train one run and score it; return its record (figures, CPU and wall seconds)."""
    set_seed(seed)
    model = build(run.model, in_shape=train.shape, n_classes=train.n_classes, **run.config)
    trainer = Trainer(TrainConfig(epochs=run.epochs, batch_size=run.batch_size, lr=run.lr, seed=seed, device=device))
    cpu, wall = time.process_time(), time.perf_counter()
    m = model.fit(train, test, trainer)
    figures = PROTOCOLS[protocol].score(model, m, train, test, quick)
    # Through JSON, so that a fresh record compares equal to one read back from the file.
    return {"protocol": protocol, "run": json.loads(json.dumps(asdict(run))), "seed": seed, "figures": figures,
            "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall,
            "device": str(trainer.device)}


def summarise(records: list[dict], dataset: str) -> list[dict]:
    """The table's rows: each figure's mean and std over the seeds that ran every run it uses.

    A run measured with several budgets (say, 3 epochs, then the paper's 21) counts with
    its latest budget only, so the figures never mix budgets.
    """
    rows = []
    for p in PROTOCOLS.values():
        latest = {r["run"]["label"]: r["run"] for r in records if r["protocol"] == p.name}
        mine = [r for r in records if r["protocol"] == p.name and r["run"] == latest[r["run"]["label"]]]
        per_seed: dict[int, dict] = {}
        for r in mine:
            per_seed.setdefault(r["seed"], {})[r["run"]["label"]] = r
        for fig in p.figures(dataset) if mine else ():
            values, cpu = [], []
            for seed, runs in sorted(per_seed.items()):
                if all(u in runs for u in fig.uses):
                    values.append(float(fig.value({u: runs[u]["figures"] for u in fig.uses})))
                    cpu.append(sum(runs[u]["cpu_seconds"] for u in fig.uses))
            if not values:
                continue
            mean = statistics.fmean(values)
            comparable = fig.comparable and dataset in p.datasets
            rows.append({
                "protocol": p.name, "source": fig.source, "model": fig.model, "metric": fig.metric,
                "mean": mean, "std": statistics.stdev(values) if len(values) > 1 else None, "seeds": len(values),
                "paper": fig.paper, "better": fig.better, "comparable": comparable, "percent": fig.percent,
                "verdict": _verdict(mean, fig, comparable), "note": fig.note,
                "budget": _budget([latest[u] for u in fig.uses if u in latest]),
                "cpu_seconds": statistics.fmean(cpu)})
    return rows


def _verdict(mean: float, fig: Figure, comparable: bool) -> str:
    if fig.paper is None:
        return "no figure in the paper"
    gap = mean - fig.paper if fig.better == "higher" else fig.paper - mean
    shown = f"{100 * abs(gap):.2f} points" if fig.percent else f"{abs(gap):.3g}"
    if not comparable:
        return f"other data: {'better' if gap >= 0 else 'worse'} by {shown}"
    return "met" if gap >= 0 else f"short by {shown}"


def _budget(runs: list[dict]) -> str:
    epochs = sorted({r["epochs"] for r in runs})
    batches = sorted({r["batch_size"] for r in runs})
    return f"{'/'.join(map(str, epochs))} ep., batch {'/'.join(map(str, batches))}"


def markdown(rows: list[dict], dataset: str) -> str:
    """The table of ``rows`` in GitHub markdown: one table per protocol, its differences above it."""
    out = []
    for name, p in PROTOCOLS.items():
        mine = [r for r in rows if r["protocol"] == name]
        if not mine:
            continue
        out.append(f"#### {p.paper}, on {dataset}\n\nPaper's budget: {p.paper_epochs}. Differences: {p.differences}.\n")
        out.append("| Figure | Model | Metric | Ours (mean ± std, seeds) | Paper | Verdict | Our budget | CPU |\n"
                   "|---|---|---|---|---|---|---|---|")
        for r in mine:
            verdict = r["verdict"] + (f" ({r['note']})" if r["note"] else "")
            out.append("| " + " | ".join([r["source"], r["model"], r["metric"], format_ours(r),
                                          format_number(r["paper"], r["percent"]) or "–", verdict, r["budget"],
                                          format_duration(r["cpu_seconds"])]) + " |")
        out.append("")
    return "\n".join(out)


def format_number(value: float | None, percent: bool) -> str:
    """A figure as the table prints it: "97.81 %", "0.5541", "81.0", "40"; "" for None."""
    if value is None:
        return ""
    if float(value).is_integer() and not percent:
        return str(int(value))
    if percent:
        return f"{100 * value:.2f} %"
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"


def format_ours(r: dict) -> str:
    """A table row's mean ± std and its number of seeds, e.g. "97.81 % ± 0.12 % (3)", "241.0 ± 0.22 (3)"."""
    text = format_number(r["mean"], r["percent"])
    if r["std"] is not None:  # two significant figures: a spread is never known better
        text += f" ± {100 * r['std']:.2g} %" if r["percent"] else f" ± {r['std']:.2g}"
    return f"{text} ({r['seeds']})"


def format_duration(seconds: float) -> str:
    """Seconds as "95 s" or "12 min"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _machine() -> dict:
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "vqviz": __version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _load(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["runs"]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a results file of this benchmark ({e}); move it away or pass --fresh")


def read_results(dataset: str, folder: str | Path | None = None) -> dict | None:
    """The results of ``dataset`` (runs and table) in ``folder`` (default :data:`RESULTS`), or None if none."""
    path = Path(folder or RESULTS) / f"{dataset}.json"
    if not path.is_file():
        return None
    runs = _load(path)
    return {"dataset": dataset, "runs": runs, "table": summarise(runs, dataset), "path": path}


def seq_curves(runs: list[dict]) -> dict[str, dict]:
    """SEQ's Fig. 3 from the results: {encoder name: {"k", "test_accuracy", "p_e"}}, first seed."""
    out = {}
    for r in sorted((r for r in runs if r["protocol"] == "seq"), key=lambda r: r["seed"], reverse=True):
        curve = r["figures"]["k_curve"]
        out[SEQ_NAMES.get(r["run"]["label"], r["run"]["label"])] = {
            "k": [p["k"] for p in curve], "test_accuracy": [p["test_accuracy"] for p in curve],
            "p_e": r["figures"]["p_e"]}
    return {name: out[name] for name in SEQ_NAMES.values() if name in out}


def _save(path: Path, dataset: str, records: list[dict]) -> list[dict]:
    rows = summarise(records, dataset)
    body = {"dataset": dataset, "machine": _machine(), "runs": records, "table": rows}
    atomic_write_bytes(path, json.dumps(body, indent=1).encode())
    atomic_write_bytes(path.with_suffix(".md"), markdown(rows, dataset).encode())
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None,
                        help="mnist or fashion-mnist (default: mnist; with --quick: digits)")
    parser.add_argument("--quick", action="store_true", help="every protocol, 1 epoch, 1 seed: a smoke run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per run (default: 3)")
    parser.add_argument("--epochs", type=int, default=None, help="override every protocol's epochs")
    parser.add_argument("--only", default="", metavar="P[:RUN],...",
                        help=f"protocols ({', '.join(PROTOCOLS)}) or protocol:run labels to run")
    parser.add_argument("--out", default=str(RESULTS), help=f"results folder (default: {RESULTS})")
    parser.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda... (default: auto)")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs already saved in the results file")


def main(args: argparse.Namespace) -> int:
    dataset = args.dataset or ("digits" if args.quick else "mnist")
    seeds = QUICK["seeds"] if args.quick else args.seeds
    if seeds < 1 or (args.epochs is not None and args.epochs < 1):
        raise ConfigError("--seeds and --epochs must be at least 1")
    runs = plan(dataset, args.quick, args.epochs, args.only)
    path = Path(args.out) / f"{dataset}.json"
    records = [] if args.fresh else _load(path)
    done = {_key(r["protocol"], Run(**r["run"]), r["seed"]) for r in records}
    todo = [(p, run, s) for s in range(seeds) for p, run in runs if _key(p, run, s) not in done]
    print(f"{len(todo)} runs to measure on {dataset} ({len(runs) * seeds - len(todo)} already in {path})",
          file=sys.stderr)
    if todo:
        train = data.load(dataset, "train", args.data_dir)
        test = data.load(dataset, "test", args.data_dir)
    for i, (protocol, run, seed) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {protocol}: {run.label}, seed {seed}, {run.epochs} epochs", file=sys.stderr,
              flush=True)
        record = measure(protocol, run, seed, train, test, args.quick, args.device)
        records = [r for r in records if _key(r["protocol"], Run(**r["run"]), r["seed"])
                   != _key(protocol, run, seed)] + [record]
        _save(path, dataset, records)
        shown = {k: round(v, 4) for k, v in record["figures"].items() if isinstance(v, (int, float))}
        print(f"    {shown}  ({record['cpu_seconds']:.0f} s CPU)", file=sys.stderr, flush=True)
    rows = _save(path, dataset, records)
    print(markdown(rows, dataset))
    print(f"wrote {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return 0
