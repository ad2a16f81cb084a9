"""The wall (大屏) of a city's or a province's set (the seed's towns regrouped into counties and cities,
``tests/regrouped.py``): its ranking, tour cards and map colours are of the units right under the root — a city's
counties, a province's cities — with the figures of the KPI bundle (``views.unit_kpis``) and the counts of the
geodata, and the payload holds no zone; a county's own wall still tours its zones."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from dashboard.store import catalogue
from tests.regrouped import CITIES, COUNTIES, county_of_towns, report_per_town, write_regrouped

CATEGORY = next(iter(catalogue.CATEGORIES))
# a fixed moment and a wall asked two hours later: the same Beijing day and month whenever the test runs
REPORTED = dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.timezone.utc)
NOW = REPORTED + dt.timedelta(hours=2)


def _serve(backend, geodata_dir, tmp_path):
    """A bare Flask app with the services the wall's service module reads (no Dash, no HTTP)."""
    import flask

    from dashboard.cache import init_cache
    from dashboard.context import Services
    from dashboard.settings import Settings
    from dashboard.store import session_factory

    _, url, engine = backend
    settings = Settings(instance_dir=tmp_path, database_url=url, cache_url="null", geodata_dir=geodata_dir)
    server = flask.Flask(__name__)
    cache = init_cache(server, settings.cache_config)
    server.extensions["dashboard"] = Services(settings=settings, cache=cache, engine=engine,
                                              sessions=session_factory(engine))
    return server


@pytest.fixture(params=[False, True], ids=["city", "province"])
def multi_wall(request, backend, db, geo, tmp_path):
    """(the app on a city's set — three counties — or a province's — two cities —, its level toured)."""
    gdir = write_regrouped(geo, tmp_path / "geodata", with_cities=request.param)
    return _serve(backend, gdir, tmp_path), ("city" if request.param else "county")


def _report(sessions, geo, n_per_town: dict) -> None:
    report_per_town(sessions, geo, n_per_town, category=CATEGORY, reported_at=REPORTED)


def _unit_of_town(geo, level: str) -> dict:
    """Town code → the code of its county or city (from the regrouping, not from the app)."""
    county_of = county_of_towns(geo.towns)
    return county_of if level == "county" else {t: COUNTIES[c][1] for t, c in county_of.items()}


