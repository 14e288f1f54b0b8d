"""The app's two gestures in a real browser, against the floor: Streamlit's own round trip.

    python -m vqviz bench ui                       # digits, 20 repeats of each gesture
    python -m vqviz bench ui --repeats 5 --json ui.json
    python -m vqviz bench ui --gc on               # with Streamlit's garbage collection after every rerun

Starts `streamlit run benchmarks/floor_app.py` (one slider, in a fragment, that changes one
image) and `streamlit run app.py`, each on a free loopback port with empty caches, and drives
them with Chromium through Playwright. It prints the median, min and max of each gesture, and
each median as a ratio to the floor's measured in the same run:

- the floor: slider step -> new image loaded; fresh tab -> image loaded;
- the style mixer: slider step -> the new mixture painted, decoded in the browser (timed in the page,
  from the key's event); and, with WebAssembly taken away so that the server decodes, slider step ->
  the server's new picture loaded;
- the latent map: a click on a point -> the cluster panel with its images loaded;
- the latent map: hovering a point -> its image in the hover card (the card in the page, and the
  next frame painted; timed in the page, from the mouse event); with decoding under the cursor on,
  moving over an empty spot -> its decoding painted beside the cursor (timed likewise); and whether a
  fresh tab's map fetched the decoding runtime (it should not: it loads when a page decodes);
- a fresh tab on the warm server (the map cached) -> the page's title, and the map drawn (its first
  WebGL frame); on MNIST's test split too when its files are there, with the shipped
  ``vqviz_app/checkpoints/seq-mnist-lae2`` (or ``--mnist-checkpoint``): once on a fresh server (a link
  naming the data set, to the map drawn: the data read, the split encoded, the shipped map read),
  then on fresh tabs, with hover, decoding under the cursor and the mixer's steps;
- ``--points N``: a generated file of N latents (MNIST's latents, encoded by that checkpoint, repeated
  with jitter; their codes as clusters; no images), opened as a checkpoint of latents on its PCA map:
  fresh tab -> map drawn, pan and zoom frames a second, click -> panel, the server's memory;
- page switches: Latent map -> Cluster styles -> Style mixer -> Latent map.

It also counts the bytes the browser receives on the websocket for each gesture, and the
server's memory before and after. It writes everything to a JSON file and asserts nothing.
The library does not import Streamlit: the app runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checkpoints, data, flags
from ..errors import ConfigError
from .gestures import (IMG_JS, MAP_JS, SETTLED_JS, TITLE_JS, Bytes, clicks, decode_hover, fresh_tab, hover,
                       mixer_server_steps, mixer_steps, slider, timed)
from .host import machine
from .serve import rss_mb, streamlit_server
from .ui_points import measure_generated

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@dataclass
class Options:
    """The flags of ``bench ui``.

    Attributes
    ----------
    repeats : samples of each gesture (default 20)
    json : where to write the results (default bench-ui.json)
    gc : Streamlit's garbage collection after every rerun (runner.postScriptGC): as .streamlit/config.toml says, or forced on or off
    app : the app to measure (default: this checkout's)
    mnist_checkpoint : a checkpoint trained on mnist, for the map of MNIST's test split (default: the shipped one)
    timeout : seconds to wait for any one gesture (default 30)
    points : also measure a generated map of this many points (e.g. 1000000; 0: not)
    """

    repeats: int = 20
    json: str = "bench-ui.json"
    gc: str = field(default="config", metadata={"choices": ("config", "on", "off")})
    app: str = str(ROOT / "app.py")
    mnist_checkpoint: str | None = None
    timeout: float = 30.0
    points: int = 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``bench ui`` flags."""
    flags.add(p, Options)


def _measure_floor(browser, url, samples, n, timeout_ms) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    counter = Bytes(page)
    page.goto(url)
    page.wait_for_function(f"() => ({IMG_JS})('picture') !== null", timeout=timeout_ms)
    slider(page, samples, "floor: slider -> image", "picture", counter, n, timeout_ms)
    page.close()
    fresh_tab(browser, url, samples, "floor: fresh tab -> image", f"() => {{ const g = ({IMG_JS})('picture'); "
               "return g !== null && g[1]; }", None, n, timeout_ms)


def _measure_app(browser, url, samples, n, timeout_ms, pid, memory) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    counter = Bytes(page)
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=600_000)  # the first map is computed here, untimed
    page.wait_for_function(SETTLED_JS, timeout=600_000)  # (PCA's meanwhile, then the t-SNE one)
    page.wait_for_function(MAP_JS, timeout=timeout_ms)
    memory["first_map_mb"] = rss_mb(pid)
    clicks(page, samples, "map: click -> cluster panel loaded", counter, n, timeout_ms)
    hover(page, samples, "digits", n, timeout_ms)
    route = [("Cluster styles", TITLE_JS), ("Style mixer", TITLE_JS), ("Latent map", TITLE_JS)]
    for _ in range(n):
        for title, ready in route:
            timed(samples, f"page switch -> {title}", counter,
                   lambda: page.get_by_role("link", name=title).click(),
                   lambda: page.wait_for_function(ready, arg=title, timeout=timeout_ms))
            if title == "Latent map":
                page.wait_for_function(MAP_JS, timeout=timeout_ms)
    decode_hover(page, samples, "digits", n, timeout_ms)
    page.get_by_role("link", name="Style mixer").click()
    mixer_steps(page, samples, "in the browser", n, timeout_ms)
    page.close()
    # where the browser cannot decode (here: WebAssembly taken away), the server decodes each step
    plain = browser.new_context(viewport={"width": 1500, "height": 1100})
    plain.add_init_script("delete window.WebAssembly")
    page = plain.new_page()
    counter = Bytes(page)
    page.goto(f"{url}/?page=style_mixer")
    mixer_server_steps(page, samples, "mixer: slider -> mixture loaded (server decodes)", counter, n, timeout_ms)
    plain.close()
    # a fresh tab's map never fetches the decoding runtime: it is loaded when a page decodes
    runtime: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.on("request", lambda r: runtime.append(r.url) if "/ort/" in r.url else None)
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=timeout_ms)
    page.wait_for_timeout(1000)
    memory["runtime_fetched_by_fresh_map"] = len(runtime)
    page.close()
    fresh_tab(browser, url, samples, "map: fresh tab -> map drawn (digits)", MAP_JS, None, n, timeout_ms,
               first=("map: fresh tab -> title, before the map", "() => !!document.querySelector('h1')"))


