"""The duty desk's filter state (pure): page URL ↔ values ↔ API query, relative windows floored and sliding."""
from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import pytest

from dashboard.callbacks import duty_query as dq
from dashboard.store.incidents import CHINA_TZ

# 2026-11-25 03:07:41.5 Beijing time
NOW = dt.datetime(2026, 11, 24, 19, 7, 41, 500_000, tzinfo=dt.timezone.utc)


def _from(query: str) -> dt.datetime:
    return dt.datetime.fromisoformat(dict(parse_qsl(query))["from"])


@pytest.mark.parametrize("win,back", [("1h", dt.timedelta(hours=1)), ("24h", dt.timedelta(hours=24)),
                                      ("7d", dt.timedelta(days=7))])
def test_relative_windows_are_floored_to_the_step(win, back):
    start, end = dq.window_range(win, NOW, step_s=60)
    assert end is None
    got = dt.datetime.fromisoformat(start)
    floored = NOW.astimezone(CHINA_TZ).replace(second=0, microsecond=0)
    assert got == floored - back and got.utcoffset() == dt.timedelta(hours=8)
    start_5s, _ = dq.window_range(win, NOW, step_s=5)
    assert dt.datetime.fromisoformat(start_5s) == NOW.replace(second=40, microsecond=0) - back


def test_today_starts_at_beijing_midnight():
    start, _ = dq.window_range("today", NOW)
    assert start == "2026-11-25T00:00:00+08:00"  # still the 24th in UTC


def test_custom_and_any_are_passed_through():
    assert dq.window_range("custom", NOW, "2019-04-01T00:00", "2019-05-01T00:00") == ("2019-04-01T00:00",
                                                                                      "2019-05-01T00:00")
    assert dq.window_range("any", NOW) == (None, None)


def test_same_step_same_query_so_viewers_share_the_cache():
    values = dq.values_from_params({"win": "1h", "category": "safety.fire"})
    a = dq.api_query(values, NOW)
    b = dq.api_query(values, NOW + dt.timedelta(seconds=10))
    assert a == b
    assert dq.api_query(values, NOW + dt.timedelta(seconds=30)) != a  # next minute


def test_slid_query_only_when_a_relative_window_moved_on():
    values = dq.values_from_params({"win": "1h", "status": "all"})
    current = dq.api_query(values, NOW)
    assert dq.slid_query(values, NOW + dt.timedelta(seconds=5), current) is None  # same minute
    later = dq.slid_query(values, NOW + dt.timedelta(minutes=3), current)
    assert later is not None and _from(later) - _from(current) == dt.timedelta(minutes=3)
    assert dict(parse_qsl(later))["status"] == dict(parse_qsl(current))["status"]
    for params in ({"status": "all"}, {"win": "custom", "from": "2019-04-01T00:00"}):
        v = dq.values_from_params(params)
        assert dq.slid_query(v, NOW + dt.timedelta(hours=5), dq.api_query(v, NOW)) is None


def test_page_url_round_trip():
    params = {"status": "routed,in_progress", "severity": "3,4", "zone": "Z01,Z02", "win": "24h", "overdue": "1",
              "q": "仓库"}
    values = dq.values_from_params(params)
    again = dq.values_from_params(dict(parse_qsl(dq.page_search(values, "zh").lstrip("?"))))
    assert again == values
    assert dq.values_from_params({})["status"] == ["open"] and dq.values_from_params({})["win"] == "any"
    assert dq.values_from_params({"win": "fortnight"})["win"] == "any"
    assert dq.values_from_params({"from": "2019-01-01"})["win"] == "custom"
