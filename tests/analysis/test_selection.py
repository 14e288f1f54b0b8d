"""Selection geometry: rows from a plotly selection, boxes and lassos, and the rows a large map draws."""

from __future__ import annotations

import numpy as np

from vqviz_app.figures import map_figure
from vqviz.analysis import PointTable, drawn_rows, map_rows, selected_rows


def _table(n: int, k: int = 50) -> PointTable:
    rng = np.random.default_rng(0)
    return PointTable(rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 10, n), rng.integers(0, k, n),
                      np.arange(k) % 10, np.arange(k), np.zeros(n, np.float32), float(np.log(k)))


def test_selected_rows_reads_customdata_of_every_shape():
    sel = {"points": [{"customdata": [5, 1, 2]}, {"customdata": {"0": 3, "1": 0}}, {"customdata": 5},
                      {"x": 0.0}]}
    assert selected_rows(sel).tolist() == [3, 5]
    assert selected_rows(None).tolist() == []


def test_a_lean_figure_turns_curve_and_point_index_back_into_rows():
    n = 500
    table = _table(n)
    xy = np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32)
    classes = tuple(str(c) for c in range(10))
    for colour in ("label", "correct", "cluster"):
        fig, traces = map_figure(xy, table, classes, colour)
        assert all(t.customdata is None for t in fig.data)
        for c, (trace, rows) in enumerate(zip(fig.data, traces)):
            np.testing.assert_array_equal(np.stack([trace.x, trace.y], 1), xy[rows])  # point i is row rows[i]
        assert sorted(np.concatenate(traces)) == list(range(n))
    fig, traces = map_figure(xy, table, classes, "label")
    c = 4
    points = [{"curve_number": c, "point_index": i} for i in (0, 2)] + [{"curve_number": 99, "point_index": 0}]
    np.testing.assert_array_equal(selected_rows({"points": points}, traces), np.sort(traces[c][[0, 2]]))
    # The figure does not depend on a selection: the same map, the same figure.
    assert map_figure(xy, table, classes, "label")[0].to_json() == fig.to_json()


def test_a_large_map_draws_a_fixed_sample_with_the_picked_rows_on_top():
    n, limit = 20_000, 1_000
    rows = drawn_rows(n, limit=limit)
    assert len(rows) == limit and np.array_equal(rows, drawn_rows(n, limit=limit))  # the same sample every time
    selected = np.array([3, 17, 19_999])
    big = np.arange(0, n, 2)
    rows = drawn_rows(n, selected, big, limit)
    assert len(rows) == limit and set(selected) <= set(rows) and limit // 2 <= np.isin(rows, big).sum() < 0.8 * limit
    np.testing.assert_array_equal(drawn_rows(500, selected[:2], limit=limit), np.arange(500))
    table = _table(n)
    xy = np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32)
    fig, traces = map_figure(xy, table, tuple("0123456789"), "label", selected, limit=limit)
    assert fig.data[-1].name == "picked" and sorted(traces[-1]) == sorted(selected)
    assert len(np.concatenate(traces[:-1])) == limit


def test_a_box_or_a_lasso_selects_the_points_left_out_of_the_figure_too():
    xy = np.random.default_rng(2).uniform(-1, 1, size=(50_000, 2)).astype(np.float32)
    box = {"x": [0.5, 0.0], "y": [0.0, 0.5]}
    rows = map_rows({"points": [], "box": [box], "lasso": []}, xy)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= 0.5) & (xy[:, 1] >= 0) & (xy[:, 1] <= 0.5)
    np.testing.assert_array_equal(rows, np.flatnonzero(inside))
    triangle = {"x": [0.0, 1.0, 0.0], "y": [0.0, 0.0, 1.0]}
    rows = map_rows({"rows": [7], "lasso": [triangle]}, xy)
    inside = (xy[:, 0] > 0) & (xy[:, 1] > 0) & (xy.sum(1) < 1)
    np.testing.assert_array_equal(rows, np.union1d(np.flatnonzero(inside), [7]))
    assert len(map_rows(None, xy)) == 0
    assert map_rows({"rows": [-1, 10**9]}, xy).tolist() == []  # rows outside the map are dropped