def test_the_wall_of_a_city_or_province_ranks_tours_and_colours_the_units_under_its_root(multi_wall, sessions,
                                                                                          geo):
    from dashboard.context import services
    from dashboard.metrics import views
    from dashboard.services import units, wall
    from dashboard.ui import wall as wall_ui
    from dashboard.ui.wall_text import fmt_value

    server, level = multi_wall
    towns = sorted(geo.towns["code"])
    want = {towns[0]: 3, towns[1]: 2, towns[7]: 4, towns[-1]: 1}  # two towns of the first county, …
    _report(sessions, geo, want)
    unit_of = _unit_of_town(geo, level)
    expect_new: dict = {}
    for town, n in want.items():
        expect_new[unit_of[town]] = expect_new.get(unit_of[town], 0) + n
    codes = sorted(COUNTIES if level == "county" else CITIES)

    with server.app_context():
        sv = services()
        gd = sv.geodata()
        h = units.hierarchy(gd)
        layer = wall.tour_layer()
        assert wall.tour_level() == level and layer == {"county": "counties", "city": "cities"}[level]
        k = wall.kpi_payload("zh", "new_incidents", "today", now=NOW)
        bundles = {per: views.kpi_bundle(sv.engine, gd, sv.cache, p, now=NOW)
                   for per, p in wall.wall_periods(NOW).items()}
        choro = wall.unit_choropleth("zh", wall.change_seq())
        month = wall.kpi_payload("en", "resolution_rate", "month", now=NOW)

    # the tour visits exactly the units under the root, in code order or ranked
    assert k["level"] == level and sorted(k["units"]) == codes
    assert k["order"]["code"] == codes and sorted(k["order"]["rank"]) == codes
    # ranked by today's new cases: the counts reported, most first (every unit has a count, zero included)
    rows = k["ranking"]["rows"]
    assert [r["code"] for r in rows] == sorted(codes, key=lambda c: (-expect_new.get(c, 0), c))
    assert [r["value"] for r in rows] == [expect_new.get(r["code"], 0) for r in rows]
    assert [r["value"] for r in rows] == [views.unit_kpis(bundles["today"], level, r["code"])["new_incidents"]
                                          for r in rows]
    assert k["ranked"] == len(codes) and k["order"]["rank"] == [r["code"] for r in rows]
    # by a rate this month: the bundle's values, best first, the units without a value left out
    got = month["ranking"]["rows"]
    have = {c: views.unit_kpis(bundles["month"], level, c).get("resolution_rate") for c in codes}
    best_first = sorted([(c, v) for c, v in have.items() if v is not None], key=lambda x: (-x[1], x[0]))
    assert [r["code"] for r in got] == [c for c, _ in best_first]
    assert [r["value"] for r in got] == pytest.approx([v for _, v in best_first])

    grids = geo.grids.assign(unit=geo.grids["town_code"].map(unit_of))
    hazards = geo.hazards.assign(unit=geo.hazards["town_code"].map(unit_of))
    for code in codes:
        card = k["units"][code]
        assert card["name"] == h.name(level, code, "zh") == (COUNTIES[code][0] if level == "county" else CITIES[code])
        assert card["parent"] == h.name("district", None, "zh")  # the root: a city's counties, a province's cities
        assert card["rank"] == [r["code"] for r in rows].index(code) + 1
        g = grids[grids["unit"] == code]
        hz = hazards[hazards["unit"] == code]
        counts = dict(card["counts"])
        assert counts["towns"] == g["town_code"].nunique() and counts["zones"] == g["zone_code"].nunique()
        if level == "city":
            assert counts["counties"] == sum(1 for _, city in COUNTIES.values() if city == code)
        assert card["grids"] == len(g) and card["registered_units"] == int(g["registered_units"].sum())
        assert card["hazards"] == len(hz) and card["major_hazards"] == int(hz["major"].astype(bool).sum())
        for per, figures in card["kpis"].items():  # the card's figures: the bundle's, as the wall prints them
            row = views.unit_kpis(bundles[per], level, code)
            assert [f["value"] for f in figures] == [fmt_value(row.get(f["key"]), f["key"]) for f in figures]
        today = {f["key"]: f["value"] for f in card["kpis"]["today"]}
        assert today["new_incidents"] == str(expect_new.get(code, 0))
        assert card["bounds"] == h.bounds[(level, code)]
    assert sum(k["units"][c]["grids"] for c in codes) == len(geo.grids) == k["district"]["grids"]

    # the map: the units' layer coloured by their open cases now
    assert choro["layer"] == layer and sorted(choro["values"]) == codes
    assert choro["values"] == {c: expect_new.get(c, 0) for c in codes}
    assert set(choro["colors"]) <= set(wall.DARK_RAMP)

    # bounded: no zone (nor grid) of the set is in what the wall is sent
    sent = json.dumps([k, wall_ui.tour_data(k), wall_ui.ranking_data(k["ranking"], "zh", 5), choro],
                      ensure_ascii=False)
    assert not [z for z in geo.zones["code"] if z in sent]
    tour = wall_ui.tour_data(k)
    assert tour["layer"] == choro["layer"] and sorted(tour["units"]) == codes

    # the headings name the toured unit; the few units all show in the ranking's two columns
    word = {"county": ("县（市、区）", "County"), "city": ("市", "City")}[level]
    ranking = wall_ui.ranking_data(k["ranking"], "zh", 5)
    assert ranking["title"] == f"{word[0]}排名"
    assert [r[0] for r in ranking["rows_top"] + ranking["rows_bottom"]] == [r["code"] for r in rows]
    assert wall_ui.ranking_data(month["ranking"], "en", 5)["title"] == f"{word[1]} ranking"
    text = wall_ui.client_table("en", h.root.kind, level)
    assert text["tour"] == f"{word[1]} tour" and wall_ui.client_table("zh", h.root.kind, level)["tour"] == f"{word[0]}巡览"


def test_a_county_wall_still_tours_its_zones(backend, db, geo, geodata_dir, tmp_path):
    from dashboard.services import wall
    from dashboard.ui import wall as wall_ui

    server = _serve(backend, geodata_dir, tmp_path)
    with server.app_context():
        k = wall.kpi_payload("zh", "new_incidents", "today", now=NOW)
    zones = sorted(geo.zones["code"])
    assert k["level"] == "zone" and k["layer"] == "zones" and sorted(k["units"]) == zones
    assert k["order"]["code"] == zones and "counts" not in k["district"] and k["district"]["zones"] == len(zones)
    assert wall_ui.ranking_data(k["ranking"], "zh", 5)["title"] == "片区排名"
    assert wall_ui.client_table("en", "区")["tour"] == "Zone tour"
