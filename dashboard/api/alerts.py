"""Alerts API (告警), JSON under ``/api/v1`` — see docs/api.md.

- ``GET /api/v1/alerts?status=active|all&after=<seq>&limit=`` — anyone may read (no personal data).
- ``POST /api/v1/alerts/<id>/ack`` — a duty officer's (or admin's) session from this site, or
  ``Authorization: Bearer <API_TOKENS>`` for machine clients.

The data comes from :mod:`dashboard.services.alerts` (also what the Dash banners poll).
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..services import alerts as service
from ..store import alerts as repo
from ..store.models import utcnow
from .errors import ApiError, check_text, int_param, register_blueprint_handlers
from .incidents import bearer_token, has_valid_token

bp = Blueprint("alerts_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)

MAX_DB_INT = 2**63 - 1


@bp.get("/alerts")
def list_alerts():
    status = request.args.get("status") or "active"
    if status not in ("active", "all"):
        raise ApiError(400, "invalid_value", "status must be active or all", "status")
    after = int_param("after", None, 0, MAX_DB_INT)
    limit = int_param("limit", 100, 1, 1000)
    return jsonify(service.feed(active_only=status == "active", after=after, limit=limit))


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
    try:
        body, changed = service.acknowledge(alert_id, by.strip() or "api", now=utcnow())
    except repo.AlertNotFound:
        raise ApiError(404, "not_found", f"no alert with id {alert_id}", "id") from None
    body["changed"] = changed
    return jsonify(body)


def register(server) -> None:
    """The alerts blueprint, and the hazard registry the ring rule reads (loaded from geodata when empty)."""
    server.register_blueprint(bp)
    service.ensure_hazard_registry(server.extensions["dashboard"])
