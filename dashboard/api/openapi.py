"""The OpenAPI 3.1 document of ``/api/v1`` and ``/open311/v2`` (served at ``/api/v1/openapi.json``).

It says exactly what the server takes and answers: every operation, its parameters and bodies with the forms the
server checks (the patterns come from :mod:`dashboard.domain.grammar` and the parsers' own tables, so the document
and the checks cannot drift apart), every status an operation can answer with its body and headers, and who may
call it. ``tests/integration/test_contract.py`` runs schemathesis with all its checks against the served document;
``tests/unit/test_openapi.py`` checks that it names every route under ``/api/v1`` and ``/open311/v2``.

What no JSON Schema can say is in the descriptions: an order between two query parameters (``from`` before ``to``;
``period`` or ``from``/``to``; ``code`` below the district), a point inside the district served, an inspection that
exists, a report time not in the future, a lifecycle step allowed from the incident's state.
"""
from __future__ import annotations

import copy

from ..domain import grammar
from ..domain.vocab import ALERT_KINDS
from ..metrics import periods
from ..metrics.kpis import KPIS
from ..services import audit as audit_service
from ..services import filters, units
from ..services import notify as notify_service
from ..services.incidents import EXPORT_MAX_ROWS
from ..store import catalogue, lifecycle
from .incidents import BATCH_MAX_BODY_BYTES, BATCH_MAX_ITEMS, LIMITS, MAX_DB_INT, MAX_LIMIT, MAX_PERSONS
from .open311 import DEFAULT_PAGE_SIZE, MAX_IDS, MAX_PAGE, MAX_PAGE_SIZE, NAME_FIELDS, SERVICE_CODES

JSON = "application/json"
REF = "#/components/schemas/"
STATES = list(lifecycle.STATES)
ROLES = list(lifecycle.ROLES)
DEPARTMENTS = list(catalogue.DEPARTMENTS)
ID = {"type": "integer", "minimum": 1, "maximum": MAX_DB_INT}
TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 (`2026-11-25T09:30:00Z`)"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
DAY = {"type": "string", "format": "date"}


# ------------------------------------------------------------------------------------------- helpers
def ref(name: str) -> dict:
    return {"$ref": REF + name}


def nullable(schema: dict) -> dict:
    """``schema`` or null (the server takes null as leaving the field out)."""
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    t = out.get("type")
    if t is not None:
        out["type"] = [*(t if isinstance(t, list) else [t]), "null"]
    return out


def text(max_len: int, *, non_blank: bool = False, **extra) -> dict:
    """A string field the server checks with ``errors.check_text``: no NUL, at most ``max_len`` characters and,
    with ``non_blank``, not only white space."""
    return {"type": "string", "maxLength": max_len, "pattern": grammar.NON_BLANK if non_blank else grammar.TEXT,
            **extra}


def obj(properties: dict, *, required=None, closed: bool = True, **extra) -> dict:
    """An object the server writes: ``required`` defaults to every property; ``closed``: no other property."""
    out = {"type": "object", "required": list(properties) if required is None else list(required),
           "properties": properties}
    if closed:
        out["additionalProperties"] = False
    out.update(extra)
    return out


def query(name: str, description: str, schema: dict) -> dict:
    """An optional query parameter; an empty value is the same as leaving it out (``allowEmptyValue``)."""
    return {"name": name, "in": "query", "required": False, "allowEmptyValue": True, "description": description,
            "schema": schema}


def pattern(p: str, **extra) -> dict:
    return {"type": "string", "pattern": p, **extra}


def integer(lo: int, hi: int, **extra) -> dict:
    return {"type": "integer", "minimum": lo, "maximum": hi, **extra}


def json_body(schema: dict, description: str = "") -> dict:
    out = {"content": {JSON: {"schema": schema}}}
    if description:
        out["description"] = description
    return out


def answer(description: str, schema: dict | None = None, media: str = JSON, headers: dict | None = None) -> dict:
    out: dict = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    if headers:
        out["headers"] = headers
    return out


def header(schema: dict, description: str, required: bool = True) -> dict:
    return {"required": required, "description": description, "schema": schema}


def err(name: str) -> dict:
    return {"$ref": "#/components/responses/" + name}


def errors(*codes: int, open311: bool = False) -> dict:
    """The shared error answers ``codes`` (JSON ``Error``; Open311's list form with ``open311``)."""
    prefix = "Open311" if open311 else ""
    return {str(c): err(f"{prefix}{c}") for c in codes}


READ = [{"bearer": ["read"]}, {"session": []}]
ADMIN = [{"session": []}]
INGEST = [{"bearer": ["ingest"]}]
PUBLIC: list = []


# --------------------------------------------------------------------------------------- parameters
def filter_parameters() -> list[dict]:
    """The incident filter of the list, its exports and the GIS export (``services.filters.incident_filter``)."""
    lists = filters.LIST_PATTERNS
    values = {"status": ["open", *STATES], "category": list(catalogue.CATEGORIES), "severity": ["1", "2", "3", "4"],
              "source": list(catalogue.SOURCES), "level": list(lifecycle.LEVELS), "department": DEPARTMENTS}
    words = {"status": "States (`open`: every state but closed)", "category": "Category keys",
             "severity": "Severities", "source": "Sources", "level": "Levels reached",
             "department": "Assigned departments",
             "city": "City codes (a province's set; any other code matches nothing)",
             "county": "County codes (a city's or province's set; any other code matches nothing)",
             "town": "Town codes (`<district>-<town>`)",
             "zone": "Zone codes (`<district>-<town>-<nn>`)", "grid": "Grid codes (`<district>-<town>-<nn>-<nn>`)"}
    out = []
    for name, what in words.items():
        most = filters.GRID_LIST_MAX if name == "grid" else filters.LIST_MAX
        desc = f"{what}, comma-separated (at most {most}; spaces around a value are ignored)"
        if name in values:
            desc += ": " + ", ".join(values[name])
        out.append(query(name, desc + ".", pattern(lists[name])))
    out += [
        query("from", "Reported at or after: a day (Beijing time) or a date-time (without an offset: Beijing time). "
                      "Not after `to`.",
              pattern(grammar.DATE_TIME, examples=["2019-04-24", "2019-04-24T08:30:00+08:00"])),
        query("to", "Reported before: a day or a date-time, as `from`.", pattern(grammar.DATE_TIME)),
        query("bbox", "Two opposite corners `lon,lat,lon,lat` in decimal WGS84 degrees (either order).",
              pattern(grammar.BBOX, examples=["120.05,30.85,120.15,30.92"])),
        query("q", f"Text in the code, address or description (case-insensitive; at most {filters.MAX_Q} "
                   "characters).", text(filters.MAX_Q)),
        query("overdue", "`1` (also `true`, `yes`): open and past due; `0` (`false`, `no`): not.",
              {"type": "string", "enum": list(filters.BOOL_VALUES)}),
    ]
    return out


