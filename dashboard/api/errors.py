"""JSON errors for the HTTP APIs: ``{"error": {"code", "message", "field"}}`` (``/api/v1``) and the Open311
form ``[{"code": <http status>, "description": ...}]`` (``/open311/v2``).

Every bad input becomes a 4xx naming the field; an unexpected exception becomes a logged JSON 500 (a bug).
"""
from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, NotFound

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
OPEN311_PREFIX = "/open311/v2"
PAGE_CATCH_ALL = "/<path:path>"  # Dash's rule that serves the page for any path no other rule takes
MAX_BODY_BYTES = 1024 * 1024  # 1 MB

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
               422: "unprocessable", 429: "rate_limited", 500: "internal_error"}


class ApiError(Exception):
    """A refused request. ``field`` names the offending input (body field or query parameter)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message, "field": self.field}
        err.update(self.extra)
        return {"error": err}


def json_error(status: int, code: str, message: str, field: str | None = None, **extra: Any):
    resp = jsonify(ApiError(status, code, message, field, **extra).body())
    resp.status_code = status
    return resp


def open311_error(status: int, description: str):
    resp = jsonify([{"code": status, "description": description}])
    resp.status_code = status
    return resp


def _is_api() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def _is_open311() -> bool:
    return request.path == OPEN311_PREFIX or request.path.startswith(OPEN311_PREFIX + "/")


def _too_large(limit: int) -> str:
    return f"request body is larger than {limit} bytes ({limit // (1024 * 1024)} MB)"


def _http_message(e: HTTPException) -> str:
    if e.code == 413:
        return _too_large(request.max_content_length or MAX_BODY_BYTES)
    return e.description or e.name


def handle_api_error(e: ApiError):
    if _is_open311():
        resp = open311_error(e.status, f"{e.field}: {e.message}" if e.field else e.message)
    else:
        resp = json_error(e.status, e.code, e.message, e.field, **e.extra)
    if "retry_after" in e.extra:
        resp.headers["Retry-After"] = str(e.extra["retry_after"])
    return resp


def handle_http_exception(e: HTTPException):
    """JSON for HTTP errors (404, 405, 413, …) under our prefixes; other paths keep Flask's default. A 405 names
    the methods the URL has in ``Allow`` (RFC 9110); one whose only other rule is Dash's page is a 404."""
    if e.code is None:
        return e
    if e.code == 405 and _is_data_path():
        allowed = allowed_methods()
        return method_not_allowed(allowed) if allowed else handle_http_exception(NotFound())
    if _is_open311():
        return open311_error(e.code, _http_message(e))
    if _is_data_path():
        field = "body" if e.code in (413, 415) else None
        return json_error(e.code, _HTTP_CODES.get(e.code, "http_error"), _http_message(e), field)
    return e


def method_not_allowed(allowed: list[str]):
    """405 for this request's method on a URL served with ``allowed`` (``Allow`` lists them)."""
    message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
    resp = open311_error(405, message) if _is_open311() else json_error(405, "method_not_allowed", message, None)
    resp.headers["Allow"] = ", ".join(allowed)
    return resp


def handle_store_down(e: Exception):
    """503 + ``Retry-After`` when the store is unreachable (JSON on the data paths, a short page elsewhere); any
    other database error is a bug: :func:`handle_unexpected`."""
    from ..services.db import RETRY_AFTER_S, unavailable

    if not unavailable(e):
        return handle_unexpected(e)
    log.warning("store unavailable on %s %s: %s", request.method, request.path, str(e).splitlines()[0][:200])
    message = "the incident store is unavailable; retry shortly / 数据库暂时不可用，请稍后重试"
    if _is_open311():
        resp = open311_error(503, message)
    elif _is_data_path() or request.path.startswith("/_dash"):
        resp = json_error(503, "store_unavailable", message, None, retry_after=RETRY_AFTER_S)
    else:
        from flask import Response

        resp = Response(f"<!doctype html><meta charset=utf-8><title>503</title><p>{message}</p>", status=503,
                        mimetype="text/html")
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def handle_unexpected(e: Exception):
    """Unhandled exceptions: JSON 500 under our prefixes (and logged); elsewhere re-raised to Flask."""
    if isinstance(e, HTTPException):
        return handle_http_exception(e)
    if not (_is_api() or _is_open311()):
        raise e
    log.exception("unhandled error on %s %s", request.method, request.path)
    if _is_open311():
        return open311_error(500, "internal error")
    return json_error(500, "internal_error", "internal error", None)


