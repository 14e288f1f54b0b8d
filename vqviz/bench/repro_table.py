"""The table of ``bench repro``: each figure's mean over the seeds next to the paper's, its verdict,
the text the table shows, and the markdown of ``<dataset>.md``.

Each row holds the numbers (``mean``, ``std``, ``paper``, seconds...) and, in ``shown``, the
text that the markdown and the app's Metrics page print, so that a reader of the results file
needs no rule of this module to show a row as the table does.
"""

from __future__ import annotations

import statistics

from .protocols import PROTOCOLS, Figure, Protocol


def summarise(records: list[dict], dataset: str) -> list[dict]:
    """The table's rows: each figure's mean and std over the seeds that ran every run it uses.

    A run measured with several budgets (say, 3 epochs, then the paper's 21) counts with
    its latest budget only, so the figures never mix budgets. A figure that the latest budget's
    records lack (a run saved before the figure existed, or one whose figure was withdrawn) comes
    from the newest earlier budget that has it, and its budget column says which.
    """
    rows = []
    for p in PROTOCOLS.values():
        budgets: dict[str, list[dict]] = {}  # label -> its distinct runs, the latest first
        for r in reversed([r for r in records if r["protocol"] == p.name]):
            if r["run"] not in budgets.setdefault(r["run"]["label"], []):
                budgets[r["run"]["label"]].append(r["run"])
        for fig in p.figures(dataset) if budgets else ():
            for age in range(max(len(b) for b in budgets.values())):
                row = _row(p, fig, dataset, records, {u: b[min(age, len(b) - 1)] for u, b in budgets.items()})
                if row:
                    rows.append(row)
                    break
    return rows


def _row(p: Protocol, fig: Figure, dataset: str, records: list[dict], chosen: dict[str, dict]) -> dict | None:
    """``fig``'s row from the records of the ``chosen`` run of each label; None if none has it."""
    per_seed: dict[int, dict] = {}
    for r in records:
        if r["protocol"] == p.name and r["run"] == chosen.get(r["run"]["label"]):
            per_seed.setdefault(r["seed"], {})[r["run"]["label"]] = r
    values, cpu, wall, devices, used = [], [], [], set(), []
    for seed, runs in sorted(per_seed.items()):
        if all(u in runs for u in fig.uses):
            try:
                values.append(float(fig.value({u: runs[u]["figures"] for u in fig.uses})))
            except KeyError:  # a run measured before this figure existed
                continue
            cpu.append(sum(runs[u]["cpu_seconds"] for u in fig.uses))
            wall.append(sum(runs[u].get("wall_seconds", runs[u]["cpu_seconds"]) for u in fig.uses))
            devices |= {runs[u].get("device", "cpu").split(":")[0] for u in fig.uses}
            used += [runs[u] for u in fig.uses]
    if not values:
        return None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    comparable = fig.comparable and dataset in p.datasets
    row = {"protocol": p.name, "source": fig.source, "model": fig.model, "metric": fig.metric,
           "mean": mean, "std": std, "seeds": len(values), "min": min(values), "max": max(values),
           "paper": fig.paper, "better": fig.better, "comparable": comparable, "percent": fig.percent,
           "verdict": _verdict(mean, fig, comparable, std), "note": fig.note,
           "budget": _budget([chosen[u] for u in fig.uses], used),
           "cpu_seconds": statistics.fmean(cpu), "wall_seconds": statistics.fmean(wall),
           "device": ("CPU and GPU" if "cpu" in devices else "GPU") if devices - {"cpu"} else "CPU",
           "citation": p.paper}
    row["shown"] = {"ours": format_ours(row), "paper": format_number(fig.paper, fig.percent), "time": format_time(row)}
    return row


def _verdict(mean: float, fig: Figure, comparable: bool, std: float | None = None) -> str:
    """"met" when ours is at least the paper's; also when it falls short by less than the
    standard deviation over our seeds (two seeds or more), since the seeds differ by as much."""
    if fig.paper is None:
        return "no figure in the paper"
    gap = mean - fig.paper if fig.better == "higher" else fig.paper - mean
    shown = f"{100 * abs(gap):.2f} points" if fig.percent else f"{abs(gap):.3g}"
    if not comparable:
        return f"other data: {'better' if gap >= 0 else 'worse'} by {shown}"
    if gap >= 0:
        return "met"
    if std is not None and -gap <= std:
        return f"met within the seeds' spread (short by {shown})"
    return f"short by {shown}"


