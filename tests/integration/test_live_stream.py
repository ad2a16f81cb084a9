"""Live by push (issue 12): ``GET /api/map/stream`` (Server-Sent Events) on a real threaded server, on SQLite and on
PostgreSQL (LISTEN/NOTIFY): a post reaches an open stream as a change event holding only that incident; a closed
incident leaves the open filter; a reconnect with Last-Event-ID or after= delivers what happened meanwhile exactly
once; equal streams share one build; bad input is refused before a stream opens; the slots are bounded."""
from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import TOKEN, LiveServer, authed
from tests.integration.conftest import grid_points

WAIT_S = 20.0


@pytest.fixture
def server(backend, db, geodata_dir, tmp_path):
    from dashboard import create_app
    from dashboard.settings import Settings

    _, url, _ = backend
    app = create_app(Settings(instance_dir=tmp_path / "inst", database_url=url, cache_url="null", tile_url="",
                              demo_live=False, api_tokens=(TOKEN,), geodata_dir=geodata_dir, rate_limits_on=False,
                              stream_slots=4, live_poll_s=0.1, live_figures_s=0.0, secret_key="live-stream-test-key-" + "x" * 24))
    app.server.extensions["dashboard"].hub.heartbeat_s = 0.3  # closed test streams free their slot at once
    srv = LiveServer(app)
    yield srv
    app.server.extensions["dashboard"].hub.stop()
    srv.stop()


class Stream:
    """An open event stream read by a thread: events in a queue (name, id, data)."""

    def __init__(self, url: str, headers: dict | None = None):
        self.resp = urllib.request.urlopen(authed(url, headers=headers), timeout=WAIT_S)
        self.events: queue.Queue = queue.Queue()
        self.comments = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        name, ident, data = "message", None, []
        try:
            for raw in self.resp:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "":
                    if data:
                        self.events.put((name, ident, json.loads("\n".join(data))))
                    name, ident, data = "message", None, []
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    def next(self, timeout: float = WAIT_S):
        return self.events.get(timeout=timeout)

    def until(self, pred, timeout: float = WAIT_S):
        """The first event whose data satisfies ``pred`` (events before it are returned too)."""
        seen, ends = [], time.monotonic() + timeout
        while time.monotonic() < ends:
            ev = self.next(max(0.05, ends - time.monotonic()))
            seen.append(ev)
            if pred(ev[2]):
                return ev, seen
        raise AssertionError(f"no such event in {timeout} s; saw {seen}")

    def close(self):
        self.resp.close()


def _post(srv, lon, lat, **kw) -> dict:
    body = {"category": "order.public", "description": "推送测试", "lon": lon, "lat": lat, "severity": 2, **kw}
    req = authed(srv.url + "/api/v1/incidents", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201)
        return json.loads(r.read())


def _seq(srv) -> int:
    """The newest change sequence, as a page's layers know it."""
    from dashboard.services import live

    with srv.app.server.app_context():
        return live.read_head().seq


