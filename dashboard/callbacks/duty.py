"""Duty desk callbacks (thin): filters → URL, map layer URL, list; live list updates; selection; detail; actions.

Server side (through ``services.duty``): filter parsing (``services.filters``, the list API's own parser), the
list and its incremental changes, the detail and the lifecycle steps (role checked here on every step). Browser side (``assets/duty.js``, ``window.wx.duty``):
applying list changes to the grid by row id, linking grid rows and map markers, flying the map, the URL and
the countdown.
"""
from __future__ import annotations

import json
import time

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update

from ..i18n import STRINGS, t
from ..services import duty as data
from ..services.filters import FilterError, query_filter
from ..store import catalogue, lifecycle
from ..store.models import utcnow
from ..ui import duty as ui
from ..ui import gis as gis_ui
from . import duty_query as dq

FILTER_INPUTS = ("duty-status", "duty-category", "duty-severity", "duty-source", "duty-level", "duty-department",
                 "duty-city", "duty-county", "duty-town", "duty-zone", "duty-grid-code", "duty-window", "duty-from", "duty-to", "duty-overdue",
                 "duty-q")
MAP_URL = "/api/map/incidents.json"


def export_hrefs(query: str, lang: str) -> tuple[str, str, str, str]:
    """(CSV, Excel, GeoPackage, Shapefile zip) export URLs of the desk's filter ``query``."""
    suffix = "&lang=en" if lang == "en" else ""
    return (f"/api/v1/incidents/export.csv?{query}{suffix}", f"/api/v1/incidents/export.xlsx?{query}{suffix}",
            *gis_ui.hrefs(query))


def bad_filter_text(e, lang: str, *, defaults: bool = False) -> str:
    """A refused filter in the officer's language: which control, and the API's own words for the detail.
    ``defaults``: the page fell back to the default filter (a bad link); otherwise the change was not applied."""
    key = f"duty_f_{getattr(e, 'field', None)}"  # the filter control's label
    if key in STRINGS:
        return t("duty_bad_filter_defaults" if defaults else "duty_bad_filter_field", lang, field=t(key, lang),
                 msg=e.args[0])
    return t("duty_bad_filter", lang, msg=e.args[0])


def _settings():
    from ..context import services

    return services().settings


def _step_s() -> int:
    return _settings().duty_window_step_s


def apply_filters(values: dict, lang: str, query: str | None = None) -> dict:
    """Everything a filter change updates; ``error`` set (and nothing else) when the API would refuse it."""
    query = query or dq.api_query(values, utcnow(), _step_s())
    try:
        query_filter(query)
    except FilterError as e:
        return {"error": bad_filter_text(e, lang)}
    csv_href, xlsx_href, gpkg_href, shp_href = export_hrefs(query, lang)
    return {"error": "", "query": query, "map_url": f"{MAP_URL}?{query}", "csv": csv_href, "xlsx": xlsx_href,
            "gpkg": gpkg_href, "shp": shp_href, "search": dq.page_search(values, lang)}


def sync_list(query: str, live: dict | None, lang: str, selected: dict | None, *, reload: bool):
    """(rowData, live, delta, note, detail_refresh) — a full list on a new filter, else only the changes."""
    from ..auth import audience, current_principal

    nothing = (no_update,) * 5
    if not query:
        return nothing
    who = audience(current_principal())  # the guard let only readers call: staff or personal
    if not reload and live and live.get("q") == query:
        if data.latest_seq() <= live.get("seq", 0):
            return nothing
        d = data.delta(query, lang, live["seq"], who)
        if d is not None:
            bump = no_update
            if selected and selected.get("id") in d["changed"]:
                bump = time.time()
            d["q"] = query
            return no_update, {"seq": d["seq"], "q": query}, d, no_update, bump
    try:
        listing = data.list_rows(query, lang, who)
    except FilterError as e:
        return no_update, no_update, no_update, bad_filter_text(e, lang), no_update
    note = ui.capped_note(len(listing.rows), listing.total, _settings().map_points_max, lang)
    return listing.rows, {"seq": listing.seq, "q": query}, no_update, note, time.time()


