"""Response headers every answer carries (issue 11, "Headers"): no framing by other sites, no MIME sniffing, no
Referer (which could carry a kiosk token) to other origins.

A full Content-Security-Policy for scripts is not set here yet: Dash's renderer starts from an inline script and
plotly evaluates code, so a script policy needs hashes of Dash's inline scripts; ``frame-ancestors 'none'`` is the
part that holds for every page today.
"""
from __future__ import annotations

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
