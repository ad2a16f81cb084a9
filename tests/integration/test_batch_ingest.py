"""POST /api/v1/incidents/batch: up to 1,000 incidents per request, one result per item, items independent,
idempotent on client_ref, one write transaction — on SQLite and PostgreSQL.

What an item should get is taken from its definition, not written out by hand: a refused item must carry the
error the single ``POST /api/v1/incidents`` gives for the same payload, and an accepted one must end up stored
(and alerted) exactly as the single POST stores it."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select, text

from dashboard.api.incidents import BATCH_MAX_ITEMS
from dashboard.store import alerts as alerts_repo
from dashboard.store import incidents as repo
from dashboard.store import sequence
from dashboard.store.hazards import load_hazard_sites
from dashboard.store.models import Inspection

from .conftest import TOKEN

BATCH = "/api/v1/incidents/batch"


def counts(app) -> dict[str, int]:
    engine = app.extensions["dashboard"].engine
    with engine.connect() as c:
        return {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("incidents", "incident_events", "alerts")}


def current_seq(app) -> int:
    with app.extensions["dashboard"].sessions() as s:
        return sequence.current(s)


def item(point, **kw) -> dict:
    body = {"category": "dispute.civil", "description": "邻里纠纷：噪音", "lon": point[0], "lat": point[1]}
    body.update(kw)
    return body


def batch(client, auth, items, *, bare: bool = False):
    return client.post(BATCH, json=items if bare else {"incidents": items}, headers=auth)


def single_error(client, auth, body) -> dict:
    """What the single POST answers for ``body`` (which it refuses, writing nothing)."""
    r = client.post("/api/v1/incidents", json=body, headers=auth)
    assert r.status_code >= 400, r.json
    e = r.json["error"]
    return {"field": e["field"], "reason": e["code"], "message": e["message"], "status": r.status_code}


def stored(client, iid) -> dict:
    r = client.get(f"/api/v1/incidents/{iid}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return r.json


# -------------------------------------------------------------------------------------------- mixed
def test_mixed_batch_answers_each_item_and_stores_only_the_valid(client, auth, app, points, outside_point):
    items = [
        item(points[0], client_ref="m-0", reporter="王网格", reporter_phone="13800000000", address="某路 1 号"),
        item(points[1], description=""),                                     # missing description
        item(outside_point, client_ref="m-2"),                               # outside the district
        item(points[2], category="no.such"),                                 # unknown category
        item(points[3], lon="120.1"),                                        # wrong type
        item(points[4], category="safety.hazchem", subcategory="illegal_storage", severity=2,
             source="hotline", reported_at="2026-01-05T08:30:00"),
        item(points[5], severity=9, client_ref="m-6"),                       # out of range
        item(points[6], inspection_id=987654),                               # unknown inspection
        item(points[7], client_ref="x" * 65),                                # too long
        item(points[8]),
    ]
    before = counts(app)
    r = batch(client, auth, items)
    assert r.status_code == 200, r.json
    body = r.json
    assert [x["index"] for x in body["results"]] == list(range(len(items)))
    statuses = [x["status"] for x in body["results"]]
    assert statuses == ["created", "refused", "refused", "refused", "refused", "created", "refused", "refused",
                        "refused", "created"]
    assert (body["created"], body["existing"], body["refused"]) == (3, 0, 7)
    # each refusal is the single POST's error for the same payload (which writes nothing either)
    for res, it in zip(body["results"], items):
        if res["status"] == "refused":
            assert res["id"] is None and res["code"] is None
            assert res["error"] == single_error(client, auth, it), res
    refused = {x["index"]: x for x in body["results"] if x["status"] == "refused"}
    assert refused[1]["error"]["field"] == "description" and refused[2]["error"]["field"] == "location"
    assert refused[2]["client_ref"] == "m-2" and refused[8]["client_ref"] is None
    # the accepted ones are stored as the single POST stores them: placed in their grid, with their fields
    for k, point in ((0, points[0]), (5, points[4]), (9, points[8])):
        res = body["results"][k]
        got = stored(client, res["id"])
        assert got["code"] == res["code"] and got["client_ref"] == items[k].get("client_ref")
        assert (got["lon"], got["lat"], got["grid_code"], got["zone_code"], got["town_code"]) == point
        assert [e["to_status"] for e in got["events"]] == ["reported"]
        assert got["events"][0]["seq"] == got["seq"]
        for field in ("category", "description", "reporter", "reporter_phone", "address", "subcategory",
                      "source", "severity"):
            if field in items[k]:
                assert got[field] == items[k][field], field
    assert stored(client, body["results"][5]["id"])["reported_at"] == "2026-01-05T00:30:00Z"  # Beijing time
    after = counts(app)
    assert (after["incidents"] - before["incidents"], after["incident_events"] - before["incident_events"]) == (3, 3)


def test_bare_array_body_is_accepted(client, auth, app, points):
    r = batch(client, auth, [item(points[0]), item(points[1])], bare=True)
    assert r.status_code == 200, r.json
    assert r.json["created"] == 2 and counts(app)["incidents"] == 2


def test_a_batch_stores_the_residents_it_names_like_the_single_post(client, auth, app, points):
    """``persons`` (a JSON list) goes through the bulk insert paths (COPY, executemany) as the single POST stores it."""
    named = item(points[0], description="张三与李四因噪音争吵", persons=["张三", "李四"])
    r = batch(client, auth, [named, item(points[1])])
    assert r.status_code == 200, r.json
    ids = [x["id"] for x in r.json["results"]]
    single = client.post("/api/v1/incidents", json=item(points[2], description="张三与李四因噪音争吵",
                                                          persons=["张三", "李四"]), headers=auth)
    assert single.status_code == 201, single.json
    with app.extensions["dashboard"].sessions() as s:
        got = {i: s.get(repo.Incident, i).persons for i in ids + [single.json["id"]]}
    assert got[ids[0]] == ["张三", "李四"] == got[single.json["id"]] and got[ids[1]] is None


def test_empty_batch_writes_nothing(client, auth, app):
    seq = current_seq(app)
    r = batch(client, auth, [])
    assert r.status_code == 200
    assert r.json == {"results": [], "created": 0, "existing": 0, "refused": 0, "seq": None}
    assert current_seq(app) == seq and counts(app)["incidents"] == 0


# ---------------------------------------------------------------------------------------- duplicates
def test_duplicates_inside_one_batch_and_across_batches(client, auth, app, points):
    r1 = batch(client, auth, [item(points[0], client_ref="d-1"), item(points[1], client_ref="d-2"),
                              item(points[2], client_ref="d-1", description="重发，内容不同"),
                              item(points[3]), item(points[4], client_ref="d-1")])
    assert r1.status_code == 200, r1.json
    res = r1.json["results"]
    assert [x["status"] for x in res] == ["created", "created", "existing", "created", "existing"]
    assert res[2]["id"] == res[4]["id"] == res[0]["id"] and res[2]["code"] == res[0]["code"]
    assert (res[2]["duplicate_of"], res[4]["duplicate_of"], res[0]["duplicate_of"]) == (0, 0, None)
    assert (r1.json["created"], r1.json["existing"]) == (3, 2)
    assert stored(client, res[0]["id"])["description"] == "邻里纠纷：噪音"  # the first one's content stays
    # a later batch: stored refs answer "existing" with the stored incident, new ones are created
    r2 = batch(client, auth, [item(points[5], client_ref="d-2"), item(points[6], client_ref="d-3"),
                              item(points[7], client_ref="d-1")])
    res2 = r2.json["results"]
    assert [x["status"] for x in res2] == ["existing", "created", "existing"]
    assert res2[0]["id"] == res[1]["id"] and res2[2]["id"] == res[0]["id"]
    assert res2[0]["duplicate_of"] is None
    # the single POST and the batch share the idempotency key both ways
    one = client.post("/api/v1/incidents", json=item(points[8], client_ref="d-3"), headers=auth)
    assert one.status_code == 200 and one.json["id"] == res2[1]["id"] and one.json["created"] is False
    first = client.post("/api/v1/incidents", json=item(points[9], client_ref="d-4"), headers=auth)
    r3 = batch(client, auth, [item(points[10], client_ref="d-4")])
    assert r3.json["results"][0]["status"] == "existing" and r3.json["results"][0]["id"] == first.json["id"]
    assert counts(app)["incidents"] == 5
    with app.extensions["dashboard"].sessions() as s:
        refs = s.execute(select(repo.Incident.client_ref, func.count()).group_by(repo.Incident.client_ref)
                         .where(repo.Incident.client_ref.is_not(None))).all()
    assert sorted(refs) == [("d-1", 1), ("d-2", 1), ("d-3", 1), ("d-4", 1)]


def test_a_refused_first_occurrence_does_not_hold_the_reference(client, auth, app, points):
    r = batch(client, auth, [item(points[0], client_ref="f-1", severity=0), item(points[1], client_ref="f-1")])
    assert [x["status"] for x in r.json["results"]] == ["refused", "created"]
    assert r.json["results"][1]["duplicate_of"] is None


def test_an_all_existing_batch_advances_nothing(client, auth, app, points):
    batch(client, auth, [item(points[0], client_ref="e-1"), item(points[1], client_ref="e-2")])
    seq, before = current_seq(app), counts(app)
    r = batch(client, auth, [item(points[0], client_ref="e-2"), item(points[1], client_ref="e-1")])
    assert [x["status"] for x in r.json["results"]] == ["existing", "existing"] and r.json["seq"] is None
    assert current_seq(app) == seq and counts(app) == before


# ------------------------------------------------------------------------------------ whole refusals
def test_more_than_the_maximum_is_refused_whole(client, auth, app, points):
    items = [item(points[i % len(points)], client_ref=f"big-{i}") for i in range(BATCH_MAX_ITEMS + 1)]
    seq = current_seq(app)
    r = batch(client, auth, items)
    assert r.status_code == 413, r.json
    assert r.json["error"]["code"] == "too_many_items" and r.json["error"]["field"] == "incidents"
    assert r.json["error"]["max_items"] == BATCH_MAX_ITEMS
    assert counts(app)["incidents"] == 0 and current_seq(app) == seq
    # exactly the maximum goes through, in one sequence block
    r = batch(client, auth, items[:BATCH_MAX_ITEMS])
    assert r.status_code == 200 and r.json["created"] == BATCH_MAX_ITEMS
    assert counts(app)["incidents"] == counts(app)["incident_events"] == BATCH_MAX_ITEMS
    assert current_seq(app) == seq + BATCH_MAX_ITEMS == r.json["seq"]


@pytest.mark.parametrize("make,field", [  # ok: a valid item — where one comes first, it is not written either
    (lambda ok: {"incidents": ok}, "incidents"),
    (lambda ok: {"incidents": "x"}, "incidents"),
    (lambda ok: {"items": [ok]}, "incidents"),
    (lambda ok: {"incidents": None}, "incidents"),
    (lambda ok: "incidents", "body"),
    (lambda ok: 42, "body"),
    (lambda ok: {"incidents": [ok, 7]}, "incidents[1]"),
    (lambda ok: {"incidents": [ok, ok, None]}, "incidents[2]"),
    (lambda ok: [ok, [ok]], "incidents[1]"),
    (lambda ok: [ok, "{}"], "incidents[1]"),
])
def test_a_body_that_is_no_batch_is_refused_whole(client, auth, app, points, make, field):
    body = make(item(points[0]))
    r = client.post(BATCH, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400, r.json
    assert r.json["error"]["field"] == field
    assert counts(app)["incidents"] == 0


@pytest.mark.parametrize("raw", [b"", b"   ", b"{not json", b'{"incidents": [NaN'])
def test_malformed_json_is_refused(client, auth, app, raw):
    r = client.post(BATCH, data=raw, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]["field"] == "body"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}])
def test_a_token_is_required(client, app, points, headers):
    items = [item(points[0])] * (BATCH_MAX_ITEMS + 1)  # the token is checked before the body
    for body in ({"incidents": items[:1]}, {"incidents": items}, "not a batch"):
        r = client.post(BATCH, json=body, headers=headers)
        assert r.status_code == 401, r.json
        assert r.json["error"]["field"] == "Authorization"
    assert counts(app)["incidents"] == 0


def test_the_body_limit_fits_a_full_batch_but_not_more(client, auth, app, points):
    """1,000 incidents with 400-character Chinese descriptions (about 2.5 MB as ASCII-escaped JSON) pass; the
    single POST keeps its 1 MB limit; a batch body past the batch limit is refused before it is read."""
    from dashboard.api.errors import MAX_BODY_BYTES
    from dashboard.api.incidents import BATCH_MAX_BODY_BYTES

    text_ = "居民反映楼道内长期堆放杂物，存在消防隐患。" * 20
    items = [item(points[i % len(points)], description=text_[:400]) for i in range(BATCH_MAX_ITEMS)]
    raw = json.dumps({"incidents": items}).encode()
    assert MAX_BODY_BYTES < len(raw) < BATCH_MAX_BODY_BYTES
    r = client.post(BATCH, data=raw, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json["created"] == BATCH_MAX_ITEMS
    big = json.dumps(item(points[0], description="x" * 4000, address="y" * (MAX_BODY_BYTES))).encode()
    r = client.post("/api/v1/incidents", data=big, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["error"]["field"] == "body"
    huge = b'{"incidents": [' + b" " * BATCH_MAX_BODY_BYTES + b"]}"
    r = client.post(BATCH, data=huge, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"
    assert counts(app)["incidents"] == BATCH_MAX_ITEMS


# ------------------------------------------------------------------------------- sequence and alerts
def test_the_change_sequence_advances_by_one_block(client, auth, app, points):
    single = client.post("/api/v1/incidents", json=item(points[0]), headers=auth).json
    r = batch(client, auth, [item(points[i], severity=1 + i % 4) for i in range(1, 8)] + [item(points[0], lat=1)])
    res = r.json["results"]
    ids = [x["id"] for x in res if x["status"] == "created"]
    feed = client.get(f"/api/v1/changes?after={single['seq']}").json
    assert [x["id"] for x in feed["items"]] == ids  # the feed shows them, in item order
    seqs = [x["seq"] for x in feed["items"]]
    assert seqs == list(range(single["seq"] + 1, single["seq"] + 1 + len(ids)))
    assert r.json["seq"] == seqs[-1] == feed["last_seq"] == current_seq(app)
    nxt = batch(client, auth, [item(points[9])]).json
    assert nxt["seq"] == r.json["seq"] + 1


@pytest.fixture
def rings(sessions, geo):
    with sessions() as s:
        load_hazard_sites(s, geo.hazards)
        return alerts_repo.hazchem_rings(s)


def test_alerts_are_raised_exactly_as_by_the_single_post(client, auth, app, points, geo, rings):
    near = rings[0]
    ring_pt = (round(near.lon + 0.0004, 6), round(near.lat, 6))
    if geo.locator.locate(*ring_pt) is None:
        ring_pt = (round(near.lon - 0.0004, 6), near.lat)
    outside = [p for p in points if alerts_repo.ring_containing(p[0], p[1], rings) is None]
    items = [item(outside[i], severity=1 + i % 4) for i in range(8)]
    items += [item(ring_pt, severity=1), item(ring_pt, category="safety.hazchem"), item(outside[0], lon=0.0)]
    r = batch(client, auth, items)
    assert r.json["refused"] == 1
    batch_ids = [x["id"] for x in r.json["results"] if x["status"] == "created"]
    single_ids = [client.post("/api/v1/incidents", json=it, headers=auth).json.get("id") for it in items[:-1]]
    with app.extensions["dashboard"].sessions() as s:
        got = {a.incident_id: a for a in s.execute(select(alerts_repo.Alert)).scalars()}
        seqs = dict(s.execute(select(repo.Incident.id, repo.Incident.seq)).all())

    def alert_of(iid):
        a = got.get(iid)
        return None if a is None else (a.kind, a.hazard_code, a.acknowledged_at)

    assert [alert_of(i) for i in batch_ids] == [alert_of(i) for i in single_ids]
    kinds = {alert_of(i)[0] if alert_of(i) else None for i in batch_ids}
    assert kinds == {None, "high_severity", "hazchem_ring"}  # every rule was exercised
    assert all(got[i].seq == seqs[i] for i in batch_ids if i in got)  # the incident's own seq, as single POST


def test_a_batch_keeps_the_aggregates_exact(client, auth, app, points):
    """The KPI aggregates move with the batch's own transaction: after batches with created, existing and refused
    items they equal a rebuild from the rows, and the district's new count is what was created."""
    from dashboard.store import aggregates

    server = getattr(app, "server", app)
    engine = server.extensions["dashboard"].engine
    batch(client, auth, [item(points[0], client_ref="h-1")])
    r = batch(client, auth, [item(points[1]), item(points[2], severity=0), item(points[3], client_ref="h-1"),
                             item(points[4])])
    created = [x["id"] for x in r.json["results"] if x["status"] == "created"]
    assert len(created) == 2
    with engine.connect() as c:
        new = c.execute(select(func.sum(aggregates.AggCounts.c.r_new)).where(
            aggregates.AggCounts.c.lvl == "district", aggregates.AggCounts.c.grain == "d")).scalar_one()
    assert new == 3
    assert aggregates.check(engine) == []