def _mnist_checkpoint(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if data.find_dir("mnist") is None:
        return None
    shipped = ROOT / "vqviz_app" / "checkpoints" / "seq-mnist-lae2"
    if (shipped / "meta.json").is_file():
        return shipped
    for root in [p for p in os.environ.get("VQVIZ_CHECKPOINTS", "").split(os.pathsep) if p]:
        for path in checkpoints.find(root):
            try:
                if checkpoints.read_meta(path).get("dataset") == "mnist":
                    return path
            except Exception:
                continue
    return None


def _summary(samples: dict) -> dict:
    out = {}
    for name, values in samples.items():
        out[name] = {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}
    floors = {"slider": out.get("floor: slider -> image"), "tab": out.get("floor: fresh tab -> image")}
    for name, row in out.items():
        if name.endswith(")") and not name.endswith(("digits)", "test)", "points)", "browser)", "decodes)")) \
                or name.startswith("floor") or "hover" in name or "frames" in name:
            continue
        floor = floors["tab"] if "fresh tab" in name else floors["slider"]
        if floor:
            row["ratio"] = row["median"] / floor["median"]
    return out


def _print(summary: dict) -> None:
    print(f"{'gesture':<46} {'median':>9} {'min':>9} {'max':>9} {'n':>4} {'x floor':>8}")
    for name, row in summary.items():
        if name.endswith("(timed out)"):
            print(f"{name:<46} {row['n']} gestures did not complete within --timeout")
            continue
        if name.endswith("(bytes)"):
            continue
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        if "frames a second" in name:
            print(f"{name:<46} {row['median']:>7.1f}/s {'':>9} {'':>9} {row['n']:>4}")
            continue
        print(f"{name:<46} {row['median'] * 1000:>7.0f}ms {row['min'] * 1000:>7.0f}ms {row['max'] * 1000:>7.0f}ms "
              f"{row['n']:>4} {ratio:>8}")
    print("bytes received on the websocket, median per gesture:")
    for name, row in summary.items():
        if name.endswith("(bytes)"):
            print(f"  {name[:-8]:<44} {row['median'] / 1024:>9.1f} KiB")


def main(args: argparse.Namespace) -> int:
    args = Options(**flags.given(args, Options))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("bench ui needs playwright: pip install playwright") from None
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    app = Path(args.app).resolve()
    floor = ROOT / "benchmarks" / "floor_app.py"
    if not app.is_file() or not floor.is_file():
        raise ConfigError(f"bench ui runs the app from a source checkout: {app} or {floor} is missing")
    n, timeout_ms = max(1, args.repeats), int(args.timeout * 1000)
    samples: dict[str, list[float]] = {}
    memory = {}
    with tempfile.TemporaryDirectory(prefix="vqviz-bench-ui-") as tmp:
        home = Path(tmp)
        env = dict(os.environ, XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
                   VQVIZ_CHECKPOINTS="")
        # the app imports the vqviz beside it (another checkout's, with --app)
        env_app = dict(env, PYTHONPATH=os.pathsep.join(p for p in (str(app.parent), env.get("PYTHONPATH")) if p))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            # both under the app's Streamlit settings, so that the floor differs from the app by the app alone
            with streamlit_server(floor, env, home, app.parent, args.gc) as (url, _):
                _measure_floor(browser, url, samples, n, timeout_ms)
            with streamlit_server(app, env_app, home, app.parent, args.gc) as (url, proc):
                _measure_app(browser, url, samples, n, timeout_ms, proc.pid, memory)
                memory["end_mb"] = rss_mb(proc.pid)
            mnist = _mnist_checkpoint(args.mnist_checkpoint)
            if mnist is not None:
                env_mnist = dict(env_app, VQVIZ_CHECKPOINTS=str(mnist.parent))
                with streamlit_server(app, env_mnist, home, app.parent, args.gc) as (url, _):
                    deep = f"{url}/?dataset=mnist&checkpoint={mnist}"
                    page = browser.new_page(viewport={"width": 1500, "height": 1100})
                    t0 = time.perf_counter()
                    page.goto(deep)
                    page.wait_for_function(MAP_JS, timeout=1_800_000)  # computed once, unless the checkpoint ships it
                    samples["map: fresh tab, fresh server -> map drawn (MNIST test)"] = [time.perf_counter() - t0]
                    page.wait_for_function(SETTLED_JS, timeout=1_800_000)
                    page.close()
                    fresh_tab(browser, deep, samples, "map: fresh tab -> map drawn (MNIST test)", MAP_JS, None,
                               n, timeout_ms)
                    page = browser.new_page(viewport={"width": 1500, "height": 1100})
                    page.goto(deep)
                    page.wait_for_function(MAP_JS, timeout=timeout_ms)
                    page.wait_for_function("() => window.__vqvizMap.atlasAt", timeout=timeout_ms)
                    hover(page, samples, "MNIST test", n, timeout_ms)
                    decode_hover(page, samples, "MNIST test", n, timeout_ms)
                    page.goto(f"{deep}&page=style_mixer")
                    mixer_steps(page, samples, "MNIST test, in the browser", n, timeout_ms)
                    page.close()
                if args.points:
                    measure_generated(browser, args.points, mnist, env_app, home, app, samples, memory, n,
                                       timeout_ms)
            else:
                print("MNIST: its files, or a checkpoint trained on it, are missing "
                      "(--mnist-checkpoint, VQVIZ_CHECKPOINTS); skipped")
            browser.close()
    summary = _summary(samples)
    _print(summary)
    print(f"decoding runtime requests by a fresh tab's map: {memory.get('runtime_fetched_by_fresh_map', '?')}")
    print(f"server memory (RSS): {memory.get('first_map_mb') or 0:.0f} MB after the first map, "
          f"{memory.get('end_mb') or 0:.0f} MB after every gesture")
    for key, mb in memory.items():
        if key.startswith("generated_"):
            print(f"server memory (RSS) with the map of {int(key.split('_')[1]):,} points: {mb or 0:.0f} MB")
    result = {"machine": machine(), "gc": args.gc, "app": str(app), "repeats": n, "memory": memory,
              "summary": summary, "samples": samples}
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0
