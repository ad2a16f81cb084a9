"""值班处置台 Duty desk (``/incidents``): live incidents filtered on the map and in a fast list, the alert feed,
and each incident's lifecycle with the actions a duty officer may take.

Needs a signed-in leader, duty officer or admin (leaders read; duty officers and admins act). Filters live in
the URL (``status``, ``category``, ``severity``, ``source``, ``level``, ``department``, ``town``, ``zone``,
``grid``, ``win=1h|today|24h|7d|custom`` with ``from``/``to``, ``overdue=1``, ``q``), plus ``incident=<id>``
(the open incident) and ``lang=en``.
"""
from __future__ import annotations

from dash import dcc, html

from ..auth import current_user
from ..callbacks import duty as duty_callbacks
from ..callbacks import duty_alerts
from ..callbacks import duty_query as dq
from ..i18n import t
from ..services import alerts as alert_service
from ..services import duty as data
from ..services import maps
from ..services import tiles as basemap_tiles
from ..services import units
from ..store.models import utcnow
from ..ui import duty as ui
from ..ui.alerts import alert_banner, alert_feed
from ..ui.layers import start_urls
from ..ui.map import district_map, start_zoom
from ..ui.map_controls import hidden_map_inputs, live_feed, map_note
from ..ui.shell import header
from .head import map_preload

LIBRARIES = ("dash_ag_grid",)  # the incident list (pages.head: the other pages' HTML leaves its bundle out)
ASSETS = ("duty.js",)  # the desk's browser side (pages.head: other pages leave it out)
MAP_CHECKED = {"grids": False, "rings": True}  # the desk's map: zones, district, rings, incidents
# the incident layer's url is the list's filter (set in the layout): preload_urls
# and the grid's own code, an async chunk requested only when the list mounts
PRELOAD = map_preload(start_urls(MAP_CHECKED, skip=("incidents",)),
                      scripts=("/_dash-component-suites/dash_ag_grid/async-community.js",))
CLOCK_MS = 1000  # the time-left countdown (browser only)
PULSE_MS = 1000  # the alert markers' pulse (browser only)


