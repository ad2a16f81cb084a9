"""Drill-down callbacks (thin): the URL query is the one place the view lives.

- user actions → ``url.search`` (dcc.Location pushes a history entry; the breadcrumb items are links that do the
  same): a map click on a unit in the browser (``wx.map.drillQuery``, the rule of :func:`next_state`), a ranking-bar
  click or a period choice here;
- ``url.search`` (also browser back / forward, a pasted link) → at once ``view-state``, the period controls and the
  map's highlight and flight to the unit (one answer), and the panel's text (breadcrumb, title, cards, profile;
  another);
- the panel's text in → its charts and the lifecycle charts once mounted (``text-shown`` → ``panel-request``);
  then the GIS export links.
"""
from __future__ import annotations

import json

from dash import ALL, Input, Output, Patch, State, ctx, no_update

from ..services import drill, units
from ..ui import gis as gis_ui
from ..ui import panel
from ..domain.levels import LAYER_LEVEL

GEO_LAYERS = ("towns", "zones", "grids", "counties", "cities")  # every page holds each (ui.layers.absent_layers)


def _hierarchy():
    return units.hierarchy()


def _feature_code(click) -> str | None:
    """The unit code of a dash-leaflet GeoJSON click (the feature, or {"properties": …})."""
    if not isinstance(click, dict):
        return None
    props = click.get("properties") or (click.get("feature") or {}).get("properties") or {}
    return props.get("code")


def next_state(trigger: str | None, value, state: dict, h, start=None, end=None) -> dict | None:
    """The view after a user action, or None when the action changes nothing (pure; unit-tested). A map click
    (``geo-*``) is applied in the browser (``wx.map.drillQuery``): this is its rule, which the e2e tests hold the
    browser's to."""
    state = dict(state or {"level": "district", "code": None, "period": "30d", "from": None, "to": None})
    if trigger in tuple(f"geo-{name}" for name in GEO_LAYERS):
        target = drill.drill_target(h, state, trigger[4:], _feature_code(value))
        if target is None:
            return None
        return {**state, "level": target[0], "code": target[1]}
    if trigger == "chart-ranking":
        points = (value or {}).get("points") or []
        if not points or not points[0].get("customdata"):
            return None
        code, level = points[0]["customdata"][:2]
        if not h.exists(level, code):
            return None
        return {**state, "level": level, "code": code}
    if trigger == "period-select":
        if value == "custom":
            first = start or state.get("from")
            last = end or state.get("to")
            if not first:
                p = drill.period_of(state)
                first, last = p.first_day, p.last_day
            return {**state, "period": "custom", "from": first, "to": last or first}
        return {**state, "period": value, "from": None, "to": None}
    if trigger in ("period-range", "period-range.start_date", "period-range.end_date"):
        if state.get("period") != "custom" or not start:
            return None
        return {**state, "from": start[:10], "to": (end or start)[:10]}
    return None


def _drill_query(trig, value, search, state=None, start=None, end=None):
    """The URL query after a drill or period action (no_update when nothing changes)."""
    from urllib.parse import parse_qsl

    h = _hierarchy()
    current = drill.state_from_query(search, h)
    new = next_state(trig, value, state or current, h, start, end)
    if new is None:
        return no_update
    lang = "en" if dict(parse_qsl((search or "").lstrip("?"))).get("lang") == "en" else "zh"
    query = drill.query_for(new, lang)
    if query == drill.query_for(current, lang):
        return no_update
    return query


# the graphs of the panel's charts, in ui.panel.CHART_PARTS' order
CHART_IDS = ("chart-ranking", "chart-trend", "chart-category", "chart-level", "chart-dept")

# the panel's text parts (ui.panel.TEXT_PARTS) and the view they show (``text-shown``: the charts follow it)
TEXT_OUTPUTS = (("breadcrumb", "children"), ("unit-title", "children"), ("kpi-cards", "children"),
                ("profile-box", "children"), ("period-label", "children"), ("text-shown", "data"))


def _text(state: dict, lang: str | None) -> tuple:
    """The panel's text for a view, in TEXT_OUTPUTS' order."""
    lang = lang or "zh"
    out = panel.render_text(drill.panel_text_values(state, lang, panel.RANK_KPIS), lang)
    return (*(out[k] for k in panel.TEXT_PARTS), {"state": state})


