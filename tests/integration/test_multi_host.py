"""Several app hosts behind nginx ("Beyond one district": it runs on more than one machine).

Two app hosts (gunicorn, 2 workers each, separate instance dirs, the same SECRET_KEY and tokens), one PostgreSQL
database, one Redis db, and Debian's nginx in front on loopback, running the committed sample site
(``deploy/nginx/wuxing.conf``, rendered with this module's ports). Checked through nginx and directly against each
host: a session started on one host is a session on the other, and ending it on one ends it on both; an incident
posted to one host arrives live on a stream opened through the other (and through nginx, unbuffered); sign-in
lockouts and rate limits are one count for both; a page served by one host loads its assets from either; the
audit log records the client's address through nginx (``TRUSTED_PROXIES=1``), never a forged one; the batch ingest
passes nginx's body limit. A duty desk opened in Chromium through nginx receives an incident posted to host A.

Redis db 13 is this module's own (``TEST_REDIS_MULTI_HOST_URL`` to use another), flushed at its start and end; the
database is ``wx_multi_<random>`` (``TEST_PG_DB_PREFIX`` replaces the prefix), dropped at the end. Without nginx,
Chromium or the services the module skips, and fails with ``CI=true``.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import threading
import time
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests import servers
from tests.conftest import watch

REDIS_URL = os.environ.get("TEST_REDIS_MULTI_HOST_URL", "redis://127.0.0.1:6379/13")
TOKEN = "multi-host-token"
SECRET = "multi-host-test-" + "m" * 40  # every host signs sessions with the same key
WALL = "multi-host-wall"
LOGIN_PER_ADDRESS = 12  # sign-ins a minute per client address (RATE_LIMIT_LOGIN_ADDRESS), shared through Redis
WAIT_S = 20.0
HEARTBEAT_S = 15.0  # the app's stream heartbeat (services.live.HEARTBEAT_S)
USERS = {"admin": ("mh-admin", "mh-admin-password-1"), "duty_officer": ("mh-duty", "mh-duty-password-1"),
         "leader": ("mh-leader", "mh-leader-password-1"), "locked": ("mh-locked", "mh-locked-password-1")}


class Cluster:
    def __init__(self, a, b, nginx, db_url):
        self.a, self.b, self.nginx, self.db_url = a, b, nginx, db_url

    @property
    def doors(self) -> dict:
        """Every way in: nginx and each host directly."""
        return {"nginx": self.nginx.url, "a": self.a.url, "b": self.b.url}


def _add_users(db_url: str) -> None:
    from dashboard.auth.users import add_user
    from dashboard.store import make_engine, session_factory

    engine = make_engine(db_url)
    try:
        sessions = session_factory(engine)
        for key, (name, password) in USERS.items():
            with sessions() as s:
                add_user(s, name, password, "duty_officer" if key == "locked" else key)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with servers.pg_database("wx_multi_") as db_url, servers.redis_db(REDIS_URL):
        servers.demo_history(db_url)  # migrates the database and fills it with a small demo
        _add_users(db_url)
        env = {"DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "TRUSTED_PROXIES": "1", "WALL_TOKENS": WALL,
               "STREAM_SLOTS": "8", "RATE_LIMIT_LOGIN_ADDRESS": f"{LOGIN_PER_ADDRESS}/minute",
               "LIVE_FIGURES": "0"}
        hosts = []
        for name in ("a", "b"):
            base = tmp_path_factory.mktemp(f"host-{name}")
            hosts.append(servers.Gunicorn({**env, "INSTANCE_DIR": str(base / "instance")}, workers=2,
                                          log_path=str(base / "gunicorn.log"), token=TOKEN, secret=SECRET,
                                          args=["--threads", "12", "-c", "python:dashboard.gunicorn_conf"]))
        try:
            with cf.ThreadPoolExecutor(2) as pool:  # both hosts start at once (migrations serialise in PostgreSQL)
                list(pool.map(lambda h: h.start(), hosts))
            nginx = servers.Nginx([f"127.0.0.1:{h.port}" for h in hosts]).start()
            try:
                yield Cluster(hosts[0], hosts[1], nginx, db_url)
            finally:
                nginx.stop()
        finally:
            with cf.ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda h: h.stop(), hosts))


# ---------------------------------------------------------------------------------------------------- helpers
class SourceAddress(HTTPAdapter):
    """Connections from a chosen loopback address (127.0.0.2 …), so that nginx sees a client other than itself."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        return super().init_poolmanager(*args, **kwargs)


def _client(address: str | None = None) -> requests.Session:
    s = requests.Session()
    if address:
        s.mount("http://", SourceAddress(address))
    return s


