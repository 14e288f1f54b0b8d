"""Measure the model zoo against the seed papers' tables.

    python benchmarks/zoo.py softvq  [--epochs 10]   # soft VQ-VAE paper, Table 1, MNIST
    python benchmarks/zoo.py skvq    [--epochs 10]   # SK-VQ against plain VQ, Fashion-MNIST
    python benchmarks/zoo.py dvq     [--epochs 10]   # DVQ against VQ at equal codewords, MNIST
    python benchmarks/zoo.py clustervae [--epochs 10] [--dataset mnist]  # cluster-VAE paper, Table 1

Each prints one JSON line per run and a table, and writes
``benchmarks/results/zoo-<protocol>-<dataset>.json``. It prints figures; it
asserts nothing. Data comes from ``$VQVIZ_DATA`` (or the usual search order).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from vqviz import data, metrics
from vqviz.models import build
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import atomic_write_bytes, set_seed

RESULTS = Path(__file__).resolve().parent / "results"


def fit(name: str, train, test, epochs: int, seed: int = 0, batch_size: int = 128, lr: float = 1e-3, **config):
    """Build and train one model; return it, its metrics and the seconds it took."""
    set_seed(seed)
    model = build(name, in_shape=train.shape, n_classes=train.n_classes, **config)
    t0 = time.perf_counter()
    m = model.fit(train, test, Trainer(TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)))
    return model, m, time.perf_counter() - t0


def _pick(runs, only):
    """The runs whose name is in ``only`` (all of them when it is empty)."""
    return [(name, cfg) for name, cfg in runs if not only or name in only]


def softvq(train, test, epochs, only=frozenset()):
    """Table 1 of Wu & Flierl: k-means (10) on test latents z_e (accuracy, NMI) and a linear probe.

    The paper trains with Adam, lr 3e-4, batch 32, for 40,000 iterations (21 epochs).
    """
    runs = [("ae", {}), ("vae", {}), ("beta_vae", {"beta": 20.0}), ("vqvae", {"codebook_size": 128}),
            ("soft_vqvae", {"codebook_size": 128})]
    paper = {"ae": (52.61, 0.5301, 91.91), "vae": (56.44, 0.5600, 89.10), "beta_vae": (73.81, 0.5760, 91.10),
             "vqvae": (51.48, 0.3541, 81.62), "soft_vqvae": (77.64, 0.7188, 93.54)}
    for name, cfg in _pick(runs, only):
        model, m, secs = fit(name, train, test, epochs, batch_size=32, lr=3e-4, latent_dim=64, encoder="mlp", **cfg)
        z_tr, z_te = model.encode_array(train.images), model.encode_array(test.images)
        row = {"model": name, **cfg, **metrics.kmeans_scores(z_te, test.labels, 10),
               "linear_probe": metrics.linear_probe(z_tr, train.labels, z_te, test.labels),
               "test_bce_per_image": m["test_bce_per_image"], "seconds": secs, "paper": paper.get(name)}
        yield row


def skvq(train, test, epochs, only=frozenset()):
    """SK-VQ's Table 1 variants: accuracy, assignment (usage) entropy, decoder reconstruction."""
    common = dict(encoder="cnn", latent_dim=64, codebook_size=256, beta=1.0, sinkhorn_lambda=0.1, sinkhorn_iters=3)
    variants = {"no VQ": dict(quantizer="none"),
                "VQ + CE": dict(quantizer="nearest", constant_embedding=True),
                "VQ + CE + SK": dict(quantizer="sinkhorn", constant_embedding=True, momentum=0.99),
                "VQ + CE + SK + GP": dict(quantizer="sinkhorn", constant_embedding=True, momentum=0.99,
                                          gradient_penalty=0.5)}
    for label, cfg in _pick(variants.items(), only):
        _, m, secs = fit("skvq", train, test, epochs, batch_size=256, **common, **cfg)
        yield {"variant": label, **cfg, "test_accuracy": m["test_accuracy"],
               "usage_entropy_nats": m.get("test_usage_entropy", math.nan), "max_nats": math.log(256),
               "dead_codes": m.get("test_dead_codes", math.nan), "test_mse_per_pixel": m["test_mse_per_pixel"],
               "seconds": secs}


def dvq(train, test, epochs, only=frozenset()):
    """Reconstruction at an equal total number of codewords (128): VQ-VAE against DVQ with L = 2, 4, 8."""
    runs = [("vqvae", {"codebook_size": 128})] + [("dvq", {"n_codebooks": n, "codebook_size": 128 // n})
                                                   for n in (2, 4, 8)]
    for name, cfg in _pick(runs, only):
        _, m, secs = fit(name, train, test, epochs, latent_dim=64, encoder="mlp", **cfg)
        yield {"model": name, "L": cfg.get("n_codebooks", 1), "K": cfg["codebook_size"],
               "test_mse_per_image": m["test_mse_per_image"], "test_bce_per_image": m["test_bce_per_image"],
               "perplexity": m["test_perplexity"], "seconds": secs}


def clustervae(train, test, epochs, only=frozenset()):
    """Wang et al., Table 1: reconstruction BCE per image and the lambda-VAE's naive argmax accuracy."""
    runs = [("vae", {}), ("beta_vae", {"beta": 5.0}), ("cvae", {}), ("lambda_vae", {"lam": 5.0}),
            ("kmeans_vae", {"n_clusters": 10})]
    for name, cfg in _pick(runs, only):
        _, m, secs = fit(name, train, test, epochs, latent_dim=20, encoder="mlp", **cfg)
        yield {"model": name, **cfg, "test_bce_per_image": m["test_bce_per_image"],
               "test_argmax_accuracy": m.get("test_argmax_accuracy"), "seconds": secs}


PROTOCOLS = {"softvq": ("mnist", softvq), "skvq": ("fashion-mnist", skvq), "dvq": ("mnist", dvq),
             "clustervae": ("mnist", clustervae)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", choices=sorted(PROTOCOLS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dataset", default=None, help="overrides the protocol's data set")
    parser.add_argument("--only", default="", help="comma-separated models or variants to run (default: all)")
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    default, run = PROTOCOLS[args.protocol]
    dataset = args.dataset or default
    train, test = data.load(dataset, "train"), data.load(dataset, "test")
    rows = []
    for row in run(train, test, args.epochs, only):
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-" + "-".join(sorted(only)).replace(" ", "").replace("+", "") if only else ""
    out = RESULTS / f"zoo-{args.protocol}-{dataset}{suffix}.json"
    atomic_write_bytes(out, json.dumps({"protocol": args.protocol, "dataset": dataset, "epochs": args.epochs,
                                        "seeds": 1, "rows": rows}, indent=1).encode())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
