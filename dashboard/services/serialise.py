"""One serialiser per audience for an incident (and its events and alert).

- :func:`incident_api` — ``/api/v1`` JSON (names in both languages, ISO UTC times; personal data by audience:
  the reporter, ``reporter_phone`` and the residents' names an incident marks in ``persons`` only for the
  ``personal`` audience, see :func:`dashboard.auth.audience`); :func:`event_api`; :func:`incident_feature`
  (``format=geojson``);
- :func:`map_point` — the compact marker feature of ``/api/map/incidents.json``;
- :func:`list_row` — one row of the duty desk's list (one language, Beijing time);
- :func:`export_row` — one row of the CSV / Excel export (:data:`EXPORT_COLUMNS` order);
- :func:`gis_point` — the attributes of one incident point of the GIS export (:data:`GIS_INCIDENT_FIELDS`);
- :func:`wall_ticker_row`, :func:`wall_alert_row` — the wall (public: whitelisted fields, no reporter);
- :func:`alert_api` — ``/api/v1/alerts`` (the alert and a short form of its incident);
- :func:`open311_request` — Open311 GeoReport v2 ``service_request``.

Names of units come in as a ``{code: (zh, en)}`` mapping (``services.units.names()``), so these functions read
nothing themselves.
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping

from ..domain import timefmt
from ..domain.timefmt import iso_utc
from ..domain.vocab import ALERT_KINDS, name_of, pick
from ..store import catalogue, lifecycle
from ..store.incidents import is_overdue
from ..store.models import utcnow

NONE2 = (None, None)
DESC_MAX_LIST = 300  # characters of a description in the duty list
DESC_MAX_WALL = 60  # … on the wall ticker
DESC_MAX_WALL_ALERT = 80  # … on the wall's alert card
EXPORT_COLUMNS = (  # key, zh, en
    ("code", "编号", "Code"), ("reported_at", "上报时间", "Reported"), ("category", "类别", "Category"),
    ("subcategory", "子类", "Subcategory"), ("severity", "等级", "Severity"), ("source", "来源", "Source"),
    ("status", "状态", "State"), ("level", "层级", "Level"), ("department", "交办部门", "Department"),
    ("town", "镇街", "Town"), ("zone", "片区", "Zone"), ("grid", "网格", "Grid"), ("grid_code", "网格编码", "Grid code"),
    ("address", "地址", "Address"), ("description", "描述", "Description"), ("reporter", "上报人", "Reporter"),
    ("due_at", "处置时限", "Due"), ("closed_at", "结案时间", "Closed"), ("overdue", "超期", "Overdue"),
    ("lon", "经度", "Longitude"), ("lat", "纬度", "Latitude"),
)


# ------------------------------------------------------------------------------------------- names
def category_names(key: str) -> tuple[str, str]:
    """(zh, en) of a category; the key itself for both when the catalogue does not know it."""
    cat = catalogue.CATEGORIES.get(key)
    return (cat.name_zh, cat.name_en) if cat else (key, key)


def subcategory_names(category: str, key: str | None) -> tuple[str | None, str | None]:
    if not key:
        return NONE2
    cat = catalogue.CATEGORIES.get(category)
    return cat.subcategory_names(key) if cat else (key, key)


def state_names(key: str) -> tuple[str, str]:
    return lifecycle.STATES.get(key, (key, key))


MASK = "某某"  # what stands in for a resident's name an incident marks, for audiences without personal data


def persons_of(inc) -> list[str]:
    """The residents' names an incident marks (``persons``), longest first (so that a name containing another is
    masked whole)."""
    raw = getattr(inc, "persons", None) or []
    return sorted((p for p in raw if isinstance(p, str) and p.strip()), key=len, reverse=True)


def masked(text: str | None, persons: list[str]) -> str | None:
    """``text`` with each marked name replaced by :data:`MASK`."""
    if not text or not persons:
        return text
    for name in persons:
        text = text.replace(name, MASK)
    return text


def short_text(text: str | None, n: int) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------- API
def incident_api(inc, *, names: Mapping, now: dt.datetime | None = None, audience: str = "staff") -> dict:
    """The incident as ``/api/v1`` sends it (docs/api.md), with what ``audience`` may see of personal data."""
    now = now or utcnow()
    personal = audience == "personal"
    persons = [] if personal else persons_of(inc)
    cat_zh, cat_en = category_names(inc.category)
    sub = subcategory_names(inc.category, inc.subcategory)
    dept = catalogue.department_names(inc.department) if inc.department else NONE2
    state = state_names(inc.status)
    d = {
        "id": inc.id,
        "code": inc.code,
        "client_ref": inc.client_ref,
        "category": inc.category,
        "category_name": cat_zh,
        "category_name_en": cat_en,
        "subcategory": inc.subcategory,
        "subcategory_name": sub[0],
        "subcategory_name_en": sub[1],
        "severity": inc.severity,
        "source": inc.source,
        "description": masked(inc.description, persons),
        "address": masked(inc.address, persons),
        "lon": inc.lon,
        "lat": inc.lat,
        "grid_code": inc.grid_code,
        "zone_code": inc.zone_code,
        "town_code": inc.town_code,
        "status": inc.status,
        "status_name": state[0],
        "status_name_en": state[1],
        "level": inc.level,
        "department": inc.department,
        "department_name": dept[0],
        "department_name_en": dept[1],
        "reporter": inc.reporter if personal else None,
        "inspection_id": inc.inspection_id,
        "outcome": inc.outcome,
        "longstanding": bool(inc.longstanding),
        "reported_at": iso_utc(inc.reported_at),
        "updated_at": iso_utc(inc.updated_at),
        "due_at": iso_utc(inc.due_at),
        "closed_at": iso_utc(inc.closed_at),
        "overdue": is_overdue(inc, now),
        "next_states": list(lifecycle.next_states(inc.status)) if inc.status in lifecycle.STATES else [],
        "seq": inc.seq,
    }
    for level in ("grid", "zone", "town"):
        d[f"{level}_name"], d[f"{level}_name_en"] = names.get(getattr(inc, f"{level}_code"), NONE2)
    if personal:
        d["reporter_phone"] = inc.reporter_phone
        d["persons"] = list(getattr(inc, "persons", None) or [])
    return d


def event_actor(ev, audience: str) -> str | None:
    """Who took a lifecycle step, for ``audience``: staff names for staff, but the report itself (the first event,
    whose actor is the reporter) only for the personal audience; nobody's name for the public."""
    if audience == "personal" or (audience == "staff" and ev.from_status is not None):
        return ev.actor
    return None


