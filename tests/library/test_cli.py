"""The command line: train, eval, list, help, and errors without tracebacks."""

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bad_checkpoints
import pytest

from vqviz import checkpoints, models
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


def _missing_weights(root):
    folder = bad_checkpoints.weights_folder(root)
    for w in folder.glob("weights-*"):
        w.rmdir()
    return folder


def _truncated_weights(root):
    folder = bad_checkpoints._copy(root, "truncated")
    for w in folder.glob("weights-*"):
        w.write_bytes(w.read_bytes()[:100])
    return folder


@pytest.mark.parametrize("make, message", [
    (_missing_weights, "missing or unreadable"),
    (_truncated_weights, "corrupted or truncated"),
    (bad_checkpoints.weights_folder, "is not a regular file"),
    (bad_checkpoints.nan_weights, "holds NaN or infinite values"),
])
def test_eval_loads_the_weights_and_fails_on_bad_ones(make, message, tmp_path, capsys):
    """meta.json alone looks fine in each case: only loading the weights finds what is wrong."""
    folder = make(tmp_path)
    checkpoints.read_meta(folder)
    assert main(["eval", str(folder)]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error:") and message in out.err and "Traceback" not in out.err
    assert "metrics" not in out.out and not out.out  # nothing printed as if it were fine


def test_bad_flag_value_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "seq", "--k-sweep", "a,b"])
    assert e.value.code == 2


