"""GET /api/map/measures.json (the choropleth's numbers) on a small generated history with a file-system cache:
live counts equal the open incidents in the store and follow a new report on the next request (the cache is keyed
by change sequence), period measures equal /api/v1/kpis, bad input is a 400 naming the field."""
from __future__ import annotations

from collections import Counter

import pytest
from shapely.geometry import shape

from tests.integration.conftest import small_history_app
from tests.conftest import reading_client

TOKEN = "measures-token"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("map-measures")
    return small_history_app(base, api_tokens=(TOKEN,), cache_url=f"file://{base / 'cache'}")


@pytest.fixture(scope="module")
def client(app):
    return reading_client(app.server)


def _open_by(client, key: str) -> Counter:
    counts, cursor = Counter(), None
    while True:
        body = client.get("/api/v1/incidents?status=open&limit=1000" + (f"&cursor={cursor}" if cursor else "")).get_json()
        counts.update(item[key] for item in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return counts


@pytest.mark.parametrize("layer,key", [("zones", "zone_code"), ("grids", "grid_code"), ("towns", "town_code")])
def test_open_counts_equal_the_store(client, layer, key):
    body = client.get(f"/api/map/measures.json?layer={layer}&measure=open_incidents").get_json()
    expected = _open_by(client, key)
    assert sum(expected.values()) > 0
    assert {c: int(v) for c, v in body["values"].items() if v} == dict(expected)
    assert body["live"] is True and body["breaks"] == sorted(body["breaks"])
    assert len(body["colors"]) == len(body["breaks"]) + 1


def test_a_new_report_is_counted_on_the_next_request(app, client):
    gd = app.server.extensions["dashboard"].geodata()
    zone = gd.zones.iloc[7]
    point = shape(gd.grids[gd.grids["zone_code"] == zone.code].geometry.iloc[0]).representative_point()
    before = client.get("/api/map/measures.json?layer=zones&measure=open_incidents").get_json()["values"]
    again = client.get("/api/map/measures.json?layer=zones&measure=open_incidents").get_json()["values"]
    assert again == before  # served from the cache, same numbers
    r = client.post("/api/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"},
                    json={"category": "city.sanitation", "description": "垃圾堆放", "lon": point.x, "lat": point.y})
    assert r.status_code == 201, r.get_json()
    after = client.get("/api/map/measures.json?layer=zones&measure=open_incidents").get_json()["values"]
    assert after[zone.code] == (before.get(zone.code) or 0) + 1
    assert {c: v for c, v in after.items() if c != zone.code} == {c: v for c, v in before.items() if c != zone.code}


def test_a_current_period_measure_follows_a_new_report(app, client):
    """A period measure's payload is cached by its bundle's key (the store's version, or a current period's next
    report and due time): served again from the cache, and a new report is counted on the next request."""
    gd = app.server.extensions["dashboard"].geodata()
    zone = gd.zones.iloc[12]
    point = shape(gd.grids[gd.grids["zone_code"] == zone.code].geometry.iloc[0]).representative_point()
    url = "/api/map/measures.json?layer=zones&measure=new_incidents&period=30d"
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304  # the same payload
    before = first.get_json()["values"]
    r = client.post("/api/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"},
                    json={"category": "city.sanitation", "description": "占道经营", "lon": point.x, "lat": point.y})
    assert r.status_code == 201, r.get_json()
    after = client.get(url).get_json()["values"]
    assert after[zone.code] == (before.get(zone.code) or 0) + 1
    assert {c: v for c, v in after.items() if c != zone.code} == {c: v for c, v in before.items() if c != zone.code}


def test_period_measure_equals_the_kpi_api(app, client):
    gd = app.server.extensions["dashboard"].geodata()
    body = client.get("/api/map/measures.json?layer=zones&measure=onsite_handling_rate&period=2019").get_json()
    assert body["live"] is False and body["format"] == "pct" and body["period"]["from"] == "2019-01-01"
    for code in gd.zones["code"].iloc[[0, 11, 45]]:
        kpi = client.get(f"/api/v1/kpis?level=zone&code={code}&period=2019").get_json()["kpis"]
        assert body["values"][code] == pytest.approx(kpi["onsite_handling_rate"], abs=5e-5)  # 0.01 pp, as the cards


@pytest.mark.parametrize("query,field", [
    ("layer=counties", "layer"),
    ("measure=happiness", "measure"),
    ("measure=new_incidents&period=1999", "period"),
    ("measure=new_incidents&period=custom&from=2019-02-30", "from"),
])
def test_bad_input_is_a_400_naming_the_field(client, query, field):
    r = client.get(f"/api/map/measures.json?{query}")
    assert r.status_code == 400
    assert r.get_json()["error"]["field"] == field


def test_hours_and_rates_are_rounded_for_display(client):
    hours = client.get("/api/map/measures.json?layer=grids&measure=median_hours_to_close&period=2019").get_json()
    shown = [v for v in hours["values"].values() if v is not None] + hours["breaks"]
    assert shown and all(round(v, 1) == v for v in shown)
    rates = client.get("/api/map/measures.json?layer=grids&measure=resolution_rate&period=2019").get_json()
    assert all(round(v, 4) == v for v in rates["values"].values() if v is not None)
