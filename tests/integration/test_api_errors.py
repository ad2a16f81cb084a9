"""Every bad input: a 4xx JSON error naming the field, and nothing stored. On SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

TOKEN_HEADER = {"Authorization": "Bearer test-token"}
JSON_HEADERS = {**TOKEN_HEADER, "Content-Type": "application/json"}


def counts(app):
    with app.extensions["dashboard"].engine.connect() as c:
        return (c.execute(text("SELECT COUNT(*) FROM incidents")).scalar_one(),
                c.execute(text("SELECT COUNT(*) FROM incident_events")).scalar_one(),
                c.execute(text("SELECT MAX(seq) FROM incidents")).scalar_one())


def good(points, **over):
    body = {"category": "dispute.civil", "description": "纠纷", "lon": points[0][0], "lat": points[0][1]}
    body.update(over)
    return body


def without(points, key):
    b = good(points)
    b.pop(key)
    return b


# (id, request builder(points, outside, iid) -> (method, url, kwargs), status, field)
def _post(body=None, raw=None, headers=JSON_HEADERS):
    def build(points, outside, iid):
        data = raw if raw is not None else json.dumps(body(points, outside) if callable(body) else body)
        return "POST", "/api/v1/incidents", {"data": data, "headers": headers}
    return build


def _tr(body, headers=JSON_HEADERS, target=None):
    def build(points, outside, iid):
        return "POST", f"/api/v1/incidents/{target if target is not None else iid}/transitions", {
            "data": json.dumps(body), "headers": headers}
    return build


def _get(url):
    def build(points, outside, iid):
        return "GET", url.format(iid=iid), {}
    return build


CASES = [
    ("malformed_json", _post(raw='{"category": '), 400, "body"),
    ("empty_body", _post(raw=""), 400, "body"),
    ("array_body", _post(raw="[1, 2]"), 400, "body"),
    ("string_body", _post(raw='"hello"'), 400, "body"),
    ("not_utf8", _post(raw=b'{"description": "\xff\xfe"}'), 400, "body"),
    ("missing_category", _post(lambda p, o: without(p, "category")), 400, "category"),
    ("missing_description", _post(lambda p, o: without(p, "description")), 400, "description"),
    ("blank_description", _post(lambda p, o: good(p, description="   ")), 400, "description"),
    ("missing_lon", _post(lambda p, o: without(p, "lon")), 400, "lon"),
    ("missing_lat", _post(lambda p, o: without(p, "lat")), 400, "lat"),
    ("category_number", _post(lambda p, o: good(p, category=7)), 400, "category"),
    ("unknown_category", _post(lambda p, o: good(p, category="aliens.landing")), 422, "category"),
    ("unknown_subcategory", _post(lambda p, o: good(p, subcategory="wall_opening")), 422, "subcategory"),
    ("lon_string", _post(lambda p, o: good(p, lon="120.1")), 400, "lon"),
    ("lat_bool", _post(lambda p, o: good(p, lat=True)), 400, "lat"),
    ("lon_null", _post(lambda p, o: good(p, lon=None)), 400, "lon"),
    ("lat_nan", lambda p, o, i: ("POST", "/api/v1/incidents", {
        "data": f'{{"category": "dispute.civil", "description": "x", "lon": {p[0][0]}, "lat": NaN}}',
        "headers": JSON_HEADERS}), 400, "lat"),
    ("lon_infinity", lambda p, o, i: ("POST", "/api/v1/incidents", {
        "data": f'{{"category": "dispute.civil", "description": "x", "lon": Infinity, "lat": {p[0][1]}}}',
        "headers": JSON_HEADERS}), 400, "lon"),
    ("lat_1e400", lambda p, o, i: ("POST", "/api/v1/incidents", {
        "data": f'{{"category": "dispute.civil", "description": "x", "lon": {p[0][0]}, "lat": 1e400}}',
        "headers": JSON_HEADERS}), 400, "lat"),
    ("lat_out_of_range", _post(lambda p, o: good(p, lat=91.0)), 400, "lat"),
    ("lon_out_of_range", _post(lambda p, o: good(p, lon=-181)), 400, "lon"),
    ("huge_int_lon", _post(lambda p, o: good(p, lon=10**30)), 400, "lon"),
    ("outside_district", _post(lambda p, o: good(p, lon=o[0], lat=o[1])), 422, "location"),
    ("null_island", _post(lambda p, o: good(p, lon=0, lat=0)), 422, "location"),
    ("severity_5", _post(lambda p, o: good(p, severity=5)), 400, "severity"),
    ("severity_0", _post(lambda p, o: good(p, severity=0)), 400, "severity"),
    ("severity_string", _post(lambda p, o: good(p, severity="3")), 400, "severity"),
    ("severity_bool", _post(lambda p, o: good(p, severity=True)), 400, "severity"),
    ("severity_fraction", _post(lambda p, o: good(p, severity=2.5)), 400, "severity"),
    ("unknown_source", _post(lambda p, o: good(p, source="twitter")), 400, "source"),
    ("description_too_long", _post(lambda p, o: good(p, description="长" * 4001)), 400, "description"),
    ("address_too_long", _post(lambda p, o: good(p, address="a" * 256)), 400, "address"),
    ("client_ref_too_long", _post(lambda p, o: good(p, client_ref="r" * 65)), 400, "client_ref"),
    ("client_ref_number", _post(lambda p, o: good(p, client_ref=12345)), 400, "client_ref"),
    ("reporter_too_long", _post(lambda p, o: good(p, reporter="x" * 65)), 400, "reporter"),
    ("nul_in_description", _post(lambda p, o: good(p, description="a\x00b")), 400, "description"),
    ("lone_surrogate", _post(raw='{"category": "dispute.civil", "description": "\\ud800", "lon": 120.1, "lat": 30.8}'),
     400, "description"),
    ("longstanding_string", _post(lambda p, o: good(p, longstanding="yes")), 400, "longstanding"),
    ("reported_at_garbage", _post(lambda p, o: good(p, reported_at="yesterday")), 400, "reported_at"),
    ("reported_at_future", _post(lambda p, o: good(p, reported_at="2099-01-01T00:00:00Z")), 400, "reported_at"),
    ("reported_at_number", _post(lambda p, o: good(p, reported_at=1556064000)), 400, "reported_at"),
    ("unknown_inspection", _post(lambda p, o: good(p, inspection_id=987654)), 422, "inspection_id"),
    ("inspection_id_huge", _post(lambda p, o: good(p, inspection_id=2**70)), 400, "inspection_id"),
    ("body_over_1mb", _post(lambda p, o: good(p, description="x" * (1024 * 1024 + 10))), 413, "body"),
    ("no_token", _post(lambda p, o: good(p), headers={"Content-Type": "application/json"}), 401, "Authorization"),
    ("bad_token", _post(lambda p, o: good(p), headers={"Authorization": "Bearer nope",
                                                       "Content-Type": "application/json"}), 401, "Authorization"),
    ("basic_auth_scheme", _post(lambda p, o: good(p), headers={"Authorization": "Basic dGVzdC10b2tlbg==",
                                                               "Content-Type": "application/json"}),
     401, "Authorization"),
    # transitions
    ("transition_invalid", _tr({"to": "closed", "actor": "a", "actor_role": "town"}), 409, "to"),
    ("transition_unknown_state", _tr({"to": "teleported", "actor": "a", "actor_role": "town"}), 400, "to"),
    ("transition_missing_to", _tr({"actor": "a", "actor_role": "town"}), 400, "to"),
    ("transition_missing_actor", _tr({"to": "routed", "actor_role": "town"}), 400, "actor"),
    ("transition_bad_role", _tr({"to": "routed", "actor": "a", "actor_role": "mayor"}), 400, "actor_role"),
    ("transition_bad_department", _tr({"to": "routed", "actor": "a", "actor_role": "town", "department": "nasa"}),
     400, "department"),
    ("transition_outcome_not_closing", _tr({"to": "routed", "actor": "a", "actor_role": "town",
                                            "outcome": "resolved"}), 400, "outcome"),
    ("transition_note_too_long", _tr({"to": "routed", "actor": "a", "actor_role": "town", "note": "n" * 2001}),
     400, "note"),
    ("transition_unknown_incident", _tr({"to": "routed", "actor": "a", "actor_role": "town"}, target=99999999),
     404, "id"),
    ("transition_huge_id", _tr({"to": "routed", "actor": "a", "actor_role": "town"}, target=2**70), 404, "id"),
    ("transition_no_token", _tr({"to": "routed", "actor": "a", "actor_role": "town"},
                                headers={"Content-Type": "application/json"}), 401, "Authorization"),
    ("transition_array_body", lambda p, o, i: ("POST", f"/api/v1/incidents/{i}/transitions",
                                               {"data": "[]", "headers": JSON_HEADERS}), 400, "body"),
    # reads
    ("get_unknown_incident", _get("/api/v1/incidents/99999999"), 404, "id"),
    ("list_bad_status", _get("/api/v1/incidents?status=lost"), 400, "status"),
    ("list_bad_category", _get("/api/v1/incidents?category=aliens"), 400, "category"),
    ("list_bad_severity", _get("/api/v1/incidents?severity=9"), 400, "severity"),
    ("list_bad_source", _get("/api/v1/incidents?source=fax"), 400, "source"),
    ("list_bad_level", _get("/api/v1/incidents?level=planet"), 400, "level"),
    ("list_bad_department", _get("/api/v1/incidents?department=nasa"), 400, "department"),
    ("list_bad_from", _get("/api/v1/incidents?from=not-a-date"), 400, "from"),
    ("list_from_after_to", _get("/api/v1/incidents?from=2019-05-01&to=2019-04-01"), 400, "from"),
    ("list_from_no_such_day", _get("/api/v1/incidents?from=2019-02-29"), 400, "from"),
    ("list_from_space_separated", _get("/api/v1/incidents?from=2019-04-24%2008:30"), 400, "from"),
    ("list_from_before_2000", _get("/api/v1/incidents?from=1999-12-31"), 400, "from"),
    ("list_from_other_digits", _get("/api/v1/incidents?from=%D9%A2019-04-24"), 400, "from"),
    ("list_status_newline", _get("/api/v1/incidents?status=open%0A"), 400, "status"),
    ("list_empty_item", _get("/api/v1/incidents?status=open,,closed"), 400, "status"),
    ("list_bad_bbox", _get("/api/v1/incidents?bbox=1,2,3"), 400, "bbox"),
    ("list_bbox_nan", _get("/api/v1/incidents?bbox=nan,30,121,31"), 400, "bbox"),
    ("list_bbox_exponent", _get("/api/v1/incidents?bbox=1.2e2,30,121,31"), 400, "bbox"),
    ("list_bbox_three", _get("/api/v1/incidents?bbox=120,30,121"), 400, "bbox"),
    ("list_bad_limit", _get("/api/v1/incidents?limit=1001"), 400, "limit"),
    ("list_zero_limit", _get("/api/v1/incidents?limit=0"), 400, "limit"),
    ("list_text_limit", _get("/api/v1/incidents?limit=ten"), 400, "limit"),
    ("list_bad_cursor", _get("/api/v1/incidents?cursor=garbage!!"), 400, "cursor"),
    ("list_forged_cursor", _get("/api/v1/incidents?cursor=WyJ4IiwgMV0"), 400, "cursor"),
    ("list_bad_overdue", _get("/api/v1/incidents?overdue=maybe"), 400, "overdue"),
    ("list_bad_format", _get("/api/v1/incidents?format=xml"), 400, "format"),
    ("list_q_too_long", _get("/api/v1/incidents?q=" + "x" * 201), 400, "q"),
    ("list_q_nul", _get("/api/v1/incidents?q=a%00b"), 400, "q"),
    ("changes_bad_after", _get("/api/v1/changes?after=-1"), 400, "after"),
    ("changes_text_after", _get("/api/v1/changes?after=abc"), 400, "after"),
    ("changes_huge_after", _get("/api/v1/changes?after=" + "9" * 30), 400, "after"),
    ("changes_signed_after", _get("/api/v1/changes?after=%2B5"), 400, "after"),
    ("changes_spaced_limit", _get("/api/v1/changes?limit=%205"), 400, "limit"),
    ("unknown_route", _get("/api/v1/nothing-here"), 404, None),
    ("method_not_allowed", lambda p, o, i: ("DELETE", f"/api/v1/incidents/{i}", {}), 405, None),
]


@pytest.fixture
def existing(client, points):
    r = client.post("/api/v1/incidents", json=good(points, client_ref="existing-1"), headers=TOKEN_HEADER)
    assert r.status_code == 201
    return r.json["id"]


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,build,status,field", CASES, ids=[c[0] for c in CASES])
def test_bad_input(app, client, geo, points, outside_point, existing, name, build, status, field):
    before = counts(app)
    method, url, kwargs = build(points, outside_point, existing)
    r = client.open(url, method=method, **kwargs)
    assert r.status_code == status, (name, r.status_code, r.data[:300])
    assert r.mimetype == "application/json"
    err = r.get_json()["error"]
    assert err["field"] == field, (name, err)
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]
    assert counts(app) == before, name
    if name == "outside_district":  # names the district served, as the geodata does
        district = geo.district.iloc[0]
        assert "outside" in err["message"] and district["name"] in err["message"] and district["name_en"] in err["message"]
    if name == "transition_invalid":
        assert err["current_status"] == "reported" and set(err["allowed"]) == {"onsite_handled", "routed"}


def test_valid_request_passes_the_same_checks(client, points, app):
    """Control: the baseline body used above is accepted (so the cases fail for the stated reason)."""
    before = counts(app)
    r = client.post("/api/v1/incidents", data=json.dumps(good(points)), headers=JSON_HEADERS)
    assert r.status_code == 201
    assert counts(app)[:2] == (before[0] + 1, before[1] + 1)


def test_unexpected_error_is_json_500_and_logged(app, client, monkeypatch, caplog):
    """A bug (not an input) still answers JSON on our prefix; nothing leaks as an HTML page."""
    from dashboard.store import incidents as repo

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(repo, "list_incidents", boom)
    r = client.get("/api/v1/incidents")
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "internal_error"
    assert "simulated bug" not in r.get_data(as_text=True)
    assert any("unhandled error" in rec.message for rec in caplog.records)


def test_other_paths_keep_flask_default_errors(app, client):
    r = client.get("/not-ours")
    assert r.status_code == 404 and r.mimetype == "text/html"


def test_no_5xx_for_random_inputs(app, client, points, existing):
    """Seeded fuzz: odd values in every field and query parameter never produce a 5xx; refused ones store nothing."""
    import random

    rng = random.Random(330502)
    odd = [None, True, False, 0, -1, 2**63, 2**64, -2**70, 1.5, 1e308, -0.0, "", " ", "\x00", "\ud800", "🚒" * 70,
           "a" * 5000, [], {}, [1, "x"], {"a": 1}, "2019-04-24", "nan", "NaN", "1e999", "open", "closed",
           "safety.hazchem", "reported", "грид", "'; DROP TABLE incidents; --", "%_\\"]
    fields = ["category", "subcategory", "severity", "source", "description", "address", "lon", "lat", "reporter",
              "reporter_phone", "client_ref", "inspection_id", "longstanding", "reported_at"]
    for _ in range(150):
        body = good(points)
        for f in rng.sample(fields, rng.randint(1, 4)):
            body[f] = rng.choice(odd)
        before = counts(app)
        r = client.post("/api/v1/incidents", data=json.dumps(body), headers=JSON_HEADERS)
        assert r.status_code < 500, (body, r.data[:200])
        if r.status_code >= 400:
            assert counts(app) == before and r.get_json()["error"]["field"], body
    for _ in range(100):
        body = {k: rng.choice(odd) for k in rng.sample(["to", "actor", "actor_role", "note", "department", "outcome"],
                                                       rng.randint(1, 6))}
        r = client.post(f"/api/v1/incidents/{existing}/transitions", data=json.dumps(body), headers=JSON_HEADERS)
        assert r.status_code < 500, (body, r.data[:200])
    params = ["status", "category", "severity", "source", "level", "department", "town", "zone", "grid", "from",
              "to", "bbox", "q", "overdue", "limit", "cursor", "format", "after"]
    from urllib.parse import urlencode

    for _ in range(150):
        q = {p: str(rng.choice(odd)) for p in rng.sample(params, rng.randint(1, 5))}
        for path in ("/api/v1/incidents", "/api/v1/changes", "/open311/v2/requests.json"):
            try:
                qs = urlencode(q)
            except UnicodeEncodeError:
                qs = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in q.items()})
            r = client.get(f"{path}?{qs}")
            assert r.status_code < 500, (path, q, r.data[:200])
