"""Private by default (issue 11): every page, read route, map payload and Dash callback checks who asks on the
server; the kiosk reads what the wall shows and nothing else; tokens act within their scopes; personal data
reaches only the audiences that need it (reporters and phones: duty officers and admins; staff names: leaders
too; the wall: neither); PUBLIC_OVERVIEW=1 opens the overview's aggregates and anonymised markers only."""
from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import signed_in_client
from tests.integration.conftest import small_history_app
from tests.integration.test_callback_guard import _outputs

ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}
TOKENS = ("full-token", "reader-token:read", "ingest-token:ingest", "personal-token:personal")
WALL_TOKEN = "wall-screen-1"
PAGES = ("/", "/briefing", "/incidents", "/wall")
READ_ROUTES = ("/api/v1/incidents?limit=5", "/api/v1/changes?after=0&limit=5", "/api/v1/alerts",
               "/api/v1/kpis?period=7d", "/api/v1/incidents/export.csv?limit=5", "/open311/v2/requests.json")
WALL_ROUTES = ("/api/geo/zones.json", "/api/map/incidents.json", "/api/map/measures.json?measure=open_incidents",
               "/api/map/incident_cells.json?bbox=119.8,30.6,120.4,31&zoom=10")
PUBLIC_ROUTES = ("/login", "/healthz", "/api/v1/openapi.json", "/api/v1/catalogue", "/open311/v2/services.json",
                 "/assets/dashboard.css")
PHONE = "13912345678"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return small_history_app(tmp_path_factory.mktemp("access"), cache_url="null", api_tokens=TOKENS,
                             wall_tokens=(WALL_TOKEN,))


@pytest.fixture(scope="module")
def incident(app):
    """A report with a phone number and two residents named in it (marked in ``persons``)."""
    from dashboard.geodata import load_geodata

    gd = load_geodata(app.server.extensions["dashboard"].settings.geodata_dir)
    point = gd.grids.geometry.iloc[10].representative_point()
    body = {"category": "dispute.civil", "lon": point.x, "lat": point.y, "reporter": "赵网格员",
            "reporter_phone": PHONE, "description": "张三与李四因漏水纠纷K7Q，张三要求赔偿", "address": "李四家楼下",
            "persons": ["张三", "李四"], "client_ref": "access-1"}
    r = app.server.test_client().post("/api/v1/incidents", json=body, headers=bearer("full-token"))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def wall_client(app):
    c = app.server.test_client()
    r = c.get(f"/wall?token={WALL_TOKEN}")
    assert r.status_code == 303 and WALL_TOKEN not in r.headers["Location"]
    return c


def replay(client, deps, pick) -> dict:
    """Status per callback output for each callback ``pick`` selects, called with harmless values."""
    out = {}
    for cb in deps:
        if not pick(cb["output"]):
            continue
        body = {"output": cb["output"], "outputs": _outputs(cb["output"]),
                "inputs": [{"id": i["id"], "property": i["property"], "value": None} for i in cb["inputs"]],
                "state": [{"id": s["id"], "property": s["property"], "value": None} for s in cb["state"]],
                "changedPropIds": []}
        out[cb["output"]] = client.post("/_dash-update-component", json=body, headers=ORIGIN).status_code
    return out


def test_anonymous_gets_nothing_but_the_sign_in(app, incident):
    anon = app.server.test_client()
    for path in PAGES:
        r = anon.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login?next="), path
    for path in READ_ROUTES + WALL_ROUTES + (f"/api/v1/incidents/{incident['id']}",):
        r = anon.get(path)
        assert r.status_code == 401 and (r.get_json()[0]["code"] == 401 if path.startswith("/open311")
                                         else r.get_json()["error"]["code"] == "unauthorized"), path
    for path in PUBLIC_ROUTES:
        assert anon.get(path).status_code == 200, path
    # the layout a page's script asks for renders no page for an anonymous caller, only the way to sign in
    for path in PAGES:
        layout = anon.get("/_dash-layout", headers={"Referer": f"http://localhost{path}"}).get_data(as_text=True)
        assert "page-refused" in layout and "kpi-cards" not in layout and "wall-ticker" not in layout, path
    # every callback but the router refuses, before it runs
    deps = anon.get("/_dash-dependencies").get_json()
    statuses = replay(anon, deps, lambda out: "page.children" not in out)
    assert statuses and set(statuses.values()) == {401}, {k: v for k, v in statuses.items() if v != 401}


