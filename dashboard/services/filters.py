"""The one incident filter parser: a plain mapping of query values in, a typed store filter out.

``GET /api/v1/incidents``, its exports, ``/api/map/incidents.json`` and the duty desk (its list, its live
changes, its map layer URL) all read their filter with :func:`incident_filter`, so they mean the same thing by
the same query. Every refusal is one :class:`FilterError` naming the field; the HTTP routes answer it with a 400
JSON error, the duty desk with a message beside the control.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from urllib.parse import parse_qsl

from ..domain import grammar
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
    """ISO 8601 date or date-time in the form ``domain.grammar.DATE_TIME``, as UTC; without an offset it is Beijing
    time (Asia/Shanghai)."""
    if not isinstance(value, str):
        raise FilterError(field, "invalid_type", f"{field} must be an ISO 8601 date-time string")
    if not grammar.matches(grammar.DATE_TIME, value):
        raise FilterError(field, "invalid_value", f"{field} is not an ISO 8601 date (2019-04-24) or date-time "
                                                  f"(2019-04-24T08:30:00+08:00) between 2000 and 2099")
    if len(value) == 10:
        t = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
    else:
        t = dt.datetime.fromisoformat(value.replace("z", "Z"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=CHINA_TZ)
    return t.astimezone(UTC)  # years 2000-2099 and offsets under a day: never out of range


LIST_MAX = 100  # values of a comma list (grid: GRID_LIST_MAX)
GRID_LIST_MAX = 1000
STATUS_VALUES = ("open", *lifecycle.STATES)  # open = every state but closed
SEVERITY_VALUES = ("1", "2", "3", "4")
BOOL_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
LIST_PATTERNS = {  # the form of each list parameter (also the OpenAPI document's patterns)
    "status": grammar.list_of(STATUS_VALUES, LIST_MAX),
    "category": grammar.list_of(catalogue.CATEGORIES, LIST_MAX),
    "severity": grammar.list_of(SEVERITY_VALUES, LIST_MAX),
    "source": grammar.list_of(catalogue.SOURCES, LIST_MAX),
    "level": grammar.list_of(lifecycle.LEVELS, LIST_MAX),
    "department": grammar.list_of(catalogue.DEPARTMENTS, LIST_MAX),
    "city": grammar.list_of_codes(LIST_MAX),
    "county": grammar.list_of_codes(LIST_MAX),
    "town": grammar.list_of_codes(LIST_MAX),
    "zone": grammar.list_of_codes(LIST_MAX),
    "grid": grammar.list_of_codes(GRID_LIST_MAX),
}
_LIST_WORDS = {"status": f"open or a state ({', '.join(lifecycle.STATES)})", "severity": "1, 2, 3 or 4",
               "category": "category keys of GET /api/v1/catalogue", "source": ", ".join(catalogue.SOURCES),
               "level": ", ".join(lifecycle.LEVELS), "department": "department keys of GET /api/v1/catalogue"}


def _list(params: Mapping, name: str) -> list[str]:
    """The values of list parameter ``name`` (:data:`LIST_PATTERNS`), each once, in the order given."""
    raw = params.get(name)
    if raw is None:
        return []
    if not grammar.matches(LIST_PATTERNS[name], raw):
        most = GRID_LIST_MAX if name == "grid" else LIST_MAX
        what = _LIST_WORDS.get(name, "codes of letters, digits, - and _ (at most 32 characters each)")
        raise FilterError(name, "invalid_value", f"{name} must be a comma-separated list of at most {most} "
                                                 f"values: {what}"[:300])
    return list(dict.fromkeys(grammar.items(raw)))


def _bool(params: Mapping, name: str) -> bool | None:
    """``1`` / ``true`` / ``yes`` or ``0`` / ``false`` / ``no``; None when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in BOOL_VALUES:
        raise FilterError(name, "invalid_value", f"{name} must be 1 or 0 (true/false, yes/no)")
    return BOOL_VALUES[raw]


def _statuses(params: Mapping) -> list[str]:
    expanded: list[str] = []
    for s in _list(params, "status"):
        expanded.extend(lifecycle.OPEN_STATES if s == "open" else (s,))
    return list(dict.fromkeys(expanded))


def _bbox(params: Mapping) -> tuple[float, float, float, float] | None:
    """``lon,lat,lon,lat``: two opposite corners (``domain.grammar.BBOX``), as (minlon, minlat, maxlon, maxlat)."""
    raw = params.get("bbox")
    if not raw:
        return None
    if not grammar.matches(grammar.BBOX, raw):
        raise FilterError("bbox", "invalid_value", "bbox must be minlon,minlat,maxlon,maxlat (decimal WGS84 degrees)")
    x1, y1, x2, y2 = (float(p) for p in raw.split(","))
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


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


FILTER_PARAMS = ("status", "category", "severity", "source", "level", "department", "city", "county", "town", "zone",
                 "grid", "from", "to", "bbox", "q", "overdue")
ABOVE_TOWN = ("city", "county")  # units a multi-county set has above its towns; the store reads them as their towns


def _town_scope(params: Mapping) -> tuple[str, ...] | None:
    """The towns of the ``city`` / ``county`` codes asked for (both: the towns in both), None when neither is.
    A code the served set does not have (any code on a single county's set) adds no town: it matches nothing,
    as an unknown town code does."""
    asked = {name: _list(params, name) for name in ABOVE_TOWN}
    if not any(asked.values()):
        return None
    from . import units  # the hierarchy of the served set (the geodata), read only when a county or city is asked

    h = units.hierarchy()
    scope: set[str] | None = None
    for name, codes in asked.items():
        if codes:
            towns = {t for c in codes for t in h.towns_of(name, c)}
            scope = towns if scope is None else scope & towns
    return tuple(sorted(scope or ()))


def canonical_query(params: Mapping[str, str]) -> str:
    """The filter part of ``params`` in one fixed form (known keys only, fixed order): what a cache key of a
    filtered payload is built from, so unknown or reordered parameters share one entry."""
    return "&".join(f"{k}={params.get(k)}" for k in FILTER_PARAMS if params.get(k) not in (None, ""))


def incident_filter(params: Mapping[str, str], *, now: dt.datetime | None = None) -> IncidentFilter:
    """The store filter for query values ``params`` (``status`` incl. ``open``, ``category``, ``severity``,
    ``source``, ``level``, ``department``, ``city``, ``county``, ``town``, ``zone``, ``grid`` — comma-separated —,
    ``from``/``to``, ``bbox``, ``q``, ``overdue``). Unknown keys are ignored. Raises :class:`FilterError`."""
    statuses = _statuses(params)
    severities = [int(v) for v in _list(params, "severity")]
    bbox = _bbox(params)
    t_from = parse_time(params["from"], "from") if params.get("from") else None
    t_to = parse_time(params["to"], "to") if params.get("to") else None
    if t_from and t_to and t_from > t_to:
        raise FilterError("from", "invalid_value", "from must not be after to")
    q = _q(params)
    return IncidentFilter(
        statuses=statuses,
        categories=_list(params, "category"),
        severities=severities,
        sources=_list(params, "source"),
        levels=_list(params, "level"),
        departments=_list(params, "department"),
        towns=_list(params, "town"),
        zones=_list(params, "zone"),
        grids=_list(params, "grid"),
        town_scope=_town_scope(params),
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