def lang_parameter(what: str) -> dict:
    return query("lang", f"Language of {what}: `zh` (default) or `en`.", {"type": "string", "enum": ["zh", "en"]})


def period_parameters(first: str, last: str) -> list[dict]:
    return [
        query("period", f"The KPI period (default `{periods.DEFAULT_PERIOD}`); `custom` needs `{first}`. With "
                        f"`{first}`/`{last}` only `custom` may be named.",
              {"type": "string", "enum": list(periods.PERIODS)}),
        query(first, "First day of a custom period (`period=custom` is then implied).", pattern(grammar.DATE)),
        query(last, f"Last day of a custom period, inclusive (default: `{first}`); needs `{first}`, not before it.",
              pattern(grammar.DATE)),
    ]


def path_id(name: str = "id", description: str = "The incident id") -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ID}


# ------------------------------------------------------------------------------------------ schemas
def schemas(levels=units.LEVELS) -> dict:
    names_zh_en = {"name": {"type": "string"}, "name_en": {"type": "string"}}
    named = obj({"key": {"type": "string"}, **names_zh_en})
    incident = {
        "id": ID, "code": {"type": "string", "examples": ["WX20190424-000123"]},
        "client_ref": {"type": ["string", "null"]},
        "category": {"type": "string", "enum": list(catalogue.CATEGORIES)},
        "category_name": {"type": "string"}, "category_name_en": {"type": "string"},
        "subcategory": {"type": ["string", "null"]}, "subcategory_name": {"type": ["string", "null"]},
        "subcategory_name_en": {"type": ["string", "null"]}, "severity": integer(1, 4),
        "source": {"type": "string", "enum": list(catalogue.SOURCES)},
        "description": {"type": "string", "description": "residents' names the report marks are 某某 unless the "
                                                         "caller sees personal data"},
        "address": {"type": ["string", "null"]},
        "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "WGS84"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "WGS84"},
        "grid_code": {"type": "string"}, "zone_code": {"type": "string"}, "town_code": {"type": "string"},
        "grid_name": {"type": ["string", "null"]}, "grid_name_en": {"type": ["string", "null"]},
        "zone_name": {"type": ["string", "null"]}, "zone_name_en": {"type": ["string", "null"]},
        "town_name": {"type": ["string", "null"]}, "town_name_en": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": STATES}, "status_name": {"type": "string"},
        "status_name_en": {"type": "string"}, "level": {"type": "string", "enum": list(lifecycle.LEVELS)},
        "department": {"type": ["string", "null"], "enum": [*DEPARTMENTS, None]},
        "department_name": {"type": ["string", "null"]}, "department_name_en": {"type": ["string", "null"]},
        "reporter": {"type": ["string", "null"], "description": "personal data: null unless the caller may see it "
                                                                "(duty officers, admins, tokens with `personal`)"},
        "reporter_phone": {"type": ["string", "null"], "description": "personal data: only for that audience"},
        "persons": {"type": "array", "items": {"type": "string"},
                    "description": "residents the text names: only for that audience"},
        "inspection_id": nullable(ID),
        "outcome": {"type": ["string", "null"], "enum": ["resolved", "unresolved", None]},
        "longstanding": {"type": "boolean"}, "reported_at": TIME, "updated_at": TIME, "due_at": TIME,
        "closed_at": TIME_OR_NULL, "overdue": {"type": "boolean", "description": "open and past due_at"},
        "next_states": {"type": "array", "items": {"type": "string", "enum": STATES}},
        "seq": {"type": "integer", "minimum": 0, "description": "change sequence"},
    }
    personal_only = ("reporter_phone", "persons")
    incident_required = [k for k in incident if k not in personal_only]
    event = obj({
        "id": ID, "seq": {"type": "integer", "minimum": 0}, "at": TIME,
        "actor": {"type": ["string", "null"], "description": "who took the step (staff for staff; the reporter "
                                                             "only for the personal audience)"},
        "actor_role": {"type": ["string", "null"], "enum": [*ROLES, None]},
        "from_status": {"type": ["string", "null"], "enum": [*STATES, None]},
        "to_status": {"type": "string", "enum": STATES}, "note": {"type": ["string", "null"]},
        "department": {"type": ["string", "null"], "enum": [*DEPARTMENTS, None]},
        "department_name": {"type": ["string", "null"]}, "department_name_en": {"type": ["string", "null"]}})
    subcategory_rules = [
        {"if": {"required": ["category"], "properties": {"category": {"const": key}}},
         "then": {"properties": {"subcategory": {"enum": [*cat.subcategories, None]}}}}
        for key, cat in catalogue.CATEGORIES.items()]
    new_incident = {
        "type": "object", "required": ["category", "description", "lon", "lat"],
        "description": "A report. Other properties are ignored; null is the same as leaving a property out. The "
                       "point must lie inside the district served (else 422 `outside_district` / `outside_grids`), an "
                       "`inspection_id` must name a stored inspection (else 422 `unknown_inspection`), "
                       "`reported_at` must not be in the future (else 400).",
        "properties": {
            "category": {"type": "string", "enum": list(catalogue.CATEGORIES), "description": "GET /api/v1/catalogue"},
            "subcategory": nullable(text(64, description="a subcategory key of the category")),
            "severity": nullable(integer(1, 4, description="default: the category's default severity")),
            "source": {"type": ["string", "null"], "enum": [*catalogue.SOURCES, None], "description": "default app"},
            "description": text(LIMITS["description"], non_blank=True),
            "address": nullable(text(LIMITS["address"])),
            "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "WGS84"},
            "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "WGS84"},
            "reporter": nullable(text(LIMITS["reporter"], non_blank=True)),
            "reporter_phone": nullable(text(LIMITS["reporter_phone"])),
            "persons": {"type": ["array", "null"], "maxItems": MAX_PERSONS, "items": text(32, non_blank=True),
                        "description": "residents named in description or address (personal data): masked as 某某 "
                                       "for audiences without personal data"},
            "client_ref": nullable(text(LIMITS["client_ref"], non_blank=True, description="idempotency key")),
            "inspection_id": nullable(ID), "longstanding": {"type": ["boolean", "null"]},
            "reported_at": nullable(pattern(grammar.DATE_TIME, description="default now; without an offset "
                                                                           "Beijing time")),
        },
        "allOf": subcategory_rules,
    }
    batch_result = obj({
        "index": {"type": "integer", "minimum": 0, "description": "position of the item in the request"},
        "status": {"type": "string", "enum": ["created", "existing", "refused"],
                   "description": "created: stored now; existing: its client_ref was stored before, or by an "
                                  "earlier item of this batch (duplicate_of); refused: nothing stored, error says why"},
        "id": nullable(ID), "code": {"type": ["string", "null"]}, "client_ref": {"type": ["string", "null"]},
        "duplicate_of": {"type": ["integer", "null"], "minimum": 0},
        "error": {"oneOf": [{"type": "null"}, obj({
            "field": {"type": ["string", "null"]},
            "reason": {"type": "string", "description": "the error code POST /api/v1/incidents gives"},
            "message": {"type": "string"},
            "status": {"type": "integer", "enum": [400, 409, 422],
                       "description": "the status POST /api/v1/incidents gives"}})]}})
    kpi_values = obj({k: _kpi_schema(kind) for k, (_, _, kind) in KPIS.items()}, required=[],
                     description="KPI -> value (see `definitions`); an empty object for a unit without figures")
    kpi_change = obj({k: obj({"change": {"type": ["number", "null"]}, "points": {"type": ["number", "null"]}})
                      for k in KPIS}, required=[])
    unit_levels = list(levels)  # the served set's levels (the root first)
    alert = {
        "id": ID, "kind": {"type": "string", "enum": list(ALERT_KINDS)}, "kind_name": {"type": "string"},
        "kind_name_en": {"type": "string"}, "hazard_code": {"type": ["string", "null"]},
        "hazard_name": {"type": ["string", "null"]}, "created_at": TIME, "acknowledged_at": TIME_OR_NULL,
        "acknowledged_by": {"type": ["string", "null"]}, "active": {"type": "boolean"},
        "seq": {"type": "integer", "minimum": 0},
        "incident": obj({k: incident[k] for k in (
            "id", "code", "category", "category_name", "category_name_en", "severity", "status", "description",
            "address", "lon", "lat", "grid_code", "zone_code", "town_code", "reported_at")})}
    return {
        "Error": obj({"error": obj({
            "code": {"type": "string", "description": "a machine code: missing_field, invalid_type, invalid_value, "
                                                      "too_long, out_of_range, unknown_category, not_found, …"},
            "message": {"type": "string"}, "field": {"type": ["string", "null"]},
            "current_status": {"type": "string", "enum": STATES, "description": "refused lifecycle steps"},
            "allowed": {"type": "array", "items": {"type": "string", "enum": STATES}},
            "retry_after": {"type": "integer", "minimum": 1, "description": "429 and 503: seconds to wait"},
            "rule": {"type": "string", "description": "429: the rate limit reached"},
            "max_items": {"type": "integer", "description": "413 too_many_items: the batch maximum"},
        }, required=["code", "message", "field"])}),
        "Open311Error": {"type": "array", "minItems": 1, "items": obj({"code": {"type": "integer"},
                                                                        "description": {"type": "string"}})},
        "Incident": obj(incident, required=incident_required),
        "IncidentCreated": obj({**incident, "grid": {"type": "string"}, "zone": {"type": "string"},
                                "town": {"type": "string"},
                                "created": {"type": "boolean", "description": "false: this client_ref was stored "
                                                                              "before; the stored incident"}},
                               required=[*incident_required, "grid", "zone", "town", "created"]),
        "IncidentDetail": obj({**incident, "events": {"type": "array", "items": ref("Event"),
                                                      "description": "the lifecycle, oldest first"}},
                              required=[*incident_required, "events"]),
        "Event": event,
        "IncidentPage": obj({"items": {"type": "array", "items": ref("Incident")},
                             "next_cursor": nullable(pattern(grammar.CURSOR)),
                             "limit": integer(1, MAX_LIMIT)}),
        "FeatureCollection": obj({
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": obj({
                "type": {"const": "Feature"}, "id": ID,
                "geometry": obj({"type": {"const": "Point"},
                                 "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                                                 "maxItems": 2}}),
                "properties": obj({k: incident[k] for k in (
                    "id", "code", "category", "severity", "status", "level", "overdue", "reported_at", "grid_code",
                    "zone_code", "town_code")})})},
            "next_cursor": nullable(pattern(grammar.CURSOR))}),
        "Changes": obj({"items": {"type": "array", "items": ref("Incident"), "description": "in seq order"},
                        "last_seq": {"type": "integer", "minimum": 0},
                        "has_more": {"type": "boolean"}}),
        "NewIncident": new_incident,
        "Batch": {
            "description": f'`{{"incidents": [ … ]}}` or a bare array of up to {BATCH_MAX_ITEMS:,} incidents. Each '
                           "item that is an object is checked on its own as `NewIncident` (refused items are "
                           "answered, not an error of the request).",
            "oneOf": [obj({"incidents": ref("BatchItems")}, closed=False), ref("BatchItems")]},
        "BatchItems": {"type": "array", "maxItems": BATCH_MAX_ITEMS,
                       "items": {"anyOf": [ref("NewIncident"), {"type": "object"}]}},
        "BatchResult": batch_result,
        "BatchResponse": obj({
            "results": {"type": "array", "items": ref("BatchResult")},
            "created": {"type": "integer", "minimum": 0}, "existing": {"type": "integer", "minimum": 0},
            "refused": {"type": "integer", "minimum": 0},
            "seq": {"type": ["integer", "null"], "minimum": 0,
                    "description": "last change sequence this batch wrote (null: it created nothing)"}}),
        "Transition": {
            "type": "object", "required": ["to", "actor", "actor_role"],
            "description": "One step. Other properties are ignored. The step must be allowed from the incident's "
                           "state (else 409 with `current_status` and `allowed`).",
            "properties": {
                "to": {"type": "string", "enum": STATES},
                "actor": text(LIMITS["actor"], non_blank=True),
                "actor_role": {"type": "string", "enum": ROLES,
                               "description": f"to=verified needs {lifecycle.VERIFIER_ROLE} (else 403)"},
                "note": nullable(text(LIMITS["note"])),
                "department": {"type": ["string", "null"], "enum": [*DEPARTMENTS, None],
                               "description": "required when to=assigned"},
                "outcome": {"type": ["string", "null"], "enum": ["resolved", "unresolved", None],
                            "description": "only with to=closed"}},
            "allOf": [
                {"if": {"required": ["outcome"], "properties": {"outcome": {"type": "string"}}},
                 "then": {"properties": {"to": {"const": "closed"}}}},
                {"if": {"required": ["to"], "properties": {"to": {"const": "assigned"}}},
                 "then": {"required": ["department"], "properties": {"department": {"type": "string"}}}},
                {"if": {"required": ["to"], "properties": {"to": {"const": "verified"}}},
                 "then": {"properties": {"actor_role": {"const": lifecycle.VERIFIER_ROLE}}}}]},
        "TransitionResult": obj({"incident": ref("Incident"), "event": ref("Event")}),
        "Catalogue": obj({
            "categories": {"type": "array", "items": obj({
                "key": {"type": "string"}, **names_zh_en, "service_code": {"type": "string"},
                "deadline_hours": {"type": "integer", "minimum": 1}, "default_severity": integer(1, 4),
                "department": {"type": "string", "enum": DEPARTMENTS}, "group": {"type": "string"},
                "group_en": {"type": "string"}, "subcategories": {"type": "array", "items": named}})},
            "severities": {"type": "array", "items": obj({"value": integer(1, 4), **names_zh_en})},
            "sources": {"type": "array", "items": named}, "departments": {"type": "array", "items": named},
            "states": {"type": "array", "items": obj({
                "key": {"type": "string", "enum": STATES}, **names_zh_en, "open": {"type": "boolean"},
                "next": {"type": "array", "items": {"type": "string", "enum": STATES}}})},
            "levels": {"type": "array", "items": named}, "roles": {"type": "array", "items": named}}),
        "Alert": obj(alert),
        "AlertFeed": obj({"items": {"type": "array", "items": ref("Alert")},
                          "last_seq": {"type": "integer", "minimum": 0},
                          "active_count": {"type": "integer", "minimum": 0}, "has_more": {"type": "boolean"}}),
        "AlertAcknowledged": obj({**alert, "changed": {"type": "boolean",
                                                       "description": "false: it was acknowledged before"}}),
        "AlertAck": obj({"actor": nullable(text(64, description="who acknowledges (default api)"))}, required=[],
                        closed=False),
        "KpiValues": kpi_values,
        "Kpis": obj({
            "level": {"type": "string", "enum": unit_levels}, "code": {"type": "string"},
            "name": {"type": ["string", "null"]}, "name_en": {"type": ["string", "null"]},
            "period": obj({"key": {"type": "string", "enum": list(periods.PERIODS)}, "from": DAY, "to": DAY,
                           "at": {"type": "string", "format": "date-time"}}),
            "kpis": ref("KpiValues"),
            "parent": {"oneOf": [{"type": "null"}, obj({
                "level": {"type": "string", "enum": unit_levels[:-1]}, "code": {"type": "string"},
                "name": {"type": ["string", "null"]}, "kpis": ref("KpiValues")})]},
            "previous_year": obj({"from": DAY, "to": DAY, "kpis": ref("KpiValues"), "change": kpi_change}),
            "definitions": obj({k: obj({"zh": {"type": "string"}, "en": {"type": "string"},
                                        "kind": {"const": kind}}) for k, (_, _, kind) in KPIS.items()}),
            "children": obj({"level": {"type": "string", "enum": unit_levels[1:]},
                             "units": {"type": "array", "items": obj({
                                 "code": {"type": "string"}, "name": {"type": ["string", "null"]},
                                 "kpis": ref("KpiValues")})}},
                            description="with children=1 only")},
            required=["level", "code", "name", "name_en", "period", "kpis", "parent", "previous_year",
                      "definitions"]),
        "AuditPage": obj({
            "items": {"type": "array", "items": obj({
                "id": ID, "at": TIME, "actor": {"type": "string"}, "role": {"type": "string"},
                "address": {"type": ["string", "null"]},
                "action": {"type": "string", "enum": list(audit_service.ACTIONS)},
                "target": {"type": ["string", "null"]}, "detail": {"type": "object"}})},
            "total": {"type": "integer", "minimum": 0}, "next_before": nullable(ID)}),
        "Outbox": obj({
            "channels": {"type": "array", "items": obj({
                "key": pattern(grammar.CHANNEL), "kind": {"type": "string", "enum": list(notify_service.KIND_NAMES)},
                "kind_name": {"type": "string"}, "target": {"type": "string", "description": "masked"},
                "signed": {"type": "boolean"}})},
            "unconfigured": {"type": "array", "items": {"type": "string"},
                             "description": "channels with rows that this deployment no longer sends"},
            "counts": {"type": "object", "additionalProperties": obj(
                {s: {"type": "integer", "minimum": 0} for s in notify_service.STATES}),
                       "description": "channel -> rows per state"},
            "items": {"type": "array", "items": obj({
                "id": ID, "alert_id": ID, "message_id": {"type": "string"}, "incident_id": ID,
                "incident_code": {"type": "string"}, "channel": {"type": "string"},
                "state": {"type": "string", "enum": list(notify_service.STATES)}, "sending": {"type": "boolean"},
                "attempts": {"type": "integer", "minimum": 0}, "next_attempt_at": TIME_OR_NULL,
                "last_error": {"type": ["string", "null"]}, "created_at": TIME, "sent_at": TIME_OR_NULL})},
            "next_before": nullable(ID)}),
        "Open311Discovery": obj({
            "changeset": {"type": "string", "format": "date-time"}, "contact": {"type": "string"},
            "key_service": {"type": "string"},
            "endpoints": {"type": "array", "items": obj({
                "specification": {"type": "string"}, "url": {"type": "string"},
                "changeset": {"type": "string", "format": "date-time"}, "type": {"type": "string"},
                "formats": {"type": "array", "items": {"type": "string"}}})}}),
        "Open311Service": obj({
            "service_code": {"type": "string"}, "service_name": {"type": "string"}, "description": {"type": "string"},
            "metadata": {"type": "boolean"}, "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"}, "group": {"type": "string"}}),
        "Open311ServiceDefinition": obj({
            "service_code": {"type": "string"},
            "attributes": {"type": "array", "items": obj({
                "variable": {"type": "boolean"}, "code": {"type": "string"},
                "datatype": {"type": "string", "enum": ["string", "number", "datetime", "text", "singlevaluelist",
                                                        "multivaluelist"]},
                "required": {"type": "boolean"}, "datatype_description": {"type": "string"},
                "order": {"type": "integer"}, "description": {"type": "string"},
                "values": {"type": "array", "items": obj({"key": {"type": "string"}, "name": {"type": "string"}})}},
                required=["variable", "code", "datatype", "required", "datatype_description", "order",
                          "description"])}}),
        "Open311Request": obj({
            "service_request_id": {"type": "string"}, "status": {"type": "string", "enum": ["open", "closed"]},
            "status_notes": {"type": "string", "description": "the lifecycle state, level and department"},
            "service_name": {"type": "string"}, "service_code": {"type": "string"}, "description": {"type": "string"},
            "agency_responsible": {"type": "string"}, "service_notice": {"type": "string"},
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "expected_datetime": {"type": "string", "format": "date-time"}, "address": {"type": "string"},
            "address_id": {"type": "string"}, "zipcode": {"type": "string"}, "lat": {"type": "number"},
            "long": {"type": "number"}, "media_url": {"type": "string"}}),
        "Open311Created": {"type": "array", "minItems": 1, "maxItems": 1, "items": obj({
            "service_request_id": {"type": "string"}, "service_notice": {"type": "string"},
            "account_id": {"type": "null"}})},
        "Open311Form": _open311_form(),
    }