def act(incident_id: int, to: str, *, note, department, worker, outcome, lang: str) -> tuple[bool, str]:
    """One lifecycle step as the signed-in duty officer (role and origin checked here, server-side)."""
    from ..auth import ACT_ROLES, AuthError, authorize
    from ..store.incidents import IncidentNotFound
    from ..store.lifecycle import TransitionError

    try:
        user = authorize(ACT_ROLES)
    except AuthError as e:
        return False, t("duty_refused", lang, msg=e.message)
    if to not in lifecycle.STATES:
        return False, t("duty_refused", lang, msg=f"unknown step {to}")
    note = (note or "").strip()[:2000] or None
    actor, role = user.name, "duty_officer"
    if to == "verified":
        worker = (worker or "").strip()[:64]
        if not worker:
            return False, t("duty_need_worker", lang)
        actor, role = worker, lifecycle.VERIFIER_ROLE  # the grid worker verifies on site; the officer records it
        recorded = t("duty_verify_recorded", lang, worker=worker, officer=user.name)
        note = f"{recorded}; {note}" if note else recorded
    if to == "assigned" and department not in catalogue.DEPARTMENTS:
        return False, t("duty_need_department", lang)
    try:
        data.transition(incident_id, to, actor=actor, actor_role=role, note=note,
                        department=department if to == "assigned" else None,
                        outcome=outcome if to == "closed" and outcome in ("resolved", "unresolved") else None)
    except IncidentNotFound:
        return False, t("duty_not_found", lang)
    except TransitionError as e:
        return False, refused_text(e, to, lang)
    return True, t("duty_done", lang, step=t(f"duty_act_{to}", lang))


def refused_text(e, to: str, lang: str) -> str:
    """A refused lifecycle step in the officer's language (the API's English message stays in the API)."""
    i = 1 if lang == "en" else 0
    if e.reason != "invalid_transition" or e.current not in lifecycle.STATES:
        return t("duty_refused", lang, msg=e.message)
    allowed = ("、" if i == 0 else ", ").join(lifecycle.STATES[s][i] for s in e.allowed if s in lifecycle.STATES)
    return t("duty_refused_state", lang, current=lifecycle.STATES[e.current][i],
             step=t(f"duty_act_{to}", lang) if to in lifecycle.STATES else to,
             allowed=allowed or t("duty_refused_none", lang))


def time_texts(lang: str) -> dict:
    units = ({"dh": "{d} d {h} h", "hm": "{h} h {m} min", "m": "{m} min"} if lang == "en"
             else {"dh": "{d}天{h}小时", "hm": "{h}小时{m}分", "m": "{m}分钟"})
    return {"left": t("duty_left", lang), "overdue_by": t("duty_overdue_by", lang), "units": units}


def render_detail(selected: dict | None, lang: str):
    """(body, due, due_hidden, form_hidden, buttons, dept_hidden, dept, worker_hidden, worker, outcome_hidden,
    readonly_hidden, acts): ``acts`` names what the action form shows (the incident, its state, whether the user
    may act, the language), ``None`` when there is nothing to act on."""
    from ..auth import audience, current_user

    empty = ([ui.html.Div(t("duty_detail_empty", lang), className="wx-empty")], None, True, True, [], True,
             no_update, True, no_update, True, True, None)
    if not selected or not selected.get("id"):
        return empty
    user = current_user()
    if user is None or not user.can_read:
        return empty
    d = data.detail(int(selected["id"]), lang, audience(user))
    if d is None:
        return ([ui.html.Div(t("duty_not_found", lang), className="wx-empty")],) + empty[1:]
    inc = d.inc
    body = ui.detail_body(d, lang)
    due = {"due": inc.due_at.isoformat(), "closed": inc.status == "closed", "id": inc.id, "lat": inc.lat,
           "lon": inc.lon, "txt": time_texts(lang)}
    nxt = lifecycle.next_states(inc.status)
    can_act = user.can_act and bool(nxt)
    cat = catalogue.CATEGORIES.get(inc.category)
    return (body, due, inc.status == "closed", not can_act, ui.action_buttons(nxt, lang) if can_act else [],
            "assigned" not in nxt, cat.department if cat else None,
            "verified" not in nxt, d.worker or "",
            not ("closed" in nxt and inc.category.startswith("dispute.")),
            user.can_act, f"{inc.id}:{inc.status}:{int(can_act)}:{lang}")


