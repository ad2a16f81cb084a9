"""Data for the duty desk (值班处置台): the filtered list, incremental changes, one incident's detail, lifecycle steps.

Every filter is read by ``services.filters.query_filter`` — the list API's own parser — so the desk's list, its
map layer and its exports mean exactly what ``GET /api/v1/incidents`` means by the same query.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from ..store import alerts as alert_repo
from ..store import incidents as repo
from ..store import queries, sequence
from ..store.models import Incident, utcnow
from . import db, serialise, units
from .filters import FilterError, query_filter
from .serialise import list_row

__all__ = ["FilterError", "Listing", "Detail", "MAX_ROWS", "MAX_DELTA", "latest_seq", "list_rows", "delta",
           "detail", "transition", "nearby_hazard"]

MAX_ROWS = 10_000  # the list's cap; the map layer always shows the whole set
MAX_DELTA = 1000  # more changes than this since the last tick: reload the list instead


def latest_seq() -> int:
    """The newest committed incident change (``store.sequence.latest``)."""
    with db.session() as s:
        return sequence.latest(s)


@dataclass
class Listing:
    rows: list
    seq: int
    total: int  # the whole filtered set (> len(rows) when capped)


def list_rows(query: str, lang: str, audience: str = "staff") -> Listing:
    """The filtered set, newest first, capped at :data:`MAX_ROWS`; ``seq`` is the change sequence it covers
    (read first, so a change committed meanwhile is delivered again by the next delta, never lost). Raises
    :class:`FilterError`."""
    flt = query_filter(query)
    with db.session() as s:
        seq = sequence.latest(s)
    with db.session() as s:
        incs, _ = repo.list_incidents(s, flt, limit=MAX_ROWS)
        total = len(incs)
        if total >= MAX_ROWS:
            total = repo.count_incidents(s, flt)
    now = flt.now or utcnow()
    names = units.names()
    return Listing([list_row(i, lang, now, names, audience) for i in incs], seq, total)


def changes_since(after: int) -> tuple[list[Incident], int, bool]:
    """Incidents changed after ``after`` (current state), the seq covered, and whether there were too many."""
    with db.session() as s:
        incs, last = repo.changes_after(s, after, limit=MAX_DELTA)
    return incs, last, len(incs) >= MAX_DELTA


def delta(query: str, lang: str, after: int, audience: str = "staff") -> dict | None:
    """``{"seq", "upsert": [rows that match the filter], "remove": [row ids that no longer match], "changed"}`` for
    the changes after ``after``; None when a full reload is needed (too many changes)."""
    incs, last, too_many = changes_since(after)
    if too_many:
        return None
    if not incs:
        return {"seq": last, "upsert": [], "remove": [], "changed": []}
    flt = query_filter(query)
    ids = [i.id for i in incs]
    with db.session() as s:
        match = queries.matching_ids(s, flt, ids)
    now = flt.now or utcnow()
    names = units.names()
    return {"seq": last, "upsert": [list_row(i, lang, now, names, audience) for i in incs if i.id in match],
            "remove": [str(i.id) for i in incs if i.id not in match], "changed": ids}


@dataclass
class Detail:
    inc: Incident
    events: list
    hazard: dict | None
    worker: str | None
    alert: object | None
    places: tuple[str, str, str]  # grid, zone and town names in the page's language
    # what the asking audience may see of the personal data (dashboard.auth.audience)
    description: str = ""
    address: str | None = None
    reporter: str | None = None  # None: not for this audience
    phone: str | None = None


def nearby_hazard(lon: float, lat: float) -> dict | None:
    """The hazard site (any kind) whose safety ring contains the point, nearest first."""
    hz = units.geodata().hazards
    best = None
    for code, name, kind, risk, ring_m, geom in zip(hz["code"], hz["name"], hz["kind"], hz["risk"], hz["ring_m"],
                                                    hz.geometry):
        d = alert_repo.distance_m(lon, lat, geom.x, geom.y)
        if d <= float(ring_m) and (best is None or d < best["distance_m"]):
            best = {"code": code, "name": name, "kind": kind, "risk": int(risk), "ring_m": float(ring_m),
                    "distance_m": d}
    return best


def detail(incident_id: int, lang: str = "zh", audience: str = "staff") -> Detail | None:
    """The incident, its lifecycle, hazard ring, worker and alert, with the personal data ``audience`` may see."""
    with db.session() as s:
        inc = repo.get_incident(s, incident_id)
        if inc is None:
            return None
        events = repo.events_of(s, incident_id)
        alert = queries.alert_of_incident(s, incident_id)
    places = tuple(units.name_of(code, lang) for code in (inc.grid_code, inc.zone_code, inc.town_code))
    personal = audience == "personal"
    persons = [] if personal else serialise.persons_of(inc)
    if not personal:  # the report's actor is the reporter; notes may name the residents
        events = [SimpleNamespace(at=e.at, actor=serialise.event_actor(e, audience) or "", actor_role=e.actor_role,
                                  from_status=e.from_status, to_status=e.to_status, department=e.department,
                                  note=serialise.masked(e.note, persons)) for e in events]
    return Detail(inc, events, nearby_hazard(inc.lon, inc.lat), units.worker_of(inc.grid_code), alert, places,
                  description=serialise.masked(inc.description, persons) or "",
                  address=serialise.masked(inc.address, persons),
                  reporter=inc.reporter if personal else None, phone=inc.reporter_phone if personal else None)


def transition(incident_id: int, to: str, *, actor: str, actor_role: str, note: str | None,
               department: str | None, outcome: str | None):
    """One lifecycle step through the store (the API's rules), recorded in the audit log in the same transaction;
    raises IncidentNotFound / TransitionError."""
    from . import audit

    record = audit.entry("transition", {"to": to, "as": actor, "role": actor_role, "department": department,
                                        "outcome": outcome, "via": "duty desk"})
    with db.session() as s:
        return repo.transition(s, incident_id, to, actor=actor, actor_role=actor_role, note=note,
                               department=department, outcome=outcome, audit=record)


PLACE_OPTIONS_MAX = 2000  # choices a place control lists at most: more (a province's zones or grids) wait for a
# narrower choice above them (a county, a town), so the desk never ships tens of thousands of options


def place_options(lang: str, towns=None, zones=None, counties=None, cities=None) -> dict[str, list[dict] | None]:
    """The filter's place choices: ``{"city", "county", "town", "zone", "grid"}`` lists of ``{"label", "value"}``,
    by code; ``city`` / ``county`` are None on a set without that level (a single county's). Counties are narrowed
    to the chosen ``cities``, towns to the chosen cities and counties, zones to the chosen towns (or those cities'
    and counties' towns), grids to those towns and the chosen ``zones``. A list longer than
    :data:`PLACE_OPTIONS_MAX` is left empty until a choice above narrows it. A label names its parent (a zone's
    its town, a grid's its zone and its number; in a city's or province's set a town's its county, a county's its
    city)."""
    gd = units.geodata()
    h = units.hierarchy(gd)
    towns, zones = list(towns or ()), list(zones or ())
    counties, cities = list(counties or ()), list(cities or ())

    def options(frame, parent_col=None, parents=()):
        if parents and parent_col:
            frame = frame[frame[parent_col].isin(parents)]
        if len(frame) > PLACE_OPTIONS_MAX:
            return []
        out = []
        for code, parent in zip(frame["code"], frame[parent_col] if parent_col else [None] * len(frame)):
            label = units.name_of(code, lang)
            if parent:
                label = f"{label} · {units.name_of(parent, lang)}"
            if parent_col == "zone_code":
                label = f"{label} ({code.rsplit('-', 1)[-1]})"
            out.append({"label": label, "value": code})
        return sorted(out, key=lambda o: o["value"])

    scope = None  # the towns of the chosen cities and counties
    for level, codes in (("city", cities), ("county", counties)):
        if codes and level in h.levels:
            found = {t for c in codes for t in h.towns_of(level, c)}
            scope = found if scope is None else scope & found
    town_frame = gd.towns if scope is None else gd.towns[gd.towns["code"].isin(scope)]
    in_towns = towns or (sorted(scope) if scope is not None else [])
    grids = gd.grids if not in_towns else gd.grids[gd.grids["town_code"].isin(in_towns)]
    zone_frame = gd.zones if not in_towns else gd.zones[gd.zones["town_code"].isin(in_towns)]
    out: dict[str, list[dict] | None] = {"city": None, "county": None}
    if "city" in h.levels:
        out["city"] = options(gd.cities)
    if "county" in h.levels:
        out["county"] = options(gd.counties, "city_code" if "city" in h.levels else None, cities)
    multi = "county" in h.levels
    return {**out, "town": options(town_frame, "district_code" if multi else None),
            "zone": options(zone_frame, "town_code"),
            "grid": options(grids, "zone_code", zones)}
