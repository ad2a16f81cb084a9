"""The audit log as the front doors use it: who asks and from where (``entry``), recording an event that changes
nothing else (``record``), the admins' reading and export (``page``, ``rows``) and the tokens' fingerprint at start
(``note_token_changes``). Writes that change data pass :func:`entry` to the store, which records it in their own
transaction (``store.incidents.transition``, ``store.alerts.acknowledge``)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Mapping

from ..domain import grammar, timefmt
from ..store import audit as repo
from ..store.models import utcnow
from . import db

log = logging.getLogger(__name__)
ACTIONS = repo.ACTIONS
MAX_ACTIONS = 100
ACTION_LIST = grammar.list_of(ACTIONS, MAX_ACTIONS)  # the form of ``action`` (also the OpenAPI document's)
MAX_PAGE = 500
EXPORT_MAX_ROWS = 100_000
COLUMNS = (("at", "时间", "Time"), ("actor", "操作人", "Actor"), ("role", "角色", "Role"),
           ("address", "来源地址", "Address"), ("action", "操作", "Action"), ("target", "对象", "Target"),
           ("detail", "详情", "Detail"))


def requester() -> tuple[str, str, str | None]:
    """(actor, role, address) of the current request; ("system", "system", None) outside one."""
    from flask import has_request_context, request

    from ..auth import current_principal

    if not has_request_context():
        return "system", "system", None
    who = current_principal()
    address = request.remote_addr
    if who is None:
        return "anonymous", "anonymous", address
    if who.kiosk:
        return "kiosk", "wall", address
    return who.username, who.role, address


def entry(action: str, detail: Mapping | None = None, *, actor: str | None = None, role: str | None = None) -> dict:
    """The audit fields of ``action`` by the current requester (for a store write to record in its transaction)."""
    who, who_role, address = requester()
    return {"actor": actor or who, "role": role or who_role, "address": address, "action": action,
            "detail": dict(detail) if detail else None}


def record(action: str, target: str | None = None, detail: Mapping | None = None, *, actor: str | None = None,
           role: str | None = None, address: str | None = None) -> None:
    """Record an event that changes nothing else (sign-in, export …) in a transaction of its own. A failure to
    record is logged, and raised: an action the log cannot hold does not happen silently."""
    fields = entry(action, detail, actor=actor, role=role)
    if address is not None:
        fields["address"] = address
    with db.session() as s:
        repo.record(s, at=utcnow(), target=target, **fields)


def page(flt: repo.AuditFilter, *, limit: int = 200, before_id: int | None = None) -> tuple[list, int]:
    """(newest entries first, total matching)."""
    limit = max(1, min(limit, MAX_PAGE))
    with db.session() as s:
        return repo.entries(s, flt, limit=limit, before_id=before_id), repo.count(s, flt)


def as_dict(e) -> dict:
    return {"id": e.id, "at": timefmt.iso_utc(e.at), "actor": e.actor, "role": e.role, "address": e.address,
            "action": e.action, "target": e.target, "detail": e.details}


def rows(flt: repo.AuditFilter, lang: str) -> list[list]:
    """Export rows (:data:`COLUMNS` order), newest first, at most :data:`EXPORT_MAX_ROWS`."""
    import json

    with db.session() as s:
        found = repo.entries(s, flt, limit=EXPORT_MAX_ROWS)
    out = []
    for e in found:
        name = ACTIONS.get(e.action, (e.action, e.action))[1 if lang == "en" else 0]
        out.append([timefmt.beijing(e.at, timefmt.SECOND), e.actor, e.role, e.address or "", name, e.target or "",
                    json.dumps(e.details, ensure_ascii=False) if e.detail else ""])
    return out


def token_mark(token: str) -> str:
    """A short fingerprint of a configured token for the log (never the token): the auth module's mark, cut."""
    from ..auth import token_mark as mark

    return mark(token)[:12]


def note_token_changes(settings) -> None:
    """At start: when the configured API and wall tokens differ from the last recorded set, record which
    fingerprints were added and removed (``tokens_changed``)."""
    from ..auth import parse_token_entry

    api = (parse_token_entry(e) for e in settings.api_tokens if e)
    now = {"api": sorted(token_mark(tok) + ":" + "+".join(sorted(scopes)) for tok, scopes in api),
           "wall": sorted(token_mark(t) for t in settings.wall_tokens if t)}
    with db.session() as s:
        last = repo.last_of(s, "tokens_changed")
        before = last.details.get("now", {}) if last is not None else {}
        if before == now:
            return
        detail = {"now": now}
        for kind in ("api", "wall"):
            detail[f"{kind}_added"] = sorted(set(now[kind]) - set(before.get(kind, [])))
            detail[f"{kind}_removed"] = sorted(set(before.get(kind, [])) - set(now[kind]))
        repo.record(s, at=utcnow(), actor="system", role="system", action="tokens_changed", detail=detail)
    log.info("API / wall tokens changed since the last start: recorded in the audit log")


def parse_filter(args: Mapping) -> repo.AuditFilter:
    """The audit filter from query parameters (``action`` comma list, ``actor``, ``target``, ``from``, ``to`` as
    dates or date-times, Beijing time without an offset). Raises ``filters.FilterError``."""
    from .filters import FilterError, parse_time

    raw = str(args.get("action") or "")
    if not grammar.matches(ACTION_LIST, raw):
        unknown = [a for a in grammar.items(raw) if a not in ACTIONS]
        raise FilterError("action", "invalid_value", f"unknown action {unknown[0][:32]!r}" if unknown else
                          f"action must be a comma-separated list of at most {MAX_ACTIONS} actions")
    actions = list(dict.fromkeys(grammar.items(raw)))
    actor, target = (str(args.get(k) or "") for k in ("actor", "target"))
    for key, value in (("actor", actor), ("target", target)):
        if len(value) > 64 or "\x00" in value:
            raise FilterError(key, "invalid_value", f"{key} is at most 64 characters, without NUL")
    actor, target = actor.strip(), target.strip()
    since = parse_time(args["from"], "from") if args.get("from") else None
    until = parse_time(args["to"], "to") if args.get("to") else None
    if until is not None and len(str(args["to"])) <= 10:
        until = until + dt.timedelta(days=1)  # a date: the whole day
    if since and until and since >= until:
        raise FilterError("from", "invalid_value", "from must be before to")
    return repo.AuditFilter(actions=actions or None, actor=actor or None, target=target or None, since=since,
                            until=until)