def _map_view(known: dict | None, state: dict):
    """What the map does for a view, drawn in the browser by ``wx.map.select`` (``map-selected``; no_update when it
    does nothing): ``selected`` — the unit selected in each unit layer ({layer: code or None}; None when no layer's
    selection changes): only the polygons whose selection changes are restyled — and ``flight`` — the flight to the
    unit ({bounds, duration, padding}; None when the unit stays: a period change).
    A highlight sent as the layers' ``hideout`` had dash-leaflet (1.1.3) rebuild every polygon of each layer whose
    selection changed (its ``clearLayers`` and ``addData`` on any hideout change): the counties and the zones in view
    on a county → zone click, on the main thread while the panel's text was arriving. The flight sent as the map's
    ``viewport`` re-rendered the map's component, and its children through dash-renderer, for a call the browser
    makes in one line."""
    target = drill.map_target(state)
    before = drill.map_target(known) if known else {"level": None, "code": None}

    def selection(t):
        return {name: (t["code"] if LAYER_LEVEL[name] == t["level"] else None) for name in GEO_LAYERS}

    now = selection(target)
    chosen = now if now != selection(before) else None
    flight = None
    if (before["level"], before["code"]) != (target["level"], target["code"]):
        flight = {"bounds": target["bounds"], "duration": 0.8, "padding": [20, 20]}
    if chosen is None and flight is None:
        return no_update
    return {"selected": chosen, "flight": flight}


def _period_box(state: dict, known: dict | None, shown_starts, shown_ends):
    """The custom period's picker for a view: none for a standard period (its chunk is loaded only when a custom
    period is chosen); when the picker is there, only the dates it does not already show follow the URL (back /
    forward, a link). A URL the picker itself just wrote sets nothing: patching its other date back would undo a
    date the user typed while this answer was on its way (a busy server), and the URL would follow the undo."""
    if state["period"] != "custom":
        return None
    p = drill.period_of(state)
    first, last = state["from"] or p.first_day, state["to"] or p.last_day
    if (known or {}).get("period") == "custom" and shown_starts:
        picker = Patch()
        changed = False
        if str(shown_starts[0] or "")[:10] != first:
            picker["props"]["start_date"] = first
            changed = True
        if str((shown_ends or [None])[0] or "")[:10] != last:
            picker["props"]["end_date"] = last
            changed = True
        return picker if changed else no_update
    return panel.period_range(first, last)


