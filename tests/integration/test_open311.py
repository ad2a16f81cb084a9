"""Open311 GeoReport v2 against a real server on a free localhost port, with the `georeport` client (PyPI).

georeport 0.3.1 lists services and reads requests; it has no call to create one, so the POST is sent the
way the spec defines it (form-encoded, with `requests`, which georeport itself uses). The spec leaves reading
requests open; this dashboard is private by default, so its reads need the ``api_key`` (a token with the read
scope) too: the client's GETs are given it.
"""
from __future__ import annotations

import threading

import pytest
import requests
from georeport import GeoReport
from sqlalchemy import text
from werkzeug.serving import make_server

from dashboard.store import catalogue

TOKEN = "test-token"


@pytest.fixture
def server_url(app):
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        t.join(5)
        srv.server_close()


@pytest.fixture
def client311(server_url, monkeypatch):
    import types

    import georeport.georeport as module

    def get_with_key(url, params=None, **kw):
        return requests.get(url, params={**(params or {}), "api_key": TOKEN}, **kw)

    monkeypatch.setattr(module, "requests", types.SimpleNamespace(get=get_with_key, post=requests.post))
    return GeoReport(server_url + "/open311/v2", api_key=TOKEN)


def counts(app):
    with app.extensions["dashboard"].engine.connect() as c:
        return (c.execute(text("SELECT COUNT(*) FROM incidents")).scalar_one(),
                c.execute(text("SELECT COUNT(*) FROM incident_events")).scalar_one())


def post_form(client311, **form):
    data = {"api_key": client311.api_key, **form}
    return requests.post(f"{client311.root_address}/requests.json", data=data, timeout=10)


