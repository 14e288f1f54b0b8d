"""vqviz.data.cifar: the batches read with the restricted unpickler and its caps."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_fakes import Reduced, fake_cifar, numpy_array, numpy_dtype, python2_pickle
from vqviz import data
from vqviz.data import cifar, registry
from vqviz.errors import DataError


@pytest.mark.parametrize("python2", [False, True], ids=["numpy-protocol-2", "python2-cpickle"])
def test_cifar(tmp_path, isolated, python2):
    batches = fake_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", python2=python2)
    train = data.load("cifar10", "train", tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.classes[3] == "c3"
    np.testing.assert_allclose(train.images[:4].reshape(4, -1) * 255, batches["data_batch_1"],
                               atol=1e-4)
    assert len(data.load("cifar10", "test", tmp_path / "cifar10")) == 4


class Evil:
    def __reduce__(self):
        return os.system, (f"touch {Path.cwd() / 'pwned'}",)


def test_cifar_refuses_malicious_pickle(tmp_path, isolated):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"test_batch: refusing to unpickle (posix|nt)\.system"):
        data.load("cifar10", "test", folder)
    assert not (Path.cwd() / "pwned").exists()


def _shared_nested_pickle(depth: int, width: int) -> bytes:
    """A pickle of a few hundred bytes whose lists, expanded, hold width**depth items."""
    nested = [1]
    for _ in range(depth):
        nested = [nested] * width
    return pickle.dumps({b"data": nested, b"labels": nested}, protocol=2)


def test_cifar_shared_nested_lists_do_not_expand(tmp_path, isolated):
    import resource
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    blob = _shared_nested_pickle(depth=10, width=8)  # 8**10 = 1 G items if expanded
    assert len(blob) < 400
    (folder / "test_batch").write_bytes(blob)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="test_batch: expected \\(N, 3072\\) uint8 data"):
        data.load("cifar10", "test", folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


@pytest.mark.parametrize("batch, message", [
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, "a"]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1.0, 2.0]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[1], [2]]}, "labels must be integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 images but 1 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": 7}, "labels must be a list"),
    ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "holds no images"),
    ({b"data": [[1, 2]], b"labels": [1]}, "expected \\(N, 3072\\) uint8"),
])
def test_cifar_odd_content_is_a_data_error(tmp_path, isolated, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=message):
        data.load("cifar10", "test", folder)


def test_cifar_label_names_of_odd_bytes_are_decoded(tmp_path, isolated):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"\xff\xfe"] + [b"x"] * 9}, f)
    assert data.load("cifar10", "test", folder).classes[0] == "\ufffd\ufffd"
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": "not a list"}, f)
    registry._load_cached.cache_clear()
    with pytest.raises(DataError, match="label_names must be a list"):
        data.load("cifar10", "test", folder)


def test_cifar_pickles_over_the_op_cap_are_refused_before_unpickling(tmp_path, isolated, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    monkeypatch.setattr(cifar, "MAX_PICKLE_OPS", 10)
    monkeypatch.setattr(cifar._InertUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(DataError, match="more than 10 opcodes"):
        data.load("cifar10", "test", folder)


@pytest.mark.parametrize("protocol", range(6))
def test_cifar_reads_the_arrays_numpy_pickles_up_to_protocol_4(tmp_path, isolated, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar(folder)
    x = np.arange(2 * 3072).reshape(2, 3072).astype(np.uint8)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": x, b"labels": [1, 2]}, protocol=protocol))
    if protocol == 5:  # numpy's protocol 5 names _frombuffer, which is refused like any other global
        with pytest.raises(DataError, match="refusing to unpickle numpy._core.numeric._frombuffer"):
            data.load("cifar10", "test", folder)
    else:
        np.testing.assert_array_equal(data.load("cifar10", "test", folder).images.reshape(2, -1) * 255, x)


def test_cifar_unpickles_numpy_globals_as_inert_records(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": numpy_array((1, 3072), b"\0" * 3072), b"labels": [0]}, protocol=2))
    x, _ = cifar._unpickle(path, b"data", b"labels")
    assert type(x) is cifar._Recorded and x.name == "_reconstruct" and x.args[0].name == "ndarray"
    assert x.state[2].name == "dtype" and x.state[2].args == ("u1", False, True)


def _reconstructing(shape) -> Reduced:
    """One image as numpy pickles it, but asking ``_reconstruct`` for a base array of ``shape``."""
    fn, (cls, _, code), state = numpy_array((1, 3072), b"\0" * 3072).recipe
    return Reduced(fn, (cls, shape, code), state)


@pytest.mark.parametrize("blob", [b"c_codecs\nencode\n(V\\u4e00\nVlatin1\nVnamereplace\ntR.",  # ~30 bytes a char
                                  b"c_codecs\nencode\n(Vx\nVutf-16\ntR.", b"c_codecs\nencode\n(I7\nVlatin1\ntR."])
def test_cifar_codecs_encode_only_turns_text_into_as_many_latin1_bytes(tmp_path, blob):
    (tmp_path / "batch").write_bytes(blob)
    with pytest.raises(DataError, match="_codecs.encode is allowed only from str to latin-1, strictly"):
        cifar._unpickle(tmp_path / "batch", b"data")


M8 = numpy_dtype("M8", (3, "<", None, None, None, -1, -1, 1))  # flags 1 on a datetime: numpy 2.4 segfaults
#: Crafted batches, each with the message it must be refused with. The first two killed the process
#: with SIGSEGV when numpy rebuilt them; the rest ask numpy for up to 2**62 rows of 3072 bytes.
CRAFTED = {
    "dtype M8 with a crafted state": (
        b"(dp0\nS'data'\ncnumpy\ndtype\n(S'M8'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI1\ntbsS'labels'\n(ls.",
        "expected \\(N, 3072\\) uint8 data and N labels, found a pickled dtype"),
    "an M8 array": ({b"data": numpy_array((1, 3072), b"\0" * 8, M8), b"labels": [0]}, "another dtype"),
    "a zero-stride array of 100M rows": (
        {b"data": numpy_array((10**8, 3072), b"", numpy_dtype("V0")), b"labels": [0]}, "another dtype"),
    "100M rows of uint8 in no bytes": ({b"data": numpy_array((10**8, 3072), b""), b"labels": [0]},
                                       "declared count of images is outside 0..87,381"),
    "fewer bytes than declared": ({b"data": numpy_array((3, 3072), b"\0" * 2 * 3072), b"labels": [0, 1, 2]},
                                  "3 images declared but not 9,216 bytes"),
    "a huge declared shape": ({b"data": numpy_array((2**62, 3072), b""), b"labels": []}, "outside 0..87,381"),
    "a huge shape to _reconstruct": ({b"data": _reconstructing((2**40,)), b"labels": [0]},
                                     "found a pickled _reconstruct"),
    "a Python 2 batch with 10**12 rows": (
        python2_pickle({b"data": numpy_array((10**12, 3072), b"", python2=True), b"labels": []}), "outside"),
}

LOADER = """
import json, sys
from vqviz import data
from vqviz.errors import DataError

