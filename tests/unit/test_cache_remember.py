"""``dashboard.cache.remember``: after a pushed change every open page asks for the same new figures at once; the
value is built once per process and shared, not once per page (bench/bench_push.py found the stampede)."""
from __future__ import annotations

import threading
import time

from flask import Flask

from dashboard.cache import init_cache, remember


def _cache(tmp_path):
    server = Flask("t")
    return init_cache(server, {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)})


def test_concurrent_misses_build_once_and_share_the_value(tmp_path):
    cache = _cache(tmp_path)
    builds, gate = [], threading.Event()

    def build():
        builds.append(1)
        gate.wait(5)  # every caller arrives while the first is still building
        return {"n": 42}

    out = []
    threads = [threading.Thread(target=lambda: out.append(remember(cache, "k", 60, build))) for _ in range(12)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while not builds and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(builds) == 1
    assert out == [{"n": 42}] * 12
    assert cache.get("k") == {"n": 42}  # stored for the next caller (and the other workers)
    assert remember(cache, "k", 60, lambda: {"n": 0}) == {"n": 42}


def test_a_failed_build_is_not_shared_and_the_next_caller_builds_again(tmp_path):
    cache = _cache(tmp_path)

    def bad():
        raise RuntimeError("store down")

    try:
        remember(cache, "k2", 60, bad)
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the failure must reach the caller")
    assert cache.get("k2") is None
    assert remember(cache, "k2", 60, lambda: [1]) == [1]


def test_without_a_cache_it_just_builds():
    assert remember(None, "k", 60, lambda: 7) == 7


def test_kept_values_are_read_from_the_process_first_and_the_least_recent_dropped(tmp_path):
    """``keep=True`` (a key naming its content, e.g. a KPI bundle's): the value is kept in the process, the last
    ``RECENT_SIZE``; a kept key is answered without the shared cache (the same object), a dropped one from it again."""
    from dashboard.cache import RECENT_SIZE

    cache = _cache(tmp_path)
    reads = []
    real_get = cache.get

    def counting_get(key):
        reads.append(key)
        return real_get(key)

    cache.get = counting_get
    first = remember(cache, "b0", 60, lambda: {"n": 0}, keep=True)
    for i in range(1, RECENT_SIZE):
        remember(cache, f"b{i}", 60, lambda i=i: {"n": i}, keep=True)
    reads.clear()
    assert remember(cache, "b0", 60, lambda: {"n": -1}, keep=True) is first  # kept: no read of the shared cache
    assert reads == []
    remember(cache, "b-new", 60, lambda: {"n": 99}, keep=True)  # one more: the least recently used (b1) goes
    reads.clear()
    assert remember(cache, "b1", 60, lambda: {"n": -1}, keep=True) == {"n": 1}  # from the shared cache again
    assert reads and reads[0] == "b1"
    reads.clear()
    assert remember(cache, "b0", 60, lambda: {"n": -1}, keep=True) is first and reads == []
    assert remember(cache, "other", 60, lambda: [2]) == [2] and remember(cache, "other", 60, lambda: [3]) == [2]
    reads.clear()
    remember(cache, "other", 60, lambda: [3])  # not kept: read from the shared cache each time
    assert reads == ["other"]