def test_every_setting_of_every_model_has_help_from_its_class_or_a_parent():
    """Configs derive from ModelConfig and document only their own fields; --help finds them all."""
    from dataclasses import fields

    from vqviz import models
    from vqviz.flags import docs
    from vqviz.models.config import ModelConfig

    for name in models.names():
        config = models.get(name).Config
        assert issubclass(config, ModelConfig), name
        documented = docs(config)
        missing = [f.name for f in fields(config) if not documented.get(f.name)]
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

    monkeypatch.setattr(checkpoints.saving, "atomic_write_bytes", full)
    assert main(["train", "seq", *SMALL, "--out", str(tmp_path / "ck")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # a warning about the 1-epoch decoder may come first
    assert lines[-1].startswith("error: No space left on device") and not any("Traceback" in line for line in lines)
    assert [line.split(":")[0] for line in lines[:-1]] == ["warning"] * (len(lines) - 1)


def test_a_learning_rate_out_of_range_is_refused_before_training(capsys):
    assert main(["train", "seq", "--lr", "1e38", "--quiet"]) == 2
    assert "lr must be a number in (0, 10]" in capsys.readouterr().err


#: Every flag each command had when the command lines were first generated from dataclasses;
#: a flag may be added, none may disappear or change its name.
TRAIN_FLAGS = {"--batch-size", "--data-dir", "--dataset", "--device", "--encoder", "--epochs", "--latent-dim", "--lr",
               "--out", "--overwrite", "--quiet", "--recon-loss", "--seed", "--weight-decay"}
VQ_FLAGS = {"--beta", "--codebook-init", "--codebook-size", "--dead-code-threshold", "--ema", "--init",
            "--kmeans-init", "--latent-reduction", "--no-ema", "--no-kmeans-init", "--vq-weight"}
FLAGS = {
    "train ae": TRAIN_FLAGS | {"--init"},
    "train beta_vae": TRAIN_FLAGS | {"--beta", "--init"},
    "train cvae": TRAIN_FLAGS | {"--beta", "--init"},
    "train vae": TRAIN_FLAGS | {"--beta", "--init"},
    "train dvq": TRAIN_FLAGS | VQ_FLAGS | {"--n-codebooks"},
    "train vqvae": TRAIN_FLAGS | VQ_FLAGS,
    "train kmeans_vae": TRAIN_FLAGS | {"--beta", "--init", "--kmeans-restarts", "--n-clusters"},
    "train lambda_vae": TRAIN_FLAGS | {"--beta", "--init", "--lam"},
    "train seq": TRAIN_FLAGS | {"--decoder-epochs", "--epsilon", "--k", "--k-sweep", "--kmeans-restarts",
                                "--latent-activation", "--val-fraction"},
    "train skvq": TRAIN_FLAGS | {"--beta", "--codebook-size", "--constant-embedding", "--decoder-epochs", "--gp-sigma",
                                 "--gradient-penalty", "--momentum", "--no-constant-embedding", "--no-spatial",
                                 "--quantizer", "--sinkhorn-iters", "--sinkhorn-lambda", "--spatial"},
    "train soft_vqvae": TRAIN_FLAGS | {"--beta", "--codebook-size", "--init", "--latent-reduction", "--noise-std",
                                       "--posterior", "--variance", "--vq-weight"},
    "eval": {"--json", "path"},
    "list": {"roots"},
    "bench perf": {"--batch-size", "--data-dir", "--dataset", "--device", "--encoder", "--epochs", "--json", "--k",
                   "--kmeans-restarts", "--latent-dim", "--n", "--quick", "--repeats", "--seed"},
    "bench repro": {"--data-dir", "--dataset", "--device", "--epochs", "--fresh", "--only", "--out", "--quick",
                    "--seeds", "--table-only"},
    "bench ui": {"--app", "--gc", "--json", "--mnist-checkpoint", "--points", "--repeats", "--timeout"},
}


def _commands(parser, path=()):
    """``{"bench perf": {flags and positionals}}`` for every leaf command of ``parser``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), {o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")} | \
            {a.dest for a in parser._actions if not a.option_strings}
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


def test_every_flag_of_every_command_keeps_its_name():
    from vqviz.cli import build_parser

    commands = dict(_commands(build_parser()))
    assert set(FLAGS) <= set(commands), set(FLAGS) - set(commands)
    for command, expected in FLAGS.items():
        assert not expected - commands[command], (command, expected - commands[command])


def test_flags_parse_into_their_dataclasses():
    """Given flags reach the dataclass; flags not given leave its defaults (or a preset's) in force."""
    from vqviz.bench import perf, repro
    from vqviz.cli import build_parser
    from vqviz.flags import given

    args = build_parser().parse_args(["bench", "perf", "--quick", "--kmeans-restarts", "3", "--device", "cpu"])
    s = perf.Settings.from_args(args)
    assert (s.n_init, s.k, s.epochs, s.device, s.quick, s.n) == (3, perf.PRESETS["quick"]["k"], 1, "cpu", True, None)
    args = build_parser().parse_args(["bench", "repro", "--only", "seq", "--table-only"])
    assert repro.Options(**given(args, repro.Options)) == repro.Options(only="seq", table_only=True)
    args = build_parser().parse_args(["train", "vqvae", "--no-ema", "--codebook-size", "32"])
    assert given(args, models.get("vqvae").Config) == {"ema": False, "codebook_size": 32}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "perf", "--device", "tpu"])


def test_the_help_of_only_names_every_protocol():
    from vqviz.bench import protocols, repro
    from vqviz.flags import docs

    assert all(name in docs(repro.Options)["only"] for name in protocols.PROTOCOLS)


def _app_argv(*argv):
    from vqviz import cli, flags

    args = cli.build_parser().parse_args(["app", *argv])
    return cli.app_command(cli.AppOptions(**flags.given(args, cli.AppOptions)))


def test_app_listens_on_this_machine_only_unless_told():
    from pathlib import Path

    import vqviz_app

    script = str(Path(vqviz_app.__file__).resolve().parent / "main.py")
    assert _app_argv() == [sys.executable, "-m", "streamlit", "run", script, "--server.address", "127.0.0.1"]
    argv = _app_argv("--host", "0.0.0.0", "--port", "8600", "--", "--server.headless", "true")
    assert argv[4:] == [script, "--server.address", "0.0.0.0", "--server.port", "8600", "--server.headless", "true"]


@pytest.mark.parametrize("missing", ["vqviz_app", "streamlit"])
def test_app_without_the_app_extra_says_how_to_install_it(missing, monkeypatch, capsys):
    import importlib.util

    from vqviz import cli

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else find_spec(name, *a))
    monkeypatch.setattr(cli, "serve", lambda argv: pytest.fail("nothing is run"))
    assert main(["app"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: the explorer is not installed: install it with `pip install "vqviz[app]"`')
    assert "Traceback" not in err


def test_app_runs_the_command_it_builds(monkeypatch, capsys):
    from vqviz import cli

    ran = []
    monkeypatch.setattr(cli, "serve", lambda argv, env=None: ran.append((argv, env)) or 0)
    assert main(["app", "--port", "8601"]) == 0
    assert ran == [(_app_argv("--port", "8601"), None)]
    assert "http://127.0.0.1:8601 (this machine only" in capsys.readouterr().err


def test_app_latents_checks_the_file_first_and_opens_it(tmp_path, monkeypatch, capsys):
    """`vqviz app --latents FILE` saves the file as a checkpoint the app lists and starts the app on it (the
    server learns which through VQVIZ_OPEN); a bad file stops it with one line, before any server starts."""
    import numpy as np

    from vqviz import cli
    from vqviz.data import latents

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    ran = []
    monkeypatch.setattr(cli, "serve", lambda argv, env=None: ran.append((argv, env)) or 0)
    rng = np.random.default_rng(0)
    latents.write(tmp_path / "emb.npz", rng.normal(size=(40, 5)).astype(np.float32), codes=rng.integers(0, 4, 40))
    assert main(["app", "--latents", str(tmp_path / "emb.npz")]) == 0
    (argv, env), = ran
    assert argv == _app_argv()
    folder = Path(env["VQVIZ_OPEN"])
    assert folder.parent == tmp_path / "home" / "vqviz" / "checkpoints" and (folder / "latents.npz").is_file()
    assert "its map: http://127.0.0.1:8501/?page=latent_map&checkpoint=" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", latents=np.full((3, 2), np.nan))
    assert main(["app", "--latents", str(tmp_path / "bad.npz")]) == 2
    assert len(ran) == 1 and "bad.npz" in capsys.readouterr().err



def test_serve_waits_for_the_server_through_ctrl_c(tmp_path, monkeypatch):
    """Ctrl+C in a terminal reaches the server and `vqviz app` alike: it waits for the server to stop,
    then gives the server's exit status, with no traceback of its own."""
    import os
    import signal
    import threading
    import time

    from vqviz import cli

    started, children, real = tmp_path / "started", [], subprocess.Popen
    script = ("import pathlib, signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(3)); "
              f"pathlib.Path({str(started)!r}).touch(); time.sleep(60)")

    def popen(argv, env=None):
        children.append(real(argv, env=env))
        return children[-1]

    def ctrl_c():  # as a terminal's: the server and this process both get SIGINT
        while not started.exists():
            time.sleep(0.02)
        os.kill(children[0].pid, signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(subprocess, "Popen", popen)
    threading.Thread(target=ctrl_c, daemon=True).start()
    assert cli.serve([sys.executable, "-c", script]) == 3


def test_a_terminated_serve_stops_its_server(tmp_path):
    """SIGTERM to the process that serves (`vqviz app` under a service manager, or a test stopping it) is
    passed on: the server does not outlive it."""
    import signal
    import time

    pid_file = tmp_path / "server.pid"
    server = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", f"import sys; from vqviz import cli; "
                               f"sys.exit(cli.serve([sys.executable, '-c', {server!r}]))"])
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) != 0
    for _ in range(100):  # the server got the signal and ended
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the server outlived the process that served it")
