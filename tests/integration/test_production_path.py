"""The production path against the real servers: gunicorn with several workers, PostgreSQL store, Redis cache.

A fresh PostgreSQL database and a dedicated Redis db are used and removed afterwards. In CI a missing server fails.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests import servers
from tests.conftest import IN_CI

REDIS_URL = os.environ.get("TEST_REDIS_PROD_URL", "redis://127.0.0.1:6379/14")  # this module's own db
TOKEN = "prod-token"
WORKERS = 3


def _request(url, body=None, method=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


@pytest.fixture(scope="module")
def pg_database():
    with servers.pg_database("wx_prod_") as url:
        yield url


@pytest.fixture(scope="module")
def redis_db():
    with servers.redis_db(REDIS_URL) as client:
        yield client


def Gunicorn(env: dict, workers: int = WORKERS, **kwargs) -> servers.Gunicorn:
    return servers.Gunicorn(env, workers=workers, token=TOKEN, **kwargs)


@pytest.fixture(scope="module")
def prod(pg_database, redis_db, tmp_path_factory):
    inst = tmp_path_factory.mktemp("prod-instance")
    servers.demo_history(pg_database)
    server = Gunicorn({"DATABASE_URL": pg_database, "REDIS_URL": REDIS_URL, "INSTANCE_DIR": str(inst)}).start()
    yield server
    server.stop()


def _point(app_url):
    from shapely.geometry import shape

    _, grids, _ = _request(app_url + "/api/geo/grids.json")
    p = shape(grids["features"][77]["geometry"]).representative_point()
    return p.x, p.y


def test_concurrent_posts_across_workers_are_stored_once(prod):
    lon, lat = _point(prod.url)
    ref = f"dup-{uuid.uuid4().hex}"

    def post(i):
        body = {"category": "safety.fire", "description": f"多进程并发上报 {i}", "lon": lon, "lat": lat,
                "reporter": "网格员", "client_ref": ref if i % 4 == 0 else f"{ref}-{i}"}
        return _request(prod.url + "/api/v1/incidents", body)

    with cf.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(post, range(40)))
    assert all(status in (200, 201) for status, _, _ in results), [r[:2] for r in results if r[0] >= 300]
    dup_ids = {body["id"] for (status, body, _), i in zip(results, range(40)) if i % 4 == 0}
    assert len(dup_ids) == 1  # ten posts with the same client reference: one incident
    workers = {headers["X-Served-By"] for _, _, headers in results}
    assert len(workers) >= 2, "requests were answered by several gunicorn workers"
    ids = {body["id"] for _, body, _ in results}
    assert len(ids) == 31
    for incident_id in ids:  # every acknowledged incident is readable from any worker
        status, body, _ = _request(f"{prod.url}/api/v1/incidents/{incident_id}")
        assert status == 200 and body["grid_code"] and body["events"][0]["to_status"] == "reported"


def test_lifecycle_and_changes_feed_on_postgres(prod):
    lon, lat = _point(prod.url)
    _, before, _ = _request(prod.url + "/api/v1/changes?after=0&limit=1")
    status, inc, _ = _request(prod.url + "/api/v1/incidents", {
        "category": "dispute.civil", "description": "邻里纠纷", "lon": lon, "lat": lat, "reporter": "网格员"})
    assert status == 201
    steps = [("onsite_handled", "station"), ("verified", "grid_worker"), ("closed", "station")]
    for to, role in steps:
        status, body, _ = _request(f"{prod.url}/api/v1/incidents/{inc['id']}/transitions",
                                   {"to": to, "actor": "张三", "actor_role": role})
        assert status == 200, body
    status, body, _ = _request(f"{prod.url}/api/v1/incidents/{inc['id']}/transitions",
                               {"to": "routed", "actor": "张三", "actor_role": "station"})
    assert status == 409 and body["error"]["field"] == "to"
    _, feed, _ = _request(f"{prod.url}/api/v1/changes?after={inc['seq'] - 1}&limit=1000")
    assert [i["id"] for i in feed["items"]].count(inc["id"]) == 1
    assert feed["items"][-1]["status"] == "closed" or any(i["status"] == "closed" for i in feed["items"])


def test_cache_is_shared_in_redis_and_workers_agree(prod, redis_db):
    seen = {}
    with cf.ThreadPoolExecutor(max_workers=9) as pool:  # concurrent, so that several workers answer
        results = list(pool.map(lambda _: _request(prod.url + "/api/v1/kpis?level=district&period=30d"),
                                range(36)))
    for status, body, headers in results:
        assert status == 200
        seen.setdefault(headers["X-Served-By"], body["kpis"])
    assert len(seen) >= 2
    first = next(iter(seen.values()))
    assert all(k == first for k in seen.values())  # every worker serves the same cached numbers
    status, _, _ = _request(prod.url + "/api/geo/grids.json")
    assert status == 200
    keys = {k.decode() for k in redis_db.scan_iter("wuxing:*")}
    assert any(k.startswith("wuxing:geo:") for k in keys)
    assert any("views" in k for k in keys)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_incident_survives_a_crash(backend, pg_database, tmp_path):
    """SIGKILL the whole server right after a 201: after a restart the incident and its event are there."""
    inst = tmp_path / "inst"
    env = {"INSTANCE_DIR": str(inst), "CACHE_URL": "null", "DEMO_USERS": "1"}  # as `make run` starts it
    if backend == "postgresql":
        env["DATABASE_URL"] = pg_database
    server = Gunicorn(env, workers=2, log_path=str(tmp_path / "gunicorn.log")).start()
    try:
        lon, lat = _point(server.url)
        try:
            status, inc, _ = _request(server.url + "/api/v1/incidents", {
                "category": "safety.hazchem", "description": "崩溃前确认的上报", "lon": lon, "lat": lat,
                "reporter": "网格员", "client_ref": f"crash-{uuid.uuid4().hex}"})
        except OSError as exc:
            raise AssertionError(f"the post failed ({exc}); server log:\n{server.log()}") from exc
        assert status == 201, server.log()
        server.kill_hard()
        server.start()
        status, again, _ = _request(f"{server.url}/api/v1/incidents/{inc['id']}")
        assert status == 200 and again["code"] == inc["code"] and len(again["events"]) == 1
    finally:
        server.stop()


def test_services_required_in_ci():
    """CI must not silently lose the production-path suite."""
    if IN_CI:
        import psycopg
        import redis

        psycopg.connect(servers.PG_ADMIN, connect_timeout=3).close()
        redis.Redis.from_url(REDIS_URL).ping()


def test_access_log_holds_no_token_or_api_key(pg_database, redis_db, tmp_path):
    """The production access log (gunicorn, as ``python -m dashboard serve`` runs it) shows the requests, not the
    wall's kiosk token or an Open311 api_key in their query strings."""
    secret, key = f"kiosk-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    server = Gunicorn({"DATABASE_URL": pg_database, "REDIS_URL": REDIS_URL, "INSTANCE_DIR": str(tmp_path / "inst"),
                       "WALL_TOKENS": secret}, workers=1, log_path=str(tmp_path / "access.log"),
                      args=["--access-logfile", "-"]).start()
    try:
        for path in (f"/wall?token={secret}&tour=7", f"/open311/v2/services.json?api_key={key}",
                     f"/api/v1/incidents?limit=1&access_token={key}"):
            try:
                urllib.request.urlopen(server.url + path, timeout=30).read()
            except urllib.error.HTTPError:
                pass
        deadline = time.monotonic() + 10
        # gunicorn writes each access line after its answer: wait for the last request's line, not only an earlier one
        while "/api/v1/incidents?limit=1" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = server.log()
    finally:
        server.stop()
    assert "/wall?token=***&tour=7" in log and "api_key=***" in log and "access_token=***" in log, log[-1500:]
    assert secret not in log and key not in log