def register_callbacks(app) -> None:
    # The panel's charts are mounted once the map has drawn its polygons and markers (or after 6 s): mounting
    # a dcc.Graph loads plotly.js, and evaluating it and drawing seven charts would hold the main thread while
    # the map waits. No open incident at all (no marker to wait for): ready once the incident data is in, empty.
    # The browser watches the map itself (wx.map.whenDrawn): no Dash callback runs while it waits. The reason is
    # left on <body data-map-ready> for ops and tests.
    # Once drawn, the first load's view asks for the panel's text too (``text-request``, set here, not by a callback:
    # a callback whose input waits on this promise would hold the text of a click made before the map has drawn —
    # up to 6 s), unless the panel shows a view already (a click came first: ``wx.panel``).
    app.clientside_callback(
        """function (_lang, state) {
            return window.wx.map.whenDrawn(6000).then(function (reason) {
                document.body.dataset.mapReady = reason;
                if (!window.wx.panel.hasShown()) {
                    window.dash_clientside.set_props("text-request", {data: {state: state}});
                }
                return true;
            });
        }""",
        Output("map-ready", "data"), Input("ov-lang", "data"), State("view-state", "data"),
    )

    @app.callback(*[Output(f"slot-{gid}", "children") for gid, _, _ in panel.CHARTS],
                  Output("charts-mounted", "data"), Input("map-ready", "data"), prevent_initial_call=True)
    def mount_charts(_ready):
        return (*panel.chart_graphs(), True)

    # The view reaches the panel callbacks only once the graphs exist (a callback whose output is not in the
    # layout yet is an error in the browser), and the lifecycle charts only when the unit or period changed or
    # the store did: the KPI cards follow each change through the live stream (``callbacks.pushed``, part
    # ``cards``); the charts follow ``charts-seq``, which ``assets/live.js`` moves at most once a minute while
    # changes come (a chart redrawn each second informs nobody, and costs every open overview a request).
    # The charts of a view are asked for once its text is in (``text-shown``, set with the text by
    # ``show_text``): three panel callbacks at once shared the server's interpreter and the charts' drawing held the
    # browser, so the title came last; now the title and cards come first, then the charts.
    app.clientside_callback(
        """function (shown, kpi, freq, mounted, seq) {
            if (!mounted || !shown) { return window.dash_clientside.no_update; }
            return {state: shown.state, kpi: kpi, freq: freq, seq: seq};
        }""",
        Output("panel-request", "data"),
        Input("text-shown", "data"), Input("ranking-kpi", "value"), Input("trend-freq", "value"),
        Input("charts-mounted", "data"), Input("charts-seq", "data"),
    )
    app.clientside_callback(
        """function (shown, mounted, seq) {
            if (!mounted || !shown) { return window.dash_clientside.no_update; }
            return {state: shown.state, seq: seq};
        }""",
        Output("lifecycle-request", "data"),
        Input("text-shown", "data"), Input("charts-mounted", "data"), Input("charts-seq", "data"),
    )

    # Map clicks drill on the overview, in the browser (``wx.map.drillQuery``: the rule of ``drill_target``, which the
    # e2e tests hold it to): the URL is written at once, and the view's requests go out with no round trip before
    # them. Triggered by the click count, not the click data: clicking the grid that took you into its zone clicks the
    # same feature again, which leaves ``clickData`` unchanged. Only map and URL inputs here: the same map (same
    # layer ids) is on other pages too, where this callback must find every input and do nothing.
    app.clientside_callback(
        """function () {
            var names = %s, n = names.length, args = arguments, noUpdate = window.dash_clientside.no_update;
            var search = args[2 * n], pathname = args[2 * n + 1];
            var trig = ((window.dash_clientside.callback_context.triggered || [])[0] || {}).prop_id || "";
            var i = names.indexOf(trig.split(".")[0].replace(/^geo-/, ""));
            if ((pathname || "/") !== "/" || i < 0) { return noUpdate; }
            var click = args[n + i] || {};
            var props = click.properties || (click.feature || {}).properties;
            return window.wx.map.drillQuery(names[i], props, search) || noUpdate;
        }""" % json.dumps(list(GEO_LAYERS)),
        Output("url", "search", allow_duplicate=True),
        *[Input(f"geo-{name}", "n_clicks") for name in GEO_LAYERS],
        *[State(f"geo-{name}", "clickData") for name in GEO_LAYERS],
        State("url", "search"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )

    @app.callback(Output("url", "search", allow_duplicate=True), Input("chart-ranking", "clickData"),
                  State("view-state", "data"), State("url", "search"), prevent_initial_call=True)
    def act_on_chart(c_bar, state, search):
        """A ranking-bar click drills (the chart is mounted after the map's first draw, hence its own callback)."""
        return _drill_query("chart-ranking", c_bar, search, state)

    # The custom period's date picker is in the panel only while the period is custom (``ui.panel.period_range``):
    # a pattern-matching input, an empty list when it is not there.
    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("period-select", "value"),
        Input({**panel.PERIOD_RANGE, "i": ALL}, "start_date"),
        Input({**panel.PERIOD_RANGE, "i": ALL}, "end_date"),
        State("view-state", "data"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def act(period_key, starts, ends, state, search):
        trig = "period-select" if ctx.triggered_id == "period-select" else "period-range"
        value = period_key if trig == "period-select" else None
        start, end = (starts or [None])[0], (ends or [None])[0]
        return _drill_query(trig, value, search, state, start, end)

    # The view follows the URL at once, in two answers asked for together: the view state, the period controls and
    # the map's highlight and flight (``from_url``), and the panel's text — breadcrumb, title, cards, profile
    # (``show_text``; a callback of the overview's own components only: the map's are on the wall too, and a
    # callback is open to whoever may open a page holding one of its components). A map click's drill is then these
    # two requests, sent together as the browser writes the URL, where it was five in a chain.
    # What did not change is left alone: the period select (its change would run ``act`` for nothing), the map's
    # highlight when no layer's selected unit changes, the map's view when the unit stays.
    @app.callback(
        Output("view-state", "data"),
        Output("period-select", "value"),
        Output("period-range-box", "children"),
        Output("map-selected", "data"),
        Input("ov-url", "search"),
        State("ov-url", "pathname"),
        State("view-state", "data"),
        State("period-select", "value"),
        State({**panel.PERIOD_RANGE, "i": ALL}, "start_date"),
        State({**panel.PERIOD_RANGE, "i": ALL}, "end_date"),
        prevent_initial_call=True,
    )
    def from_url(search, pathname, known, shown_period, shown_starts, shown_ends):
        n_out = 4
        if (pathname or "/") != "/":
            return (no_update,) * n_out
        state = drill.state_from_query(search, _hierarchy())
        if known == state:
            return (no_update,) * n_out
        period = state["period"] if state["period"] != shown_period else no_update
        return (state, period, _period_box(state, known, shown_starts, shown_ends), _map_view(known, state))

    # the highlight and the flight are drawn in the browser: the polygons whose selection changed are restyled, no
    # layer is redrawn
    app.clientside_callback(
        """function (view) { return window.wx.map.select(view); }""",
        Output("map-selected-drawn", "data"), Input("map-selected", "data"), prevent_initial_call=True,
    )

    # The panel's text: of the view the URL names when it changes, and on a page's first load of the view it was
    # opened with, once the map has drawn (``text-request``, set with ``map-ready`` above). One callback for both, so
    # that the renderer keeps only the newest of its answers: a first click while the page's first text was still on
    # its way was overwritten by it.
    @app.callback(
        *[Output(out_id, prop) for out_id, prop in TEXT_OUTPUTS],
        Input("ov-url", "search"),
        Input("text-request", "data"),
        State("ov-url", "pathname"),
        State("text-shown", "data"),
        State("ov-lang", "data"),
        prevent_initial_call=True,
    )
    def show_text(search, request, pathname, shown, lang):
        if ctx.triggered_id == "text-request":
            state = (request or {}).get("state") or {}
        elif (pathname or "/") != "/":
            return (no_update,) * len(TEXT_OUTPUTS)
        else:
            state = drill.state_from_query(search, _hierarchy())
            if (shown or {}).get("state") == state:
                return (no_update,) * len(TEXT_OUTPUTS)
        return _text(state, lang)

    # The charts' figures of a view come in one answer and are drawn in the browser one per task, each only while the
    # panel still shows that view (``wx.panel.draw``, assets/dashboard_app.js): seven plotly charts drawn at once held
    # the main thread for up to a second, and a click meanwhile waited for all of them.
    @app.callback(Output("charts-data", "data"), Input("panel-request", "data"), State("ov-lang", "data"),
                  prevent_initial_call=True)
    def show(request, lang):
        request = request or {}
        lang = lang or "zh"
        state = request.get("state") or {}
        values = drill.panel_chart_values(state, lang, request.get("kpi"), request.get("freq"))
        out = panel.render_charts(values, lang)
        return {"state": state, "figures": {gid: out[k] for gid, k in zip(CHART_IDS, panel.CHART_PARTS)}}

    @app.callback(Output("lifecycle-data", "data"), Input("lifecycle-request", "data"), State("ov-lang", "data"),
                  prevent_initial_call=True)
    def show_lifecycle(request, lang):
        state = (request or {}).get("state") or {}
        funnel, stages = panel.render_lifecycle(drill.lifecycle_values(state), lang or "zh")
        return {"state": state, "figures": {"chart-funnel": funnel, "chart-stages": stages}}

    app.clientside_callback(
        """function (shown) { return window.wx.panel.show((shown || {}).state); }""",
        Output("charts-drawn", "data", allow_duplicate=True), Input("text-shown", "data"), prevent_initial_call=True,
    )
    for group in ("charts", "lifecycle"):
        app.clientside_callback(
            """function (data) { return window.wx.panel.draw("%s", data); }""" % group,
            Output("charts-drawn", "data", allow_duplicate=True), Input(f"{group}-data", "data"),
            prevent_initial_call=True,
        )

    @app.callback(Output("ov-gis-gpkg", "href"), Output("ov-gis-shp", "href"), Input("text-shown", "data"),
                  prevent_initial_call=True)
    def gis_links(shown):
        """The GIS export links follow the view: its period and unit (``services.drill.gis_query``) — once the panel
        shows it (asked for beside the text, they shared the server with it)."""
        return gis_ui.hrefs(drill.gis_query((shown or {}).get("state") or {}))
