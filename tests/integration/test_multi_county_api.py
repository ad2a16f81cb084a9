"""The levels above the towns through the HTTP API: a city or province set (the seed's towns regrouped into
counties and cities, ``tests/regrouped.py``) answers ``GET /api/v1/kpis`` for its cities and counties, rolls the
children up at every level, and refuses levels and codes it does not have."""
from __future__ import annotations

import datetime as dt

import pytest

from dashboard.store import incidents as repo
from tests.regrouped import (COUNTIES, PROVINCE, county_of_towns, regrouped, report_per_town,
                             write_regrouped)

from .conftest import READ_TOKEN

CATEGORY = "dispute.civil"  # severity 1, not hazardous chemicals: never notable in the briefing by itself
# a fixed moment and the Beijing day it falls in (a period of "today" failed when the run crossed local midnight)
REPORTED = dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.timezone.utc)
DAY = "2026-03-10"


@pytest.fixture
def multi_app(backend, db, geo, tmp_path):
    import flask

    from dashboard.api import register_incident_api
    from dashboard.cache import init_cache
    from dashboard.context import Services
    from dashboard.settings import Settings
    from dashboard.store import session_factory

    _, url, engine = backend
    gdir = write_regrouped(geo, tmp_path / "geodata", with_cities=True)
    settings = Settings(instance_dir=tmp_path, database_url=url, cache_url="null", geodata_dir=gdir,
                        api_tokens=(f"{READ_TOKEN}:read",))
    server = flask.Flask(__name__)
    cache = init_cache(server, settings.cache_config)
    server.extensions["dashboard"] = Services(settings=settings, cache=cache, engine=engine,
                                           sessions=session_factory(engine))
    register_incident_api(server)
    from dashboard.api.kpis import bp as kpis_bp

    server.register_blueprint(kpis_bp)
    return server


def _report(sessions, geo, n_per_town: dict) -> None:
    report_per_town(sessions, geo, n_per_town, category=CATEGORY, reported_at=REPORTED)


def test_kpis_at_every_level_of_a_province(multi_app, sessions, geo):
    county_of = county_of_towns(geo.towns)
    towns = sorted(county_of)
    want = {towns[0]: 3, towns[1]: 2, towns[7]: 4, towns[-1]: 1}  # two towns of the first county, …
    _report(sessions, geo, want)
    c = multi_app.test_client()
    h = {"Authorization": f"Bearer {READ_TOKEN}"}

    def kpis(**q):
        r = c.get("/api/v1/kpis", query_string={"from": DAY, "to": DAY, **q}, headers=h)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    root = kpis(children="1")
    assert root["code"] == PROVINCE[0] and root["name"] == PROVINCE[1]
    assert root["kpis"]["new_incidents"] == sum(want.values())
    assert root["children"]["level"] == "city"
    by_city = {u["code"]: u["kpis"]["new_incidents"] for u in root["children"]["units"]}
    expect_city: dict = {}
    for town, n in want.items():
        city = COUNTIES[county_of[town]][1]
        expect_city[city] = expect_city.get(city, 0) + n
    assert by_city == {c: expect_city.get(c, 0) for c in by_city} and sum(by_city.values()) == sum(want.values())

    city = next(iter(expect_city))
    body = kpis(level="city", code=city, children="1")
    assert body["parent"]["level"] == "district" and body["parent"]["code"] == PROVINCE[0]
    assert body["children"]["level"] == "county"
    assert {u["code"] for u in body["children"]["units"]} == {k for k, (_, ct) in COUNTIES.items() if ct == city}

    county = county_of[towns[0]]
    body = kpis(level="county", code=county, children="1")
    assert body["name"] == COUNTIES[county][0]
    assert body["kpis"]["new_incidents"] == sum(n for t, n in want.items() if county_of[t] == county)
    assert body["parent"] == {**body["parent"], "level": "city", "code": COUNTIES[county][1]}
    assert body["children"]["level"] == "town"
    kids = {u["code"]: u["kpis"]["new_incidents"] for u in body["children"]["units"]}
    assert set(kids) == {t for t in towns if county_of[t] == county}
    assert all(kids[t] == want.get(t, 0) for t in kids)

    town = kpis(level="town", code=towns[0])
    assert town["parent"]["level"] == "county" and town["parent"]["code"] == county

    for q, status in (({"level": "county", "code": "330502"}, 404), ({"level": "county"}, 400),
                      ({"level": "city", "code": towns[0]}, 404), ({"level": "province"}, 400)):
        r = c.get("/api/v1/kpis", query_string=q, headers=h)
        assert r.status_code == status, (q, r.status_code)


def test_a_single_county_has_no_county_level(app):
    from dashboard.api.kpis import bp as kpis_bp

    app.register_blueprint(kpis_bp)
    client = app.test_client()
    h = {"Authorization": f"Bearer {READ_TOKEN}"}
    r = client.get("/api/v1/kpis", query_string={"level": "county", "code": "330502"}, headers=h)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "level"
    levels = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/kpis"]["get"]["parameters"][0]
    assert levels["schema"]["enum"] == ["district", "town", "zone", "grid"]
    assert client.get("/api/v1/kpis", query_string={"children": "1"}, headers=h).get_json()["children"]["level"] == "town"


