"""Wuxing District command-centre map dashboard.

``create_app(settings)`` is the application factory: it builds the Dash app, its Flask server, the shared
cache and store, and registers the HTTP blueprints and the page router. It keeps no mutable module state.
"""
from __future__ import annotations

import os
from urllib.parse import parse_qsl

import dash
from dash import Input, Output, State, dcc, html

from .settings import Settings

__all__ = ["create_app", "Settings"]

# fetched while the JS bundles load, not after the map mounts (the default incident layer URL included)
PRELOADED_URLS = ("/api/geo/grids.json", "/api/geo/zones.json", "/api/geo/district.json", "/api/map/incidents.json")
# dash-leaflet's GeoJSON code is an async chunk, requested only when the first GeoJSON layer mounts: fetch it early
PRELOADED_SCRIPTS = ("/_dash-component-suites/dash_leaflet/async-GeoJSON.js",)


def _init_store(server, settings: Settings):
    from . import store

    engine = store.make_engine(settings.sqlalchemy_url)
    store.init_db(engine)
    return engine, store.session_factory(engine)


def create_app(settings: Settings | None = None, *, with_store: bool = True) -> dash.Dash:
    from .api import register_all
    from .cache import init_cache
    from .context import Services
    from .i18n import normalise
    from .pages import load_pages

    settings = settings or Settings.from_env()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    app = dash.Dash(
        __name__,
        title="吴兴区基层社会治理指挥中心",
        assets_folder=str(settings.geodata_dir.parent / "assets"),
        compress=True,
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title=None,
    )
    # geometry every map page draws is fetched while the JS bundles load, not after the map mounts
    preload = "".join(f'<link rel="preload" href="{url}" as="fetch" crossorigin="anonymous">'
                      for url in PRELOADED_URLS)
    preload += "".join(f'<link rel="preload" href="{url}" as="script">' for url in PRELOADED_SCRIPTS)
    app.index_string = app.index_string.replace("{%metas%}", "{%metas%}" + preload, 1)
    server = app.server
    server.config["SECRET_KEY"] = settings.secret_key
    server.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024  # API blueprints cap their own bodies at 1 MB
    server.config["COMPRESS_MIMETYPES"] = ["application/json", "text/html", "text/css", "application/javascript"]
    cache = init_cache(server, settings.cache_config)

    engine = sessions = None
    if with_store:
        engine, sessions = _init_store(server, settings)
    server.extensions["wuxing"] = Services(settings=settings, cache=cache, engine=engine, sessions=sessions)

    register_all(server)

    @server.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @server.after_request
    def served_by(resp):
        resp.headers["X-Served-By"] = str(os.getpid())  # which worker answered: for ops and multi-worker tests
        return resp

    pages = load_pages()  # before any callback runs: Dash 4 refuses component imports inside callbacks
    from flask import request

    from .api.errors import PAGE_CATCH_ALL

    @server.after_request
    def unknown_page_is_404(resp):
        """Dash serves its page for any path; an unknown page still shows our 404 view, now with status 404."""
        rule = request.url_rule
        if rule is not None and rule.rule == PAGE_CATCH_ALL and request.path not in pages and resp.status_code == 200:
            resp.status_code = 404
        return resp

    for module in pages.values():
        if hasattr(module, "register_callbacks"):
            module.register_callbacks(app)

    def render(pathname: str | None, search: str | None):
        params = dict(parse_qsl((search or "").lstrip("?")))
        lang = normalise(params.get("lang"))
        page = pages.get(pathname or "/")
        if page is None:
            return html.Div([html.H2("404"), html.A("吴兴区指挥中心 / Home", href="/")], className="wx-404")
        return page.layout(settings, lang, params)

    def serve_layout():
        """The page the browser is on, rendered into the initial layout (one round trip fewer than routing by
        callback). The layout request's Referer names that page; without one the router callback renders it."""
        from urllib.parse import urlsplit

        from flask import has_request_context, request

        ref = urlsplit(request.referrer or "") if has_request_context() else None
        same_origin = bool(ref and ref.netloc and ref.netloc == request.host)
        path = ref.path if same_origin else None
        return html.Div([
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="rendered", data={"path": path, "search": ("?" + ref.query) if same_origin and ref.query else ""}),
            html.Div(render(path, ref.query if same_origin else "") if path else None, id="page"),
        ])

    app.layout = serve_layout

    @app.callback(Output("page", "children"), Output("rendered", "data"), Input("url", "pathname"),
                  State("url", "search"), State("rendered", "data"))
    def route(pathname, search, rendered):
        from dash import no_update

        if rendered and rendered.get("path") == pathname and rendered.get("search", "") == (search or ""):
            return no_update, None  # the initial layout already holds this page; later visits render again
        return render(pathname, search), None

    return app
