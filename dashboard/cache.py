"""The one shared cache (flask-caching): file system by default, Redis when ``CACHE_URL``/``REDIS_URL`` say so.

Both work across several gunicorn workers; a per-process SimpleCache would not. The backend is wrapped so that its
failures (Redis stopped or unreachable, a full disk) are misses and dropped writes, logged at most once a minute:
the app then serves from the store, slower but without an error (issue 11, faults).
"""
from __future__ import annotations

import logging
import time

from flask import Flask
from flask_caching import Cache

log = logging.getLogger(__name__)

# what each backend method answers when the backend fails: a miss, or "not written"
FALLBACKS = {
    "get": lambda *a, **k: None,
    "get_many": lambda *keys, **k: [None] * len(keys),
    "get_dict": lambda *keys, **k: dict.fromkeys(keys),
    "has": lambda *a, **k: False,
    "set": lambda *a, **k: False,
    "add": lambda *a, **k: False,
    "set_many": lambda *a, **k: [],
    "delete": lambda *a, **k: False,
    "delete_many": lambda *a, **k: [],
    "inc": lambda *a, **k: None,
    "dec": lambda *a, **k: None,
    "clear": lambda *a, **k: False,
}


class ResilientBackend:
    """A flask-caching backend whose failures become misses (see the module docstring)."""

    def __init__(self, backend):
        self._backend = backend
        self._reported = 0.0

    def __getattr__(self, name):
        attr = getattr(self._backend, name)
        fallback = FALLBACKS.get(name)
        if fallback is None or not callable(attr):
            return attr

        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - any backend failure: serve without the cache
                now = time.monotonic()
                if now - self._reported > 60:
                    self._reported = now
                    log.warning("cache unavailable, serving without it (%s: %s)", type(e).__name__, str(e)[:200])
                return fallback(*args, **kwargs)

        return call


def init_cache(server: Flask, config: dict) -> Cache:
    cache = Cache(config=config)
    cache.init_app(server)
    backends = server.extensions["cache"]
    backends[cache] = ResilientBackend(backends[cache])
    return cache
