"""Which quantizer uses its codebook best: vector-quantize-pytorch's (VectorQuantize, ResidualVQ, FSQ, LFQ)
beside the seeds' VQ-VAE, soft VQ-VAE and SK-VQ, on one autoencoder and one budget.

Not a paper's table: a comparison made here. Every run has the soft VQ-VAE paper's MLP (500-500-2000,
d = 64) and about 128 codes; Adam 1e-3 at batch 128 for the same epochs. The figures are the soft
VQ-VAE paper's (k-means accuracy and NMI with 10 clusters, a linear probe, on the test z_e) and the
codebook's use on the test split (usage entropy as a fraction of ln K, perplexity, dead codes; for a
residual or product code, the mean over its codebooks). SK-VQ is trained with the labels (its
classifier's cross-entropy), the others without.
"""

from __future__ import annotations

import math

import numpy as np

from ... import metrics
from .base import Figure, Protocol, Run, pick

MLP = {"encoder": "mlp", "latent_dim": 64}
LIB = {**MLP, "codebook_size": 128}
#: (label, family, config): the library's quantizers with their own defaults, and the seeds' beside them.
QUANTIZER_RUNS = (
    ("VQ-VAE (vqviz)", "vqvae", {**MLP, "codebook_size": 128}),
    ("soft VQ-VAE (vqviz)", "soft_vqvae", {**MLP, "codebook_size": 128, "posterior": "authors", "variance": "hidden"}),
    ("SK-VQ (vqviz; supervised)", "skvq", {**MLP, "codebook_size": 128, "quantizer": "sinkhorn",
                                           "constant_embedding": True, "momentum": 0.99}),
    ("VectorQuantize (EMA)", "vqlib", {**LIB, "quantizer": "vq"}),
    ("VectorQuantize + k-means init + dead-code restarts", "vqlib",
     {**LIB, "quantizer": "vq", "kmeans_init": True, "dead_code_threshold": 2.0}),
    ("VectorQuantize (cosine)", "vqlib", {**LIB, "quantizer": "vq", "cosine": True, "kmeans_init": True}),
    ("ResidualVQ (2 x 128)", "vqlib", {**LIB, "quantizer": "rvq", "n_quantizers": 2, "kmeans_init": True}),
    ("FSQ (levels 8 4 4: 128)", "vqlib", {**MLP, "quantizer": "fsq", "levels": (8, 4, 4)}),
    ("LFQ (2^7 = 128)", "vqlib", {**LIB, "quantizer": "lfq"}),
)
EPOCHS = 5


def _runs(dataset: str) -> list[Run]:
    return [Run(label, name, cfg, EPOCHS, 128, 1e-3) for label, name, cfg in QUANTIZER_RUNS]


def _mean(value) -> float:
    """A figure of one codebook, or the mean over L codebooks (a list); NaN where absent."""
    return float(np.mean(value)) if value is not None else math.nan


def _score(model, m: dict, train, test, quick: bool) -> dict:
    z_tr, z_te = model.encode_array(train.images), model.encode_array(test.images)
    scores = metrics.kmeans_scores(z_te, test.labels, 10, random_state=0, n_init=3 if quick else 10)
    probe = metrics.linear_probe(z_tr, train.labels, z_te, test.labels, max_iter=100 if quick else 300)
    k = model.n_codes
    return {"kmeans_accuracy": scores["kmeans_accuracy"], "kmeans_nmi": scores["kmeans_nmi"], "linear_probe": probe,
            "usage_entropy_fraction": _mean(m.get("test_usage_entropy")) / math.log(k),
            "perplexity": _mean(m.get("test_perplexity")), "dead_codes": _mean(m.get("test_dead_codes")),
            "n_codes": k, "test_mse_per_image": m.get("test_mse_per_image", math.nan)}


def _figures(dataset: str) -> list[Figure]:
    rows = []
    for label, _, _ in QUANTIZER_RUNS:
        rows += [Figure("Quantizers", label, "k-means accuracy (test z_e)", pick(label, "kmeans_accuracy"), (label,),
                        percent=True),
                 Figure("Quantizers", label, "k-means NMI", pick(label, "kmeans_nmi"), (label,)),
                 Figure("Quantizers", label, "linear probe accuracy", pick(label, "linear_probe"), (label,),
                        percent=True),
                 Figure("Quantizers", label, "usage entropy / ln K (test)", pick(label, "usage_entropy_fraction"),
                        (label,), percent=True, note="1 = every code used equally"),
                 Figure("Quantizers", label, "perplexity (test)", pick(label, "perplexity"), (label,),
                        note="exp of the usage entropy: the codes in effective use"),
                 Figure("Quantizers", label, "dead codes (test)", pick(label, "dead_codes"), (label,), better="lower")]
    return rows


PROTOCOL = Protocol(
    "quantizers", "Quantizers compared: vector-quantize-pytorch beside the seeds' (not a paper's table)", ("mnist",),
    _runs, _score, _figures,
    "one recipe for all: the soft VQ-VAE paper's MLP (d = 64), about 128 codes, Adam 1e-3 at batch 128, "
    f"{EPOCHS} epochs; k-means with 10 restarts, probe: standardised logistic regression",
    f"{EPOCHS} epochs, the same for every quantizer")
