"""bench ui's arithmetic and command line (the browser run itself is the benchmark, not a test)."""

from __future__ import annotations

import pytest

from vqviz import cli
from vqviz.bench import ui


def test_each_gesture_is_a_ratio_to_its_own_floor():
    samples = {"floor: slider -> image": [0.1, 0.3, 0.2], "floor: fresh tab -> image": [1.0, 2.0, 3.0],
               "mixer: slider -> mixture loaded (server decodes)": [0.3, 0.4, 0.5],
               "mixer: slider -> mixture painted (in the browser)": [0.002, 0.004, 0.003],
               "map: hover empty spot -> decoding painted (digits)": [0.02],
               "map: click -> cluster panel loaded (bytes)": [10, 30],
               "map: fresh tab -> map drawn (digits)": [3.0, 5.0, 4.0],
               "map: click -> cluster panel loaded (1,000,000 points)": [0.4],
               "map: hover -> image painted (digits)": [0.05], "map: zoom frames a second (1,000,000 points)": [12.0]}
    out = ui._summary(samples)
    assert out["mixer: slider -> mixture loaded (server decodes)"] == pytest.approx(
        {"n": 3, "median": 0.4, "min": 0.3, "max": 0.5, "ratio": 2.0})
    assert out["mixer: slider -> mixture painted (in the browser)"]["ratio"] == pytest.approx(0.015)
    assert out["map: fresh tab -> map drawn (digits)"]["ratio"] == pytest.approx(2.0)  # against the floor's tab
    assert "ratio" not in out["floor: slider -> image"] and "ratio" not in out[
        "map: click -> cluster panel loaded (bytes)"]
    assert out["map: click -> cluster panel loaded (bytes)"]["median"] == 20
    assert out["map: click -> cluster panel loaded (1,000,000 points)"]["ratio"] == pytest.approx(2.0)
    # hover and frames a second have targets of their own, not a floor
    assert "ratio" not in out["map: hover -> image painted (digits)"]
    assert "ratio" not in out["map: hover empty spot -> decoding painted (digits)"]
    assert "ratio" not in out["map: zoom frames a second (1,000,000 points)"]


def test_bench_ui_is_on_the_command_line():
    args = cli.build_parser().parse_args(["bench", "ui", "--repeats", "3", "--gc", "off"])
    assert (args.repeats, args.gc, args.bench_main) == (3, "off", ui.main)
