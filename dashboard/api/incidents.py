"""Incident API, JSON, under ``/api/v1`` — see docs/api.md and ``/api/v1/openapi.json``.

Writes need ``Authorization: Bearer <token>`` with a token from ``settings.api_tokens`` (``API_TOKENS``).
Every bad input is a 4xx JSON error naming the field (``dashboard.api.errors``); nothing is stored then.
"""
from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from ..auth import audience as audience_of
from ..auth import bearer_token, current_principal
from ..context import services
from ..services import audit, filters, serialise, units
from ..store import catalogue, lifecycle
from ..store import incidents as repo
from ..store.models import Incident, Inspection, utcnow
from .errors import ApiError, body_limit, check_int, check_number, check_text, int_param, register_blueprint_handlers

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_DB_INT = 2**63 - 1
BATCH_MAX_ITEMS = 1000
BATCH_MAX_BODY_BYTES = 8 * 1024 * 1024  # 1,000 incidents of ~8 KB each (the other routes keep 1 MB)
LIMITS = {"description": 4000, "address": 255, "reporter": 64, "reporter_phone": 32, "client_ref": 64,
          "actor": 64, "note": 2000, "q": 200, "code": 32}


# ------------------------------------------------------------------------------------------ helpers
def sessions():
    svc = services()
    if svc.sessions is None:
        raise ApiError(503, "store_unavailable", "the incident store is not configured", None)
    return svc.sessions


def has_valid_token(token: str | None, scope: str = "ingest") -> bool:
    """Is ``token`` one of API_TOKENS with ``scope``?"""
    from ..auth import token_scopes

    scopes = token_scopes(token, services().settings.api_tokens)
    return scopes is not None and scope in scopes


def require_token(scope: str = "ingest") -> None:
    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized", "a write token is required: send 'Authorization: Bearer <token>'",
                       "Authorization")
    from ..auth import token_scopes

    scopes = token_scopes(token, services().settings.api_tokens)
    if scopes is None:
        raise ApiError(401, "unauthorized", "the token is not valid", "Authorization")
    if scope not in scopes:
        raise ApiError(403, "forbidden", f"this token lacks the {scope} scope", "Authorization")


def parse_time(value: Any, field: str) -> dt.datetime:
    """ISO 8601 date or date-time (``services.filters.parse_time``: without an offset it is Beijing time); a 400
    naming ``field`` when it is not one."""
    try:
        return filters.parse_time(value, field)
    except filters.FilterError as e:
        raise ApiError(400, e.reason, e.message, e.field) from None


def load_json_body(expected: str = "a JSON object body") -> Any:
    """The request body parsed as JSON (any type); 400 naming ``body`` when it is empty or not JSON."""
    raw = request.get_data(cache=True)  # raises 413 past max_content_length
    if not raw.strip():
        raise ApiError(400, "missing_body", f"{expected} is required", "body")
    try:
        return json.loads(raw, parse_constant=lambda c: float(c.replace("Infinity", "inf")))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {str(e)[:120]}", "body") from None


def parse_json_body() -> dict:
    data = load_json_body()
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_type", "the body must be a JSON object", "body")
    return data


# ---------------------------------------------------------------------------------------- placement
@lru_cache(maxsize=4)
def _district_shape(geodata_dir: str):
    import shapely

    from ..geodata import load_geodata

    geom = load_geodata(geodata_dir).district.geometry.union_all()
    shapely.prepare(geom)
    return geom


def locate_point(lon: float, lat: float, field: str = "location") -> tuple[str, str, str]:
    """(grid, zone, town) codes for a WGS84 point; 422 when it is outside the district (the geodata's root unit)."""
    import shapely

    geo = _geodata()
    grid = geo.locator.locate(lon, lat)
    if grid is None:
        district = _district_shape(str(services().settings.geodata_dir))
        root = units.root(geo)
        if not shapely.intersects_xy(district, lon, lat):
            raise ApiError(422, "outside_district",
                           f"the point ({lon}, {lat}) is outside {root.title('en')} ({root.name})", field)
        raise ApiError(422, "outside_grids", f"the point ({lon}, {lat}) is not inside any grid of {root.title('en')} "
                                             f"({root.name})", field)
    return _placement(geo, grid)


