"""What recording the codebook history costs a fit: the seconds spent assigning the held-out sample after
every epoch (``CodebookHistory.record``) against the rest of the fit, measured inside one run, and the same
fit without a history (``history_sample=0``) timed in turns with it. Prints figures; asserts nothing.

    OMP_NUM_THREADS=1 python benchmarks/codebook_history.py                      # the bundled digits
    OMP_NUM_THREADS=1 VQVIZ_DATA=../shared/data python benchmarks/codebook_history.py --dataset mnist --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vqviz import data
from vqviz.models import build
from vqviz.models.history import CodebookHistory
from vqviz.train import Trainer, TrainConfig
from vqviz.utils import set_seed

#: Every family with a codebook, at its defaults (the MLP for grey images; SK-VQ's small CNN).
FAMILIES = {"vqvae": {}, "dvq": {}, "soft_vqvae": {}, "kmeans_vae": {}, "skvq": {}, "seq": {"k": 20}}


def fit_once(name: str, settings: dict, train, test, epochs: int, sample: int) -> tuple[float, float, int]:
    """(seconds of the whole fit, seconds of it spent recording, entries recorded)."""
    spent = [0.0]
    record = CodebookHistory.record

    def timed(self, stage, epoch):
        t0 = time.perf_counter()
        record(self, stage, epoch)
        spent[0] += time.perf_counter() - t0

    set_seed(0)
    model = build(name, in_shape=train.shape, n_classes=train.n_classes, **settings)
    CodebookHistory.record = timed
    try:
        t0 = time.perf_counter()
        metrics = model.fit(train, test, Trainer(TrainConfig(epochs=epochs, seed=0, history_sample=sample)))
        total = time.perf_counter() - t0
    finally:
        CodebookHistory.record = record
    return total, spent[0], len(metrics.get("codebook_history", {}).get("epoch", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="fits with and without a history, in turns")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args()
    train, test = data.load(args.dataset, "train"), data.load(args.dataset, "test")
    sample = TrainConfig().history_sample
    print(f"{args.dataset}: {len(train):,} training images, a sample of {min(sample, len(test)):,} test images, "
          f"{args.epochs} epochs, {torch.get_num_threads()} torch threads")
    print(f"{'family':<12}{'entries':>8}{'recording s':>13}{'share of the rest':>19}"
          f"{'fit s, with':>13}{'without':>9}{'ratio':>8}")
    for name in args.families:
        with_, without, shares = [], [], []
        fit_once(name, FAMILIES[name], train, test, 1, 0)  # a warm-up: first-call costs out of the timing
        for _ in range(args.repeats):  # in turns, so that a busy machine slows both alike
            total, spent, entries = fit_once(name, FAMILIES[name], train, test, args.epochs, sample)
            with_.append(total)
            shares.append(spent / (total - spent))
            without.append(fit_once(name, FAMILIES[name], train, test, args.epochs, 0)[0])
        a, b = statistics.median(with_), statistics.median(without)
        print(f"{name:<12}{entries:>8}{spent:>13.2f}{statistics.median(shares):>18.1%}{a:>13.1f}{b:>9.1f}"
              f"{a / b:>8.3f}")


if __name__ == "__main__":
    main()
