"""The callback endpoint's boundary: a forged or malformed ``POST /_dash-update-component`` gets a 400 refusal
(JSON), never a 500, and a forged component-suites path a 404.

Dash answers with a 500 when the request names a callback that does not exist, when its outputs do not match the
callback's, when the body is not the object the renderer sends, or when a value the callback was not built for
(``None``, a dict for a string, a 5,000-character id…) makes the callback raise. Each of those is the client's
doing, so the answer is 4xx; the refusal is logged (with the traceback when the callback itself raised, so that a
real bug is seen in the log) and the page keeps what it shows: the renderer leaves the outputs as they were.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from dash.exceptions import PreventUpdate
from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

CALLBACK_PATH = "/_dash-update-component"
MAX_ITEMS = 200  # inputs / state / outputs of one request: the app's largest callback has a few dozen


def refusal(status: int, code: str, message: str) -> Response:
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def _is_dep(item: Any) -> bool:
    return isinstance(item, dict) and "id" in item and isinstance(item.get("property"), str)


def _deps_ok(items: Any) -> bool:
    """A list of {id, property, value?} (or of lists of them, for pattern-matching wildcards)."""
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        return False
    for it in items:
        if isinstance(it, list):
            if len(it) > MAX_ITEMS or not all(_is_dep(x) for x in it):
                return False
        elif not _is_dep(it):
            return False
    return True


def check_body(body: Any, callback_map: dict) -> str | None:
    """Why ``body`` is not a callback request this app can answer (None when it is)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        return "no such callback"
    if not _deps_ok(body.get("inputs")):
        return "inputs must be a list of {id, property, value}"
    if "state" in body and not _deps_ok(body.get("state")):
        return "state must be a list of {id, property, value}"
    outputs = body.get("outputs")
    if not (_is_dep(outputs) or _deps_ok(outputs)):
        return "outputs must be {id, property} or a list of them"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(x, str) for x in changed):
        return "changedPropIds must be a list of strings"
    return None


LEVELS_KEY = "wx_callback_levels"  # server.extensions: the app's CallbackLevels (dashboard.warm primes it)


class CallbackLevels:
    """The callbacks' access classes (``{output key: class}``), computed once per process by ``compute`` — which
    renders every page's layout (``dashboard.pages.callback_levels``): ~3 s on a province's store the first time, the
    briefing's figures included. A worker computes them as it starts (``dashboard.warm``), else at the first callback
    request; requests that come meanwhile wait for that one computation instead of each starting its own (four of a
    page's first callbacks at once on a just-started server each took 3.5–6 s). A computation that fails (a page that
    cannot render now) is tried again at the next request; until then a callback needs a reader."""

    def __init__(self, compute=None):
        self._compute = compute
        self._known: dict = {}
        self._lock = threading.Lock()

    def prime(self) -> bool:
        """Compute them unless known; whether they are known now."""
        if self._known or self._compute is None:
            return bool(self._known)
        with self._lock:
            if not self._known:
                try:
                    self._known.update(self._compute() or {})
                except Exception:  # noqa: BLE001 - a page that cannot render now: its callbacks stay for readers only
                    log.exception("the callbacks' access classes could not be computed; readers only for now")
        return bool(self._known)

    @property
    def known(self) -> bool:
        return bool(self._known)

    def level_of(self, output: str) -> str:
        from ..auth import policy

        self.prime()
        return self._known.get(output, policy.READ)


def install(app, levels=None) -> None:
    """Wrap the Dash callback and component-suites views of ``app`` (a ``dash.Dash``) in the boundary. ``levels``
    (called once: :class:`CallbackLevels`, kept in ``server.extensions[LEVELS_KEY]``) maps each callback to its access
    class (``dashboard.pages.callback_levels``); a callback not in it needs a reader."""
    server = app.server
    rules = {r.rule: r.endpoint for r in server.url_map.iter_rules()}
    cb_endpoint = rules.get(CALLBACK_PATH)
    known = server.extensions[LEVELS_KEY] = CallbackLevels(levels)
    if cb_endpoint is not None:
        server.view_functions[cb_endpoint] = _guard_callbacks(app, server.view_functions[cb_endpoint], known)
    suites = [e for r, e in rules.items() if r.startswith("/_dash-component-suites/")]
    for endpoint in suites:
        server.view_functions[endpoint] = _guard_suites(server.view_functions[endpoint])


def _guard_callbacks(app, view, levels: CallbackLevels):
    from .. import ratelimit
    from ..auth import current_principal, policy

    def guarded_dispatch(*args, **kwargs):
        body = request.get_json(silent=True)
        why = check_body(body, app.callback_map)
        if why is not None:
            log.warning("callback request refused (%s) from %s", why, request.remote_addr)
            return refusal(400, "bad_callback_request", why)
        who = current_principal()
        if not policy.allowed(levels.level_of(body["output"]), who):  # private by default
            if who is None:
                return refusal(401, "unauthorized", "sign in first (/login) / 请先登录")
            return refusal(403, "forbidden", f"the role {who.role} may not use this / 无权操作")
        # per user and screen: a centre may share one account across desks, each desk gets the whole allowance
        refused = ratelimit.enforce("callbacks", ratelimit.requester_key(who, request.remote_addr),
                                    request.remote_addr or "?")
        if refused is not None:
            log.warning("callback rate limit reached by %s", request.remote_addr)
            resp = refusal(429, "rate_limited", ratelimit.message(refused))
            resp.headers["Retry-After"] = str(refused.retry_after)
            return resp
        try:
            return view(*args, **kwargs)
        except (PreventUpdate, HTTPException):
            raise
        except Exception as e:  # noqa: BLE001 - the boundary: whatever the values made the callback do, it is refused
            from ..services.db import RETRY_AFTER_S, unavailable

            if unavailable(e):  # not the values: the database is restarting or busy; the page retries later
                log.warning("callback %s: store unavailable (%s)", str(body.get("output"))[:80], str(e)[:120])
                resp = refusal(503, "store_unavailable", "the store is unavailable; retry shortly / 数据库暂时不可用")
                resp.headers["Retry-After"] = str(RETRY_AFTER_S)
                return resp
            log.exception("callback %s refused its input from %s", str(body.get("output"))[:200],
                          request.remote_addr)
            return refusal(400, "callback_input_refused",
                           "the values sent to this callback were refused / 提交的数值无效")

    guarded_dispatch.__name__ = getattr(view, "__name__", "dispatch")
    return guarded_dispatch


def _guard_suites(view):
    def guarded_suites(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except HTTPException:
            raise
        except Exception:  # noqa: BLE001 - an unknown or forged package path: not found
            log.warning("component-suites path refused: %s", request.path[:300])
            return Response("404: not found", status=404, mimetype="text/plain")  # Flask adds "; charset=utf-8"

    guarded_suites.__name__ = getattr(view, "__name__", "serve")
    return guarded_suites