def test_a_bad_token_is_refused_even_where_reading_is_open(app):
    anon = app.server.test_client()
    assert anon.get("/api/v1/catalogue", headers=bearer("revoked")).status_code == 401
    assert anon.get("/api/v1/incidents", headers=bearer("revoked")).status_code == 401


def test_the_kiosk_reads_what_the_wall_shows_and_nothing_else(app, incident):
    wall = wall_client(app)
    assert wall.get("/wall").status_code == 200
    for path in ("/", "/briefing", "/incidents"):
        r = wall.get(path)
        assert r.status_code == 302 and "denied=1" in r.headers["Location"], path
    for path in WALL_ROUTES:
        assert wall.get(path).status_code == 200, path
    markers = wall.get("/api/map/incidents.json").get_data(as_text=True)
    assert PHONE not in markers and "赵网格员" not in markers and "K7Q" not in markers
    for path in READ_ROUTES + (f"/api/v1/incidents/{incident['id']}",):
        assert wall.get(path).status_code == 403, path
    deps = wall.get("/_dash-dependencies").get_json()
    duty = replay(wall, deps, lambda out: "duty-grid.rowData" in out or "duty-detail.children" in out
                  or "kpi-cards.children" in out or "alert-store.data" in out)
    assert len(duty) >= 4 and set(duty.values()) == {403}, duty
    own = replay(wall, deps, lambda out: "wall-header.data" in out)  # the minute refresh (the rest is pushed)
    assert len(own) == 1 and all(s in (200, 204) for s in own.values()), own
    # the wall's live parts come in its stream; the duty desk's list and alert parts are not for the kiosk
    import json
    from urllib.parse import quote

    parts = {"wall": {"lang": "zh"},
             "wallfigures": {"lang": "zh", "rank": "resolution_rate", "rank_period": "month", "rank_n": 5}}
    r = wall.get("/api/map/stream?push=" + quote(json.dumps(parts)), buffered=False)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    r.close()
    for part in ({"list": {"q": "status=open", "lang": "zh"}}, {"alerts": {"lang": "zh", "ack": True}}):
        r = wall.get("/api/map/stream?push=" + quote(json.dumps(part)))
        assert r.status_code == 403 and r.get_json()["error"]["field"] == "push", part


def test_tokens_act_within_their_scopes(app, incident):
    c = app.server.test_client()
    one = f"/api/v1/incidents/{incident['id']}"
    assert c.get(one, headers=bearer("ingest-token")).status_code == 403  # may post, may not read
    new = {"category": "city.appearance", "lon": incident["lon"], "lat": incident["lat"], "description": "占道"}
    assert c.post("/api/v1/incidents", json=new, headers=bearer("ingest-token")).status_code == 201
    assert c.post("/api/v1/incidents", json=new, headers=bearer("reader-token")).status_code == 403  # may not post
    # an existing client_ref answers with the existing incident as the token may see it: no fishing for reports
    same = c.post("/api/v1/incidents", json={**new, "client_ref": "access-1"}, headers=bearer("ingest-token"))
    assert same.status_code == 200 and same.get_json()["id"] == incident["id"]
    assert same.get_json()["reporter"] is None and PHONE not in same.get_data(as_text=True)
    step = c.post(f"{one}/transitions", headers=bearer("full-token"),
                  json={"to": "onsite_handled", "actor": "钱网格员", "actor_role": "grid_worker", "note": "已劝解张三"})
    assert step.status_code == 200, step.get_json()
    staff = c.get(one, headers=bearer("reader-token")).get_json()
    assert staff["reporter"] is None and "reporter_phone" not in staff and "persons" not in staff
    assert "张三" not in json.dumps(staff, ensure_ascii=False) and "某某" in staff["description"]
    # staff names are for staff; the report's actor is its reporter: not for them
    assert [e["actor"] for e in staff["events"]] == [None, "钱网格员"] and staff["events"][1]["note"] == "已劝解某某"
    full = c.get(one, headers=bearer("personal-token")).get_json()
    assert full["reporter"] == "赵网格员" and full["reporter_phone"] == PHONE and full["persons"] == ["张三", "李四"]
    assert full["description"] == "张三与李四因漏水纠纷K7Q，张三要求赔偿" and full["address"] == "李四家楼下"
    assert [e["actor"] for e in full["events"]] == ["赵网格员", "钱网格员"] and full["events"][1]["note"] == "已劝解张三"