# -------------------------------------------------------------------------------- races and fallbacks
def _race_on_allocate(monkeypatch, sessions, geo, points, refs_per_call: list[str]):
    """Before each of the first ``len(refs_per_call)`` sequence allocations of the batch, another writer stores
    an incident with that client_ref (committed) — the race the unique constraint decides."""
    real = sequence.allocate
    pending = list(refs_per_call)
    racers: dict[str, int] = {}

    def allocate(session, n=1):
        if pending and n > 1:
            ref = pending.pop(0)
            lon, lat, grid, zone, town = points[20]
            with sessions() as other:
                inc, _ = repo.create_incident(other, repo.NewIncident(
                    category="order.public", lon=lon, lat=lat, grid_code=grid, zone_code=zone, town_code=town,
                    description="racer", client_ref=ref))
                racers[ref] = inc.id
        return real(session, n)

    monkeypatch.setattr(sequence, "allocate", allocate)
    return racers


def test_a_lost_race_on_client_ref_retries_the_batch_once(client, auth, app, points, sessions, geo, monkeypatch):
    racers = _race_on_allocate(monkeypatch, sessions, geo, points, ["r-2"])
    items = [item(points[i], client_ref=f"r-{i}") for i in range(5)]
    r = batch(client, auth, items)
    assert r.status_code == 200, r.json
    res = r.json["results"]
    assert [x["status"] for x in res] == ["created", "created", "existing", "created", "created"]
    assert res[2]["id"] == racers["r-2"]
    c = counts(app)
    assert c["incidents"] == c["incident_events"] == 5