def _list_codes(client, h, **q) -> list[str]:
    r = client.get("/api/v1/incidents", query_string={"limit": 200, **q}, headers=h)
    assert r.status_code == 200, r.get_json()
    return sorted(i["town_code"] for i in r.get_json()["items"])


def test_county_and_city_filter_the_incidents(multi_app, sessions, geo):
    """``county`` / ``city`` in the incident filter mean their towns (the list, its exports, the GIS export and the
    map read one filter); a code the set has not matches nothing, as an unknown town does."""
    county_of = county_of_towns(geo.towns)
    towns = sorted(county_of)
    want = {towns[0]: 2, towns[6]: 3, towns[-1]: 1}  # one town in each made-up county
    _report(sessions, geo, want)
    c = multi_app.test_client()
    h = {"Authorization": f"Bearer {READ_TOKEN}"}
    every = _list_codes(c, h)
    assert len(every) == sum(want.values())
    for county, (_, city) in COUNTIES.items():
        expect = sorted(t for t in every if county_of[t] == county)
        assert _list_codes(c, h, county=county) == expect
    for city in {ct for _, ct in COUNTIES.values()}:
        expect = sorted(t for t in every if COUNTIES[county_of[t]][1] == city)
        assert expect and _list_codes(c, h, city=city) == expect
    first, second = list(COUNTIES)[:2]
    assert _list_codes(c, h, county=f"{first},{second}") == sorted(
        t for t in every if county_of[t] in (first, second))
    other_city = COUNTIES[list(COUNTIES)[-1]][1]
    assert _list_codes(c, h, county=first, city=other_city) == []  # both: the towns in both
    assert _list_codes(c, h, county="990999") == []
    assert _list_codes(c, h, county=first, town=towns[0]) == [towns[0]] * want[towns[0]]
    r = c.get("/api/v1/incidents", query_string={"county": "x y"}, headers=h)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "county"


def test_gis_export_of_one_county(multi_app, sessions, geo, tmp_path):
    """The drill panel's GIS export of a county (``county=``): its counties, towns, zones and grids layers hold that
    county's units only, each with its city's and county's codes, and the incidents are the county's."""
    import pyogrio

    from dashboard.api.gis import bp as gis_bp

    multi_app.register_blueprint(gis_bp)
    county_of = county_of_towns(geo.towns)
    towns = sorted(county_of)
    want = {towns[0]: 2, towns[1]: 1, towns[-1]: 4}
    _report(sessions, geo, want)
    county = county_of[towns[0]]
    city = COUNTIES[county][1]
    r = multi_app.test_client().get("/api/v1/gis/export.gpkg", headers={"Authorization": f"Bearer {READ_TOKEN}"},
                                    query_string={"period": "custom", "period_from": DAY, "period_to": DAY,
                                                  "county": county})
    assert r.status_code == 200, r.data[:300]
    path = tmp_path / "county.gpkg"
    path.write_bytes(r.data)
    names = [str(n) for n, g in pyogrio.list_layers(str(path)) if g is not None]
    assert names == ["cities", "counties", "towns", "zones", "grids", "incidents"]
    mine = {t for t in towns if county_of[t] == county}
    cities = pyogrio.read_dataframe(path, layer="cities")
    assert list(cities["code"]) == [city]
    counties = pyogrio.read_dataframe(path, layer="counties")
    assert list(counties["code"]) == [county] and list(counties["city_code"]) == [city]
    assert counties.loc[0, "new_inc"] == sum(n for t, n in want.items() if t in mine)
    tw = pyogrio.read_dataframe(path, layer="towns")
    assert set(tw["code"]) == mine and set(tw["dist_code"]) == {county} and set(tw["city_code"]) == {city}
    sizes = {}
    for layer in ("zones", "grids"):
        frame = pyogrio.read_dataframe(path, layer=layer)
        sizes[layer] = len(frame)
        expect = geo.zones if layer == "zones" else geo.grids
        assert sorted(frame["code"]) == sorted(expect.loc[expect["town_code"].isin(mine), "code"])
        assert set(frame["dist_code"]) == {county} and set(frame["city_code"]) == {city}
    points = pyogrio.read_dataframe(path, layer="incidents")
    assert len(points) == sum(n for t, n in want.items() if t in mine)
    header = dict(kv.split("=") for kv in r.headers["X-Layer-Counts"].split(","))
    assert int(header["grids"]) == sizes["grids"] and int(header["zones"]) == sizes["zones"]
    assert list(header) == names and int(header["counties"]) == 1 and int(header["incidents"]) == len(points)