def locate_points(points: list[tuple[float, float]], field: str = "location") -> list[tuple[str, str, str] | ApiError]:
    """:func:`locate_point` for many points: one vectorised grid look-up; a point in no grid gets
    :func:`locate_point`'s own refusal (an ``ApiError``, returned in its place)."""
    if not points:
        return []
    geo = _geodata()
    grids = geo.locator.locate_many([p[0] for p in points], [p[1] for p in points])
    out: list[tuple[str, str, str] | ApiError] = []
    for (lon, lat), grid in zip(points, grids):
        if grid is not None:
            out.append(_placement(geo, grid))
            continue
        try:
            out.append(locate_point(lon, lat, field))
        except ApiError as e:
            if e.status >= 500:
                raise
            out.append(e)
    return out


def _geodata():
    try:
        return services().geodata()
    except (FileNotFoundError, OSError) as e:  # deployment problem, not an input problem
        raise ApiError(503, "geodata_unavailable", f"grid geodata is not available: {e}", None) from None


def _placement(geo, grid) -> tuple[str, str, str]:
    grid = str(grid)
    zone = geo.locator.zone_of(grid) or grid.rsplit("-", 1)[0]
    town = geo.locator.town_of(grid) or zone.rsplit("-", 1)[0]
    return grid, str(zone), str(town)


# ------------------------------------------------------------------------------------ serialisation
def incident_json(inc: Incident, *, now: dt.datetime | None = None, audience: str | None = None) -> dict:
    """The incident as the API sends it (``services.serialise.incident_api``, with the units' names) for whoever
    asks (``audience``: see :func:`dashboard.auth.audience`; default the requester's)."""
    return serialise.incident_api(inc, names=units.names(), now=now, audience=audience or _audience())


def _audience() -> str:
    return audience_of(current_principal())


event_json = serialise.event_api
incident_feature = serialise.incident_feature


# ------------------------------------------------------------------------------------------- create
def validate_new_incident(body: dict, *, default_source: str = "app") -> dict:
    """Check a create payload; return clean values (without placement). Raises ApiError naming the field."""
    category = check_text(body.get("category"), "category", max_len=LIMITS["code"], required=True,
                          allow_empty=False)
    if category not in catalogue.CATEGORIES:
        raise ApiError(422, "unknown_category",
                       f"unknown category {category!r}; see GET /api/v1/catalogue", "category")
    cat = catalogue.CATEGORIES[category]
    sub = check_text(body.get("subcategory"), "subcategory", max_len=64)
    if sub is not None and sub not in cat.subcategories:
        raise ApiError(422, "unknown_subcategory",
                       f"unknown subcategory {sub!r} for {category}; one of {', '.join(cat.subcategories)}",
                       "subcategory")
    severity = check_int(body.get("severity"), "severity", lo=1, hi=4)
    source = check_text(body.get("source"), "source", max_len=16)
    if source is None:
        source = default_source
    elif source not in catalogue.SOURCES:
        raise ApiError(400, "invalid_value", f"source must be one of {', '.join(catalogue.SOURCES)}", "source")
    description = check_text(body.get("description"), "description", max_len=LIMITS["description"],
                             required=True, allow_empty=False)
    address = check_text(body.get("address"), "address", max_len=LIMITS["address"])
    lon = check_number(body.get("lon"), "lon", lo=-180.0, hi=180.0)
    lat = check_number(body.get("lat"), "lat", lo=-90.0, hi=90.0)
    reporter = check_text(body.get("reporter"), "reporter", max_len=LIMITS["reporter"])
    if reporter is not None and not reporter.strip():
        raise ApiError(400, "invalid_value", "reporter must not be empty", "reporter")
    phone = check_text(body.get("reporter_phone"), "reporter_phone", max_len=LIMITS["reporter_phone"])
    persons = check_persons(body.get("persons"))
    client_ref = check_text(body.get("client_ref"), "client_ref", max_len=LIMITS["client_ref"])
    if client_ref is not None and not client_ref.strip():
        raise ApiError(400, "invalid_value", "client_ref must not be empty", "client_ref")
    inspection_id = check_int(body.get("inspection_id"), "inspection_id", lo=1, hi=MAX_DB_INT)
    longstanding = body.get("longstanding", False)
    if longstanding is None:
        longstanding = False
    if not isinstance(longstanding, bool):
        raise ApiError(400, "invalid_type", "longstanding must be true or false", "longstanding")
    reported_at = None
    if body.get("reported_at") is not None:
        reported_at = parse_time(body["reported_at"], "reported_at")  # 2000-2099 (domain.grammar.DATE_TIME)
        if reported_at > utcnow() + dt.timedelta(minutes=5):
            raise ApiError(400, "out_of_range", "reported_at must not be in the future", "reported_at")
    return {"category": category, "subcategory": sub, "severity": severity, "source": source,
            "description": description, "address": address, "lon": lon, "lat": lat,
            "reporter": (reporter or "api").strip(), "reporter_phone": phone, "persons": persons,
            "client_ref": client_ref,
            "inspection_id": inspection_id, "longstanding": longstanding, "reported_at": reported_at}


