"""Wuxing District command-centre map dashboard.

``create_app(settings)`` is the application factory: it builds the Dash app, its Flask server, the shared
cache and store, and registers the HTTP blueprints and the page router. It keeps no mutable module state.
"""
from __future__ import annotations

from urllib.parse import parse_qsl

import dash
from dash import Input, Output, State, dcc, html

from .settings import Settings

__all__ = ["create_app", "Settings"]


def _init_store(server, settings: Settings):
    from . import store

    engine = store.make_engine(settings.sqlalchemy_url)
    store.init_db(engine)
    return engine, store.session_factory(engine)


def create_app(settings: Settings | None = None, *, with_store: bool = True) -> dash.Dash:
    from .api import geo
    from .cache import init_cache
    from .context import Services
    from .i18n import normalise
    from .pages import overview  # component libraries must be imported before any callback runs

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
    server = app.server
    server.config["SECRET_KEY"] = settings.secret_key
    server.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    server.config["COMPRESS_MIMETYPES"] = ["application/json", "text/html", "text/css", "application/javascript"]
    cache = init_cache(server, settings.cache_config)

    engine = sessions = None
    if with_store:
        engine, sessions = _init_store(server, settings)
    server.extensions["wuxing"] = Services(settings=settings, cache=cache, engine=engine, sessions=sessions)

    server.register_blueprint(geo.bp)
    if with_store:
        from .api import register_incident_api

        register_incident_api(server)

    @server.get("/healthz")
    def healthz():
        return {"status": "ok"}

    app.layout = html.Div([dcc.Location(id="url", refresh="callback-nav"), html.Div(id="page")])

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname, search):
        from .context import services

        params = dict(parse_qsl((search or "").lstrip("?")))
        lang = normalise(params.get("lang"))
        gd = services().geodata()
        counts = {"towns": len(gd.towns), "zones": len(gd.zones), "grids": len(gd.grids)}
        return overview.layout(settings, lang, params, counts)

    return app
