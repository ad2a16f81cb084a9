"""Sessions an operator can trust and the audit log (issue 11), on SQLite and PostgreSQL:

- signing out ends the session on the server: the same cookie replayed afterwards opens nothing (no export, no
  page); a new password, a new role, disabling and ``users logout`` end every session of that user at once;
- every sign-in, failed sign-in, lockout and sign-out, lifecycle step (duty desk and API), alert acknowledgement,
  export and user change is recorded with who, role, when, from where and what;
- the log refuses UPDATE and DELETE (even in SQL), and only admins read and export it.
"""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text

from dashboard.auth import users as users_repo
from dashboard.store import audit as audit_repo

ORIGIN = {"Origin": "http://localhost"}
PASSWORDS = {"duty": "duty-password", "boss": "boss-password", "root": "root-password", "screen": "screen-password"}


@pytest.fixture
def site(app, sessions, db):
    """The bare API app with sign-in, alerts, exports and the audit API (as ``register_all`` wires them)."""
    from dashboard.api import alerts, export
    from dashboard.api.audit import bp as audit_bp
    from dashboard.auth.views import setup

    with db.begin() as c:
        c.execute(text("DELETE FROM users"))
        c.execute(text("DELETE FROM user_sessions"))
    app.config["SECRET_KEY"] = "test-secret-0123456789abcdef0123"
    setup(app)
    alerts.register(app)
    app.register_blueprint(export.bp)
    app.register_blueprint(audit_bp)
    for name, role in (("duty", "duty_officer"), ("boss", "leader"), ("root", "admin"), ("screen", "wall")):
        with sessions() as s:
            users_repo.add_user(s, name, PASSWORDS[name], role, display_name=f"{name.title()} 值班")
    return app


def login(client, name, password=None):
    return client.post("/login", data={"username": name, "password": password or PASSWORDS[name], "next": "/"},
                       headers=ORIGIN)


def cookie_of(client) -> str:
    return client.get_cookie("wx_session").value


def replay(app, cookie: str, path: str = "/api/v1/incidents/export.csv"):
    """A fresh client that sends only this cookie (a copy of it, taken before sign-out)."""
    c = app.test_client()
    c.set_cookie("wx_session", cookie)
    return c.get(path)


def newest(sessions, action: str, n: int = 1) -> list:
    with sessions() as s:
        return audit_repo.entries(s, audit_repo.AuditFilter(actions=[action]), limit=n)


def test_sign_out_ends_the_session_on_the_server(site, sessions):
    c = site.test_client()
    assert login(c, "boss").status_code == 303
    cookie = cookie_of(c)
    assert replay(site, cookie).status_code == 200  # the copy works while the session lives
    assert c.post("/logout", headers=ORIGIN).status_code == 303
    r = replay(site, cookie)
    assert r.status_code == 401  # the replayed cookie exports nothing after sign-out
    assert replay(site, cookie, "/incidents").status_code == 302
    with sessions() as s:
        rows = s.execute(text("SELECT ended_why FROM user_sessions")).all()
    assert [r[0] for r in rows] == ["logout"]


@pytest.mark.parametrize("change", ["password", "disable", "role", "logout_all"])
def test_a_user_change_ends_every_session_of_that_user(site, sessions, change):
    a, b, other = site.test_client(), site.test_client(), site.test_client()
    for c, name in ((a, "duty"), (b, "duty"), (other, "boss")):
        assert login(c, name).status_code == 303
    with sessions() as s:
        if change == "password":
            users_repo.update_user(s, "duty", password="another-password-1")
        elif change == "disable":
            users_repo.update_user(s, "duty", active=False)
        elif change == "role":
            users_repo.update_user(s, "duty", role="leader")
        else:
            assert users_repo.end_sessions(s, "duty") == 2
    for c in (a, b):
        assert c.get("/api/v1/incidents/export.csv").status_code == 401, change
    assert other.get("/api/v1/incidents/export.csv").status_code == 200  # someone else's session lives on