def status(field):  # of /proc/self/status, in KiB
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

for folder in sys.argv[1:]:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the resident size now, so that each load's peak is its own
    before = status("VmRSS")
    try:
        data.load("cifar10", "test", folder, download=False)
        out = "ok"
    except DataError as e:
        out = "DataError: " + str(e)
    print(json.dumps({"folder": folder, "out": out, "grew_kib": status("VmHWM") - before}), flush=True)
"""


@pytest.mark.slow  # a child process per crafted file: 2.5 s
def test_cifar_crafted_batches_are_refused_in_a_child_process(tmp_path):
    """A crash would kill only the child; each batch must come back as a DataError, having allocated little."""
    folders = []
    for i, (batch, _) in enumerate(CRAFTED.values()):
        folders.append(tmp_path / str(i) / "cifar-10-batches-py")
        fake_cifar(folders[-1])
        (folders[-1] / "test_batch").write_bytes(batch if isinstance(batch, bytes) else pickle.dumps(batch, protocol=2))
    proc = subprocess.run([sys.executable, "-c", LOADER, *map(str, folders)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(CRAFTED)
    for (name, (_, message)), report in zip(CRAFTED.items(), reports):
        assert report["out"].startswith("DataError: "), (name, report)
        assert re.search(message, report["out"]), (name, report)
        assert report["grew_kib"] < 256 * 1024, (name, report)


@pytest.mark.slow  # a fuzz
def test_cifar_hypothesis_fuzz_in_a_child_process(tmp_path):
    """tests/fuzz_targets.py's CIFAR target, alone: every example ends in DataError or a load, none crashes."""
    root = tmp_path / "sandbox"
    root.mkdir()
    n = int(os.environ.get("VQVIZ_FUZZ_EXAMPLES", "200"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(cifar.__file__).parents[2])}  # this vqviz
    proc = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "fuzz_targets.py"), "cifar", str(n),
                           str(root), str(2 * 2**30)], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (report,) = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert report["examples"] == n and set(report["seen"]) <= {"ok", "DataError"}, report
    assert report["seen"].get("ok", 0) < n, report  # the refusals are reached
    assert report["rss_peak"] - report["rss_before"] < 256 * 2**20, report
