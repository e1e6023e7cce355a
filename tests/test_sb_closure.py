"""Closure loops of a small-baseline network and the good-pixel test (unwrap_hold_good_values)."""

from __future__ import annotations

import numpy as np

from stamps_python.numerics.sb_closure import closure_loops, identify_good_pixels, image_bperp

DAY = np.array([0.0, 12.0, 24.0, 36.0, 48.0, 60.0])
BPERP = np.array([0.0, 30.0, -20.0, 10.0, 50.0, -40.0])


def _rows(loops: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(x) for x in row) for row in loops}


def test_triangles_and_a_bridge() -> None:
    # pairs: 0-1, 1-2, 0-2 (triangle), 2-3 (bridge to a second triangle 3-4, 4-5, 3-5)
    ix = np.array([[0, 1], [1, 2], [0, 2], [2, 3], [3, 4], [4, 5], [3, 5]])
    loops = closure_loops(ix, DAY, BPERP)
    assert _rows(loops) == {(1, 1, -1, 0, 0, 0, 0), (0, 0, 0, 0, 1, 1, -1)}
    # the bridge 2-3 closes no loop; dropping a triangle's pair breaks that triangle
    loops = closure_loops(ix, DAY, BPERP, drop_ifg=[1])
    assert _rows(loops) == {(0, 0, 0, 0, 1, 1, -1)}


def test_higher_order_loop_by_shortest_path() -> None:
    # a square 0-1-2-3 with the long pair 0-3: no triangle; each pair's shortest other path
    # closes the same loop, kept once as found first, from pair 0-1: 0-3-2-1 and back to 0,
    # so +03 -23 -12 -01
    ix = np.array([[0, 1], [1, 2], [2, 3], [0, 3]])
    loops = closure_loops(ix, DAY, BPERP)
    assert _rows(loops) == {(-1, -1, -1, 1)}
    # a pentagon with one chord 0-2: the triangle 0-1-2, and for 0-4 (no triangle) the path
    # 0-2-3-4 through the chord, not the longer 0-1-2-3-4
    ix = np.array([[0, 1], [1, 2], [0, 2], [2, 3], [3, 4], [0, 4]])
    loops = closure_loops(ix, DAY, BPERP)
    assert (1, 1, -1, 0, 0, 0) in _rows(loops)
    assert any(row[5] != 0 and row[0] == 0 and row[1] == 0 for row in _rows(loops))
    # with a diagonal 0-2 there are two triangles and no higher-order loop
    ix = np.array([[0, 1], [1, 2], [2, 3], [0, 3], [0, 2]])
    assert _rows(closure_loops(ix, DAY, BPERP)) == {(1, 1, 0, 0, -1), (0, 0, 1, -1, 1)}


def test_good_pixels_from_loop_residuals() -> None:
    rng = np.random.default_rng(4)
    ix = np.array([[0, 1], [1, 2], [0, 2], [2, 3], [1, 3]])
    loops = closure_loops(ix, DAY, BPERP)
    truth = rng.normal(0, 3, (50, 4))
    ph = truth[:, ix[:, 1]] - truth[:, ix[:, 0]] + rng.normal(0, 0.05, (50, 5))
    ph[7, 2] += 2 * np.pi  # a unwrapping error in pair 0-2 at PS 7
    good = identify_good_pixels(ph, loops)
    assert good.shape == (50, 5)
    # PS 7: the loop through 0-2 does not close, the other loop (1-2, 2-3, 1-3) does
    assert not good[7, 0] and not good[7, 2] and good[7, 1] and good[7, 3] and good[7, 4]
    assert good[np.arange(50) != 7].all()
    # a common 2 pi offset of a whole pair is removed through the mean, not flagged
    shifted = ph.copy()
    shifted[:, 3] += 2 * np.pi
    assert np.array_equal(identify_good_pixels(shifted, loops), good)


def test_image_bperp_from_pairs() -> None:
    ix = np.array([[0, 1], [1, 2], [0, 2], [2, 3]])
    bperp = BPERP[ix[:, 1]] - BPERP[ix[:, 0]]
    expected = BPERP[:5] - BPERP[1]
    expected[4] = 0.0  # image 4 is in no pair
    np.testing.assert_allclose(image_bperp(ix, bperp, 5, 1), expected, atol=1e-9)
