"""What a page's HTML loads before its first paint.

Dash writes one HTML for every path, with the bundle of every component library the app imports: the overview
downloaded and evaluated dash-ag-grid (1.3 MB decoded, the duty desk's list) before its map could draw. Here each
page's HTML keeps only what that page draws, and starts the downloads its first paint waits for:

- ``LIBRARIES`` (page module): the component libraries of :data:`OPTIONAL` the page draws (the duty desk:
  ``dash_ag_grid``). The bundles of the others are left out of its HTML (``dash_table`` and ``dash_extensions``,
  whose ``Namespace`` only names the map's style functions, are drawn by no page).
- ``PRELOAD`` (page module, a :class:`Preload`): the data URLs its first paint fetches (the shown map layers'
  geometry and incidents) and dash-leaflet's GeoJSON chunk, preloaded so they download while the bundles load;
  ``preload_urls(settings, params)`` (page module, optional): those that depend on the page's query (the duty
  desk's filtered incident layer). Dash's own start requests (layout, dependencies) are preloaded on every page.
- ``ASSETS`` (page module): the files of :data:`PAGE_ASSETS` (under ``assets/``) the page uses: the briefing's
  html-to-image, the duty desk's ``duty.js``, the wall's ``wall.js`` / ``wall.css``. Dash links every file of
  ``assets/`` into every page; these are left out of that (``assets_ignore``: :data:`ASSETS_IGNORE`, still served)
  and linked by the pages that name them.

Dash's ``deps/polyfill@7.12.1.min.js`` (@babel/polyfill: core-js 2 for ES5 browsers, ~100 KB evaluated before
anything else) is left out of every page (:data:`DROPPED`): the browsers that run dash-leaflet (ES2015 code) and the
app's own assets have what it adds; of it only regenerator-runtime is used (Dash's loader of lazy components),
vendored as ``assets/vendor/regenerator-runtime-0.13.min.js``.

Async chunks (plotly.js behind ``dcc.Graph``, the dropdown, date picker) were never in the HTML: Dash serves them
when a component needs them. A page reached by a client-side route (``dcc.Link``) in a document built for
another page could need a library this document left out: ``assets/dashboard_app.js`` stands in for each one
named in ``<meta name="wx-deferred-libraries">`` with a component that loads the page afresh; likewise a route to
a page named in ``<meta name="wx-reload-pages">`` (one that uses assets this document lacks) loads it afresh.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl

from flask import Response, request

log = logging.getLogger(__name__)

# component libraries only some pages draw: {window namespace: the path of its bundles under Dash's suites}
OPTIONAL = {
    "dash_ag_grid": "/_dash-component-suites/dash_ag_grid/",
    "dash_table": "/_dash-component-suites/dash/dash_table/",  # Dash always writes it; no page draws a DataTable
    # imported for dash_extensions.javascript.Namespace alone (ui/layers.py: names of functions that dash-leaflet
    # resolves itself); no page draws one of its components
    "dash_extensions": "/_dash-component-suites/dash_extensions/",
}
# scripts Dash writes that no page loads (see the module's docstring)
DROPPED = ("/_dash-component-suites/dash/deps/polyfill@",)
# what dash-renderer fetches once every bundle is evaluated, before it can draw anything: fetched meanwhile (the
# layout is the page the request's Referer names, pages.install_pages: the preload carries the same Referer)
DASH_START = ("/_dash-layout", "/_dash-dependencies")
# dash-leaflet's GeoJSON code is an async chunk, requested only when the first GeoJSON layer mounts
GEOJSON_CHUNK = "/_dash-component-suites/dash_leaflet/async-GeoJSON.js"

# files under assets/ only some pages use (a page's ASSETS): Dash does not link them into every page
PAGE_ASSETS = ("vendor/html-to-image-1.11.13.min.js", "duty.js", "wall.js", "wall.css")
# the plotly.js a dcc.Graph loads (see install_plotly): plotly's finance bundle (bar, pie, scatter, funnel, …: every
# trace type of ui.charts) in place of the full one Dash serves (4.8 MB, with maps, 3-D and the rest)
PLOTLY_BUNDLE = "vendor/plotly-finance-4.1.0.min.js"
PLOTLY_SUITE_PATH = "/_dash-component-suites/plotly/package_data/plotly.min.js"  # where dash-renderer points dcc.Graph
# Dash's assets_ignore (create_app) matches a file's name, not its path
ASSETS_IGNORE = "^(" + "|".join(re.escape(a.rsplit("/", 1)[-1]) for a in (*PAGE_ASSETS, PLOTLY_BUNDLE)) + ")$"

_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="([^"]*)"[^>]*>\s*</script>\n?')


@dataclass(frozen=True)
class Preload:
    fetch: tuple[str, ...] = ()  # data (fetch/XHR, same origin)
    scripts: tuple[str, ...] = ()

    def tags(self) -> str:
        out = [f'<link rel="preload" href="{escape(u)}" as="fetch" crossorigin="anonymous">' for u in self.fetch]
        out += [f'<link rel="preload" href="{escape(u)}" as="script">' for u in self.scripts]
        return "".join(out)


@dataclass(frozen=True)
class Head:
    libraries: frozenset = frozenset()  # of OPTIONAL
    preload: Preload = Preload()
    preload_urls: object = None  # (settings, params) -> data URLs of this request
    # (params) -> the map's start zoom when the page opens it at a zoom of its own (None: fitted to a unit by the
    # browser): a multi-county map's outlines are preloaded at that zoom's level of detail (ui.layers.start_urls_for)
    start_zoom: object = None
    assets: tuple = ()  # of PAGE_ASSETS
    reload_pages: tuple = ()  # the paths of the pages that use assets this page's HTML lacks (install sets it)

    @property
    def deferred(self) -> tuple[str, ...]:
        return tuple(sorted(set(OPTIONAL) - set(self.libraries)))

    def scripts(self, html: str) -> str:
        """Dash's script tags without the bundles of the libraries this page does not draw (nor :data:`DROPPED`)."""
        left_out = tuple(OPTIONAL[name] for name in self.deferred) + DROPPED
        return _SCRIPT.sub(lambda m: "" if any(p in m.group(1) for p in left_out) else m.group(0), html)

    def metas(self, urls=(), levels=None, zoom=None) -> str:
        """The page's head tags; ``urls``: data URLs of this request to preload too; ``levels``: the served set's
        (a multi-county map fetches other layers at start: ``ui.layers.start_urls_for``, at ``zoom``)."""
        from ..ui.layers import request_urls_for, start_urls_for

        preload = self.preload
        if levels is not None:
            preload = Preload(fetch=start_urls_for(preload.fetch, levels, zoom), scripts=preload.scripts)
            urls = request_urls_for(urls, levels)
        deferred = " ".join(self.deferred)
        return (f'<meta name="wx-deferred-libraries" content="{deferred}">'
                + f'<meta name="wx-reload-pages" content="{escape(" ".join(self.reload_pages))}">'
                + Preload(fetch=DASH_START).tags() + preload.tags() + Preload(fetch=tuple(urls)).tags())

    def asset_tags(self, url_of) -> tuple[str, str]:
        """(stylesheet links, script tags) of the page's own :data:`PAGE_ASSETS`; ``url_of(name)``: its URL."""
        urls = [(a, escape(url_of(a))) for a in self.assets]
        css = "".join(f'<link rel="stylesheet" href="{u}">' for a, u in urls if a.endswith(".css"))
        js = "".join(f'<script src="{u}"></script>' for a, u in urls if a.endswith(".js"))
        return css, js


