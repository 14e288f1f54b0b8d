"""bench perf: a --quick run prints every measure and writes well-formed figures; bad flags are clear errors.

No time or ratio is asserted: a benchmark's figures depend on the machine.
"""

import json
import math

import pytest
import torch

from vqviz.cli import main

#: JSON key -> the start of its row in the printed table.
CPU_ROWS = {
    "train": "training, Trainer.run vs bare loop",
    "kmeans_time": "k-means time, ours vs scikit-learn",
    "kmeans_inertia": "k-means inertia, ours vs scikit-learn",
    "decode_1": "decode 1 latent, decode_array vs decode",
    "decode_100": "decode 100 latents, decode_array vs decode",
    "decode_per_latent": "decode per latent, batch of 100 vs 1",
    "tsne": "t-SNE, project vs openTSNE",
    "umap": "UMAP, project vs umap-learn",
    "projection_cache": "t-SNE map, cached vs cold",
}
#: The measures that run again on a GPU (t-SNE, UMAP and scikit-learn are CPU-only).
GPU_KEYS = {"train", "kmeans_time", "kmeans_inertia", "decode_1", "decode_100", "decode_per_latent"}


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.slow  # a benchmark run, as bench repro --quick
def test_quick_run_prints_every_measure_and_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "perf.json"
    assert main(["bench", "perf", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("machine:") and "thread(s)" in text
    rows = [line for line in text.splitlines() if line.startswith(tuple(CPU_ROWS.values()))]
    assert len(rows) == len(CPU_ROWS) + len(GPU_KEYS) * torch.cuda.is_available()
    assert f"wrote {out}" in text

    figures = json.loads(out.read_text())
    assert figures["settings"]["quick"] and figures["settings"]["n"] == 200
    assert figures["machine"]["cpus"] >= 1 and figures["machine"]["torch_threads"] >= 1
    expected = {"cpu": set(CPU_ROWS)} | ({"cuda": GPU_KEYS} if torch.cuda.is_available() else {})
    assert {device: set(measures) for device, measures in figures["measures"].items()} == expected
    for device, measures in figures["measures"].items():
        for key, row in measures.items():
            assert all(_positive(row[f]) for f in ("ours", "reference", "ratio")), (device, key, row)
            assert row["ratio"] == pytest.approx(row["ours"] / row["reference"])
            assert row["unit"] in ("s", "samples/s", "")
            assert row["ours_runs"] and all(_positive(v) for v in row["ours_runs"] + row["reference_runs"])
    # The reference computes what ours computes: the same images and maps.
    cpu = figures["measures"]["cpu"]
    for key in ("decode_1", "decode_100", "tsne", "umap", "projection_cache"):
        assert cpu[key]["difference"] < 1e-3, key


@pytest.mark.parametrize("argv, message", [
    (["--n", "2"], "--n must be at least 20"),
    (["--quick", "--n", "100000"], "exceeds the 1,797 images of digits"),
    (["--quick", "--k", "500"], "more clusters than the 200 images"),
    (["--quick", "--repeats", "0"], "--repeats must be at least 1"),
    (["--quick", "--encoder", "resnet"], "unknown encoder"),
    (["--quick", "--dataset", "imagenet"], "imagenet"),
])
def test_bad_settings_are_one_line_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "perf.json"
    assert main(["bench", "perf", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and message in err and "Traceback" not in err
    assert not out.exists()


def test_json_path_that_is_a_folder_is_refused_before_measuring(tmp_path, capsys):
    assert main(["bench", "perf", "--quick", "--json", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "is a folder" in captured.err and "machine:" not in captured.out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_device_cuda_without_a_gpu_is_an_error(capsys):
    assert main(["bench", "perf", "--quick", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
