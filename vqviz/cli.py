"""The command line: ``python -m vqviz train|eval|list|bench|app``.

Every command's flags are generated from a dataclass by :mod:`vqviz.flags`: a
model's from its config, so a new model family appears here by registering it,
with no code in this file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, bench, checkpoints, distributed, flags, models
from .errors import VqvizError
from .train import StopTraining, TrainConfig
from .workflow import DATA_FIELDS, checkpoints_dir, default_out


@dataclass
class TrainOptions:
    """Where ``train`` reads its data and writes its checkpoint.

    Attributes
    ----------
    dataset : one of digits, mnist, fashion-mnist, cifar10 or folder:PATH
    data_dir : folder holding the data set's files
    out : checkpoint folder (default: ~/.local/share/vqviz/checkpoints/MODEL-DATASET, where the app lists it)
    quiet : no progress bar
    overwrite : replace the checkpoint at --out even when it scores clearly better (by default that one is kept in OUT.previous)
    """

    dataset: str = "digits"
    data_dir: str | None = None
    out: str | None = None
    quiet: bool = field(default=False, metadata={"switch": True})
    overwrite: bool = field(default=False, metadata={"switch": True})


@dataclass
class EvalOptions:
    """What ``eval`` prints.

    Attributes
    ----------
    path : checkpoint folder
    json : print the metrics as JSON
    """

    path: str = field(metadata={"flag": "path"})
    json: bool = field(default=False, metadata={"switch": True})


@dataclass
class ListOptions:
    """Where ``list`` looks.

    Attributes
    ----------
    roots : folders to search (default: where ``train`` and the app put checkpoints,
        ~/.local/share/vqviz/checkpoints)
    """

    roots: list[str] = field(default_factory=lambda: [str(checkpoints_dir())], metadata={"flag": "roots", "nargs": "*"})


@dataclass
class AppOptions:
    """Where ``app`` serves the explorer.

    Attributes
    ----------
    host : address to listen on; 0.0.0.0 serves every interface (see docs/scale-out.md)
    port : port to listen on (default: Streamlit's, 8501)
    latents : a .npz or .parquet file of latents to open: checked, saved as a checkpoint the app lists, and shown first
    streamlit_args : more options for `streamlit run`, after -- (default: none), e.g. -- --server.headless true
    """

    host: str = "127.0.0.1"
    port: int | None = None
    latents: str | None = field(default=None, metadata={"metavar": "FILE"})
    streamlit_args: list[str] = field(default_factory=list, metadata={"flag": "streamlit_args",
                                                                      "nargs": argparse.REMAINDER})


def app_script() -> Path | None:
    """The explorer's entry script (``vqviz_app/main.py``), or None when the ``app`` extra is not
    installed. Imports nothing: the library never imports Streamlit."""
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        return None
    spec = importlib.util.find_spec("vqviz_app")
    origin = spec.origin if spec is not None else None
    script = Path(origin).parent / "main.py" if origin else None
    return script if script is not None and script.is_file() else None


def app_command(options: AppOptions) -> list[str]:
    """The ``streamlit run`` command line that ``vqviz app`` runs: on 127.0.0.1 unless told otherwise, as
    Jupyter and TensorBoard do, since Streamlit alone listens on every interface.

    Raises
    ------
    VqvizError
        Without the app installed: the ``app`` extra (the ``vqviz_app`` package and Streamlit).
    """
    script = app_script()
    if script is None:
        raise VqvizError("the explorer is not installed: install it with `pip install \"vqviz[app]\"` "
                         "(or, in a checkout, `pip install -e \".[app]\"`) and run `vqviz app` again")
    extra = list(options.streamlit_args or [])
    argv = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", options.host or "127.0.0.1"]
    if options.port is not None:
        argv += ["--server.port", str(options.port)]
    return argv + (extra[1:] if extra[:1] == ["--"] else extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqviz",
        description="Train, evaluate, list and benchmark vqviz models, and start the explorer (`app`).")
    parser.add_argument("--version", action="version", version=f"vqviz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model and write its checkpoint",
                           description="Train a model and write its checkpoint.")
    families = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in models.trainable_names():
        cls = models.get(name)
        p = families.add_parser(name, help=(cls.__doc__ or "").strip().splitlines()[0],
                                description=(cls.__doc__ or "").strip())
        flags.add(p.add_argument_group("data and output"), TrainOptions)
        flags.add(p.add_argument_group("training"), TrainConfig)
        flags.add(p.add_argument_group(f"{name} model"), cls.Config, skip=DATA_FIELDS)
    flags.add(sub.add_parser("eval", help="load a checkpoint and print its metrics"), EvalOptions)
    flags.add(sub.add_parser("list", help="list checkpoints under folders"), ListOptions)
    flags.add(sub.add_parser("app", help="start the explorer on this machine only",
                             description="Start the explorer (`streamlit run` of vqviz_app/main.py), listening on "
                                         "127.0.0.1 "
                                         "unless --host says otherwise."), AppOptions)

    bench.add_parser(sub)
    return parser


def _download_bar(quiet: bool):
    """A byte progress bar for data downloads, opened on the first report."""
    if quiet:
        return None
    from tqdm.auto import tqdm

    state = {}

    def report(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None or done < bar.n:  # a new file
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total or None, unit="B", unit_scale=True, desc="download")
        bar.update(done - bar.n)

    return report


def _progress_callbacks(quiet: bool):
    """Trainer callbacks that drive one progress bar over the whole fit, and its closer."""
    if quiet:
        return {}, lambda: None
    from tqdm.auto import tqdm

    state = {}

    def update(p):
        bar = state.get("bar")
        if bar is None:  # opened on the first report, after any data download
            bar = state["bar"] = tqdm(total=1000, mininterval=0.5,
                                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
        bar.set_description(f"{p.stage}" + (f" {p.epoch}/{p.epochs}" if p.epochs else ""))
        if p.terms:
            bar.set_postfix({k: f"{v:.4g}" for k, v in p.terms.items()}, refresh=False)
        elif p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.update(round(p.fraction * 1000) - bar.n)

    def close():
        if "bar" in state:
            state["bar"].close()

    return {"on_step": update, "on_stage": update, "on_epoch": update}, close


def _cmd_train(args) -> int:
    from .workflow import train

    opts = TrainOptions(**flags.given(args, TrainOptions))
    train_config = TrainConfig(**flags.given(args, TrainConfig))
    config = flags.given(args, models.get(args.model).Config, skip=DATA_FIELDS)
    out = opts.out or default_out(args.model, opts.dataset)
    with distributed.session(train_config.device):  # under torchrun: one process of many
        quiet = opts.quiet or not distributed.is_main()
        callbacks, close = _progress_callbacks(quiet)
        try:
            ckpt = train(args.model, opts.dataset, data_dir=opts.data_dir, out=out,
                         train_config=train_config, callbacks=callbacks,
                         download_progress=_download_bar(quiet), overwrite=opts.overwrite, **config)
        except StopTraining:
            print("training stopped; no checkpoint written", file=sys.stderr)
            return 1
        finally:
            close()
        if distributed.is_main():
            print(f"wrote {ckpt.path}" + (f" ({distributed.world_size()} processes)" if distributed.active() else ""))
            if ckpt.previous is not None:
                print(f"note: {ckpt.previous_message}", file=sys.stderr)
            _print_metrics(ckpt.metrics)
    return 0


def _history_line(h: dict) -> str:
    """The codebook history in one line: perplexity and dead codes at its first and last entry (for L
    codebooks their mean over the codebooks)."""
    def mean(v):
        return sum(v) / len(v) if isinstance(v, list) else v

    p, d = h.get("perplexity") or [0], h.get("dead_codes") or [0]
    return (f"{len(h.get('epoch', []))} entries on {h.get('sample')} {h.get('split', '')} images: perplexity "
            f"{mean(p[0]):.1f} -> {mean(p[-1]):.1f} of {h.get('n_codes')}, dead codes {mean(d[0]):.3g} -> "
            f"{mean(d[-1]):.3g}")


def _print_metrics(metrics: dict) -> None:
    curve = metrics.get("k_curve")
    width = max((len(k) for k in metrics), default=0)
    for key, value in metrics.items():
        if key == "k_curve":
            continue
        if key == "codebook_history" and isinstance(value, dict):  # its first and last epoch, not every number
            value = _history_line(value)
        if isinstance(value, dict):  # e.g. the decoder check: its numbers, one line
            value = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"  {key:<{width}}  {shown}")
    if curve:
        cols = [c for c in ("k", "train_accuracy", "val_accuracy", "test_accuracy") if c in curve[0]]
        print("  accuracy against K:")
        print("    " + "  ".join(f"{c:>14}" for c in cols))
        for point in curve:
            print("    " + "  ".join(f"{point[c]:>14.4f}" if isinstance(point[c], float) else f"{point[c]:>14}"
                                     for c in cols))


def _cmd_eval(args) -> int:
    # Load the weights too, not only meta.json: a missing, corrupted or diverged (NaN) weights file
    # is an error (exit 2), never a checkpoint whose metrics look fine.
    meta = checkpoints.load(args.path).meta
    if args.json:
        print(json.dumps({"model": meta["model"], "dataset": meta.get("dataset"),
                          "metrics": meta.get("metrics", {})}, indent=1))
    else:
        print(f"{Path(args.path)}: {meta['model']} on {meta.get('dataset')}")
        _print_metrics(meta.get("metrics", {}))
    return 0


def _cmd_list(args) -> int:
    found = checkpoints.find(*args.roots)
    if not found:
        print(f"no checkpoints under {', '.join(args.roots)}")
    for folder in found:
        try:
            meta = checkpoints.read_meta(folder)
            m = meta.get("metrics", {})
            acc = m.get("quantizer_test_accuracy", m.get("test_accuracy"))
            extra = f"  test accuracy {acc:.4f}" if isinstance(acc, float) else ""
            print(f"{folder}  {meta['model']}  {meta.get('dataset')}{extra}")
        except VqvizError as e:
            print(f"{folder}  unreadable: {e}")
    return 0


def _cmd_app(args) -> int:
    options = AppOptions(**flags.given(args, AppOptions))
    argv = app_command(options)
    base = f"http://{options.host}:{options.port or 8501}"
    env = None
    if options.latents:  # checked before the server starts: a bad file is one line here, not a page there
        from .explorer import open_latents, view_url

        print(f"reading {options.latents}...", file=sys.stderr)
        folder = open_latents(options.latents)
        env = {**os.environ, "VQVIZ_OPEN": str(folder)}
        link = view_url(folder, checkpoints.read_meta(folder)["dataset"], base)
        print(f"saved as {folder}; its map: {link}", file=sys.stderr)
    print(f"vqviz app on {base}"
          + (" (this machine only; --host 0.0.0.0 serves others)" if options.host == "127.0.0.1" else ""),
          file=sys.stderr)
    return serve(argv, env)


def serve(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run the server ``argv`` (in ``env``, default this process's) until it exits; its exit status. Ctrl+C
    reaches the server too, which then stops by itself (within a second or two): this waits for it, without
    a traceback. A SIGTERM to this process (a service manager's, a test's) is passed on to the server, so
    that it never outlives ``vqviz app``."""
    proc = subprocess.Popen(argv, env=env)
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum)) if main else None
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings from the library (a degenerate decoder, an unmet K rule) as one plain line."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return {"train": _cmd_train, "eval": _cmd_eval, "list": _cmd_list, "bench": bench.main,
                    "app": _cmd_app}[args.command](args)
        except VqvizError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # a full disk, a read-only folder: the system's reason, in one line
            where = f" ({e.filename})" if e.filename else ""
            print(f"error: {e.strerror or e}{where}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
