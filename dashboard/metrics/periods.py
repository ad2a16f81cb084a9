"""Named reporting periods (pure): today, 7 days, 30 days, this year, calendar 2019, custom dates.

Bounds are ``[start, end)`` as tz-aware Asia/Shanghai timestamps, as :func:`dashboard.metrics.kpis.period` makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..domain import grammar
from .kpis import LOCAL_TZ, calendar_year, period

PERIODS = ("today", "7d", "30d", "year", "2019", "custom")
DEFAULT_PERIOD = "30d"
LABELS = {
    "today": ("今日", "Today"), "7d": ("近7天", "Last 7 days"), "30d": ("近30天", "Last 30 days"),
    "year": ("本年", "This year"), "2019": ("2019年", "Calendar 2019"), "custom": ("自定义", "Custom"),
}


class PeriodError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Period:
    key: str
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def first_day(self) -> str:
        return self.start.strftime("%Y-%m-%d")

    @property
    def last_day(self) -> str:
        return (self.end - pd.Timedelta(days=1)).strftime("%Y-%m-%d")

    def previous_year(self) -> "Period":
        """The same period one year earlier (for "change on the same period a year before")."""
        return Period(self.key, self.start - pd.DateOffset(years=1), self.end - pd.DateOffset(years=1))

    def label(self, lang: str = "zh") -> str:
        zh, en = LABELS.get(self.key, (self.key, self.key))
        return f"{zh if lang == 'zh' else en} ({self.first_day} – {self.last_day})"


def calendar(year: int) -> Period:
    """Calendar ``year`` in Asia/Shanghai days (what the briefing's year-on-year table compares)."""
    start, end = calendar_year(int(year))
    return Period(str(int(year)), start, end)


def _day(value: str, field: str) -> pd.Timestamp:
    """A calendar day ``YYYY-MM-DD`` between 2000 and 2099 (``domain.grammar.DATE``, the API's form of a day)."""
    if not grammar.matches(grammar.DATE, value):
        raise PeriodError(field, f"{field} must be a date YYYY-MM-DD between 2000 and 2099")
    return pd.Timestamp(value)


def resolve(key: str | None, first: str | None = None, last: str | None = None, now=None) -> Period:
    """The period named ``key`` as of ``now`` (defaults to the current time in Asia/Shanghai)."""
    key = key or DEFAULT_PERIOD
    if key not in PERIODS:
        raise PeriodError("period", f"period must be one of {', '.join(PERIODS)}")
    now = pd.Timestamp.now(tz=LOCAL_TZ) if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    today = now.tz_convert(LOCAL_TZ).tz_localize(None).normalize()
    if key == "today":
        start, end = period(today)
    elif key == "7d":
        start, end = period(today - pd.Timedelta(days=6), today)
    elif key == "30d":
        start, end = period(today - pd.Timedelta(days=29), today)
    elif key == "year":
        start, end = period(f"{today.year}-01-01", today)
    elif key == "2019":
        start, end = calendar_year(2019)
    else:
        if not first:
            raise PeriodError("from", "a custom period needs from (YYYY-MM-DD)")
        a = _day(first, "from")
        b = _day(last, "to") if last else a
        if b < a:
            raise PeriodError("to", "to must not be before from")
        start, end = period(a, b)
    return Period(key, start, end)
