"""The app's two gestures in a real browser, against the floor: Streamlit's own round trip.

    python -m vqviz bench ui                       # digits, 20 repeats of each gesture
    python -m vqviz bench ui --repeats 5 --json ui.json
    python -m vqviz bench ui --gc on               # with Streamlit's garbage collection after every rerun

Starts `streamlit run benchmarks/floor_app.py` (one slider, in a fragment, that changes one
image) and `streamlit run app.py`, each on a free loopback port with empty caches, and drives
them with Chromium through Playwright. It prints the median, min and max of each gesture, and
each median as a ratio to the floor's measured in the same run:

- the floor: slider step -> new image loaded; fresh tab -> image loaded;
- the style mixer: slider step -> the new mixture loaded;
- the latent map: a click on a point -> the cluster panel with its images loaded;
- the latent map: hovering a point -> its image in the hover card (the card in the page, and the
  next frame painted; timed in the page, from the mouse event);
- a fresh tab on the warm server (the map cached) -> the page's title, and the map drawn (its first
  WebGL frame); on MNIST's test split too when its files are there, with the shipped
  ``vqviz_app/checkpoints/seq-mnist-lae2`` (or ``--mnist-checkpoint``): once on a fresh server (a link
  naming the data set, to the map drawn: the data read, the split encoded, the shipped map read),
  then on fresh tabs, with hover;
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
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import checkpoints, data, flags
from ..errors import ConfigError
from .host import machine

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
# the <img> of the figure whose caption holds a text: its src and whether it is loaded
IMG_JS = """(text) => {
  const fig = [...document.querySelectorAll('[data-testid="stImage"]')].find(f => f.innerText.includes(text));
  const img = fig && fig.querySelector('img');
  return img ? [img.src, img.complete && img.naturalWidth > 0] : null;
}"""
CHANGED_JS = f"""([text, before]) => {{
  const got = ({IMG_JS})(text);
  const all = [...document.querySelectorAll('[data-testid="stMain"] img')].every(i => i.complete);
  return got !== null && got[0] !== before && got[1] && all;
}}"""
# the map component's probes (frontend/src/map.ts): the screen position of a row; the first frame drawn
POINT_JS = "(row) => window.__vqvizMap.screenPosition(row)"
MAP_JS = "() => !!(window.__vqvizMap && window.__vqvizMap.drawnAt)"
# two rows of the map in different clusters (or of different labels, without clusters)
TWO_ROWS_JS = """() => { const m = window.__vqvizMap, f = m.value('cluster', 0) === null ? 'label' : 'cluster';
  for (let r = 1; r < m.n; r++) if (m.value(f, r) !== m.value(f, 0)) return [0, r];
  return [0, Math.min(1, m.n - 1)]; }"""
# the panel shows the sample of the map's selection after ``seq``
SAMPLE_SHOWN_JS = r"""(seq) => { const s = window.__vqvizMap.selection;
  return !!s && s.seq > seq && s.rows.length === 1 && new RegExp('Sample ' + s.rows[0] + '\\b')
    .test(document.querySelector('[data-testid="stMain"]').innerText); }"""
# the hover card shows an image (or, on a map without images, its fields), painted: its row and the times
# from the mouse event to the card in the page and to the next frame
HOVERED_JS = """() => { const m = window.__vqvizMap, t = document.querySelector('.vqm-tip');
  return m.hoverRow !== null && !t.hidden && m.hoverPaintedAt > m.moveAt
    ? [m.hoverRow, m.hoverShownAt - m.moveAt, m.hoverPaintedAt - m.moveAt,
       !document.querySelector('.vqm-tip-image').hidden] : null; }"""
SETTLED_JS = """() => !document.querySelector('[data-testid="stProgress"]')"""
TITLE_JS = """(title) => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)
  && [...document.querySelectorAll('[data-testid="stMain"] img')].every(i => i.complete)"""


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


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def streamlit_server(script: Path, env: dict, home: Path, cwd: Path, gc: str = "config"):
    """`streamlit run script` from ``cwd`` (whose .streamlit/config.toml applies) on a free loopback
    port, logging to ``home``; yields (url, process) once its health check answers (the browser test uses it too).
    ``gc``: "config" keeps the app's garbage-collection setting, "on" or "off" overrides it."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    if gc != "config":
        cmd += ["--runner.postScriptGC", "true" if gc == "on" else "false"]
    with serving(cmd, port, env, home / f"{script.stem}-{port}.log", cwd) as served:
        yield served