def install_plotly(app) -> None:
    """Serve :data:`PLOTLY_BUNDLE` where a ``dcc.Graph`` loads plotly.js from (:data:`PLOTLY_SUITE_PATH`: dash-renderer
    writes that URL, unversioned, for a Dash that serves its files itself). The full bundle Dash serves there took
    1.3–1.5 s of the browser's main thread to load and evaluate here (its download and evaluation are one task), the
    finance bundle ~0.3 s: the first click after the overview's charts mount waited behind it. Answered as Dash
    answers an unversioned file (an ETag, 304 when unchanged); other paths of the suites go on to Dash."""
    server = app.server
    path = Path(app.config.assets_folder) / PLOTLY_BUNDLE
    if not path.is_file():
        raise RuntimeError(f"plotly.js bundle missing: {path}")
    body = path.read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]
    endpoint = next(r.endpoint for r in server.url_map.iter_rules() if r.rule.startswith("/_dash-component-suites/"))
    view = server.view_functions[endpoint]

    def suites(*args, **kwargs):
        if request.path != PLOTLY_SUITE_PATH:
            return view(*args, **kwargs)
        # bytes, not a file: compressed as Dash's own files are (Flask-Compress passes a streamed file by)
        resp = Response(body, mimetype="application/javascript")
        resp.set_etag(etag)
        resp.cache_control.no_cache = True  # unversioned URL: revalidated, 304 while unchanged
        return resp.make_conditional(request)

    suites.__name__ = getattr(view, "__name__", "serve")
    server.view_functions[endpoint] = suites


