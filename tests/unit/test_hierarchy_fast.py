"""``views.hierarchy`` built column-wise equals the old row-by-row construction (kept here as the reference) on the
committed seed, the regrouped seed (a province of two cities, one city) and synthetic multi-county sets of
thousands of square grids with missing and blank English names: every lookup, in the same insertion order."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from dashboard.geodata.io import Geodata
from dashboard.metrics import views
from dashboard.metrics.views import (ABOVE_TOWN, SINGLE_LEVELS, UNIT_COLUMN, Hierarchy, Root, _bounds, _name_en)


def hierarchy_by_rows(gd) -> Hierarchy:
    """``views.hierarchy`` as it was built before (row by row: ``itertuples`` and one ``bounds`` per geometry, a
    ``groupby`` loop per level) — kept here as the reference the column-wise construction must equal."""
    names, parent, children, grids_of, bounds = {}, {}, {}, {}, {}
    d = gd.district.iloc[0]
    root = Root(code=str(d["code"]), name=str(d["name"]), name_en=_name_en(d.get("name_en")))
    root_code = root.code
    names[("district", root_code)] = (root.name, root.short_en)
    bounds[("district", root_code)] = _bounds(gd.district.geometry.union_all())
    counties = getattr(gd, "counties", None)
    cities = getattr(gd, "cities", None)
    levels = SINGLE_LEVELS
    county_of_town: dict = {}
    if counties is not None:
        with_cities = cities is not None and len(cities) > 1
        levels = ("district", *(("city",) if with_cities else ()), "county", "town", "zone", "grid")
        if with_cities:
            for r in cities.itertuples():
                names[("city", r.code)] = (r.name, _name_en(getattr(r, "name_en", None)) or r.name)
                parent[("city", r.code)] = root_code
                bounds[("city", r.code)] = _bounds(r.geometry)
        for r in counties.itertuples():
            names[("county", r.code)] = (r.name, _name_en(getattr(r, "name_en", None)) or r.name)
            parent[("county", r.code)] = r.city_code if with_cities else root_code
            bounds[("county", r.code)] = _bounds(r.geometry)
        county_of_town = dict(zip(gd.towns["code"], gd.towns["district_code"].astype(str)))
    for r in gd.towns.itertuples():
        names[("town", r.code)] = (r.name, r.name_en)
        parent[("town", r.code)] = county_of_town.get(r.code, root_code)
        bounds[("town", r.code)] = _bounds(r.geometry)
    for r in gd.zones.itertuples():
        names[("zone", r.code)] = (r.name, r.name_en)
        parent[("zone", r.code)] = r.town_code
        bounds[("zone", r.code)] = _bounds(r.geometry)
    for r in gd.grids.itertuples():
        names[("grid", r.code)] = (r.name, getattr(r, "name_en", None) or r.name)
        parent[("grid", r.code)] = r.zone_code
        bounds[("grid", r.code)] = _bounds(r.geometry)
    grids = pd.DataFrame(gd.grids.drop(columns="geometry"))
    town_of_grid = grids["town_code"].astype(str)
    grids["county_code"] = town_of_grid.map(county_of_town) if county_of_town else root_code
    grids["city_code"] = (grids["county_code"].map({c: p for (lv, c), p in parent.items() if lv == "county"})
                          if "city" in levels else root_code)
    for level in levels[1:]:  # children of each unit, and the grids under it
        col = UNIT_COLUMN[level]
        up = levels[levels.index(level) - 1]
        up_col = None if up == "district" else UNIT_COLUMN[up]
        if up_col is None:
            children[("district", root_code)] = tuple(sorted(set(grids[col])))
        else:
            for p_code, g in grids.groupby(up_col):
                children[(up, p_code)] = tuple(sorted(set(g[col])))
        if level == "grid":
            continue
        for code, g in grids.groupby(col):
            grids_of[(level, code)] = tuple(sorted(g["code"]))
    grids_of[("district", root_code)] = tuple(sorted(grids["code"]))
    for code in grids["code"]:
        grids_of[("grid", code)] = (code,)
    town_up = {lv: dict(zip(grids["town_code"], grids[UNIT_COLUMN[lv]])) for lv in ABOVE_TOWN if lv in levels}
    return Hierarchy(root, names, parent, children, grids_of, bounds, grids, levels, town_up)



def _same(a: Hierarchy, b: Hierarchy) -> None:
    assert a.root == b.root and a.levels == b.levels
    for name in ("names", "parent", "children", "grids_of", "bounds", "town_up"):
        x, y = getattr(a, name), getattr(b, name)
        assert list(x) == list(y), name  # the same keys in the same order
        for k in x:
            vx, vy = x[k], y[k]
            if name == "names":  # a missing English name is NaN on both sides (NaN != NaN)
                vx, vy = tuple("<NaN>" if isinstance(v, float) and np.isnan(v) else v for v in vx), \
                    tuple("<NaN>" if isinstance(v, float) and np.isnan(v) else v for v in vy)
            assert vx == vy, (name, k, vx, vy)
            assert type(vx) is type(vy), (name, k)
    pd.testing.assert_frame_equal(a.grids, b.grids)


def _synthetic(cities: int, counties: int, towns: int, zones: int, grids: int, grid_en: bool) -> Geodata:
    """A province (or, with one city, a city) of square grids 0.01° wide: ``counties`` counties per city, ``towns``
    towns per county, ``zones`` zones per town, ``grids`` grids per zone; codes listed out of order, some English names
    missing or blank."""
    rng = np.random.default_rng(7)
    rows = {k: [] for k in ("city", "county", "town", "zone", "grid")}
    x = 0
    for ci in range(cities):
        city = f"99{ci + 1:02d}00"
        for ko in range(counties):
            county = f"99{ci + 1:02d}{ko + 1:02d}"
            for ti in range(towns):
                town = f"{county}-T{ti + 1:02d}"
                for zi in range(zones):
                    zone = f"{town}-{zi + 1:02d}"
                    for gi in range(grids):
                        x += 1
                        g = box(120 + (x % 97) * 0.01, 28 + (x // 97) * 0.01, 120.01 + (x % 97) * 0.01,
                                28.01 + (x // 97) * 0.01)
                        rows["grid"].append({"code": f"{zone}-{gi + 1:02d}", "name": f"网格{x}", "zone_code": zone,
                                             "town_code": town, "district_code": county,
                                             "registered_units": int(rng.integers(50, 200)), "geometry": g,
                                             **({"name_en": [None, "", f"Grid {x}"][x % 3]} if grid_en else {})})
                    rows["zone"].append({"code": zone, "name": f"片区{zone}", "name_en": None if zi % 4 == 1 else
                                         f"Zone {zone}", "town_code": town, "district_code": county})
                rows["town"].append({"code": town, "name": f"镇{town}", "name_en": None if ti == 1 else f"Town {town}",
                                     "district_code": county})
            rows["county"].append({"code": county, "name": f"县{county}", "city_code": city,
                                   "name_en": [None, "  ", f"County {county}"][ko % 3], "province_code": "990000"})
        rows["city"].append({"code": city, "name": f"市{city}", "name_en": None if ci else "City One"})
    grid = gpd.GeoDataFrame(rows["grid"], crs="EPSG:4326").sample(frac=1.0, random_state=3)  # rows out of order

    def union(level, key):
        frame = pd.DataFrame(rows[level])
        geoms = grid.dissolve(by=key).geometry
        return gpd.GeoDataFrame(frame, geometry=[geoms[c] for c in frame["code"]], crs="EPSG:4326")

    zone = union("zone", "zone_code")
    town = union("town", "town_code")
    grid_c = grid.assign(county_code=grid["district_code"],
                         city_code=grid["district_code"].str.slice(0, 4) + "00")
    county = gpd.GeoDataFrame(pd.DataFrame(rows["county"]), crs="EPSG:4326",
                              geometry=[grid_c.dissolve(by="county_code").geometry[c] for c in
                                        pd.DataFrame(rows["county"])["code"]])
    city = gpd.GeoDataFrame(pd.DataFrame(rows["city"]), crs="EPSG:4326",
                            geometry=[grid_c.dissolve(by="city_code").geometry[c] for c in
                                      pd.DataFrame(rows["city"])["code"]])
    root = ("990000", "测试省") if cities > 1 else ("990100", "测试市")
    district = gpd.GeoDataFrame([{"code": root[0], "name": root[1], "name_en": None}], crs="EPSG:4326",
                                geometry=[grid.geometry.union_all()])
    hazards = gpd.GeoDataFrame({"code": [], "town_code": []}, geometry=[], crs="EPSG:4326")
    return Geodata(directory="synthetic", district=district, towns=town.sample(frac=1.0, random_state=1),
                   zones=zone.sample(frac=1.0, random_state=2), grids=grid, hazards=hazards, cities=city,
                   counties=county)


def test_seed_and_regrouped_sets(gd):
    from tests.regrouped import regrouped

    for g in (gd, regrouped(gd, True), regrouped(gd, False)):
        _same(views.hierarchy.__wrapped__(g), hierarchy_by_rows(g))


@pytest.mark.parametrize("cities,grid_en", [(2, False), (1, True)])
def test_thousands_of_square_grids(cities, grid_en):
    gd = _synthetic(cities=cities, counties=3, towns=4, zones=5, grids=26 if cities > 1 else 40, grid_en=grid_en)
    assert len(gd.grids) >= 2400
    fast = views.hierarchy.__wrapped__(gd)
    _same(fast, hierarchy_by_rows(gd))
    assert fast.levels == (("district", "city", "county", "town", "zone", "grid") if cities > 1
                           else ("district", "county", "town", "zone", "grid"))
