"""Which points a lasso encloses: the geometry the browser's lasso is checked against."""

import numpy as np

from vqviz.analysis import inside_polygon


def test_inside_polygon_by_the_even_odd_rule():
    xy = np.random.default_rng(2).uniform(-1, 1, size=(50_000, 2))
    triangle = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    inside = (xy[:, 0] > 0) & (xy[:, 1] > 0) & (xy.sum(1) < 1)
    np.testing.assert_array_equal(inside_polygon(xy, *triangle), inside)
    # a bow tie: its two loops are inside, the crossing's other sides are not
    xs, ys = np.array([-1.0, 1.0, 1.0, -1.0]), np.array([-1.0, 1.0, -1.0, 1.0])
    got = inside_polygon(np.array([[0.5, 0.0], [-0.5, 0.0], [0.0, 0.5], [0.0, -0.5]]), xs, ys)
    assert got.tolist() == [True, True, False, False]
    assert inside_polygon(np.zeros((0, 2)), *triangle).shape == (0,)
