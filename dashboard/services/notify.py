"""告警推送 Alert push to group robots: DingTalk custom robots (signed), WeCom group robots and JSON webhooks.

- **Channels** come from the settings (``NOTIFY_DINGTALK=<url>|<secret>,…``, ``NOTIFY_WECOM``, ``NOTIFY_WEBHOOK``):
  :func:`channels`. A channel's key (``dingtalk-<10 hex of sha256(url)>``) names it in the outbox; its URL and
  secret are never logged nor shown: :attr:`Channel.target` is the masked form, :func:`scrub` cleans any text.
- **Queueing** is the store's (``store.outbox.enqueue``, in the transaction that raises the alert); :func:`routes`
  is what ``create_app`` hands the session factory so it knows the channels.
- **Messages** (:func:`build_message`): the incident's code and number, category, severity, town / zone / grid
  names, why it alerted and a link to ``PUBLIC_URL/incidents?incident=<id>`` (the duty desk opened on it). Group
  chats are no personal-data audience: no reporter, phone, resident, description or address.
- **Sending** (:func:`post`): DingTalk ``?timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256("<ms>\\n<secret>")>``
  and a markdown message; WeCom ``{"msgtype": "markdown", "markdown": {"content": …}}``; a webhook gets the JSON of
  the alert with its stable ``id`` and an ``Idempotency-Key`` header. Success: HTTP 2xx and, for the robots,
  ``errcode == 0`` in the answer. Redirects are not followed.
- **Dispatching** (:class:`Dispatcher`): claim due rows under a lease, post each with a short timeout, mark it sent
  or schedule the next attempt (exponential back-off with jitter, capped) or, after ``NOTIFY_MAX_ATTEMPTS``, dead.
  ``python -m dashboard serve`` runs one in a thread of its own process (one per server, whatever the number of
  gunicorn workers); ``python -m dashboard notify run`` runs one in the foreground. Any number may run at once.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from ..domain.timefmt import MINUTE, beijing, iso_utc
from ..domain.vocab import ALERT_KINDS, pick
from ..i18n import t
from ..store import catalogue
from ..store import outbox as repo
from ..store.models import utcnow

log = logging.getLogger(__name__)
KINDS = ("dingtalk", "wecom", "webhook")
KIND_NAMES = {"dingtalk": ("钉钉群机器人", "DingTalk robot"), "wecom": ("企业微信群机器人", "WeCom robot"),
              "webhook": ("Webhook", "Webhook")}
STATES = repo.STATES
RowNotFound = repo.OutboxRowNotFound
ANSWER_MAX = 64 * 1024  # bytes of an answer read
USER_AGENT = "wx-dashboard-notify/1"
MAX_PAGE = 500


class ConfigError(ValueError):
    """A NOTIFY_* entry that is no usable channel (the message names the variable and entry number, never the
    entry: it holds secrets)."""


# ------------------------------------------------------------------------------------------- channels
@dataclass(frozen=True)
class Channel:
    key: str
    kind: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        """The URL with its secrets masked (for logs and the admin page)."""
        return mask_url(self.url)

    def secrets(self) -> list[str]:
        """Every part of the configuration that must not appear in a log or an error text."""
        parts = urllib.parse.urlsplit(self.url)
        out = [self.url, self.secret or "", parts.username or "", parts.password or ""]
        out += [v for _, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
        shown = _shown_segment(parts.path)
        out += [s for s in parts.path.split("/") if s and s != shown]  # a key in the path (generic webhooks)
        return sorted({s for s in out if len(s) >= 4}, key=len, reverse=True)


def _shown_segment(path: str) -> str | None:
    """The first path segment when it is a plain word (``robot``, ``cgi-bin``, ``hooks``): shown; anything with a
    digit or longer than 16 characters may be a key and is not."""
    first = next((s for s in path.split("/") if s), None)
    if first and len(first) <= 16 and all(c.isascii() and (c.isalpha() or c in "-_.") for c in first):
        return first
    return None


def mask_url(url: str) -> str:
    """``scheme://host[:port]/<first path segment when plain>/…?<name>=***`` — enough to tell robots apart, no
    secret (user info, query values and the rest of the path are never shown)."""
    p = urllib.parse.urlsplit(url)
    host = (p.hostname or "?") + (f":{p.port}" if p.port else "")
    segments = [s for s in p.path.split("/") if s]
    shown = _shown_segment(p.path)
    path = ("/" + shown if shown else "") + ("/…" if len(segments) > (1 if shown else 0) else "")
    query = "&".join(f"{k}=***" for k, _ in urllib.parse.parse_qsl(p.query, keep_blank_values=True))
    return f"{p.scheme}://{host}{path}" + (f"?{query}" if query else "")


def scrub(text: str, channel: Channel | None) -> str:
    """``text`` with every secret part of ``channel`` replaced by ``***``."""
    if channel is not None:
        for secret in channel.secrets():
            text = text.replace(secret, "***")
    return text


def _key(kind: str, url: str) -> str:
    return f"{kind}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def _valid_url(url: str) -> bool:
    p = urllib.parse.urlsplit(url)
    return p.scheme in ("http", "https") and bool(p.hostname) and not any(c.isspace() for c in url)


def channels(settings) -> tuple[Channel, ...]:
    """The configured channels (a URL listed twice is one channel). Raises :class:`ConfigError`."""
    found: dict[str, Channel] = {}
    for kind, var, entries in (("dingtalk", "NOTIFY_DINGTALK", settings.notify_dingtalk),
                               ("wecom", "NOTIFY_WECOM", settings.notify_wecom),
                               ("webhook", "NOTIFY_WEBHOOK", settings.notify_webhook)):
        for i, entry in enumerate(entries, 1):
            url, _, secret = entry.partition("|") if kind == "dingtalk" else (entry, "", "")
            url, secret = url.strip(), secret.strip()
            if not _valid_url(url):
                raise ConfigError(f"{var} entry {i} is not an http(s) URL")
            if kind == "dingtalk" and "|" in entry and not secret:
                raise ConfigError(f"{var} entry {i} has an empty secret after '|'")
            ch = Channel(_key(kind, url), kind, url, secret or None)
            found.setdefault(ch.key, ch)
    return tuple(found.values())


def routes(settings) -> repo.Routes | None:
    """Where the app's sessions queue new alerts (``store.session_factory(…, notify=…)``); None: no channel."""
    keys = tuple(c.key for c in channels(settings))
    return repo.Routes(keys, settings.notify_min_severity) if keys else None


