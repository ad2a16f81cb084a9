"""Users, sign-in, sessions and role checks — on SQLite and PostgreSQL (see conftest ``backend``)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from dashboard.auth import token_mark
from dashboard.auth import users as repo
from dashboard.store.users import User


@pytest.fixture
def user_sessions(db, sessions):
    with db.begin() as c:
        c.execute(text("DELETE FROM users"))
    return sessions


@pytest.fixture
def auth_app(app, user_sessions):
    """The bare incident-API app plus sign-in, alerts and exports (as ``register_all`` wires them)."""
    from dashboard.api import alerts, export
    from dashboard.auth.views import setup

    app.config["SECRET_KEY"] = "test-secret"
    setup(app)
    alerts.register(app)
    app.register_blueprint(export.bp)
    for name, role in (("duty", "duty_officer"), ("boss", "leader"), ("screen", "wall"), ("root", "admin")):
        with user_sessions() as s:
            repo.add_user(s, name, f"{name}-password", role, display_name=f"{name.title()} 值班")
    return app


ORIGIN = {"Origin": "http://localhost"}


def login(client, name, password=None):
    return client.post("/login", data={"username": name, "password": password or f"{name}-password",
                                       "next": "/incidents"}, headers=ORIGIN)


def test_passwords_are_hashed_and_checked(user_sessions):
    with user_sessions() as s:
        u = repo.add_user(s, "wang", "correct horse", "duty_officer", display_name="王值班")
        assert u.password_hash.startswith("scrypt:") and "correct horse" not in u.password_hash
    with user_sessions() as s:
        assert repo.authenticate(s, "wang", "correct horse").name == "王值班"
        assert repo.authenticate(s, "wang", "wrong password") is None
        assert repo.authenticate(s, "nobody", "correct horse") is None
        assert s.get(User, u.id).last_login_at is not None


def test_user_rules(user_sessions):
    with user_sessions() as s:
        repo.add_user(s, "li", "long-enough", "leader")
        with pytest.raises(repo.UserError, match="already exists"):
            repo.add_user(s, "li", "long-enough", "leader")
        with pytest.raises(repo.UserError, match="role"):
            repo.add_user(s, "zhao", "long-enough", "boss")
        with pytest.raises(repo.UserError, match="at least"):
            repo.add_user(s, "zhao", "short", "leader")
        with pytest.raises(repo.UserError, match="username"):
            repo.add_user(s, "bad name!", "long-enough", "leader")
        repo.update_user(s, "li", active=False)
    with user_sessions() as s:
        assert repo.authenticate(s, "li", "long-enough") is None  # disabled


def test_demo_users_seeded_once(user_sessions):
    assert repo.seed_demo_users(user_sessions) == ["duty", "leader"]
    assert repo.seed_demo_users(user_sessions) == []
    with user_sessions() as s:
        assert repo.authenticate(s, "duty", "duty-demo").role == "duty_officer"
        assert repo.authenticate(s, "leader", "leader-demo").role == "leader"


def test_login_logout_and_page_gates(auth_app):
    c = auth_app.test_client()
    r = c.get("/incidents?status=open")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=%2Fincidents%3Fstatus%3Dopen")
    assert c.get("/wall").status_code == 302
    r = login(c, "duty", "wrong-password")
    assert r.status_code == 303 and "error=1" in r.headers["Location"]
    r = login(c, "duty")
    assert r.status_code == 303 and r.headers["Location"] == "/incidents"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # the gate now lets the page through (Dash is not mounted on this bare app, hence 404 after the gate)
    assert c.get("/incidents").status_code == 404
    assert c.post("/logout", headers=ORIGIN).status_code == 303
    assert c.get("/incidents").status_code == 302


def test_login_refuses_cross_site_posts_and_open_redirects(auth_app):
    c = auth_app.test_client()
    r = c.post("/login", data={"username": "duty", "password": "duty-password"},
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = c.post("/login", data={"username": "duty", "password": "duty-password"})  # neither Origin nor Referer
    assert r.status_code == 403
    r = c.post("/login", data={"username": "duty", "password": "duty-password", "next": "//evil.example/x"},
               headers={"Referer": "http://localhost/login"})
    assert r.status_code == 303 and r.headers["Location"] == "/incidents"


def test_wall_kiosk_token(auth_app):
    c = auth_app.test_client()
    assert c.get("/wall?token=nope").status_code == 403
    token = auth_app.extensions["dashboard"].settings.wall_tokens[0]
    r = c.get(f"/wall?token={token}&lang=en")  # exchanged for a session, and the token leaves the address
    assert r.status_code == 303 and r.headers["Location"] == "/wall?lang=en" and token not in r.headers["Location"]
    with c.session_transaction() as sess:  # a mark of the token (to end the session when it is removed), not it
        assert sess["wx_auth"] == {"kiosk": True, "tk": token_mark(token)} and token not in str(sess)
    assert c.get("/wall").status_code == 404  # the kiosk session opens the wall without the token again
    assert c.get("/incidents").status_code == 302  # …but not the duty desk
    assert c.get("/").status_code == 302  # …nor the overview
    assert c.get("/api/v1/incidents").status_code == 403  # …nor the read API


def test_leader_and_wall_cannot_open_duty_desk_or_act(auth_app):
    c = auth_app.test_client()
    login(c, "boss")
    assert c.get("/incidents").status_code == 404  # leaders may read
    c2 = auth_app.test_client()
    login(c2, "screen")
    r = c2.get("/incidents")
    assert r.status_code == 302 and "denied=1" in r.headers["Location"]


@pytest.mark.parametrize("who,expected", [(None, 401), ("boss", 403), ("screen", 403), ("duty", None),
                                          ("root", None)])
def test_authorize_roles_server_side(auth_app, who, expected):
    from dashboard.auth import ACT_ROLES, AuthError, authorize

    c = auth_app.test_client()
    if who:
        login(c, who)
    with c.session_transaction() as sess:
        data = dict(sess)
    with auth_app.test_request_context("/_dash-update-component", method="POST", headers=ORIGIN):
        from flask import session

        session.update(data)
        if expected is None:
            assert authorize(ACT_ROLES).role in ACT_ROLES
        else:
            with pytest.raises(AuthError) as exc:
                authorize(ACT_ROLES)
            assert exc.value.status == expected


def test_authorize_refuses_cross_site_even_for_duty_officer(auth_app):
    from dashboard.auth import ACT_ROLES, AuthError, authorize

    c = auth_app.test_client()
    login(c, "duty")
    with c.session_transaction() as sess:
        data = dict(sess)
    with auth_app.test_request_context("/_dash-update-component", method="POST",
                                       headers={"Origin": "https://evil.example"}):
        from flask import session

        session.update(data)
        with pytest.raises(AuthError) as exc:
            authorize(ACT_ROLES)
        assert exc.value.code == "cross_site"


def test_password_change_and_disable_end_sessions(auth_app, user_sessions):
    from dashboard.auth import current_user

    c = auth_app.test_client()
    login(c, "duty")
    with c.session_transaction() as sess:
        data = dict(sess)

    def who():
        with auth_app.test_request_context("/"):
            from flask import session

            session.update(data)
            return current_user()

    assert who().role == "duty_officer"
    with user_sessions() as s:
        repo.update_user(s, "duty", password="a-new-password")
    assert who() is None


def test_cli_users_add_list_passwd(backend, user_sessions, monkeypatch, capsys):
    import io

    from dashboard.__main__ import main

    _, url, _ = backend
    monkeypatch.setattr("sys.stdin", io.StringIO("cli-password-1\n"))
    assert main(["users", "--db", url, "add", "zhou", "--role", "duty_officer", "--display-name", "周值班",
                 "--password-stdin"]) == 0
    assert main(["users", "--db", url, "list"]) == 0
    out = capsys.readouterr().out
    assert "zhou" in out and "duty_officer" in out and "cli-password-1" not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("cli-password-1\n"))
    assert main(["users", "--db", url, "add", "zhou", "--role", "leader", "--password-stdin"]) == 2
    assert "already exists" in capsys.readouterr().err
    with user_sessions() as s:
        assert repo.authenticate(s, "zhou", "cli-password-1").name == "周值班"
    monkeypatch.setattr("sys.stdin", io.StringIO("cli-password-2\n"))
    assert main(["users", "--db", url, "passwd", "zhou", "--password-stdin"]) == 0
    assert main(["users", "--db", url, "role", "zhou", "leader"]) == 0
    with user_sessions() as s:
        assert repo.authenticate(s, "zhou", "cli-password-2").role == "leader"


# ------------------------------------------------------------------------------------------ lockout
def test_consecutive_wrong_passwords_lock_the_account(user_sessions):
    import datetime as dt

    t0 = dt.datetime(2026, 11, 25, 19, 0, tzinfo=dt.timezone.utc)
    with user_sessions() as s:
        repo.add_user(s, "sun", "right-password", "duty_officer")
    with user_sessions() as s:
        for k in range(4):
            assert repo.authenticate(s, "sun", f"wrong-{k}", now=t0, max_failures=5, lock_minutes=15) is None
        with pytest.raises(repo.AccountLocked) as locked:
            repo.authenticate(s, "sun", "wrong-5", now=t0, max_failures=5, lock_minutes=15)
        assert locked.value.until == t0 + dt.timedelta(minutes=15)
        # the right password does not help while locked, and is not even a failure
        with pytest.raises(repo.AccountLocked):
            repo.authenticate(s, "sun", "right-password", now=t0 + dt.timedelta(minutes=14), max_failures=5)
        after = t0 + dt.timedelta(minutes=15, seconds=1)
        assert repo.authenticate(s, "sun", "right-password", now=after, max_failures=5).username == "sun"
        row = s.execute(text("SELECT failed_logins, locked_until FROM users WHERE username = 'sun'")).one()
        assert row[0] == 0 and row[1] is None


def test_a_good_sign_in_resets_the_count(user_sessions):
    with user_sessions() as s:
        repo.add_user(s, "qian", "right-password", "leader")
    with user_sessions() as s:
        for _ in range(2):
            for k in range(3):
                assert repo.authenticate(s, "qian", f"wrong-{k}", max_failures=4) is None
            assert repo.authenticate(s, "qian", "right-password", max_failures=4) is not None  # never locked


def test_failures_counted_atomically_under_concurrency(user_sessions):
    from concurrent.futures import ThreadPoolExecutor

    with user_sessions() as s:
        repo.add_user(s, "zhou", "right-password", "duty_officer")

    def attempt(k):
        with user_sessions() as s:
            return repo.authenticate(s, "zhou", f"wrong-{k}", max_failures=100)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(attempt, range(16))) == [None] * 16
    with user_sessions() as s:
        assert s.execute(text("SELECT failed_logins FROM users WHERE username = 'zhou'")).scalar_one() == 16


def test_locked_sign_in_over_http_and_unlock_by_cli(auth_app, backend, user_sessions, capsys):
    from urllib.parse import parse_qs, urlsplit

    from dashboard.__main__ import main

    settings = auth_app.extensions["dashboard"].settings
    c = auth_app.test_client()
    for _ in range(settings.login_max_failures - 1):
        r = login(c, "duty", "wrong-password")
        assert r.status_code == 303 and "error=1" in r.headers["Location"]
    r = login(c, "duty", "wrong-password")
    query = parse_qs(urlsplit(r.headers["Location"]).query)
    assert r.status_code == 303 and query["locked"][0][2] == ":" and "error" not in query
    assert login(c, "duty").headers["Location"].startswith("/login?")  # right password, still locked
    assert c.get("/incidents").status_code == 302
    _, url, _ = backend
    assert main(["users", "--db", url, "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("duty "))
    assert line.split()[-1] != "-"  # the lock is listed
    assert main(["users", "--db", url, "unlock", "duty"]) == 0
    assert main(["users", "--db", url, "unlock", "nobody"]) == 2
    r = login(c, "duty")
    assert r.headers["Location"] == "/incidents"


def test_new_password_lifts_the_lock(user_sessions):
    with user_sessions() as s:
        repo.add_user(s, "wu", "right-password", "leader")
    with user_sessions() as s:
        with pytest.raises(repo.AccountLocked):
            repo.authenticate(s, "wu", "wrong", max_failures=1)
        repo.update_user(s, "wu", password="another-password")
    with user_sessions() as s:
        assert repo.authenticate(s, "wu", "another-password", max_failures=1) is not None


def test_a_name_that_is_no_account_locks_like_one(user_sessions):
    from cachelib import SimpleCache

    cache = SimpleCache()
    with user_sessions() as s:
        for k in range(2):
            assert repo.authenticate(s, "ghost", f"wrong-{k}", max_failures=3, shadow_cache=cache) is None
        with pytest.raises(repo.AccountLocked):
            repo.authenticate(s, "ghost", "wrong-3", max_failures=3, shadow_cache=cache)
        assert repo.authenticate(s, "ghost", "wrong-4", max_failures=3) is None  # without the cache: no lock
