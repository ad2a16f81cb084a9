"""The duty desk's filter state, in three forms (pure functions, no Dash, no SQL):

- *values*: what the filter controls hold (lists of codes, the time window, the text);
- the page URL (``/incidents?status=open&category=…&win=24h&incident=12&lang=en``): bookmarkable, reload-safe;
- the API query (``status=…&from=…``): the exact query string ``GET /api/v1/incidents`` and
  ``/api/map/incidents.json`` take, so the list, the map and the exports are filtered by the one parser
  ``services.filters.incident_filter``.

Relative time windows (last hour, today, 24 h, 7 days) become absolute ``from`` times, floored to a step (a minute
by default) so viewers in the same step share one cached map response; the desk re-applies them every step, so a
"last hour" list left open all night still shows the last hour (:func:`slid_query`).
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from ..domain.timefmt import CHINA_TZ
from ..store import lifecycle

LIST_KEYS = ("status", "category", "severity", "source", "level", "department", "city", "county", "town", "zone",
             "grid")  # city / county: a city's or province's set
WINDOWS = ("any", "1h", "today", "24h", "7d", "custom")
RELATIVE_WINDOWS = ("1h", "today", "24h", "7d")
ALL_STATES = "all"
DEFAULT_STATUS = ["open"]


def _split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def values_from_params(params: dict) -> dict:
    """Filter values from the page URL's parameters (defaults: open incidents, any time)."""
    v: dict = {k: _split(params.get(k)) for k in LIST_KEYS}
    if "status" not in params:
        v["status"] = list(DEFAULT_STATUS)
    win = params.get("win", "any")
    v["win"] = win if win in WINDOWS else "any"
    v["from"] = params.get("from") or None
    v["to"] = params.get("to") or None
    if v["win"] != "custom" and (v["from"] or v["to"]):
        v["win"] = "custom"
    v["overdue"] = params.get("overdue") in ("1", "true", "yes")
    v["q"] = (params.get("q") or "").strip()
    return v


def default_values() -> dict:
    return values_from_params({})


def window_range(win: str, now: dt.datetime, custom_from: str | None = None,
                 custom_to: str | None = None, step_s: int = 60) -> tuple[str | None, str | None]:
    """``(from, to)`` API values for a time window (Beijing time; the API reads offsets). ``now`` is floored to
    ``step_s`` seconds first."""
    local = now.astimezone(CHINA_TZ)
    local = local - dt.timedelta(seconds=int(local.timestamp()) % max(1, step_s), microseconds=local.microsecond)
    if win == "1h":
        return (local - dt.timedelta(hours=1)).isoformat(timespec="seconds"), None
    if win == "24h":
        return (local - dt.timedelta(hours=24)).isoformat(timespec="seconds"), None
    if win == "7d":
        return (local - dt.timedelta(days=7)).isoformat(timespec="seconds"), None
    if win == "today":
        return local.replace(hour=0, minute=0, second=0, microsecond=0).isoformat(timespec="seconds"), None
    if win == "custom":
        return (custom_from or None), (custom_to or None)
    return None, None


def api_query(values: dict, now: dt.datetime, step_s: int = 60) -> str:
    """The ``/api/v1/incidents`` query string for these values. ``status`` is always explicit (the map layer
    defaults to open incidents when it is missing): "all" lists every state."""
    pairs: list[tuple[str, str]] = []
    for key in LIST_KEYS:
        items = values.get(key) or []
        if key == "status" and (not items or ALL_STATES in items):
            items = list(lifecycle.STATES)
        if items:
            pairs.append((key, ",".join(items)))
    t_from, t_to = window_range(values.get("win") or "any", now, values.get("from"), values.get("to"), step_s)
    if t_from:
        pairs.append(("from", t_from))
    if t_to:
        pairs.append(("to", t_to))
    if values.get("overdue"):
        pairs.append(("overdue", "1"))
    if values.get("q"):
        pairs.append(("q", values["q"]))
    return urlencode(pairs)


def slid_query(values: dict, now: dt.datetime, current: str | None, step_s: int = 60) -> str | None:
    """The API query after time has passed, when a relative window has moved on since ``current``; else None
    (no relative window, or still the same step)."""
    if values.get("win") not in RELATIVE_WINDOWS:
        return None
    query = api_query(values, now, step_s)
    return query if query != current else None


def page_search(values: dict, lang: str, incident: int | None = None) -> str:
    """The page URL's query (``?…``) for these values; defaults are left out."""
    pairs: list[tuple[str, str]] = []
    for key in LIST_KEYS:
        items = values.get(key) or []
        if key == "status":
            if items == DEFAULT_STATUS:
                continue
            if not items:
                items = [ALL_STATES]
        if items:
            pairs.append((key, ",".join(items)))
    win = values.get("win") or "any"
    if win != "any":
        pairs.append(("win", win))
    if win == "custom":
        if values.get("from"):
            pairs.append(("from", values["from"]))
        if values.get("to"):
            pairs.append(("to", values["to"]))
    if values.get("overdue"):
        pairs.append(("overdue", "1"))
    if values.get("q"):
        pairs.append(("q", values["q"]))
    if incident:
        pairs.append(("incident", str(incident)))
    if lang == "en":
        pairs.append(("lang", "en"))
    return ("?" + urlencode(pairs)) if pairs else ""


def values_from_controls(status, category, severity, source, level, department, city, county, town, zone, grid,
                         win, t_from, t_to, overdue, q) -> dict:
    return {"status": _split(status), "category": _split(category), "severity": _split(severity),
            "source": _split(source), "level": _split(level), "department": _split(department),
            "city": _split(city), "county": _split(county), "town": _split(town), "zone": _split(zone), "grid": _split(grid),
            "win": win if win in WINDOWS else "any", "from": t_from or None, "to": t_to or None,
            "overdue": bool(overdue), "q": (q or "").strip()}
