"""Selection geometry of a 2-D map: which points a lasso encloses."""

from __future__ import annotations

import numpy as np

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


__all__ = ["inside_polygon"]
