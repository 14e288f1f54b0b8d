"""The explorer as a user installs it: a wheel built from this checkout, installed into a fresh virtual
environment (no checkout on its path) whose packages meet the wheel's requirements with the ``app``
extra, then ``vqviz app``, which serves the explorer on the bundled digits in a real browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vqviz import data
from vqviz.bench.serve import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]

#: How many points of the split the map component drew (its first frame is drawn), else null.
N_POINTS_JS = "() => window.__vqvizMap && window.__vqvizMap.drawnAt ? window.__vqvizMap.n : null"
#: What the map component holds, for the message of a map that was not drawn.
PROBE_JS = """() => { const m = window.__vqvizMap; return m ? {n: m.n, drawnAt: m.drawnAt, store: m.store,
  status: (document.querySelector('.vqm-status') || {}).textContent} : null; }"""
NO_PROGRESS_JS = """() => !document.querySelector('[data-testid="stProgress"]')"""

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _run(cmd: list[str], **kwargs) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)])
    return next(out.glob("vqviz-*.whl"))


def test_the_wheel_holds_both_packages_and_what_the_app_ships(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "vqviz/__init__.py" in names and "vqviz_app/main.py" in names and "vqviz_app/pages/latent_map.py" in names
    assert any(n.startswith("vqviz_app/checkpoints/seq-digits-lae2/weights-") for n in names)
    assert "vqviz_app/checkpoints/seq-digits-lae2/meta.json" in names
    assert "vqviz_app/results/mnist.json" in names and "vqviz_app/.streamlit/config.toml" in names
    # the map component: its built frontend, and the manifest by which Streamlit finds it
    assert {"vqviz/pyproject.toml", "vqviz/web/static/map.js", "vqviz/web/static/map.css"} <= set(names)
    # the decoding runtime, served by the app itself (never a CDN)
    assert {f"vqviz/web/static/ort/{n}" for n in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs",
                                                  "ort-wasm-simd-threaded.wasm")} <= set(names)
    assert not any(n.endswith(".onnx") for n in names)  # decoders are exported on first use, not shipped
    assert not any(n.startswith(("tests/", "benchmarks/", "app.py")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel, and nothing of the checkout.

    Its dependencies are this test environment's, seen through a .pth file, and ``pip check`` confirms
    that they meet every requirement the wheel declares: this environment was itself installed from
    pyproject.toml's requirements, fresh, by ``.ci/run`` (installing them all again would double that).
    """
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])  # pip too is this environment's
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
    # plain paths (their own .pth files, like the checkout's editable install, are not run)
    theirs = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "test-environment.pth").write_text("\n".join(theirs) + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    _run([str(python), "-m", "pip", "check"])
    return venv


def test_vqviz_app_from_the_installed_wheel_serves_the_explorer_on_the_bundled_digits(installed, tmp_path):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"chromium is not installed at {CHROMIUM}")
    where = _run([str(installed / "bin" / "python"), "-c", "import vqviz, vqviz_app; print(vqviz_app.__file__)"],
                 cwd=tmp_path)
    assert str(installed) in where and str(ROOT) not in where  # the installed copy, not the checkout's
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VQVIZ_DATA", "VQVIZ_CHECKPOINTS")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_DATA_HOME=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    cmd = [str(installed / "bin" / "vqviz"), "app", "--port", str(port), "--",
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with serving(cmd, port, env, tmp_path / "app.log", tmp_path, wait_s=120) as (url, _):
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            expected = len(data.load("digits", "test").labels)
            # The t-SNE map replaces PCA's in a later run, and the map is drawn again: wait for the map of
            # every test digit with no run in progress, rather than read a map that is being replaced.
            try:
                page.wait_for_function(f"() => ({NO_PROGRESS_JS})() && ({N_POINTS_JS})() === {expected}",
                                       timeout=120_000)
            except sync_api.TimeoutError:
                page.screenshot(path=tmp_path / "no-map.png")  # the assertion below says what was drawn instead
            points = page.evaluate(N_POINTS_JS)
            probe = page.evaluate(PROBE_JS)
            body = page.locator("body").inner_text()
            browser.close()
        assert points == expected, (points, probe, body[:1000], (tmp_path / "app.log").read_text()[-2000:])
        assert "Latent map" in body and "Traceback" not in body and "Error" not in body, body[:2000]
