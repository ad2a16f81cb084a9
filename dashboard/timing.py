"""``Server-Timing`` on every response: how long the server took to answer (``app;dur=`` milliseconds, from the
request reaching the application to its response headers, compression included), as the browser's developer tools
and ``PerformanceResourceTiming.serverTiming`` show it. A slow view can then be told apart on the page itself: time
in the server, or time queued in the browser and on the wire (the bench records both per request)."""
from __future__ import annotations

import time


class ServerTiming:
    """WSGI middleware adding ``Server-Timing: app;dur=<ms>`` when the wrapped application starts its response."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        t0 = time.perf_counter()

        def timed_start(status, headers, exc_info=None):
            if not any(name.lower() == "server-timing" for name, _ in headers):
                headers = [*headers, ("Server-Timing", f"app;dur={(time.perf_counter() - t0) * 1000:.1f}")]
            return start_response(status, headers, exc_info)

        return self.app(environ, timed_start)


def install(server) -> None:
    """Wrap ``server`` (the Flask app) so that each response says how long it took."""
    server.wsgi_app = ServerTiming(server.wsgi_app)