def _find(component, id_):
    """The component with ``id_`` inside a layout tree (depth first), or None."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    if children is None:
        return None
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def map_inputs() -> html.Div:
    """The fixed, hidden inputs the shared map callbacks read: no choropleth here, the zones are outlines;
    hotspots (when switched on) for 30 days."""
    return hidden_map_inputs(measure="none")


def map_start_zoom(params: dict) -> float:
    """The map's start zoom as pages.head preloads the outlines for it: the desk's map opens on the whole root, fitted
    by the browser to its panel (this is the zoom of a panel of ``ui.map.VIEW_PX``: the same level of detail on
    the screens it is made for)."""
    return start_zoom(units.root_bounds(), units.hierarchy().levels)


def preload_urls(settings, params: dict) -> tuple[str, ...]:
    """The incident layer's url as :func:`layout` sets it (the list's filter from the URL; pages.head preloads
    it with the page). Nothing for a viewer who may not read the desk."""
    user = current_user()
    if user is None or not user.can_read:
        return ()
    query = dq.api_query(dq.values_from_params(params), utcnow(), settings.duty_window_step_s)
    return (f"/api/map/incidents.json?{query}",)


def _selected(params: dict) -> dict | None:
    raw = params.get("incident")
    if not raw or not raw.isdigit() or len(raw) > 18:
        return None
    d = data.detail(int(raw))
    if d is None:
        return None
    return {"id": d.inc.id, "lat": d.inc.lat, "lon": d.inc.lon, "src": "url"}


def layout(settings, lang: str, params: dict):
    user = current_user()
    if user is None or not user.can_read:
        return html.Div([header(lang, "/incidents", params, t("duty_title", lang), place=units.title(lang)),
                         ui.sign_in_needed(lang, "/incidents")])
    values = dq.values_from_params(params)
    query = dq.api_query(values, utcnow(), settings.duty_window_step_s)
    try:
        listing = data.list_rows(query, lang)
        note = ""
    except data.FilterError as e:  # a hand-edited URL: show the message, start from the defaults
        values = dq.default_values()
        query = dq.api_query(values, utcnow(), settings.duty_window_step_s)
        listing = data.list_rows(query, lang)
        note = duty_callbacks.bad_filter_text(e, lang, defaults=True)
    if listing.total > len(listing.rows):
        note = ui.capped_note(len(listing.rows), listing.total, settings.map_points_max, lang)
    snapshot = alert_service.snapshot()
    selected = _selected(params)
    places = data.place_options(lang, values["town"], values["zone"], counties=values["county"],
                                cities=values["city"])

    # fitted by the browser to the desk's map panel (shorter than the overview's: the view the overview opens at cut
    # off the district's south here)
    home = units.root_bounds()
    the_map = district_map(settings, lang, hideouts={"incidents": {"alerts": sorted(
        {a["incident"]["id"] for a in snapshot["items"]})}}, checked=MAP_CHECKED, bounds=home,
        home=home, tiles=basemap_tiles.basemaps(settings), levels=units.hierarchy().levels)
    layer = _find(the_map, "geo-incidents")
    if layer is not None:
        layer.url = f"/api/map/incidents.json?{query}"  # the list's filter, from the first paint
    # the live stream starts at the list's sequence (the layer shows at least that state) and the banner's
    refresh = live_feed(listing.seq, snapshot["seq"], {"list": {"q": query, "lang": lang},
                                                       "alerts": {"lang": lang, "ack": True}, "rings": {}},
                       reload="duty-reload", truncated="duty-map-truncated",
                       view=maps.view_config())

    return html.Div(className="wx-duty", children=[
        header(lang, "/incidents", params, t("duty_title", lang), place=units.title(lang)),
        html.Div(className="wx-duty-bar", children=[alert_banner(lang, ack=True, sound=True, interval_ms=PULSE_MS,
                                                                 initial=snapshot, can_act=user.can_act),
                                                    ui.user_box(lang, user)]),
        html.Main(className="wx-duty-main", children=[
            ui.filter_panel(lang, values, places),
            html.Section(className="wx-duty-center", children=[
                html.Div(className="wx-duty-map wx-map", id="duty-map-panel",
                         children=[the_map, refresh, map_inputs(),
                                   map_note("duty-map-truncated", t("map_truncated", lang,
                                                                    n=f"{settings.map_points_max:,}"))]),
                html.Div(className="wx-duty-list", children=[
                    ui.list_toolbar(lang, query, note),
                    html.Div(ui.incident_grid(lang, listing.rows, (selected or {}).get("id")),
                             className="wx-grid-wrap"),
                ]),
            ]),
            html.Aside(className="wx-duty-side", children=[alert_feed(lang, snapshot, can_ack=user.can_act),
                                                            ui.detail_panel(lang)]),
        ]),
        dcc.Interval(id="duty-tick", interval=CLOCK_MS),  # the browser's clock (time left); no request
        # relative windows slide: ticks only while one is chosen (an idle desk on any other filter asks nothing)
        dcc.Interval(id="duty-window-tick", interval=settings.duty_window_step_s * 1000,
                     disabled=values["win"] not in dq.RELATIVE_WINDOWS),
        dcc.Store(id="duty-conf", data={"lang": lang, "can_act": user.can_act,
                                        "txt": {"rows": t("duty_rows", lang, n="{n}"),
                                                "colfiltered": t("duty_rows_colfiltered", lang, n="{n}", all="{all}")}}),
        dcc.Store(id="duty-query", data=query),
        dcc.Store(id="duty-map-url"),  # the filtered layer URL, applied to the map once the filter settles
        dcc.Store(id="duty-live", data={"seq": listing.seq, "q": query}),
        dcc.Store(id="duty-delta"),
        dcc.Store(id="duty-applied"),
        dcc.Store(id="duty-selected", data=selected),
        dcc.Store(id="duty-detail-refresh"),
        dcc.Store(id="duty-acts-shown"),
        dcc.Store(id="duty-due"),
        dcc.Store(id="duty-focused"),
        dcc.Store(id="duty-page-search", data=dq.page_search(values, lang)),
        dcc.Store(id="duty-url-synced"),
    ])


def register_callbacks(app) -> None:
    duty_callbacks.register_callbacks(app)
    duty_alerts.register(app)