def _kpi_schema(kind: str) -> dict:
    if kind == "rate":
        return {"type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "a fraction; null: no base"}
    if kind == "hours":
        return {"type": ["number", "null"], "minimum": 0, "description": "hours; null: nothing to measure"}
    return {"type": ["integer", "null"], "minimum": 0}


def _open311_form() -> dict:
    """The form of ``POST /open311/v2/requests.json``: every field is text; an empty field is a field left out."""
    def optional(schema: dict) -> dict:
        return {"anyOf": [schema, {"const": ""}]}

    subcategory_rules = []
    for code in SERVICE_CODES:
        cat = catalogue.BY_SERVICE_CODE.get(code) or catalogue.CATEGORIES[code]
        subcategory_rules.append({
            "if": {"required": ["service_code"], "properties": {"service_code": {"const": code}}},
            "then": {"properties": {"attribute[subcategory]": {"enum": ["", *cat.subcategories]}}}})
    number = {"type": "number"}
    return {
        "type": "object", "required": ["service_code", "lat", "long", "description"],
        "description": "Other fields are ignored. The point must lie inside the district served (else 422).",
        "properties": {
            "api_key": {"type": "string", "description": "an API token with the ingest scope, when not in the query "
                                                        "(the query's counts when both are sent)"},
            "service_code": {"type": "string", "enum": list(SERVICE_CODES),
                             "description": "a service code of services.json or a category key"},
            "lat": {**number, "minimum": -90, "maximum": 90}, "long": {**number, "minimum": -180, "maximum": 180},
            "description": text(LIMITS["description"], non_blank=True),
            "address_string": text(LIMITS["address"]),
            "attribute[subcategory]": {"type": "string", "description": "a subcategory of the service"},
            "attribute[severity]": {"type": "string", "enum": ["", "1", "2", "3", "4"]},
            "attribute[source]": {"type": "string", "enum": ["", *catalogue.SOURCES], "description": "default citizen"},
            "attribute[client_ref]": optional(text(LIMITS["client_ref"], non_blank=True)),
            **{k: text(n, description="the reporter (first name and last name, else email; cut to 64 characters)")
               for k, n in NAME_FIELDS.items()},
            "phone": text(LIMITS["reporter_phone"]),
        },
        "allOf": subcategory_rules,
    }


def responses() -> dict:
    retry = {"Retry-After": header({"type": "integer", "minimum": 1}, "seconds to wait")}
    retry_when_down = {"Retry-After": header({"type": "integer", "minimum": 1}, "seconds to wait (when the store "
                                                                                "is unreachable)", required=False)}
    out = {}
    for prefix, schema in (("", ref("Error")), ("Open311", ref("Open311Error"))):
        def r(description, **kw):
            return answer(description, schema, **kw)
        out.update({
            f"{prefix}400": r("Bad input: the field is named"),
            f"{prefix}401": r("No valid credentials: sign in, or send a valid token (a token that is not valid is "
                              "refused on every route, also the open ones)"),
            f"{prefix}403": r("Signed in or authorised, but not for this (role, token scope)"),
            f"{prefix}404": r("No such resource"),
            f"{prefix}413": r("The body is over the size limit"),
            f"{prefix}415": r("The body is not of the media type this operation takes"),
            f"{prefix}422": r("Well-formed, but the district cannot take it (unknown category or subcategory, "
                              "unknown inspection, a point outside the district served)"),
            f"{prefix}429": r("Too many requests: a rate limit (RATE_LIMIT_*) was reached", headers=retry),
            f"{prefix}503": r("The incident store or the geodata is unavailable: retry shortly",
                              headers=retry_when_down),
        })
    return out


# ------------------------------------------------------------------------------------------- paths
def operation(summary: str, security: list, codes: tuple, *, ok: dict, parameters=(), body=None,
              description: str = "", open311: bool = False, extra: dict | None = None, op_id: str = "") -> dict:
    """One operation: ``ok`` its success answers, ``codes`` the shared error answers it can give."""
    op: dict = {"operationId": op_id, "summary": summary, "security": security}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = {**ok, **errors(*codes, open311=open311), **(extra or {})}
    return op


def paths(levels=units.LEVELS) -> dict:
    file_headers = {"Content-Disposition": header(pattern('^attachment; filename="[^"]+"$'), "the file name"),
                    "X-Row-Count": header(pattern(grammar.DIGITS), "incident rows in the file")}
    gis_headers = {
        "Content-Disposition": file_headers["Content-Disposition"], "X-Row-Count": file_headers["X-Row-Count"],
        "X-Layer-Counts": header(pattern("^(cities=[0-9]+,)?(counties=[0-9]+,)?towns=[0-9]+,zones=[0-9]+,grids=[0-9]+,"
                                         "incidents=[0-9]+$"),
                                 "features per layer (cities and counties: a city's or province's set)"),
        "X-Incident-Total": header(pattern(grammar.DIGITS), "incidents the filter matched"),
        "X-Incidents-Truncated": header({"type": "string", "enum": ["0", "1"]},
                                        f"1: the points stop at {EXPORT_MAX_ROWS:,}"),
        "X-Period": header(pattern(f"^{grammar.one_of(periods.PERIODS)[1:-1]},"
                                   f"{grammar.DATE[1:-1]},{grammar.DATE[1:-1]}$"), "key,first day,last day"),
    }
    binary = {"type": "string", "format": "binary"}
    read_errors = (400, 401, 403, 429, 503)
    location = {"Location": header({"type": "string"}, "GET URL of the incident")}
    export_desc = (f"Every incident the filter matches, newest first, at most {EXPORT_MAX_ROWS:,} rows; reporter "
                   "names only for callers who see personal data, phone numbers never; text that a spreadsheet "
                   "would run as a formula starts with `'`. Recorded in the audit log.")
    gis_desc = ("Towns, zones and grids with their KPIs of the period, and the filtered incidents as points (layers "
                "`towns`, `zones`, `grids`, `incidents`; WGS84). `from`/`to` filter the incidents, "
                "`period_from`/`period_to` name a custom KPI period. Recorded in the audit log.")
    incident_filter = [{"$ref": f"#/components/parameters/{p['name']}"} for p in filter_parameters()]
    audit_filter = [
        query("action", "Actions, comma-separated: " + ", ".join(audit_service.ACTIONS) + ".",
              pattern(audit_service.ACTION_LIST)),
        query("actor", "Text in the actor (user name, `token:…`, `kiosk`, …).", text(64)),
        query("target", "Exactly this target (incident code, user name, alert id, …).", text(64)),
        query("from", "At or after: a day or a date-time (Beijing time without an offset); before `to`.",
              pattern(grammar.DATE_TIME)),
        query("to", "Before: a date-time, or a day (then that whole day counts).", pattern(grammar.DATE_TIME)),
    ]
    open311_auth = READ + [{"open311_api_key": ["read"]}]
    return {
        "/api/v1/incidents": {
            "get": operation(
                "List incidents, newest first, with filters and cursor pagination", READ, read_errors,
                op_id="listIncidents",
                description="`from` must not be after `to` (else 400).",
                parameters=[*incident_filter,
                            query("limit", "Page size (default 100).", integer(1, MAX_LIMIT)),
                            query("cursor", "`next_cursor` of the page before.", pattern(grammar.CURSOR)),
                            query("format", "`json` (default) or `geojson` (a FeatureCollection for maps).",
                                  {"type": "string", "enum": ["json", "geojson"]})],
                ok={"200": {"description": "A page (`format=json`) or a FeatureCollection (`format=geojson`)",
                            "content": {JSON: {"schema": ref("IncidentPage")},
                                        "application/geo+json": {"schema": ref("FeatureCollection")}}}}),
            "post": operation(
                "Report an incident (idempotent on client_ref)", INGEST, (400, 401, 403, 413, 422, 429, 503),
                op_id="createIncident",
                body={"required": True, **json_body(ref("NewIncident"))},
                ok={"201": {**answer("Stored; the body has grid, zone and town too", ref("IncidentCreated"),
                                     headers=location),
                            "links": {"GetIncident": {"operationId": "getIncident",
                                                      "parameters": {"id": "$response.body#/id"}},
                                      "StepIncident": {"operationId": "stepIncident",
                                                       "parameters": {"id": "$response.body#/id"}}}},
                    "200": answer("This client_ref was stored before: the stored incident (as the token may see it)",
                                  ref("IncidentCreated"), headers=location)}),
        },
        "/api/v1/incidents/batch": {
            "post": operation(
                f"Report up to {BATCH_MAX_ITEMS:,} incidents at once (idempotent on client_ref)", INGEST,
                (400, 401, 403, 429, 503), op_id="createIncidents",
                description="Each item is checked and placed as by `POST /api/v1/incidents` and answered on its own, "
                            "in order: `created`, `existing` (its `client_ref` is stored, or repeats an earlier item) "
                            "or `refused` (with the error the single POST would give; nothing stored for it). The "
                            "accepted items are stored in one transaction. A body that is no batch (not an array, "
                            "an item that is not an object) is refused whole. Bodies up to "
                            f"{BATCH_MAX_BODY_BYTES // (1024 * 1024)} MB.",
                body={"required": True, **json_body(ref("Batch"))},
                ok={"200": answer("One result per item (also when every item was refused)", ref("BatchResponse"))},
                extra={"413": answer(f"More than {BATCH_MAX_ITEMS:,} items (`too_many_items`, `max_items`) or a "
                                     "body over the size limit; nothing stored", ref("Error"))}),
        },
        "/api/v1/incidents/{id}": {
            "get": operation("One incident with its whole lifecycle", READ, (401, 403, 404, 429, 503),
                             op_id="getIncident", parameters=[path_id()],
                             ok={"200": answer("The incident and its `events`, oldest first",
                                               ref("IncidentDetail"))}),
        },
        "/api/v1/incidents/{id}/transitions": {
            "post": operation(
                "Move an incident one step along the closed loop", INGEST, (400, 401, 403, 404, 413, 429, 503),
                op_id="stepIncident", parameters=[path_id()],
                body={"required": True, **json_body(ref("Transition"))},
                ok={"200": answer("The incident after the step, and the step", ref("TransitionResult"))},
                extra={"409": answer("The step is not allowed from the incident's state (`current_status`, "
                                     "`allowed`)", ref("Error"))}),
        },
        "/api/v1/incidents/export.csv": {
            "get": operation("The filtered incidents as CSV (UTF-8 with BOM)", READ, read_errors, op_id="exportCsv",
                             description=export_desc + " `from` must not be after `to`.",
                             parameters=[*incident_filter, lang_parameter("the column names and values")],
                             ok={"200": answer("The CSV file", {"type": "string"}, "text/csv", file_headers)}),
        },
        "/api/v1/incidents/export.xlsx": {
            "get": operation("The filtered incidents as an Excel workbook", READ, read_errors, op_id="exportXlsx",
                             description=export_desc + " `from` must not be after `to`.",
                             parameters=[*incident_filter, lang_parameter("the sheet")],
                             ok={"200": answer("The workbook", binary,
                                               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                                               file_headers)}),
        },
        "/api/v1/changes": {
            "get": operation("Incidents created or changed after a sequence number (the live feed)", READ,
                             read_errors, op_id="listChanges",
                             parameters=[query("after", "`last_seq` of the call before (default 0).",
                                               integer(0, MAX_DB_INT)),
                                         query("limit", "At most this many (default 500).", integer(1, MAX_LIMIT))],
                             ok={"200": answer("Changed incidents in sequence order", ref("Changes"))}),
        },
        "/api/v1/catalogue": {
            "get": operation("Categories, severities, sources, departments, states, levels, roles", PUBLIC,
                             (401, 503), op_id="getCatalogue", ok={"200": answer("The catalogue", ref("Catalogue"))}),
        },
        "/api/v1/openapi.json": {
            "get": operation("This document", PUBLIC, (401, 503), op_id="getOpenapi",
                             ok={"200": answer("OpenAPI 3.1", {"type": "object", "required": ["openapi", "paths"]})}),
        },
        "/api/v1/alerts": {
            "get": operation("Alerts (告警), newest first", READ, read_errors, op_id="listAlerts",
                             parameters=[query("status", "`active` (default): not acknowledged; `all`.",
                                               {"type": "string", "enum": ["active", "all"]}),
                                         query("after", "Only alerts changed after this alert sequence number.",
                                               integer(0, MAX_DB_INT)),
                                         query("limit", "At most this many (default 100).", integer(1, 1000))],
                             ok={"200": answer("The alerts", ref("AlertFeed"))}),
        },
        "/api/v1/alerts/{id}/ack": {
            "post": operation(
                "Acknowledge an alert", [{"bearer": ["ingest"]}, {"session": []}], (400, 401, 403, 404, 413, 429, 503),
                op_id="ackAlert", parameters=[path_id(description="The alert id")],
                description="With a token the optional body names who acknowledges; with a session (duty officers, "
                            "admins; from this site's pages only) the signed-in user does and the body is not read.",
                body={"required": False, **json_body(ref("AlertAck"))},
                ok={"200": answer("The alert; `changed` false when it was acknowledged before",
                                  ref("AlertAcknowledged"))}),
        },
        "/api/v1/kpis": {
            "get": operation(
                "The KPIs of a unit and period (the numbers the KPI cards show)", READ, (400, 401, 403, 404, 429, 503),
                op_id="getKpis",
                description="`code` is required below the root unit (`district`: the county served, or the "
                            "city or province of a multi-county set; a city, county, town, zone or grid code; an "
                            "unknown one is a 404). Give `period` or `from`/`to`, not both (`period=custom` may go "
                            "with them).",
                parameters=[query("level", "`district` (the root unit, default), then the set's own levels: "
                                           "`city` (a province's set), `county` (a city's or a province's), "
                                           "`town`, `zone`, `grid`.",
                                  {"type": "string", "enum": list(levels)}),
                            query("code", "The unit's code (the district's: `info.x-district.code`).",
                                  {"type": "string"}),
                            *period_parameters("from", "to"),
                            query("children", "`1` (`true`, `yes`): the children's KPIs too (the ranking).",
                                  {"type": "string", "enum": list(filters.BOOL_VALUES)})],
                ok={"200": answer("The KPIs", ref("Kpis"))}),
        },
        "/api/v1/briefing.pdf": {
            "get": operation("The morning briefing as PDF", READ, read_errors, op_id="getBriefing",
                             parameters=[lang_parameter("the briefing")],
                             ok={"200": answer("The PDF", binary, "application/pdf", {
                                 "Content-Disposition": header(pattern("^attachment; filename=briefing-"
                                                                       "[0-9]{4}-[0-9]{2}-[0-9]{2}[.]pdf$"),
                                                               "the file name (the Beijing date)")})}),
        },
        "/api/v1/gis/export.gpkg": {
            "get": operation("Units with KPIs and the filtered incidents as a GeoPackage (QGIS, ArcGIS)", READ,
                             read_errors, op_id="exportGpkg",
                             description=gis_desc + " `from` must not be after `to`.",
                             parameters=[*period_parameters("period_from", "period_to"), *incident_filter],
                             ok={"200": answer("The GeoPackage", binary, "application/geopackage+sqlite3",
                                               gis_headers)}),
        },
        "/api/v1/gis/export.shp.zip": {
            "get": operation("Units with KPIs and the filtered incidents as zipped Shapefiles", READ, read_errors,
                             op_id="exportShapefiles", description=gis_desc + " `from` must not be after `to`.",
                             parameters=[*period_parameters("period_from", "period_to"), *incident_filter],
                             ok={"200": answer("The zip (one Shapefile per layer, field notes as CSV)", binary,
                                               "application/zip", gis_headers)}),
        },
        "/api/v1/audit": {
            "get": operation("The audit log, newest first (admins)", ADMIN, read_errors, op_id="listAudit",
                             description="`from` must be before `to`.",
                             parameters=[*audit_filter,
                                         query("limit", "Page size (default 100).",
                                               integer(1, audit_service.MAX_PAGE)),
                                         query("before", "Entries with a smaller id (`next_before` of the page "
                                                         "before).", ID)],
                             ok={"200": answer("A page of entries", ref("AuditPage"))}),
        },
        "/api/v1/audit.csv": {
            "get": operation("The audit log as CSV (admins; the export is recorded)", ADMIN, read_errors,
                             op_id="exportAudit", description="`from` must be before `to`.",
                             parameters=[*audit_filter, lang_parameter("the column names")],
                             ok={"200": answer("The CSV file", {"type": "string"}, "text/csv", {
                                 "Content-Disposition": file_headers["Content-Disposition"],
                                 "X-Row-Count": header(pattern(grammar.DIGITS), "entries in the file")})}),
        },
        "/api/v1/notify/outbox": {
            "get": operation("The alert push's delivery state (admins)", ADMIN, read_errors, op_id="getOutbox",
                             parameters=[query("state", "Only rows in this state.",
                                               {"type": "string", "enum": list(notify_service.STATES)}),
                                         query("channel", "Only rows of this channel.", pattern(grammar.CHANNEL)),
                                         query("limit", "Rows (default 100).", integer(1, notify_service.MAX_PAGE)),
                                         query("before", "Rows with a smaller id (`next_before`).", ID)],
                             ok={"200": answer("Channels, counts and the newest rows", ref("Outbox"))}),
        },
        "/open311/v2/discovery.json": {
            "get": operation("Open311 discovery", PUBLIC, (401, 503), open311=True, op_id="open311Discovery",
                             ok={"200": answer("Where and what", ref("Open311Discovery"))}),
        },
        "/open311/v2/services.json": {
            "get": operation("Open311 services (the category catalogue)", PUBLIC, (401, 503), open311=True,
                             op_id="open311Services",
                             ok={"200": answer("The services", {"type": "array", "items": ref("Open311Service")})}),
        },
        "/open311/v2/services/{service_code}.json": {
            "get": operation("Open311 service definition (attributes subcategory, severity, client_ref)", PUBLIC,
                             (401, 404, 503), open311=True, op_id="open311Service",
                             parameters=[{"name": "service_code", "in": "path", "required": True,
                                          "schema": {"type": "string", "enum": list(catalogue.BY_SERVICE_CODE)}}],
                             ok={"200": answer("The definition", ref("Open311ServiceDefinition"))}),
        },
        "/open311/v2/requests.json": {
            "get": operation(
                "Open311 service requests", open311_auth, read_errors, open311=True, op_id="open311Requests",
                description="`service_request_id` overrides the other parameters. Without `start_date` and "
                            "`end_date`: the last 90 days. `start_date` must not be after `end_date`.",
                parameters=[
                    query("service_request_id", f"Codes (`WX…`) or ids, comma-separated (at most {MAX_IDS}).",
                          pattern(grammar.list_of_codes(MAX_IDS))),
                    query("service_code", "Service codes or category keys, comma-separated.",
                          pattern(grammar.list_of(SERVICE_CODES))),
                    query("start_date", "Requested at or after (a day or a date-time).", pattern(grammar.DATE_TIME)),
                    query("end_date", "Requested at or before (a day or a date-time).", pattern(grammar.DATE_TIME)),
                    query("status", "`open`, `closed` or both, comma-separated.",
                          pattern(grammar.list_of(("open", "closed")))),
                    query("page", "1-based page.", integer(1, MAX_PAGE)),
                    query("page_size", f"Requests per page (default {DEFAULT_PAGE_SIZE}).",
                          integer(1, MAX_PAGE_SIZE))],
                ok={"200": answer("The requests", {"type": "array", "items": ref("Open311Request")})}),
            "post": operation(
                "Open311: create a service request (form-encoded)", [{"open311_api_key": ["ingest"]}],
                (400, 401, 413, 415, 422, 429, 503), open311=True, op_id="open311Create",
                description="Idempotent on `attribute[client_ref]`.",
                body={"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": ref("Open311Form")},
                    "multipart/form-data": {"schema": ref("Open311Form")}}},
                ok={"201": {**answer("Created", ref("Open311Created")), "links": {"GetRequest": {
                    "operationId": "open311Request",
                    "parameters": {"service_request_id": "$response.body#/0/service_request_id"}}}},
                    "200": answer("This client_ref was stored before: its request", ref("Open311Created"))}),
        },
        "/open311/v2/requests/{service_request_id}.json": {
            "get": operation("One Open311 request (a code `WX…` or an id)", open311_auth, (401, 403, 404, 429, 503),
                             open311=True, op_id="open311Request",
                             parameters=[{"name": "service_request_id", "in": "path", "required": True,
                                          "description": "The request's code (`service_request_id`) or id",
                                          "schema": {"type": "string", "minLength": 1}}],
                             ok={"200": answer("A one-element list",
                                               {"type": "array", "items": ref("Open311Request"), "minItems": 1,
                                                "maxItems": 1})}),
        },
    }


