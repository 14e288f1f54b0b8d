"""Checkpoints: round trip, atomic writes, and each refusal."""

import errno
import hashlib
import io
import json
import os
import re
import stat
import struct
import zipfile
from pathlib import Path

import bad_checkpoints
import numpy as np
import pytest
import safetensors.torch
import torch

from vqviz import archive, checkpoints
from vqviz.errors import CheckpointError
from vqviz.models import build


@pytest.fixture
def saved(tiny_seq, tmp_path):
    model, metrics = tiny_seq
    path = checkpoints.save(model, tmp_path / "ck", dataset="digits", metrics=metrics, seed=0,
                            split_sizes={"train": 1437, "test": 360})
    return model, path


def _weights(path):
    (w,) = path.glob("weights-*.safetensors")
    return w


def test_round_trip_gives_the_same_outputs(saved, digits):
    model, path = saved
    ckpt = checkpoints.load(path)
    x = torch.as_tensor(np.array(digits[1].images[:50]))
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x), model(x), rtol=0, atol=0)
        assert torch.equal(ckpt.model.predict(x), model.predict(x))
    torch.testing.assert_close(ckpt.model.centres, model.centres)
    assert ckpt.name == "seq" and ckpt.dataset == "digits"
    assert ckpt.meta["config"]["latent_dim"] == 16
    assert ckpt.metrics["k"] == 12
    assert ckpt.meta["split_sizes"] == {"train": 1437, "test": 360}
    assert {"torch", "vqviz", "numpy"} <= set(ckpt.meta["versions"])


def test_json_holds_centres_and_cluster_labels(saved):
    model, path = saved
    meta = json.loads((path / "meta.json").read_text())
    assert np.allclose(meta["state"]["centres"], model.centres.numpy())
    assert meta["state"]["cluster_labels"] == model.cluster_labels.tolist()


def test_resave_replaces_the_weights_file(saved, tiny_seq):
    model, path = saved
    with torch.no_grad():
        model.head.bias.add_(1.0)
    try:
        checkpoints.save(model, path)
    finally:
        with torch.no_grad():
            model.head.bias.sub_(1.0)
    assert len(list(path.glob("weights-*"))) == 1
    assert not list(path.glob(".*tmp"))
    checkpoints.load(path)


def test_failed_write_keeps_the_old_checkpoint(saved, monkeypatch):
    model, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dumps", boom)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    try:
        with pytest.raises(OSError):
            checkpoints.save(model, path)
    finally:
        with torch.no_grad():
            model.head.bias.sub_(1.0)
    monkeypatch.undo()
    checkpoints.load(path)  # the old pair still loads
    assert (path / "meta.json").read_bytes() == before["meta.json"]


def test_another_architecture_is_refused(saved):
    _, path = saved
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["encoder"] = "cae4"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="another architecture"):
        checkpoints.load(path)


def test_another_model_name_is_refused_when_one_is_expected(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="not the 'vqvae' model"):
        checkpoints.load(path, expect="vqvae")


def test_corrupted_weights_are_refused(saved):
    _, path = saved
    w = _weights(path)
    blob = bytearray(w.read_bytes())
    blob[-10] ^= 0xFF
    w.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupted"):
        checkpoints.load(path)


