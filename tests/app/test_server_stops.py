"""Ctrl+C (SIGINT) and SIGTERM stop the real server within seconds, whatever runs in its background.

A small launcher starts the app's real background work before ``streamlit run``: a t-SNE of 20,000
points on the "maps" worker (minutes of native code), a computation that blocks for two minutes on
the "scores" worker, and a SEQ training job of 100,000 epochs. Then the server is sent the signal,
and must be gone within :data:`LIMIT_S`. (The page script itself only runs once a browser connects;
the launcher puts the same threads to work without one.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vqviz.bench.serve import free_port

ROOT = Path(__file__).resolve().parents[2]
#: The most seconds a server may take to exit after the signal.
LIMIT_S = 5.0

LAUNCHER = """
import sys, time
import numpy as np
from vqviz_app import jobs, maps
from vqviz_app.cache import View
from vqviz.train import TrainConfig

rng = np.random.default_rng(0)
latents = rng.normal(size=(20_000, 16)).astype(np.float32)
key = maps.MapKey(View("test", 0, "noise", "all"), "tsne")
tsne, _ = maps.projection_job(key, "test", latents, np.zeros(len(latents), int))
blocked = jobs.background("scores").submit(("blocked",), lambda: time.sleep(120))
job = jobs.start_training("seq", "digits", TrainConfig(epochs=100_000), {"k": 10}, threads=1, session="test")
while not (tsne.running() and blocked.running() and job.fraction > 0):
    assert job.running, job.error
    time.sleep(0.05)
print("BACKGROUND RUNNING", flush=True)

from streamlit.web import cli
sys.argv = ["streamlit", "run", sys.argv[1], "--server.headless", "true", "--server.address", "127.0.0.1",
            "--server.port", sys.argv[2], "--browser.gatherUsageStats", "false"]
sys.exit(cli.main())
"""


def _serve(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The launcher's server on a free port, once its health check answers and its background work runs."""
    port = free_port()
    (tmp_path / "launch.py").write_text(LAUNCHER)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_DATA_HOME=str(tmp_path / "data"),
               OMP_NUM_THREADS="1", VQVIZ_CHECKPOINTS="", PYTHONPATH=str(ROOT))
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "launch.py"), str(ROOT / "app.py"), str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, f"the server exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the server did not start:\n{log.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            if "BACKGROUND RUNNING" in log.read_text():
                return proc, log
        except OSError:
            pass
        time.sleep(0.2)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_server_stops_within_seconds_while_background_work_runs(tmp_path, sig):
    proc, log = _serve(tmp_path)
    try:
        time.sleep(1.0)  # the t-SNE and the training well under way
        sent = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(LIMIT_S + 10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - sent
        print(f"\n{sig.name}: the server exited {took:.2f} s after the signal", end="")
        assert proc.poll() is not None and took <= LIMIT_S, \
            f"the server was still alive {took:.1f} s after {sig.name}:\n{log.read_text()[-3000:]}"
        assert "Stopping..." in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
