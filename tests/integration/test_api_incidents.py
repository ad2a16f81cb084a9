"""/api/v1: create, idempotency, the full lifecycle table over HTTP, filters against a hand-made fixture,
pagination, GeoJSON, changes feed, catalogue and the OpenAPI document. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time

import pytest
from sqlalchemy import text

from dashboard.store import catalogue
from tests.conftest import reading_client
from tests.integration.conftest import INGEST_TOKEN, READ_TOKEN


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}

UTC = dt.timezone.utc
STATES = ["reported", "onsite_handled", "routed", "in_progress", "handled", "escalated", "assigned",
          "verified", "closed"]
# docs/data-model.md, written out independently of the code
DOC_STEPS = {("reported", "onsite_handled"), ("reported", "routed"), ("onsite_handled", "verified"),
             ("routed", "in_progress"), ("routed", "escalated"), ("escalated", "assigned"),
             ("assigned", "in_progress"), ("in_progress", "handled"), ("handled", "verified"),
             ("verified", "closed")}
PATH_TO = {
    "reported": [],
    "onsite_handled": ["onsite_handled"],
    "routed": ["routed"],
    "in_progress": ["routed", "in_progress"],
    "handled": ["routed", "in_progress", "handled"],
    "escalated": ["routed", "escalated"],
    "assigned": ["routed", "escalated", "assigned"],
    "verified": ["onsite_handled", "verified"],
    "closed": ["onsite_handled", "verified", "closed"],
}


def counts(app) -> tuple[int, int]:
    engine = app.extensions["dashboard"].engine
    with engine.connect() as c:
        return (c.execute(text("SELECT COUNT(*) FROM incidents")).scalar_one(),
                c.execute(text("SELECT COUNT(*) FROM incident_events")).scalar_one())


def post(client, auth, point, **kw):
    body = {"category": "dispute.civil", "description": "邻里纠纷：噪音", "lon": point[0], "lat": point[1]}
    body.update(kw)
    return client.post("/api/v1/incidents", json=body, headers=auth)


def step(client, auth, iid, to, role="grid_worker", **kw):
    body = {"to": to, "actor": "测试员", "actor_role": role}
    if to == "assigned":
        body["department"] = "enforcement"
    body.update(kw)
    return client.post(f"/api/v1/incidents/{iid}/transitions", json=body, headers=auth)


def walk(client, auth, iid, path):
    for to in path:
        r = step(client, auth, iid, to)
        assert r.status_code == 200, r.json


# ----------------------------------------------------------------------------------------------- create
def test_post_places_incident_in_its_grid(client, auth, points, app):
    lon, lat, grid, zone, town = points[3]
    r = post(client, auth, points[3], category="safety.hazchem", subcategory="illegal_storage",
             address="道场乡某仓库", reporter="王网格", reporter_phone="13800000000", client_ref="c-1")
    assert r.status_code == 201, r.json
    b = r.json
    assert (b["grid"], b["zone"], b["town"]) == (grid, zone, town)
    assert isinstance(b["id"], int) and b["code"].startswith("WX") and b["status"] == "reported"
    assert b["severity"] == catalogue.get("safety.hazchem").default_severity
    assert r.headers["Location"].endswith(f"/api/v1/incidents/{b['id']}")
    assert counts(app) == (1, 1)
    # the public read hides the phone number; with a token it is there
    anon = app.test_client()
    assert anon.get(f"/api/v1/incidents/{b['id']}").status_code == 401  # private by default
    assert anon.get(f"/api/v1/incidents/{b['id']}", headers=bearer(INGEST_TOKEN)).status_code == 403
    staff = anon.get(f"/api/v1/incidents/{b['id']}", headers=bearer(READ_TOKEN)).json
    assert "reporter_phone" not in staff and staff["reporter"] is None and staff["events"][0]["to_status"] == "reported"
    assert staff["events"][0]["actor"] is None  # the report's actor is its reporter: personal data
    assert client.get(f"/api/v1/incidents/{b['id']}", headers=auth).json["reporter_phone"] == "13800000000"


def test_repeated_client_ref_returns_the_same_incident(client, auth, points, app):
    r1 = post(client, auth, points[0], client_ref="phone-42-0001")
    r2 = post(client, auth, points[5], client_ref="phone-42-0001", description="重发")
    assert r1.status_code == 201 and r2.status_code == 200
    assert r1.json["id"] == r2.json["id"] and r2.json["description"] == r1.json["description"]
    assert counts(app) == (1, 1)


def test_concurrent_posts_same_client_ref_store_one(app, auth, points):
    n = 6
    barrier = threading.Barrier(n)
    out = []

    def worker(i):
        c = app.test_client()
        barrier.wait()
        r = post(c, auth, points[i], client_ref="race-1")
        out.append((r.status_code, r.json.get("id")))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(s for s, _ in out) == [200] * (n - 1) + [201]
    assert len({i for _, i in out}) == 1
    assert counts(app) == (1, 1)


def test_second_token_is_accepted(client, points):
    r = post(client, {"Authorization": "Bearer second-token"}, points[0])
    assert r.status_code == 201


# -------------------------------------------------------------------------------------------- lifecycle
@pytest.mark.parametrize("frm,to", list(itertools.product(STATES, STATES)))
def test_lifecycle_table_over_http(client, auth, points, app, frm, to):
    iid = post(client, auth, points[0]).json["id"]
    walk(client, auth, iid, PATH_TO[frm])
    before = counts(app)
    r = step(client, auth, iid, to)
    if (frm, to) in DOC_STEPS:
        assert r.status_code == 200, r.json
        assert r.json["incident"]["status"] == to and r.json["event"]["from_status"] == frm
        assert counts(app) == (before[0], before[1] + 1)
    else:
        assert r.status_code == 409, r.json
        err = r.json["error"]
        assert err["code"] == "invalid_transition" and err["field"] == "to"
        assert err["current_status"] == frm
        assert set(err["allowed"]) == {t for f, t in DOC_STEPS if f == frm}
        assert frm in err["message"]
        assert counts(app) == before
        assert client.get(f"/api/v1/incidents/{iid}").json["status"] == frm


def test_levels_department_and_close_over_http(client, auth, points):
    iid = post(client, auth, points[1], category="construction.illegal", subcategory="wall_opening").json["id"]
    levels = []
    for to in ["routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed"]:
        r = step(client, auth, iid, to, outcome="resolved") if to == "closed" else step(client, auth, iid, to)
        assert r.status_code == 200, r.json
        levels.append(r.json["incident"]["level"])
    assert levels == ["town", "district", "district", "district", "district", "district", "district"]
    got = client.get(f"/api/v1/incidents/{iid}").json
    assert got["department"] == "enforcement" and got["closed_at"] and got["outcome"] == "resolved"
    assert [e["to_status"] for e in got["events"]] == ["reported", "routed", "escalated", "assigned",
                                                       "in_progress", "handled", "verified", "closed"]


@pytest.mark.parametrize("role", ["station", "town", "district", "department", "duty_officer"])
def test_only_grid_worker_verifies_over_http(client, auth, points, app, role):
    iid = post(client, auth, points[0]).json["id"]
    walk(client, auth, iid, ["onsite_handled"])
    before = counts(app)
    r = step(client, auth, iid, "verified", role=role)
    assert r.status_code == 403 and r.json["error"]["field"] == "actor_role"
    assert counts(app) == before
    assert step(client, auth, iid, "verified", role="grid_worker").status_code == 200


def test_assign_without_department_is_refused(client, auth, points, app):
    iid = post(client, auth, points[0]).json["id"]
    walk(client, auth, iid, ["routed", "escalated"])
    before = counts(app)
    r = client.post(f"/api/v1/incidents/{iid}/transitions", json={"to": "assigned", "actor": "区中心",
                                                                   "actor_role": "district"}, headers=auth)
    assert r.status_code == 400 and r.json["error"]["field"] == "department"
    assert counts(app) == before


# ------------------------------------------------------------------------------- filters on a fixture
NOW = dt.datetime.now(UTC).replace(microsecond=0)
# (key, category, severity, source, point index, reported_at, text, path, department)
FIXTURE = [
    ("a", "safety.hazchem", 4, "patrol", 0, dt.datetime(2019, 4, 24, 1, 0, tzinfo=UTC), "道场乡 危化品仓库", ["routed", "escalated", "assigned"], "emergency"),
    ("b", "construction.illegal", 2, "patrol", 1, dt.datetime(2019, 11, 28, 2, 0, tzinfo=UTC), "横塘路 破墙开门", ["onsite_handled", "verified", "closed"], None),
    ("c", "construction.illegal", 2, "app", 1, dt.datetime(2019, 11, 28, 3, 0, tzinfo=UTC), "横塘路 破墙开门 第二家", ["onsite_handled"], None),
    ("d", "dispute.civil", 1, "hotline", 2, dt.datetime(2019, 3, 1, 0, 0, tzinfo=UTC), "邻里纠纷 漏水", ["routed", "in_progress", "handled", "verified", "closed"], None),
    ("e", "dispute.labour", 2, "citizen", 3, dt.datetime(2019, 7, 15, 6, 0, tzinfo=UTC), "拖欠工资", ["routed", "in_progress"], None),
    ("f", "safety.fire", 3, "patrol", 4, dt.datetime(2019, 8, 2, 9, 0, tzinfo=UTC), "织里 三合一 童装作坊", ["routed"], None),
    ("g", "safety.fire", 2, "app", 4, NOW - dt.timedelta(hours=2), "电动车楼道充电", [], None),
    ("h", "environment.pollution", 2, "citizen", 5, NOW - dt.timedelta(hours=5), "河道排污", ["routed", "escalated"], None),
    ("i", "order.public", 2, "hotline", 6, dt.datetime(2019, 1, 5, 12, 0, tzinfo=UTC), "夜间赌博", ["routed", "in_progress", "handled"], None),
    ("j", "population.migrant", 1, "patrol", 7, dt.datetime(2019, 2, 10, 4, 0, tzinfo=UTC), "出租房 未登记", ["onsite_handled", "verified"], None),
    ("k", "service.ebike_plate", 1, "department", 8, dt.datetime(2019, 5, 20, 4, 0, tzinfo=UTC), "上门上牌", ["onsite_handled", "verified", "closed"], None),
    ("l", "petition.letters", 2, "citizen", 9, dt.datetime(2019, 9, 9, 9, 0, tzinfo=UTC), "信访 来访", ["routed", "escalated", "assigned", "in_progress"], "petition"),
    ("m", "city.sanitation", 1, "app", 10, NOW - dt.timedelta(days=1), "垃圾堆放 100%_done", [], None),
    ("n", "city.appearance", 1, "patrol", 11, dt.datetime(2019, 10, 1, 1, 0, tzinfo=UTC), "出店经营", ["onsite_handled", "verified", "closed"], None),
    ("o", "facility.road", 1, "hotline", 12, dt.datetime(2019, 12, 31, 15, 59, tzinfo=UTC), "井盖缺失", ["routed", "in_progress", "handled", "verified"], None),
    ("p", "market.regulation", 3, "department", 13, dt.datetime(2019, 6, 6, 6, 0, tzinfo=UTC), "无证经营 食品", ["routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed"], "market"),
    ("q", "order.key_persons", 3, "patrol", 14, NOW - dt.timedelta(days=3), "重点人员 走访", ["routed"], None),
    ("r", "safety.production", 4, "patrol", 15, dt.datetime(2019, 4, 24, 3, 0, tzinfo=UTC), "建筑工地 脚手架", ["routed", "escalated", "assigned"], "emergency"),
    ("s", "dispute.civil", 1, "app", 16, NOW - dt.timedelta(minutes=30), "婚姻家庭", [], None),
    ("t", "environment.pollution", 3, "hotline", 17, dt.datetime(2019, 4, 23, 16, 30, tzinfo=UTC), "露天焚烧", ["onsite_handled"], None),
]


def _expected_level(path):
    return "district" if "escalated" in path else "town" if "routed" in path else "onsite"


@pytest.fixture
def fixture_set(client, auth, points):
    made = {}
    for key, cat, sev, src, pi, when, txt, path, dept in FIXTURE:
        r = post(client, auth, points[pi], category=cat, severity=sev, source=src, reported_at=when.isoformat(),
                 description=txt, address=f"测试地址 {key}", client_ref=f"fx-{key}")
        assert r.status_code == 201, r.json
        iid = r.json["id"]
        for to in path:
            body = {"to": to, "actor": "fx", "actor_role": "grid_worker"}
            if to == "assigned":
                body["department"] = dept
            assert client.post(f"/api/v1/incidents/{iid}/transitions", json=body, headers=auth).status_code == 200
        lon, lat, grid, zone, town = points[pi]
        made[key] = dict(id=iid, code=r.json["code"], category=cat, severity=sev, source=src, reported_at=when,
                         text=txt, address=f"测试地址 {key}", status=(path[-1] if path else "reported"),
                         level=_expected_level(path), department=dept, lon=lon, lat=lat, grid=grid, zone=zone,
                         town=town, due_at=when + dt.timedelta(hours=catalogue.get(cat).deadline_hours))
    return made


def fetch_all(client, query: str, limit: int = 3) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        url = f"/api/v1/incidents?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url)
        assert r.status_code == 200, (url, r.json)
        assert len(r.json["items"]) <= limit
        items.extend(r.json["items"])
        cursor = r.json["next_cursor"]
        pages += 1
        if not cursor:
            return items


def _bbox_of(made, keys, pad=1e-4):
    xs = [made[k]["lon"] for k in keys]
    ys = [made[k]["lat"] for k in keys]
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def _cases(made):
    """(query string, predicate over a fixture row) — expected results are computed from FIXTURE."""
    towns = sorted({m["town"] for m in made.values()})
    zones = sorted({m["zone"] for m in made.values()})
    grid_c = made["c"]["grid"]
    bb = _bbox_of(made, ["a", "b", "c"])
    now = dt.datetime.now(UTC)
    return [
        ("", lambda m: True),
        ("status=open", lambda m: m["status"] != "closed"),
        ("status=closed", lambda m: m["status"] == "closed"),
        ("status=routed,assigned", lambda m: m["status"] in ("routed", "assigned")),
        ("category=safety.fire", lambda m: m["category"] == "safety.fire"),
        ("category=construction.illegal,dispute.civil", lambda m: m["category"] in ("construction.illegal", "dispute.civil")),
        ("severity=3,4", lambda m: m["severity"] >= 3),
        ("source=hotline", lambda m: m["source"] == "hotline"),
        ("level=district", lambda m: m["level"] == "district"),
        ("level=onsite", lambda m: m["level"] == "onsite"),
        ("department=emergency", lambda m: m["department"] == "emergency"),
        (f"town={towns[0]}", lambda m: m["town"] == towns[0]),
        (f"town={towns[0]},{towns[1]}", lambda m: m["town"] in towns[:2]),
        (f"zone={zones[2]}", lambda m: m["zone"] == zones[2]),
        (f"grid={grid_c}", lambda m: m["grid"] == grid_c),
        ("from=2019-04-24&to=2019-04-25", lambda m: dt.datetime(2019, 4, 23, 16, tzinfo=UTC) <= m["reported_at"] < dt.datetime(2019, 4, 24, 16, tzinfo=UTC)),
        ("from=2019-11-28T02:00:00Z", lambda m: m["reported_at"] >= dt.datetime(2019, 11, 28, 2, tzinfo=UTC)),
        ("to=2019-03-01T08:00:00%2B08:00", lambda m: m["reported_at"] < dt.datetime(2019, 3, 1, 0, tzinfo=UTC)),
        ("bbox=" + ",".join(f"{v:.6f}" for v in bb),
         lambda m: bb[0] <= m["lon"] <= bb[2] and bb[1] <= m["lat"] <= bb[3]),
        # the other two corners: the same box
        ("bbox=" + ",".join(f"{v:.6f}" for v in (bb[2], bb[1], bb[0], bb[3])),
         lambda m: bb[0] <= m["lon"] <= bb[2] and bb[1] <= m["lat"] <= bb[3]),
        ("status=routed,%20assigned%20", lambda m: m["status"] in ("routed", "assigned")),
        ("q=破墙开门", lambda m: "破墙开门" in m["text"]),
        ("q=100%25_", lambda m: "100%_" in m["text"]),  # LIKE wildcards are literal
        ("q=" + made["d"]["code"], lambda m: m["code"] == made["d"]["code"]),
        ("q=测试地址 k", lambda m: m["address"] == "测试地址 k"),
        ("overdue=1", lambda m: m["status"] != "closed" and m["due_at"] < now),
        ("overdue=0", lambda m: not (m["status"] != "closed" and m["due_at"] < now)),
        ("status=open&severity=2&from=2019-01-01&to=2020-01-01", lambda m: m["status"] != "closed" and m["severity"] == 2 and dt.datetime(2018, 12, 31, 16, tzinfo=UTC) <= m["reported_at"] < dt.datetime(2019, 12, 31, 16, tzinfo=UTC)),
        ("unknown_param=whatever&category=safety.hazchem", lambda m: m["category"] == "safety.hazchem"),
    ]


def test_filters_match_the_fixture(client, fixture_set):
    made = fixture_set
    for query, pred in _cases(made):
        expected = {m["id"] for m in made.values() if pred(m)}
        got = fetch_all(client, query)
        ids = [i["id"] for i in got]
        assert len(ids) == len(set(ids)), query
        assert set(ids) == expected, query
        keys = [(i["reported_at"], i["id"]) for i in got]
        assert keys == sorted(keys, reverse=True), query  # newest first across pages
    # the fixture is not trivially matched by everything
    assert 0 < len([m for m in made.values() if m["status"] == "closed"]) < len(made)


def test_geojson_format(client, fixture_set):
    made = fixture_set
    r = client.get("/api/v1/incidents?format=geojson&status=open&limit=1000")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = r.get_json(force=True)
    assert fc["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in fc["features"]} == {m["code"] for m in made.values() if m["status"] != "closed"}
    f = next(f for f in fc["features"] if f["properties"]["code"] == made["a"]["code"])
    assert f["geometry"] == {"type": "Point", "coordinates": [made["a"]["lon"], made["a"]["lat"]]}
    props = f["properties"]
    for key in ("code", "category", "severity", "status", "level", "overdue", "reported_at", "grid_code",
                "zone_code", "town_code"):
        assert key in props
    assert props["overdue"] is True and props["level"] == "district" and props["grid_code"] == made["a"]["grid"]


def test_changes_feed_orders_by_seq(client, auth, points):
    ids = [post(client, auth, points[i]).json["id"] for i in range(4)]
    r = client.get("/api/v1/changes?after=0")
    assert [i["id"] for i in r.json["items"]] == ids
    last = r.json["last_seq"]
    assert last == r.json["items"][-1]["seq"]
    step(client, auth, ids[0], "routed")
    step(client, auth, ids[2], "onsite_handled")
    r2 = client.get(f"/api/v1/changes?after={last}")
    assert [i["id"] for i in r2.json["items"]] == [ids[0], ids[2]]
    assert [i["status"] for i in r2.json["items"]] == ["routed", "onsite_handled"]
    seqs = [i["seq"] for i in r2.json["items"]]
    assert seqs == sorted(seqs) and seqs[0] > last
    r3 = client.get(f"/api/v1/changes?after={r2.json['last_seq']}")
    assert r3.json["items"] == [] and r3.json["last_seq"] == r2.json["last_seq"]
    r4 = client.get("/api/v1/changes?after=0&limit=2")
    assert [i["id"] for i in r4.json["items"]] == [ids[1], ids[3]] and r4.json["has_more"] is True


def test_catalogue_covers_the_seed(client):
    body = client.get("/api/v1/catalogue").json
    names = " ".join(c["name"] + " " + " ".join(s["name"] for s in c["subcategories"]) for c in body["categories"])
    for term in ("危险化学品", "消防", "矛盾纠纷", "破墙开门", "环境", "治安", "流动人口", "电动车上牌", "信访", "环境卫生", "道路"):
        assert term in names, term
    assert 12 <= len(body["categories"]) <= 16
    assert len({c["service_code"] for c in body["categories"]}) == len(body["categories"])
    assert [s["key"] for s in body["states"]] == STATES
    assert {r["key"] for r in body["roles"]} == {"grid_worker", "station", "town", "district", "department", "duty_officer"}


def test_openapi_describes_every_route(app, client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1", "/open311/v2")):
            path = re.sub(r"<[^>]+>", "{}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    documented = {(re.sub(r"\{[^}]+\}", "{}", p), m) for p, ops in doc["paths"].items() for m in ops}
    assert routes <= documented, routes - documented
    # every $ref resolves
    import json as _json

    blob = _json.dumps(doc)
    for ref in set(part.split('"')[0] for part in blob.split('"$ref": "')[1:]):
        node = doc
        for key in ref.lstrip("#/").split("/"):
            node = node[key]


def test_changes_feed_misses_nothing_under_concurrent_writers(app, auth, points):
    """Writers create and move cases while a poller follows /changes: the poller ends up with every case's
    final state — a change committed after the poller moved past its seq would be lost."""
    stop = threading.Event()
    seen: dict[int, int] = {}
    errors: list = []

    def poller():
        c = reading_client(app)
        last = 0
        while True:
            finished = stop.is_set()
            r = c.get(f"/api/v1/changes?after={last}&limit=50")
            if r.status_code != 200:
                errors.append(r.data)
                return
            for item in r.json["items"]:
                assert item["seq"] > last
                seen[item["id"]] = item["seq"]
            last = r.json["last_seq"]
            if finished and not r.json["items"]:
                return
            # a client polls, it does not spin: a poll loop that never waits, in the writers' own process, holds
            # the GIL so that each of their statements waits for it, and their write transactions (which hold
            # SQLite's writer lock) stretch past the 30 s busy timeout
            time.sleep(0.01)

    def writer(w):
        c = app.test_client()
        try:
            for k in range(6):
                iid = post(c, auth, points[(w * 6 + k) % len(points)]).json["id"]
                for to in ("routed", "in_progress", "handled"):
                    r = step(c, auth, iid, to, role="station")
                    assert r.status_code == 200, r.json
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    p = threading.Thread(target=poller)
    p.start()
    ws = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    p.join(60)
    assert not errors, errors[:3]
    engine = app.extensions["dashboard"].engine
    with engine.connect() as conn:
        final = dict(conn.execute(text("SELECT id, seq FROM incidents")).all())
    assert len(final) == 24
    assert seen == final


def test_subcategory_and_department_come_with_their_names(client, auth, points):
    from dashboard.store import catalogue

    r = post(client, auth, points[0], subcategory="neighbour")
    assert r.status_code == 201, r.json
    body = r.json
    zh, en = catalogue.CATEGORIES["dispute.civil"].subcategories["neighbour"]
    assert (body["subcategory_name"], body["subcategory_name_en"]) == (zh, en)
    assert body["department_name"] is None
    walk(client, auth, body["id"], ["routed", "escalated", "assigned"])
    detail = client.get(f"/api/v1/incidents/{body['id']}").json
    incident = detail.get("incident", detail)
    dzh, den = catalogue.DEPARTMENTS["enforcement"]
    assert (incident["department_name"], incident["department_name_en"]) == (dzh, den)
    events = detail.get("events") or incident.get("events")
    assert any(e.get("department_name") == dzh for e in events)