def test_truncated_weights_are_refused(saved):
    _, path = saved
    w = _weights(path)
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoints.load(path)
    # Even when the recorded hash is made to match, safetensors refuses the short file.
    import hashlib
    meta = json.loads((path / "meta.json").read_text())
    meta["weights"]["sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        checkpoints.load(path)


def test_truncated_or_corrupted_json_is_refused(saved):
    _, path = saved
    text = (path / "meta.json").read_text()
    (path / "meta.json").write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        checkpoints.load(path)
    (path / "meta.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a vqviz checkpoint"):
        checkpoints.load(path)


def test_pickle_files_are_refused_without_unpickling(tmp_path, monkeypatch):
    torch.save(build("seq").state_dict(), tmp_path / "model.pt")
    import pickle
    (tmp_path / "evil.bin").write_bytes(pickle.dumps({"a": 1}))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    for name in ("model.pt", "evil.bin"):
        with pytest.raises(CheckpointError, match="pickle"):
            checkpoints.load(tmp_path / name)


def test_missing_checkpoint_and_folder_without_meta(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoints.load(tmp_path / "absent")
    with pytest.raises(CheckpointError, match="no meta.json"):
        checkpoints.load(tmp_path)


def test_find_lists_checkpoint_folders(saved, tmp_path):
    _, path = saved
    assert checkpoints.find(tmp_path) == [path]


def test_a_checkpoint_from_before_0_2_with_cae4_loads_as_the_pooled_network(tmp_path):
    """Before vqviz 0.2, "cae4" max-pooled; such checkpoints load as "cae4_pool"."""
    from vqviz.models import build

    model = build("seq", encoder="cae4_pool", latent_dim=16)
    path = checkpoints.save(model, tmp_path / "old")
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["encoder"], meta["versions"]["vqviz"] = "cae4", "0.1.0"
    (path / "meta.json").write_text(json.dumps(meta))
    loaded = checkpoints.load(path).model
    assert loaded.config.encoder == "cae4_pool"
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded.encode(x), model.eval().encode(x))


# ----- the meta.json schema, the config budget, the weights file -----
SHIPPED = Path(__file__).resolve().parents[2] / "vqviz_app" / "checkpoints"


@pytest.fixture
def shipped_copy(tmp_path):
    """A copy of a small shipped checkpoint, to damage."""
    import shutil
    return Path(shutil.copytree(SHIPPED / "vqvae-digits", tmp_path / "vq"))


def _edit(path, change):
    meta = json.loads((path / "meta.json").read_text())
    change(meta)
    (path / "meta.json").write_text(json.dumps(meta))


def test_every_shipped_checkpoint_loads():
    """Also: the schema's checks of text and of the metrics read by name, and the check for NaN in
    weights (some are stored as float16), refuse nothing that vqviz wrote."""
    for folder in checkpoints.find(SHIPPED):
        assert checkpoints.load(folder).model.training is False


#: A good codebook history (``metrics.codebook_history``) of two epochs, K = 8.
HISTORY = {"epoch": [1, 2], "stage": ["train", "train"], "usage_entropy": [1.0, 1.5], "perplexity": [2.7, 4.5],
           "dead_codes": [3, 1], "n_codes": 8, "sample": 360, "split": "test"}


@pytest.mark.parametrize("field, value, message", [
    ("dataset", ["digits"], "'dataset' must be a string or null, not a list"),
    ("metrics", [1, 2], "'metrics' must be an object, not a list"),
    ("format_version", "2", "'format_version' must be an integer, not a string"),
    ("format_version", None, "'format_version' must be an integer, not null"),
    ("format_version", 0, "'format_version' must be 1"),
    ("split_sizes", {"train": -1}, "'split_sizes.train' must be a count"),
    ("seed", 1.5, "'seed' must be an integer or null"),
    ("model", 7, "'model' must be a string"),
    ("model", "nope", "unknown model"),
    ("versions", {"torch": 2}, "'versions.torch' must be a string"),
    ("weights", {"file": "weights-a.safetensors", "sha256": "xyz"}, "'weights.sha256' must be 64"),
    # text that no UTF-8 encoder takes (valid JSON escapes), wherever it is
    ("dataset", "\ud800", "the field 'dataset' holds text that is not valid Unicode"),
    ("train", {"note": ["fine", "ck-\udcff"]}, "the field 'train.note[1]' holds text that is not valid Unicode"),
    ("metrics", {"\ud800": 1}, "the field 'metrics' has a key that is not valid Unicode"),
    # the metrics that pages read by name
    ("metrics", {"decoder_check": "fine"}, "'metrics.decoder_check' must be an object, not a string"),
    ("metrics", {"decoder_check": {"degenerate": True, "std_ratio": "low"}},
     "'metrics.decoder_check.std_ratio' must be a number, not a string"),
    ("metrics", {"decoder_check": {"degenerate": "yes"}}, "'metrics.decoder_check.degenerate' must be true or false"),
    ("metrics", {"k_rule": [40]}, "'metrics.k_rule' must be a count, not a list"),
    ("metrics", {"p_e": "high"}, "'metrics.p_e' must be a number, not a string"),
    ("metrics", {"k_curve": [{"k": "10", "test_accuracy": 0.9}]}, "'metrics.k_curve[0]' must be an object of K"),
    ("metrics", {"k_curve": [{"k": 10, "test_accuracy": "0.9"}]}, "'metrics.k_curve[0]' must be an object of K"),
    ("metrics", {"codebook_history": [1.0]}, "'metrics.codebook_history' must be an object, not a list"),
    ("metrics", {"codebook_history": {**HISTORY, "n_codes": 0}},
     "'metrics.codebook_history.n_codes' must be a count in 1..1048576"),
    ("metrics", {"codebook_history": {**HISTORY, "n_codes": 10**400}},
     "'metrics.codebook_history.n_codes' must be a count in 1..1048576"),
    ("metrics", {"codebook_history": {**HISTORY, "epoch": [1]}}, "must have as many entries in each of"),
    ("metrics", {"codebook_history": {**HISTORY, "perplexity": [2.7, "high"]}},
     "'metrics.codebook_history.perplexity[1]' must be a perplexity in [1, K], not a string"),
    ("metrics", {"codebook_history": {**HISTORY, "perplexity": [2.7, 9.0]}},
     "'metrics.codebook_history.perplexity[1]' must be a perplexity in [1, K], not a number"),
    ("metrics", {"codebook_history": {**HISTORY, "dead_codes": [3, 8]}},
     "'metrics.codebook_history.dead_codes[1]' must be a count of dead codes below K"),
    ("metrics", {"codebook_history": {**HISTORY, "usage_entropy": [[1.0, 1.2], 1.5]}},
     "'metrics.codebook_history.usage_entropy[1]' must be an entropy in [0, ln K], or a list of 2 of them"),
    ("metrics", {"codebook_history": {**HISTORY, "stage": ["train", 2]}},
     "'metrics.codebook_history.stage[1]' must be a stage's name, not an integer"),
])
def test_meta_fields_of_the_wrong_type_are_refused_by_name(shipped_copy, field, value, message):
    _edit(shipped_copy, lambda m: m.__setitem__(field, value))
    for read in (checkpoints.read_meta, checkpoints.load):
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read(shipped_copy)


def test_read_meta_fills_in_the_optional_fields(shipped_copy):
    _edit(shipped_copy, lambda m: [m.pop(k) for k in ("dataset", "metrics", "state", "train")])
    meta = checkpoints.read_meta(shipped_copy)
    assert (meta["dataset"], meta["metrics"], meta["state"], meta["train"]) == (None, {}, {}, {})
    checkpoints.load(shipped_copy)


@pytest.mark.parametrize("key, value, message", [
    ("in_shape", ["a", 8, 8], "'config.in_shape' must be a list of integers"),
    ("in_shape", [1, 8], "'config.in_shape' must hold 3 integers"),
    ("in_shape", [1, 100000, 8], "'config.in_shape' must be (channels, height, width)"),
    ("latent_dim", "64", "'config.latent_dim' must be an integer, not a string"),
    ("latent_dim", True, "'config.latent_dim' must be an integer, not a boolean"),
    ("latent_dim", 2**22, "the limit is"),
    ("beta", float("nan"), "'config.beta' must be a finite number"),
    ("ema", 1, "'config.ema' must be true or false"),
    ("no_such_setting", 1, "'config.no_such_setting' is not a setting"),
])
def test_config_values_are_checked_before_building(shipped_copy, key, value, message):
    _edit(shipped_copy, lambda m: m["config"].__setitem__(key, value))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        checkpoints.load(shipped_copy)


def test_a_config_over_the_parameter_budget_is_refused_without_allocating(shipped_copy):
    import resource
    _edit(shipped_copy, lambda m: m["config"].__setitem__("latent_dim", 2**18))  # 2 GiB of weights
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="parameters; the limit is"):
        checkpoints.load(shipped_copy)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


