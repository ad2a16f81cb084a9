"""Pages, routed by path. Each page module has ``layout(settings, lang, params)`` returning its component tree
and may have ``register_callbacks(app)``, ``LIBRARIES`` and ``PRELOAD`` (what its HTML loads: :mod:`.head`);
adding a page is one line in :data:`PAGES`. :func:`install_pages` puts them on the app: their callbacks, each
page's HTML head, the initial layout (the page the browser is on) and the router.
"""
from __future__ import annotations

from importlib import import_module
from urllib.parse import parse_qsl, urlsplit

PAGES: dict[str, str] = {
    "/": "overview",
    "/briefing": "briefing",
    "/wall": "wall",
    "/incidents": "incidents",
    "/login": "login",
    "/audit": "audit",
    "/notify": "notify",
}


def load_pages() -> dict:
    """Import every page module (component libraries must be imported before any callback runs)."""
    return {path: import_module(f"{__name__}.{name}") for path, name in PAGES.items()}


def install_pages(app, settings) -> dict:
    """Every page on ``app``: the page modules' callbacks, the initial layout and the router callback, and the
    404 status for an unknown page. Returns ``{path: page module}``."""
    from dash import Input, Output, State, dcc, html
    from flask import has_request_context, request

    from ..api.errors import PAGE_CATCH_ALL
    from ..auth import policy
    from ..auth.views import login_url
    from ..i18n import normalise, t
    from ..services import units

    def refused(path: str, lang: str):
        return html.Div([html.H2(t("page_refused", lang)),
                         html.A(t("login_submit", lang), href=login_url(path, lang), id="page-refused-login")],
                        className="wx-404", id="page-refused")

    from . import head

    pages = load_pages()  # before any callback runs: Dash 4 refuses component imports inside callbacks
    head.install(app, pages, settings)  # each page's HTML: only the component bundles it draws, its first paint preloaded

    @app.server.after_request
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
            return html.Div([html.H2("404"), html.A(t("home_link", lang, place=units.title(lang)), href="/")],
                            className="wx-404")
        if not policy.page_allowed(pathname or "/", settings):  # the layout request is checked like the page
            return refused(pathname or "/", lang)
        return page.layout(settings, lang, params)

    def serve_layout():
        """The page the browser is on, rendered into the initial layout (one round trip fewer than routing by
        callback). The layout request's Referer names that page; without one the router callback renders it.

        With a page, ``url`` starts with its path and query, as the browser has them: the location's report when
        it mounts then changes nothing, and the router is not asked for the page the layout already holds."""
        ref = urlsplit(request.referrer or "") if has_request_context() else None
        same_origin = bool(ref and ref.netloc and ref.netloc == request.host)
        path = ref.path if same_origin else None
        where = {"pathname": path, "search": ("?" + ref.query) if ref.query else ""} if path else {}
        return html.Div([
            dcc.Location(id="url", refresh="callback-nav", **where),
            html.Div(render(path, ref.query) if path else None, id="page"),
        ])

    app.layout = serve_layout

    # the page of a client-side route (dcc.Link, the browser's back/forward), or of a layout built without a page
    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"),
                  prevent_initial_call=True)
    def route(pathname, search):
        return render(pathname, search)

    return pages


def callback_levels(app, pages: dict, settings) -> dict:
    """``{callback output key: access class}`` (:mod:`dashboard.auth.policy`): a callback belongs to the pages
    whose layout holds one of its components (outputs, inputs or state; a pattern id by its ``type``) and may be
    called by whoever may open one of them. The router (``page.children``) is open: it renders only pages the
    caller may open."""
    from ..auth import policy

    ids_by_page: dict[str, set] = {}
    with app.server.test_request_context("/"):  # built without a user (a request of its own): nothing personal
        for path, module in pages.items():
            tree = module.layout(settings, "zh", {})
            found = {_id_key(getattr(tree, "id", None))}
            found.update(_id_key(getattr(c, "id", None)) for c in tree._traverse())
            ids_by_page[path] = found - {None}
    levels = {}
    for key, cb in app.callback_map.items():
        deps = list(cb.get("output") if isinstance(cb.get("output"), list) else [cb.get("output")])
        deps += cb.get("raw_inputs") or []
        ids = {_id_key(getattr(d, "component_id", None)) for d in deps} - {None}
        if "page" in ids:
            levels[key] = policy.PUBLIC
            continue
        on = frozenset(path for path, found in ids_by_page.items() if ids & found)
        levels[key] = policy.callback_level(on, settings)
    return levels


def _id_key(cid):
    if isinstance(cid, dict):
        return "type:" + str(cid.get("type"))
    return cid if isinstance(cid, str) else None
