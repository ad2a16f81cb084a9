"""``GET /api/v1/notify/outbox`` — the alert push's delivery state for admins (the access policy's ADMIN class):
the configured channels (URLs masked), rows per channel and state, the newest outbox rows (``state``, ``channel``,
``limit`` ≤ 500, ``before`` pages back). Requeueing a dead row is the admin page's action (audited) or
``python -m dashboard notify requeue ID``."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..domain import grammar
from ..services import notify as service
from .errors import ApiError, choice_param, int_param, register_blueprint_handlers

bp = Blueprint("notify_api", __name__, url_prefix="/api/v1/notify")
register_blueprint_handlers(bp)  # the access policy (admins only), JSON errors
MAX_DB_INT = 2**63 - 1


@bp.get("/outbox")
def outbox_json():
    state = choice_param("state", service.STATES, None)
    channel = request.args.get("channel") or None
    if channel is not None and not grammar.matches(grammar.CHANNEL, channel):
        raise ApiError(400, "invalid_value", "channel must be a channel key such as dingtalk-0123456789", "channel")
    limit = int_param("limit", 100, 1, service.MAX_PAGE)
    before = int_param("before", None, 1, MAX_DB_INT)
    return jsonify(service.outbox(state=state, channel=channel, limit=limit, before_id=before))
