"""The live hub's pieces that need no server: Last-Event-ID parsing, one build per shared payload however many
streams ask at once, bounded slots, stop wakes every waiter."""
from __future__ import annotations

import threading
import time

import pytest

from dashboard.services.live import Head, Hub, parse_event_id


@pytest.mark.parametrize("value,expected", [("12.3", Head(12, 3)), ("0.0", Head(0, 0)), (" 7.9 ", Head(7, 9))])
def test_event_ids_parse(value, expected):
    assert parse_event_id(value) == expected and parse_event_id(expected.event_id) == expected


@pytest.mark.parametrize("value", [None, "", "12", "a.b", "1.2.3", "-1.2", "1." + "9" * 30, "1e3.2"])
def test_malformed_event_ids_are_ignored(value):
    assert parse_event_id(value) is None


def _hub(**kw) -> Hub:
    return Hub(app=None, engine=None, **kw)


def test_a_shared_payload_is_built_once_for_concurrent_askers():
    hub = _hub()
    calls, gate = [], threading.Event()

    def build():
        calls.append(1)
        gate.wait(5)
        return "payload"

    out = []
    threads = [threading.Thread(target=lambda: out.append(hub.shared(("k",), build))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # every asker is waiting on the one build
    gate.set()
    for t in threads:
        t.join(5)
    assert out == ["payload"] * 8 and len(calls) == 1 and hub.builds == 1
    assert hub.shared(("k",), lambda: "other") == "payload"  # later askers get the kept copy


def test_a_failed_build_lets_the_next_asker_try():
    hub = _hub()
    with pytest.raises(RuntimeError):
        hub.shared(("k",), lambda: (_ for _ in ()).throw(RuntimeError("store down")))
    assert hub.shared(("k",), lambda: "ok") == "ok"


def test_slots_are_bounded_and_stop_refuses_and_wakes():
    hub = _hub(slots=2)
    assert hub.enter() and hub.enter() and not hub.enter()
    hub.leave()
    assert hub.enter()
    hub._head = Head(1, 1)
    woke = []
    t = threading.Thread(target=lambda: woke.append(hub.wait_beyond(Head(1, 1), 30)))
    t.start()
    time.sleep(0.1)
    hub.stop()
    t.join(5)
    assert woke == [None] and hub.stopping and not hub.enter()


class CountingFeed:
    """A live part whose state is the head's seq; it renders a patch (the seqs between) when it has a prior."""

    def __init__(self, heavy: bool):
        self.heavy = heavy
        self.renders = []

    def parse(self, raw):
        return ("p",)

    def render(self, params, head, before, prior):
        self.renders.append((before.seq, head.seq, prior))
        return [["part", {"from": None if prior is None else prior, "to": head.seq}]], head.seq


def test_a_part_is_rendered_once_per_change_and_patched_from_its_last_state():
    feed = CountingFeed(heavy=False)
    hub = _hub(feeds={"x": feed})
    asks = hub.parse_push('{"x": {}}')
    h0, h1, h2 = Head(1, 0), Head(2, 0), Head(3, 0)
    for whole in (True, True):  # two new streams at the same point: one rendering, whole
        sets, done, wait = hub.pushed(asks, {"x": h0}, h1, {"x"} if whole else set())
        assert sets == [["part", {"from": None, "to": 2}]] and done == ["x"] and wait is None
    assert len(feed.renders) == 1
    sets, _, _ = hub.pushed(asks, {"x": h1}, h2, set())  # a stream in step: a patch from the state at h1
    assert sets == [["part", {"from": 2, "to": 3}]] and feed.renders[-1] == (2, 3, 2)


def test_a_heavy_part_waits_its_turn_and_then_catches_up():
    feed = CountingFeed(heavy=True)
    hub = _hub(feeds={"x": feed}, figures_s=0.3)
    asks = hub.parse_push('{"x": {}}')
    h0, h1, h2 = Head(1, 0), Head(2, 0), Head(3, 0)
    sets, done, wait = hub.pushed(asks, {"x": h0}, h1, set())
    assert done == ["x"] and wait is None
    sets, done, wait = hub.pushed(asks, {"x": h1}, h2, set())  # too soon: deferred, with the time left
    assert sets == [] and done == [] and 0 < wait <= 0.3
    assert hub.pushed(asks, {"x": h0}, h1, set())[1] == ["x"]  # what was rendered stays shared meanwhile
    time.sleep(wait + 0.01)
    sets, done, wait = hub.pushed(asks, {"x": h1}, h2, set())
    assert sets == [["part", {"from": 2, "to": 3}]] and done == ["x"] and wait is None
    assert len(feed.renders) == 2


@pytest.mark.parametrize("raw", ['{"y": {}}', "[1]", "nope", '{"x": 1, "y": 2}'])
def test_unknown_or_malformed_parts_are_refused(raw):
    with pytest.raises(ValueError):
        _hub(feeds={"x": CountingFeed(False)}).parse_push(raw)


class DictCache:
    """The shared cache's two calls (flask-caching), in memory: what two workers' hubs share through Redis."""

    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, timeout=None):
        self.data[key] = value


def test_a_part_rendered_by_one_worker_serves_the_others():
    cache = DictCache()
    feeds = [CountingFeed(heavy=False), CountingFeed(heavy=False)]
    hubs = [_hub(feeds={"x": f}, cache=cache) for f in feeds]
    asks = hubs[0].parse_push('{"x": {}}')
    h0, h1, h2 = Head(1, 0), Head(2, 0), Head(3, 0)
    first = [hub.pushed(asks, {"x": h0}, h1, {"x"})[0] for hub in hubs]
    assert first[0] == first[1] == [["part", {"from": None, "to": 2}]]
    assert [len(f.renders) for f in feeds] == [1, 0]  # the second worker read the first one's rendering
    # and kept its state: it patches the next change itself when it comes first
    assert hubs[1].pushed(asks, {"x": h1}, h2, set())[0] == [["part", {"from": 2, "to": 3}]]
    assert [len(f.renders) for f in feeds] == [1, 1] and feeds[1].renders[-1] == (2, 3, 2)