def _step(srv, incident_id: int, to: str, role: str = "grid_worker") -> None:
    body = {"to": to, "actor": "测试员", "actor_role": role, "note": "推送测试"}
    req = authed(f"{srv.url}/api/v1/incidents/{incident_id}/transitions", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_a_post_reaches_an_open_stream_with_only_that_incident(server, geo):
    (lon, lat, grid, *_), (lon2, lat2, *_rest) = grid_points(geo, 2)
    first = _post(server, lon, lat)
    s = Stream(server.url + f"/api/map/stream?after={_seq(server)}")
    try:
        posted = _post(server, lon2, lat2, severity=3)
        (name, ident, data), _ = s.until(lambda d: d.get("upsert"))
        assert name == "change"
        assert [f["properties"]["id"] for f in data["upsert"]] == [posted["id"]]
        assert data["upsert"][0]["properties"]["s"] == 3 and data["remove"] == []
        assert ident == f"{data['seq']}.{data['aseq']}"
        assert len(json.dumps(data).encode()) <= 2048  # one changed incident: well under 2 KB
    finally:
        s.close()


def test_an_incident_that_leaves_the_filter_is_removed_and_a_changed_one_updated(server, geo):
    (lon, lat, *_), = grid_points(geo, 1)
    posted = _post(server, lon, lat)
    narrow = Stream(server.url + f"/api/map/stream?status=reported&after={_seq(server)}")
    wide = Stream(server.url + f"/api/map/stream?status=open&after={_seq(server)}")
    try:
        _step(server, posted["id"], "onsite_handled")
        (_, _, d), _ = narrow.until(lambda d: d.get("upsert") or d.get("remove"))
        assert d["remove"] == [posted["id"]] and d["upsert"] == []
        (_, _, d), _ = wide.until(lambda d: d.get("upsert") or d.get("remove"))
        assert [f["properties"]["t"] for f in d["upsert"]] == ["onsite_handled"] and d["remove"] == []
    finally:
        narrow.close()
        wide.close()


def test_reconnect_delivers_what_happened_meanwhile_exactly_once(server, geo):
    pts = grid_points(geo, 6)
    s = Stream(server.url + f"/api/map/stream?after={_seq(server)}")
    got = []
    try:
        a = _post(server, *pts[0][:2])
        (_, ident, data), _ = s.until(lambda d: any(f["properties"]["id"] == a["id"] for f in d.get("upsert", [])))
        got += [f["properties"]["id"] for f in data["upsert"]]
    finally:
        s.close()
    missed = [_post(server, *p[:2])["id"] for p in pts[1:4]]  # while no stream is open
    again = Stream(server.url + "/api/map/stream", headers={"Last-Event-ID": ident})
    try:
        seen_ids = []
        while set(missed) - set(seen_ids):
            _, _, d = again.next()
            seen_ids += [f["properties"]["id"] for f in d.get("upsert", [])]
        assert sorted(seen_ids) == sorted(missed)  # each once, none from before the reconnect
        assert a["id"] not in seen_ids
    finally:
        again.close()
    # the same with after= (a page that reloaded keeps its own sequence)
    after = int(ident.split(".")[0])
    third = Stream(server.url + f"/api/map/stream?after={after}")
    try:
        _, _, d = third.next()
        assert sorted(f["properties"]["id"] for f in d["upsert"]) == sorted(missed)
    finally:
        third.close()


def test_equal_streams_share_one_build(server, geo):
    from dashboard.services import live

    hub = server.app.server.extensions["dashboard"].hub
    with server.app.server.app_context():
        head = live.read_head()  # both sequences: no catch-up event before the post
    streams = [Stream(server.url + f"/api/map/stream?after={head.seq}&aseq={head.aseq}&severity=2,3")
               for _ in range(3)]
    try:
        before = hub.builds
        posted = _post(server, *grid_points(geo, 1)[0][:2])
        for s in streams:
            s.until(lambda d: any(f["properties"]["id"] == posted["id"] for f in d.get("upsert", [])))
        assert hub.builds - before == 1
    finally:
        for s in streams:
            s.close()


BAD = ["severity=9", "after=abc", "after=-5", "bbox=1,2", "status=nope", "aseq=99999999999999999999999"]


def test_bad_or_anonymous_stream_requests_are_refused_before_it_opens(server):
    for query in BAD:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(authed(server.url + "/api/map/stream?" + query), timeout=10)
        assert err.value.code == 400, query
        assert json.loads(err.value.read())["error"]["code"] == "invalid_value", query
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/api/map/stream", timeout=10)
    assert err.value.code == 401
    assert server.app.server.extensions["dashboard"].hub.open_streams == 0


def test_stream_slots_are_bounded_and_freed(server):
    hub = server.app.server.extensions["dashboard"].hub
    streams = [Stream(server.url + "/api/map/stream") for _ in range(hub.slots)]
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(authed(server.url + "/api/map/stream"), timeout=10)
        assert err.value.code == 503 and err.value.headers["Retry-After"]
    finally:
        for s in streams:
            s.close()
    ends = time.monotonic() + WAIT_S  # a closed stream's slot is freed at its next write (a ping or an event)
    while hub.open_streams and time.monotonic() < ends:
        time.sleep(0.05)
    assert hub.open_streams == 0
    s = Stream(server.url + "/api/map/stream")  # and taken again
    s.close()


def _signed_in_opener(srv, role: str):
    """A urllib opener with a cookie jar, signed in through ``POST /login`` as a new user with ``role``."""
    import http.cookiejar
    import urllib.parse
    import uuid

    from dashboard.auth.users import add_user

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    name, password = f"s-{uuid.uuid4().hex[:10]}", "stream-test-password"
    with srv.app.server.extensions["dashboard"].sessions() as s:
        add_user(s, name, password, role)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    body = urllib.parse.urlencode({"username": name, "password": password, "next": "/"}).encode()
    with pytest.raises(urllib.error.HTTPError) as r:  # 303 to the page: not followed
        opener.open(urllib.request.Request(srv.url + "/login", body, headers={"Origin": srv.url}), timeout=10)
    assert r.value.code == 303 and "error" not in r.value.headers["Location"]
    return opener, name


class SessionStream(Stream):
    """A stream opened with a signed-in user's session cookie (no bearer token)."""

    def __init__(self, opener, url: str):
        self.resp = opener.open(url, timeout=WAIT_S)
        self.events = queue.Queue()
        self.comments = 0
        self.closed = threading.Event()
        threading.Thread(target=self._read_then_mark, daemon=True).start()

    def _read_then_mark(self):
        self._read()
        self.closed.set()  # the server ended the response


@pytest.mark.parametrize("how", ["sign_out", "disable", "logout_all"])
def test_a_stream_ends_when_its_session_ends(server, geo, how):
    """A page's stream belongs to a session: signing out (from another tab or device), disabling the user, or
    ``users logout`` ends it at the next check (every HEARTBEAT_S), with an ``end`` event, and nothing more
    arrives; another user's stream stays open and keeps receiving."""
    from dashboard.auth.users import end_sessions, update_user

    opener, name = _signed_in_opener(server, "duty_officer")
    other, _ = _signed_in_opener(server, "leader")
    mine = SessionStream(opener, server.url + "/api/map/stream")
    theirs = SessionStream(other, server.url + "/api/map/stream")
    try:
        (lon, lat, *_), (lon2, lat2, *_rest) = grid_points(geo, 2)
        first = _post(server, lon, lat)
        mine.until(lambda d: any(f["properties"]["id"] == first["id"] for f in d.get("upsert", [])))  # both streams live
        if how == "sign_out":
            with pytest.raises(urllib.error.HTTPError) as r:
                opener.open(urllib.request.Request(server.url + "/logout", b"", headers={"Origin": server.url}),
                            timeout=10)
            assert r.value.code == 303
        else:
            with server.app.server.extensions["dashboard"].sessions() as s:
                if how == "disable":
                    update_user(s, name, active=False)
                else:
                    assert end_sessions(s, name) == 1
        assert mine.closed.wait(WAIT_S), "the stream outlived its session"
        names = []
        while not mine.events.empty():
            names.append(mine.events.get()[0])
        assert names and names[-1] == "end", names
        second = _post(server, lon2, lat2)
        theirs.until(lambda d: any(f["properties"]["id"] == second["id"] for f in d.get("upsert", [])))
        assert not theirs.closed.is_set()
        with pytest.raises(urllib.error.HTTPError) as r:  # and it cannot be opened again with that cookie
            opener.open(server.url + "/api/map/stream", timeout=10)
        assert r.value.code == 401
    finally:
        mine.close()
        theirs.close()


def test_the_open_streams_sessions_are_read_together(server):
    """The live streams of a process re-check their sessions in one read (``auth.SessionChecks``), not one read per
    stream and heartbeat: after a first read that names it, a session is read again only with the others, at most
    every ``max_age`` seconds; an ended session is gone from the next read."""
    import datetime as dt
    import time

    from dashboard.auth import SessionChecks
    from dashboard.auth.users import add_user
    from dashboard.store.models import utcnow
    from dashboard.store.users import end_session, get_user, start_session

    flask_app = server.app.server
    sessions = flask_app.extensions["dashboard"].sessions
    hashes = {}
    with sessions() as s:
        for k in range(12):
            name = f"sc-{k}-{time.monotonic_ns() % 10**8}"
            add_user(s, name, "session-check-password", "duty_officer")
            user = get_user(s, name)
            start_session(s, id_hash=f"{k:064x}", user_id=user.id, now=utcnow(),
                          expires_at=utcnow() + dt.timedelta(hours=1), address=None)
            hashes[f"{k:064x}"] = (user.id, name)
    checks = SessionChecks(max_age=2.0)
    with flask_app.app_context():
        for h, (uid, name) in hashes.items():  # each stream's first check: its session is read (with the others)
            assert checks.user_of(h)[:2] == (uid, name)
        first = checks.reads
        assert first <= len(hashes)
        for _ in range(5):  # 60 more checks inside max_age: no read
            for h in hashes:
                assert checks.user_of(h) is not None
        assert checks.reads == first
        ended = next(iter(hashes))
        with sessions() as s:
            assert end_session(s, ended, now=utcnow(), why="test") == 1
        began = time.monotonic()
        while checks.user_of(ended) is not None and time.monotonic() < began + 10:
            time.sleep(0.1)
        assert checks.user_of(ended) is None  # read again once max_age passed: the ended session is not live
        assert checks.reads <= first + 2 + int((time.monotonic() - began) / 2.0)  # one read per max_age at most
        assert all(checks.user_of(h) is not None for h in hashes if h != ended)
        assert checks.user_of("f" * 64) is None  # an unknown session is not live
