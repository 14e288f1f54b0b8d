"""Make the real-data checkpoints that ship in ``checkpoints/``, and measure them.

    VQVIZ_DATA=/path/to/data OMP_NUM_THREADS=1 python benchmarks/ship_checkpoints.py [--only NAME ...]

For each shipped model: train it (skipped when its folder already holds a float32
checkpoint of the same config), score the test split, store the weights as float16
when that moves the headline test figure by at most ``MAX_LOSS`` points (float32
otherwise), and store its test-split t-SNE map beside it, so that the app's first map
of the data set is read, not computed. It prints one row per model: the test figure
in float32 and in float16, and the size on disk.

The models:
- SEQ, LAE-2 encoder, K = 50 (the K of the paper's Fig. 4), on MNIST and Fashion-MNIST,
  at the paper's budget (10 epochs, batch 32, Adam 1e-3);
- on Fashion-MNIST, the SK-VQ paper's comparison on its map of codes (Table 1's
  protocol of ``bench repro``, 12 epochs): plain VQ against momentum Sinkhorn-Knopp.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqviz import analysis, checkpoints, data, projection, workflow  # noqa: E402
from vqviz.bench.protocols import SKVQ_COMMON  # noqa: E402
from vqviz.models.seq import DEFAULT_SWEEP  # noqa: E402
from vqviz.train import TrainConfig  # noqa: E402

#: The largest drop of the headline test figure, in points, that float16 weights may cost.
MAX_LOSS = 0.1
#: SEQ scores the paper's sweep of K too, for the Metrics page's Fig. 3 curve.
SEQ = {"encoder": "lae2", "k": 50, "k_sweep": DEFAULT_SWEEP, "kmeans_restarts": 2}
SKVQ = {**SKVQ_COMMON, "constant_embedding": True}
#: name -> (family, data set, config, training settings, headline metric)
SHIPPED = {
    "seq-mnist-lae2": ("seq", "mnist", SEQ, TrainConfig(epochs=10, batch_size=32), "quantizer_test_accuracy"),
    "seq-fashion-mnist-lae2": ("seq", "fashion-mnist", SEQ, TrainConfig(epochs=10, batch_size=32),
                               "quantizer_test_accuracy"),
    "skvq-fashion-mnist": ("skvq", "fashion-mnist", {**SKVQ, "quantizer": "sinkhorn", "momentum": 0.99},
                           TrainConfig(epochs=12, batch_size=256), "test_accuracy"),
    "skvq-fashion-mnist-vq": ("skvq", "fashion-mnist", {**SKVQ, "quantizer": "nearest"},
                              TrainConfig(epochs=12, batch_size=256), "test_accuracy"),
}
#: The least test figure each must reach (the tests check it): SEQ LAE-2 on MNIST reaches
#: about 98 % in the paper's Fig. 3; Fashion-MNIST and SK-VQ's small CNN are lower.
FLOORS = {"seq-mnist-lae2": 0.97, "seq-fashion-mnist-lae2": 0.85, "skvq-fashion-mnist": 0.78,
          "skvq-fashion-mnist-vq": 0.78}
#: The shipped map: what the app asks for first (the test split, t-SNE at its default perplexity).
MAP = ("tsne", {"perplexity": 30.0})


def _score(model, test, metric: str) -> float:
    """The headline test figure: SK-VQ's classifier accuracy, or SEQ's quantizer accuracy
    (each test latent takes the majority label of its k-means cluster)."""
    if metric == "test_accuracy":
        return float(model.accuracy(test))
    table = analysis.point_table(model, test.images, test.labels, test.n_classes)
    return float((table.predicted == table.labels).mean())


def ship(name: str, source: Path | None) -> dict:
    family, dataset, config, train_config, metric = SHIPPED[name]
    out = ROOT / "checkpoints" / name
    if source is not None:  # a float32 checkpoint trained elsewhere (e.g. on a GPU)
        ckpt = checkpoints.load(source)
    else:
        ckpt = workflow.train(family, dataset, out=out, train_config=train_config, overwrite=True, **config)
    test = data.load(dataset, "test")
    model = ckpt.model.eval()
    full = _score(model, test, metric)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in state.items()})
    half = _score(model, test, metric)
    model.load_state_dict(state)
    dtype = torch.float16 if (full - half) * 100 <= MAX_LOSS else None
    meta = ckpt.meta
    metrics = {**meta["metrics"], "weights_dtype": "float16" if dtype else "float32",
               f"{metric}_float32": full, f"{metric}_float16": half}
    checkpoints.save(model, out, dataset=dataset, split_sizes=meta.get("split_sizes"), seed=meta.get("seed"),
                     metrics=metrics, train_config=meta.get("train"), weights_dtype=dtype)
    shipped = checkpoints.load(out)
    method, params = MAP
    t1 = time.perf_counter()
    latents = shipped.model.encode_array(test.images)  # as the app's point table encodes the split
    xy = projection.project(latents, method, labels=test.labels, **params)  # the app asks with labels
    projection.store_beside(out, xy, method, checkpoint_sha=shipped.meta["weights"]["sha256"], dataset=dataset,
                            split="test", **params)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"name": name, "metric": metric, "float32": full, "float16": half, "stored": metrics["weights_dtype"],
            "mb": size / 2**20, "train_s": metrics["train_seconds"], "map_s": time.perf_counter() - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SHIPPED), help="the models to make (default: all)")
    parser.add_argument("--source", type=Path, help="with one --only: its float32 checkpoint, trained elsewhere")
    args = parser.parse_args()
    names = args.only or list(SHIPPED)
    rows = [ship(n, args.source if len(names) == 1 else None) for n in names]
    print("| checkpoint | test figure | float32 | float16 | stored | size | train | map |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['name']}` | {r['metric']} | {100 * r['float32']:.2f} % | {100 * r['float16']:.2f} % | "
              f"{r['stored']} | {r['mb']:.1f} MB | {r['train_s'] / 60:.0f} min | {r['map_s']:.0f} s |")
    Path(os.environ.get("SHIP_REPORT", "/dev/null")).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