def test_round_trip_with_georeport(client311, points, app):
    services = client311.get_service_list()
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {c.service_code for c in catalogue.CATEGORIES.values()}
    hazchem = catalogue.get("safety.hazchem")
    assert "危险化学品" in by_code[hazchem.service_code]["service_name"]
    definition = client311.get_service_definition(hazchem.service_code)
    assert {a["code"] for a in definition["attributes"]} == {"subcategory", "severity", "client_ref"}

    lon, lat, grid, zone, town = points[2]
    r = post_form(client311, service_code=hazchem.service_code, lat=str(lat), long=str(lon),
                  description="仓库内存放大量危化品", address_string="道场乡某仓库",
                  **{"attribute[subcategory]": "illegal_storage", "attribute[severity]": "4",
                     "attribute[client_ref]": "o311-1"}, first_name="张", last_name="三", email="z@example.org")
    assert r.status_code == 201, r.text
    created = r.json()
    assert isinstance(created, list) and len(created) == 1
    rid = created[0]["service_request_id"]
    assert rid.startswith("WX")

    anon = requests.get(f"{client311.root_address}/requests/{rid}.json", timeout=10)
    assert anon.status_code == 401 and anon.json()[0]["code"] == 401  # private by default, in Open311's error form
    one = client311.get_service_request(rid)
    assert one["service_request_id"] == rid and one["status"] == "open"
    assert one["service_code"] == hazchem.service_code and one["description"] == "仓库内存放大量危化品"
    assert one["address"] == "道场乡某仓库" and one["address_id"] == grid
    assert abs(one["lat"] - lat) < 1e-9 and abs(one["long"] - lon) < 1e-9
    assert "reported" in one["status_notes"] and "已上报" in one["status_notes"]

    many = client311.get_service_requests(service_request_id=rid)
    assert [m["service_request_id"] for m in many] == [rid]
    listed = client311.get_service_requests(service_code=hazchem.service_code, status="open")
    assert rid in [m["service_request_id"] for m in listed]
    assert client311.get_service_requests(status="closed") == []

    # the incident is the same one the JSON API sees, placed in its grid, with the reporter and severity
    inc = requests.get(f"{client311.root_address.rsplit('/open311', 1)[0]}/api/v1/incidents?q={rid}",
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()["items"][0]
    assert (inc["grid_code"], inc["zone_code"], inc["town_code"]) == (grid, zone, town)
    assert inc["severity"] == 4 and inc["subcategory"] == "illegal_storage" and inc["reporter"] == "张 三"
    assert inc["source"] == "citizen"

    # idempotent via attribute[client_ref]
    again = post_form(client311, service_code=hazchem.service_code, lat=str(lat), long=str(lon),
                      description="重复", **{"attribute[client_ref]": "o311-1"})
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == rid
    assert counts(app) == (1, 1)


def test_closed_status_and_detailed_notes(client311, client, points):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = post_form(client311, service_code=catalogue.get("city.appearance").service_code, lat=str(points[0][1]),
                  long=str(points[0][0]), description="出店经营")
    rid = r.json()[0]["service_request_id"]
    iid = client.get(f"/open311/v2/requests/{rid}.json").json[0]
    numeric = client.get(f"/api/v1/incidents?q={rid}").json["items"][0]["id"]
    assert client.get(f"/open311/v2/requests/{numeric}.json").json[0]["service_request_id"] == rid
    for to in ("onsite_handled", "verified", "closed"):
        client.post(f"/api/v1/incidents/{numeric}/transitions", json={"to": to, "actor": "w", "actor_role": "grid_worker"},
                    headers=auth)
    got = client311.get_service_request(rid)
    assert got["status"] == "closed" and "已结案" in got["status_notes"] and iid["status"] == "open"
    assert [x["service_request_id"] for x in client311.get_service_requests(status="closed")] == [rid]
    # page / page_size
    assert len(client311.get_service_requests()) == 1
    assert client.get("/open311/v2/requests.json?page=2&page_size=1").json == []


def test_discovery(client):
    d = client.get("/open311/v2/discovery.json").json
    assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert d["endpoints"][0]["url"].endswith("/open311/v2")


OPEN311_ERRORS = [
    ("no_api_key", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x"}, None, 401, "api_key"),
    ("bad_api_key", {"api_key": "nope", "service_code": "201", "lat": "LAT", "long": "LON", "description": "x"},
     None, 401, "api_key"),
    ("unknown_service", {"service_code": "999", "lat": "LAT", "long": "LON", "description": "x"}, TOKEN, 400,
     "service_code"),
    ("missing_lat", {"service_code": "201", "long": "LON", "description": "x"}, TOKEN, 400, "lat"),
    ("text_long", {"service_code": "201", "lat": "LAT", "long": "east", "description": "x"}, TOKEN, 400, "long"),
    ("nan_lat", {"service_code": "201", "lat": "nan", "long": "LON", "description": "x"}, TOKEN, 400, "lat"),
    ("outside", {"service_code": "201", "lat": "29.0", "long": "121.5", "description": "x"}, TOKEN, 422, "lat/long"),
    ("missing_description", {"service_code": "201", "lat": "LAT", "long": "LON"}, TOKEN, 400, "description"),
    ("bad_severity", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                      "attribute[severity]": "9"}, TOKEN, 400, "attribute[severity]"),
    ("bad_subcategory", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                         "attribute[subcategory]": "nope"}, TOKEN, 422, "attribute[subcategory]"),
    ("spaced_lat", {"service_code": "201", "lat": " LAT", "long": "LON", "description": "x"}, TOKEN, 400, "lat"),
    ("underscored_long", {"service_code": "201", "lat": "LAT", "long": "1_20", "description": "x"}, TOKEN, 400,
     "long"),
    ("infinite_lat", {"service_code": "201", "lat": "1e999", "long": "LON", "description": "x"}, TOKEN, 400, "lat"),
    ("nul_in_name", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                     "first_name": "a\x00b"}, TOKEN, 400, "first_name"),
    ("long_email", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                    "email": "e" * 255}, TOKEN, 400, "email"),
    ("bad_source", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                    "attribute[source]": "fax"}, TOKEN, 400, "attribute[source]"),
    ("spaced_severity", {"service_code": "201", "lat": "LAT", "long": "LON", "description": "x",
                         "attribute[severity]": " 2"}, TOKEN, 400, "attribute[severity]"),
]