@contextmanager
def serving(cmd: list[str], port: int, env: dict, log_path: Path, cwd: Path, wait_s: float = 60.0):
    """Run ``cmd``, a Streamlit server on loopback ``port``, logging to ``log_path``; yield (url, process)
    once its health check answers (or ``wait_s`` has passed), and stop it afterwards.

    Raises
    ------
    ConfigError
        The server exited before it answered (the message ends with its log).
    """
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(int(wait_s * 10)):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise ConfigError(f"the server exited: {Path(log_path).read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class _Bytes:
    """Bytes the page receives on its websockets."""

    def __init__(self, page):
        self.total = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.total += len(payload)


def _timed(samples: dict, name: str, counter: _Bytes | None, act, wait) -> None:
    """Time ``act`` until ``wait`` returns; a gesture that never completes is counted, not timed."""
    from playwright.sync_api import TimeoutError as Timeout

    before = counter.total if counter else 0
    t0 = time.perf_counter()
    act()
    try:
        wait()
    except Timeout:
        samples.setdefault(f"{name} (timed out)", []).append(time.perf_counter() - t0)
        return
    samples.setdefault(name, []).append(time.perf_counter() - t0)
    if counter is not None:
        samples.setdefault(f"{name} (bytes)", []).append(counter.total - before)


def _slider(page, samples, name, caption, counter, n, timeout_ms) -> None:
    """n steps of the first slider, alternately right and left, each until the image captioned ``caption`` changed."""
    thumb = page.get_by_role("slider").first
    for i in range(n):
        before = (page.evaluate(IMG_JS, caption) or [None])[0]
        thumb.focus()
        _timed(samples, name, counter, lambda: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft"),
               lambda: page.wait_for_function(CHANGED_JS, arg=[caption, before], timeout=timeout_ms))


def _fresh_tab(browser, url, samples, name, ready_js, arg, n, timeout_ms, first: tuple | None = None) -> None:
    """n new tabs on ``url``, each timed until ``ready_js``; ``first`` = (name, js): also the time
    until an earlier sign, e.g. the page's title before its map."""
    for _ in range(n):
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        t0 = time.perf_counter()

        def wait():
            if first is not None:
                page.wait_for_function(first[1], timeout=timeout_ms)
                samples.setdefault(first[0], []).append(time.perf_counter() - t0)
            page.wait_for_function(ready_js, arg=arg, timeout=timeout_ms)

        _timed(samples, name, None, lambda: page.goto(url), wait)
        page.close()


def _measure_floor(browser, url, samples, n, timeout_ms) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    counter = _Bytes(page)
    page.goto(url)
    page.wait_for_function(f"() => ({IMG_JS})('picture') !== null", timeout=timeout_ms)
    _slider(page, samples, "floor: slider -> image", "picture", counter, n, timeout_ms)
    page.close()
    _fresh_tab(browser, url, samples, "floor: fresh tab -> image", f"() => {{ const g = ({IMG_JS})('picture'); "
               "return g !== null && g[1]; }", None, n, timeout_ms)


def _measure_app(browser, url, samples, n, timeout_ms, pid, memory) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    counter = _Bytes(page)
    page.goto(url)
    page.wait_for_function(MAP_JS, timeout=600_000)  # the first map is computed here, untimed
    page.wait_for_function(SETTLED_JS, timeout=600_000)  # (PCA's meanwhile, then the t-SNE one)
    page.wait_for_function(MAP_JS, timeout=timeout_ms)
    memory["first_map_mb"] = _rss_mb(pid)
    _clicks(page, samples, "map: click -> cluster panel loaded", counter, n, timeout_ms)
    _hover(page, samples, "digits", n, timeout_ms)
    route = [("Cluster styles", TITLE_JS), ("Style mixer", TITLE_JS), ("Latent map", TITLE_JS)]
    for _ in range(n):
        for title, ready in route:
            _timed(samples, f"page switch -> {title}", counter,
                   lambda: page.get_by_role("link", name=title).click(),
                   lambda: page.wait_for_function(ready, arg=title, timeout=timeout_ms))
            if title == "Latent map":
                page.wait_for_function(MAP_JS, timeout=timeout_ms)
    page.get_by_role("link", name="Style mixer").click()
    page.wait_for_function(f"() => {{ const g = ({IMG_JS})('mixture'); return g !== null && g[1]; }}",
                           timeout=timeout_ms * 2)
    _slider(page, samples, "mixer: slider -> mixture loaded", "mixture", counter, n, timeout_ms)
    page.close()
    _fresh_tab(browser, url, samples, "map: fresh tab -> map drawn (digits)", MAP_JS, None, n, timeout_ms,
               first=("map: fresh tab -> title, before the map", "() => !!document.querySelector('h1')"))


def _clicks(page, samples, name, counter, n, timeout_ms, by_image: bool = True) -> None:
    """n clicks on two points of different clusters in turn, each until the cluster panel's picture changed
    (``by_image``; a model with a decoder) or the panel names the sample the map sent."""
    rows = page.evaluate(TWO_ROWS_JS)
    for i in range(n):
        page.wait_for_timeout(400)  # not a double click
        x, y = page.evaluate(POINT_JS, rows[i % 2])
        before = (page.evaluate(IMG_JS, "decoded centroid") or [None])[0]
        seq = page.evaluate("() => (window.__vqvizMap.selection || {seq: 0}).seq")
        wait = (lambda: page.wait_for_function(CHANGED_JS, arg=["decoded centroid", before], timeout=timeout_ms)) \
            if by_image else (lambda: page.wait_for_function(SAMPLE_SHOWN_JS, arg=seq, timeout=timeout_ms))
        _timed(samples, name, counter, lambda: page.mouse.click(x, y), wait)


def _hover(page, samples, what, n, timeout_ms) -> None:
    """n hovers over points spread over the map, each timed in the page from the mouse event to the card
    in the page and to the next frame (so no round trip of Playwright's is counted)."""
    from playwright.sync_api import TimeoutError as Timeout

    total = page.evaluate("() => window.__vqvizMap.n")
    for i in range(n):
        row = (i * 7919) % total  # spread over the rows
        x, y = page.evaluate(POINT_JS, row)
        page.mouse.move(5, 5)
        page.evaluate("() => { window.__vqvizMap.hoverRow = null; }")
        page.wait_for_timeout(150)
        page.mouse.move(x, y)
        try:
            page.wait_for_function(HOVERED_JS, timeout=timeout_ms)
        except Timeout:
            samples.setdefault(f"map: hover -> card painted ({what}) (timed out)", []).append(timeout_ms / 1000)
            continue
        _, shown, painted, image = page.evaluate(HOVERED_JS)
        kind = "image" if image else "card"
        samples.setdefault(f"map: hover -> {kind} in the page ({what})", []).append(shown / 1000)
        samples.setdefault(f"map: hover -> {kind} painted ({what})", []).append(painted / 1000)
    page.mouse.move(5, 5)


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


def _frames(page, gesture: str, seconds: float = 3.0) -> float:
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


def _measure_generated(browser, points, mnist, env, home, app, samples, memory, n, timeout_ms) -> None:
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
        _fresh_tab(browser, link, samples, f"map: fresh tab -> map drawn ({what})", MAP_JS, None, min(n, 5),
                   max(timeout_ms, 120_000))
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        counter = _Bytes(page)
        page.goto(link)
        page.wait_for_function(MAP_JS, timeout=120_000)
        for gesture in ("zoom", "pan"):
            samples[f"map: {gesture} frames a second ({what})"] = [_frames(page, gesture)]
        page.locator('button[data-action="reset"]').click()
        _clicks(page, samples, f"map: click -> sample's panel ({what})", counter, min(n, 10),
                max(timeout_ms, 60_000), by_image=False)
        _hover(page, samples, what, min(n, 10), max(timeout_ms, 60_000))
        page.close()
        memory[f"generated_{points}_mb"] = _rss_mb(proc.pid)


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
        if name.endswith(")") and not name.endswith(("digits)", "test)", "points)")) \
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
                memory["end_mb"] = _rss_mb(proc.pid)
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
                    _fresh_tab(browser, deep, samples, "map: fresh tab -> map drawn (MNIST test)", MAP_JS, None,
                               n, timeout_ms)
                    page = browser.new_page(viewport={"width": 1500, "height": 1100})
                    page.goto(deep)
                    page.wait_for_function(MAP_JS, timeout=timeout_ms)
                    page.wait_for_function("() => window.__vqvizMap.atlasAt", timeout=timeout_ms)
                    _hover(page, samples, "MNIST test", n, timeout_ms)
                    page.close()
                if args.points:
                    _measure_generated(browser, args.points, mnist, env_app, home, app, samples, memory, n,
                                       timeout_ms)
            else:
                print("MNIST: its files, or a checkpoint trained on it, are missing "
                      "(--mnist-checkpoint, VQVIZ_CHECKPOINTS); skipped")
            browser.close()
    summary = _summary(samples)
    _print(summary)
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
