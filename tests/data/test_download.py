"""vqviz.data.download: mirrors, checksums, caps, the deadline, untar, and the sweep of killed downloads."""

from __future__ import annotations

import functools
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from data_fakes import IDX_FILES, fake_cifar, fake_mnist, sha256
from vqviz import data
from vqviz.data import download
from vqviz.errors import DataError


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server for ``tmp_path/mirror``; yields (base url, folder)."""
    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def test_download(server, isolated, monkeypatch):
    url, mirror = server
    arrays = fake_mnist(mirror)
    monkeypatch.setitem(download.CHECKSUMS, "mnist",
                        {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url.rstrip("/"))
    calls = []
    ds = data.load("mnist", "train", progress=lambda done, total: calls.append((done, total)))
    assert ds.images.shape == (12, 1, 28, 28) and ds.classes == tuple("0123456789")
    np.testing.assert_array_equal(ds.labels, arrays["train-labels-idx1-ubyte"])
    cached = sorted(p.name for p in (isolated / "mnist").iterdir())
    assert cached == sorted(f + ".gz" for f in IDX_FILES)
    assert len(calls) >= 4 and all(done == total for done, total in calls[-1:])
    assert data.find_dir("mnist") == isolated / "mnist"


def test_checksum_mismatch_leaves_nothing(server, isolated, monkeypatch):
    url, mirror = server
    fake_mnist(mirror)
    sums = {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES}
    actual = sums["train-images-idx3-ubyte.gz"]
    sums["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setitem(download.CHECKSUMS, "mnist", sums)
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    match = rf"train-images-idx3-ubyte\.gz: expected {'0' * 64}, got {actual}"
    with pytest.raises(DataError, match=match):
        data.load("mnist")
    assert list((isolated / "mnist").iterdir()) == []


def make_tar(path: Path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_cifar_download(server, isolated, tmp_path, monkeypatch):
    url, mirror = server
    fake_cifar(tmp_path / "src")
    files = {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in (tmp_path / "src").iterdir()}
    make_tar(mirror / "cifar-10-python.tar.gz", files)
    monkeypatch.setitem(download.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": sha256(mirror / "cifar-10-python.tar.gz")})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    assert len(data.load("cifar10", "test")) == 4
    assert sorted(p.name for p in (isolated / "cifar10").iterdir()) == ["cifar-10-batches-py"]


def test_cifar_download_rejects_unsafe_tar(server, isolated, monkeypatch):
    url, mirror = server
    make_tar(mirror / "cifar-10-python.tar.gz", {"../escape": b"x"})
    monkeypatch.setitem(download.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": sha256(mirror / "cifar-10-python.tar.gz")})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    with pytest.raises(DataError, match=r"refusing to extract unsafe member '\.\./escape'"):
        data.load("cifar10")
    assert not (isolated / "escape").exists()


class _Endless(http.server.BaseHTTPRequestHandler):
    """Serves every path with a declared length and a body that trickles or never ends."""
    length = None
    delay = 0.0

    def do_GET(self):
        self.send_response(200)
        if self.length is not None:
            self.send_header("Content-Length", str(self.length))
        self.end_headers()
        import time
        try:
            for _ in range(100_000):
                self.wfile.write(b"x" * (1 if self.delay else 65536))
                self.wfile.flush()
                time.sleep(self.delay)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", _Endless
    httpd.shutdown()
    httpd.server_close()
    _Endless.length, _Endless.delay = None, 0.0


def _patch_mnist(monkeypatch, url, size):
    monkeypatch.setitem(download.CHECKSUMS, "mnist", {f + ".gz": "0" * 64 for f in IDX_FILES})
    monkeypatch.setitem(download.SIZES, "mnist", {f + ".gz": size for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url)


def test_a_download_longer_than_the_known_size_is_cut_off(endless, isolated, monkeypatch):
    url, _ = endless
    _patch_mnist(monkeypatch, url, 1_000_000)
    with pytest.raises(DataError, match="runs past the 1,000,000 bytes"):
        data.load("mnist")
    assert not list((isolated / "mnist").iterdir())


def test_a_larger_content_length_is_refused_before_the_body(endless, isolated, monkeypatch):
    url, handler = endless
    handler.length = 10**12
    _patch_mnist(monkeypatch, url, 1_000_000)
    with pytest.raises(DataError, match="announces 1,000,000,000,000 bytes"):
        data.load("mnist")


def test_a_trickling_download_hits_the_overall_deadline(endless, isolated, monkeypatch):
    import time
    url, handler = endless
    handler.delay = 0.01
    _patch_mnist(monkeypatch, url, 1_000_000)
    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE", 0.5)
    t = time.perf_counter()
    with pytest.raises(DataError, match="not finished after 0 s|not finished after 1 s"):
        data.load("mnist")
    assert time.perf_counter() - t < 5


def test_a_download_sweeps_what_killed_downloads_left(server, isolated, monkeypatch):
    import time
    url, mirror = server
    fake_mnist(mirror)
    monkeypatch.setitem(download.CHECKSUMS, "mnist", {f + ".gz": sha256(mirror / (f + ".gz")) for f in IDX_FILES})
    monkeypatch.setenv("VQVIZ_MIRROR", url)
    dest = isolated / "mnist"
    dest.mkdir(parents=True)
    stale, fresh, other = (dest / ".train-images-idx3-ubyte.gz.ab12.tmp", dest / ".t10k-images-idx3-ubyte.gz.cd.tmp",
                           dest / ".notes.tmp")
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 2 * download.STALE_SECONDS
    for p in (stale, other):
        os.utime(p, (old, old))
    data.load("mnist")
    assert not stale.exists() and fresh.exists() and other.exists()
