"""Distributed training: the helpers on two gloo processes, DDP's step against one process's,
and ``torchrun`` training SEQ on digits to the single-process accuracy, with a checkpoint the app loads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from streamlit.testing.v1 import AppTest
from torch import nn

from vqviz_app import catalog
from vqviz import checkpoints, cli, distributed
from vqviz.train import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(64, 1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    return model, x, y


def _train_tiny(model, x, y, epochs: int = 3) -> list[dict]:
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=64, lr=0.05, device="cpu"))
    loss = lambda xb, yb: {"loss": nn.functional.mse_loss(model(xb), yb)}  # noqa: E731
    return trainer.run("fit", model.parameters(), loss, (x, y), modules=(model,))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = {"rank": distributed.rank(), "world": distributed.world_size(), "main": distributed.is_main()}
        x = torch.arange(7 * 2, dtype=torch.float32).reshape(7, 2)  # 7 rows: shards of 3 and 4
        result["shard"] = [distributed.shard(7).start, distributed.shard(7).stop]
        result["mapped"] = distributed.map_shards(lambda part: part * 10 + rank, x).tolist()
        result["mean"] = distributed.all_reduce_mean({"a": float(rank), "b": 2.0 * rank})
        result["any"] = [distributed.any_true(rank == 1), distributed.any_true(False)]
        result["broadcast"] = distributed.broadcast(torch.full((2,), float(rank + 5))).tolist()
        model, xs, ys = _tiny_problem()
        result["history"] = _train_tiny(model, xs, ys)
        result["params"] = [p.detach().flatten().tolist() for p in model.parameters()]
        Path(out, f"{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, start_method="spawn")
    return [json.loads((out / f"{r}.json").read_text()) for r in (0, 1)]


def test_helpers_on_two_gloo_processes(two_ranks):
    r0, r1 = two_ranks
    assert (r0["rank"], r0["world"], r0["main"]) == (0, 2, True)
    assert (r1["rank"], r1["world"], r1["main"]) == (1, 2, False)
    assert r0["shard"] == [0, 3] and r1["shard"] == [3, 7]
    x = np.arange(14, dtype=np.float32).reshape(7, 2) * 10
    expected = np.concatenate([x[:3] + 0, x[3:] + 1])  # rank 0 mapped rows 0-2, rank 1 rows 3-6
    for r in two_ranks:
        np.testing.assert_array_equal(r["mapped"], expected)
        assert r["mean"] == {"a": 0.5, "b": 1.0}
        assert r["any"] == [True, False]
        assert r["broadcast"] == [5.0, 5.0]


def test_ddp_steps_equal_single_process_steps(two_ranks):
    """A full batch split over two ranks averages to the full-batch gradient: the same training."""
    model, x, y = _tiny_problem()
    history = _train_tiny(model, x, y)
    single = [p.detach().flatten().numpy() for p in model.parameters()]
    for r in two_ranks:
        for got, want in zip(r["params"], single):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # Each rank's epoch loss is averaged over the ranks: the full batch's loss.
        assert [h["loss"] for h in r["history"]] == pytest.approx([h["loss"] for h in history], rel=1e-5)
    assert two_ranks[0]["params"] == two_ranks[1]["params"]


def test_without_torchrun_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.requested() and not distributed.active()
    with distributed.session("cpu"):
        assert distributed.world_size() == 1 and distributed.is_main()
        x = torch.ones(3, 2)
        assert distributed.map_shards(lambda t: t * 2, x).sum() == 12
        assert distributed.all_reduce_mean({"a": 1.5}) == {"a": 1.5}
        assert distributed.shard(5) == slice(0, 5)


SEQ_ARGS = ["seq", "--dataset", "digits", "--encoder", "lae2", "--epochs", "20", "--k", "50", "--device", "cpu",
            "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def torchrun_seq(tmp_path_factory):
    """SEQ on digits, trained by two gloo processes under torchrun and by one process."""
    root = tmp_path_factory.mktemp("seq")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vqviz", "train", *SEQ_ARGS, "--out", str(root / "ddp")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote ") == 1  # rank 0 alone prints and writes
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["train", *SEQ_ARGS, "--out", str(root / "single")]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


def test_torchrun_matches_one_process(torchrun_seq):
    ddp = checkpoints.load(torchrun_seq / "ddp")
    single = checkpoints.load(torchrun_seq / "single")
    assert ddp.metrics["processes"] == 2 and "processes" not in single.metrics
    for key in ("p_e", "quantizer_test_accuracy", "quantizer_train_accuracy"):
        assert abs(ddp.metrics[key] - single.metrics[key]) <= 0.01, key
    assert ddp.metrics["quantizer_test_accuracy"] >= 0.95
    assert ddp.model.k == 50 and len(ddp.model.cluster_labels) == 50
    assert not list(torchrun_seq.glob("ddp/*.tmp*"))


def test_the_app_opens_a_torchrun_checkpoint(torchrun_seq, tmp_path, monkeypatch):
    empty = tmp_path / "bundled"
    empty.mkdir()
    monkeypatch.setattr(catalog, "BUNDLED_DIR", empty)
    monkeypatch.setenv("VQVIZ_CHECKPOINTS", str(torchrun_seq))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.selectbox(key="checkpoint").set_value(str(torchrun_seq / "ddp")).run()
        assert not at.exception, at.exception
        assert not at.error
        assert at.title[0].value == "Latent map"
        (view,) = [el for el in at.get("bidi_component") if el.proto.json]  # the map, drawn from its payload
        assert json.loads(view.proto.json)["store"]
        at.switch_page("vqviz_app/pages/metrics.py").run()
        assert not at.exception, at.exception
        shown = {m.label: m.value for m in at.metric}
        p_q = checkpoints.read_meta(torchrun_seq / "ddp")["metrics"]["quantizer_test_accuracy"]
        assert shown["Quantizer P_Q"] == f"{p_q:.2%}"
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
