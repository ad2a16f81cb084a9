"""The callbacks' access classes are computed once per process (dashboard.callbacks.guard.CallbackLevels): requests
that come while the first computation runs wait for it instead of each rendering every page's layout again; a
computation that fails is tried again by the next request, which meanwhile needs a reader."""
from __future__ import annotations

import threading

from dashboard.auth import policy
from dashboard.callbacks.guard import CallbackLevels


def test_concurrent_first_requests_share_one_computation():
    calls, started, release = [], threading.Event(), threading.Event()

    def compute():
        calls.append(threading.get_ident())
        started.set()
        release.wait(10)
        return {"a.children": policy.PUBLIC}

    levels = CallbackLevels(compute)
    assert not levels.known
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(levels.level_of("a.children"))) for _ in range(6)]
    for th in threads:
        th.start()
    assert started.wait(10)
    release.set()
    for th in threads:
        th.join(10)
    assert len(calls) == 1 and got == [policy.PUBLIC] * 6 and levels.known
    assert levels.level_of("b.children") == policy.READ  # a callback not in it needs a reader
    assert len(calls) == 1


def test_a_failed_computation_is_tried_again_and_readers_only_meanwhile():
    outcomes = [RuntimeError("a page cannot render now"), {"a.children": policy.PUBLIC}]

    def compute():
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    levels = CallbackLevels(compute)
    assert levels.level_of("a.children") == policy.READ and not levels.known
    assert levels.level_of("a.children") == policy.PUBLIC and levels.known and outcomes == []
    assert not CallbackLevels(None).prime()  # no pages: every callback needs a reader