def channel_rows(settings, lang: str = "zh") -> list[dict]:
    """The configured channels as the admin page and API show them (masked)."""
    return [{"key": c.key, "kind": c.kind, "kind_name": pick(KIND_NAMES[c.kind], lang), "target": c.target,
             "signed": bool(c.secret)} for c in channels(settings)]


# ------------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Message:
    id: str  # the stable message id (the outbox's alert key): receivers count and de-duplicate by it
    title: str
    markdown: str
    link: str
    data: dict  # the webhook's JSON body


def detail_link(settings, incident_id: int, lang: str) -> str:
    """The duty desk opened on the incident: ``PUBLIC_URL/incidents?incident=<id>`` (relative without
    PUBLIC_URL)."""
    return f"{settings.public_url}/incidents?incident={incident_id}" + ("&lang=en" if lang == "en" else "")


def build_message(row: repo.Claimed, settings, unit_names: dict, hazard_names: dict, lang: str = "zh") -> Message:
    """The message for a claimed outbox row. ``unit_names``: ``{code: (zh, en)}`` of towns, zones and grids
    (``services.units.names``); ``hazard_names``: ``{hazard code: name}``."""
    cat = catalogue.get(row.category) if row.category in catalogue.CATEGORIES else None
    category = (cat.name_en if lang == "en" else cat.name_zh) if cat else row.category
    if cat is not None and row.subcategory:
        category += " / " + pick(cat.subcategory_names(row.subcategory), lang)
    severity = pick(catalogue.SEVERITY_NAMES.get(row.severity), lang, str(row.severity))
    place = " / ".join(pick(unit_names.get(code), lang, code) for code in (row.town_code, row.zone_code,
                                                                            row.grid_code) if code)
    kind_name = pick(ALERT_KINDS.get(row.kind), lang, row.kind)
    if row.kind == "hazchem_ring":
        hazard = hazard_names.get(row.hazard_code) or row.hazard_code or "?"
        reason = t("notify_reason_ring", lang, hazard=hazard, code=row.hazard_code or "?")
    else:
        reason = t("notify_reason_high", lang, severity=severity, level=row.severity)
    link = detail_link(settings, row.incident_id, lang)
    title = t("notify_title", lang, kind=kind_name, code=row.code)
    lines = [(t("notify_incident", lang), f"{row.code} (#{row.incident_id})"),
             (t("notify_category", lang), category), (t("notify_severity", lang), f"{severity} ({row.severity})"),
             (t("notify_place", lang), place), (t("notify_reason", lang), reason),
             (t("notify_time", lang), beijing(row.reported_at, MINUTE) + t("notify_beijing", lang))]
    body = "\n".join(f"- **{label}**: {value}" for label, value in lines)
    more = (f"[{t('notify_open', lang)}]({link})" if link.startswith(("http://", "https://"))
            else f"{t('notify_open', lang)}: {link}")
    markdown = f"### {title}\n{body}\n\n{more}"
    data = {
        "id": row.alert_key, "type": "wuxing.alert", "title": title, "text": markdown, "url": link,
        "alert": {"id": row.alert_id, "kind": row.kind, "kind_name": kind_name, "reason": reason,
                  "hazard_code": row.hazard_code, "hazard_name": hazard_names.get(row.hazard_code),
                  "created_at": iso_utc(row.alert_created_at)},
        "incident": {"id": row.incident_id, "code": row.code, "category": row.category,
                     "category_name": category, "severity": row.severity, "severity_name": severity,
                     "reported_at": iso_utc(row.reported_at),
                     **{level: {"code": code, "name": pick(unit_names.get(code), lang, code)}
                        for level, code in (("town", row.town_code), ("zone", row.zone_code),
                                            ("grid", row.grid_code))}},
    }
    return Message(row.alert_key, title, markdown, link, data)


