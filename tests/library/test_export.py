"""The decoder in ONNX (vqviz/export.py): onnxruntime decodes as ``model.decode_array`` does, for every
registered family and every shipped checkpoint, for any batch size; the file beside a checkpoint is
exported once per set of weights, falls back to the user's cache, and a broken one is exported again."""

import copy
import errno
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vqviz import checkpoints, data, export
from vqviz.errors import ConfigError, ExportError, VqvizError
from vqviz.models import get, names
from vqviz.models.wrapped import Wrapped, WrappedConfig
from vqviz.utils import set_seed

ort = pytest.importorskip("onnxruntime")
onnx_format = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

#: The bundled digits' image shape, from their registration, and their classes.
IN_SHAPE, N_CLASSES = data.shape_of("digits"), 10
SHIPPED = Path(__file__).resolve().parents[2] / "vqviz_app" / "checkpoints"
#: The largest difference allowed between onnxruntime's pixels and PyTorch's.
TOLERANCE = 1e-4


def untrained(name: str, **settings):
    set_seed(0)
    cls = get(name)
    return cls(cls.Config.tiny(IN_SHAPE, N_CLASSES, **settings))


#: Settings that change what a family's decoder computes, tried besides its tiny config where the
#: family is registered and has the setting: the map of codes, L codebooks, the paper's soft VQ.
OPTIONS = [("skvq", {"encoder": "cnn", "spatial": True}), ("dvq", {"n_codebooks": 4}),
           ("soft_vqvae", {"posterior": "paper", "variance": "latent"})]
VARIANTS = [(n, {}) for n in names() if untrained(n).has_decoder] + [
    (n, s) for n, s in OPTIONS if n in names() and set(s) <= set(get(n).Config.__dataclass_fields__)]


def session(onnx: bytes):
    return ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])


def decoded(onnx: bytes, z: np.ndarray) -> np.ndarray:
    return session(onnx).run(["image"], {"z": z})[0]


def latents(model, n: int = 5) -> np.ndarray:
    """(n, d) latents of the bundled test digits, resized to the model's images: where its decoder works."""
    x = torch.as_tensor(np.array(data.load("digits", "test").images[:n]))
    return model.encode_array(F.interpolate(x, size=tuple(model.config.in_shape[1:]), mode="bilinear").numpy())


def assert_decodes_alike(onnx: bytes, model, z: np.ndarray) -> None:
    want = model.decode_array(z)
    got = decoded(onnx, z)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= TOLERANCE
    assert 0 <= got.min() and got.max() <= 1


@pytest.mark.parametrize("name, settings", VARIANTS, ids=[f"{n}-{'-'.join(map(str, s.values()))}".strip("-")
                                                            for n, s in VARIANTS])
def test_onnx_decodes_as_the_model_for_any_batch(name, settings):
    model = untrained(name, **settings)  # in training mode, as built
    modes = [m.training for m in model.modules()]
    onnx = export.decoder_onnx(model)
    assert [m.training for m in model.modules()] == modes  # the caller's model is left as it was
    (z_in,), (image,) = session(onnx).get_inputs(), session(onnx).get_outputs()
    assert (z_in.name, z_in.type, image.name, image.type) == ("z", "tensor(float)", "image", "tensor(float)")
    assert isinstance(z_in.shape[0], str) and isinstance(image.shape[0], str)  # the batch is a free dimension
    z = np.random.default_rng(0).normal(size=(5, z_in.shape[1])).astype(np.float32)
    assert_decodes_alike(onnx, model, z)
    assert_decodes_alike(onnx, model, z[:1])  # another batch size than the example's


def test_a_float16_model_is_exported_as_float32_and_left_as_it_was():
    model = untrained("skvq").eval()
    half = copy.deepcopy(model).half()
    onnx = export.decoder_onnx(half)
    assert next(half.parameters()).dtype == torch.float16
    z = np.random.default_rng(1).normal(size=(5, model.config.latent_dim)).astype(np.float32)
    assert_decodes_alike(onnx, half.float(), z)


@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(p.name for p in SHIPPED.iterdir() if (p / "meta.json").is_file()))
def test_onnx_decodes_each_shipped_checkpoint_as_the_model(folder):
    model = checkpoints.load(SHIPPED / folder).model  # float16 on disk, float32 once loaded
    assert_decodes_alike(export.decoder_onnx(model), model, latents(model))


def test_a_model_without_a_decoder_is_refused_with_its_reason(tmp_path):
    table = untrained("latents")
    encoder_only = Wrapped(WrappedConfig(in_shape=IN_SHAPE, latent_dim=4),
                           {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(64, 4))})
    for model in (table, encoder_only):
        with pytest.raises(ConfigError, match="has no decoder to export"):
            export.decoder_onnx(model)
    with pytest.raises(ConfigError, match="has no decoder to export"):
        export.decoder_file(table, tmp_path, "ab" * 32)
    assert list(tmp_path.iterdir()) == []


