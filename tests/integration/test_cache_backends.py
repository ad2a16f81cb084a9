"""The shared cache: file system by default, the real local Redis when CACHE_URL/REDIS_URL say so."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import REDIS_URL, unavailable
from tests.conftest import reading_client


def _redis_or_fail():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL}: {exc}")


def test_settings_pick_backend():
    from dashboard.settings import Settings

    assert Settings().cache_config["CACHE_TYPE"] == "FileSystemCache"
    env = {"REDIS_URL": "redis://127.0.0.1:6379/3"}
    assert Settings.from_env(env).cache_config["CACHE_TYPE"] == "RedisCache"
    assert Settings.from_env({"CACHE_URL": "redis://h:1/2"}).cache_config["CACHE_REDIS_URL"] == "redis://h:1/2"


def test_redis_cache_shared_between_two_apps(settings):
    """Two app instances (as two gunicorn workers would be) see each other's cache entries through Redis."""
    _redis_or_fail()
    import redis

    from dashboard import create_app

    cfg = settings.with_(cache_url=REDIS_URL)
    a, b = create_app(cfg, with_store=False), create_app(cfg, with_store=False)
    key = f"test:{uuid.uuid4().hex}"
    with a.server.app_context():
        a.server.extensions["dashboard"].cache.set(key, {"v": 42}, timeout=30)
    with b.server.app_context():
        assert b.server.extensions["dashboard"].cache.get(key) == {"v": 42}
    # the geometry payload built by one is served by the other from Redis, and really is in Redis
    assert reading_client(a.server).get("/api/geo/zones.json").status_code == 200
    client = redis.Redis.from_url(REDIS_URL)
    assert any(k.startswith(b"wuxing:geo:") for k in client.scan_iter("wuxing:geo:*"))


def test_filesystem_cache_shared_between_two_apps(settings):
    from dashboard import create_app

    cfg = settings.with_(cache_url="")
    a, b = create_app(cfg, with_store=False), create_app(cfg, with_store=False)
    with a.server.app_context():
        a.server.extensions["dashboard"].cache.set("k", [1, 2, 3])
    with b.server.app_context():
        assert b.server.extensions["dashboard"].cache.get("k") == [1, 2, 3]
    assert any((cfg.instance_dir / "cache").iterdir())
