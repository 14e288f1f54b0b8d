"""What the latent map's hover thumbnails cost: the figure's JSON (what Streamlit sends) and the
server time to build it, with and without a text thumbnail per point. Prints figures; asserts nothing.

    OMP_NUM_THREADS=1 python benchmarks/hover_thumbnails.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import plotly.io as pio

from vqviz_app.figures import map_figure
from vqviz import checkpoints, data
from vqviz.analysis import placement, point_table
from vqviz.images import shade_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ckpt = checkpoints.load(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    parts = [data.load("digits", s) for s in data.SPLITS]
    images, labels = np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    classes = parts[0].classes
    for n in (360, 1797, 3000):
        rows = np.arange(n) % len(images)  # 3000: the digits repeated
        table = point_table(ckpt.model, images[rows], labels[rows], len(classes))
        xy = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)

        def build(hover):
            t0 = time.perf_counter()
            fig, _ = map_figure(xy, table, classes, "label", spots=48, hover=hover)
            return len(pio.to_json(fig, validate=False).encode()), time.perf_counter() - t0

        t0 = time.perf_counter()
        thumbs = np.array(shade_text(images[rows], ink_bright=placement.border_level(images) < 0.5), dtype=object)
        made = time.perf_counter() - t0
        plain = min((build(None) for _ in range(3)), key=lambda r: r[1])
        hover = min((build(thumbs) for _ in range(3)), key=lambda r: r[1])
        print(f"{n:5,} points: figure {plain[0] / 1024:6.1f} KiB, {plain[1] * 1000:4.0f} ms; with thumbnails "
              f"{hover[0] / 1024:6.1f} KiB, {hover[1] * 1000:4.0f} ms, + {made * 1000:3.0f} ms to draw them (once per "
              f"split): {(hover[0] - plain[0]) / n:.0f} bytes a point")


if __name__ == "__main__":
    main()