@pytest.mark.parametrize("role,personal", [("leader", False), ("duty_officer", True), ("admin", True)])
def test_personal_data_by_role(app, incident, role, personal):
    client = signed_in_client(app.server, role)
    one = client.get(f"/api/v1/incidents/{incident['id']}").get_json()
    assert (one["reporter"] == "赵网格员") is personal and ("reporter_phone" in one) is personal
    assert ("张三" in one["description"]) is personal and ("李四" in one["address"]) is personal
    listed = client.get("/api/v1/incidents?q=K7Q").get_json()["items"]
    assert [i["id"] for i in listed] == [incident["id"]] and (listed[0]["reporter"] is not None) is personal
    rows = list(csv.reader(io.StringIO(client.get(f"/api/v1/incidents/export.csv?q=K7Q")
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    row = dict(zip(rows[0], rows[1]))
    assert (row["上报人"] == "赵网格员") is personal and ("张三" in row["描述"]) is personal
    assert PHONE not in json.dumps(rows, ensure_ascii=False)  # exports never carry phone numbers
    # the duty desk's detail, through its callback
    deps = client.get("/_dash-dependencies").get_json()
    cb = next(d for d in deps if "duty-detail.children" in d["output"])
    values = {"duty-selected": {"id": incident["id"]}, "duty-detail-refresh": None, "duty-conf": None}
    body = {"output": cb["output"], "outputs": _outputs(cb["output"]),
            "inputs": [{**i, "value": values.get(i["id"])} for i in cb["inputs"]],
            "state": [{**s, "value": values.get(s["id"])} for s in cb["state"]], "changedPropIds": []}
    r = client.post("/_dash-update-component", json=body, headers=ORIGIN)
    assert r.status_code == 200
    text = json.dumps(r.get_json(), ensure_ascii=False)
    assert "K7Q" in text
    assert (PHONE in text) is personal and ("赵网格员" in text) is personal and ("张三" in text) is personal


def test_public_overview_opens_aggregates_and_anonymised_markers_only(tmp_path, app, incident):
    import dataclasses

    from dashboard import create_app

    settings = dataclasses.replace(app.server.extensions["dashboard"].settings, public_overview=True,
                                   instance_dir=tmp_path)
    anon = create_app(settings).server.test_client()
    assert anon.get("/").status_code == 200
    for path in WALL_ROUTES:
        assert anon.get(path).status_code == 200, path
    markers = anon.get("/api/map/incidents.json").get_data(as_text=True)
    assert PHONE not in markers and "K7Q" not in markers and "赵网格员" not in markers
    for path in READ_ROUTES:
        assert anon.get(path).status_code == 401, path
    for path in ("/incidents", "/briefing", "/wall"):
        assert anon.get(path).status_code == 302, path


def test_signed_in_users_see_their_pages(app):
    for role, pages in (("leader", ("/", "/briefing", "/incidents", "/wall")), ("wall", ("/wall",))):
        client = signed_in_client(app.server, role)
        for path in pages:
            assert client.get(path).status_code == 200, (role, path)
