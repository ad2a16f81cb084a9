"""A multi-county geodata set made fast from the seed district's files, for tests of the levels above the towns.

The seed's towns are regrouped into three made-up counties under two made-up cities of a made-up province (their
geometries the unions of their towns'); zones, grids and hazards are the seed's. The real multi-county build
(``python -m dashboard.geodata build --city …``) takes minutes; what the KPIs, the drill and the API do above the
towns does not depend on which polygons the counties have, only on the nesting, which this keeps exact.
"""
from __future__ import annotations

import geopandas as gpd

from dashboard.geodata.io import Geodata

PROVINCE = ("990000", "测试省")
CITIES = {"990100": "甲市", "990200": "乙市"}
COUNTIES = {"990101": ("甲一区", "990100"), "990102": ("甲二县", "990100"), "990201": ("乙一县", "990200")}


def county_of_towns(towns) -> dict:
    """Town code → made-up county code: the seed's towns in code order, split 6 / 5 / the rest."""
    codes = sorted(towns["code"])
    keys = list(COUNTIES)
    return {c: keys[0] if i < 6 else keys[1] if i < 11 else keys[2] for i, c in enumerate(codes)}


def regrouped(geo, with_cities: bool = True) -> Geodata:
    """The seed set as a province of two cities (``with_cities``) or as one city (甲市) of three counties."""
    county_of = county_of_towns(geo.towns)
    towns = geo.towns.copy()
    towns["district_code"] = towns["code"].map(county_of)
    zones = geo.zones.copy()
    zones["district_code"] = zones["town_code"].map(county_of)
    grids = geo.grids.copy()
    grids["district_code"] = grids["town_code"].map(county_of)
    crs = geo.towns.crs
    counties = gpd.GeoDataFrame(
        [{"code": c, "name": name, "name_en": None, "city_code": city, "province_code": PROVINCE[0],
          "geometry": towns[towns["district_code"] == c].geometry.union_all()} for c, (name, city) in COUNTIES.items()],
        crs=crs)
    cities = gpd.GeoDataFrame(
        [{"code": c, "name": name, "name_en": None, "province_code": PROVINCE[0],
          "geometry": counties[counties["city_code"] == c].geometry.union_all()} for c, name in CITIES.items()],
        crs=crs)
    if with_cities:
        root = {"code": PROVINCE[0], "name": PROVINCE[1], "name_en": None, "level": "province"}
    else:  # one city: 甲市 made of all three counties
        cities = cities.iloc[:1].assign(geometry=[counties.geometry.union_all()])
        counties = counties.assign(city_code="990100")
        root = {"code": "990100", "name": "甲市", "name_en": None, "level": "city"}
    district = gpd.GeoDataFrame([{**root, "geometry": counties.geometry.union_all()}], crs=crs)
    return Geodata(directory=f"{geo.directory}#regrouped-{int(with_cities)}", district=district, towns=towns,
                   zones=zones, grids=grids, hazards=geo.hazards, cities=cities, counties=counties)


def write_regrouped(geo, out_dir, with_cities: bool = True):
    """The regrouped set as a geodata directory (what ``GEODATA_DIR`` names); returns the directory."""
    from pathlib import Path

    from dashboard.geodata.io import FILES, MULTI_FILES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gd = regrouped(geo, with_cities)
    for key, name in {**FILES, **MULTI_FILES}.items():
        getattr(gd, key).to_file(out / name, driver="GeoJSON")
    return out


def report_per_town(sessions, geo, n_per_town: dict, *, category: str, reported_at) -> None:
    """``n`` reports of ``category`` at ``reported_at`` in the first grid of each town of ``n_per_town``: counts a
    test knows per town, hence per county and city of the regrouping."""
    from dashboard.store import incidents as repo

    with sessions() as s:
        for town, n in n_per_town.items():
            g = geo.grids[geo.grids["town_code"] == town].iloc[0]
            for _ in range(n):
                repo.create_incident(s, repo.NewIncident(category=category, lon=120.1, lat=30.85,
                                                         grid_code=g["code"], zone_code=g["zone_code"],
                                                         town_code=town, reported_at=reported_at))
