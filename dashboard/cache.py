"""The one shared cache (flask-caching): file system by default, Redis when ``CACHE_URL``/``REDIS_URL`` say so.

Both work across several gunicorn workers; a per-process SimpleCache would not. The backend is wrapped so that its
failures (Redis stopped or unreachable, a full disk) are misses and dropped writes, logged at most once a minute:
the app then serves from the store, slower but without an error (issue 11, faults).

:func:`remember` reads a key or builds it once: with push, every open page asks for the same new figures at the
same moment after a change; without it each of them would miss the cache and build the same value (a stampede
that grows with the number of pages). Within a process one caller builds and the others wait for its value
(:class:`SingleFlight`, one per cache, on the cache object: per app, not module state).
"""
from __future__ import annotations

import logging
import threading
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


class SingleFlight:
    """One build per key at a time in this process; callers that come meanwhile wait and share its result."""

    WAIT_S = 30.0

    def __init__(self):
        self._lock = threading.Lock()
        self._flights: dict = {}  # key -> [Event, result, ok]

    def run(self, key: str, build):
        with self._lock:
            flight = self._flights.get(key)
            owner = flight is None
            if owner:
                flight = self._flights[key] = [threading.Event(), None, False]
        if not owner:
            if flight[0].wait(self.WAIT_S) and flight[2]:
                return flight[1]
            return build()  # the builder failed or is stuck: build ourselves
        try:
            flight[1] = build()
            flight[2] = True
            return flight[1]
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight[0].set()


def remember(cache, key: str, timeout: int, build):
    """``cache.get(key)``, or ``build()`` stored under ``key`` for ``timeout`` seconds — built once however many
    requests of this process miss at the same time. ``cache`` None: just ``build()``. A failing cache write is
    ignored (the value is still returned)."""
    if cache is None:
        return build()
    value = cache.get(key)
    if value is not None:
        return value

    def build_and_store():
        again = cache.get(key)  # another process may have stored it meanwhile
        if again is not None:
            return again
        built = build()
        try:
            cache.set(key, built, timeout=timeout)
        except Exception:  # noqa: BLE001 - a full or unreachable cache must not break the page
            pass
        return built

    flights = getattr(cache, "wx_flights", None)
    return build_and_store() if flights is None else flights.run(key, build_and_store)


def init_cache(server: Flask, config: dict) -> Cache:
    cache = Cache(config=config)
    cache.init_app(server)
    backends = server.extensions["cache"]
    backends[cache] = ResilientBackend(backends[cache])
    cache.wx_flights = SingleFlight()
    return cache
