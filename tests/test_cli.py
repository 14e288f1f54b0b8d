"""The command line: train, eval, list, help, and errors without tracebacks."""

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest

from vqviz import checkpoints
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


SMALL = ["--epochs", "1", "--latent-dim", "8", "--k", "10", "--k-sweep", "5,10", "--kmeans-restarts", "1", "--quiet"]


def test_a_clearly_worse_run_keeps_the_old_checkpoint_beside_it(tmp_path, capsys):
    out = tmp_path / "seq-digits"
    assert main(["train", "seq", *SMALL, "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    meta["metrics"]["quantizer_test_accuracy"] = 0.999  # as if the first run had been excellent
    (out / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["train", "seq", *SMALL, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    previous = tmp_path / "seq-digits.previous"
    assert "clearly worse" in err and "seq-digits.previous" in err and "--overwrite" in err
    assert checkpoints.load(previous).metrics["quantizer_test_accuracy"] == 0.999
    assert checkpoints.load(out).metrics["quantizer_test_accuracy"] < 0.98
    # --overwrite replaces without keeping; a run no worse keeps nothing either
    meta = json.loads((out / "meta.json").read_text())
    meta["metrics"]["quantizer_test_accuracy"] = 0.999
    (out / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(previous)
    assert main(["train", "seq", *SMALL, "--out", str(out), "--overwrite"]) == 0
    assert "clearly worse" not in capsys.readouterr().err and not previous.exists()
    assert main(["train", "seq", *SMALL, "--out", str(out)]) == 0
    assert not previous.exists()


def test_another_data_set_or_model_at_out_is_simply_replaced(tmp_path, capsys):
    out = tmp_path / "ck"
    assert main(["train", "seq", *SMALL, "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    meta["metrics"]["quantizer_test_accuracy"], meta["dataset"] = 0.999, "mnist"
    (out / "meta.json").write_text(json.dumps(meta))
    assert main(["train", "seq", *SMALL, "--out", str(out)]) == 0
    assert not (tmp_path / "ck.previous").exists()


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    def full(path, blob):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", full)
    assert main(["train", "seq", *SMALL, "--out", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No space left on device") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_learning_rate_out_of_range_is_refused_before_training(capsys):
    assert main(["train", "seq", "--lr", "1e38", "--quiet"]) == 2
    assert "lr must be a number in (0, 10]" in capsys.readouterr().err
