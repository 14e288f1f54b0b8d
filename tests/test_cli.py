"""The command line: train, eval, list, help, and errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from vqviz.cli import main


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "vqviz", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "eval" in out.stdout


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "seq-digits"
    code = main(["train", "seq", "--epochs", "1", "--latent-dim", "8", "--k", "10", "--k-sweep", "5,10",
                 "--kmeans-restarts", "1", "--out", str(out), "--quiet"])
    assert code == 0
    assert (out / "meta.json").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "seq" and result["dataset"] == "digits"
    assert result["metrics"]["k"] == 10
    assert [p["k"] for p in result["metrics"]["k_curve"]] == [5, 10]
    assert main(["eval", str(out)]) == 0
    text = capsys.readouterr().out
    assert "quantizer_test_accuracy" in text and "accuracy against K" in text
    assert main(["list", str(tmp_path)]) == 0
    assert "seq" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["eval", "/nonexistent/ck"], "no checkpoint"),
    (["train", "seq", "--dataset", "imagenet", "--quiet"], "imagenet"),
    (["train", "seq", "--encoder", "resnet", "--quiet"], "unknown encoder"),
])
def test_errors_are_one_line_not_tracebacks(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_bad_flag_value_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "seq", "--k-sweep", "a,b"])
    assert e.value.code == 2


def test_every_setting_of_every_model_has_help_from_its_class_or_a_parent():
    """Configs derive from ModelConfig and document only their own fields; --help finds them all."""
    from dataclasses import fields

    from vqviz import models
    from vqviz.cli import _attribute_docs
    from vqviz.models.config import ModelConfig

    for name in models.names():
        config = models.get(name).Config
        assert issubclass(config, ModelConfig), name
        docs = _attribute_docs(config)
        missing = [f.name for f in fields(config) if not docs.get(f.name)]
        assert not missing, (name, missing)
