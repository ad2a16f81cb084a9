"""Response headers every answer carries (issue 11, "Headers"): a Content-Security-Policy that lets the page run
only this origin's scripts and the inline scripts Dash itself writes (by their hashes: the renderer's start and the
clientside callbacks), no framing by other sites, no MIME sniffing, no Referer (which could carry a kiosk token) to
other origins; and access logs without secrets (the wall's kiosk token and Open311's ``api_key`` travel in query
strings).
"""
from __future__ import annotations

import logging
import re

HEADERS = {  # with the Content-Security-Policy of :func:`content_security_policy`
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def content_security_policy(script_hashes, tile_urls) -> str:
    """The policy: scripts from this origin and the listed inline hashes only (no eval, no other inline script);
    styles from this origin and inline (Dash, plotly and Leaflet set style attributes); images from this origin,
    data/blob URLs (chart and briefing exports) and the tile servers; fetches to this origin only; no plugins, no
    framing, forms and <base> to this origin only."""
    tiles = sorted({o for o in (_origin(u) for u in tile_urls) if o})
    parts = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *tiles],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{k} {' '.join(v)}" for k, v in parts.items())


def _origin(template: str) -> str | None:
    """``https://{s}.tile.example.org/{z}/{x}/{y}.png`` -> ``https://*.tile.example.org``."""
    from urllib.parse import urlsplit

    if not template or template.lower() == "none":
        return None
    parts = urlsplit(re.sub(r"\{[a-z]\}", "*", template))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def inline_script_hashes(html: str) -> list[str]:
    """sha256 CSP hashes of the inline scripts of a static page (``assets/kiosk.html``)."""
    import base64
    import hashlib

    out = []
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        if "src=" not in attrs:
            out.append("'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'")
    return out


def install(app, settings) -> None:
    """Add :data:`HEADERS` and the Content-Security-Policy to every response of ``app`` (a ``dash.Dash``; call it
    after every clientside callback is registered: their inline scripts are hashed now)."""
    from pathlib import Path

    hashes = list(app.csp_hashes())
    kiosk = Path(app.config.assets_folder) / "kiosk.html"
    if kiosk.exists():  # the wall's starter page, when the server itself serves it
        hashes += inline_script_hashes(kiosk.read_text(encoding="utf-8"))
    headers = {**HEADERS, "Content-Security-Policy": content_security_policy(
        hashes, settings.external_tile_urls)}  # a local basemap (TILE_FILE) is this origin: no other

    @app.server.after_request
    def security_headers(resp):
        for name, value in headers.items():
            resp.headers.setdefault(name, value)
        return resp


def trust_proxies(server, n: int) -> None:
    """Behind ``n`` trusted reverse proxies (``TRUSTED_PROXIES``), take the client's address and scheme from their
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` (for the audit log, the rate limits, same-origin checks). Never the
    forwarded host: links are built from ``PUBLIC_URL``, not from headers. ``n == 0``: headers are not trusted."""
    if n > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=0, x_port=0, x_prefix=0)


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


# ------------------------------------------------------------------------------------- session key
MIN_SECRET_LEN = 32
KNOWN_WEAK = ("dev-only-change-me", "change-me", "secret", "dev")
SECRET_FILE = "secret_key"


class WeakSecret(RuntimeError):
    """The app refuses to start: its session-signing key is missing where it must be given, or too weak."""


def resolve_secret_key(settings) -> str:
    """The key that signs session cookies (a forged cookie could otherwise open the wall or a desk).

    ``SECRET_KEY`` when it is given: at least 32 characters and not a known placeholder, or the app refuses to
    start. Not given: on the embedded store (SQLite under the instance directory, ``make run``) a random key made
    once and kept in ``<instance>/secret_key`` (mode 0600; every worker of this host reads the same file); on
    PostgreSQL — the production path, where several hosts must sign alike — the app refuses to start."""
    key = settings.secret_key or ""
    if key:
        if key in KNOWN_WEAK or len(key) < MIN_SECRET_LEN:
            raise WeakSecret(f"SECRET_KEY is too weak: give at least {MIN_SECRET_LEN} random characters "
                             "(python -c 'import secrets; print(secrets.token_urlsafe(48))') / 会话密钥过弱")
        return key
    if settings.database_url.startswith(("postgres://", "postgresql")):
        raise WeakSecret("SECRET_KEY is not set: on PostgreSQL (several workers and hosts) every server must sign "
                         "sessions with the same key; set SECRET_KEY to at least 32 random characters / 未设置会话密钥")
    return _instance_secret(settings.instance_dir)


def _instance_secret(instance_dir) -> str:
    import os
    import secrets
    import tempfile
    from pathlib import Path

    path = Path(instance_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, path)  # atomic and exclusive: a worker that loses the race reads the winner's key
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_LEN:
        raise WeakSecret(f"{path} holds no usable key: delete it to have a new one made")
    return key
