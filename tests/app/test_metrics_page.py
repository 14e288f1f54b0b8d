"""The Metrics page: the K curve, the downstream table computed in the background, the benchmark."""

from __future__ import annotations

import json

from driving import ROOT, SHIPPED, figures, open_app, settled, variant

from vqviz_app import catalog
from vqviz import checkpoints, cli


def test_metrics_show_the_k_curve_and_the_downstream_table():
    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-cae4")
    at = open_app("metrics", settle=True)
    assert at.title[0].value == "Metrics" and not at.error
    values = {m.label: m.value for m in at.metric}
    assert values["Encoder P_E"] == f"{meta['metrics']['p_e']:.2%}"
    assert values["K picked by the rule"] == str(meta["metrics"]["k_rule"])
    (fig,) = figures(at)
    assert [len(t["x"]) for t in fig["data"]] == [len(meta["metrics"]["k_curve"])] * 2
    saved, table = (d.value for d in at.dataframe)
    assert dict(zip(saved["metric"], saved["value"]))["k_rule"] == meta["metrics"]["k_rule"]
    assert list(table["checkpoint"]) == list(SHIPPED)
    assert (table["k-means accuracy"] > 0.5).all() and (table["linear probe"] > 0.8).all()
    # Picking the other checkpoint in the sidebar changes the curve.
    lae2 = "seq-digits-lae2"  # the picker shows it as "seq-digits-lae2 · seq · digits"
    at.selectbox(key="checkpoint").set_value(str(catalog.BUNDLED_DIR / lae2)).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Encoder P_E"] != values["Encoder P_E"]


def _bench_record(protocol, label, seed, figures):
    run = {"label": label, "model": "seq", "config": {}, "epochs": 3, "batch_size": 32, "lr": 1e-3}
    return {"protocol": protocol, "run": run, "seed": seed, "figures": figures, "cpu_seconds": 60.0}


def test_metrics_show_the_benchmark_next_to_the_papers(tmp_path):
    ks = [10, 50, 120]
    runs = [_bench_record("seq", enc, seed, {"p_e": p_e, "k_rule": 50, "test_accuracy_kmax": acc[-1],
                                             "train_accuracy_kmax": 0.995,
                                             "k_curve": [{"k": k, "test_accuracy": a} for k, a in zip(ks, acc)]})
            for seed in (0, 1)
            for enc, p_e, acc in (("lae2", 0.98, [0.90, 0.97, 0.979]), ("cae4", 0.992, [0.95, 0.99, 0.991]))]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mnist.json").write_text(json.dumps({"dataset": "mnist", "runs": runs}))
    # What bench repro publishes: the table and the curves written from the runs, as the app reads them.
    assert cli.main(["bench", "repro", "--dataset", "mnist", "--out", str(tmp_path / "results"), "--table-only"]) == 0
    at = open_app("metrics")
    assert at.segmented_control(key="bench_dataset").value == "mnist"
    curves = next(f for f in figures(at) if "Fig. 3" in f["layout"].get("title", {}).get("text", ""))
    assert [t["name"] for t in curves["data"]] == ["LAE-2 P_Q", "LAE-2 P_E", "CAE-4 P_Q", "CAE-4 P_E",
                                                   "paper, best: 99.0%"]  # in the legend: no curve crosses it
    assert not curves["layout"].get("annotations")
    assert curves["data"][2]["x"] == ks and curves["data"][1]["y"] == [0.98, 0.98]
    table = at.dataframe[-1].value
    pq = "quantizer accuracy P_Q (test), largest K"
    row = table[(table["model"] == "CAE-4") & (table["figure"] == pq)].iloc[0]
    assert row["ours"] == "99.10 % ± 0 % (2)" and row["paper"] == "99.00 %" and row["verdict"].startswith("met")
    lae2 = table[(table["model"] == "LAE-2") & (table["figure"] == "encoder accuracy P_E (test)")].iloc[0]
    assert lae2["paper"] == "" and lae2["verdict"] == "no figure in the paper"
    assert row["time"] == "60 s" and row["source"] == "Le, Ko and Chen, SEQ (arXiv 1910.11067), Fig. 3"


def test_a_results_file_of_an_older_bench_repro_says_how_to_rewrite_it(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mnist.json").write_text(json.dumps({"dataset": "mnist", "runs": [], "table": []}))
    at = open_app("metrics")
    (warning,) = [w.value for w in at.warning if "cannot be read" in w.value]
    assert "no 'seq_curves'" in warning and "bench repro --dataset mnist --table-only" in warning
    assert any("No benchmark results" in i.value for i in at.info)


def test_metrics_without_benchmark_results_say_how_to_make_them():
    at = open_app("metrics")
    assert any("bench repro" in i.value for i in at.info)


def test_a_corrupt_benchmark_file_is_a_warning(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mnist.json").write_text("{broken")
    at = open_app("metrics")
    assert any("cannot be read" in w.value for w in at.warning)




def test_the_downstream_table_fills_in_from_the_background(tmp_path, monkeypatch):
    import threading

    from vqviz_app import jobs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no scores kept by an earlier test

    gate = threading.Event()
    scores = jobs.analysis.downstream_scores

    def slow(*args, **kwargs):
        gate.wait(60)
        return scores(*args, **kwargs)

    monkeypatch.setattr(jobs.analysis, "downstream_scores", slow)
    at = open_app("metrics", settle=False)
    assert not at.exception and not at.error
    progress = [p for p in at.get("progress")]
    assert progress and "0 of 2 ready" in progress[0].proto.text
    assert not list((tmp_path / "cache").rglob("*.json"))
    table = at.dataframe[-1].value
    assert list(table["checkpoint"]) == list(SHIPPED) and set(table["problem"]) == {"computing…"}
    assert any(m.label == "Encoder P_E" for m in at.metric)  # the rest of the page is there meanwhile
    gate.set()
    for _ in range(3):  # a loaded machine can need another rerun after the jobs are in
        settled(at)
        table = at.dataframe[-1].value
        if "problem" not in table:
            break
    assert "problem" not in table and (table["linear probe"] > 0.8).all()


def test_a_k_that_did_not_meet_the_rule_is_said_so(tmp_path, monkeypatch):
    meta = checkpoints.read_meta(ROOT / "vqviz_app" / "checkpoints" / "seq-digits-lae2")
    unmet = variant(tmp_path, monkeypatch, "unmet", metrics={**meta["metrics"], "k_rule_met": False})
    at = open_app("metrics")
    assert not any("No K of the sweep met the rule" in i.value for i in at.info)
    at.selectbox(key="checkpoint").set_value(str(unmet)).run()
    assert not at.exception and not at.error
    assert any("No K of the sweep met the rule P_Q > P_E − ε" in i.value for i in at.info)


def test_downstream_scores_are_kept_across_a_restart(tmp_path, monkeypatch):
    from vqviz_app import cache, jobs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    at = open_app("metrics", settle=True)
    for _ in range(3):  # a loaded machine can need another rerun after the jobs are in
        if len(list((tmp_path / "cache").rglob("*.json"))) == 2:
            break
        settled(at)
    first = at.dataframe[-1].value
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2  # one file per checkpoint
    cache.clear()  # what a restart forgets

    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(jobs.analysis, "downstream_scores", fail)
    again = open_app("metrics", settle=True).dataframe[-1].value
    assert again.equals(first)