def _budget(runs: list[dict], records: list[dict] = ()) -> str:
    if not any(r["model"] for r in runs):
        return "no training"
    epochs = "/".join(map(str, sorted({r["epochs"] for r in runs})))
    batches = "/".join(map(str, sorted({r["batch_size"] for r in runs})))
    ran = sorted({int(rec["figures"]["epochs_run"]) for rec in records if "epochs_run" in rec["figures"]})
    shown = "-".join(map(str, sorted({ran[0], ran[-1]}))) if ran else "?"
    cut = ", stopped by the time limit" if any(rec["figures"].get("time_limited") for rec in records) else ""
    if any(r.get("until_plateau") for r in runs):
        return f"until plateau, at most {epochs} ep. (ran {shown}{cut}), batch {batches}"
    if cut:
        return f"at most {epochs} ep. (ran {shown}{cut}), batch {batches}"
    return f"{epochs} ep., batch {batches}"


def markdown(rows: list[dict], dataset: str, records: list[dict] = ()) -> str:
    """The table of ``rows`` in GitHub markdown: one table per protocol, its differences above it,
    and below it, from ``records``, each seed of the runs the protocol lists in ``per_seed``."""
    out = []
    for name, p in PROTOCOLS.items():
        mine = [r for r in rows if r["protocol"] == name]
        if not mine:
            continue
        out.append(f"#### {p.paper}, on {dataset}\n\nPaper's budget: {p.paper_epochs}. Differences: {p.differences}.\n")
        out.append("| Figure | Model | Metric | Ours (mean ± std, seeds) | Paper | Verdict | Our budget | Time |\n"
                   "|---|---|---|---|---|---|---|---|")
        for r in mine:
            verdict = r["verdict"] + (f" ({r['note']})" if r["note"] else "")
            out.append("| " + " | ".join([r["source"], r["model"], r["metric"], r["shown"]["ours"],
                                          r["shown"]["paper"] or "–", verdict, r["budget"], r["shown"]["time"]])
                       + " |")
        out.append("")
        out += _per_seed(p, records)
    return "\n".join(out)


def _per_seed(p: Protocol, records: list[dict]) -> list[str]:
    """The notes on each seed of ``p.per_seed``'s runs (their latest budget), a table each."""
    out = []
    for label, columns in p.per_seed:
        mine = [r for r in records if r["protocol"] == p.name and r["run"]["label"] == label]
        if not mine:
            continue
        latest = mine[-1]["run"]
        mine = sorted((r for r in mine if r["run"] == latest), key=lambda r: r["seed"])
        out.append(f"Notes: {label}, each seed ({_budget([latest], mine)}).\n")
        out.append("| seed | " + " | ".join(title for _, title, _ in columns) + " |")
        out.append("|---" * (len(columns) + 1) + "|")
        for r in mine:
            cells = [format_number(r["figures"].get(key), percent) or "–" for key, _, percent in columns]
            out.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def format_number(value: float | None, percent: bool) -> str:
    """A figure as the table prints it: "97.81 %", "0.5541", "81.0", "40"; "" for None."""
    if value is None:
        return ""
    if float(value).is_integer() and not percent:
        return str(int(value))
    if percent:
        return f"{100 * value:.2f} %"
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"


def format_ours(r: dict) -> str:
    """A table row's mean ± std and its number of seeds, e.g. "97.81 % ± 0.12 % (3)", "241.0 ± 0.22 (3)";
    from 5 seeds on, their range too: "77.10 % ± 2.6 % (10; 70.83 – 80.12 %)"."""
    text = format_number(r["mean"], r["percent"])
    if r["std"] is not None:  # two significant figures: a spread is never known better
        text += f" ± {100 * r['std']:.2g} %" if r["percent"] else f" ± {r['std']:.2g}"
    if r["seeds"] >= 5 and "min" in r:
        low, high = (format_number(r[k], r["percent"]).removesuffix(" %") for k in ("min", "max"))
        return f"{text} ({r['seeds']}; {low} – {high}{' %' if r['percent'] else ''})"
    return f"{text} ({r['seeds']})"


def format_time(row: dict) -> str:
    """A row's training time: CPU seconds ("14 min"), or wall seconds where a GPU ran it ("3 min on a GPU"),
    or some of its seeds ("17 min wall, on CPU and GPU")."""
    if row.get("device") == "GPU":
        return f"{format_duration(row['wall_seconds'])} on a GPU"
    if row.get("device") == "CPU and GPU":
        return f"{format_duration(row['wall_seconds'])} wall, on CPU and GPU"
    return format_duration(row["cpu_seconds"])


def format_duration(seconds: float) -> str:
    """Seconds as "95 s" or "12 min"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