@pytest.mark.parametrize("file", ["../outside/weights-x.safetensors", "/etc/passwd", "weights-x.pt",
                                  "sub/weights-x.safetensors", "meta.json"])
def test_the_weights_file_must_be_named_inside_the_folder(shipped_copy, file):
    _edit(shipped_copy, lambda m: m["weights"].__setitem__("file", file))
    with pytest.raises(CheckpointError, match="weights-\\*.safetensors file inside") as e:
        checkpoints.load(shipped_copy)
    assert str(shipped_copy.parent) not in str(e.value)


def test_missing_and_unreadable_weights_give_one_message_without_the_path(shipped_copy, tmp_path):
    w = next(shipped_copy.glob("weights-*"))
    w.rename(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError) as missing:
        checkpoints.load(shipped_copy)
    (shipped_copy / w.name).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError) as linked:
        checkpoints.load(shipped_copy)
    assert str(missing.value) == str(linked.value)
    assert "missing or unreadable" in str(missing.value) and str(tmp_path) not in str(missing.value)


def test_a_header_of_other_shapes_is_refused_before_hashing(shipped_copy, monkeypatch):
    w = next(shipped_copy.glob("weights-*"))
    tensors = safetensors.torch.load(w.read_bytes())
    tensors = {k: torch.zeros([s + 1 for s in v.shape]) for k, v in tensors.items()}
    w.write_bytes(safetensors.torch.save(tensors))
    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("hashed"))
    with pytest.raises(CheckpointError, match="another architecture"):
        checkpoints.load(shipped_copy)


