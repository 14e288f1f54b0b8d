"""Fuzzing every loader of untrusted input with hypothesis, each in a child process whose
address space is capped, so that no case can take the machine down.

Each run asserts that only the package's own exceptions escape, that nothing is written
outside the target folder (both checked in ``fuzz_targets.py``, after every example), that
the peak resident memory grows by less than :data:`MEMORY_BOUND`, that no allocation passes
:data:`ADDRESS_SPACE` (it would fail with MemoryError, which is not the package's) and that no
case takes longer than :data:`SLOWEST_CALL_S`. 200 examples per
loader by default; set ``VQVIZ_FUZZ_EXAMPLES`` (e.g. 1000) for a longer run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vqviz
from vqviz import checkpoints

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("VQVIZ_FUZZ_EXAMPLES", "200"))
MEMORY_BOUND = 256 * 2**20  # growth of the peak resident memory over the run, in bytes
ADDRESS_SPACE = 2**30  # the child's cap on top of what it has mapped after its imports: no 1 GiB from a header
SLOWEST_CALL_S = 20.0  # one case, on a loaded 2-core machine: a hang would be far over it


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    package_root = str(Path(vqviz.__file__).resolve().parents[1])  # this checkout's vqviz, in the child too
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


TARGETS = ["idx", "checkpoint", "folder", "cifar", "zip", "images_zip"]


@pytest.fixture(scope="module")
def fuzz_reports(tmp_path_factory):
    """Every target's report, from one child process (one start-up of torch for all of them)."""
    root = tmp_path_factory.mktemp("fuzz") / "sandbox"
    root.mkdir()
    proc = subprocess.run([sys.executable, str(HERE.parent / "fuzz_targets.py"), ",".join(TARGETS), str(EXAMPLES),
                           str(root), str(ADDRESS_SPACE)], capture_output=True, text=True, env=_env(),
                          timeout=3600)
    reports = {r["target"]: r for r in map(json.loads, proc.stdout.strip().splitlines()) if r}
    return proc, reports, root


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target, fuzz_reports):
    proc, reports, root = fuzz_reports
    assert target in reports, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = reports[target]
    print(report)
    assert report["examples"] == EXAMPLES
    assert report["seen"].get("ok", 0) < EXAMPLES  # the inputs do reach the refusals
    assert report["rss_peak"] - report["rss_before"] < MEMORY_BOUND, report
    assert report["slowest_call_s"] < SLOWEST_CALL_S, report
    assert sorted(os.listdir(root)) == ["work"]


SAVER = """
import sys, torch
from vqviz import checkpoints
from vqviz.models import build
folder, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = build("ae", in_shape=(1, 8, 8), n_classes=10, encoder="lae2", latent_dim=4)
for i in range(n):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(writer * 1000 + i)
    checkpoints.save(model, folder, dataset="digits", metrics={"writer": writer, "i": i})
"""


def _start_savers(folder: Path, writers, n: int) -> list[subprocess.Popen]:
    """Writer processes, each saving ``n`` checkpoints whose weights all equal writer * 1000 + i.

    Fresh interpreters, not forks: a fork of a process that ran other tests can inherit a
    lock held by one of its threads and hang.
    """
    return [subprocess.Popen([sys.executable, "-c", SAVER, str(folder), str(w), str(n)], env=_env())
            for w in writers]


def test_concurrent_saves_leave_a_checkpoint_that_loads(tmp_path):
    folder = tmp_path / "ck"
    writers, saves = 3, 15
    procs = _start_savers(folder, range(writers), saves)
    loads = failures = 0
    deadline = time.time() + 300
    while any(p.poll() is None for p in procs) and time.time() < deadline:  # never a half checkpoint
        if (folder / "meta.json").exists():
            try:
                ckpt = checkpoints.load(folder)
                m = ckpt.metrics
                value = next(ckpt.model.parameters())[0, 0].item() if next(ckpt.model.parameters()).dim() > 1 \
                    else next(ckpt.model.parameters())[0].item()
                assert value == m["writer"] * 1000 + m["i"]  # the weights of the meta that named them
                loads += 1
            except vqviz.errors.CheckpointError as e:
                failures += 1
                print(e)
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
        assert p.wait() == 0
    assert failures == 0 and loads > 0
    final = checkpoints.load(folder)
    assert final.metrics["i"] == saves - 1  # some writer's last save
    assert len(list(folder.glob("weights-*.safetensors"))) == 1
    assert not list(folder.glob(".*.tmp"))


def _small_model(value: float):
    import torch

    from vqviz.models import build
    model = build("ae", in_shape=(1, 8, 8), n_classes=10, encoder="lae2", latent_dim=4)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


def test_a_killed_writer_leaves_the_last_good_checkpoint(tmp_path):
    import signal
    folder = tmp_path / "ck"
    checkpoints.save(_small_model(1000.0), folder, dataset="digits", metrics={"writer": 1, "i": 0})
    good = checkpoints.load(folder).meta["weights"]["sha256"]
    (proc,) = _start_savers(folder, [2], 100_000)
    deadline = time.time() + 60

    def unchanged() -> bool:  # until the writer has saved once; a read it outpaced every retry counts as not yet
        try:
            return checkpoints.load(folder).meta["weights"]["sha256"] == good
        except vqviz.errors.CheckpointError:
            return True

    while unchanged() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = checkpoints.load(folder)  # the old or a new one, whole
    assert ckpt.metrics["writer"] in (1, 2)
    assert ckpt.model.encode_array(np.zeros((1, 1, 8, 8), np.float32)).shape == (1, 4)
    # the next save sweeps the killed writer's temporaries and orphans
    checkpoints.save(_small_model(3.0), folder, dataset="digits", metrics={"writer": 3, "i": 0})
    assert len(list(folder.glob("weights-*.safetensors"))) == 1 and not list(folder.glob(".*.tmp"))
    assert checkpoints.load(folder).metrics["writer"] == 3
