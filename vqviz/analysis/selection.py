"""Selection geometry of a 2-D map: which rows a click, a box or a lasso picks, and
which rows a figure of a large map draws."""

from __future__ import annotations

import numpy as np

#: The most points a map figure draws: past it, a fixed random sample with the selection on top.
MAX_DRAWN = 100_000


def selected_rows(selection: dict | None, traces: list | None = None) -> np.ndarray:
    """Sorted row numbers of the points of a plotly selection.

    A point's row is ``traces[curve_number][point_index]``, with ``traces`` the table rows
    of each trace's points in order (None for a trace that cannot be selected), as a lean
    figure that carries no customdata describes itself. A point with customdata gives its
    row as ``customdata[0]`` instead (a list, or from a typed array a dict ``{"0": row, ...}``,
    or a number).
    """
    out = []
    for point in (selection or {}).get("points", []):
        data = point.get("customdata")
        if isinstance(data, dict):  # a row of a typed array arrives as {"0": row, "1": ...}
            data = data.get("0", data.get(0))
        elif isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is None and traces is not None:
            curve, index = point.get("curve_number", 0), point.get("point_index", point.get("point_number"))
            rows = traces[curve] if isinstance(curve, int) and 0 <= curve < len(traces) else None
            if rows is not None and index is not None and 0 <= int(index) < len(rows):
                data = rows[int(index)]
        if data is not None:
            out.append(int(data))
    return np.unique(np.asarray(out, dtype=np.int64))


def drawn_rows(n: int, selected: np.ndarray = (), members: np.ndarray = (), limit: int | None = None) -> np.ndarray:
    """Sorted rows of an ``n``-point map that its figure draws: every row up to ``limit`` (None: :data:`MAX_DRAWN`).

    Past ``limit``: the selected rows, then cluster members up to half the limit, then a
    random sample of the rest, ``limit`` rows in all. The sample has a fixed seed and is
    cut from its end, so the map holds still from one rerun to the next.
    """
    limit = MAX_DRAWN if limit is None else limit
    if n <= limit:
        return np.arange(n)
    order = np.random.default_rng(0).permutation(n)
    keep = np.zeros(n, bool)
    for group, most in ((selected, limit), (members, limit // 2), (order, limit)):
        wanted = np.zeros(n, bool)
        wanted[np.asarray(group, dtype=np.int64)] = True
        fresh = order[wanted[order] & ~keep[order]]  # in the random order, so that a cut leaves a random sample
        keep[fresh[:max(0, min(most, limit - int(keep.sum())))]] = True
    return np.flatnonzero(keep)


def map_rows(selection: dict | None, xy: np.ndarray, traces: list | None = None) -> np.ndarray:
    """Sorted rows that a map selection picks: its ``rows`` (already resolved), the clicked or
    enclosed points that are drawn (:func:`selected_rows`, with ``traces`` the rows of each
    trace), and every point of ``xy``, drawn or not, inside its boxes and lassos."""
    selection = selection or {}
    hits = [selected_rows(selection, traces), np.asarray(selection.get("rows", []), dtype=np.int64)]
    for kind in ("box", "lasso"):
        for shape in selection.get(kind, []):
            xs, ys = np.asarray(shape.get("x", []), float), np.asarray(shape.get("y", []), float)
            if len(xs) < 2 or len(xs) != len(ys):
                continue
            # the rows inside the shape's bounding box: all of a box, the candidates of a lasso
            near = np.flatnonzero((xy[:, 0] >= xs.min()) & (xy[:, 0] <= xs.max())
                                  & (xy[:, 1] >= ys.min()) & (xy[:, 1] <= ys.max()))
            hits.append(near if kind == "box" else near[inside_polygon(xy[near], xs, ys)])
    out = np.unique(np.concatenate(hits).astype(np.int64))
    return out[(out >= 0) & (out < len(xy))]


def inside_polygon(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(M,) whether each of (M, 2) ``points`` lies in the polygon of vertices (xs, ys), by the even-odd rule."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    x0, y0 = xs[-1], ys[-1]
    for x1, y1 in zip(xs, ys):
        if y0 != y1:  # a horizontal edge crosses no horizontal ray
            crosses = (y1 > y) != (y0 > y)
            inside ^= crosses & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
        x0, y0 = x1, y1
    return inside


__all__ = ["MAX_DRAWN", "selected_rows", "drawn_rows", "map_rows", "inside_polygon"]