def test_a_fifo_in_place_of_the_files_does_not_block(shipped_copy):
    w = next(shipped_copy.glob("weights-*"))
    w.unlink()
    os.mkfifo(w)
    with pytest.raises(CheckpointError, match="weights file .* is not a regular file"):
        checkpoints.load(shipped_copy)
    (shipped_copy / "meta.json").unlink()
    os.mkfifo(shipped_copy / "meta.json")
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoints.read_meta(shipped_copy)


def test_a_meta_linked_to_an_endless_file_is_refused_unread(tmp_path):
    folder = bad_checkpoints.endless_meta(tmp_path)
    with pytest.raises(CheckpointError, match="meta.json is not a regular file"):
        checkpoints.read_meta(folder)


def test_a_folder_in_place_of_the_weights_is_a_checkpoint_error(tmp_path):
    folder = bad_checkpoints.weights_folder(tmp_path)
    with pytest.raises(CheckpointError, match=r"the weights file weights-\w+\.safetensors is not a regular file"):
        checkpoints.load(folder)


def test_weights_with_nan_or_infinity_are_refused(tmp_path):
    folder = bad_checkpoints.nan_weights(tmp_path)
    checkpoints.read_meta(folder)  # nothing in meta.json says so
    with pytest.raises(CheckpointError, match=r"holds NaN or infinite values \(in [\w.]+\); the training"):
        checkpoints.load(folder)


def test_read_regular_refuses_what_is_not_a_small_regular_file(tmp_path):
    """The one capped, non-blocking read of every checkpoint, data and map file."""
    from vqviz.utils import read_regular

    def read(path, limit=10, **kw):
        return read_regular(path, limit, error=CheckpointError, what=Path(path).name, **kw)

    (tmp_path / "small").write_bytes(b"0123456789")
    assert read(tmp_path / "small") == b"0123456789"
    with pytest.raises(CheckpointError, match="small is 0.0 MB; the limit is 0 MB"):
        read(tmp_path / "small", limit=9)
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would wait for ever
    (tmp_path / "folder").mkdir()
    for odd in (tmp_path / "fifo", tmp_path / "folder", "/dev/zero"):
        with pytest.raises(CheckpointError, match="is not a regular file"):
            read(odd)
    (tmp_path / "link").symlink_to(tmp_path / "small")
    assert read(tmp_path / "link") == b"0123456789"
    with pytest.raises(OSError):
        read(tmp_path / "link", follow=False)
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing")


