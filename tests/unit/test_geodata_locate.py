"""GridLocator on the committed grids."""
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from dashboard.geodata import GridLocator, load_geodata

GEODATA = Path(__file__).resolve().parents[2] / "geodata"


@pytest.fixture(scope="module")
def gd():
    return load_geodata(GEODATA)


def test_representative_point_of_every_grid_locates_to_it(gd):
    loc = gd.locator
    rp = shapely.point_on_surface(np.asarray(gd.grids.geometry.values))
    got = loc.locate_many(shapely.get_x(rp), shapely.get_y(rp))
    assert got.dtype == object
    assert list(got) == list(gd.grids["code"])
    for k in range(0, len(gd.grids), 37):
        assert loc.locate(rp[k].x, rp[k].y) == gd.grids["code"].iloc[k]


def test_outside_points_give_none(gd):
    loc = gd.locator
    assert loc.locate(121.5, 31.5) is None
    assert loc.locate(0.0, 0.0) is None
    res = loc.locate_many([121.5, float("nan"), 120.0], [31.5, 30.8, float("nan")])
    assert list(res) == [None, None, None]


def test_locate_many_matches_locate_and_district(gd):
    loc = gd.locator
    rng = np.random.default_rng(7)
    b = gd.district.total_bounds
    x = rng.uniform(b[0], b[2], 400)
    y = rng.uniform(b[1], b[3], 400)
    many = loc.locate_many(x, y)
    single = [loc.locate(a, c) for a, c in zip(x, y)]
    assert list(many) == single
    inside = shapely.contains_xy(gd.district.geometry.iloc[0], x, y)
    hit = np.array([m is not None for m in many])
    # inside the district <=> in some grid (grids tile the district)
    assert (hit == inside).mean() > 0.99
    assert hit.sum() > 50 and (~hit).sum() > 50


def test_shared_vertex_goes_to_lowest_index(gd):
    grids = gd.grids
    loc = GridLocator(grids)
    tree = shapely.STRtree(np.asarray(grids.geometry.values))
    # a vertex of grid 0 shared with another grid
    coords = shapely.get_coordinates(grids.geometry.iloc[5].exterior)
    for x, y in coords:
        hits = tree.query(shapely.Point(x, y), predicate="intersects")
        if len(hits) > 1:
            assert loc.locate(x, y) == grids["code"].iloc[int(hits.min())]
            return
    pytest.fail("no shared vertex found")


def test_zone_and_town_lookups(gd):
    loc = gd.locator
    for _, row in gd.grids.iloc[::50].iterrows():
        assert loc.zone_of(row["code"]) == row["zone_code"]
        assert loc.town_of(row["code"]) == row["town_code"]
    assert loc.zone_of("nope") is None


def test_hundred_thousand_points_at_once_equal_one_by_one(gd):
    """The vectorised look-up (timed in bench/, not here) gives what the one-point look-up gives."""
    loc = GridLocator(gd.grids)
    rng = np.random.default_rng(3)
    b = gd.district.total_bounds
    x = rng.uniform(b[0], b[2], 100_000)
    y = rng.uniform(b[1], b[3], 100_000)
    res = loc.locate_many(x, y)
    assert len(res) == 100_000
    pick = rng.choice(100_000, 300, replace=False)
    assert [res[i] for i in pick] == [loc.locate(x[i], y[i]) for i in pick]
    assert 0 < sum(r is not None for r in res) < 100_000  # the bounding box holds points in grids and outside
