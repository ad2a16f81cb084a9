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
    server = app.server
    server.config["SECRET_KEY"] = settings.secret_key
    server.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
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

    pages = load_pages()  # before any callback runs: Dash 4 refuses component imports inside callbacks
    for module in pages.values():
        if hasattr(module, "register_callbacks"):
            module.register_callbacks(app)

    app.layout = html.Div([dcc.Location(id="url", refresh="callback-nav"), html.Div(id="page")])

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname, search):
        params = dict(parse_qsl((search or "").lstrip("?")))
        lang = normalise(params.get("lang"))
        page = pages.get(pathname or "/")
        if page is None:
            return html.Div([html.H2("404"), html.A("吴兴区指挥中心 / Home", href="/")], className="wx-404")
        return page.layout(settings, lang, params)

    return app