MAX_PERSONS = 20


def check_persons(value: Any) -> list[str] | None:
    """``persons``: the residents named in the description or address (personal data, masked for audiences that
    may not see it): a list of up to :data:`MAX_PERSONS` names of 1-32 characters."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, "invalid_type", "persons must be a list of names", "persons")
    if len(value) > MAX_PERSONS:
        raise ApiError(400, "too_long", f"persons holds at most {MAX_PERSONS} names", "persons")
    names = []
    for item in value:
        name = check_text(item, "persons", max_len=32, required=True, allow_empty=False)
        if name.strip() not in names:
            names.append(name.strip())
    return names or None


def create_from_clean(clean: dict, *, location_field: str = "location") -> tuple[Incident, bool]:
    """Place and store a validated payload (``validate_new_incident``). Returns ``(incident, created)``."""
    grid, zone, town = locate_point(clean["lon"], clean["lat"], location_field)
    maker = sessions()
    if clean["inspection_id"] is not None:
        with maker() as s:
            if s.get(Inspection, clean["inspection_id"]) is None:
                raise ApiError(422, "unknown_inspection", f"no inspection with id {clean['inspection_id']}",
                               "inspection_id")
    new = repo.NewIncident(grid_code=grid, zone_code=zone, town_code=town, **clean)
    with maker() as s:
        return repo.create_incident(s, new)


@bp.post("/incidents")
def post_incident():
    require_token()
    clean = validate_new_incident(parse_json_body())
    inc, created = create_from_clean(clean)
    # a new incident echoes the client's own data; an existing one (the same client_ref) is shown as the token's
    # scopes allow: a client_ref must not open someone else's report
    body = incident_json(inc, audience="personal" if created else None)
    body.update({"grid": inc.grid_code, "zone": inc.zone_code, "town": inc.town_code, "created": created})
    resp = jsonify(body)
    resp.status_code = 201 if created else 200
    resp.headers["Location"] = url_for("incidents_api.get_one", incident_id=inc.id)
    return resp


# -------------------------------------------------------------------------------------------- batch
def batch_items(data: Any) -> list[dict]:
    """The items of a batch body: ``{"incidents": [...]}`` or a bare array. The envelope is all-or-nothing
    (400 / 413 naming the field); the items' own fields are checked one by one later."""
    field = "body"
    if isinstance(data, dict):
        if data.get("incidents") is None:
            raise ApiError(400, "missing_field", 'incidents is required: {"incidents": [ … ]}', "incidents")
        data, field = data["incidents"], "incidents"
    if not isinstance(data, list):
        raise ApiError(400, "invalid_type", 'the body must be {"incidents": [ … ]} or a JSON array of incidents',
                       field)
    if len(data) > BATCH_MAX_ITEMS:
        raise ApiError(413, "too_many_items", f"a batch holds at most {BATCH_MAX_ITEMS} incidents, this one has "
                                              f"{len(data)}: split it", "incidents", max_items=BATCH_MAX_ITEMS)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ApiError(400, "invalid_type", f"incidents[{i}] must be a JSON object (an incident)",
                           f"incidents[{i}]")
    return data


def _batch_result(index: int, item: dict, *, done: repo.BatchItem | None = None, same_as: int | None = None,
                  error: ApiError | None = None) -> dict:
    ref = item.get("client_ref")
    out = {"index": index, "status": "refused", "id": None, "code": None,
           "client_ref": ref if isinstance(ref, str) and len(ref) <= LIMITS["client_ref"] else None,
           "duplicate_of": same_as, "error": None}
    if done is not None:
        out.update(status="created" if done.created else "existing", id=done.id, code=done.code,
                   client_ref=done.client_ref)
    if error is not None:
        out["error"] = {"field": error.field, "reason": error.code, "message": error.message, "status": error.status}
    return out


