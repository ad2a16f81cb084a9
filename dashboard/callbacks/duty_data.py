"""Data for the duty desk: the filtered list, incremental changes, one incident's detail, lifecycle steps.

Every filter goes through ``api.incidents.filter_from_args`` (the list API's own parser) so the desk's list, the
map layer and the exports mean exactly what ``GET /api/v1/incidents`` means.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from sqlalchemy import func, select

from ..context import services
from ..store import catalogue, lifecycle
from ..store import alerts as alert_repo
from ..store import incidents as repo
from ..store.incidents import CHINA_TZ
from ..store.models import Incident, utcnow

MAX_ROWS = 10_000  # the list's cap; the map layer always shows the whole set
MAX_DELTA = 1000  # more changes than this since the last tick: reload the list instead


class FilterError(ValueError):
    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.field = field


def parse_filter(query: str) -> repo.IncidentFilter:
    """The IncidentFilter the list API builds for this query string (raises :class:`FilterError`)."""
    from ..api.errors import ApiError
    from ..api.incidents import filter_from_args

    with current_app.test_request_context("/api/v1/incidents?" + (query or "")):
        try:
            return filter_from_args()
        except ApiError as e:
            raise FilterError(e.message, e.field) from None


# ------------------------------------------------------------------------------------------- names
@lru_cache(maxsize=4)
def _place_names(geodata_dir: str) -> dict:
    from ..geodata import load_geodata

    gd = load_geodata(geodata_dir)
    names: dict = {}
    for frame in (gd.towns, gd.zones, gd.grids):
        en = frame["name_en"] if "name_en" in frame.columns else frame["name"]
        for code, zh, e in zip(frame["code"], frame["name"], en):
            names[code] = (zh, e)
    workers = dict(zip(gd.grids["code"], gd.grids["worker_name"]))
    return {"names": names, "workers": workers}


def place_names() -> dict:
    return _place_names(str(services().settings.geodata_dir))


def name_of(code: str | None, lang: str) -> str:
    if not code:
        return ""
    pair = place_names()["names"].get(code)
    return (pair[1] if lang == "en" else pair[0]) if pair else code


def local_time(t: dt.datetime | None) -> str:
    return "" if t is None else t.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _pick(mapping, key, lang, default=""):
    pair = mapping.get(key)
    if not pair:
        return key or default
    return pair[1] if lang == "en" else pair[0]


def row(inc: Incident, lang: str, now: dt.datetime) -> dict:
    """One list row (text is rendered as text by ag-grid: never HTML)."""
    cat = catalogue.CATEGORIES.get(inc.category)
    return {
        "rid": str(inc.id), "id": inc.id, "code": inc.code, "t": local_time(inc.reported_at),
        "cat": (cat.name_en if lang == "en" else cat.name_zh) if cat else inc.category,
        "sev": inc.severity, "src": _pick(catalogue.SOURCES, inc.source, lang),
        "st": _pick(lifecycle.STATES, inc.status, lang), "sk": inc.status,
        "lvl": _pick(lifecycle.LEVELS, inc.level, lang),
        "dept": _pick(catalogue.DEPARTMENTS, inc.department, lang) if inc.department else "",
        "town": name_of(inc.town_code, lang), "zone": name_of(inc.zone_code, lang),
        "addr": inc.address or "", "desc": (inc.description or "")[:300],
        "due": local_time(inc.due_at), "od": repo.is_overdue(inc, now), "lat": inc.lat, "lon": inc.lon,
    }


# -------------------------------------------------------------------------------------------- list
def latest_seq() -> int:
    """The newest committed incident change (cheap: the unique index on seq)."""
    with services().sessions() as s:
        return int(s.execute(select(func.coalesce(func.max(Incident.seq), 0))).scalar_one())


@dataclass
class Listing:
    rows: list
    seq: int
    total: int  # the whole filtered set (> len(rows) when capped)


def list_rows(query: str, lang: str) -> Listing:
    """The filtered set, newest first, capped at :data:`MAX_ROWS`; ``seq`` is the change sequence it covers
    (read first, so a change committed meanwhile is delivered again by the next delta, never lost)."""
    flt = parse_filter(query)
    seq = latest_seq()
    with services().sessions() as s:
        incs, _ = repo.list_incidents(s, flt, limit=MAX_ROWS)
        total = len(incs)
        if total >= MAX_ROWS:
            total = int(s.execute(select(func.count()).select_from(Incident).where(*flt.conditions())).scalar_one())
    now = flt.now or utcnow()
    return Listing([row(i, lang, now) for i in incs], seq, total)


def changes_since(after: int) -> tuple[list[Incident], int, bool]:
    """Incidents changed after ``after`` (current state), the seq covered, and whether there were too many."""
    with services().sessions() as s:
        incs, last = repo.changes_after(s, after, limit=MAX_DELTA)
    return incs, last, len(incs) >= MAX_DELTA


def delta(query: str, lang: str, after: int) -> dict | None:
    """``{"seq", "upsert": [rows that match the filter], "remove": [row ids that no longer match]}`` for the
    changes after ``after``; None when a full reload is needed (too many changes)."""
    incs, last, too_many = changes_since(after)
    if too_many:
        return None
    if not incs:
        return {"seq": last, "upsert": [], "remove": [], "changed": []}
    flt = parse_filter(query)
    ids = [i.id for i in incs]
    with services().sessions() as s:
        match = set(s.execute(select(Incident.id).where(*flt.conditions(), Incident.id.in_(ids))).scalars())
    now = flt.now or utcnow()
    return {"seq": last, "upsert": [row(i, lang, now) for i in incs if i.id in match],
            "remove": [str(i.id) for i in incs if i.id not in match], "changed": ids}


# ------------------------------------------------------------------------------------------ detail
@dataclass
class Detail:
    inc: Incident
    events: list
    hazard: dict | None
    worker: str | None
    alert: object | None


def nearby_hazard(lon: float, lat: float) -> dict | None:
    """The hazard site (any kind) whose safety ring contains the point, nearest first."""
    hz = services().geodata().hazards
    best = None
    for code, name, kind, risk, ring_m, geom in zip(hz["code"], hz["name"], hz["kind"], hz["risk"], hz["ring_m"],
                                                    hz.geometry):
        d = alert_repo.distance_m(lon, lat, geom.x, geom.y)
        if d <= float(ring_m) and (best is None or d < best["distance_m"]):
            best = {"code": code, "name": name, "kind": kind, "risk": int(risk), "ring_m": float(ring_m),
                    "distance_m": d}
    return best


def detail(incident_id: int) -> Detail | None:
    with services().sessions() as s:
        inc = repo.get_incident(s, incident_id)
        if inc is None:
            return None
        events = repo.events_of(s, incident_id)
        alert = s.execute(select(alert_repo.Alert).where(alert_repo.Alert.incident_id == incident_id)).scalar_one_or_none()
    return Detail(inc, events, nearby_hazard(inc.lon, inc.lat), place_names()["workers"].get(inc.grid_code), alert)


def transition(incident_id: int, to: str, *, actor: str, actor_role: str, note: str | None,
               department: str | None, outcome: str | None):
    """One lifecycle step through the store (the API's rules); raises IncidentNotFound / TransitionError."""
    with services().sessions() as s:
        return repo.transition(s, incident_id, to, actor=actor, actor_role=actor_role, note=note,
                               department=department, outcome=outcome)
