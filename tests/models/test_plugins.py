"""Model families of other packages (the entry-point group ``vqviz.models``): the registry lists and
builds them, the command line trains them with flags from their config, checkpoints record where they
came from, and the model contract holds for them as for ours. A plug-in that is broken, or missing
where a checkpoint needs it, is named in the warning or the error."""

from __future__ import annotations

import inspect
import json
import sys
import warnings

import numpy as np
import pytest
import test_contract as contract
import torch
from own_models import FAMILY, plugin, site, write_distribution  # noqa: F401  (fixtures)

from vqviz import checkpoints, workflow
from vqviz.cli import main
from vqviz.errors import CheckpointError
from vqviz.models import build, forget_plugins, get, names, registry
from vqviz.train import TrainConfig

BUILT_IN = ["ae", "seq", "vqvae", "wrapped"]


@pytest.mark.filterwarnings("ignore:This model's decoded pictures say little")  # three epochs
def test_an_installed_family_is_registered_built_and_trained_on_digits_like_ours(plugin, digits, tmp_path, capsys):
    assert "mine" in names() and set(BUILT_IN) <= set(names())
    assert get("mine").__module__ == "vqviz_mine.model" and build("mine", k=4).n_codes == 4
    assert registry.origin("mine")[3:] == ("vqviz-mine", "0.1.0") and registry.origin("seq") is None

    out = tmp_path / "runs" / "mine-digits"
    ckpt = workflow.train("mine", "digits", out=out, train_config=TrainConfig(epochs=3, batch_size=64), k=8)
    versions = ckpt.meta["versions"]
    assert versions["family_distribution"] == "vqviz-mine" and versions["vqviz-mine"] == "0.1.0"
    assert ckpt.meta["summary"]["family"] == "mine" and ckpt.meta["summary"]["n_codes"] == 8
    assert "decoder_check" in ckpt.metrics and ckpt.metrics["test_perplexity"] > 1

    # Loaded back, it is the same model: same codes and pictures for the test images.
    again = checkpoints.load(out, expect="mine").model
    x = torch.as_tensor(np.array(digits[1].images[:32]))
    with torch.no_grad():
        codes = [m.quantize(m.encode(x)).indices for m in (again, ckpt.model)]
        np.testing.assert_array_equal(*codes)
        torch.testing.assert_close(again.reconstruct(x), ckpt.model.reconstruct(x), rtol=0, atol=0)
    assert main(["list", str(tmp_path / "runs")]) == 0
    assert f"{out}  mine  digits" in capsys.readouterr().out


def test_the_command_line_builds_its_flags_from_the_plugins_config(plugin, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "mine", "--help"])
    assert e.value.code == 0
    shown = capsys.readouterr().out
    assert "--k K" in shown and "codewords in its codebook" in shown and "--latent-dim" in shown
    out = tmp_path / "cli"
    assert main(["train", "mine", "--epochs", "1", "--k", "6", "--latent-dim", "8", "--quiet", "--out", str(out)]) == 0
    config = checkpoints.load(out).model.config
    assert (type(config).__name__, config.k, config.latent_dim) == ("MineConfig", 6, 8)


def test_the_model_contract_holds_for_a_plugin_family(plugin, digits, tmp_path):
    """Every check of the contract test, run on the plug-in (not installed when that module collects), with
    the arguments its fixtures give, and only those a family like it is parametrized over."""
    done = {}

    def trained(name):
        if name not in done:  # as the contract's fixture: built from its tiny config, trained one epoch
            model = contract.untrained(name)
            metrics = model.fit(*digits, contract.Trainer(TrainConfig(epochs=1, batch_size=64)))
            done[name] = model.eval(), metrics
        return done[name]

    quantizes = contract.untrained("mine").has_quantizer
    x = torch.as_tensor(np.array(digits[1].images[:12]))
    given = {"name": "mine", "x": x, "trained": trained, "digits": digits}
    ran = []
    for test_name, check in vars(contract).items():
        if not test_name.startswith("test_"):
            continue
        families = next(m.args[1] for m in check.pytestmark if m.name == "parametrize")
        if families is (contract.PLAIN if quantizes else contract.QUANTIZING):
            continue
        folder = tmp_path / test_name
        folder.mkdir()
        check(**{p: folder if p == "tmp_path" else given[p] for p in inspect.signature(check).parameters})
        ran.append(test_name)
    assert len(ran) >= 4 and "test_checkpoint_round_trip" in ran, ran


def _uninstall(folder) -> None:
    sys.path.remove(str(folder))
    for module in [m for m in sys.modules if m.startswith("vqviz_mine")]:
        del sys.modules[module]
    forget_plugins()


def test_a_checkpoint_of_a_family_that_is_not_installed_names_it_and_its_package(plugin, tmp_path):
    folder = checkpoints.save(build("mine", k=4), tmp_path / "mine", dataset="digits")
    _uninstall(plugin)
    assert "mine" not in names()
    for read in (checkpoints.read_meta, checkpoints.load):
        with pytest.raises(CheckpointError) as e:
            read(folder)
        message = str(e.value)
        assert all(part in message for part in ("unknown model 'mine'", "'vqviz.models'", "'vqviz-mine' 0.1.0",
                                                "pip install 'vqviz-mine==0.1.0'")), message
    # One saved without the record of its package (by hand, or by an older vqviz) says that much.
    meta = json.loads((folder / "meta.json").read_text())
    del meta["versions"]["family_distribution"]
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not say which package provided it"):
        checkpoints.read_meta(folder)


BROKEN = FAMILY + '''

class Twin(Mine):
    """A family whose name is taken."""

    name = "seq"
'''


def test_a_broken_entry_point_is_left_out_with_a_warning_that_names_it_once(site, monkeypatch):
    write_distribution(site, "vqviz-odd", "2.0", {"vqviz.models": {
        "mine": "vqviz_mine.model:Mine", "broken": "vqviz_nowhere.model:Gone", "helper": "vqviz_mine.model:helper",
        "twin": "vqviz_mine.model:Twin"}}, {"vqviz_mine.model": BROKEN})
    forget_plugins()
    read = []
    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda **kw: read.append(kw) or real(**kw))
    with pytest.warns(RuntimeWarning) as caught:
        listed = names()
    said = sorted(str(w.message) for w in caught)
    assert len(said) == 3, said
    assert "'broken = vqviz_nowhere.model:Gone' of vqviz-odd 2.0 failed to load (ModuleNotFoundError" in said[0]
    assert "'helper = vqviz_mine.model:helper' of vqviz-odd 2.0 is left out: it names function helper" in said[1]
    assert "'twin = vqviz_mine.model:Twin' of vqviz-odd 2.0 is left out: its family's name 'seq' is taken" in said[2]
    assert "mine" in listed and set(BUILT_IN) <= set(listed) and get("seq").__module__ == "vqviz.models.seq"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read once: no second warning, no second reading
        assert names() == listed and get("mine").name == "mine"
    assert read == [{"group": "vqviz.models"}]