@bp.post("/incidents/batch")
@body_limit(BATCH_MAX_BODY_BYTES)
def post_incident_batch():
    """Up to 1,000 incidents in one request, each checked and placed exactly as by ``POST /incidents``, each
    answered on its own (created / existing by client_ref / refused naming the field); the accepted ones are
    stored in one transaction (``repo.create_incidents_batch``)."""
    require_token()
    items = batch_items(load_json_body('a JSON body {"incidents": [ … ]}'))
    results: list[dict | None] = [None] * len(items)
    valid: list[tuple[int, dict]] = []
    for i, item in enumerate(items):
        try:
            valid.append((i, validate_new_incident(item)))
        except ApiError as e:
            results[i] = _batch_result(i, item, error=e)
    accepted: list[tuple[int, repo.NewIncident]] = []
    # a 5xx here (no geodata) is the deployment, not an item: the whole request fails, nothing written
    for (i, clean), place in zip(valid, locate_points([(c["lon"], c["lat"]) for _, c in valid])):
        if isinstance(place, ApiError):
            results[i] = _batch_result(i, items[i], error=place)
        else:
            grid, zone, town = place
            accepted.append((i, repo.NewIncident(grid_code=grid, zone_code=zone, town_code=town, **clean)))
    maker = sessions()
    wanted = {new.inspection_id for _, new in accepted if new.inspection_id is not None}
    if wanted:
        with maker() as s:
            known = repo.existing_inspection_ids(s, wanted)
        keep = []
        for i, new in accepted:
            if new.inspection_id is not None and new.inspection_id not in known:
                results[i] = _batch_result(i, items[i], error=ApiError(
                    422, "unknown_inspection", f"no inspection with id {new.inspection_id}", "inspection_id"))
            else:
                keep.append((i, new))
        accepted = keep
    with maker() as s:
        stored = repo.create_incidents_batch(s, [new for _, new in accepted])
    where = {k: i for k, (i, _) in enumerate(accepted)}  # store position -> item index
    for (i, _), r in zip(accepted, stored):
        if r.id is None:
            results[i] = _batch_result(i, items[i], error=ApiError(
                409, "conflict", f"the store refused this incident: {r.conflict}", None))
        else:
            same_as = where[r.same_as] if r.same_as is not None else None
            results[i] = _batch_result(i, items[i], done=r, same_as=same_as)
    tally = {k: sum(1 for r in results if r["status"] == k) for k in ("created", "existing", "refused")}
    last = max((r.seq for r in stored if r.created), default=None)
    return jsonify({"results": results, **tally, "seq": last})


# --------------------------------------------------------------------------------------- transitions
@bp.post("/incidents/<int:incident_id>/transitions")
def post_transition(incident_id: int):
    require_token()
    body = parse_json_body()
    to = check_text(body.get("to"), "to", max_len=32, required=True, allow_empty=False)
    if to not in lifecycle.STATES:
        raise ApiError(400, "invalid_value", f"to must be one of {', '.join(lifecycle.STATES)}", "to")
    actor = check_text(body.get("actor"), "actor", max_len=LIMITS["actor"], required=True, allow_empty=False)
    role = check_text(body.get("actor_role"), "actor_role", max_len=32, required=True, allow_empty=False)
    if role not in lifecycle.ROLES:
        raise ApiError(400, "invalid_value", f"actor_role must be one of {', '.join(lifecycle.ROLES)}", "actor_role")
    note = check_text(body.get("note"), "note", max_len=LIMITS["note"])
    department = check_text(body.get("department"), "department", max_len=32)
    if department is not None and department not in catalogue.DEPARTMENTS:
        raise ApiError(400, "invalid_value", f"department must be one of {', '.join(catalogue.DEPARTMENTS)}",
                       "department")
    outcome = check_text(body.get("outcome"), "outcome", max_len=16)
    if outcome is not None:
        if outcome not in ("resolved", "unresolved"):
            raise ApiError(400, "invalid_value", "outcome must be resolved or unresolved", "outcome")
        if to != "closed":
            raise ApiError(400, "invalid_value", "outcome is only given when closing (to=closed)", "outcome")
    if incident_id > MAX_DB_INT:
        raise ApiError(404, "not_found", f"no incident with id {incident_id}", "id")
    with sessions()() as s:
        try:
            record = audit.entry("transition", {"to": to, "as": actor.strip(), "role": role,
                                                "department": department, "outcome": outcome, "via": "api"})
            inc, ev = repo.transition(s, incident_id, to, actor=actor.strip(), actor_role=role, note=note,
                                      department=department, outcome=outcome, audit=record)
        except repo.IncidentNotFound:
            raise ApiError(404, "not_found", f"no incident with id {incident_id}", "id") from None
        except lifecycle.TransitionError as e:
            status = {"invalid_transition": 409, "role_not_allowed": 403, "department_required": 400}[e.reason]
            raise ApiError(status, e.reason, e.message, e.field, current_status=e.current,
                           allowed=list(e.allowed)) from None
        who = _audience()
        return jsonify({"incident": incident_json(inc, audience=who),
                        "event": event_json(ev, who, serialise.persons_of(inc))})


