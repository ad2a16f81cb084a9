"""Layout of the duty desk (值班处置台, ``/incidents``): filters, the map, the incident list (dash-ag-grid), the
alert feed and the incident detail with its lifecycle actions. Only builders here; callbacks in
``dashboard/callbacks/duty.py``. Every text reaches the page as a Dash component or an ag-grid text cell
(escaped), never as HTML.
"""
from __future__ import annotations

import dash_ag_grid as dag
from dash import dcc, html

from ..domain.timefmt import beijing
from ..domain.vocab import HAZARD_KINDS, USER_ROLES, name_of
from ..i18n import t
from ..store import catalogue, lifecycle
from .gis import gis_links

WINDOW_KEYS = ("any", "1h", "today", "24h", "7d", "custom")
ACTION_ORDER = ("onsite_handled", "routed", "in_progress", "escalated", "assigned", "handled", "verified", "closed")


def _pair(pair, lang):
    return pair[1] if lang == "en" else pair[0]


# ------------------------------------------------------------------------------------------ filters
def status_options(lang: str) -> list:
    return ([{"label": t("duty_status_open", lang), "value": "open"},
             {"label": t("duty_status_all", lang), "value": "all"}]
            + [{"label": _pair(v, lang), "value": k} for k, v in lifecycle.STATES.items()])


def category_options(lang: str) -> list:
    return [{"label": f"{c.group_en if lang == 'en' else c.group_zh} · {c.name_en if lang == 'en' else c.name_zh}",
             "value": k} for k, c in catalogue.CATEGORIES.items()]


def _field(label: str, control, html_for: str | None = None) -> html.Div:
    return html.Div(className="wx-field", children=[html.Label(label, htmlFor=html_for), control])


def _multi(id_: str, options: list, value: list, lang: str, **kw) -> dcc.Dropdown:
    return dcc.Dropdown(id=id_, options=options, value=value, multi=True, placeholder=t("duty_any", lang),
                        className="wx-dd", **kw)


def _place_field(label_key: str, id_: str, places: dict, key: str, values: dict, lang: str) -> html.Div:
    """A place control the set may not have (city, county): hidden and empty when ``places[key]`` is None."""
    field = _field(t(label_key, lang), _multi(id_, places.get(key) or [], values.get(key) or [], lang))
    field.hidden = places.get(key) is None
    return field


def filter_panel(lang: str, values: dict, places: dict) -> html.Aside:
    """The filter controls, set to ``values``; ``places``: the city / county / town / zone / grid choices
    (``services.duty.place_options``; a single county's set has no city or county control: hidden, empty)."""
    return html.Aside(className="wx-duty-filters", id="duty-filters", children=[
        html.H3(t("duty_filters", lang)),
        _field(t("duty_f_q", lang), dcc.Input(id="duty-q", type="search", value=values["q"], debounce=True,
                                              placeholder=t("duty_q_placeholder", lang), className="wx-input",
                                              maxLength=200), "duty-q"),
        _field(t("duty_f_status", lang), _multi("duty-status", status_options(lang), values["status"], lang)),
        _field(t("duty_f_window", lang), dcc.Dropdown(
            id="duty-window", clearable=False, searchable=False, value=values["win"], className="wx-dd",
            options=[{"label": t(f"duty_win_{k}", lang), "value": k} for k in WINDOW_KEYS])),
        html.Div(id="duty-custom", className="wx-field-row", hidden=values["win"] != "custom", children=[
            _field(t("duty_f_from", lang), dcc.Input(id="duty-from", type="datetime-local", value=values["from"],
                                                     debounce=False, className="wx-input"), "duty-from"),
            _field(t("duty_f_to", lang), dcc.Input(id="duty-to", type="datetime-local", value=values["to"],
                                                   debounce=False, className="wx-input"), "duty-to"),
        ]),
        dcc.Checklist(id="duty-overdue", className="wx-check",
                      options=[{"label": " " + t("duty_overdue_only", lang), "value": "1"}],
                      value=["1"] if values["overdue"] else []),
        _field(t("duty_f_category", lang), _multi("duty-category", category_options(lang), values["category"], lang)),
        _field(t("duty_f_severity", lang), _multi("duty-severity", [
            {"label": f"{k} {_pair(v, lang)}", "value": str(k)} for k, v in catalogue.SEVERITY_NAMES.items()],
            values["severity"], lang, searchable=False)),
        _field(t("duty_f_source", lang), _multi("duty-source", [
            {"label": _pair(v, lang), "value": k} for k, v in catalogue.SOURCES.items()], values["source"], lang,
            searchable=False)),
        _field(t("duty_f_level", lang), _multi("duty-level", [
            {"label": _pair(v, lang), "value": k} for k, v in lifecycle.LEVELS.items()], values["level"], lang,
            searchable=False)),
        _field(t("duty_f_department", lang), _multi("duty-department", [
            {"label": _pair(v, lang), "value": k} for k, v in catalogue.DEPARTMENTS.items()], values["department"],
            lang)),
        _place_field("duty_f_city", "duty-city", places, "city", values, lang),
        _place_field("duty_f_county", "duty-county", places, "county", values, lang),
        _field(t("duty_f_town", lang), _multi("duty-town", places["town"], values["town"], lang)),
        _field(t("duty_f_zone", lang), _multi("duty-zone", places["zone"], values["zone"], lang)),
        _field(t("duty_f_grid", lang), _multi("duty-grid-code", places["grid"], values["grid"], lang)),
        html.A(t("duty_reset", lang), href="/incidents" + ("?lang=en" if lang == "en" else ""),
               className="wx-btn wx-btn-light wx-reset", id="duty-reset"),
        html.Div(id="duty-filter-msg", className="wx-msg wx-msg-error", role="alert"),
    ])