def test_the_cookie_holds_a_random_id_and_the_store_only_its_hash(site, sessions):
    c = site.test_client()
    login(c, "duty")
    with c.session_transaction() as sess:
        sid = sess["wx_auth"]["sid"]
    assert len(sid) >= 40 and set(sess["wx_auth"]) == {"sid"}
    with sessions() as s:
        stored = [r[0] for r in s.execute(text("SELECT id_hash FROM user_sessions")).all()]
    assert len(stored) == 1 and sid not in stored[0]
    # a forged cookie naming an id that was never issued opens nothing
    with c.session_transaction() as sess:
        sess["wx_auth"] = {"sid": "x" * 43}
    assert c.get("/api/v1/incidents/export.csv").status_code == 401


def test_sign_in_failures_lockout_and_sign_out_are_recorded(site, sessions):
    c = site.test_client()
    login(c, "duty", "wrong-1")
    assert newest(sessions, "sign_in_failed")[0].target == "duty"
    for _ in range(5):
        login(c, "duty", "wrong-again")
    locked = newest(sessions, "locked")
    assert locked and locked[0].target == "duty" and "until" in locked[0].details
    c2 = site.test_client()
    login(c2, "boss")
    entry = newest(sessions, "sign_in")[0]
    assert (entry.actor, entry.role, entry.address) == ("boss", "leader", "127.0.0.1")
    c2.post("/logout", headers=ORIGIN)
    assert newest(sessions, "sign_out")[0].actor == "boss"


def test_lifecycle_steps_acks_and_exports_are_recorded_with_who_and_what(site, sessions, geo, points, auth):
    from dashboard.store import incidents as repo

    lon, lat, *_ = points[3]
    body = {"category": "safety.fire", "severity": 4, "lon": lon, "lat": lat, "description": "仓库冒烟"}
    inc = site.test_client().post("/api/v1/incidents", json=body, headers=auth).get_json()
    r = site.test_client().post(f"/api/v1/incidents/{inc['id']}/transitions", headers=auth,
                                json={"to": "routed", "actor": "王站长", "actor_role": "station"})
    assert r.status_code == 200
    step = newest(sessions, "transition")[0]
    assert step.target == inc["code"] and step.role == "token" and step.details["to"] == "routed"
    assert step.details["as"] == "王站长" and step.details["via"] == "api"
    # a refused step records nothing
    r = site.test_client().post(f"/api/v1/incidents/{inc['id']}/transitions", headers=auth,
                                json={"to": "closed", "actor": "x", "actor_role": "station"})
    assert r.status_code == 409 and newest(sessions, "transition")[0].id == step.id
    # an alert acknowledged by a duty officer's session
    duty = site.test_client()
    login(duty, "duty")
    alert_id = duty.get("/api/v1/alerts").get_json()["items"][0]["id"]
    assert duty.post(f"/api/v1/alerts/{alert_id}/ack", headers=ORIGIN).status_code == 200
    ack = newest(sessions, "alert_ack")[0]
    assert (ack.actor, ack.role, ack.target) == ("duty", "duty_officer", str(alert_id))
    # an export: who, the filter, how many rows, with personal data or not
    r = duty.get("/api/v1/incidents/export.csv?severity=4")
    exp = newest(sessions, "export")[0]
    assert exp.actor == "duty" and exp.details["query"] == "severity=4"
    assert exp.details["rows"] == int(r.headers["X-Row-Count"]) and exp.details["personal"] is True
    with sessions() as s:  # the lifecycle step is in the store with its audit row, both or neither
        assert repo.get_incident(s, inc["id"]).status == "routed"


def test_the_log_refuses_update_and_delete(site, sessions, backend):
    c = site.test_client()
    login(c, "boss")
    name, _, engine = backend
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception) as exc, engine.begin() as conn:
            conn.execute(text(sql))
        assert "append-only" in str(exc.value)
    with sessions() as s:
        assert newest(sessions, "sign_in")[0].actor == "boss"
    assert not [n for n in dir(audit_repo) if n.startswith(("update", "delete", "remove", "edit"))]