def test_rate_limits_are_shared_by_every_worker(pg_database, redis_db, tmp_path):
    """Limits count in Redis: sign-in attempts spread over several workers are limited as one (5 a minute per
    address here), and API reads of one token likewise; the refusals are 429 with Retry-After."""
    import requests

    server = Gunicorn({"DATABASE_URL": pg_database, "REDIS_URL": REDIS_URL, "INSTANCE_DIR": str(tmp_path / "inst"),
                       "RATE_LIMIT_LOGIN_ADDRESS": "5/minute", "RATE_LIMIT_READ": "12/minute"}).start()
    try:
        def attempt(i):
            r = requests.post(server.url + "/login", data={"username": f"n{i}", "password": "x", "next": "/"},
                              headers={"Origin": server.url}, allow_redirects=False, timeout=30)
            return r.status_code, r.headers.get("X-Served-By"), r.headers.get("Retry-After")

        with cf.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(attempt, range(16)))
        statuses = [s for s, _, _ in results]
        assert statuses.count(303) == 5 and statuses.count(429) == 11, statuses
        assert len({w for _, w, _ in results}) >= 2  # several workers answered, one count
        assert all(int(ra) >= 1 for s, _, ra in results if s == 429)

        with cf.ThreadPoolExecutor(max_workers=6) as pool:
            reads = list(pool.map(lambda _: _request(server.url + "/api/v1/incidents?limit=1"), range(18)))
        codes = [s for s, _, _ in reads]
        assert codes.count(200) == 12 and codes.count(429) == 6, codes
        assert {b["error"]["code"] for s, b, _ in reads if s == 429} == {"rate_limited"}
    finally:
        server.stop()


def test_every_worker_serves_every_page_asset_from_its_first_request(tmp_path):
    """A freshly started multi-worker server: the page's scripts (Dash's bundles, dash-leaflet's chunks), the layout
    and the callbacks' dependencies are served by every worker from its first request — no 500 while a worker has
    not rendered a page itself (a wall once stayed blank for 60 s after a restart)."""
    import re

    server = Gunicorn({"INSTANCE_DIR": str(tmp_path / "inst"), "CACHE_URL": "null", "WALL_TOKENS": "first-wall"},
                      workers=3, log_path=str(tmp_path / "gunicorn.log")).start()
    try:
        import requests

        s = requests.Session()
        r = s.get(server.url + "/wall?token=first-wall", timeout=30)  # the kiosk exchange, then the page
        assert r.status_code == 200 and "first-wall" not in r.url
        assets = sorted(set(re.findall(r'(?:src|href)="(/_dash-component-suites/[^"]+|/assets/[^"]+)"', r.text)))
        assets += ["/_dash-layout", "/_dash-dependencies", "/_dash-component-suites/dash_leaflet/async-GeoJSON.js"]
        assert len(assets) > 10

        def fetch(path):
            resp = s.get(server.url + path, timeout=60, headers={"Referer": server.url + "/wall"})
            return path, resp.status_code, resp.headers.get("X-Served-By")

        seen: set = set()
        for _round in range(5):  # on a busy machine the kernel may give one round's connections all to one worker
            with cf.ThreadPoolExecutor(max_workers=12) as pool:  # at once, so that every worker takes some first
                results = list(pool.map(fetch, assets * 3))
            bad = [(p, st) for p, st, _ in results if st != 200]
            assert not bad, (bad[:5], server.log())
            seen |= {w for _, _, w in results}
            if len(seen) >= 2:
                break
        assert len(seen) >= 2, seen
    finally:
        server.stop()
