"""``bench ui --points N``: the map of a generated file of N latents, in Chromium: a fresh tab, pan and
zoom frames a second, clicks, hovers and the server's memory."""

from __future__ import annotations

import math
import time
from pathlib import Path

from .. import checkpoints, data
from .gestures import MAP_JS, SETTLED_JS, Bytes, clicks, fresh_tab, hover
from .serve import rss_mb, streamlit_server


def generated_latents(points: int, checkpoint: Path, folder: Path, seed: int = 0) -> tuple[Path, str]:
    """A checkpoint of ``points`` latents made from MNIST's 70,000 encoded by ``checkpoint``, repeated with
    jitter (a twentieth of each feature's spread), their codes as clusters (no images: 1M digits take 3 GB
    as floats); and its data set's name."""
    import numpy as np
    import torch

    from .. import explorer
    from ..data import latents as files

    model = checkpoints.load(checkpoint).model
    parts = [data.load("mnist", split) for split in data.SPLITS]
    images, labels = np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    z = model.encode_array(images)
    with torch.no_grad():
        codes = model.quantize(torch.as_tensor(z)).indices.numpy()
    rows = np.arange(points) % len(z)
    jitter = np.random.default_rng(seed).normal(size=(points, z.shape[1])).astype(np.float32) * (z.std(0) / 20)
    folder.mkdir(parents=True, exist_ok=True)
    source = files.write(folder / f"mnist-{points}.npz", z[rows] + jitter, labels[rows], codes=codes[rows],
                         classes=parts[0].classes)
    ckpt = explorer.open_latents(source, out=folder / f"mnist-{points}", name=f"mnist-{points}")
    return ckpt, f"latents:{ckpt / 'latents.npz'}"


def frames_per_second(page, gesture: str, seconds: float = 3.0) -> float:
    """Frames a second the map draws while the mouse zooms (wheel) or pans (drag) over it for ``seconds``."""
    box = page.locator(".vqm-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    before = page.evaluate("() => window.__vqvizMap.frames")
    t0 = time.perf_counter()
    if gesture == "pan":
        page.mouse.down()
    k = 0
    while time.perf_counter() - t0 < seconds:
        k += 1
        if gesture == "zoom":
            page.mouse.wheel(0, -40 if k % 20 < 10 else 40)
        else:
            page.mouse.move(cx + 80 * math.sin(k / 5), cy + 60 * math.cos(k / 5))
        page.wait_for_timeout(16)
    if gesture == "pan":
        page.mouse.up()
    return (page.evaluate("() => window.__vqvizMap.frames") - before) / (time.perf_counter() - t0)


def measure_generated(browser, points, mnist, env, home, app, samples, memory, n, timeout_ms) -> None:
    from ..explorer import view_url

    t0 = time.perf_counter()
    ckpt, dataset = generated_latents(points, mnist, home / "generated")
    print(f"{points:,} latents generated and opened in {time.perf_counter() - t0:.0f} s")
    with streamlit_server(app, dict(env, VQVIZ_CHECKPOINTS=str(ckpt.parent)), home, app.parent) as (url, proc):
        link = view_url(ckpt, dataset, base=url) + "&projection=pca"
        what = f"{points:,} points"
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        t0 = time.perf_counter()
        page.goto(link)
        page.wait_for_function(MAP_JS, timeout=1_800_000)
        samples[f"map: fresh tab, fresh server -> map drawn ({what})"] = [time.perf_counter() - t0]
        page.wait_for_function(SETTLED_JS, timeout=1_800_000)
        page.close()
        fresh_tab(browser, link, samples, f"map: fresh tab -> map drawn ({what})", MAP_JS, None, min(n, 5),
                   max(timeout_ms, 120_000))
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        counter = Bytes(page)
        page.goto(link)
        page.wait_for_function(MAP_JS, timeout=120_000)
        for gesture in ("zoom", "pan"):
            samples[f"map: {gesture} frames a second ({what})"] = [frames_per_second(page, gesture)]
        page.locator('button[data-action="reset"]').click()
        clicks(page, samples, f"map: click -> sample's panel ({what})", counter, min(n, 10),
                max(timeout_ms, 60_000), by_image=False)
        hover(page, samples, what, min(n, 10), max(timeout_ms, 60_000))
        page.close()
        memory[f"generated_{points}_mb"] = rss_mb(proc.pid)