def test_odd_json_is_a_checkpoint_error(shipped_copy):
    for text in ("[" * 100_000, "\xff\xfe", '{"format": "vqviz-checkpoint", "format_version": 1' + "1" * 5000 + "}"):
        (shipped_copy / "meta.json").write_bytes(text.encode("latin-1"))
        with pytest.raises(CheckpointError):
            checkpoints.load(shipped_copy)


# ----- writers: the lock, the sweep, the free space, the file modes -----
def test_save_sweeps_stale_temporaries_and_orphans_only(saved):
    model, path = saved
    stale = [path / ".meta.json.abc.tmp", path / ".weights-0123.safetensors.x1.tmp",
             path / "weights-orphan.safetensors"]
    kept = [path / "notes.txt", path / "weights-x.txt", path.parent / ".meta.json.abc.tmp"]
    for p in stale + kept:
        p.write_bytes(b"x")
    checkpoints.save(model, path)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    checkpoints.load(path)


def test_saved_files_are_0644_less_the_umask(tiny_seq, tmp_path):
    old = os.umask(0o027)
    try:
        path = checkpoints.save(tiny_seq[0], tmp_path / "ck")
    finally:
        os.umask(old)
    for p in path.iterdir():
        if not p.name.startswith("."):
            assert stat.S_IMODE(p.stat().st_mode) == 0o640, p.name


def test_a_full_disk_is_refused_before_writing(saved, monkeypatch):
    model, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    monkeypatch.setattr(checkpoints.saving, "_free_bytes", lambda folder: 1000)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    try:
        with pytest.raises(CheckpointError, match="not enough free disk space"):
            checkpoints.save(model, path)
    finally:
        with torch.no_grad():
            model.head.bias.sub_(1.0)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_a_second_writer_waits_for_the_lock(saved, monkeypatch):
    model, path = saved
    monkeypatch.setattr(checkpoints, "LOCK_TIMEOUT", 0.2)
    with checkpoints.writer_lock(path):
        with pytest.raises(CheckpointError, match="being written by another process"):
            checkpoints.save(model, path)
    checkpoints.save(model, path)


def test_a_reader_retries_when_a_writer_replaced_the_weights(saved, monkeypatch):
    model, path = saved
    real = checkpoints.read_meta
    calls = []

    def stale_then_fresh(p):
        meta = real(p)
        if not calls:  # the first read sees weights that a writer then removes
            meta = {**meta, "weights": {**meta["weights"], "file": "weights-gone.safetensors"}}
        calls.append(1)
        return meta

    monkeypatch.setattr(checkpoints.loading, "read_meta", stale_then_fresh)
    assert checkpoints.load(path).name == "seq" and len(calls) == 2


# ----- the upload zip -----
def _zip_of(folder, **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **kw) as z:
        for p in folder.iterdir():
            z.write(p, p.name)
    return buf.getvalue()


def test_an_upload_with_a_bad_meta_is_not_installed(shipped_copy, tmp_path):
    _edit(shipped_copy, lambda m: m.__setitem__("dataset", ["digits"]))
    with pytest.raises(CheckpointError, match="'dataset' must be a string") as e:
        checkpoints.install_checkpoint_zip(_zip_of(shipped_copy), tmp_path / "up")
    assert ".upload-" not in str(e.value) and str(tmp_path) not in str(e.value)
    assert list((tmp_path / "up").iterdir()) == []


def test_an_upload_with_text_that_is_not_unicode_is_not_installed(tmp_path):
    """Once installed, every page would fail on it for every visitor, with no way to remove it."""
    folder = bad_checkpoints.surrogate_dataset(tmp_path / "src")
    with pytest.raises(CheckpointError, match="the field 'dataset' holds text that is not valid Unicode") as e:
        checkpoints.install_checkpoint_zip(_zip_of(folder), tmp_path / "up", "model.zip")
    str(e.value).encode("utf-8")  # the message itself can be shown
    assert list((tmp_path / "up").iterdir()) == []


def test_an_upload_of_only_a_meta_pointing_outside_is_refused(shipped_copy, tmp_path):
    _edit(shipped_copy, lambda m: m["weights"].__setitem__("file", "../../outside/weights-x.safetensors"))
    blob = _zip_of(shipped_copy)
    with pytest.raises(CheckpointError, match="inside"):
        checkpoints.install_checkpoint_zip(blob, tmp_path / "up")