def test_two_lost_races_fall_back_to_one_transaction_per_item(client, auth, app, points, sessions, geo,
                                                              monkeypatch):
    racers = _race_on_allocate(monkeypatch, sessions, geo, points, ["p-1", "p-3"])
    items = [item(points[i], client_ref=f"p-{i}") for i in range(5)] + [item(points[5], client_ref="p-0")]
    r = batch(client, auth, items)
    res = r.json["results"]
    assert [x["status"] for x in res] == ["created", "existing", "created", "existing", "created", "existing"]
    assert (res[1]["id"], res[3]["id"]) == (racers["p-1"], racers["p-3"])
    assert res[5]["id"] == res[0]["id"] and res[5]["duplicate_of"] == 0
    created_seqs = [stored(client, x["id"])["seq"] for x in res if x["status"] == "created"]
    assert r.json["seq"] == max(created_seqs)
    c = counts(app)
    assert c["incidents"] == c["incident_events"] == 5  # 3 created here, 2 by the racers


def test_a_row_the_store_refuses_takes_no_other_item_down(sessions, points, app):
    """At store level (the API checks inspections first): an inspection id that is not there fails the batch's
    foreign key; after the retry each item is stored on its own and only that one is refused."""
    def new(k, **kw):
        lon, lat, grid, zone, town = points[k]
        return repo.NewIncident(category="dispute.civil", lon=lon, lat=lat, grid_code=grid, zone_code=zone,
                                town_code=town, description="t", **kw)

    with sessions() as s:
        out = repo.create_incidents_batch(s, [new(0), new(1, inspection_id=424242), new(2, client_ref="s-2")])
    assert [(r.id is not None, r.created) for r in out] == [(True, True), (False, False), (True, True)]
    assert out[1].conflict
    assert counts(app)["incidents"] == 2


