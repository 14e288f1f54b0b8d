"""`bench repro`: the quick run on digits writes a well-formed, resumable result file."""

import json

import pytest

from vqviz import cli, metrics
from vqviz.bench import repro, repro_table


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert cli.main(["bench", "repro", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_writes_every_protocol(quick, capsys):
    body = json.loads((quick / "digits.json").read_text())
    assert body["dataset"] == "digits"
    planned = repro.plan("digits", quick=True)
    assert len(body["runs"]) == len(planned)
    assert {r["protocol"] for r in body["runs"]} == set(repro.PROTOCOLS)
    for record in body["runs"]:
        assert record["seed"] == 0 and record["run"]["epochs"] == 1
        assert record["cpu_seconds"] > 0 and record["wall_seconds"] > 0
        assert record["figures"]
    for row in body["table"]:
        assert {"protocol", "source", "model", "metric", "mean", "std", "seeds", "paper", "verdict", "budget",
                "cpu_seconds"} <= set(row)
        assert row["seeds"] == 1 and row["std"] is None
        if row["percent"]:
            assert 0.0 <= row["mean"] <= 1.0, row
    for row in body["table"]:  # what the app's Metrics page shows, as plain data
        assert row["citation"] == repro.PROTOCOLS[row["protocol"]].paper
        assert row["shown"] == {"ours": repro_table.format_ours(row), "paper": repro_table.format_number(
            row["paper"], row["percent"]), "time": repro_table.format_time(row)}
    assert set(body["seq_curves"]) == {"LAE-2", "LAE-4", "CAE-4, pooled", "CAE-4", "CAE-4, pooled, all training data"}
    assert all(c["k"] == list(repro.QUICK["k_sweep"]) and len(c["test_accuracy"]) == len(c["k"])
               for c in body["seq_curves"].values())
    assert body["seq_paper_best"] is None  # the paper has no figure on digits
    table = (quick / "digits.md").read_text()
    assert table.count("| Figure | Model |") == len(repro.PROTOCOLS)
    assert "LAE-2" in table and "soft VQ-VAE" in table and "SK-VQ-GP / VQ" in table


def test_quick_figures_are_sane(quick):
    table = json.loads((quick / "digits.json").read_text())["table"]
    rows = {(r["protocol"], r["model"], r["metric"]): r for r in table}
    # One epoch of SEQ's LAE-2 on digits already classifies far above chance (10 %).
    assert rows[("seq", "LAE-2", "encoder accuracy P_E (test)")]["mean"] > 0.5
    # Every soft VQ-VAE table row also has the probe on its latents as they are, beside the standardised one.
    for model in ("AE", "soft VQ-VAE"):
        assert rows[("softvq", model, "linear probe accuracy, unstandardised")]["mean"] > 0.5
    # Paper figures are measured on MNIST/Fashion-MNIST, never "met" on digits.
    assert all(not r["verdict"].startswith(("met", "short")) for r in rows.values())


def test_resume_skips_done_runs(quick, capsys):
    before = (quick / "digits.json").read_text()
    assert cli.main(["bench", "repro", "--quick", "--out", str(quick), "--only", "dvq"]) == 0
    assert "0 runs to measure" in capsys.readouterr().err
    assert json.loads((quick / "digits.json").read_text())["runs"] == json.loads(before)["runs"]


def test_table_only_runs_nothing(quick, capsys, tmp_path):
    runs = json.loads((quick / "digits.json").read_text())["runs"]
    (quick / "digits.md").unlink()
    assert cli.main(["bench", "repro", "--quick", "--out", str(quick), "--table-only"]) == 0
    assert "| Figure | Model |" in capsys.readouterr().out and (quick / "digits.md").is_file()
    assert json.loads((quick / "digits.json").read_text())["runs"] == runs
    assert cli.main(["bench", "repro", "--dataset", "mnist", "--out", str(tmp_path), "--table-only"]) == 2
    assert "holds no runs yet" in capsys.readouterr().err


def test_table_only_rewrites_an_older_file_with_what_the_app_shows_and_keeps_its_runs_and_machine(quick, tmp_path):
    body = json.loads((quick / "digits.json").read_text())
    for row in body["table"]:  # as bench repro wrote it before the file held the text of each row
        del row["shown"], row["citation"]
    del body["seq_curves"], body["seq_paper_best"]
    body["machine"] = {"platform": "the machine that ran them"}
    (tmp_path / "digits.json").write_text(json.dumps(body, indent=1))
    assert cli.main(["bench", "repro", "--quick", "--out", str(tmp_path), "--table-only"]) == 0
    again = json.loads((tmp_path / "digits.json").read_text())
    assert again["runs"] == body["runs"] and again["machine"] == body["machine"]
    assert [{k: v for k, v in r.items() if k not in ("shown", "citation")} for r in again["table"]] == body["table"]
    assert all(r["shown"]["ours"] and r["citation"] for r in again["table"]) and again["seq_curves"]
    assert (tmp_path / "digits.md").read_text() == (quick / "digits.md").read_text()


def test_summary_uses_the_latest_budget_only():
    def record(seed, epochs, value):
        run = {"label": "VAE", "model": "vae", "config": {}, "epochs": epochs, "batch_size": 128, "lr": 1e-3}
        return {"protocol": "clustervae", "run": run, "seed": seed, "cpu_seconds": 1.0,
                "figures": {"test_bce_per_image": value}}

    rows = repro_table.summarise([record(0, 3, 100.0), record(1, 3, 102.0), record(0, 10, 80.0), record(1, 10, 82.0),
                            record(2, 10, 84.0)], "mnist")
    (row,) = rows
    assert row["seeds"] == 3 and row["mean"] == pytest.approx(82.0) and row["std"] == pytest.approx(2.0)
    assert row["paper"] == pytest.approx(80.97) and row["verdict"] == "met within the seeds' spread (short by 1.03)"


def test_a_figure_the_latest_budget_lacks_comes_from_the_newest_budget_that_has_it():
    def record(epochs, figures):
        run = {"label": "VQ + CE + SK", "model": "skvq", "config": {}, "epochs": epochs, "batch_size": 256,
               "lr": 1e-3, "until_plateau": False}
        return {"protocol": "skvq", "run": run, "seed": 0, "cpu_seconds": 1.0, "figures": figures}

    full = {"test_accuracy": 0.80, "usage_entropy_fraction": 0.74, "content_entropy_fraction": 0.79}
    rows = repro_table.summarise([record(3, {**full, "content_entropy_fraction": 0.5}), record(12, full),
                            record(74, {"test_accuracy": 0.86, "usage_entropy_fraction": 0.79})], "fashion-mnist")
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["test accuracy"]["mean"] == 0.86 and by_metric["test accuracy"]["budget"].startswith("74 ep.")
    content = by_metric["assignment entropy / ln K (nearest codeword, positions with content)"]
    assert content["mean"] == 0.79 and content["budget"] == "12 ep., batch 256"


def test_a_run_until_its_plateau_shows_its_ceiling_and_the_epochs_it_ran():
    run = {"label": "VAE", "model": "vae", "config": {}, "epochs": 50, "batch_size": 128, "lr": 1e-3,
           "until_plateau": True}
    records = [{"run": run, "figures": {"epochs_run": ran}} for ran in (46, 50)]
    assert repro_table._budget([run], records) == "until plateau, at most 50 ep. (ran 46-50), batch 128"
    assert repro_table._budget([run], records[:1]) == "until plateau, at most 50 ep. (ran 46), batch 128"


@pytest.mark.parametrize("argv, message", [
    (["--only", "nope"], "unknown protocol 'nope'"),
    (["--dataset", "mnist", "--only", "skvq"], "matches no run on mnist"),
    (["--seeds", "0"], "at least 1"),
])
def test_bad_arguments(tmp_path, capsys, argv, message):
    assert cli.main(["bench", "repro", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_results_file(tmp_path, capsys):
    (tmp_path / "digits.json").write_text("{not json")
    assert cli.main(["bench", "repro", "--quick", "--out", str(tmp_path)]) == 2
    assert "not a results file" in capsys.readouterr().err
    assert (tmp_path / "digits.json").read_text() == "{not json"


def test_a_verdict_counts_a_gap_within_the_seeds_spread_as_met():
    from vqviz.bench.protocols import Figure
    from vqviz.bench.repro_table import _verdict

    fig = Figure("Table 1", "AE", "k-means accuracy", lambda r: 0.0, (), paper=0.5261, percent=True)
    assert _verdict(0.53, fig, True) == "met"
    assert _verdict(0.52, fig, True) == "short by 0.61 points"  # one seed: no spread to allow for
    assert _verdict(0.52, fig, True, std=0.01).startswith("met within the seeds' spread (short by 0.61")
    assert _verdict(0.50, fig, True, std=0.01) == "short by 2.61 points"
    lower = Figure("Table 1", "VAE", "BCE", lambda r: 0.0, (), paper=80.97, better="lower")
    assert _verdict(81.0, lower, True, std=0.5).startswith("met within") and _verdict(80.0, lower, True) == "met"


def test_runs_saved_before_a_run_field_existed_count_with_the_new_ones(tmp_path):
    old = {"label": "VAE", "model": "vae", "config": {}, "epochs": 10, "batch_size": 128, "lr": 1e-3}
    new = {**old, "until_plateau": False}
    records = [{"protocol": "clustervae", "run": run, "seed": seed, "cpu_seconds": 1.0,
                "figures": {"test_bce_per_image": value}} for run, seed, value in ((old, 0, 80.0), (new, 1, 82.0))]
    path = tmp_path / "mnist.json"
    path.write_text(json.dumps({"runs": records}))
    (row,) = repro_table.summarise(repro._load(path), "mnist")
    assert row["seeds"] == 2 and row["mean"] == pytest.approx(81.0)


def test_the_seq_curves_are_the_first_seeds():
    from vqviz.bench.protocols.seq import fig3_curves

    def record(label, seed, acc):
        curve = [{"k": 10, "test_accuracy": acc / 2}, {"k": 20, "test_accuracy": acc}]
        return {"protocol": "seq", "run": {"label": label}, "seed": seed, "figures": {"p_e": acc, "k_curve": curve}}

    curves = fig3_curves([record("cae4", 1, 0.9), record("cae4", 0, 0.8), record("lae2", 2, 0.7)])
    assert list(curves) == ["LAE-2", "CAE-4"]  # in the paper's order
    assert curves["CAE-4"] == {"k": [10, 20], "test_accuracy": [0.4, 0.8], "p_e": 0.8}
    assert curves["LAE-2"]["p_e"] == 0.7


def test_seq_holds_out_a_validation_split_except_in_the_authors_all_data_diagnostic():
    planned = {run.label: run.config for _, run in repro.plan("fashion-mnist", only="seq")}
    assert all(planned[e]["val_fraction"] == 0.1 for e in ("lae2", "lae4", "cae4_pool", "cae4"))
    assert planned["cae4_pool_all"] == {**planned["cae4_pool"], "val_fraction": 0.0}


def test_an_epochs_override_is_the_ceiling_of_a_run_trained_until_its_plateau():
    planned = dict((run.label, run) for _, run in repro.plan("mnist", epochs=50, only="clustervae,softvq"))
    assert planned["VAE"].epochs == 50 and planned["VAE"].until_plateau  # the cluster-VAE protocol's
    assert planned["AE"].epochs == 50 and not planned["AE"].until_plateau  # a fixed budget stays fixed


def test_a_time_limit_stops_the_first_stage_and_the_decoder_keeps_its_budget():
    from dataclasses import replace

    from vqviz import data
    from vqviz.bench.protocols import Run
    from vqviz.models import build
    from vqviz.train import TrainConfig, Trainer

    train, test = data.load("digits", "train"), data.load("digits", "test")
    run = Run("VQ + CE + SK", "skvq", {"encoder": "cnn", "latent_dim": 8, "codebook_size": 16, "spatial": True,
                                       "quantizer": "sinkhorn", "decoder_epochs": 2}, epochs=5, batch_size=256)
    record = repro.measure("skvq", run, 0, train, test, device="cpu", time_limit=0.0)
    assert record["figures"]["epochs_run"] == 1 and record["figures"]["time_limited"]
    assert repro_table._budget([record["run"]], [record]) == \
        "at most 5 ep. (ran 1, stopped by the time limit), batch 256"
    # A run that ends before its limit is not marked, nor is one whose limit passes in its last epoch.
    for limit in (1e6, 0.0):
        one = repro.measure("skvq", replace(run, epochs=1), 0, train, test, device="cpu", time_limit=limit)
        assert "time_limited" not in one["figures"] and "epochs_run" not in one["figures"]
    trainer = Trainer(TrainConfig(epochs=5, batch_size=256, device="cpu"))
    trainer.converged = repro._OutOfTime(0.0)
    build("skvq", in_shape=train.shape, n_classes=train.n_classes, **run.config).fit(train, test, trainer)
    assert len(trainer.history["classifier"]) == 1 and len(trainer.history["decoder"]) == 2


def test_a_run_on_a_gpu_shows_its_wall_time_on_the_gpu():
    run = {"label": "VAE", "model": "vae", "config": {}, "epochs": 10, "batch_size": 128, "lr": 1e-3}
    records = [{"protocol": "clustervae", "run": run, "seed": 0, "cpu_seconds": 900.0, "wall_seconds": 180.0,
                "device": "cuda:0", "figures": {"test_bce_per_image": 80.0}}]
    (row,) = repro_table.summarise(records, "mnist")
    assert row["device"] == "GPU" and repro_table.format_time(row) == "3 min on a GPU"
    (row,) = repro_table.summarise([{**records[0], "device": "cpu"}], "mnist")
    assert row["device"] == "CPU" and repro_table.format_time(row) == "15 min"
    (row,) = repro_table.summarise([records[0], {**records[0], "seed": 1, "device": "cpu", "wall_seconds": 900.0}],
                                   "mnist")
    assert row["device"] == "CPU and GPU" and repro_table.format_time(row) == "9 min wall, on CPU and GPU"


def test_the_raw_data_row_scores_the_pixels_and_its_seed_moves_only_k_means(digits):
    train, test = digits
    ((_, run),) = repro.plan("mnist", epochs=5, only="softvq:raw data")
    assert (run.model, run.epochs) == ("", 0)  # nothing to train, whatever the budget
    records = [repro.measure("softvq", run, seed, train, test, quick=True) for seed in (0, 1)]
    pixels = {s.split: s.images.reshape(len(s.images), -1) for s in (train, test)}
    probe = metrics.linear_probe(pixels["train"], train.labels, pixels["test"], test.labels, max_iter=100)
    for seed, record in zip((0, 1), records):
        figures = record["figures"]
        assert figures["linear_probe"] == probe and "test_bce_per_image" not in figures
        kmeans = metrics.kmeans_scores(pixels["test"], test.labels, 10, random_state=seed, n_init=5)
        assert figures["kmeans_accuracy"] == kmeans["kmeans_accuracy"]
        assert 0.5 < figures["linear_probe_unstandardised"] <= 1.0
        assert 0.5 < figures["kmeans_accuracy_sklearn"] <= 1.0 and 0.5 < figures["linear_probe_unpenalised"] <= 1.0
    rows = {r["metric"]: r for r in repro_table.summarise(records, "mnist") if r["model"] == "raw data"}
    assert rows["linear probe accuracy"]["budget"] == "no training" and rows["linear probe accuracy"]["seeds"] == 2
    assert rows["k-means NMI"]["paper"] == 0.5008 and rows["linear probe accuracy, unstandardised"]["paper"] is None


def test_ten_seeds_show_their_range_and_the_notes_list_each_seed():
    def record(seed, acc, sk, codes):
        run = {"label": "soft VQ-VAE", "model": "soft_vqvae", "config": {}, "epochs": 21, "batch_size": 32,
               "lr": 3e-4, "until_plateau": False}
        return {"protocol": "softvq", "run": run, "seed": seed, "cpu_seconds": 900.0,
                "figures": {"kmeans_accuracy": acc, "kmeans_accuracy_sklearn": sk, "codes_in_use": codes}}

    accs = [0.7951, 0.7844, 0.7573, 0.70, 0.76, 0.7385, 0.77, 0.78, 0.79, 0.80]
    records = [record(s, a, a + 0.001, 110 + s) for s, a in enumerate(accs)]
    rows = {r["metric"]: r for r in repro_table.summarise(records, "mnist") if r["model"] == "soft VQ-VAE"}
    acc = rows["k-means accuracy (test z_e)"]
    assert (acc["seeds"], acc["min"], acc["max"]) == (10, 0.70, 0.80)
    assert repro_table.format_ours(acc).endswith("(10; 70.00 – 80.00 %)")
    assert rows["codewords in use (test), of 128"]["mean"] == pytest.approx(114.5)
    assert repro_table.format_ours(rows["codewords in use (test), of 128"]).endswith("(10; 110 – 119)")
    md = repro_table.markdown(list(rows.values()), "mnist", records)
    notes = md[md.index("Notes: soft VQ-VAE, each seed (21 ep., batch 32)."):].splitlines()
    seeds = [line for line in notes if line.startswith("| ") and line[2].isdigit()]
    assert len(seeds) == 10 and seeds[3].startswith("| 3 | 70.00 % | 70.10 % | – |") and "| 113 |" in seeds[3]
    assert repro_table.format_ours({**acc, "seeds": 3}).endswith("(3)")  # three seeds: no range
