"""Alerts API (告警), JSON under ``/api/v1`` — see docs/api.md.

- ``GET /api/v1/alerts?status=active|all&after=<seq>&limit=`` — anyone may read (no personal data).
- ``POST /api/v1/alerts/<id>/ack`` — a duty officer's (or admin's) session from this site, or
  ``Authorization: Bearer <API_TOKENS>`` for machine clients.

:func:`snapshot` is the shared, cached view of the active alerts that the Dash banners poll: one query per change
for all viewers.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..context import services
from ..store import alerts as repo
from ..store import catalogue
from ..store.models import utcnow
from .errors import ApiError, check_text, register_blueprint_handlers
from .incidents import _int_param, bearer_token, has_valid_token, iso, sessions

bp = Blueprint("alerts_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)

SNAPSHOT_LIMIT = 100
MAX_DB_INT = 2**63 - 1


def alert_json(alert, inc, hazard_names: dict | None = None) -> dict:
    cat = catalogue.CATEGORIES.get(inc.category)
    zh, en = repo.KINDS.get(alert.kind, (alert.kind, alert.kind))
    return {
        "id": alert.id, "kind": alert.kind, "kind_name": zh, "kind_name_en": en,
        "hazard_code": alert.hazard_code,
        "hazard_name": (hazard_names or {}).get(alert.hazard_code) if alert.hazard_code else None,
        "created_at": iso(alert.created_at), "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by, "active": alert.acknowledged_at is None, "seq": alert.seq,
        "incident": {
            "id": inc.id, "code": inc.code, "category": inc.category,
            "category_name": cat.name_zh if cat else inc.category,
            "category_name_en": cat.name_en if cat else inc.category,
            "severity": inc.severity, "status": inc.status, "description": inc.description,
            "address": inc.address, "lon": inc.lon, "lat": inc.lat, "grid_code": inc.grid_code,
            "zone_code": inc.zone_code, "town_code": inc.town_code, "reported_at": iso(inc.reported_at),
        },
    }


def _hazard_names() -> dict:
    hz = services().geodata().hazards
    return dict(zip(hz["code"], hz["name"]))


def current_seq() -> int:
    with sessions()() as s:
        return repo.current_seq(s)


def snapshot(seq: int | None = None) -> dict:
    """``{"seq", "count", "items"}``: the newest active alerts (≤ 100) as of alert seq ``seq``, cached in the
    shared cache under that seq so every open banner costs one query per change."""
    seq = current_seq() if seq is None else seq
    cache = services().cache
    key = f"alerts:snapshot:{seq}"
    body = cache.get(key)
    if body is None:
        with sessions()() as s:
            rows = repo.list_alerts(s, active_only=True, limit=SNAPSHOT_LIMIT)
            count = repo.active_count(s)
        names = _hazard_names()
        body = {"seq": seq, "count": count, "items": [alert_json(a, i, names) for a, i in rows]}
        cache.set(key, body, timeout=300)
    return body


@bp.get("/alerts")
def list_alerts():
    status = request.args.get("status", "active")
    if status not in ("active", "all"):
        raise ApiError(400, "invalid_value", "status must be active or all", "status")
    after = None if request.args.get("after") in (None, "") else _int_param("after", 0, 0, MAX_DB_INT)
    limit = _int_param("limit", 100, 1, 1000)
    with sessions()() as s:
        last = repo.current_seq(s)
        rows = repo.list_alerts(s, active_only=status == "active", after=after, limit=limit)
        count = repo.active_count(s)
    names = _hazard_names()
    items = [alert_json(a, i, names) for a, i in rows]
    if after is not None:
        last = rows[-1][0].seq if rows else after
    return jsonify({"items": items, "last_seq": last, "active_count": count,
                    "has_more": len(rows) == limit})


@bp.post("/alerts/<int:alert_id>/ack")
def ack(alert_id: int):
    from ..auth import ACT_ROLES, AuthError, authorize

    token = bearer_token()
    if token is not None:
        if not has_valid_token(token):
            raise ApiError(401, "unauthorized", "the token is not valid", "Authorization")
        body = request.get_json(silent=True) if request.get_data(cache=True).strip() else {}
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_type", "the body must be a JSON object", "body")
        by = check_text(body.get("actor"), "actor", max_len=64) or "api"
    else:
        try:
            by = authorize(ACT_ROLES).name
        except AuthError as e:
            raise ApiError(e.status, e.code, e.message, "Authorization") from None
    if alert_id > MAX_DB_INT:
        raise ApiError(404, "not_found", f"no alert with id {alert_id}", "id")
    with sessions()() as s:
        try:
            alert, changed = repo.acknowledge(s, alert_id, by.strip() or "api", now=utcnow())
        except repo.AlertNotFound:
            raise ApiError(404, "not_found", f"no alert with id {alert_id}", "id") from None
        inc = s.get(repo.Incident, alert.incident_id)
        body = alert_json(alert, inc, _hazard_names())
    body["changed"] = changed
    return jsonify(body)


def register(server) -> None:
    """The alerts blueprint, and the hazard registry the ring rule reads (loaded from geodata when empty)."""
    server.register_blueprint(bp)
    svc = server.extensions["wuxing"]
    try:
        with svc.sessions() as s:
            repo.ensure_hazard_registry(s, svc.geodata().hazards)
    except (FileNotFoundError, OSError):  # no geodata: the ring rule has no rings, severity still alerts
        pass
