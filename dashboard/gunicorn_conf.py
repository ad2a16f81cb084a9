"""gunicorn hooks for ``python -m dashboard serve`` (``-c python:dashboard.gunicorn_conf``).

A worker told to stop (SIGTERM: a restart or a deploy) first ends its open live streams
(:meth:`dashboard.services.live.Hub.stop`): each page reconnects to another worker or the new server and catches
up from its last sequence, and the worker's graceful shutdown does not wait on connections that never finish.
Each worker also builds its geodata's memos in the background as it starts (:mod:`dashboard.warm`).
"""
from __future__ import annotations

import signal


def post_worker_init(worker) -> None:
    app = getattr(worker, "wsgi", None)
    if app is not None and "dashboard" in getattr(app, "extensions", {}):
        from dashboard.warm import warm_in_background

        warm_in_background(app)  # the geodata's memos, before the first viewer needs them (dashboard.warm)
    hub = getattr(app, "extensions", {}).get("dashboard") if app is not None else None
    hub = getattr(hub, "hub", None)
    if hub is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop(sig, frame):
        hub.stop()
        if callable(previous):
            previous(sig, frame)

    signal.signal(signal.SIGTERM, stop)
