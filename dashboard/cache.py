"""The one shared cache (flask-caching): file system by default, Redis when ``CACHE_URL``/``REDIS_URL`` say so.

Both work across several gunicorn workers; a per-process SimpleCache would not. The backend is wrapped so that its
failures (Redis stopped or unreachable, a full disk) are misses and dropped writes, logged at most once a minute:
the app then serves from the store, slower but without an error (issue 11, faults).

:func:`remember` reads a key or builds it once: with push, every open page asks for the same new figures at the
same moment after a change; without it each of them would miss the cache and build the same value (a stampede
that grows with the number of pages). Within a process one caller builds and the others wait for its value
(:class:`SingleFlight`, one per cache, on the cache object: per app, not module state). With Redis the workers (and
hosts) also build it once between them: the first to miss takes a build lock (``SET NX`` with an expiry, a builder
that died frees it) and the others read its value as soon as it is stored (:class:`BuildLocks`; the file cache has no
atomic ``add``: there each worker builds its own).

Values whose key names their content (a KPI bundle's key holds its period, moment and the store's version) may also
be kept in the process, the last few read or built (:class:`Recent`, ``remember(..., keep=True)``): a province's
bundle is 14 MB of pickle, and a drill click read the same two from the shared cache in each of its callbacks.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

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


class Recent:
    """The last ``size`` values kept in this process by key, least recently used dropped first (for values whose key
    names their content: what is kept is never stale)."""

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict = OrderedDict()

    def get(self, key: str):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


RECENT_SIZE = 4  # bundles kept per process (a province's: ~18 MB each in memory)

LOCK_S = 30  # a cross-worker build lock expires after this: a worker that died building frees it


class BuildLocks:
    """Cross-worker build locks in Redis (``SET key NX PX``: taken and given an expiry in one command). Any failure
    answers "not locked": the caller then builds itself, as without the lock."""

    PREFIX = "wx-building:"

    def __init__(self, client, prefix: str = ""):
        self._client = client
        self._prefix = prefix + self.PREFIX

    def claim(self, key: str) -> bool | None:
        """True: this caller builds ``key``; False: another worker is building it; None: the lock is unavailable."""
        try:
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=int(LOCK_S * 1000)))
        except Exception:  # noqa: BLE001 - Redis unreachable: build here
            return None

    def held(self, key: str) -> bool:
        try:
            return bool(self._client.exists(self._prefix + key))
        except Exception:  # noqa: BLE001
            return False

    def release(self, key: str) -> None:
        try:
            self._client.delete(self._prefix + key)
        except Exception:  # noqa: BLE001 - it expires by itself
            pass


def _await(cache, locks: BuildLocks, key: str):
    """The value another worker is building under ``key`` once it is stored; None when its lock went without a
    value (it failed) or after :data:`LOCK_S`. Polls with growing pauses (8 ms … 50 ms: a change's delta takes a few
    ms to build, a KPI rendering a few hundred) and looks at the lock every fourth poll (each is a round trip)."""
    deadline, pause, n = time.monotonic() + LOCK_S, 0.008, 0
    while time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(0.05, pause * 2)
        value = cache.get(key)
        if value is not None:
            return value
        n += 1
        if n % 4 == 0 and not locks.held(key):
            return cache.get(key)
    return None


def remember(cache, key: str, timeout: int, build, keep: bool = False):
    """``cache.get(key)``, or ``build()`` stored under ``key`` for ``timeout`` seconds — built once however many
    requests of this process miss at the same time, and once between the workers when the cache is shared across
    them (Redis: ``cache.wx_locks``, :class:`BuildLocks`). ``cache`` None: just ``build()``. A failing cache write
    is ignored (the value is still returned). ``keep``: a key that names its content — the value is also kept in the
    process (``cache.wx_recent``, :class:`Recent`) and read from there first."""
    return remember_built(cache, key, timeout, build, keep)[0]


def remember_built(cache, key: str, timeout: int, build, keep: bool = False) -> tuple:
    """:func:`remember`, and whether this process built the value (False: it came from the cache)."""
    if cache is None:
        return build(), True
    recent = getattr(cache, "wx_recent", None) if keep else None
    if recent is not None:
        value = recent.get(key)
        if value is not None:
            return value, False
        value, built = _remember_built(cache, key, timeout, build)
        recent.put(key, value)
        return value, built
    return _remember_built(cache, key, timeout, build)


def _remember_built(cache, key: str, timeout: int, build) -> tuple:
    value = cache.get(key)
    if value is not None:
        return value, False

    def build_and_store():
        locks = getattr(cache, "wx_locks", None)
        lock = locks.claim(key) if locks is not None else None
        if lock is False:  # another worker is building it: its value, unless it failed
            got = _await(cache, locks, key)
            if got is not None:
                return got, False
        # another process may have stored it meanwhile (and, with the lock, released it just before we took it)
        again = cache.get(key)
        if again is not None:
            if lock:
                locks.release(key)
            return again, False
        try:
            built = build()
            try:
                cache.set(key, built, timeout=timeout)
            except Exception:  # noqa: BLE001 - a full or unreachable cache must not break the page
                pass
        finally:
            if lock:
                locks.release(key)
        return built, True

    flights = getattr(cache, "wx_flights", None)
    return build_and_store() if flights is None else flights.run(key, build_and_store)


def init_cache(server: Flask, config: dict) -> Cache:
    cache = Cache(config=config)
    cache.init_app(server)
    backends = server.extensions["cache"]
    backends[cache] = ResilientBackend(backends[cache])
    cache.wx_flights = SingleFlight()
    cache.wx_recent = Recent(RECENT_SIZE)
    # Redis: SET NX lets the workers build a shared value once between them (:func:`remember`)
    cache.wx_locks = None
    if config.get("CACHE_TYPE") == "RedisCache":
        backend = backends[cache]
        cache.wx_locks = BuildLocks(backend._write_client, backend._get_prefix())
    return cache