def openapi_document(server_url: str = "", root=None, levels=units.LEVELS) -> dict:
    """The document, a fresh copy (the shared pieces above appear in many places: no caller can change them).
    ``root``: the district served (``services.units.root()``: code and names from the geodata) — its name is in
    the title and the description and its code and names in ``info.x-district``; without one, generic words."""
    place_en, place_zh = (root.title("en"), root.name) if root is not None else ("District", "")
    district = {} if root is None else {"x-district": {"code": root.code, "name": root.name,
                                                        "name_en": root.title("en")}}
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": f"{place_en} incidents API ({place_zh}案事件接口)",
            "version": "1.1.0",
            **district,
            "description": (
                f"Incidents (案事件) of {place_en}'s grassroots governance: report, move along the closed loop, "
                "query, follow changes, export. Private by default: reads need a signed-in session (cookie "
                "`wx_session`: leaders, duty officers, admins) or `Authorization: Bearer <token>` with the `read` "
                "scope; writes a token with the `ingest` scope (API_TOKENS `token:scope+scope`; a bare token has "
                "every scope); the audit log and the push outbox a signed-in admin. Personal data (reporter, "
                "phone, marked residents) only for duty officers, admins and tokens with the `personal` scope. "
                "Errors: `{\"error\": {\"code\", \"message\", \"field\"}}` (Open311: `[{\"code\", \"description\"}]`). "
                "An empty query parameter is the same as leaving it out; unknown query parameters and body "
                "properties are ignored. Times are ISO 8601; without an offset they are Beijing time. A method a "
                "URL does not have is a 405 whose `Allow` names those it has."),
        },
        "servers": [{"url": server_url or "/"}],
        "security": READ,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API_TOKENS token. Scopes: `ingest` (reports, lifecycle steps, "
                                         "acknowledging alerts), `read` (the read API), `personal` (read with "
                                         "personal data)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "wx_session",
                            "description": "The session cookie of `POST /login` (roles: leader, duty_officer, admin; "
                                           "acknowledging alerts: duty_officer, admin; audit and outbox: admin)."},
                "open311_api_key": {"type": "apiKey", "in": "query", "name": "api_key",
                                    "description": "Open311's api_key: an API_TOKENS token (also a field of the "
                                                   "POST form)."},
            },
            "schemas": schemas(levels),
            "parameters": {p["name"]: p for p in filter_parameters()},  # the incident filter
            "responses": responses(),
        },
        "paths": paths(levels),
    })
