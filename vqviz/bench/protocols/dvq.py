"""DVQ (Fostiropoulos) against VQ at an equal number of codewords: L = 1, 2, 4, 8 codebooks of 128 / L."""

from __future__ import annotations

from .base import Figure, Protocol, Run, pick

DVQ_LS = (1, 2, 4, 8)


def _runs(dataset: str) -> list[Run]:
    runs = [Run("L=1 (VQ-VAE)", "vqvae", {"latent_dim": 64, "encoder": "mlp", "codebook_size": 128}, 10)]
    return runs + [Run(f"L={n}", "dvq", {"latent_dim": 64, "encoder": "mlp", "n_codebooks": n,
                                         "codebook_size": 128 // n}, 10) for n in DVQ_LS[1:]]


def _score(model, m: dict, train, test, quick: bool) -> dict:
    return {"test_mse_per_image": m["test_mse_per_image"], "perplexity": m["test_perplexity"]}


def _figures(dataset: str) -> list[Figure]:
    labels = [r.label for r in _runs(dataset)]
    rows = [Figure("Sec. 4", label, "test MSE per image", pick(label, "test_mse_per_image"), (label,),
                   better="lower") for label in labels]
    return rows + [Figure("Sec. 4", label, "MSE ratio to VQ-VAE",
                          lambda r, label=label: r[label]["test_mse_per_image"] / r[labels[0]]["test_mse_per_image"],
                          (label, labels[0]), 0.67 if label == labels[-1] else None, better="lower", comparable=False,
                          note="paper: 33 % lower error than VQ-VAE on CIFAR-10" if label == labels[-1] else "")
                   for label in labels[1:]]


PROTOCOL = Protocol(
    "dvq", "Fostiropoulos, DVQ", ("mnist",), _runs, _score, _figures,
    "the paper measures CIFAR-10 and ImageNet (bits/dim); this MNIST MLP comparison is ours",
    "about 100,000 steps (CIFAR-10)")