def map_preload(urls, scripts=()) -> Preload:
    """A map page's preloads: ``urls`` (its shown layers' data), the GeoJSON chunk and ``scripts``."""
    return Preload(fetch=tuple(u for u in urls if u), scripts=(GEOJSON_CHUNK, *scripts))


def head_of(module) -> Head:
    libraries = frozenset(getattr(module, "LIBRARIES", ()))
    unknown = libraries - set(OPTIONAL)
    if unknown:
        raise ValueError(f"{module.__name__}.LIBRARIES: not optional libraries: {sorted(unknown)}")
    assets = tuple(getattr(module, "ASSETS", ()))
    if set(assets) - set(PAGE_ASSETS):
        raise ValueError(f"{module.__name__}.ASSETS: not page assets: {sorted(set(assets) - set(PAGE_ASSETS))}")
    return Head(libraries=libraries, preload=getattr(module, "PRELOAD", Preload()),
                preload_urls=getattr(module, "preload_urls", None), start_zoom=getattr(module, "map_start_zoom", None),
                assets=assets)


def with_reloads(heads: dict) -> dict:
    """Each head with the pages a client-side route must load afresh from it: those using an asset it lacks."""
    from dataclasses import replace

    def lacking(head):
        return tuple(sorted(p for p, other in heads.items() if set(other.assets) - set(head.assets)))

    return {path: replace(head, reload_pages=lacking(head)) for path, head in heads.items()}


def asset_url(app, name: str) -> str:
    """The URL of ``assets/<name>`` as Dash writes its own (with the file's modification time, for caches)."""
    import os

    mtime = int(os.path.getmtime(os.path.join(app.config.assets_folder, name)))
    return f"{app.get_asset_url(name)}?m={mtime}"


def _request_urls(head: Head, settings, query: str) -> tuple[str, ...]:
    if head.preload_urls is None:
        return ()
    try:
        return tuple(head.preload_urls(settings, dict(parse_qsl(query))))
    except Exception:  # noqa: BLE001 - a preload is a hint: the page itself reports a bad query
        log.debug("no request preloads", exc_info=True)
        return ()


def _start_zoom(head: Head, levels, query: str):
    """The page's map start zoom for a multi-county set (None: not known before the browser fits the map)."""
    if head.start_zoom is None or levels is None or "county" not in levels:
        return None
    try:
        return head.start_zoom(dict(parse_qsl(query)))
    except Exception:  # noqa: BLE001 - a preload is a hint
        log.debug("no start zoom", exc_info=True)
        return None


def _levels():
    """The served set's levels (None when the geodata cannot be read: the page reports that itself)."""
    try:
        from ..services import units

        return units.hierarchy().levels
    except Exception:  # noqa: BLE001 - a preload is a hint
        return None


def page_title(lang: str | None) -> str:
    """The HTML title: the app's title with the district's name from the geodata (``services.units.title``)."""
    from html import escape

    from ..i18n import normalise, t
    from ..services import units

    lang = normalise(lang)
    return escape(t("app_title", lang, place=units.title(lang)))


def install(app, pages: dict, settings) -> dict:
    """Each page's HTML (``pages``: ``{path: page module}``) with its own scripts and preloads; any other path
    (the 404 view) gets the common bundles only; a dcc.Graph's plotly.js is :data:`PLOTLY_BUNDLE`
    (:func:`install_plotly`). Returns ``{path: Head}``."""
    from flask import has_request_context

    install_plotly(app)
    heads = with_reloads({path: head_of(module) for path, module in pages.items()})
    common = Head(reload_pages=tuple(sorted(p for p, h in heads.items() if h.assets)))
    tags = {path: h.asset_tags(lambda name: asset_url(app, name)) for path, h in heads.items()}
    plain = app.interpolate_index

    def interpolate_index(**kwargs):
        head = heads.get(request.path, common) if has_request_context() else common
        urls = _request_urls(head, settings, request.query_string.decode("latin-1")) if has_request_context() else ()
        if has_request_context():  # the title names the district served (the geodata's root unit), in the page's language
            kwargs["title"] = page_title(request.args.get("lang"))
        css, js = tags.get(request.path, ("", "")) if has_request_context() else ("", "")
        kwargs["css"] = kwargs.get("css", "") + css
        kwargs["scripts"] = head.scripts(kwargs.get("scripts", "")) + js
        levels = _levels() if has_request_context() else None
        zoom = _start_zoom(head, levels, request.query_string.decode("latin-1")) if has_request_context() else None
        kwargs["metas"] = kwargs.get("metas", "") + head.metas(urls, levels, zoom)
        return plain(**kwargs)

    app.interpolate_index = interpolate_index
    return heads
