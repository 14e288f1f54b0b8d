"""A Streamlit server on a free loopback port, for ``bench ui`` and the tests that drive the app in a
browser: started, waited for until its health check answers, and stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
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
