"""A model you already have (:func:`vqviz.wrap`): plain torch modules behind the model contract, saved
as a normal checkpoint (safetensors and the factory that rebuilds them) and loaded back only where the
factory is allowed. A refused factory's module is never imported."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from own_models import NETS, own_factory, site, write_distribution  # noqa: F401  (fixtures)

import vqviz
from vqviz import analysis, checkpoints, workflow
from vqviz.errors import CheckpointError, ConfigError, UntrustedCodeError
from vqviz.train import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (1, 8, 8)


def wrapped(seed: int = 0, **args):
    """``own_nets.build`` wrapped: its modules as the user has them, and the factory that rebuilds them."""
    import own_nets

    torch.manual_seed(seed)
    args = {"in_shape": list(SHAPE), "latent_dim": 8, **args}
    parts = own_nets.build(**args)
    return vqviz.wrap(parts["encoder"], parts.get("decoder"), parts.get("quantizer"), in_shape=SHAPE,
                      factory="own_nets:build", factory_args=args, n_classes=10)


def test_a_wrapped_model_saves_as_safetensors_and_loads_back_the_same(own_factory, digits, tmp_path):
    model = wrapped(n_codes=6)
    assert (model.name, model.n_codes, model.n_codebooks, model.has_decoder, model.is_soft) == \
        ("wrapped", 6, 1, True, False)
    assert model.config.latent_dim == 8  # measured
    assert model.config.factory_args == {"in_shape": [1, 8, 8], "latent_dim": 8, "n_codes": 6}  # JSON: a list
    x = torch.as_tensor(np.array(digits[1].images[:50]))
    with torch.no_grad():
        z = model.encode(x)
        q = model.quantize(z)
    # The quantizer's short form (quantized, indices) read as the contract's output: the nearest codeword,
    # as a NumPy reference picks it, one-hot probabilities, and the way back from indices to codewords.
    book = model.quantizer.codebook.detach().numpy()
    near = ((z.numpy()[:, None] - book[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(q.indices.numpy(), near)
    assert torch.equal(q.probs, torch.nn.functional.one_hot(q.indices, 6).float()) and float(q.loss) == 0
    torch.testing.assert_close(model.codes(q.indices), q.quantized)

    folder = checkpoints.save(model, tmp_path / "mine", dataset="digits")
    files = sorted(p.name for p in folder.iterdir() if p.name != checkpoints.LOCK)
    assert len(files) == 2 and files[0] == "meta.json" and re.fullmatch(r"weights-\w+\.safetensors", files[1])
    meta = json.loads((folder / "meta.json").read_text())
    config = meta["config"]
    assert (meta["model"], config["factory"], config["factory_args"]["n_codes"]) == ("wrapped", "own_nets:build", 6)
    assert meta["summary"]["n_codes"] == 6 and "factory_distribution" not in meta["versions"]  # allowed by the setting
    loaded = checkpoints.load(folder, expect="wrapped").model
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), z, rtol=0, atol=0)
        assert torch.equal(loaded.quantize(z).indices, q.indices)
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


def test_a_factory_that_is_not_allowed_is_refused_before_its_module_is_imported(own_factory, tmp_path, monkeypatch):
    folder = checkpoints.save(wrapped(), tmp_path / "mine", dataset="digits")
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["factory"] = "evil_nets:build"  # as an uploaded checkpoint may say
    (folder / "meta.json").write_text(json.dumps(meta))
    for read in (checkpoints.load, lambda f: checkpoints.summary({**checkpoints.read_meta(f), "summary": None})):
        with pytest.raises(UntrustedCodeError) as e:
            read(folder)
        assert isinstance(e.value, CheckpointError)
        said = str(e.value)
        assert all(s in said for s in ("'evil_nets:build' may not be imported", "VQVIZ_ALLOWED_FACTORIES",
                                       "allowed_factories", "vqviz.factories")), said
    assert str(e.value).startswith("meta.json: the factory")  # where: the summary of a listed checkpoint
    with pytest.raises(UntrustedCodeError, match="^checkpoint 'mine': the factory 'evil_nets:build'"):
        checkpoints.load(folder)
    # An upload of it is refused too, and leaves nothing installed.
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"mine/{f.name}")
    with pytest.raises(CheckpointError, match="evil_nets:build"):
        checkpoints.install_checkpoint_zip(blob.getvalue(), tmp_path / "uploads")
    assert not any((tmp_path / "uploads").iterdir())
    assert "evil_nets" not in sys.modules and not own_factory.exists()  # own_factory: the file its import would write

    # Nor does any module outside the setting load: the standard library's neither, and a prefix is a
    # package, not the start of a name.
    for factory, setting in (("os:system", "own_nets"), ("own_nets:build", "own"), ("own_nets:build", "")):
        monkeypatch.setenv("VQVIZ_ALLOWED_FACTORIES", setting)
        meta["config"]["factory"] = factory
        (folder / "meta.json").write_text(json.dumps(meta))
        with pytest.raises(UntrustedCodeError, match=re.escape(f"{factory!r} may not be imported")):
            checkpoints.load(folder)
    monkeypatch.setenv("VQVIZ_ALLOWED_FACTORIES", "other, own_nets")
    assert checkpoints.load(folder).model.config.factory == "own_nets:build"


def test_vqviz_toml_can_allow_a_factory(own_factory, tmp_path, monkeypatch):
    folder = checkpoints.save(wrapped(), tmp_path / "mine", dataset="digits")
    monkeypatch.delenv("VQVIZ_ALLOWED_FACTORIES")
    toml = tmp_path / "vqviz.toml"
    toml.write_text('[server]\nallowed_factories = ["own_nets"]\n')
    monkeypatch.setenv("VQVIZ_CONFIG", str(toml))
    assert checkpoints.load(folder).model.config.factory == "own_nets:build"
    toml.write_text('[server]\nallowed_factories = ["own nets"]\n')
    with pytest.raises(CheckpointError, match="'own nets' is not a module name"):
        checkpoints.load(folder)


def test_a_factory_of_an_installed_entry_point_is_allowed_and_its_package_recorded(site, tmp_path, monkeypatch):
    write_distribution(site, "own-nets", "1.2", {"vqviz.factories": {"nets": "own_nets:build"}}, {"own_nets": NETS})
    monkeypatch.delenv("VQVIZ_ALLOWED_FACTORIES", raising=False)
    folder = checkpoints.save(wrapped(n_codes=4), tmp_path / "mine", dataset="digits")
    versions = checkpoints.read_meta(folder)["versions"]
    assert versions["factory_distribution"] == "own-nets" and versions["own-nets"] == "1.2"
    assert checkpoints.load(folder).model.n_codes == 4


def test_without_a_decoder_or_a_quantizer_each_part_does_what_the_model_has(own_factory, digits, tmp_path):
    train, test = digits
    encoder_only = wrapped(decoder=False)
    assert (encoder_only.has_decoder, encoder_only.has_quantizer, encoder_only.n_codes) == (False, False, None)
    with pytest.raises(ConfigError, match="no decoder"):
        encoder_only.decode(torch.zeros(1, 8))
    table = analysis.point_table(encoder_only, test.images, test.labels, 10)
    assert not table.has_clusters and table.latents.shape == (len(test), 8)
    assert analysis.selection_view(encoder_only, table, test.images, np.arange(5), 10).centroid is None
    assert analysis.placement.describe_point(encoder_only, table, test.images, 3).reconstruction is None
    assert "mse_per_image" not in analysis.downstream_scores(encoder_only, train, test)

    # An encoder and a quantizer: clusters, pictured by their members; trained on nothing, scored as it came.
    model = wrapped(decoder=False, n_codes=5)
    with torch.no_grad():  # codewords on five training latents: every code is someone's nearest
        model.quantizer.codebook.copy_(model.encode(torch.as_tensor(np.array(train.images[:5]))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "runs" / "enc-q"
    ckpt = workflow.train("wrapped", "digits", out=out, train_config=TrainConfig(epochs=1),
                          **{k: getattr(model.config, k) for k in ("factory", "factory_args", "latent_dim")})
    assert "decoder_check" not in ckpt.metrics and ckpt.metrics["test_perplexity"] >= 1
    checkpoints.save(model, out, dataset="digits", metrics=model.fit(train, test, Trainer(TrainConfig())))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing to train against
    loaded = checkpoints.load(out).model
    table = analysis.point_table(loaded, test.images, test.labels, 10)
    assert table.has_clusters and len(np.unique(table.clusters)) > 1
    assert analysis.centroid_images(loaded, table) is None
    k = int(table.clusters[0])
    assert analysis.cluster_view(loaded, table, test.images, k, 10).centroid is None
    typical = analysis.typical_images(table, test.images)
    assert typical.shape == (5, *SHAPE) and (typical[table.sizes == 0] == 1).all()
    np.testing.assert_array_equal(typical[k], test.images[analysis.typical_rows(table, k)[0]])


def test_wrap_refuses_what_would_not_load(own_factory):
    import own_nets as nets

    parts = nets.build(list(SHAPE), latent_dim=8)
    with pytest.raises(ConfigError, match="weights differ from the ones given"):
        vqviz.wrap(parts["encoder"], parts["decoder"], factory="own_nets:build",
                   factory_args={"in_shape": list(SHAPE), "latent_dim": 9}, in_shape=SHAPE)
    with pytest.raises(ConfigError, match="JSON values only"):
        vqviz.wrap(parts["encoder"], factory="own_nets:build", factory_args={"in_shape": torch.ones(3)}, in_shape=SHAPE)
    with pytest.raises(ConfigError, match="'module:function'"):
        vqviz.wrap(parts["encoder"], factory="own_nets.py", in_shape=SHAPE)
    with pytest.raises(ConfigError, match="needs a codebook tensor"):
        vqviz.wrap(parts["encoder"], quantizer=torch.nn.Identity(), factory="own_nets:build", in_shape=SHAPE)
    with pytest.raises(ConfigError, match="must be a torch.nn.Module"):
        vqviz.wrap(lambda x: x, factory="own_nets:build", in_shape=SHAPE)


def _docs_blocks() -> list[str]:
    text = (ROOT / "docs" / "models.md").read_text()
    own = text[text.index("## Your own model"):]
    return re.findall(r"```python\n(.*?)```", own, re.S)


def test_the_docs_example_of_wrap_runs(site, tmp_path, monkeypatch):
    module, example, *_ = _docs_blocks()  # then the file of latents' example (tests/app/test_own_latents.py)
    assert module.startswith("# mypkg/nets.py")
    (site / "mypkg").mkdir()
    (site / "mypkg" / "__init__.py").touch()
    (site / "mypkg" / "nets.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VQVIZ_ALLOWED_FACTORIES", "mypkg")
    namespace = {"__name__": "docs"}
    exec(compile(example, "docs/models.md", "exec"), namespace)  # noqa: S102
    model = checkpoints.load(tmp_path / "runs" / "mine-digits").model
    assert (model.n_codes, model.config.latent_dim, model.has_decoder) == (32, 16, True)
    x = torch.rand(4, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(model.reconstruct(x), namespace["model"].reconstruct(x), rtol=0, atol=0)
    for name in [m for m in sys.modules if m.split(".")[0] == "mypkg"]:
        del sys.modules[name]
    shutil.rmtree(site / "mypkg")


def test_the_command_line_trains_a_wrapped_model_from_its_factory(own_factory, tmp_path, monkeypatch, capsys):
    from vqviz.cli import main

    out = tmp_path / "cli"
    args = ["train", "wrapped", "--epochs", "2", "--factory", "own_nets:build", "--quiet", "--out", str(out),
            "--factory-args", '{"in_shape": [1, 8, 8], "n_codes": 4}']
    assert main(args) == 2  # the config's latent_dim (16 by default) must be the encoder's
    assert "latents of 8, not latent_dim = 16: set latent_dim (--latent-dim) to 8" in capsys.readouterr().err
    assert main([*args, "--latent-dim", "8"]) == 0
    model = checkpoints.load(out).model
    assert model.n_codes == 4 and model.config.factory_args == {"in_shape": [1, 8, 8], "n_codes": 4}
    with pytest.raises(SystemExit) as e:
        main([*args[:-1], "[1, 8, 8]"])
    assert e.value.code == 2 and "expected a JSON object" in capsys.readouterr().err
    monkeypatch.delenv("VQVIZ_ALLOWED_FACTORIES")
    assert main([*args, "--latent-dim", "8"]) == 2
    assert "'own_nets:build' may not be imported" in capsys.readouterr().err