def test_unknown_inspection_is_refused_per_item_like_the_single_post(client, auth, app, points, sessions):
    with sessions() as s:
        s.add(Inspection(unit_id="U1", grid_code=points[0][2], zone_code=points[0][3], town_code=points[0][4],
                         inspected_on=dt.date(2026, 1, 2), inspector="李", problems_found=1))
        s.commit()
        known = s.execute(select(Inspection.id)).scalar_one()
    items = [item(points[0], inspection_id=known), item(points[1], inspection_id=known + 1)]
    r = batch(client, auth, items)
    assert [x["status"] for x in r.json["results"]] == ["created", "refused"]
    assert r.json["results"][1]["error"] == single_error(client, auth, items[1])
    assert stored(client, r.json["results"][0]["id"])["inspection_id"] == known


def test_concurrent_batches_and_single_posts_store_each_reference_once(app, auth, points):
    refs = [f"c-{i}" for i in range(60)]
    out: dict[str, list] = {}
    errors: list = []
    barrier = threading.Barrier(4)

    def batch_worker(name, order):
        c = app.test_client()
        barrier.wait()
        r = batch(c, auth, [item(points[i % len(points)], client_ref=refs[i]) for i in order])
        if r.status_code != 200:
            errors.append(r.json)
            return
        out[name] = [(refs[i], x["status"], x["id"]) for i, x in zip(order, r.json["results"])]

    def single_worker():
        c = app.test_client()
        barrier.wait()
        got = []
        for i in range(0, 60, 3):
            r = c.post("/api/v1/incidents", json=item(points[i % len(points)], client_ref=refs[i]), headers=auth)
            got.append((refs[i], "created" if r.status_code == 201 else "existing", r.json["id"]))
        out["single"] = got

    ts = [threading.Thread(target=batch_worker, args=("a", list(range(60)))),
          threading.Thread(target=batch_worker, args=("b", list(range(59, -1, -1)))),
          threading.Thread(target=batch_worker, args=("c", list(range(0, 60, 2)))),
          threading.Thread(target=single_worker)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:2]
    with app.extensions["dashboard"].sessions() as s:
        final = dict(s.execute(select(repo.Incident.client_ref, repo.Incident.id)).all())
    assert len(final) == 60 == counts(app)["incidents"] == counts(app)["incident_events"]
    created_by: dict[str, int] = {}
    for rows in out.values():
        for ref, status, iid in rows:
            assert iid == final[ref], (ref, status)
            created_by[ref] = created_by.get(ref, 0) + (status == "created")
    assert all(created_by[r] == 1 for r in refs), created_by


# ---------------------------------------------------------------------------------------------- docs
def test_openapi_documents_the_batch(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/api/v1/incidents/batch"]["post"]
    assert {"200", "400", "401", "413"} <= set(op["responses"])
    schemas = doc["components"]["schemas"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Batch"}
    envelopes = schemas["Batch"]["oneOf"]  # {"incidents": [...]} or a bare array, both BatchItems
    assert envelopes[0]["properties"]["incidents"] == envelopes[1] == {"$ref": "#/components/schemas/BatchItems"}
    items = schemas["BatchItems"]
    assert items["maxItems"] == BATCH_MAX_ITEMS
    # an item is any object: one that is no NewIncident is answered on its own (refused), not an error of the batch
    assert items["items"] == {"anyOf": [{"$ref": "#/components/schemas/NewIncident"}, {"type": "object"}]}
    result = doc["components"]["schemas"]["BatchResult"]["properties"]
    assert set(result["status"]["enum"]) == {"created", "existing", "refused"}