@pytest.mark.parametrize("with_cities", [True, False], ids=["province", "city"])
def test_briefing_rows_are_the_units_under_the_root(backend, db, sessions, geo, tmp_path, with_cities):
    """The morning briefing of a province lists its cities, a city's its counties (not thousands of zones): each
    row's new and severe counts are the reports of its towns, the totals their sum; the page and the PDF name them."""
    from dashboard.cache import init_cache
    from dashboard.metrics import views
    from dashboard.ui import briefing as ui

    import flask

    _, _, engine = backend
    gd = regrouped(geo, with_cities=with_cities)
    h = views.hierarchy(gd)
    county_of = county_of_towns(geo.towns)
    towns = sorted(county_of)
    want = {towns[0]: 3, towns[7]: 2, towns[-1]: 1}
    _report(sessions, geo, want)
    with sessions() as s:  # one severe report in the last town
        g = geo.grids[geo.grids["town_code"] == towns[-1]].iloc[0]
        repo.create_incident(s, repo.NewIncident(category=CATEGORY, lon=120.1, lat=30.85, severity=4,
                                                 grid_code=g["code"], zone_code=g["zone_code"], town_code=towns[-1],
                                                 reported_at=REPORTED, description="严重"))
    want[towns[-1]] += 1
    cache = init_cache(flask.Flask(__name__), {"CACHE_TYPE": "NullCache"})
    data = views.briefing(engine, gd, cache, now=REPORTED + dt.timedelta(hours=2))
    level = "city" if with_cities else "county"
    assert data["level"] == level and data["parent_level"] is None
    assert [r["unit"] for r in data["rows"]] == h.codes(level)
    up = (lambda t: COUNTIES[county_of[t]][1]) if with_cities else county_of.get
    expect: dict = {}
    for town, n in want.items():
        expect[up(town)] = expect.get(up(town), 0) + n
    assert {r["unit"]: r["new"] for r in data["rows"]} == {c: expect.get(c, 0) for c in h.codes(level)}
    assert data["totals"]["new"] == sum(want.values())
    severe = [r for r in data["rows"] if r["notable"]]
    assert [r["unit"] for r in severe] == [up(towns[-1])] and severe[0]["notable"][0]["severity"] == 4
    page = str(ui.briefing_layout(data, h, "zh"))
    assert all(h.name(level, c, "zh") in page for c in h.codes(level)) and "片区" not in ui.title(data, "zh")
    assert ui.title(data, "en").endswith("per " + ("city" if with_cities else "county"))
    assert ui.briefing_pdf(data, h, "en").startswith(b"%PDF")


def test_duty_desk_place_choices_above_the_towns(multi_app, geo, monkeypatch):
    """The duty desk's place controls on a province: cities and counties to choose from, each narrowing the ones
    below; a list longer than the cap waits for a narrower choice (a province's 67k grids are never shipped)."""
    from dashboard.services import duty

    county_of = county_of_towns(geo.towns)
    with multi_app.app_context():
        every = duty.place_options("zh")
        assert [o["value"] for o in every["city"]] == sorted({ct for _, ct in COUNTIES.values()})
        assert [o["value"] for o in every["county"]] == sorted(COUNTIES)
        assert {o["label"] for o in every["county"]} == {f"{n} · 甲市" if ct == "990100" else f"{n} · 乙市"
                                                          for n, ct in COUNTIES.values()}
        assert len(every["town"]) == len(geo.towns) and len(every["grid"]) == len(geo.grids)
        in_city = duty.place_options("zh", cities=["990100"])
        assert [o["value"] for o in in_city["county"]] == sorted(c for c, (_, ct) in COUNTIES.items()
                                                                 if ct == "990100")
        assert {o["value"] for o in in_city["town"]} == {t for t, c in county_of.items() if COUNTIES[c][1] == "990100"}
        county = "990102"
        mine = {t for t, c in county_of.items() if c == county}
        in_county = duty.place_options("en", counties=[county])
        assert {o["value"] for o in in_county["town"]} == mine
        assert all(o["label"].endswith(" · " + COUNTIES[county][0]) for o in in_county["town"])
        assert {o["value"] for o in in_county["zone"]} == set(geo.zones.loc[geo.zones["town_code"].isin(mine), "code"])
        assert duty.place_options("zh", counties=[county], cities=["990200"])["town"] == []  # both: none in both

        cap = int(geo.grids.groupby("town_code").size().max()) + 1  # more than any town's grids, fewer than all
        monkeypatch.setattr(duty, "PLACE_OPTIONS_MAX", cap)
        capped = duty.place_options("zh")
        assert capped["grid"] == [] and len(geo.grids) > cap
        town = sorted(mine)[0]
        narrowed = duty.place_options("zh", towns=[town])
        assert {o["value"] for o in narrowed["grid"]} == set(geo.grids.loc[geo.grids["town_code"] == town, "code"])


def test_single_county_desk_has_no_city_or_county_choice(app):
    from dashboard.services import duty

    with app.app_context():
        places = duty.place_options("zh")
    assert places["city"] is None and places["county"] is None and places["town"] and places["grid"]