def register_callbacks(app) -> None:
    @app.callback(
        Output("duty-query", "data"),
        Output("duty-map-url", "data"),
        Output("duty-export-csv", "href"),
        Output("duty-export-xlsx", "href"),
        Output("duty-export-gpkg", "href"),
        Output("duty-export-shp", "href"),
        Output("duty-page-search", "data"),
        Output("duty-filter-msg", "children"),
        Output("duty-custom", "hidden"),
        *[Input(i, "value") for i in FILTER_INPUTS],
        Input("duty-window-tick", "n_intervals"),
        State("duty-conf", "data"),
        State("duty-query", "data"),
        prevent_initial_call=True,
    )
    def filters(*args):
        *controls, _tick, conf, current = args
        lang = (conf or {}).get("lang", "zh")
        values = dq.values_from_controls(*controls)
        query = None
        if ctx.triggered_id == "duty-window-tick":  # time passed: only a relative window that moved on
            query = dq.slid_query(values, utcnow(), current, _step_s())
            if query is None:
                return (no_update,) * 9
        out = apply_filters(values, lang, query)
        custom_hidden = values["win"] != "custom"
        if out["error"]:
            return (no_update,) * 7 + (out["error"], custom_hidden)
        return (out["query"], out["map_url"], out["csv"], out["xlsx"], out["gpkg"], out["shp"], out["search"], "",
                custom_hidden)

    @app.callback(
        Output("duty-county", "options"),
        Output("duty-town", "options"),
        Output("duty-zone", "options"),
        Output("duty-grid-code", "options"),
        Input("duty-city", "value"),
        Input("duty-county", "value"),
        Input("duty-town", "value"),
        Input("duty-zone", "value"),
        State("duty-conf", "data"),
        prevent_initial_call=True,
    )
    def place_options(cities, counties, towns, zones, conf):
        """The choices under the control that changed (a control's own choices are left as they are: a new list
        under a choice being made would reset it)."""
        places = data.place_options((conf or {}).get("lang", "zh"), towns, zones, counties=counties, cities=cities)
        trig = ctx.triggered_id
        return (places["county"] if trig == "duty-city" and places["county"] is not None else no_update,
                places["town"] if trig in ("duty-city", "duty-county") else no_update,
                places["zone"] if trig != "duty-zone" else no_update, places["grid"])

    @app.callback(
        Output("duty-grid", "rowData"),
        Output("duty-live", "data"),
        Output("duty-delta", "data"),
        Output("duty-rows-note", "children"),
        Output("duty-detail-refresh", "data", allow_duplicate=True),
        Input("duty-query", "data"),
        Input("duty-reload", "data"),  # the live stream: too many changes at once to send them (callbacks.pushed)
        State("duty-live", "data"),
        State("duty-conf", "data"),
        State("duty-selected", "data"),
        prevent_initial_call=True,
    )
    def live(query, _reload, live_state, conf, selected):
        """A new filter (or a burst of changes too large for the stream): the whole list. Single changes arrive
        as ``duty-delta`` through the live stream (``callbacks.pushed``, part ``list``)."""
        lang = (conf or {}).get("lang", "zh")
        return sync_list(query, live_state, lang, selected, reload=True)

    @app.callback(
        Output("duty-detail", "children"),
        Output("duty-due", "data"),
        Output("duty-due-row", "hidden"),
        Output("duty-act-form", "hidden"),
        Output("duty-act-buttons", "children"),
        Output("duty-dept-wrap", "hidden"),
        Output("duty-dept", "value"),
        Output("duty-worker-wrap", "hidden"),
        Output("duty-worker", "value"),
        Output("duty-outcome-wrap", "hidden"),
        Output("duty-readonly", "hidden"),
        Output("duty-acts-shown", "data"),
        Input("duty-selected", "data"),
        Input("duty-detail-refresh", "data"),
        State("duty-conf", "data"),
        State("duty-acts-shown", "data"),
    )
    def detail(selected, _refresh, conf, acts_shown):
        lang = (conf or {}).get("lang", "zh")
        *out, acts = render_detail(selected, lang)
        if ctx.triggered_id == "duty-detail-refresh":  # same incident, new state: keep what the officer typed
            out = [*out[:6], no_update, out[7], no_update, *out[9:]]
        if acts is not None and acts == acts_shown:
            # the same steps are open (a refresh echoing this page's own step, a note added elsewhere): the
            # buttons and fields stay the very elements they are, so a click being made is not lost on an
            # element replaced under the pointer
            out = [*out[:3], *(no_update,) * 8]
        return (*out, acts)

    @app.callback(
        Output("duty-act-msg", "children"),
        Output("duty-act-msg", "className"),
        Output("duty-detail-refresh", "data", allow_duplicate=True),
        Output("duty-note", "value"),
        Input({"type": "duty-act", "to": ALL}, "n_clicks"),
        State("duty-selected", "data"),
        State("duty-note", "value"),
        State("duty-dept", "value"),
        State("duty-worker", "value"),
        State("duty-outcome", "value"),
        State("duty-conf", "data"),
        prevent_initial_call=True,
    )
    def action(clicks, selected, note, dept, worker, outcome, conf):
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(tr.get("value") for tr in ctx.triggered):
            return (no_update,) * 4
        if not selected or not selected.get("id"):
            return (no_update,) * 4
        lang = (conf or {}).get("lang", "zh")
        ok, message = act(int(selected["id"]), trig["to"], note=note, department=dept, worker=worker,
                          outcome=outcome, lang=lang)
        return (message, "wx-msg wx-msg-ok" if ok else "wx-msg wx-msg-error", time.time(),
                "" if ok else no_update)

    # ------------------------------------------------------------------ browser side (assets/duty.js)
    app.clientside_callback(ClientsideFunction("wx_duty", "applyDelta"), Output("duty-applied", "data"),
                            Input("duty-delta", "data"), State("duty-query", "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "countRows"), Output("duty-count", "children"),
                            Input("duty-grid", "rowData"), Input("duty-applied", "data"),
                            Input("duty-grid", "filterModel"), State("duty-conf", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "rowPicked"), Output("duty-selected", "data"),
                            Input("duty-grid", "selectedRows"), State("duty-selected", "data"),
                            prevent_initial_call=True)
    # The map follows the filter once it has settled: one control change can set others (a new town prunes
    # the zone and grid choices), and each step set the layer URL; fetches answering out of order could leave
    # the map one filter behind the list. Only the last URL of a 300 ms burst is applied.
    app.clientside_callback(
        """function (url) {
            const me = (window.__wxMapUrlSeq = (window.__wxMapUrlSeq || 0) + 1);
            return new Promise(function (resolve) {
                setTimeout(function () {
                    resolve(me === window.__wxMapUrlSeq && url ? url : window.dash_clientside.no_update);
                }, 300);
            });
        }""",
        Output("geo-incidents", "url", allow_duplicate=True),
        Input("duty-map-url", "data"), prevent_initial_call=True)
    # the window tick runs only while a relative window is chosen (the filter callback asks the server each tick)
    app.clientside_callback(
        f"function (win) {{ return {json.dumps(list(dq.RELATIVE_WINDOWS))}.indexOf(win) < 0; }}",
        Output("duty-window-tick", "disabled"), Input("duty-window", "value"), prevent_initial_call=True)
    # the live stream sends the changed rows of the list's filter (callbacks.pushed, part "list")
    app.clientside_callback(
        """function (query, push) { return window.wx.live.pushWith(push, {list: {q: query}}); }""",
        Output("live-push", "data"), Input("duty-query", "data"), State("live-push", "data"),
        prevent_initial_call=True)
    # the open incident changed (a pushed list change names it): its detail shows the new state
    app.clientside_callback(
        """function (delta, selected) {
            if (!delta || !selected || !(delta.changed || []).some(function (id) { return String(id) === String(selected.id); })) {
                return window.dash_clientside.no_update;
            }
            return Date.now();
        }""",
        Output("duty-detail-refresh", "data", allow_duplicate=True),
        Input("duty-delta", "data"), State("duty-selected", "data"), prevent_initial_call=True)
    # an alert raised or acknowledged (here or elsewhere): the open incident's detail shows its alert line anew
    app.clientside_callback(
        """function (store, selected) {
            return selected ? Date.now() : window.dash_clientside.no_update;
        }""",
        Output("duty-detail-refresh", "data", allow_duplicate=True),
        Input("alert-store", "data"), State("duty-selected", "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "markerClicked"),
                            Output("duty-selected", "data", allow_duplicate=True),
                            Input("geo-incidents", "n_clicks"), State("geo-incidents", "clickData"),
                            State("duty-selected", "data"),
                            prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "alertLocate"),
                            Output("duty-selected", "data", allow_duplicate=True),
                            Input({"type": "alert-locate", "id": ALL, "where": ALL}, "n_clicks"),
                            State("alert-store", "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "locate"),
                            Output("duty-selected", "data", allow_duplicate=True),
                            Input("duty-locate", "n_clicks"), State("duty-due", "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "focus"), Output("duty-focused", "data"),
                            Input("duty-selected", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "syncUrl"), Output("duty-url-synced", "data"),
                            Input("duty-page-search", "data"), Input("duty-selected", "data"),
                            prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("wx_duty", "timeLeft"), Output("duty-timeleft", "children"),
                            Output("duty-timeleft", "className"),
                            Input("duty-tick", "n_intervals"), Input("duty-due", "data"))
