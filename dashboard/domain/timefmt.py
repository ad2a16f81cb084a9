"""Beijing time (Asia/Shanghai: UTC+8, no daylight saving) for everything people read — one formatter family.

The store keeps UTC (a naive value is UTC); pages, exports, the wall and the briefing show Beijing time. Use
:func:`beijing` with one of the formats below instead of converting by hand.
"""
from __future__ import annotations

import datetime as dt

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

MINUTE = "%Y-%m-%d %H:%M"  # lists, detail, briefing
SECOND = "%Y-%m-%d %H:%M:%S"  # exports
SHORT = "%m-%d %H:%M"  # alert feed, profile lists
CLOCK = "%H:%M"  # wall ticker, sign-in lock
DAY = "%Y-%m-%d"
MONTH_DAY = "%m-%d"
FILE_STAMP = "%Y%m%d-%H%M"  # download file names


def to_beijing(value) -> dt.datetime | None:
    """``value`` as an aware datetime in Beijing time, or None for None / NaT / empty text.

    Accepts a ``datetime`` (pandas ``Timestamp`` too; naive means UTC), ISO 8601 text (``Z`` or an offset; naive
    means UTC) or anything ``pandas.Timestamp`` reads. Raises ValueError for text that is no time."""
    if value is None or value != value:  # NaT is not equal to itself
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    elif not isinstance(value, dt.datetime):
        import pandas as pd

        value = pd.Timestamp(value)
        if value != value:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(CHINA_TZ)


def beijing(value, fmt: str = MINUTE) -> str:
    """``value`` (see :func:`to_beijing`) formatted in Beijing time; ``""`` for no value. Text that is not a time
    comes back unchanged (shown as given rather than hidden)."""
    try:
        local = to_beijing(value)
    except ValueError:
        return str(value)
    return "" if local is None else local.strftime(fmt)


def iso_utc(value: dt.datetime | None) -> str | None:
    """The machine form the APIs send: ISO 8601 in UTC with ``Z`` (``2026-11-25T09:30:00Z``); None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def iso_beijing(value) -> str | None:
    """ISO 8601 in Beijing time with its offset, to the second (``2026-11-25T17:30:00+08:00``): what a file for other
    programs (the GIS export) carries; None for no value."""
    local = to_beijing(value)
    return None if local is None else local.replace(microsecond=0).isoformat()