# --------------------------------------------------------------------------------------------- list
def column_defs(lang: str) -> list:
    sev_rules = {f"wx-sev-cell wx-sev-{k}": f"params.value == {k}" for k in range(1, 5)}
    return [
        {"field": "code", "headerName": t("duty_col_code", lang), "width": 182, "pinned": "left"},
        {"field": "t", "headerName": t("duty_col_reported", lang), "width": 168, "sort": "desc"},
        {"field": "sev", "headerName": t("duty_col_severity", lang), "width": 84, "cellDataType": "number",
         "filter": "agNumberColumnFilter", "cellClassRules": sev_rules},
        {"field": "cat", "headerName": t("duty_col_category", lang), "width": 120},
        {"field": "st", "headerName": t("duty_col_state", lang), "width": 110},
        {"field": "due", "headerName": t("duty_col_due", lang), "width": 168,
         "cellClassRules": {"wx-cell-overdue": "params.data.od"}},
        {"field": "lvl", "headerName": t("duty_col_level", lang), "width": 100},
        {"field": "dept", "headerName": t("duty_col_department", lang), "width": 120},
        {"field": "town", "headerName": t("duty_col_town", lang), "width": 100},
        {"field": "zone", "headerName": t("duty_col_zone", lang), "width": 110},
        {"field": "addr", "headerName": t("duty_col_address", lang), "width": 160},
        {"field": "desc", "headerName": t("duty_col_description", lang), "flex": 1, "minWidth": 220},
        {"field": "src", "headerName": t("duty_col_source", lang), "width": 90},
    ]


def incident_grid(lang: str, rows: list, selected_id: int | None = None) -> dag.AgGrid:
    """Client-side row model with row virtualisation (only visible rows are in the DOM), client-side sort and
    column filters, rows keyed by incident id so live updates touch only the rows that changed.

    ``selected_id``: the incident the page opens on (``?incident=``), selected by the grid itself as its rows render
    (dash-ag-grid re-applies its ``selectedRows`` prop whenever rows or transactions land: a selection made only in
    the browser, before that prop caught up, could be undone by it)."""
    extra = {"selectedRows": {"ids": [str(selected_id)]}} if selected_id is not None else {}
    return dag.AgGrid(
        id="duty-grid",
        rowData=rows,
        **extra,
        columnDefs=column_defs(lang),
        getRowId="params.data.rid",
        defaultColDef={"sortable": True, "filter": "agTextColumnFilter", "resizable": True, "floatingFilter": True,
                       "suppressHeaderMenuButton": True, "cellDataType": "text"},
        rowClassRules={"wx-row-overdue": "params.data.od", "wx-row-closed": "params.data.sk === 'closed'"},
        dashGridOptions={
            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
            "animateRows": False, "rowBuffer": 15, "enableCellTextSelection": True, "suppressCellFocus": True,
            "localeText": GRID_LOCALE_ZH if lang == "zh" else None,
        },
        className="ag-theme-quartz wx-grid",
        style={"height": "100%", "width": "100%"},
    )


GRID_LOCALE_ZH = {
    "contains": "包含", "notContains": "不包含", "equals": "等于", "notEqual": "不等于", "startsWith": "开头是",
    "endsWith": "结尾是", "blank": "为空", "notBlank": "不为空", "lessThan": "小于", "greaterThan": "大于",
    "lessThanOrEqual": "小于等于", "greaterThanOrEqual": "大于等于", "inRange": "介于", "andCondition": "且",
    "orCondition": "或", "filterOoo": "筛选…", "noRowsToShow": "无数据", "loadingOoo": "加载中…",
    "applyFilter": "应用", "resetFilter": "重置", "clearFilter": "清除", "cancelFilter": "取消",
}