@pytest.mark.parametrize("name,form,key,status,field", OPEN311_ERRORS, ids=[e[0] for e in OPEN311_ERRORS])
def test_open311_post_errors(client, app, points, name, form, key, status, field):
    form = {k: v.replace("LAT", str(points[0][1])).replace("LON", str(points[0][0])) for k, v in form.items()}
    if key:
        form["api_key"] = key
    before = counts(app)
    r = client.post("/open311/v2/requests.json", data=form)
    assert r.status_code == status, r.data
    body = r.get_json()
    assert isinstance(body, list) and body[0]["code"] == status
    assert body[0]["description"].startswith(field), body
    assert counts(app) == before


@pytest.mark.parametrize("url,status", [
    ("/open311/v2/requests/WX20190101-999999.json", 404),
    ("/open311/v2/requests/99999999999999999999999.json", 404),
    ("/open311/v2/services/000.json", 404),
    ("/open311/v2/requests.json?status=pending", 400),
    ("/open311/v2/requests.json?start_date=yesterday", 400),
    ("/open311/v2/requests.json?page_size=100000", 400),
    ("/open311/v2/requests.json?page=0", 400),
    ("/open311/v2/requests.json?service_code=999", 400),
    ("/open311/v2/requests.json?page=%C2%B2", 400),  # '²': a digit to str.isdigit, not to int() (a 500 before)
    ("/open311/v2/requests.json?service_request_id=1&page_size=100000", 400),  # checked also when ids override
    ("/open311/v2/requests.json?service_request_id=1&start_date=never", 400),
    ("/open311/v2/requests.json?service_request_id=a%20b", 400),
    ("/open311/v2/requests/%C2%B2.json", 404),
    ("/open311/v2/nothing.json", 404),
])
def test_open311_get_errors(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    body = r.get_json()
    assert isinstance(body, list) and body[0]["code"] == status and body[0]["description"]


def test_open311_json_body_is_refused(client, app, points):
    before = counts(app)
    r = client.post("/open311/v2/requests.json", json={"api_key": TOKEN, "service_code": "201"})
    assert r.status_code == 415 and r.get_json()[0]["code"] == 415
    assert counts(app) == before


def test_open311_body_over_1mb(client, app, points):
    before = counts(app)
    r = client.post("/open311/v2/requests.json", data={"api_key": TOKEN, "service_code": "201",
                                                       "lat": str(points[0][1]), "long": str(points[0][0]),
                                                       "description": "x" * (1024 * 1024 + 1)})
    assert r.status_code == 413 and r.get_json()[0]["code"] == 413
    assert counts(app) == before


def test_open311_no_5xx_for_random_forms(client, app, points):
    import random

    rng = random.Random(311)
    odd = ["", " ", "\x00", "nan", "inf", "-inf", "1e999", "999", "101", "301", "x" * 5000, "🚒", "0", "-91",
           "30.8", "120.1", str(points[0][0]), str(points[0][1]), "open", "closed", "9999-12-31T23:59:59.999999Z",
           "0001-01-01T00:00:00+14:00", "1,2,3", "WX20190101-000001", "%_"]
    fields = ["api_key", "service_code", "lat", "long", "description", "address_string", "attribute[subcategory]",
              "attribute[severity]", "attribute[client_ref]", "first_name", "last_name", "email", "phone"]
    for _ in range(150):
        form = {"api_key": TOKEN, "service_code": "201", "lat": str(points[0][1]), "long": str(points[0][0]),
                "description": "x"}
        for f in rng.sample(fields, rng.randint(1, 4)):
            form[f] = rng.choice(odd)
        before = counts(app)
        r = client.post("/open311/v2/requests.json", data=form)
        assert r.status_code < 500, (form, r.data[:200])
        if r.status_code >= 400:
            assert counts(app) == before
            assert r.get_json()[0]["code"] == r.status_code
    for _ in range(100):
        q = {p: rng.choice(odd) for p in rng.sample(["service_request_id", "service_code", "start_date", "end_date",
                                                     "status", "page", "page_size"], rng.randint(1, 4))}
        r = client.get("/open311/v2/requests.json", query_string=q)
        assert r.status_code < 500, (q, r.data[:200])
