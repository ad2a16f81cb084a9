"""Rate limits (限流), shared by all workers: the ``limits`` library (the core of Flask-Limiter) with the Redis
storage when the cache is Redis (``CACHE_URL`` / ``REDIS_URL``), else in the process's memory (the embedded default:
each worker counts for itself). Moving windows, one rule per kind of request (:data:`RULES`, each overridable by
the environment, ``RATE_LIMITS=0`` turns them off):

- ``login_address`` and ``login_name`` — ``POST /login`` per client address and per user name (on top of the
  account lockout, which counts wrong passwords);
- ``ingest`` — writes per API token (``POST /api/v1/incidents``, ``…/batch``, transitions, Open311 posts);
- ``read`` — reads of the API per user or token; ``expensive`` — exports (incidents, GIS), the briefing PDF, KPIs
  of a period, custom map measures, per user or token;
- ``callbacks`` — Dash callback requests per user and address (a desk; anonymous: per address);
- ``tiles`` — the local basemap's tiles (``/tiles/…``, ``TILE_FILE``) per user or screen: a map asks dozens at each
  move, so they count apart from the API reads.

A refusal is a 429 with ``Retry-After`` (JSON on the API and the callbacks). When the storage fails (Redis down) the
request passes and the failure is logged: limits protect the service, they must not take it down.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

RULES = {  # rule -> default limit (limits' notation); Settings.rate_limits overrides
    "login_address": "30/minute",
    "login_name": "10/minute",
    "ingest": "6000/minute",
    "read": "1200/minute",
    "expensive": "60/minute",
    "callbacks": "2400/minute",
    "tiles": "6000/minute",
}


@dataclass
class Refusal:
    rule: str
    retry_after: int  # seconds


class RateLimits:
    """The app's limiter (one per app, in ``Services``): ``check(rule, key)`` counts one request and says whether
    it is over the rule's limit."""

    @classmethod
    def from_settings(cls, settings) -> "RateLimits":
        unknown = sorted(set(settings.rate_limits) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rate limit rule(s) {', '.join(unknown)}: RATE_LIMIT_<one of "
                             f"{', '.join(r.upper() for r in RULES)}>")
        return cls(settings.rate_limit_storage, settings.rate_limits, enabled=settings.rate_limits_on)

    def __init__(self, storage_uri: str, overrides: dict | None = None, enabled: bool = True):
        from limits import parse
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.enabled = enabled
        self.storage_uri = storage_uri
        rules = {**RULES, **(overrides or {})}
        self.items = {name: parse(value) for name, value in rules.items()}
        self.storage = storage_from_string(storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._failing_since = 0.0

    def check(self, rule: str, *key: str) -> Refusal | None:
        if not self.enabled:
            return None
        item = self.items[rule]
        parts = [hashlib.sha256("\x1f".join(str(k) for k in key).encode("utf-8", "replace")).hexdigest()[:24]]
        try:
            if self.limiter.hit(item, "wx", rule, *parts):
                return None
            reset_at, _ = self.limiter.get_window_stats(item, "wx", rule, *parts)
        except Exception as e:  # noqa: BLE001 - the storage (Redis) is down: let the request pass, say so
            now = time.monotonic()
            if now - self._failing_since > 60:
                log.warning("rate limits not enforced: their storage %s fails (%s: %s)",
                            self.storage_uri.split("@")[-1], type(e).__name__, e)
                self._failing_since = now
            return None
        return Refusal(rule, max(1, math.ceil(reset_at - time.time())))


TILE_PATHS = ("/tiles/",)  # counted under "tiles", not "read"
EXPENSIVE_PATHS = ("/api/v1/incidents/export.", "/api/v1/gis/", "/api/v1/briefing.pdf", "/api/v1/kpis",
                   "/api/map/measures.json", "/api/map/hotspots.json", "/api/v1/audit.csv")


def enforce(rule: str, *key) -> Refusal | None:
    """Count one request of ``rule`` for ``key`` on the app's limiter (none configured: nothing to count)."""
    from .context import services

    limits = services().limits
    return limits.check(rule, *key) if limits is not None else None


def requester_key(who, address: str | None) -> str:
    """Whose requests count together: a user, a token, or (kiosk screens, anonymous callers) an address."""
    if who is None:
        return f"addr:{address}"
    if who.kiosk:
        return f"kiosk:{address}"
    return f"{who.role}:{who.username}"


def message(refusal: Refusal, lang: str = "zh") -> str:
    if lang == "en":
        return f"too many requests ({refusal.rule}): try again in {refusal.retry_after} s"
    return f"请求过于频繁（{refusal.rule}），请 {refusal.retry_after} 秒后再试 / too many requests, retry in " \
           f"{refusal.retry_after} s"
