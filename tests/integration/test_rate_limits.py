"""Rate limits on the app (issue 11): sign-in per address and per name, reads per user or token, expensive reads,
ingest per token and Dash callbacks per user answer 429 with ``Retry-After`` (JSON on the API and callbacks), count
each requester apart, and store nothing for a refused request."""
from __future__ import annotations

import pytest

from tests.conftest import signed_in_client
from tests.integration.conftest import small_history_app
from tests.integration.test_callback_guard import _outputs

ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}
LIMITS = {"login_address": "4/minute", "login_name": "3/minute", "read": "6/minute", "expensive": "2/minute",
          "ingest": "3/minute", "callbacks": "5/minute"}


@pytest.fixture
def app(tmp_path):
    return small_history_app(tmp_path, cache_url="null", api_tokens=("tok-a", "tok-b"), rate_limits=LIMITS)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_sign_in_per_name_and_per_address(app):
    c = app.server.test_client()
    form = {"username": "nobody", "password": "wrong", "next": "/"}
    statuses = [c.post("/login", data=form, headers=ORIGIN).status_code for _ in range(4)]
    assert statuses == [303, 303, 303, 429]  # the 4th try of one name
    r = c.post("/login", data=form, headers=ORIGIN)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert "login-rate-limited" in r.get_data(as_text=True)
    # another name from the same address: the address's own limit (4) is already used up by the tries above
    r = c.post("/login", data={**form, "username": "other"}, headers=ORIGIN)
    assert r.status_code == 429


def test_reads_per_requester_and_expensive_reads(app):
    c = app.server.test_client()
    statuses = [c.get("/api/v1/incidents?limit=1", headers=bearer("tok-a")).status_code for _ in range(7)]
    assert statuses == [200] * 6 + [429]
    r = c.get("/api/v1/incidents?limit=1", headers=bearer("tok-a"))
    body = r.get_json()["error"]
    assert r.status_code == 429 and body["code"] == "rate_limited" and body["rule"] == "read"
    assert int(r.headers["Retry-After"]) == body["retry_after"] >= 1
    assert c.get("/api/v1/incidents?limit=1", headers=bearer("tok-b")).status_code == 200  # its own count
    leader = signed_in_client(app.server, "leader")
    kpis = [leader.get("/api/v1/kpis?period=7d").status_code for _ in range(3)]
    assert kpis == [200, 200, 429]  # expensive: 2 a minute


def test_ingest_per_token_stores_nothing_when_refused(app):
    from dashboard.geodata import load_geodata

    gd = load_geodata(app.server.extensions["dashboard"].settings.geodata_dir)
    p = gd.grids.geometry.iloc[3].representative_point()
    c = app.server.test_client()
    bodies = [{"category": "city.appearance", "lon": p.x, "lat": p.y, "description": f"限流{i}",
               "client_ref": f"rl-{i}"} for i in range(4)]
    statuses = [c.post("/api/v1/incidents", json=b, headers=bearer("tok-a")).status_code for b in bodies]
    assert statuses == [201, 201, 201, 429]
    found = c.get("/api/v1/incidents?q=限流&limit=10", headers=bearer("tok-b")).get_json()["items"]
    assert sorted(i["client_ref"] for i in found) == ["rl-0", "rl-1", "rl-2"]  # the refused one is not stored


def test_callbacks_per_user(app):
    leader = signed_in_client(app.server, "leader")
    deps = leader.get("/_dash-dependencies").get_json()
    cb = next(d for d in deps if "kpi-cards.children" in d["output"])
    body = {"output": cb["output"], "outputs": _outputs(cb["output"]),
            "inputs": [{**i, "value": None} for i in cb["inputs"]],
            "state": [{**s, "value": None} for s in cb["state"]], "changedPropIds": []}
    statuses = [leader.post("/_dash-update-component", json=body, headers=ORIGIN).status_code for _ in range(6)]
    assert statuses[-1] == 429 and 429 not in statuses[:5]
    r = leader.post("/_dash-update-component", json=body, headers=ORIGIN)
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited" and r.headers["Retry-After"]
    duty = signed_in_client(app.server, "duty_officer")  # another user: not refused
    assert duty.post("/_dash-update-component", json=body, headers=ORIGIN).status_code != 429