def sign_in(base: str, role: str, client: requests.Session | None = None, headers: dict | None = None) -> str:
    """Sign in through ``base`` (the form's POST, from that origin); the session cookie's value."""
    name, password = USERS[role]
    client = client or _client()
    r = client.post(base + "/login", data={"username": name, "password": password, "next": "/"},
                    headers={"Origin": base, **(headers or {})}, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and "error" not in r.headers["Location"], (r.status_code, r.headers, r.text[:300])
    return r.cookies["wx_session"]


def with_cookie(cookie: str) -> dict:
    return {"Cookie": f"wx_session={cookie}"}


def bearer() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def _point(base: str) -> tuple[float, float]:
    from shapely.geometry import shape

    grids = requests.get(base + "/api/geo/grids.json", headers=bearer(), timeout=30).json()
    p = shape(grids["features"][101]["geometry"]).representative_point()
    return round(p.x, 6), round(p.y, 6)


def post_incident(base: str, text: str) -> dict:
    lon, lat = _point(base)
    r = requests.post(base + "/api/v1/incidents", headers=bearer(), timeout=30,
                      json={"category": "order.public", "description": text, "lon": lon, "lat": lat, "severity": 2,
                            "client_ref": f"mh-{uuid.uuid4().hex}"})
    assert r.status_code == 201, r.text
    return r.json()


class Stream:
    """``GET /api/map/stream`` read by a thread: its events (name, data) and comment lines, each with the time it
    arrived; :meth:`wait_for` waits on a condition until an event satisfies a predicate."""

    def __init__(self, url: str, headers: dict):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, (self.resp.status, self.resp.read()[:300])
        self.headers = self.resp.headers
        self.events: list[tuple[float, str, object]] = []
        self.comments: list[float] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _lines(self):
        """The stream's lines as they arrive, gunzipped event by event when the server compressed it (the app does
        for a client that accepts gzip: each event is flushed on its own, so it can be read at once)."""
        import zlib

        gz = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.headers.get("Content-Encoding") == "gzip" else None
        buf = b""
        while True:
            chunk = self.resp.read1(65536) if gz else self.resp.readline()
            if not chunk:
                return
            buf += gz.decompress(chunk) if gz else chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                yield raw

    def _read(self):
        name, data = "message", []
        try:
            for raw in self._lines():
                line = raw.decode("utf-8").rstrip("\r\n")
                with self.changed:
                    if line.startswith(":"):
                        self.comments.append(time.monotonic())
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and data:
                        self.events.append((time.monotonic(), name, json.loads("\n".join(data))))
                        name, data = "message", []
                    self.changed.notify_all()
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    def wait_for(self, pred, timeout: float = WAIT_S):
        """(arrival time, data) of the first event satisfying ``pred``; fails after ``timeout``."""
        def found():
            return next(((t, d) for t, n, d in self.events if pred(n, d)), None)

        with self.changed:
            if not self.changed.wait_for(found, timeout):
                raise AssertionError(f"no such event in {timeout} s; saw {[(n, d) for _, n, d in self.events]}")
            return found()

    def opened(self, timeout: float = WAIT_S) -> None:
        """Wait until the stream's first line (a comment with its position) came through."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.comments, timeout), "the stream sent nothing"

    def close(self):
        import socket

        try:  # at once, not at the reader's next line (a heartbeat away)
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def _has_incident(incident_id: int):
    return lambda name, data: name == "change" and any(
        f.get("id") == incident_id or (f.get("properties") or {}).get("id") == incident_id
        for f in (data.get("upsert") or []))


# ------------------------------------------------------------------------------------------------------ tests
def test_nginx_spreads_requests_over_both_hosts(cluster):
    a, b = cluster.a.worker_pids(), cluster.b.worker_pids()
    assert len(a) == 2 and len(b) == 2 and not a & b
    served = set()
    for _ in range(12):
        r = requests.get(cluster.nginx.url + "/healthz", timeout=30)
        assert r.status_code == 200
        served.add(int(r.headers["X-Served-By"]))
    assert served <= a | b
    assert served & a and served & b, "round robin: both hosts answered through nginx"


def test_a_session_started_on_one_host_is_a_session_on_every_host(cluster):
    for start, end in (("a", "b"), ("nginx", "a"), ("b", "nginx")):
        cookie = sign_in(cluster.doors[start], "leader")
        for door, base in cluster.doors.items():
            page = requests.get(base + "/", headers=with_cookie(cookie), allow_redirects=False, timeout=30)
            assert page.status_code == 200 and "<html" in page.text.lower(), (start, door, page.status_code)
            api = requests.get(base + "/api/v1/incidents?limit=1", headers=with_cookie(cookie), timeout=30)
            assert api.status_code == 200 and api.json()["items"], (start, door, api.status_code)
        # signed out through another door: the session has ended on every host
        out = requests.post(cluster.doors[end] + "/logout", headers={**with_cookie(cookie),
                                                                      "Origin": cluster.doors[end]},
                            allow_redirects=False, timeout=30)
        assert out.status_code == 303, out.text[:200]
        for door, base in cluster.doors.items():
            page = requests.get(base + "/", headers=with_cookie(cookie), allow_redirects=False, timeout=30)
            assert page.status_code == 302 and "/login" in page.headers["Location"], (start, end, door)
            api = requests.get(base + "/api/v1/incidents?limit=1", headers=with_cookie(cookie), timeout=30)
            assert api.status_code == 401, (start, end, door, api.status_code)


def test_sign_in_through_nginx_keeps_the_browser_origin(cluster):
    """The same-origin check of sign-in compares the browser's Origin with the Host nginx passes on: the sample
    passes the port the browser used ($http_host), so a proxy on a non-default port still signs people in, and a
    form posted from another site is still refused."""
    assert ":" in cluster.nginx.url.rsplit("/", 1)[1]  # a non-default port
    sign_in(cluster.nginx.url, "duty_officer")
    name, password = USERS["duty_officer"]
    r = requests.post(cluster.nginx.url + "/login", data={"username": name, "password": password, "next": "/"},
                      headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=30)
    assert r.status_code == 403


def test_a_post_to_one_host_arrives_live_through_the_other_and_through_nginx(cluster):
    cookie = sign_in(cluster.a.url, "duty_officer")
    streams = {
        "b": Stream(cluster.b.url + "/api/map/stream", with_cookie(cookie)),
        # a browser asks for gzip: the app compresses the stream event by event; nginx must pass it unbuffered
        "nginx": Stream(cluster.nginx.url + "/api/map/stream", {**with_cookie(cookie), "Accept-Encoding": "gzip"}),
    }
    try:
        for s in streams.values():
            s.opened()
        through = streams["nginx"].headers
        assert through["Content-Type"].startswith("text/event-stream")
        assert through["Content-Encoding"] == "gzip"  # the app's own, passed through (not re-compressed)
        comments_before = {k: len(s.comments) for k, s in streams.items()}
        t0 = time.monotonic()
        inc = post_incident(cluster.a.url, "多主机推送测试")
        for door, s in streams.items():
            arrived, data = s.wait_for(_has_incident(inc["id"]))
            # before the next heartbeat: no proxy held the event back until a ping pushed it through
            assert arrived - t0 < HEARTBEAT_S, (door, arrived - t0)
            assert len([c for c in s.comments if c <= arrived]) == comments_before[door], door
            assert data["seq"] >= inc["seq"]
    finally:
        for s in streams.values():
            s.close()


def test_an_incident_posted_through_nginx_is_read_from_both_hosts(cluster):
    inc = post_incident(cluster.nginx.url, "经反向代理上报")
    for door, base in cluster.doors.items():
        r = requests.get(f"{base}/api/v1/incidents/{inc['id']}", headers=bearer(), timeout=30)
        assert r.status_code == 200 and r.json()["code"] == inc["code"], door


def test_a_batch_larger_than_nginx_default_body_passes(cluster):
    """nginx refuses bodies over 1 MB by default; the sample lets the batch ingest's 8 MB through."""
    lon, lat = _point(cluster.a.url)
    items = [{"category": "order.public", "description": "批量" + "案" * 2500, "lon": lon, "lat": lat,
              "client_ref": f"mh-batch-{uuid.uuid4().hex}"} for _ in range(200)]
    body = json.dumps({"incidents": items}, ensure_ascii=False).encode("utf-8")
    assert len(body) > 1_500_000
    r = requests.post(cluster.nginx.url + "/api/v1/incidents/batch", data=body, timeout=120,
                      headers={**bearer(), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["created"] == 200


def test_lockout_and_sign_in_limits_are_one_count_on_both_hosts(cluster):
    # the account lockout (PostgreSQL): wrong passwords through A lock the account on B
    name, password = USERS["locked"]
    address = {"X-Forwarded-For": "192.0.2.10"}  # the hosts trust one proxy: a direct client may name itself
    for i in range(5):  # LOGIN_MAX_FAILURES: the fifth wrong password locks the account
        r = requests.post(cluster.a.url + "/login", data={"username": name, "password": "wrong", "next": "/"},
                          headers={"Origin": cluster.a.url, **address}, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and ("locked=" if i == 4 else "error=1") in r.headers["Location"], (i, r.headers)
    r = requests.post(cluster.b.url + "/login", data={"username": name, "password": password, "next": "/"},
                      headers={"Origin": cluster.b.url, **address}, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and "locked=" in r.headers["Location"], r.headers
    assert "wx_session" not in r.cookies

    # the sign-in rate limit per address (Redis): attempts through A and B count together
    def attempt(base, who):
        return requests.post(base + "/login", data={"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "x",
                                                    "next": "/"},
                             headers={"Origin": base, "X-Forwarded-For": who}, allow_redirects=False, timeout=30)

    codes = [attempt((cluster.a.url, cluster.b.url)[i % 2], "192.0.2.20").status_code
             for i in range(LOGIN_PER_ADDRESS)]
    assert codes == [303] * LOGIN_PER_ADDRESS
    for base in (cluster.a.url, cluster.b.url):
        refused = attempt(base, "192.0.2.20")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert attempt(cluster.b.url, "192.0.2.21").status_code == 303  # per address: another client is not refused


def test_the_audit_log_keeps_the_client_address_seen_by_nginx(cluster):
    """Behind nginx with TRUSTED_PROXIES=1 the audit log holds the client's address (here 127.0.0.2; nginx reaches
    the hosts from 127.0.0.1), not the proxy's and not what the client wrote into X-Forwarded-For itself."""
    client = _client("127.0.0.2")
    sign_in(cluster.nginx.url, "admin", client, headers={"X-Forwarded-For": "203.0.113.66"})
    r = client.get(f"{cluster.a.url}/api/v1/audit?action=sign_in&actor={USERS['admin'][0]}", timeout=30)
    assert r.status_code == 200, r.text[:200]
    entries = r.json()["items"]
    assert [e["address"] for e in entries] == ["127.0.0.2"], entries


def test_forwarded_headers_are_believed_only_with_trusted_proxies():
    """TRUSTED_PROXIES=0 (the default): the address is the connection's, whatever the request says; 1: the last
    X-Forwarded-For entry (the one the proxy added) and its X-Forwarded-Proto; the host is never taken from them."""
    import flask

    from dashboard.security import trust_proxies

    seen = {}
    for n in (0, 1):
        app = flask.Flask(f"proxies{n}")
        app.add_url_rule("/", "who", lambda: flask.jsonify(addr=flask.request.remote_addr,
                                                           scheme=flask.request.scheme, host=flask.request.host))
        trust_proxies(app, n)
        seen[n] = app.test_client().get("/", environ_base={"REMOTE_ADDR": "10.0.0.5"}, headers={
            "X-Forwarded-For": "203.0.113.66, 198.51.100.7", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example", "Host": "zhihui.example"}).get_json()
    assert seen[0] == {"addr": "10.0.0.5", "scheme": "http", "host": "zhihui.example"}
    assert seen[1] == {"addr": "198.51.100.7", "scheme": "https", "host": "zhihui.example"}


def test_a_page_served_by_one_host_loads_its_assets_from_the_other_and_through_nginx(cluster):
    cookie = sign_in(cluster.b.url, "leader")
    page = requests.get(cluster.b.url + "/", headers=with_cookie(cookie), timeout=30)
    assert page.status_code == 200
    assets = sorted(set(re.findall(r'(?:src|href)="(/_dash-component-suites/[^"]+|/assets/[^"]+)"', page.text)))
    assert len(assets) > 5
    for door in ("a", "nginx"):
        for path in assets + ["/_dash-layout", "/_dash-dependencies"]:
            r = requests.get(cluster.doors[door] + path, timeout=60,
                             headers={**with_cookie(cookie), "Referer": cluster.doors[door] + "/"})
            assert r.status_code == 200, (door, path, r.status_code)
    # JSON comes compressed through nginx (by the app or by nginx)
    r = requests.get(cluster.nginx.url + "/api/geo/zones.json", headers={**bearer(), "Accept-Encoding": "gzip"},
                     timeout=30)
    assert r.status_code == 200 and r.headers.get("Content-Encoding") in ("gzip", "br") and r.json()["features"]


def test_a_duty_desk_opened_through_nginx_receives_a_post_to_host_a(cluster, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    errors = watch(pg)
    try:
        name, password = USERS["duty_officer"]
        r = pg.request.post(cluster.nginx.url + "/login", form={"username": name, "password": password, "next": "/"},
                            headers={"Origin": cluster.nginx.url}, max_redirects=0)
        assert r.status == 303 and "error" not in (r.headers.get("location") or "")
        pg.goto(cluster.nginx.url + "/incidents")
        pg.wait_for_function("() => window.wx && window.wx.live && window.wx.live.state().connected "
                             "&& window.wx.live.size() !== null", timeout=60_000)
        inc = post_incident(cluster.a.url, "值班台经代理实时接收")
        pg.wait_for_function("id => window.wx.live.ids().indexOf(id) >= 0", arg=inc["id"], timeout=30_000)
        assert errors == []
    finally:
        ctx.close()