def capped_note(listed: int, total: int, map_cap: int, lang: str) -> str:
    """The list toolbar's note when the filter matches more than the list holds (the map's cap: ``MAP_POINTS_MAX``)."""
    if total <= listed:
        return ""
    return t("duty_rows_capped", lang, n=f"{listed:,}", total=f"{total:,}", shown=f"{min(total, map_cap):,}")


def list_toolbar(lang: str, query: str, note: str = "") -> html.Div:
    suffix = ("&lang=en" if lang == "en" else "")
    return html.Div(className="wx-duty-toolbar", children=[
        html.B(id="duty-count", className="wx-count"),
        html.Span(note, id="duty-rows-note", className="wx-note"),
        html.Div(className="wx-spacer"),
        html.A(t("duty_export_csv", lang), id="duty-export-csv", className="wx-btn wx-btn-light",
               href=f"/api/v1/incidents/export.csv?{query}{suffix}", download=""),
        html.A(t("duty_export_xlsx", lang), id="duty-export-xlsx", className="wx-btn wx-btn-light",
               href=f"/api/v1/incidents/export.xlsx?{query}{suffix}", download=""),
        *gis_links(lang, query, "duty-export"),  # the desk's filter; the KPIs of the default period (30 days)
    ])


# ------------------------------------------------------------------------------------------- detail
def detail_panel(lang: str) -> html.Section:
    """Static skeleton (inputs exist from the start so callbacks can always read them); the body, the
    buttons and the form's visibility are filled per incident."""
    dept_opts = [{"label": _pair(v, lang), "value": k} for k, v in catalogue.DEPARTMENTS.items()]
    return html.Section(className="wx-duty-detail", id="duty-detail-panel", children=[
        html.Div(id="duty-detail", children=html.Div(t("duty_detail_empty", lang), className="wx-empty")),
        html.Div(id="duty-due-row", className="wx-due-row", hidden=True, children=[
            html.Span(id="duty-timeleft", className="wx-timeleft")]),
        html.Div(id="duty-act-form", className="wx-act-form", hidden=True, children=[
            html.H4(t("duty_actions", lang)),
            html.Div(id="duty-dept-wrap", hidden=True, children=_field(
                t("duty_department", lang), dcc.Dropdown(id="duty-dept", options=dept_opts, className="wx-dd",
                                                         clearable=False))),
            html.Div(id="duty-worker-wrap", hidden=True, children=_field(
                t("duty_verifier", lang), dcc.Input(id="duty-worker", type="text", maxLength=64,
                                                    className="wx-input"), "duty-worker")),
            html.Div(id="duty-outcome-wrap", hidden=True, children=_field(
                t("duty_outcome", lang), dcc.Dropdown(id="duty-outcome", className="wx-dd", options=[
                    {"label": t("duty_outcome_resolved", lang), "value": "resolved"},
                    {"label": t("duty_outcome_unresolved", lang), "value": "unresolved"}]))),
            _field(t("duty_note", lang), dcc.Textarea(id="duty-note", maxLength=2000, className="wx-input",
                                                      rows=2), "duty-note"),
            html.Div(id="duty-act-buttons", className="wx-act-buttons"),
        ]),
        html.Div(id="duty-readonly", className="wx-note", hidden=True, children=t("duty_readonly", lang)),
        html.Div(id="duty-act-msg", className="wx-msg", role="status"),
    ])


def action_buttons(next_states, lang: str) -> list:
    return [html.Button(t(f"duty_act_{s}", lang), id={"type": "duty-act", "to": s}, n_clicks=0,
                        className=f"wx-btn wx-btn-act wx-act-{s}") for s in ACTION_ORDER if s in next_states]