def enforce_body_limit() -> None:
    """``before_request`` for our blueprints: refuse bodies over 1 MB (or the view's :func:`body_limit`) before
    anything reads them.

    Flask ≥ 3.1 lets a request carry its own ``max_content_length``, so streamed (chunked) bodies are
    capped too; a declared ``Content-Length`` over the limit is refused at once.
    """
    from flask import current_app

    limit = getattr(current_app.view_functions.get(request.endpoint), "max_body_bytes", MAX_BODY_BYTES)
    request.max_content_length = limit
    request.max_form_memory_size = limit
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", _too_large(limit), "body")


def body_limit(n_bytes: int):
    """Decorator (under the route decorator): this view takes bodies up to ``n_bytes`` instead of
    ``MAX_BODY_BYTES`` — read by :func:`enforce_body_limit`."""
    def mark(view):
        view.max_body_bytes = n_bytes
        return view
    return mark


def _is_data_path() -> bool:
    """Any of our machine-facing prefixes: the API, Open311 and the map data/geometry routes."""
    return _is_api() or _is_open311() or request.path.startswith(("/api/", "/open311/"))


# every method a rule can name; the 405 and OPTIONS answers of a data path list those its URL is served with
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods() -> list[str]:
    """The methods this request's URL is served with by our rules, leaving out Dash's page catch-all (which would
    take GET of any path: a data path is never a page). Empty when no rule of ours has the URL."""
    from flask import current_app

    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in HTTP_METHODS:
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:  # no rule for this method (404, 405) or a redirect
            continue
        if rule.rule != PAGE_CATCH_ALL:
            allowed.append(method)
    return allowed


def refuse_page_fallback_for_data_paths():
    """``before_request`` on the data paths: answer ``OPTIONS`` with the URL's methods (``Allow``), and refuse Dash's
    page catch-all there — Dash answers every unknown path with its page (200, HTML): under the API prefixes a URL
    no rule of ours has is a 404 JSON error, and one served with other methods a 405 naming them."""
    if not _is_data_path():
        return None
    rule = request.url_rule
    if request.method != "OPTIONS" and not (rule is not None and rule.rule == PAGE_CATCH_ALL):
        return None
    allowed = allowed_methods()
    if not allowed:
        if _is_open311():
            return open311_error(404, "not found")
        return json_error(404, "not_found", f"no such endpoint: {request.path}", None)
    if request.method == "OPTIONS":
        from flask import Response

        return Response(status=200, headers={"Allow": ", ".join(allowed)})
    return method_not_allowed(allowed)


def register_error_handlers(server: Flask) -> None:
    """App-level handler for HTTP errors raised before a blueprint is chosen (unknown URL 404, 405), and the
    404 for unknown URLs under the API prefixes that Dash's page catch-all would otherwise answer.

    It only acts on our prefixes; elsewhere it returns the exception, which is Flask's default response.
    """
    from sqlalchemy.exc import DBAPIError

    server.register_error_handler(HTTPException, handle_http_exception)
    server.register_error_handler(DBAPIError, handle_store_down)  # the pages and Dash's own routes
    server.before_request(refuse_page_fallback_for_data_paths)


def register_blueprint_handlers(bp) -> None:
    bp.register_error_handler(ApiError, handle_api_error)
    bp.register_error_handler(HTTPException, handle_http_exception)
    bp.register_error_handler(Exception, handle_unexpected)
    from sqlalchemy.exc import DBAPIError

    bp.register_error_handler(DBAPIError, handle_store_down)
    bp.before_request(enforce_body_limit)  # first: enforce_access may read an Open311 form's api_key
    bp.before_request(enforce_access)