# ---------------------------------------------------------------------------------------------- sending
@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None  # scrubbed: safe to log and store


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64 of HMAC-SHA256 over ``"<timestamp>\\n<secret>"`` keyed with the secret,
    URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def request_for(channel: Channel, message: Message, *, now_ms: int | None = None) -> urllib.request.Request:
    """The HTTP request that carries ``message`` to ``channel``."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    url = channel.url
    if channel.kind == "dingtalk":
        body = {"msgtype": "markdown", "markdown": {"title": message.title, "text": message.markdown}}
        if channel.secret:
            ts = int(time.time() * 1000) if now_ms is None else now_ms
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(channel.secret, ts)}"
    elif channel.kind == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": message.markdown}}
    else:
        body = message.data
        headers["Idempotency-Key"] = message.id
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return urllib.request.Request(url, data=data, headers=headers, method="POST")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a robot URL that redirects is misconfigured: fail, do not follow
        return None


def _opener():
    return urllib.request.build_opener(_NoRedirect)


def _why(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        e = e.reason if isinstance(e.reason, BaseException) else OSError(str(e.reason))
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return f"{type(e).__name__}: {e.strerror}"
    return type(e).__name__


def post(channel: Channel, message: Message, *, timeout: float, now_ms: int | None = None) -> Outcome:
    """Send ``message`` to ``channel`` once. Never raises for what the network or the robot does."""
    req = request_for(channel, message, now_ms=now_ms)
    try:
        with _opener().open(req, timeout=timeout) as resp:
            status = resp.status
            raw = resp.read(ANSWER_MAX)
    except Exception as e:  # noqa: BLE001 - every failure is an outcome to retry
        return Outcome(False, scrub(_why(e), channel))
    if not 200 <= status < 300:
        return Outcome(False, f"HTTP {status}")
    if channel.kind == "webhook":
        return Outcome(True)
    try:
        answer = json.loads(raw.decode("utf-8"))
    except ValueError:
        return Outcome(False, "answer is not JSON")
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if code == 0:
        return Outcome(True)
    msg = str(answer.get("errmsg", ""))[:160] if isinstance(answer, dict) else ""
    return Outcome(False, scrub(f"errcode {code}: {msg}", channel))


# ------------------------------------------------------------------------------------------ dispatcher
def backoff_s(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempts + 1``: ``base·2^(attempts-1)`` capped at ``cap``, the upper half of it
    drawn at random (jitter, so retries of many rows and dispatchers spread out)."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


def default_owner() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}"


class Dispatcher:
    """Takes due outbox rows of the configured channels and sends them (see the module doc). ``sessions``: a
    session factory of the store; ``send``: :func:`post` (tests may wrap it)."""

    def __init__(self, settings, sessions, *, owner: str | None = None, clock: Callable[[], dt.datetime] = utcnow,
                 send: Callable[..., Outcome] = post, rng: random.Random | None = None,
                 names: tuple[dict, dict] | None = None):
        self.settings = settings
        self.sessions = sessions
        self.channels = {c.key: c for c in channels(settings)}
        self.owner = owner or default_owner()
        self.clock = clock
        self.send = send
        self.rng = rng or random.Random()
        self._names = names
        # rows leased per claim: sending them one after the other must fit well inside the lease
        self.batch = max(1, min(20, int(settings.notify_lease_s // (3 * settings.notify_timeout_s))))

    def names(self) -> tuple[dict, dict]:
        """(unit names, hazard names), read from the geodata on first use."""
        if self._names is None:
            from ..geodata import load_geodata
            from . import units

            gd = load_geodata(self.settings.geodata_dir)
            self._names = (units.names(gd), dict(zip(gd.hazards["code"], gd.hazards["name"])))
        return self._names

    def run_once(self, stop: threading.Event | None = None) -> dict:
        """Claim one batch of due rows and send them. ``{"claimed", "sent", "retry", "dead", "lost"}``."""
        out = {"claimed": 0, "sent": 0, "retry": 0, "dead": 0, "lost": 0}
        if not self.channels:
            return out
        s = self.settings
        with self.sessions() as session:
            claimed = repo.claim(session, list(self.channels), owner=self.owner, now=self.clock(),
                                 lease_s=s.notify_lease_s, limit=self.batch)
        out["claimed"] = len(claimed)
        for i, row in enumerate(claimed):
            if stop is not None and stop.is_set():  # shutting down: hand the rest back at once
                with self.sessions() as session:
                    for rest in claimed[i:]:
                        repo.release(session, rest.id, rest.token)
                break
            out[self._deliver(row)] += 1
        return out

    def _deliver(self, row: repo.Claimed) -> str:
        s = self.settings
        channel = self.channels[row.channel]
        try:
            units, hazards = self.names()
            message = build_message(row, s, units, hazards, s.language)
            outcome = self.send(channel, message, timeout=s.notify_timeout_s)
        except Exception as e:  # noqa: BLE001 - a bug or missing geodata: counted as a failed attempt
            log.exception("notify: building or sending %s failed", row.alert_key)
            outcome = Outcome(False, scrub(type(e).__name__, channel))
        with self.sessions() as session:
            if outcome.ok:
                if repo.mark_sent(session, row.id, row.token, now=self.clock()):
                    log.info("notify: %s sent to %s (%s), attempt %d", row.alert_key, channel.key, channel.target,
                             row.attempts)
                    return "sent"
                log.warning("notify: %s sent to %s after its lease ran out (another dispatcher may send it too)",
                            row.alert_key, channel.key)
                return "lost"
            error = scrub(outcome.error or "failed", channel)
            if row.attempts >= s.notify_max_attempts:
                kept = repo.mark_failed(session, row.id, row.token, error=error, retry_at=None)
                log.error("notify: %s to %s (%s) given up after %d attempts: %s", row.alert_key, channel.key,
                          channel.target, row.attempts, error)
                return "dead" if kept else "lost"
            wait = backoff_s(row.attempts, s.notify_backoff_s, s.notify_backoff_max_s, self.rng)
            kept = repo.mark_failed(session, row.id, row.token, error=error,
                                    retry_at=self.clock() + dt.timedelta(seconds=wait))
            log.warning("notify: %s to %s (%s) failed (attempt %d: %s); next try in %.1f s", row.alert_key,
                        channel.key, channel.target, row.attempts, error, wait)
            return "retry" if kept else "lost"

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set: a full batch is followed by the next at once, otherwise wait
        ``NOTIFY_POLL`` seconds. A store that is down is waited out (logged, never raised)."""
        s = self.settings
        log.info("notify: dispatcher %s for %s", self.owner,
                 ", ".join(f"{c.key} ({c.target})" for c in self.channels.values()) or "no channel")
        if self.channels and not s.public_url:
            log.warning("notify: PUBLIC_URL is not set: messages carry a relative link to the incident")
        failures = 0
        while not stop.is_set():
            try:
                done = self.run_once(stop)
                failures = 0
            except Exception as e:  # noqa: BLE001 - store down or restarting: wait and try again
                failures += 1
                log.warning("notify: dispatcher cannot reach the store (%s); retrying", type(e).__name__)
                stop.wait(min(30.0, s.notify_poll_s * 2 ** min(failures, 5)))
                continue
            if done["claimed"] < self.batch:
                stop.wait(s.notify_poll_s)


