"""Live by push on the production lane (PostgreSQL + Redis): what a change costs is built once between the workers.
Two app instances on one PostgreSQL database and one Redis database stand for two gunicorn workers (each its own
live hub, memo and single-flight; they share only the store and the cache): a stream on each, one post — the change
event and the pushed parts are computed by one of them, read by the other, and both streams get the same events.
And the cache's build lock itself: two workers missing the same key at the same moment build it once."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest

from tests.conftest import REDIS_URL, TOKEN, LiveServer
from tests.integration.conftest import grid_points
from tests.integration.test_live_stream import Stream, _post
from tests.servers import redis_db

WALL = {"wall": {"lang": "zh"}, "rings": {},
        "wallfigures": {"lang": "zh", "rank": "resolution_rate", "rank_period": "month", "rank_n": 5}}


@pytest.fixture
def redis_url():
    with redis_db(REDIS_URL):
        yield REDIS_URL


def _app(url: str, cache_url: str, geodata_dir, folder):
    from dashboard import create_app
    from dashboard.settings import Settings

    app = create_app(Settings(instance_dir=folder, database_url=url, cache_url=cache_url, tile_url="",
                              demo_live=False, api_tokens=(TOKEN,), geodata_dir=geodata_dir, rate_limits_on=False,
                              stream_slots=4, live_poll_s=0.1, live_figures_s=0.0,
                              secret_key="live-stream-test-key-" + "x" * 24))
    app.server.extensions["dashboard"].hub.heartbeat_s = 0.3
    return app


@pytest.fixture
def workers(backend, db, geodata_dir, redis_url, tmp_path):
    _, url, _ = backend
    servers = [LiveServer(_app(url, redis_url, geodata_dir, tmp_path / f"inst{i}")) for i in range(2)]
    yield servers
    for srv in servers:
        srv.stop()


def _hub(srv):
    return srv.app.server.extensions["dashboard"].hub


def _until_parts(stream: Stream, incident_id: int) -> tuple[tuple, tuple]:
    """(the change event bringing ``incident_id``, the parts event that follows it) as (name, id, data)."""
    change, _ = stream.until(lambda d: any(f["properties"]["id"] == incident_id for f in d.get("upsert", [])))
    parts, _ = stream.until(lambda d: "set" in d and d["seq"] >= change[2]["seq"])
    return change, parts


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_one_change_is_built_once_between_two_workers_and_both_streams_get_the_same(workers, geo):
    from dashboard.services import live

    a, b = workers
    assert _hub(a)._cache.wx_locks is not None  # the production lane's cache: Redis, with build locks
    with a.app.server.app_context():
        head = live.read_head()
    query = (f"after={head.seq}&aseq={head.aseq}&push={urllib.parse.quote(json.dumps(WALL))}")
    streams = [Stream(srv.url + f"/api/map/stream?{query}") for srv in workers]
    try:
        computed = [_hub(s).computed for s in workers]
        builds = [dict(_hub(s).feed_builds) for s in workers]
        posted = _post(a, *grid_points(geo, 1)[0][:2])
        got = [_until_parts(s, posted["id"]) for s in streams]
        # the same events, byte for byte, whichever worker built them
        assert got[0][0][1:] == got[1][0][1:]
        assert got[0][1][1:] == got[1][1][1:]
        assert {cid for cid, _ in got[0][1][2]["set"]} >= {"wall-ticks", "wall-header", "geo-rings"}
        # one of the two computed the change event, the other read it
        assert sum(_hub(s).computed - c for s, c in zip(workers, computed)) == 1
        for part in WALL:  # and each part was rendered by one of them only
            rendered = sum(_hub(s).feed_builds.get(part, 0) - before.get(part, 0)
                           for s, before in zip(workers, builds))
            assert rendered == 1, (part, [_hub(s).feed_builds for s in workers], builds)
    finally:
        for s in streams:
            s.close()


def test_concurrent_misses_in_two_workers_build_once(redis_url, tmp_path):
    from flask import Flask

    from dashboard.cache import init_cache, remember

    config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url}
    caches = [init_cache(Flask(f"w{i}"), config) for i in range(2)]  # two workers: own single-flights, one Redis
    builds, out = [], []

    def build():
        builds.append(1)
        time.sleep(0.3)  # the other worker misses while this one builds
        return {"built_by": threading.current_thread().name}

    threads = [threading.Thread(target=lambda c=c: out.append(remember(c, "k-across", 60, build)), name=f"t{i}")
               for i, c in enumerate(caches) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(builds) == 1
    assert len(out) == 6 and all(v == out[0] for v in out)


def test_a_failed_build_frees_the_lock_and_the_other_worker_builds(redis_url):
    from flask import Flask

    from dashboard.cache import init_cache, remember

    config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url}
    first, second = (init_cache(Flask(f"w{i}"), config) for i in range(2))
    started, results = threading.Event(), []

    def bad():
        started.set()
        time.sleep(0.2)
        raise RuntimeError("store down")

    def failing():
        try:
            remember(first, "k-fail", 60, bad)
        except RuntimeError as e:
            results.append(str(e))

    t = threading.Thread(target=failing)
    t.start()
    started.wait(5)
    t0 = time.monotonic()
    assert remember(second, "k-fail", 60, lambda: [2]) == [2]  # waited for the failing one, then built itself
    t.join(5)
    assert results == ["store down"] and time.monotonic() - t0 < 5