def test_a_zip_with_a_million_entries_is_refused_from_its_end_record(monkeypatch, tmp_path):
    import time
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(8000):  # 400 KB of directory
            z.writestr(f"{i}", b"")
    blob = buf.getvalue()
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: pytest.fail("entries parsed"))
    with pytest.raises(CheckpointError, match="entries"):
        checkpoints.install_checkpoint_zip(blob, tmp_path)
    # the same with the count in the end record lowered: the directory's size still gives it away
    end = blob.rfind(b"PK\x05\x06")
    forged = blob[:end + 8] + struct.pack("<HH", 2, 2) + blob[end + 12:]
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match="directory is"):
        checkpoints.install_checkpoint_zip(forged, tmp_path)
    assert time.perf_counter() - t < 1


def test_encrypted_and_unknown_compression_entries_are_checkpoint_errors(shipped_copy, tmp_path):
    blob = bytearray(_zip_of(shipped_copy))
    flags = bytearray(blob)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the encrypted bit in every header
        at = 0
        while (at := flags.find(sig, at)) >= 0:
            off = at + (6 if sig == b"PK\x03\x04" else 8)
            flags[off] |= 1
            at += 4
    with pytest.raises(CheckpointError, match="encrypted"):
        checkpoints.install_checkpoint_zip(bytes(flags), tmp_path)
    method = bytearray(blob)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = 0
        while (at := method.find(sig, at)) >= 0:
            off = at + (8 if sig == b"PK\x03\x04" else 10)
            method[off:off + 2] = struct.pack("<H", 99)
            at += 4
    with pytest.raises(CheckpointError, match="compression method 99"):
        checkpoints.install_checkpoint_zip(bytes(method), tmp_path)


def test_a_full_disk_during_an_install_is_a_checkpoint_error(shipped_copy, tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(archive, "extract_capped", full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        checkpoints.install_checkpoint_zip(_zip_of(shipped_copy), tmp_path / "up")
    assert list((tmp_path / "up").iterdir()) == []


def test_a_name_too_long_is_a_checkpoint_error(tmp_path):
    for path in (tmp_path / ("x" * 5000), tmp_path / "/".join(["y" * 200] * 40)):
        for read in (checkpoints.read_meta, checkpoints.load):
            with pytest.raises(CheckpointError, match="no checkpoint|cannot read"):
                read(path)


def test_save_refuses_what_load_would_refuse(tiny_seq, tmp_path):
    with pytest.raises(CheckpointError, match="'dataset' must be 1 to 4096 characters"):
        checkpoints.save(tiny_seq[0], tmp_path / "ck", dataset="")
    assert not list((tmp_path / "ck").glob("weights-*"))


def test_the_summary_is_saved_and_worked_out_for_older_checkpoints(tmp_path):
    """Listing a checkpoint needs no model import: family, K, L, data set, shape and headline."""
    from vqviz.models import build

    model = build("dvq", latent_dim=8, codebook_size=16, n_codebooks=2)
    path = checkpoints.save(model, tmp_path / "dvq", dataset="digits", metrics={"test_mse_per_image": 3.5})
    meta = checkpoints.read_meta(path)
    expected = {"family": "dvq", "n_codes": 16, "n_codebooks": 2, "dataset": "digits", "in_shape": [1, 8, 8],
                "headline": {"test_mse_per_image": 3.5}}
    assert meta["summary"] == expected and checkpoints.summary(meta) == expected
    del meta["summary"]  # as written before summaries existed
    assert checkpoints.summary(meta) == expected
    plain = checkpoints.save(build("ae", latent_dim=4), tmp_path / "ae", dataset="digits")
    assert checkpoints.summary(checkpoints.read_meta(plain))["n_codes"] is None
    raw = json.loads((path / "meta.json").read_text())
    raw["summary"]["n_codes"] = "many"
    (path / "meta.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="'summary.n_codes' must be a count or null"):
        checkpoints.read_meta(path)