def test_only_admins_read_and_export_the_log(site, sessions):
    for name, expected in (("boss", 403), ("duty", 403), ("screen", 403)):
        c = site.test_client()
        login(c, name)
        assert c.get("/api/v1/audit").status_code == expected, name
        assert c.get("/api/v1/audit.csv").status_code == expected, name
    assert site.test_client().get("/api/v1/audit").status_code == 401
    admin = site.test_client()
    login(admin, "root")
    body = admin.get("/api/v1/audit?action=sign_in&limit=50").get_json()
    assert body["items"] and all(i["action"] == "sign_in" for i in body["items"])
    assert {"boss", "duty", "screen", "root"} <= {i["actor"] for i in body["items"]}
    only = admin.get("/api/v1/audit?action=sign_in&actor=roo").get_json()["items"]
    assert only and {i["actor"] for i in only} == {"root"}
    assert admin.get("/api/v1/audit?action=nope").status_code == 400
    assert admin.get("/api/v1/audit?limit=%C2%B2").status_code == 400  # "²": a digit int() refuses (was a 500)
    assert admin.get("/api/v1/audit?before=%D9%A3").status_code == 400  # an Arabic-Indic three
    assert admin.get("/api/v1/audit?from=2026-13-01").status_code == 400
    r = admin.get("/api/v1/audit.csv?action=sign_in")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["时间", "操作人"] and len(rows) - 1 == int(r.headers["X-Row-Count"]) >= 4
    assert newest(sessions, "audit_export")[0].actor == "root"


def test_a_sign_in_name_cannot_become_a_spreadsheet_formula(site, sessions):
    login(site.test_client(), "=HYPERLINK(\"http://evil\")", "x")
    admin = site.test_client()
    login(admin, "root")
    text_out = admin.get("/api/v1/audit.csv?action=sign_in_failed").get_data(as_text=True)
    assert "'=HYPERLINK" in text_out and "\n=HYPERLINK" not in text_out.replace(",", "\n")


def test_cli_user_changes_and_token_changes_are_recorded(backend, site, sessions, monkeypatch):
    import dataclasses
    import io as _io

    from dashboard.__main__ import main
    from dashboard.services import audit

    _, url, _ = backend
    monkeypatch.setattr("sys.stdin", _io.StringIO("cli-password-1\n"))
    assert main(["users", "--db", url, "add", "qian", "--role", "leader", "--password-stdin"]) == 0
    assert main(["users", "--db", url, "logout", "qian"]) == 0
    assert newest(sessions, "user_add")[0].target == "qian"
    assert newest(sessions, "user_logout")[0].actor.startswith("cli:")
    settings = site.extensions["dashboard"].settings
    with site.app_context():
        audit.note_token_changes(settings)
        before = newest(sessions, "tokens_changed")[0].id
        audit.note_token_changes(settings)  # nothing changed: nothing recorded
        assert newest(sessions, "tokens_changed")[0].id == before
        site.extensions["dashboard"] = dataclasses.replace(site.extensions["dashboard"], settings=dataclasses.replace(
            settings, api_tokens=settings.api_tokens[1:]))
        audit.note_token_changes(site.extensions["dashboard"].settings)
    changed = newest(sessions, "tokens_changed")[0]
    assert changed.id != before and len(changed.details["api_removed"]) == 1
    assert settings.api_tokens[0] not in str(changed.detail)  # fingerprints, never the tokens


def test_old_session_rows_go_at_the_next_sign_in(site, sessions):
    import datetime as dt

    from dashboard.store.models import utcnow
    from dashboard.store.users import UserSession

    long_ago = utcnow() - dt.timedelta(days=45)
    with sessions() as s:
        s.add(UserSession(id_hash="old" * 10, user_id=1, created_at=long_ago, expires_at=long_ago))
        s.add(UserSession(id_hash="recent" * 5, user_id=1, created_at=utcnow(), expires_at=utcnow()))
        s.commit()
    login(site.test_client(), "boss")
    with sessions() as s:
        left = {r[0] for r in s.execute(text("SELECT id_hash FROM user_sessions")).all()}
    assert "old" * 10 not in left and "recent" * 5 in left and len(left) == 2
