"""Command-centre map dashboard of one county-level district (the geodata's root unit).

``create_app(settings)`` is the application factory: it only wires — the Dash app, its Flask server, the shared
cache and store, the HTTP blueprints (``api.register_all``) and the pages with their router
(``pages.install_pages``). It keeps no mutable module state.
"""
from __future__ import annotations

import os
from pathlib import Path

import dash

from .settings import Settings

__all__ = ["create_app", "Settings"]


def _init_store(server, settings: Settings):
    from . import store
    from .services import notify

    engine = store.make_engine(settings.sqlalchemy_url)
    store.init_db(engine)
    # alerts raised through these sessions are queued for the configured group robots (same transaction)
    return engine, store.session_factory(engine, notify=notify.routes(settings))


def create_app(settings: Settings | None = None, *, with_store: bool = True) -> dash.Dash:
    from . import security, timing
    from .api import register_all
    from .callbacks import guard as callback_guard
    from .cache import init_cache
    from .context import Services
    from .pages import callback_levels, install_pages
    from .pages.head import ASSETS_IGNORE
    from .ratelimit import RateLimits
    from .services import tiles as basemap_tiles

    settings = settings or Settings.from_env()
    tile_files = basemap_tiles.open_files(settings)  # TILE_FILE: a missing or foreign file stops the start here
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    app = dash.Dash(
        __name__,
        title="基层社会治理指挥中心",  # each page's HTML names the district served (pages.head: from the geodata)
        assets_folder=str(Path(__file__).resolve().parents[1] / "assets"),
        assets_ignore=ASSETS_IGNORE,  # the files only some pages use: those pages link them (pages.head)
        compress=True,
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title=None,
    )
    server = app.server
    server.config["SECRET_KEY"] = security.resolve_secret_key(settings)  # refuses a weak or missing key
    server.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024  # API blueprints cap their own bodies at 1 MB
    server.config["COMPRESS_MIMETYPES"] = ["application/json", "text/html", "text/css", "application/javascript"]
    cache = init_cache(server, settings.cache_config)

    engine = sessions = None
    if with_store:
        engine, sessions = _init_store(server, settings)
    limits = RateLimits.from_settings(settings)  # shared by the workers through Redis when the cache is Redis
    hub = None
    if engine is not None:
        from .callbacks.pushed import FEEDS
        from .services.live import Hub

        # the pages' live parts (rendered once per change, sent in the stream's events) are the callbacks layer's
        hub = Hub(server, engine, slots=settings.stream_slots, poll_s=settings.live_poll_s, feeds=FEEDS,
                  figures_s=settings.live_figures_s, cache=cache)
    server.extensions["dashboard"] = Services(settings=settings, cache=cache, engine=engine, sessions=sessions,
                                           limits=limits, tiles=tile_files, hub=hub)

    register_all(server)

    @server.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @server.after_request
    def served_by(resp):
        resp.headers["X-Served-By"] = str(os.getpid())  # which worker answered: for ops and multi-worker tests
        return resp

    pages = install_pages(app, settings)  # page modules, their callbacks, the initial layout and the router (pages/)
    # forged callback requests and component paths: 4xx, never 500; each callback needs who may open its page
    callback_guard.install(app, lambda: callback_levels(app, pages, settings))
    security.install(app, settings)  # CSP (this origin + Dash's inline scripts by hash), nosniff, no framing …
    security.trust_proxies(server, settings.trusted_proxies)  # client address behind nginx (TRUSTED_PROXIES)
    security.install_log_redaction()  # no kiosk token or api_key in the access log
    timing.install(server)  # Server-Timing: the server's share of each answer (developer tools, the bench)
    return app
