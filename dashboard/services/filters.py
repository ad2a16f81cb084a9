"""The one incident filter parser: a plain mapping of query values in, a typed store filter out.

``GET /api/v1/incidents``, its exports, ``/api/map/incidents.json`` and the duty desk (its list, its live
changes, its map layer URL) all read their filter with :func:`incident_filter`, so they mean the same thing by
the same query. Every refusal is one :class:`FilterError` naming the field; the HTTP routes answer it with a 400
JSON error, the duty desk with a message beside the control.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping
from urllib.parse import parse_qsl

from ..domain.timefmt import CHINA_TZ
from ..store import catalogue, lifecycle
from ..store.incidents import IncidentFilter
from ..store.models import UTC, utcnow

MAX_Q = 200  # characters of the free-text search


class FilterError(ValueError):
    """A refused filter value: ``field`` (the query parameter), ``reason`` (a machine code such as
    ``invalid_value``, ``invalid_type``, ``too_long``, ``out_of_range``) and a human ``message`` (also ``args[0]``)."""

    def __init__(self, field: str | None, reason: str, message: str):
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.message = message


def parse_time(value: Any, field: str) -> dt.datetime:
    """ISO 8601 date or date-time, as UTC; without an offset it is Beijing time (Asia/Shanghai)."""
    if not isinstance(value, str):
        raise FilterError(field, "invalid_type", f"{field} must be an ISO 8601 date-time string")
    text = value.strip()
    if len(text) > 40 or "\x00" in text:
        raise FilterError(field, "invalid_value", f"{field} is not an ISO 8601 date-time")
    try:
        if len(text) == 10:
            t = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        else:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FilterError(field, "invalid_value",
                          f"{field} is not an ISO 8601 date-time (e.g. 2019-04-24T08:30:00+08:00)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=CHINA_TZ)
    try:
        return t.astimezone(UTC)
    except (OverflowError, ValueError):
        raise FilterError(field, "out_of_range", f"{field} is out of range") from None


def _csv(params: Mapping, name: str, *, max_items: int = 100, max_len: int = 64) -> list[str]:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return []
    if "\x00" in raw:
        raise FilterError(name, "invalid_value", f"{name} must not contain NUL characters")
    items = [v.strip() for v in raw.split(",") if v.strip()]
    if len(items) > max_items or any(len(v) > max_len for v in items):
        raise FilterError(name, "invalid_value", f"{name} has too many or too long values")
    return items


def _enum_csv(params: Mapping, name: str, allowed) -> list[str]:
    items = _csv(params, name)
    bad = [v for v in items if v not in allowed]
    if bad:
        raise FilterError(name, "invalid_value", f"{name} has unknown value(s) {', '.join(bad)[:100]}; "
                                                 f"one of {', '.join(allowed)}")
    return items


def _bool(params: Mapping, name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    v = raw.strip().lower()
    if v in ("1", "true", "yes"):
        return True
    if v in ("0", "false", "no"):
        return False
    raise FilterError(name, "invalid_value", f"{name} must be 1 or 0")


def _statuses(params: Mapping) -> list[str]:
    expanded: list[str] = []
    for s in _csv(params, "status"):
        if s == "open":
            expanded.extend(lifecycle.OPEN_STATES)
        elif s in lifecycle.STATES:
            expanded.append(s)
        else:
            raise FilterError("status", "invalid_value",
                              f"status {s!r} is unknown; one of open, {', '.join(lifecycle.STATES)}")
    return expanded


def _bbox(params: Mapping) -> tuple[float, float, float, float] | None:
    raw = params.get("bbox")
    if not raw:
        return None
    try:
        parts = [float(p) for p in raw.split(",")] if len(raw) < 200 else []
    except ValueError:
        parts = []
    if (len(parts) != 4 or not all(math.isfinite(p) for p in parts)
            or not (-180 <= parts[0] <= parts[2] <= 180 and -90 <= parts[1] <= parts[3] <= 90)):
        raise FilterError("bbox", "invalid_value", "bbox must be minlon,minlat,maxlon,maxlat (WGS84, min <= max)")
    return tuple(parts)


def _q(params: Mapping) -> str | None:
    q = params.get("q")
    if q is None:
        return None
    if "\x00" in q:
        raise FilterError("q", "invalid_value", "q must not contain NUL characters")
    try:
        q.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError("q", "invalid_value", "q is not valid UTF-8 text") from None
    if len(q) > MAX_Q:
        raise FilterError("q", "too_long", f"q is longer than {MAX_Q} characters")
    return q.strip() or None


FILTER_PARAMS = ("status", "category", "severity", "source", "level", "department", "town", "zone", "grid", "from",
                 "to", "bbox", "q", "overdue")


def canonical_query(params: Mapping[str, str]) -> str:
    """The filter part of ``params`` in one fixed form (known keys only, fixed order): what a cache key of a
    filtered payload is built from, so unknown or reordered parameters share one entry."""
    return "&".join(f"{k}={params.get(k)}" for k in FILTER_PARAMS if params.get(k) not in (None, ""))


def incident_filter(params: Mapping[str, str], *, now: dt.datetime | None = None) -> IncidentFilter:
    """The store filter for query values ``params`` (``status`` incl. ``open``, ``category``, ``severity``,
    ``source``, ``level``, ``department``, ``town``, ``zone``, ``grid`` — comma-separated —, ``from``/``to``,
    ``bbox``, ``q``, ``overdue``). Unknown keys are ignored. Raises :class:`FilterError`."""
    statuses = _statuses(params)
    severities = []
    for v in _csv(params, "severity"):
        if v not in ("1", "2", "3", "4"):
            raise FilterError("severity", "invalid_value", "severity must be 1, 2, 3 or 4 (comma-separated)")
        severities.append(int(v))
    bbox = _bbox(params)
    t_from = parse_time(params["from"], "from") if params.get("from") else None
    t_to = parse_time(params["to"], "to") if params.get("to") else None
    if t_from and t_to and t_from > t_to:
        raise FilterError("from", "invalid_value", "from must not be after to")
    q = _q(params)
    return IncidentFilter(
        statuses=statuses,
        categories=_enum_csv(params, "category", list(catalogue.CATEGORIES)),
        severities=severities,
        sources=_enum_csv(params, "source", list(catalogue.SOURCES)),
        levels=_enum_csv(params, "level", list(lifecycle.LEVELS)),
        departments=_enum_csv(params, "department", list(catalogue.DEPARTMENTS)),
        towns=_csv(params, "town", max_items=100, max_len=32),
        zones=_csv(params, "zone", max_items=100, max_len=32),
        grids=_csv(params, "grid", max_items=1000, max_len=32),
        reported_from=t_from,
        reported_to=t_to,
        bbox=bbox,
        q=q,
        overdue=_bool(params, "overdue"),
        now=now or utcnow(),
    )


def query_filter(query: str | None, *, now: dt.datetime | None = None) -> IncidentFilter:
    """:func:`incident_filter` of a URL query string (``status=open&town=…``), as the duty desk keeps it. A key
    given twice counts with its first value, as in an HTTP request's arguments."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query or "", keep_blank_values=True):
        params.setdefault(key, value)
    return incident_filter(params, now=now)
