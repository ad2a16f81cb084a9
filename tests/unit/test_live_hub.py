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
