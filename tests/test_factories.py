"""The shared workspace builders of tests/factories.py fill derived fields consistently."""

from __future__ import annotations

import numpy as np
from factories import DEFAULT_LL0, days, local2llh, ps_product, scene_points

from stamps_python.numerics.geodesy import llh2local
from stamps_python.utils import datenum


def test_days_regular_and_irregular() -> None:
    assert days("20200101", 3, 12.0).tolist() == [datenum("20200101") + k for k in (0, 12, 24)]
    assert days(738000.0, 3, [12.0, 24.0]).tolist() == [738000.0, 738012.0, 738036.0]


def test_local2llh_inverts_llh2local() -> None:
    xy = scene_points(np.random.default_rng(0), 200, (8000.0, 6000.0)) - [4000.0, 3000.0]
    np.testing.assert_allclose(llh2local(local2llh(xy, DEFAULT_LL0), DEFAULT_LL0), xy, atol=1e-6)


def test_ps_product_derived_fields() -> None:
    xy = scene_points(np.random.default_rng(1), 30, 1000.0)
    day = days("20210105", 6, 12.0)
    ifgs = np.array([[0, 1], [1, 2], [2, 4], [3, 5]])
    ps = ps_product(xy, day, 2, np.zeros(4), ifgday_ix=ifgs)
    assert (ps["n_ps"], ps["n_image"], ps["n_ifg"], ps["master_day"]) == (30, 6, 4, day[2])
    assert ps["dates"][:2] == ["20210105", "20210117"]
    assert ps["ij"][:, 0].tolist() == ps["xy"][:, 0].tolist() == list(range(1, 31))
    np.testing.assert_array_equal(ps["ifgday"], day[ifgs])
    np.testing.assert_allclose(llh2local(ps["lonlat"], ps["ll0"]), xy, atol=1e-6)
    assert ps_product(xy, day, 2, None)["n_ifg"] == 6 and "bperp" not in ps_product(
        xy, day, 2, None
    )
