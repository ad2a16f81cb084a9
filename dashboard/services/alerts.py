"""Alerts (告警) for every front door: the shared snapshot the banners poll, the feed, acknowledging.

:func:`snapshot` is the cached view of the active alerts: one query per change for all viewers (the duty desk's
banner and feed, the wall, ``GET /api/v1/alerts`` has its own paging).
"""
from __future__ import annotations

from .. import context
from ..store import alerts as repo
from ..store import incidents as incident_repo
from . import db
from .serialise import alert_api

SNAPSHOT_LIMIT = 100


def hazard_names() -> dict:
    """``{hazard code: name}`` of every hazard site (for an alert's ``hazard_name``)."""
    hz = context.services().geodata().hazards
    return dict(zip(hz["code"], hz["name"]))


def current_seq() -> int:
    """The alert feed's latest sequence (a new alert or an acknowledgement moves it)."""
    with db.session() as s:
        return repo.current_seq(s)


def snapshot(seq: int | None = None) -> dict:
    """``{"seq", "count", "items"}``: the newest active alerts (≤ 100) as of alert seq ``seq``, cached in the
    shared cache under that seq so every open banner costs one query per change."""
    seq = current_seq() if seq is None else seq
    from ..cache import remember

    def build():
        with db.session() as s:
            rows = repo.list_alerts(s, active_only=True, limit=SNAPSHOT_LIMIT)
            count = repo.active_count(s)
        names = hazard_names()
        return {"seq": seq, "count": count, "items": [alert_api(a, i, names) for a, i in rows]}

    return remember(context.services().cache, f"alerts:snapshot:{seq}", 300, build)


def feed(*, active_only: bool, after: int | None, limit: int) -> dict:
    """``GET /api/v1/alerts``: ``{"items", "last_seq", "active_count", "has_more"}``."""
    with db.session() as s:
        last = repo.current_seq(s)
        rows = repo.list_alerts(s, active_only=active_only, after=after, limit=limit)
        count = repo.active_count(s)
    names = hazard_names()
    if after is not None:
        last = rows[-1][0].seq if rows else after
    return {"items": [alert_api(a, i, names) for a, i in rows], "last_seq": last, "active_count": count,
            "has_more": len(rows) == limit}


def acknowledge(alert_id: int, by: str, *, now=None) -> tuple[dict, bool]:
    """Acknowledge one alert as ``by``: ``(alert JSON, changed)``; acknowledging twice changes nothing. Raises
    ``store.alerts.AlertNotFound``. Who may do it is the caller's check; the audit log records who did it (in the
    same transaction)."""
    from . import audit

    with db.session() as s:
        alert, changed = repo.acknowledge(s, alert_id, by, now=now, audit=audit.entry("alert_ack", {"as": by}))
        inc = incident_repo.get_incident(s, alert.incident_id)
        body = alert_api(alert, inc, hazard_names())
    return body, changed


def ensure_hazard_registry(svc) -> int:
    """Load the hazard registry the ring rule reads from geodata when it is empty (at start; ``svc``: the app's
    ``context.Services``). Returns the number loaded; 0 when it was there or there is no geodata."""
    try:
        with svc.sessions() as s:
            return repo.ensure_hazard_registry(s, svc.geodata().hazards)
    except (FileNotFoundError, OSError):  # no geodata: the ring rule has no rings, severity still alerts
        return 0