def enforce_access() -> None:
    """``before_request`` of every API blueprint: the read classes of :mod:`dashboard.auth.policy` (private by
    default). A bearer token that is not valid is refused even where the class is open, so a client learns of a
    revoked token at once. Open311 clients may send their token as ``api_key``."""
    from ..auth import current_principal, policy, token_mark, token_principal
    from ..context import services

    level = policy.request_level(request.path, request.method, services().settings)
    auth_header = request.headers.get("Authorization", "")
    who = current_principal()
    if who is None and auth_header[:7].lower() == "bearer " and auth_header[7:].strip():
        raise ApiError(401, "unauthorized", "the token is not valid", "Authorization")
    if request.method == "POST" and (who is not None and who.role == "token" or _is_open311()):
        token = auth_header[7:].strip() or request.args.get("api_key") or request.form.get("api_key") or ""
        if token:  # writes per token (an unknown token is refused by the route, after this count)
            _limit("ingest", "token:" + token_mark(token))
    if level is None or level == policy.PUBLIC:
        return
    if who is None and _is_open311() and request.args.get("api_key"):
        who = token_principal(request.args["api_key"])
        if who is None:
            raise ApiError(401, "unauthorized", "api_key is not valid", "api_key")
    if who is None:
        raise ApiError(401, "unauthorized", "sign in (/login) or send 'Authorization: Bearer <token>'",
                       "Authorization")
    if not policy.allowed(level, who):
        what = f"the role {who.role}" if who.role != "token" else "this token (scopes: " + (
            ", ".join(sorted(who.scopes)) or "none") + ")"
        raise ApiError(403, "forbidden", f"{what} may not read this", "Authorization")
    from ..ratelimit import EXPENSIVE_PATHS, TILE_PATHS, requester_key

    key = requester_key(who, request.remote_addr)
    if request.path.startswith(TILE_PATHS):
        _limit("tiles", key)
        return
    _limit("read", key)
    if request.path.startswith(EXPENSIVE_PATHS):
        _limit("expensive", key)


def _limit(rule: str, key: str) -> None:
    """Count this request under ``rule``; a 429 (JSON, ``Retry-After``) when over the limit."""
    from ..ratelimit import enforce, message

    refused = enforce(rule, key)
    if refused is not None:
        log.warning("rate limit %s reached by %s on %s", rule, key[:40], request.path)
        raise ApiError(429, "rate_limited", message(refused, "en"), None, retry_after=refused.retry_after,
                       rule=rule)


# ------------------------------------------------------------------------------------------ validation
def check_text(value: Any, field: str, *, max_len: int, required: bool = False, allow_empty: bool = True) -> str | None:
    """A string field: type, length, no NUL, valid UTF-8 (no lone surrogates)."""
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{field} is required", field)
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_type", f"{field} must be a string", field)
    if "\x00" in value:
        raise ApiError(400, "invalid_value", f"{field} must not contain NUL characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_value", f"{field} is not valid UTF-8 text", field) from None
    if len(value) > max_len:
        raise ApiError(400, "too_long", f"{field} is longer than {max_len} characters", field)
    if not allow_empty and not value.strip():
        if required:
            raise ApiError(400, "missing_field", f"{field} must not be empty", field)
        raise ApiError(400, "invalid_value", f"{field} must not be empty", field)
    return value


def check_number(value: Any, field: str, *, lo: float, hi: float, required: bool = True) -> float | None:
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{field} is required", field)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, "invalid_type", f"{field} must be a number", field)
    try:
        f = float(value)
    except OverflowError:
        raise ApiError(400, "out_of_range", f"{field} is out of range [{lo}, {hi}]", field) from None
    if not math.isfinite(f):
        raise ApiError(400, "invalid_value", f"{field} must be a finite number", field)
    if not lo <= f <= hi:
        raise ApiError(400, "out_of_range", f"{field} is out of range [{lo}, {hi}]", field)
    return f


def check_int(value: Any, field: str, *, lo: int, hi: int, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{field} is required", field)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        else:
            raise ApiError(400, "invalid_type", f"{field} must be an integer", field)
    if not lo <= value <= hi:
        raise ApiError(400, "out_of_range", f"{field} must be between {lo} and {hi}", field)
    return value


def int_param(name: str, default: int | None, lo: int, hi: int) -> int | None:
    """An integer query parameter of ASCII digits between ``lo`` and ``hi`` (``default`` when absent or empty); a
    400 naming it otherwise (also for digits ``int`` would refuse, such as "²")."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not lo <= int(raw) <= hi:
        raise ApiError(400, "invalid_value", f"{name} must be an integer between {lo} and {hi}", name)
    return int(raw)


def choice_param(name: str, choices, default: str | None) -> str | None:
    """A query parameter that is one of ``choices`` (``default`` when absent or empty); a 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if raw not in choices:
        raise ApiError(400, "invalid_value", f"{name} must be one of {', '.join(choices)}", name)
    return raw


LANGS = ("zh", "en")


def lang_param() -> str:
    """``lang`` of a file the API writes: ``zh`` (default) or ``en``."""
    return choice_param("lang", LANGS, "zh")