def detail_body(d, lang: str) -> list:
    """The incident's facts, hazard ring and lifecycle timeline (``d``: ``services.duty.Detail``, which holds only
    the personal data its audience may see: the reporter and phone are None otherwise)."""
    inc = d.inc
    cat = catalogue.CATEGORIES.get(inc.category)
    sub = cat.subcategories.get(inc.subcategory) if cat and inc.subcategory else None
    rows = [
        (t("duty_col_category", lang), f"{_pair((cat.name_zh, cat.name_en), lang) if cat else inc.category}"
                                       + (f" / {_pair(sub, lang)}" if sub else "")),
        (t("duty_col_state", lang), _pair(lifecycle.STATES[inc.status], lang)),
        (t("duty_col_level", lang), _pair(lifecycle.LEVELS[inc.level], lang)),
        (t("duty_col_department", lang), _pair(catalogue.DEPARTMENTS[inc.department], lang) if inc.department else "—"),
        (t("duty_place", lang), " · ".join(x for x in (d.address, *d.places) if x)),
        (t("duty_worker", lang), d.worker or "—"),
        (t("duty_col_source", lang), _pair(catalogue.SOURCES.get(inc.source, (inc.source, inc.source)), lang)),
        (t("duty_reporter", lang), d.reporter if d.reporter is not None else t("duty_withheld", lang)),
        (t("duty_col_reported", lang), beijing(inc.reported_at)),
        (t("duty_due", lang), beijing(inc.due_at)),
    ]
    if inc.closed_at:
        rows.append((t("duty_closed_at", lang), beijing(inc.closed_at)))
    if d.phone:
        rows.append((t("duty_phone", lang), d.phone))
    facts = html.Dl(className="wx-facts", children=[c for k, v in rows for c in (html.Dt(k), html.Dd(v))])
    head = html.Div(className="wx-detail-head", children=[
        html.H3([html.Span(inc.code, className="wx-detail-code"),
                 html.Span(f"{t('duty_col_severity', lang)} {inc.severity} "
                           f"{_pair(catalogue.SEVERITY_NAMES[inc.severity], lang)}",
                           className=f"wx-sev-tag wx-sev-{inc.severity}")]),
        html.Button(t("duty_locate", lang), id="duty-locate", n_clicks=0, className="wx-btn wx-btn-light"),
    ])
    parts = [head]
    if d.alert is not None and d.alert.acknowledged_at is None:
        from .alerts import kind_name

        parts.append(html.Div(className=f"wx-alert-inline wx-alert-{d.alert.kind}", children=[
            "⚠ ", kind_name(d.alert.kind, lang), " ",
            html.Button(t("alert_ack", lang), id={"type": "alert-ack", "id": d.alert.id, "where": "detail"},
                        n_clicks=0, className="wx-btn wx-btn-primary")]))
    parts += [html.Div(d.description, className="wx-desc"), facts]
    if d.hazard:
        hz = d.hazard
        parts.append(html.Div(className="wx-hazard-box", id="duty-hazard", children=[
            html.B(t("duty_hazard", lang)), html.Br(),
            f"{hz['name']} ({name_of(HAZARD_KINDS, hz['kind'], lang)}, "
            f"{'risk' if lang == 'en' else '风险'} {hz['risk']}) · ",
            t("duty_distance", lang, d=round(hz["distance_m"]), r=round(hz["ring_m"]))]))
    else:
        parts.append(html.Div(t("duty_no_hazard", lang), className="wx-note", id="duty-hazard"))
    parts.append(html.H4(t("duty_timeline", lang)))
    roles = lifecycle.ROLES
    items = []
    for e in d.events:
        state = _pair(lifecycle.STATES.get(e.to_status, (e.to_status, e.to_status)), lang)
        role = _pair(roles[e.actor_role], lang) if e.actor_role in roles else ""
        who = (e.actor or "—") + ((f" ({role})" if lang == "en" else f"（{role}）") if role else "")
        line = [html.Span(beijing(e.at), className="wx-when"), " ",
                html.B(state), " · ", html.Span(who, className="wx-actor")]
        if e.department:
            line += [" · ", _pair(catalogue.department_names(e.department), lang)]
        if e.note:
            line.append(html.Div(e.note, className="wx-note"))
        items.append(html.Li(line, className=f"wx-ev wx-ev-{e.to_status}"))
    parts.append(html.Ol(items, className="wx-timeline wx-duty-timeline", id="duty-timeline"))
    return parts


# --------------------------------------------------------------------------------------------- page
def user_box(lang: str, user) -> html.Div:
    return html.Div(className="wx-userbox", children=[
        html.Span(t("login_as", lang, name=user.name, role=_pair(USER_ROLES[user.role], lang)), id="duty-user"),
        *([html.A(t("audit_link", lang), href="/audit" + ("?lang=en" if lang == "en" else ""), id="audit-link",
                  className="wx-btn wx-btn-light"),
           html.A(t("notify_link", lang), href="/notify" + ("?lang=en" if lang == "en" else ""), id="notify-link",
                  className="wx-btn wx-btn-light")] if user.role == "admin" else []),
        html.Form(action="/logout", method="POST", className="wx-inline-form", children=[
            dcc.Input(type="hidden", name="lang", value=lang),
            html.Button(t("login_logout", lang), type="submit", className="wx-btn wx-btn-light", id="logout-button"),
        ]),
    ])


def sign_in_needed(lang: str, next_path: str) -> html.Div:
    from urllib.parse import urlencode

    href = "/login?" + urlencode({"next": next_path, **({"lang": "en"} if lang == "en" else {})})
    return html.Div(className="wx-signin-needed", children=[
        html.P(t("login_required", lang)), html.A(t("login_title", lang), href=href, className="wx-btn wx-btn-primary")])