def event_api(ev, audience: str = "staff", persons: list[str] | None = None) -> dict:
    """A lifecycle step, with what ``audience`` may see of who took it (:func:`event_actor`) and of the residents
    ``persons`` names (masked in the note unless personal)."""
    dept = catalogue.department_names(ev.department) if ev.department else NONE2
    actor = event_actor(ev, audience)
    return {"id": ev.id, "seq": ev.seq, "at": iso_utc(ev.at), "actor": actor, "actor_role": ev.actor_role,
            "from_status": ev.from_status, "to_status": ev.to_status,
            "note": ev.note if audience == "personal" else masked(ev.note, persons or []), "department": ev.department,
            "department_name": dept[0], "department_name_en": dept[1]}


def incident_feature(inc, now: dt.datetime) -> dict:
    """A GeoJSON Feature of the incident (``GET /api/v1/incidents?format=geojson``)."""
    return {
        "type": "Feature",
        "id": inc.id,
        "geometry": {"type": "Point", "coordinates": [inc.lon, inc.lat]},
        "properties": {
            "id": inc.id, "code": inc.code, "category": inc.category, "severity": inc.severity,
            "status": inc.status, "level": inc.level, "overdue": is_overdue(inc, now),
            "reported_at": iso_utc(inc.reported_at), "grid_code": inc.grid_code, "zone_code": inc.zone_code,
            "town_code": inc.town_code,
        },
    }


