"""Checkpoints: round trip, atomic writes, and each refusal."""

import json

import numpy as np
import pytest
import torch

from vqviz import checkpoints
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

    monkeypatch.setattr(checkpoints.json, "dumps", boom)
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
