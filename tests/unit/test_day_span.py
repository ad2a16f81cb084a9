"""A period's days cut into the aggregates' grains (``aggregates.DaySpan.pieces``): whole years (grain y), whole
months at their edges (m) and edge days (d) — every day of the period exactly once, and a whole year read as one
row, never as its months."""
from __future__ import annotations

import datetime as dt
import random

from dashboard.store.aggregates import DaySpan


def _days_of(grain: str, a: dt.date, b: dt.date) -> list[dt.date]:
    """The local days the rows of ``grain`` with ``day`` in [a, b] hold (a row of grain m: its month; y: its year)."""
    out = []
    for key in _keys(grain, a, b):
        end = (key.replace(year=key.year + 1) if grain == "y" else
               (key.replace(day=28) + dt.timedelta(days=4)).replace(day=1) if grain == "m" else key + dt.timedelta(1))
        d = key
        while d < end:
            out.append(d)
            d += dt.timedelta(days=1)
    return out


def _keys(grain: str, a: dt.date, b: dt.date) -> list[dt.date]:
    """The ``day`` keys of the rows of ``grain`` between a and b (days; firsts of months; 1 Januaries)."""
    keys, d = [], a
    while d <= b:
        if grain == "d" or (grain == "m" and d.day == 1) or (grain == "y" and (d.month, d.day) == (1, 1)):
            keys.append(d)
        d += dt.timedelta(days=1)
    return keys


def test_pieces_cover_every_day_once_and_read_whole_years_as_years():
    rng = random.Random(7)
    for _ in range(3000):
        a = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(2600))
        a = rng.choice([a, a.replace(day=1), a.replace(month=1, day=1)])
        b = a + dt.timedelta(days=rng.choice([0, 1, 27, 30, 31, 59, 200, 364, 365, 366, 700, 730, 1095, 1461,
                                              rng.randrange(2200)]))
        b = rng.choice([b, (b.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1),
                        b.replace(month=12, day=31)])
        pieces = DaySpan(a, b).pieces()
        covered = [d for g, x, y in pieces for d in _days_of(g, x, y)]
        assert covered == [a + dt.timedelta(days=k) for k in range((b - a).days + 1)], (a, b, pieces)
        whole_years = [y for y in range(a.year, b.year + 1) if a <= dt.date(y, 1, 1) and dt.date(y, 12, 31) <= b]
        years = [k.year for g, x, y in pieces if g == "y" for k in _keys("y", x, y)]
        assert years == whole_years, (a, b, pieces)
        months = sum(len(_keys("m", x, y)) for g, x, y in pieces if g == "m")
        days = sum(len(_keys("d", x, y)) for g, x, y in pieces if g == "d")
        assert months <= 22 and days <= 60, (a, b, pieces)  # at most 11 months and 30 days at each edge
    assert DaySpan(dt.date(2020, 1, 2), dt.date(2020, 1, 1)).pieces() == []


def test_signed_pieces_add_up_to_every_day_once():
    """``DaySpan.signed``: rows added and subtracted (a month less the days outside the span, a year less the months
    and days outside it) count every day of the span once and no other day — for any weights and any today."""
    from collections import Counter

    rng = random.Random(11)
    for weights in ((1, 1, 1), (1, 13, 45), (1, 2, 3)):
        for _ in range(1500):
            a = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(2600))
            a = rng.choice([a, a.replace(day=1), a.replace(month=1, day=1)])
            b = a + dt.timedelta(days=rng.choice([0, 1, 6, 27, 29, 30, 31, 59, 200, 334, 364, 365, 366, 730,
                                                  rng.randrange(2200)]))
            today = rng.choice([None, b, b + dt.timedelta(days=rng.randrange(40)), a + (b - a) / 2])
            pieces = DaySpan(a, b).signed(weights, today)
            count = Counter()
            for g, x, y, sign in pieces:
                assert sign in (1, -1)
                for d in _days_of(g, x, y):
                    count[d] += sign
            assert {d: n for d, n in count.items() if n} == {a + dt.timedelta(days=k): 1
                                                               for k in range((b - a).days + 1)}, (a, b, pieces)


def test_signed_pieces_read_less():
    """This year up to today is its year row less the days after today (none stored), 1 January – 30 November of a
    past year the year less December, a 30-day period the month less its first days."""
    d = dt.date
    assert DaySpan(d(2026, 1, 1), d(2026, 12, 2)).signed((1, 13, 45), d(2026, 12, 2)) == [
        ("d", d(2026, 12, 3), d(2026, 12, 31), -1), ("y", d(2026, 1, 1), d(2026, 1, 1), 1)]
    assert DaySpan(d(2023, 1, 1), d(2023, 11, 30)).signed((1, 13, 45)) == [
        ("m", d(2023, 12, 1), d(2023, 12, 1), -1), ("y", d(2023, 1, 1), d(2023, 1, 1), 1)]
    assert DaySpan(d(2023, 3, 3), d(2023, 3, 31)).signed((1, 13, 45)) == [
        ("d", d(2023, 3, 1), d(2023, 3, 2), -1), ("m", d(2023, 3, 1), d(2023, 3, 1), 1)]
    assert DaySpan(d(2023, 3, 3), d(2023, 3, 9)).signed((1, 13, 45)) == [("d", d(2023, 3, 3), d(2023, 3, 9), 1)]