def incident_brief(inc) -> dict:
    """The short form of an incident inside an alert (no reporter, marked names masked: the wall shows alerts)."""
    cat_zh, cat_en = category_names(inc.category)
    persons = persons_of(inc)
    return {
        "id": inc.id, "code": inc.code, "category": inc.category, "category_name": cat_zh,
        "category_name_en": cat_en, "severity": inc.severity, "status": inc.status,
        "description": masked(inc.description, persons), "address": masked(inc.address, persons),
        "lon": inc.lon, "lat": inc.lat,
        "grid_code": inc.grid_code, "zone_code": inc.zone_code, "town_code": inc.town_code,
        "reported_at": iso_utc(inc.reported_at),
    }


def alert_api(alert, inc, hazard_names: Mapping | None = None) -> dict:
    """An alert as ``/api/v1/alerts`` sends it (and the banners' snapshot holds it)."""
    zh, en = ALERT_KINDS.get(alert.kind, (alert.kind, alert.kind))
    return {
        "id": alert.id, "kind": alert.kind, "kind_name": zh, "kind_name_en": en,
        "hazard_code": alert.hazard_code,
        "hazard_name": (hazard_names or {}).get(alert.hazard_code) if alert.hazard_code else None,
        "created_at": iso_utc(alert.created_at), "acknowledged_at": iso_utc(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by, "active": alert.acknowledged_at is None, "seq": alert.seq,
        "incident": incident_brief(inc),
    }


# --------------------------------------------------------------------------------------------- map
def overdue_hours(status: str, due_at: dt.datetime, now: dt.datetime) -> float:
    """Hours past due (0 when closed or not yet due); a naive ``due_at`` is UTC."""
    due = due_at if due_at.tzinfo else due_at.replace(tzinfo=dt.timezone.utc)
    return (now - due).total_seconds() / 3600 if status != "closed" and due < now else 0


def _epoch(t: dt.datetime | None) -> int | None:
    if t is None:
        return None
    return int((t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp())


def map_point(row, lon: float, lat: float, in_ring: bool, now: dt.datetime) -> dict:
    """The compact marker feature of ``/api/map/incidents.json`` (``row`` from ``store.queries.map_points``;
    ``lon``/``lat`` as drawn, maybe shifted to GCJ-02)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]},
        "properties": {"id": row.id, "k": row.category, "s": row.severity, "t": row.status, "l": row.level,
                       "od": round(overdue_hours(row.status, row.due_at, now), 1), "hz": bool(in_ring),
                       # due (Unix seconds) of an open case: the page ages "od" by itself (assets/live.js)
                       "du": _epoch(row.due_at) if row.status != "closed" else None},
    }


# -------------------------------------------------------------------------------------- duty desk
def list_row(inc, lang: str, now: dt.datetime, names: Mapping, audience: str = "staff") -> dict:
    """One row of the duty desk's list (ag-grid renders every value as text: never HTML)."""
    persons = [] if audience == "personal" else persons_of(inc)
    return {
        "rid": str(inc.id), "id": inc.id, "code": inc.code, "t": timefmt.beijing(inc.reported_at),
        "cat": pick(category_names(inc.category), lang),
        "sev": inc.severity, "src": name_of(catalogue.SOURCES, inc.source, lang),
        "st": name_of(lifecycle.STATES, inc.status, lang), "sk": inc.status,
        "lvl": name_of(lifecycle.LEVELS, inc.level, lang),
        "dept": name_of(catalogue.DEPARTMENTS, inc.department, lang) if inc.department else "",
        "town": _unit(names, inc.town_code, lang), "zone": _unit(names, inc.zone_code, lang),
        "addr": masked(inc.address, persons) or "", "desc": (masked(inc.description, persons) or "")[:DESC_MAX_LIST],
        "due": timefmt.beijing(inc.due_at), "od": is_overdue(inc, now), "lat": inc.lat, "lon": inc.lon,
    }


def _unit(names: Mapping, code: str | None, lang: str) -> str:
    if not code:
        return ""
    return pick(names.get(code), lang, code)


def export_row(inc, lang: str, now: dt.datetime, names: Mapping, audience: str = "staff") -> list:
    """One export row, values in :data:`EXPORT_COLUMNS` order (never the reporter's phone number; the reporter and
    the marked residents' names only for the ``personal`` audience)."""
    en = lang == "en"
    personal = audience == "personal"
    persons = [] if personal else persons_of(inc)
    sub = subcategory_names(inc.category, inc.subcategory) if catalogue.CATEGORIES.get(inc.category) else NONE2
    return [
        inc.code, timefmt.beijing(inc.reported_at, timefmt.SECOND),
        pick(category_names(inc.category), lang),
        pick(sub, lang) if sub[0] is not None else (inc.subcategory or ""),
        inc.severity,
        name_of(catalogue.SOURCES, inc.source, lang),
        name_of(lifecycle.STATES, inc.status, lang),
        name_of(lifecycle.LEVELS, inc.level, lang),
        name_of(catalogue.DEPARTMENTS, inc.department, lang),
        _unit(names, inc.town_code, lang), _unit(names, inc.zone_code, lang), _unit(names, inc.grid_code, lang),
        inc.grid_code,
        masked(inc.address, persons) or "", masked(inc.description, persons) or "",
        (inc.reporter or "") if personal else "",
        timefmt.beijing(inc.due_at, timefmt.SECOND), timefmt.beijing(inc.closed_at, timefmt.SECOND),
        ("yes" if en else "是") if is_overdue(inc, now) else "",
        inc.lon, inc.lat,
    ]


# --------------------------------------------------------------------------------------------- GIS
GIS_INCIDENT_FIELDS = (  # field (<= 10 characters: a Shapefile column), zh, en, what a value is (zh, en)
    ("id", "案事件ID", "Incident id", ("整数", "integer")),
    ("code", "案事件编号", "Incident code", ("文本", "text")),
    ("category", "类别（键）", "Category (key)", ("目录键，见 /api/v1/catalogue", "catalogue key, see /api/v1/catalogue")),
    ("cat_zh", "类别", "Category (Chinese)", ("文本", "text")),
    ("cat_en", "类别（英文）", "Category (English)", ("文本", "text")),
    ("subcat", "子类（键）", "Subcategory (key)", ("目录键", "catalogue key")),
    ("severity", "等级", "Severity", ("1 一般 2 较大 3 重大 4 特别重大", "1 low 2 medium 3 high 4 critical")),
    ("status", "状态（键）", "State (key)", ("目录键", "catalogue key")),
    ("status_zh", "状态", "State (Chinese)", ("文本", "text")),
    ("source", "来源（键）", "Source (key)", ("目录键", "catalogue key")),
    ("level", "处置层级（键）", "Level reached (key)", ("onsite / town / district", "onsite / town / district")),
    ("town_code", "镇街编码", "Town code", ("编码", "code")),
    ("zone_code", "片区编码", "Zone code", ("编码", "code")),
    ("grid_code", "网格编码", "Grid code", ("编码", "code")),
    ("reported", "上报时间", "Reported at", ("北京时间 ISO 8601", "Beijing time, ISO 8601")),
    ("due", "处置时限", "Due at", ("北京时间 ISO 8601", "Beijing time, ISO 8601")),
    ("closed", "结案时间", "Closed at", ("北京时间 ISO 8601，未结案为空", "Beijing time, ISO 8601; empty while open")),
    ("overdue", "超期", "Overdue", ("1 是 / 0 否（导出时）", "1 yes / 0 no (at export time)")),
    ("address", "地址", "Address", ("文本（居民姓名以“某某”代替）", "text (residents' names masked as 某某)")),
    ("descr", "描述", "Description", ("文本（居民姓名以“某某”代替）", "text (residents' names masked as 某某)")),
)
GIS_PERSONAL_FIELDS = (  # only for the personal audience; phone numbers never
    ("reporter", "上报人", "Reporter", ("文本（个人信息）", "text (personal data)")),
)


def gis_point(inc, now: dt.datetime, audience: str = "staff") -> dict:
    """The attributes of one incident point of the GIS export (:data:`GIS_INCIDENT_FIELDS`, plus
    :data:`GIS_PERSONAL_FIELDS` for the ``personal`` audience), times in Beijing time; ``lon``/``lat`` for the
    point (WGS84). Never the reporter's phone number; residents' names masked unless personal."""
    personal = audience == "personal"
    persons = [] if personal else persons_of(inc)
    cat_zh, cat_en = category_names(inc.category)
    row = {
        "id": inc.id, "code": inc.code, "category": inc.category, "cat_zh": cat_zh, "cat_en": cat_en,
        "subcat": inc.subcategory or None, "severity": inc.severity, "status": inc.status,
        "status_zh": state_names(inc.status)[0], "source": inc.source, "level": inc.level,
        "town_code": inc.town_code, "zone_code": inc.zone_code, "grid_code": inc.grid_code,
        "reported": timefmt.iso_beijing(inc.reported_at), "due": timefmt.iso_beijing(inc.due_at),
        "closed": timefmt.iso_beijing(inc.closed_at), "overdue": 1 if is_overdue(inc, now) else 0,
        "address": masked(inc.address, persons) or None, "descr": masked(inc.description, persons) or None,
        "lon": inc.lon, "lat": inc.lat,
    }
    if personal:
        row["reporter"] = inc.reporter or None
    return row


# -------------------------------------------------------------------------------------------- wall
def wall_ticker_row(row, lang: str, names: Mapping, *, glyph: str, color: str, severity_name: str) -> dict:
    """A ticker item (``row`` from ``store.queries.newest_arrivals``: public columns only)."""
    state = state_names(row.status)
    return {
        "id": int(row.id), "code": row.code,
        "category": pick(category_names(row.category), lang),
        "glyph": glyph, "severity": int(row.severity), "severity_name": severity_name, "color": color,
        "status": row.status, "status_name": pick(state, lang),
        "zone": _unit(names, row.zone_code, lang), "town": _unit(names, row.town_code, lang),
        "zone_code": row.zone_code,
        "time": timefmt.beijing(row.reported_at, timefmt.CLOCK),
        "date": timefmt.beijing(row.reported_at, timefmt.MONTH_DAY),
        "description": short_text(masked(row.description, persons_of(row)), DESC_MAX_WALL),
    }


def wall_alert_row(alert: dict, lang: str, names: Mapping, *, severity_name: str) -> dict:
    """An alert card item of the wall, from an :func:`alert_api` dict."""
    inc = alert["incident"]
    return {
        "id": str(alert["id"]), "incident_id": int(inc["id"]), "code": inc["code"],
        "reason": "ring" if alert.get("kind") == "hazchem_ring" else "high",
        "category": inc["category_name_en"] if lang == "en" else inc["category_name"],
        "severity": int(inc["severity"]), "severity_name": severity_name,
        "zone": _unit(names, inc["zone_code"], lang), "town": _unit(names, inc["town_code"], lang),
        "zone_code": inc["zone_code"], "lat": float(inc["lat"]), "lon": float(inc["lon"]),
        "time": timefmt.beijing(inc.get("reported_at"), timefmt.CLOCK),
        "description": short_text(inc.get("description"), DESC_MAX_WALL_ALERT),
    }


# ----------------------------------------------------------------------------------------- Open311
def open311_request(inc) -> dict:
    """A GeoReport v2 ``service_request``: status open / closed, the lifecycle state in ``status_notes``."""
    cat = catalogue.CATEGORIES.get(inc.category)
    zh, en = state_names(inc.status)
    notes = f"{inc.status}: {zh} / {en}; level {inc.level}"
    if inc.department:
        notes += f"; department {inc.department}"
    dept = catalogue.DEPARTMENTS.get(inc.department or "")
    return {
        "service_request_id": inc.code,
        "status": "closed" if inc.status == "closed" else "open",
        "status_notes": notes,
        "service_name": f"{cat.name_zh} {cat.name_en}" if cat else inc.category,
        "service_code": cat.service_code if cat else inc.category,
        "description": masked(inc.description, persons_of(inc)),
        "agency_responsible": f"{dept[0]} {dept[1]}" if dept else inc.town_code,
        "service_notice": "",
        "requested_datetime": iso_utc(inc.reported_at),
        "updated_datetime": iso_utc(inc.updated_at),
        "expected_datetime": iso_utc(inc.due_at),
        "address": masked(inc.address, persons_of(inc)) or "",
        "address_id": inc.grid_code,
        "zipcode": "313000",
        "lat": inc.lat,
        "long": inc.lon,
        "media_url": "",
    }