# ---------------------------------------------------------------------------------------------- read
def filter_from_args() -> repo.IncidentFilter:
    """The request's incident filter (``services.filters.incident_filter``: the one parser the exports, the map
    layer and the duty desk use too); a refused value is a 400 naming the parameter."""
    try:
        return filters.incident_filter(request.args)
    except filters.FilterError as e:
        raise ApiError(400, e.reason, e.message, e.field) from None


@bp.get("/incidents")
def list_incidents():
    fmt = request.args.get("format") or "json"
    if fmt not in ("json", "geojson"):
        raise ApiError(400, "invalid_value", "format must be json or geojson", "format")
    flt = filter_from_args()
    limit = int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = request.args.get("cursor") or None
    with sessions()() as s:
        try:
            rows, next_cursor = repo.list_incidents(s, flt, limit=limit, cursor=cursor)
        except repo.CursorError:
            raise ApiError(400, "invalid_cursor", "cursor is not valid (use next_cursor from a previous page)",
                           "cursor") from None
    now = flt.now
    if fmt == "geojson":
        body = {"type": "FeatureCollection", "features": [incident_feature(r, now) for r in rows],
                "next_cursor": next_cursor}
        return Response(json.dumps(body, ensure_ascii=False), mimetype="application/geo+json")
    return jsonify({"items": [incident_json(r, now=now) for r in rows], "next_cursor": next_cursor,
                    "limit": limit})


@bp.get("/incidents/<int:incident_id>")
def get_one(incident_id: int):
    if incident_id > MAX_DB_INT:
        raise ApiError(404, "not_found", f"no incident with id {incident_id}", "id")
    with sessions()() as s:
        inc = repo.get_incident(s, incident_id)
        if inc is None:
            raise ApiError(404, "not_found", f"no incident with id {incident_id}", "id")
        events = repo.events_of(s, incident_id)
    body = incident_json(inc)
    who = _audience()
    body["events"] = [event_json(e, who, serialise.persons_of(inc)) for e in events]
    return jsonify(body)


@bp.get("/changes")
def changes():
    after = int_param("after", 0, 0, MAX_DB_INT)
    limit = int_param("limit", 500, 1, MAX_LIMIT)
    with sessions()() as s:
        rows, last = repo.changes_after(s, after, limit=limit)
    now = utcnow()
    return jsonify({"items": [incident_json(r, now=now) for r in rows], "last_seq": last,
                    "has_more": len(rows) == limit})


@bp.get("/catalogue")
def get_catalogue():
    body = catalogue.as_dict()
    body["states"] = [{"key": k, "name": zh, "name_en": en, "open": k != "closed",
                       "next": list(lifecycle.next_states(k))} for k, (zh, en) in lifecycle.STATES.items()]
    body["levels"] = [{"key": k, "name": zh, "name_en": en} for k, (zh, en) in lifecycle.LEVELS.items()]
    body["roles"] = [{"key": k, "name": zh, "name_en": en} for k, (zh, en) in lifecycle.ROLES.items()]
    return jsonify(body)


@bp.get("/openapi.json")
def openapi():
    from .openapi import openapi_document

    return jsonify(openapi_document(services().settings.public_url, root=units.root(),
                                    levels=units.hierarchy().levels))  # not the Host header: PUBLIC_URL or "/"
