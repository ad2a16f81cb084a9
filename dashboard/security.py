"""Response headers every answer carries (issue 11, "Headers"): no framing by other sites, no MIME sniffing, no
Referer (which could carry a kiosk token) to other origins; and access logs without secrets (the wall's kiosk token
and Open311's ``api_key`` travel in query strings).

A full Content-Security-Policy for scripts is not set here yet: Dash's renderer starts from an inline script and
plotly evaluates code, so a script policy needs hashes of Dash's inline scripts; ``frame-ancestors 'none'`` is the
part that holds for every page today.
"""
from __future__ import annotations

import logging
import re

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}


def install(server) -> None:
    """Add :data:`HEADERS` to every response of ``server`` (a Flask app) that does not set them itself."""

    @server.after_request
    def security_headers(resp):
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp


# ------------------------------------------------------------------------------------------ logs

SECRET_PARAMS = ("token", "api_key", "access_token", "password")
_SECRET_RE = re.compile(r"(?i)((?:^|[?&;\s])(?:%s)=)[^&\s\"']*" % "|".join(SECRET_PARAMS))
ACCESS_LOGGERS = ("gunicorn.access", "werkzeug")


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters (a wall token, an Open311 ``api_key``) replaced."""
    return _SECRET_RE.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Rewrites access-log records so that no token or api_key reaches the log (gunicorn passes its atoms as a
    dict, werkzeug the request line in a tuple)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(v) if isinstance(v, str) else v for v in record.args)
        return True


def install_log_redaction() -> None:
    """Put :class:`RedactSecrets` on the access loggers of gunicorn and werkzeug (once per process)."""
    for name in ACCESS_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in log.filters):
            log.addFilter(RedactSecrets())
