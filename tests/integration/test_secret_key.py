"""The session-signing key: never a known placeholder. A weak SECRET_KEY or a missing one on PostgreSQL stops the
app at start; the embedded store makes its own random key once (mode 0600) and every worker reads it; a cookie
forged with the old placeholder key opens nothing."""
from __future__ import annotations

import stat

import pytest
from flask.sessions import SecureCookieSessionInterface

from dashboard import create_app
from dashboard.security import WeakSecret, resolve_secret_key
from dashboard.settings import Settings


@pytest.mark.parametrize("key", ["dev-only-change-me", "short", "x" * 31])
def test_weak_keys_are_refused(tmp_path, key):
    with pytest.raises(WeakSecret):
        resolve_secret_key(Settings(instance_dir=tmp_path, secret_key=key))
    with pytest.raises(WeakSecret):
        create_app(Settings(instance_dir=tmp_path, secret_key=key, tile_url="", demo_live=False), with_store=False)


def test_postgresql_needs_a_key(tmp_path):
    with pytest.raises(WeakSecret, match="SECRET_KEY"):
        resolve_secret_key(Settings(instance_dir=tmp_path, database_url="postgresql://u@127.0.0.1:5432/x"))
    strong = "k" * 40
    assert resolve_secret_key(Settings(instance_dir=tmp_path, database_url="postgresql://u@h/x",
                                       secret_key=strong)) == strong


def test_embedded_store_makes_its_own_key_once(tmp_path):
    a = resolve_secret_key(Settings(instance_dir=tmp_path / "one"))
    assert len(a) >= 32 and a == resolve_secret_key(Settings(instance_dir=tmp_path / "one"))
    mode = stat.S_IMODE((tmp_path / "one" / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert resolve_secret_key(Settings(instance_dir=tmp_path / "two")) != a


def token_mark_of_default():
    from dashboard.auth import token_mark

    return token_mark(Settings().wall_tokens[0])


def test_a_cookie_signed_with_the_old_placeholder_opens_nothing(tmp_path):
    app = create_app(Settings(instance_dir=tmp_path, tile_url="", demo_live=False, cache_url="null"))
    server = app.server
    assert server.config["SESSION_COOKIE_NAME"] == "wx_session"
    forged_app = type("F", (), {"secret_key": "dev-only-change-me", "config": server.config})()
    serializer = SecureCookieSessionInterface().get_signing_serializer(forged_app)
    cookie = serializer.dumps({"wx_auth": {"kiosk": True, "tk": token_mark_of_default()}})
    client = server.test_client()
    client.set_cookie("wx_session", cookie)
    r = client.get("/wall")
    assert r.status_code in (302, 303) and "/login" in r.headers["Location"]
    # the same payload signed with the app's own key is accepted (the check above is not vacuous)
    from dashboard.auth import token_mark

    mark = token_mark(server.extensions["dashboard"].settings.wall_tokens[0])
    good = SecureCookieSessionInterface().get_signing_serializer(server).dumps({"wx_auth": {"kiosk": True,
                                                                                         "tk": mark}})
    client.set_cookie("wx_session", good)
    assert client.get("/wall").status_code == 200


def test_removing_a_wall_token_ends_its_kiosk_sessions(tmp_path):
    """A kiosk session is valid while its token is configured: after WALL_TOKENS drops it (and the server
    restarts with the new setting), the screen's cookie opens nothing; a session of a token still listed stays."""
    base = dict(instance_dir=tmp_path, tile_url="", demo_live=False, cache_url="null")
    before = create_app(Settings(wall_tokens=("screen-a", "screen-b"), **base)).server
    a, b = before.test_client(), before.test_client()
    assert a.get("/wall?token=screen-a").status_code == 303  # exchanged for a session, then /wall without it
    assert b.get("/wall?token=screen-b").status_code == 303
    assert a.get("/wall").status_code == 200 and b.get("/wall").status_code == 200  # the cookie alone opens it
    after = create_app(Settings(wall_tokens=("screen-b",), **base)).server
    for client, expected in ((a, 302), (b, 200)):
        client_after = after.test_client()
        cookie = client.get_cookie("wx_session")
        assert cookie is not None
        client_after.set_cookie("wx_session", cookie.value)
        r = client_after.get("/wall")
        assert r.status_code == expected, (expected, r.headers.get("Location"))