def start_dispatcher(settings, *, engine=None) -> tuple[threading.Thread, threading.Event] | None:
    """Run a :class:`Dispatcher` in a daemon thread of this process (``python -m dashboard serve``). None when no
    channel is configured or ``NOTIFY_DISPATCH=0``. Stop it by setting the returned event."""
    if not settings.notify_dispatch or not channels(settings):
        return None
    from ..store import make_engine, session_factory

    engine = engine or make_engine(settings.sqlalchemy_url)
    dispatcher = Dispatcher(settings, session_factory(engine))
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="notify-dispatcher", daemon=True)
    thread.start()
    return thread, stop


# ------------------------------------------------------------------------------------ the front doors
def view_dict(v: repo.OutboxView, now: dt.datetime) -> dict:
    return {"id": v.id, "alert_id": v.alert_id, "message_id": v.alert_key, "incident_id": v.incident_id,
            "incident_code": v.incident_code, "channel": v.channel, "state": v.state, "sending": v.leased(now),
            "attempts": v.attempts, "next_attempt_at": iso_utc(v.next_attempt_at) if v.state == "pending" else None,
            "last_error": v.last_error, "created_at": iso_utc(v.created_at), "sent_at": iso_utc(v.sent_at)}


def outbox(*, state: str | None = None, channel: str | None = None, limit: int = 100,
           before_id: int | None = None, sessions=None, settings=None) -> dict:
    """``GET /api/v1/notify/outbox`` (and ``notify status``): ``{"channels", "unconfigured", "counts", "items",
    "next_before"}`` — the configured channels (masked), rows per channel and state, the newest rows first.
    ``sessions`` / ``settings``: a session factory and settings (default: the app's)."""
    from .. import context
    from . import db

    if sessions is None:
        sessions, settings = db.session, settings or context.services().settings
    limit = max(1, min(limit, MAX_PAGE))
    with sessions() as s:
        items = repo.listing(s, state=state, channel=channel, limit=limit, before_id=before_id)
        counts = repo.counts(s)
    now = utcnow()
    by_channel: dict[str, dict] = {}
    for (ch, st), n in sorted(counts.items()):
        by_channel.setdefault(ch, {k: 0 for k in STATES})[st] = n
    configured = channel_rows(settings)
    return {"channels": configured,
            "unconfigured": sorted(set(by_channel) - {c["key"] for c in configured}),  # rows no channel here sends
            "counts": by_channel, "items": [view_dict(v, now) for v in items],
            "next_before": items[-1].id if len(items) == limit else None}


def requeue(row_id: int, *, sessions=None, audit: dict | None = None) -> tuple[dict, bool]:
    """Put a dead row back in the queue: ``(row, changed)``. Raises :data:`RowNotFound`. The audit
    log records who did it (``notify_requeue``) in the same transaction; default: the current requester."""
    from . import audit as audit_service
    from . import db

    entry = audit if audit is not None else audit_service.entry("notify_requeue")
    with (sessions or db.session)() as s:
        view, changed = repo.requeue(s, row_id, audit=entry)
    return view_dict(view, utcnow()), changed