class FixedBatch(nn.Module):
    """A user's decoder that reshapes to the batch it was written for."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 64)

    def forward(self, z):
        return self.linear(z).reshape(2, 64)


class Branching(FixedBatch):
    """A user's decoder that takes a Python branch on its input's values."""

    def forward(self, z):
        return self.linear(z) if z.sum() > 0 else -self.linear(z)


@pytest.mark.parametrize("decoder, why", [(FixedBatch, "fixes the batch size"),
                                          (Branching, "branches on the latents' values")])
def test_a_decoder_the_exporter_cannot_trace_raises_an_export_error_that_says_why(decoder, why, capfd):
    model = Wrapped(WrappedConfig(in_shape=IN_SHAPE, latent_dim=4),
                    {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), "decoder": decoder()})
    torch_level = logging.getLogger("torch").level
    with pytest.raises(ExportError) as caught:
        export.decoder_onnx(model)
    assert isinstance(caught.value, VqvizError) and caught.value.__cause__ is None
    message = str(caught.value)
    assert why in message and "\n" not in message and len(message) < 600
    assert capfd.readouterr() == ("", "")  # the exporter's graphs and logs stay off the console
    assert logging.getLogger("torch").level == torch_level


# ----- the file beside the checkpoint -----
@pytest.fixture(scope="module")
def shipped_onnx():
    """The bundled digits VQ-VAE checkpoint's model and its decoder, exported once for this module."""
    model = checkpoints.load(SHIPPED / "vqvae-digits").model
    return model, export.decoder_onnx(model)


@pytest.fixture
def checkpoint(tmp_path, monkeypatch, shipped_onnx):
    """A copy of the checkpoint, its weights' SHA-256, and the calls to ``decoder_onnx`` (which
    returns the module's export); the user's cache is under ``tmp_path``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = shutil.copytree(SHIPPED / "vqvae-digits", tmp_path / "vqvae-digits")
    calls = []
    monkeypatch.setattr(export, "decoder_onnx", lambda model: calls.append(model) or shipped_onnx[1])
    return folder, checkpoints.read_meta(folder)["weights"]["sha256"], calls


def test_the_file_is_written_beside_the_checkpoint_once_and_decodes(checkpoint, shipped_onnx):
    folder, sha, calls = checkpoint
    model, onnx = shipped_onnx
    before = sorted(p.name for p in folder.iterdir())
    path = export.decoder_file(model, folder, sha)
    assert path == folder / f"decoder-{sha[:16]}.onnx" and path.read_bytes() == onnx and len(calls) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, path.name])  # no temporary left
    assert export.decoder_file(model, folder, sha) == path and len(calls) == 1  # reused, not exported again
    assert_decodes_alike(path.read_bytes(), model, latents(model))
    proto = onnx_format.load_from_string(onnx)  # one self-contained file, of the opset onnxruntime-web runs
    assert {o.domain: o.version for o in proto.opset_import}[""] == export.OPSET == 18
    assert not any(t.data_location == onnx_format.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert len(onnx) <= export.MAX_BROWSER_BYTES


def test_new_weights_get_a_new_file_and_the_old_one_goes(checkpoint, shipped_onnx):
    folder, sha, calls = checkpoint
    old = export.decoder_file(shipped_onnx[0], folder, sha)
    new = export.decoder_file(shipped_onnx[0], folder, "f" * 64)
    assert new == folder / f"decoder-{'f' * 16}.onnx" and new.is_file() and not old.exists()
    assert len(calls) == 2 and (folder / "meta.json").is_file() and list(folder.glob("weights-*.safetensors"))


def _cached(tmp_path: Path, sha: str) -> Path:
    return tmp_path / "cache" / "vqviz" / "decoders" / f"decoder-{sha[:16]}.onnx"


def test_a_read_only_folder_sends_the_file_to_the_user_cache(checkpoint, shipped_onnx, tmp_path):
    folder, sha, calls = checkpoint
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        path = export.decoder_file(shipped_onnx[0], folder, sha)
        assert path == _cached(tmp_path, sha) and path.read_bytes() == shipped_onnx[1]
        assert export.decoder_file(shipped_onnx[0], folder, sha) == path and len(calls) == 1
    finally:
        folder.chmod(0o755)
    assert not list(folder.glob("*.onnx"))


def test_a_folder_on_a_read_only_disk_sends_the_file_to_the_user_cache(checkpoint, shipped_onnx, tmp_path,
                                                                        monkeypatch):
    folder, sha, calls = checkpoint
    write = export.atomic_write_bytes

    def read_only_disk(path, data):  # what a checkpoint inside an installed, read-only package meets
        if Path(path).parent == folder:
            raise OSError(errno.EROFS, "Read-only file system")
        write(path, data)

    monkeypatch.setattr(export, "atomic_write_bytes", read_only_disk)
    path = export.decoder_file(shipped_onnx[0], folder, sha)
    assert path == _cached(tmp_path, sha) and path.read_bytes() == shipped_onnx[1]
    assert export.decoder_file(shipped_onnx[0], folder, sha) == path and len(calls) == 1
    assert not list(folder.glob("*.onnx"))


@pytest.mark.parametrize("broken", ["empty", "truncated", "cut_after_a_field", "text", "longer"])
def test_a_broken_file_is_exported_again(checkpoint, shipped_onnx, broken):
    folder, sha, calls = checkpoint
    onnx = shipped_onnx[1]
    content = {"empty": b"", "truncated": onnx[: len(onnx) // 2], "cut_after_a_field": onnx[:2],
               "text": b"<html>Not Found</html>", "longer": onnx + b"\x00"}[broken]
    (folder / f"decoder-{sha[:16]}.onnx").write_bytes(content)
    path = export.decoder_file(shipped_onnx[0], folder, sha)
    assert len(calls) == 1 and path.read_bytes() == onnx


def test_a_weights_hash_that_is_not_hex_is_refused(checkpoint, shipped_onnx):
    folder, _, calls = checkpoint
    for sha in ("", "../../etc/passwd", "zz" * 32, "abc"):
        with pytest.raises(ConfigError, match="weights_sha256"):
            export.decoder_file(shipped_onnx[0], folder, sha)
    assert not calls and not list(folder.glob("*.onnx"))
