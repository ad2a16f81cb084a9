"""Alerts (raised with the incident, one transaction; acknowledged once) and the alerts / export APIs — on SQLite
and PostgreSQL."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select, text

from dashboard.store import alerts as alerts_repo
from dashboard.store import incidents as repo
from dashboard.store.hazards import load_hazard_sites

from .test_auth_store import ORIGIN, auth_app, login, user_sessions  # noqa: F401 (fixtures)


@pytest.fixture
def hazards(sessions, geo):
    with sessions() as s:
        load_hazard_sites(s, geo.hazards)
    hz = geo.hazards
    return hz[(hz["kind"] == "hazchem") & hz["major"].astype(bool)]


def _new(geo, lon, lat, **kw):
    grid = geo.locator.locate(lon, lat)
    zone = geo.locator.zone_of(grid)
    town = geo.locator.town_of(grid)
    base = dict(category="order.public", description="test", lon=lon, lat=lat, grid_code=grid, zone_code=zone,
                town_code=town, severity=2)
    base.update(kw)
    return repo.NewIncident(**base)


def _alerts(sessions):
    with sessions() as s:
        return [(a.incident_id, a.kind, a.hazard_code, a.seq) for a in s.execute(
            select(alerts_repo.Alert).order_by(alerts_repo.Alert.id)).scalars()]


def _outside_rings(geo, points, rings):
    for lon, lat, *_ in points:
        if alerts_repo.ring_containing(lon, lat, [alerts_repo.Ring(r.code, r.name, r.kind, r.geometry.x,
                                                                   r.geometry.y, float(r.ring_m))
                                                  for r in rings.itertuples()]) is None:
            return lon, lat
    raise AssertionError("no point outside the rings")


def test_high_severity_raises_one_alert_in_the_same_transaction(sessions, geo, points, hazards):
    lon, lat = _outside_rings(geo, points, hazards)
    with sessions() as s:
        low, _ = repo.create_incident(s, _new(geo, lon, lat, severity=2))
        high, _ = repo.create_incident(s, _new(geo, lon, lat, severity=3, client_ref="alert-1"))
        again, created = repo.create_incident(s, _new(geo, lon, lat, severity=3, client_ref="alert-1"))
    assert not created and again.id == high.id
    assert _alerts(sessions) == [(high.id, "high_severity", None, high.seq)]  # same seq as the incident


def test_incident_inside_a_major_hazchem_ring_raises_a_ring_alert(sessions, geo, hazards):
    site = hazards.iloc[0]
    lon, lat = site.geometry.x + 0.0005, site.geometry.y  # ~50 m east of the site
    if geo.locator.locate(lon, lat) is None:
        lon = site.geometry.x - 0.0005
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, lon, lat, severity=1))
    assert _alerts(sessions) == [(inc.id, "hazchem_ring", site.code, inc.seq)]


def test_no_registry_means_only_the_severity_rule(sessions, geo, points):
    lon, lat, *_ = points[0]
    with sessions() as s:
        repo.create_incident(s, _new(geo, lon, lat, severity=1))
    assert _alerts(sessions) == []


def test_failed_alert_insert_rolls_the_incident_back(sessions, geo, points, monkeypatch):
    lon, lat, *_ = points[0]

    def boom(session, inc):
        raise RuntimeError("alert store down")

    monkeypatch.setattr(alerts_repo, "raise_for_new_incident", boom)
    with sessions() as s:
        with pytest.raises(RuntimeError):
            repo.create_incident(s, _new(geo, lon, lat, severity=4))
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(repo.Incident)).scalar_one() == 0


def test_acknowledge_once_and_feed_by_seq(sessions, geo, points):
    lon, lat, *_ = points[1]
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, lon, lat, severity=4))
        (alert, _), = alerts_repo.list_alerts(s)
        first_seq = alerts_repo.current_seq(s)
    with sessions() as s:
        a, changed = alerts_repo.acknowledge(s, alert.id, "王值班")
        assert changed and a.acknowledged_by == "王值班" and a.seq > first_seq
    with sessions() as s:
        a, changed = alerts_repo.acknowledge(s, alert.id, "someone else")
        assert not changed and a.acknowledged_by == "王值班"
        assert alerts_repo.list_alerts(s) == []
        assert [x.id for x, _ in alerts_repo.list_alerts(s, active_only=False, after=first_seq)] == [alert.id]
        assert alerts_repo.active_count(s) == 0
    with sessions() as s, pytest.raises(alerts_repo.AlertNotFound):
        alerts_repo.acknowledge(s, 10**9, "x")


def test_alerts_api_and_ack_roles(auth_app, sessions, geo, points, auth):
    lon, lat, *_ = points[2]
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, lon, lat, severity=4, reporter_phone="13800000000"))
    anon = auth_app.test_client()
    leader = auth_app.test_client()
    login(leader, "boss")
    wall = auth_app.test_client()
    login(wall, "screen")
    # private by default: no reading without a reader's session or a token
    assert anon.get("/api/v1/alerts").status_code == 401
    assert wall.get("/api/v1/alerts").status_code == 403
    body = leader.get("/api/v1/alerts").get_json()
    assert body["active_count"] == 1 and body["items"][0]["incident"]["code"] == inc.code
    assert "13800000000" not in str(body)
    alert_id = body["items"][0]["id"]
    assert leader.get("/api/v1/alerts?status=bogus").status_code == 400
    # anonymous, leader, wall: refused, nothing changed
    assert anon.post(f"/api/v1/alerts/{alert_id}/ack", headers=ORIGIN).status_code == 401
    assert leader.post(f"/api/v1/alerts/{alert_id}/ack", headers=ORIGIN).status_code == 403
    assert wall.post(f"/api/v1/alerts/{alert_id}/ack", headers=ORIGIN).status_code == 403
    assert anon.post(f"/api/v1/alerts/{alert_id}/ack", headers={"Authorization": "Bearer nope"}).status_code == 401
    duty = auth_app.test_client()
    login(duty, "duty")
    assert duty.post(f"/api/v1/alerts/{alert_id}/ack",
                     headers={"Origin": "https://evil.example"}).status_code == 403  # CSRF
    assert leader.get("/api/v1/alerts").get_json()["active_count"] == 1
    r = duty.post(f"/api/v1/alerts/{alert_id}/ack", headers=ORIGIN)
    assert r.status_code == 200 and r.get_json()["acknowledged_by"] == "Duty 值班" and r.get_json()["changed"]
    assert leader.get("/api/v1/alerts").get_json()["active_count"] == 0
    after = leader.get("/api/v1/alerts?status=all&after=0").get_json()
    assert after["items"][0]["active"] is False and after["last_seq"] == after["items"][-1]["seq"]
    # machine clients: a token
    with sessions() as s:
        inc2, _ = repo.create_incident(s, _new(geo, lon, lat, severity=3))
    a2 = anon.get("/api/v1/alerts", headers=auth).get_json()["items"][0]["id"]
    r = anon.post(f"/api/v1/alerts/{a2}/ack", json={"actor": "bot"}, headers=auth)
    assert r.status_code == 200 and r.get_json()["acknowledged_by"] == "bot"
    assert anon.post("/api/v1/alerts/999999/ack", headers=auth).status_code == 404


def test_transition_api_refuses_sessions_without_token(auth_app, sessions, geo, points):
    """The HTTP transition API is for machine clients (token); a browser session alone cannot use it."""
    lon, lat, *_ = points[3]
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, lon, lat))
    duty = auth_app.test_client()
    login(duty, "duty")
    r = duty.post(f"/api/v1/incidents/{inc.id}/transitions", headers=ORIGIN,
                  json={"to": "routed", "actor": "x", "actor_role": "duty_officer"})
    assert r.status_code == 401
    with sessions() as s:
        assert s.get(repo.Incident, inc.id).status == "reported"


def _seed_some(sessions, geo, points):
    made = []
    with sessions() as s:
        for k, (lon, lat, *_) in enumerate(points[:12]):
            cat = ("safety.fire", "order.public", "dispute.civil")[k % 3]
            desc = "=HYPERLINK(\"http://x\")" if k == 0 else f"描述 {k}"
            inc, _ = repo.create_incident(s, _new(geo, lon, lat, category=cat, severity=1 + k % 4,
                                                  description=desc, reporter_phone="13900000000"))
            made.append(inc)
    return made


@pytest.mark.parametrize("query", ["", "category=safety.fire", "severity=3,4", "status=open&category=dispute.civil"])
def test_exports_hold_exactly_the_filtered_rows(auth_app, sessions, geo, points, auth, query):
    from openpyxl import load_workbook

    _seed_some(sessions, geo, points)
    client = auth_app.test_client()
    listed = client.get(f"/api/v1/incidents?{query}&limit=1000", headers=auth).get_json()["items"]
    codes = [i["code"] for i in listed]
    assert client.get(f"/api/v1/incidents/export.csv?{query}").status_code == 401
    login(client, "boss")  # leaders may export, without the reporters (personal data)
    r = client.get(f"/api/v1/incidents/export.csv?{query}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][0] == "编号" and [row[0] for row in rows[1:]] == codes
    assert "13900000000" not in r.data.decode("utf-8-sig")
    reporter = rows[0].index("上报人")
    assert all(row[reporter] == "" for row in rows[1:])
    duty = auth_app.test_client()
    login(duty, "duty")  # duty officers see who reported
    duty_rows = list(csv.reader(io.StringIO(duty.get(f"/api/v1/incidents/export.csv?{query}").data.decode("utf-8-sig"))))
    assert [row[0] for row in duty_rows[1:]] == codes
    assert all(row[reporter] for row in duty_rows[1:])
    r = client.get(f"/api/v1/incidents/export.xlsx?{query}&lang=en", headers=auth)
    ws = load_workbook(io.BytesIO(r.data)).active
    values = list(ws.values)
    assert values[0][0] == "Code" and [v[0] for v in values[1:]] == codes
    descs = [v[14] for v in values[1:]]
    assert all(not (d or "").startswith("=") for d in descs)
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_export_refuses_bad_filters_and_wall(auth_app):
    c = auth_app.test_client()
    login(c, "duty")
    r = c.get("/api/v1/incidents/export.csv?severity=9")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "severity"
    w = auth_app.test_client()
    login(w, "screen")
    assert w.get("/api/v1/incidents/export.csv").status_code == 403


def test_hazard_registry_loaded_once(sessions, geo):
    with sessions() as s:
        assert alerts_repo.ensure_hazard_registry(s, geo.hazards) == len(geo.hazards)
    with sessions() as s:
        assert alerts_repo.ensure_hazard_registry(s, geo.hazards) == 0


@pytest.fixture(autouse=True)
def _clean_alert_tables(db):
    with db.begin() as c:
        c.execute(text("DELETE FROM alerts"))
