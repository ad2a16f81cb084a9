"""The levels above the towns through the HTTP API: a city or province set (the seed's towns regrouped into
counties and cities, ``tests/regrouped.py``) answers ``GET /api/v1/kpis`` for its cities and counties, rolls the
children up at every level, and refuses levels and codes it does not have."""
from __future__ import annotations

import datetime as dt

import pytest

from dashboard.store import catalogue
from dashboard.store import incidents as repo
from tests.regrouped import COUNTIES, PROVINCE, county_of_towns, write_regrouped

from .conftest import READ_TOKEN

CATEGORY = next(iter(catalogue.CATEGORIES))
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
    now = REPORTED
    with sessions() as s:
        for town, n in n_per_town.items():
            g = geo.grids[geo.grids["town_code"] == town].iloc[0]
            for _ in range(n):
                repo.create_incident(s, repo.NewIncident(category=CATEGORY, lon=120.1, lat=30.85,
                                                         grid_code=g["code"], zone_code=g["zone_code"],
                                                         town_code=town, reported_at=now))


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
