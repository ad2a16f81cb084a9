"""What a worker builds once from its geodata before a viewer asks for it (wiring: the gunicorn worker hook
``gunicorn_conf.post_worker_init`` starts :func:`warm_in_background`; the benches call :func:`warm`).

Derived from the geodata alone and memoised per process for its life: the unit hierarchy, a bundle's unit index and
the row indexes a unit's profile reads by (``metrics.views``), and on a multi-county set the per-feature JSON and
boxes the map's level-of-detail answers are cut from (``api.geo``: the outlines, towns, zones and grids of the view).
On a province (67,000 grids) these cost ~1 s, ~0.2 s, ~0.1 s and 5–10 s of CPU; built on the first request
instead, they landed on the first viewer's drill click (several seconds) and first zoom to the zones (3 s). Then the
callbacks' access classes (``callbacks.guard`` ``CallbackLevels``: every page's layout rendered once, ~3 s on a
province's store the first time, the briefing's figures read from the store and cached as a viewer's would be): left
to the first callback request, they held a just-started server's first page and the click made on it (5–6 s). Last,
the landing view's KPI bundles (the default period's and the same days a year before, into the cache as a viewer's
read would put them): the first page's cards and first click after a start waited for them (2.3 s on the province's
10M store). Nothing runs again: an idle server stays idle.

What was built then lives as long as the worker: :func:`settle_heap` moves it out of the garbage collector's way. A
province's worker holds ~570,000 tracked objects once warm, and each full (generation 2) collection walked them all:
100–185 ms measured, a pause that landed on whichever request was running — a drill click's panel text now and
then. Frozen, they are skipped (reference counting still frees what becomes unused; only cyclic garbage among them
would stay, and they are memos that stay anyway).
"""
from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)


def warm(app) -> dict:
    """Build the memos of ``app``'s geodata (a Dash app or its Flask server); {what: seconds}."""
    from .api import geo
    from .callbacks.guard import LEVELS_KEY
    from .metrics import views

    server = getattr(app, "server", app)
    svc = server.extensions["dashboard"]
    took = {}
    t = time.perf_counter()
    gd = svc.geodata()
    took["geodata"] = time.perf_counter() - t
    for name, build in (("hierarchy", views.hierarchy), ("unit_index", views.unit_index)):
        t = time.perf_counter()
        build(gd)
        took[name] = time.perf_counter() - t
    t = time.perf_counter()
    views.hierarchy(gd).grid_pos  # noqa: B018 - built on first access: its index of the grids by code
    for layer, column in views.ROW_INDEXES:
        views.rows_of(gd, layer, column)
    took["row_indexes"] = time.perf_counter() - t
    if views.hierarchy(gd).multi:  # only a multi-county map asks for the units of its view (bbox)
        for layer in geo.BBOX_LAYERS:
            t = time.perf_counter()
            geo.warm_layer(layer, gd, svc.settings.tile_crs)
            took[f"features:{layer}"] = time.perf_counter() - t
    levels = server.extensions.get(LEVELS_KEY)
    if levels is not None and svc.engine is not None:  # the pages' layouts read the store
        t = time.perf_counter()
        levels.prime()
        took["callback_levels"] = time.perf_counter() - t
    if svc.engine is not None:  # the landing view's KPI bundles: its period's and the same days a year before
        from .services import drill

        t = time.perf_counter()
        with server.app_context():
            drill.card_values(drill.state_from_query("", views.hierarchy(gd)), "zh")
        took["landing_bundles"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in took.items()}


def settle_heap() -> int:
    """Collect the garbage of a warm-up, then freeze what is left (``gc.freeze``: out of every later collection);
    the number of objects frozen. Once per worker, after :func:`warm`."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def warm_in_background(app) -> threading.Thread:
    """:func:`warm` then :func:`settle_heap` in a daemon thread (the worker serves meanwhile; a request that needs a
    memo first builds it)."""
    def run():
        try:
            log.info("warmed %s", warm(app))
        except Exception:  # noqa: BLE001 - a failed warm-up only leaves the first request to build it
            log.exception("warming the geodata memos failed")
        log.info("froze %d objects", settle_heap())

    thread = threading.Thread(target=run, name="wx-warm", daemon=True)
    thread.start()
    return thread
