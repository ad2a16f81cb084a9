"""Keep the heavy aggregates warm, so no leader waits for the first computation of a period.

``python -m dashboard serve`` runs :func:`run_warmer` in a thread next to gunicorn: every ``every`` seconds it
computes the KPI bundles of the standard periods (today, 7 days, 30 days, this year, calendar 2019), the
district lifecycle funnel and the morning briefing into the shared cache (file system or Redis), which every
gunicorn worker reads. Computations are keyed exactly as the request path keys them (dashboard.metrics.views).
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)
PERIODS = ("30d", "today", "7d", "2019", "year")


def warm_once(app) -> dict[str, float]:
    """Compute every standard period's aggregates once; returns seconds per item."""
    from .context import services
    from .metrics import periods, views

    timings = {}
    with app.server.app_context():
        svc = services()
        gd = svc.geodata()
        for key in PERIODS:
            t0 = time.perf_counter()
            per = periods.resolve(key)
            views.kpi_bundle(svc.engine, gd, svc.cache, per)
            views.lifecycle(svc.engine, gd, svc.cache, per, "district", None)
            timings[key] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        views.briefing(svc.engine, gd, svc.cache)
        timings["briefing"] = round(time.perf_counter() - t0, 2)
    return timings


def run_warmer(app, stop: threading.Event, every: float = 30.0) -> None:
    while not stop.is_set():
        try:
            log.info("warm caches: %s", warm_once(app))
        except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first request
            log.exception("cache warm-up failed")
        stop.wait(every)
