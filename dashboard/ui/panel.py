"""The drill-down panel beside the map: breadcrumb, period selector, KPI cards, charts and the unit profile.

The view (level, code, period) lives in the URL query and in ``dcc.Store(id="view-state")``:
``{"level": "district|town|zone|grid", "code": str|None, "period": key, "from": "YYYY-MM-DD"|None, "to": …}``.
:func:`state_from_query` / :func:`query_for` convert between the two; :func:`render` turns a view into the
panel's props (it reads ``metrics.views`` only, and is what the drill callback returns).
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from dash import dcc, html

from ..context import services
from ..i18n import t
from ..metrics import periods, views
from . import cards as ui_cards
from . import charts, profile

DEFAULT_KPI = "detection_rate"
LEVEL_KEYS = {"district": "district", "town": "town", "zone": "zone", "grid": "grid"}


# ------------------------------------------------------------------------------------- view state
def state_from_params(params: dict, h: views.Hierarchy | None = None) -> dict:
    """The view named by URL query parameters; anything invalid falls back to the default."""
    level, code = params.get("level") or "district", params.get("code") or None
    if h is not None:
        level, code = views.normalise_view(h, level, code)
    elif level not in views.LEVELS or level == "district":
        level, code = "district", None
    key = params.get("period") or periods.DEFAULT_PERIOD
    first, last = params.get("from") or None, params.get("to") or None
    if key not in periods.PERIODS:
        key = periods.DEFAULT_PERIOD
    if key == "custom":
        try:
            p = periods.resolve("custom", first, last)
            first, last = p.first_day, p.last_day
        except periods.PeriodError:
            key, first, last = periods.DEFAULT_PERIOD, None, None
    else:
        first = last = None
    return {"level": level, "code": code, "period": key, "from": first, "to": last}


def state_from_query(search: str | None, h: views.Hierarchy | None = None) -> dict:
    return state_from_params(dict(parse_qsl((search or "").lstrip("?"))), h)


def query_for(state: dict, lang: str) -> str:
    """The URL query of a view (defaults left out; ``lang`` kept)."""
    q = {}
    if state.get("level") and state["level"] != "district":
        q["level"], q["code"] = state["level"], state["code"]
    if state.get("period") and state["period"] != periods.DEFAULT_PERIOD:
        q["period"] = state["period"]
    if state.get("period") == "custom":
        q["from"], q["to"] = state.get("from"), state.get("to") or state.get("from")
    if lang == "en":
        q["lang"] = "en"
    return "?" + urlencode(q) if q else ""


def period_of(state: dict) -> periods.Period:
    try:
        return periods.resolve(state.get("period"), state.get("from"), state.get("to"))
    except periods.PeriodError:
        return periods.resolve(periods.DEFAULT_PERIOD)


# ------------------------------------------------------------------------------------------ layout
def period_selector(state: dict, lang: str) -> html.Div:
    options = [{"label": periods.LABELS[k][0 if lang == "zh" else 1], "value": k} for k in periods.PERIODS]
    return html.Div(className="wx-period", children=[
        html.Span(t("period", lang), className="wx-period-label"),
        dcc.RadioItems(id="period-select", options=options, value=state["period"], inline=True,
                       className="wx-period-radio", inputClassName="wx-radio-input",
                       labelClassName="wx-radio-label"),
        dcc.DatePickerRange(id="period-range", start_date=state.get("from"), end_date=state.get("to"),
                            display_format="YYYY-MM-DD", min_date_allowed="2000-01-01",
                            max_date_allowed="2100-12-31", first_day_of_week=1, minimum_nights=0,
                            clearable=False, className="wx-period-range",
                            style={"display": "inline-block" if state["period"] == "custom" else "none"}),
        html.Span(id="period-label", className="wx-period-dates"),
    ])


def _graph(gid: str, height: int = 260) -> dcc.Graph:
    return dcc.Graph(id=gid, config={"displaylogo": False, "responsive": True,
                                     "modeBarButtonsToRemove": ["lasso2d", "select2d"]},
                     style={"minHeight": f"{height}px"}, className="wx-chart")


# the panel's charts: (graph id, min height, wrapped in a loading indicator)
CHARTS = (("chart-ranking", 300, False), ("chart-trend", 260, False), ("chart-category", 260, False),
          ("chart-level", 260, False), ("chart-funnel", 300, True), ("chart-stages", 300, True),
          ("chart-dept", 240, False))


def _slot(gid: str) -> html.Div:
    height = next(h for g, h, _ in CHARTS if g == gid)
    return html.Div(id=f"slot-{gid}", className="wx-chart-slot", style={"minHeight": f"{height}px"})


def panel_layout(state: dict, lang: str) -> html.Aside:
    """The panel as first served: text parts, chart boxes with their controls, and empty chart slots. The
    graphs (:func:`chart_graphs`) are mounted once the map has drawn: mounting a ``dcc.Graph`` loads and
    evaluates plotly.js (4.8 MB, about 300 ms of main thread here), which would otherwise hold up the map's
    first draw. ``panel-request`` / ``lifecycle-request`` carry the view to the panel callbacks only once the
    graphs are there (see ``dashboard/callbacks/drill.py``)."""
    return html.Aside(className="wx-panel", id="drill-panel", children=[
        dcc.Store(id="charts-mounted"),
        dcc.Store(id="panel-request"),
        dcc.Store(id="lifecycle-request"),
        html.Div(className="wx-panel-top", children=[
            html.Nav(id="breadcrumb", className="wx-breadcrumb"),
            html.A(t("briefing", lang), href="/briefing" + ("?lang=en" if lang == "en" else ""),
                   className="wx-briefing-link", id="briefing-link"),
        ]),
        period_selector(state, lang),
        html.H2(id="unit-title", className="wx-unit-title"),
        dcc.Loading(html.Div(id="kpi-cards", className="wx-cards"), type="dot", delay_show=400),
        html.Div(className="wx-chart-box", children=[
            html.Div(className="wx-chart-tools", children=[
                html.Span(t("select_kpi", lang)),
                dcc.Dropdown(id="ranking-kpi", options=charts.ranking_options(lang), value=DEFAULT_KPI,
                             clearable=False, searchable=False, className="wx-kpi-dropdown"),
            ]),
            _slot("chart-ranking"),
        ]),
        html.Div(className="wx-chart-box", children=[
            html.Div(className="wx-chart-tools", children=[
                dcc.RadioItems(id="trend-freq", value="auto", inline=True, className="wx-freq",
                               options=[{"label": "自动" if lang == "zh" else "Auto", "value": "auto"}] +
                                       [{"label": t(f"freq_{f}", lang), "value": f} for f in ("D", "W", "M")]),
            ]),
            _slot("chart-trend"),
        ]),
        html.Div(className="wx-chart-row", children=[
            html.Div(_slot("chart-category"), className="wx-chart-box wx-half"),
            html.Div(_slot("chart-level"), className="wx-chart-box wx-half"),
        ]),
        html.Div(className="wx-chart-row", children=[
            html.Div(_slot("chart-funnel"), className="wx-chart-box wx-half"),
            html.Div(_slot("chart-stages"), className="wx-chart-box wx-half"),
        ]),
        html.Div(_slot("chart-dept"), className="wx-chart-box"),
        html.Div(id="profile-box", className="wx-profile-box"),
    ])


def chart_graphs() -> list:
    """The graphs for the chart slots, in :data:`CHARTS` order (mounted after the map's first draw)."""
    out = []
    for gid, height, loading in CHARTS:
        graph = _graph(gid, height)
        out.append(dcc.Loading(graph, type="dot", delay_show=300) if loading else graph)
    return out


# ------------------------------------------------------------------------------------------ render
def _crumbs(h: views.Hierarchy, state: dict, lang: str) -> list:
    chain = h.chain(state["level"], state["code"])
    out = []
    for i, (lv, code) in enumerate(chain):
        name = h.name(lv, code, lang)
        label = f"{t(LEVEL_KEYS[lv], lang)} · {name}" if lv != "district" else name
        if i:
            out.append(html.Span("›", className="wx-crumb-sep"))
        if i == len(chain) - 1:
            out.append(html.Span(label, className=f"wx-crumb wx-crumb-current wx-crumb-{lv}"))
        else:
            target = {**state, "level": lv, "code": None if lv == "district" else code}
            out.append(dcc.Link(label, href="/" + query_for(target, lang), className=f"wx-crumb wx-crumb-{lv}"))
    return out


def _period_text(p: periods.Period, lang: str) -> str:
    return t("period_from_to", lang, first=p.first_day, last=p.last_day)


def _profile(h, gd, bundle, state, lang):
    svc = services()
    level, code = state["level"], state["code"]
    hz = views.hazards_of(gd, level, code)
    ranks = {k: views.rank_in_district(bundle, level, code, k) for k in profile.RANK_KPIS} if code else {}
    if level == "zone":
        inspected = views.unit_kpis(bundle, "zone", code).get("units_inspected") or 0
        return profile.zone_profile(views.zone_staff(gd, code), hz, ranks, inspected, lang)
    if level == "grid":
        grid = h.grids.set_index("code").loc[code].to_dict()
        activity = views.grid_activity(svc.engine, svc.cache, code)
        return profile.grid_profile(grid, activity, views.unit_kpis(bundle, "grid", code), hz, ranks, lang)
    g = h.grids if level == "district" else h.grids[h.grids["town_code"] == code]
    info = {"n_towns": len(h.kids("district", None)), "n_zones": int(g["zone_code"].nunique()),
            "n_grids": int(len(g)), "registered_units": int(g["registered_units"].sum()),
            "population": int(g["population"].sum()), "full_time": int(g["worker_full_time"].astype(bool).sum()),
            "part_time": int((~g["worker_full_time"].astype(bool)).sum()), "hazards": hz, "ranks": ranks}
    return profile.district_profile(info, lang) if level == "district" else profile.town_profile(info, lang)


def render(state: dict, lang: str, kpi: str | None, freq: str | None) -> dict:
    """Everything the panel shows for one view (the fast part; the lifecycle charts: :func:`render_lifecycle`)."""
    svc = services()
    gd = svc.geodata()
    h = views.hierarchy(gd)
    level, code = views.normalise_view(h, state.get("level"), state.get("code"))
    state = {**state, "level": level, "code": code}
    p = period_of(state)
    bundle = views.kpi_bundle(svc.engine, gd, svc.cache, p)
    prev = views.kpi_bundle(svc.engine, gd, svc.cache, p.previous_year())
    kpi = kpi if kpi in views.kpis.KPIS else DEFAULT_KPI

    values = views.unit_kpis(bundle, level, code)
    parent_level = views.PARENT[level]
    parent_code = h.parent.get((level, code)) if parent_level else None
    parent_values = views.unit_kpis(bundle, parent_level, parent_code) if parent_level else None
    parent_name = h.name(parent_level, parent_code, lang) if parent_level else None
    card_list = ui_cards.cards(values, parent_values, parent_name, views.comparable(views.unit_kpis(prev, level, code)),
                               lang)

    child_level, rows = views.children_rows(bundle, h, level, code)
    rank_rows = [{"code": c, "name": h.name(child_level, c, lang), "level": child_level, "value": r.get(kpi)}
                 for c, r in rows]
    label = ui_cards.kpi_label(kpi, lang)
    if level == "grid":
        title = t("ranking_siblings", lang, kpi=label)
    else:
        title = t("ranking_title", lang, kpi=label, children=t(LEVEL_KEYS[child_level], lang))
    kind = views.kpis.KPIS[kpi][2]
    avg_label = t("district_avg", lang) if kind != "count" else t("district_avg_per", lang)
    ranking = charts.ranking(rank_rows, kpi, views.level_average(bundle, child_level, kpi), title, avg_label, lang,
                             selected=code if level == "grid" else None)

    f = views.auto_freq(p) if freq in (None, "auto") else freq
    unit_name = h.name(level, code, lang)
    return {
        "breadcrumb": _crumbs(h, state, lang),
        "title": [html.Span(t(LEVEL_KEYS[level], lang) if level != "district" else "", className="wx-level-tag"),
                  unit_name, html.Span(code or "", className="wx-code")],
        "cards": card_list,
        "ranking": ranking,
        "trend": charts.trend(views.trend_series(svc.engine, p, level, code, f), lang,
                              f"{t('trend_title', lang)}({t('freq_' + f, lang)})"),
        "category": charts.category(views.category_counts(svc.engine, p, level, code), lang, t("category_title", lang)),
        "level": charts.levels(views.level_counts(bundle, h, level, code), lang, t("level_title", lang)),
        "dept": charts.departments(views.department_table(bundle, level, code, p, svc.engine, gd, svc.cache), lang,
                                   t("dept_title", lang)),
        "profile": _profile(h, gd, bundle, state, lang),
        "period_label": _period_text(p, lang),
    }


def render_lifecycle(state: dict, lang: str) -> tuple[dict, dict]:
    svc = services()
    gd = svc.geodata()
    h = views.hierarchy(gd)
    level, code = views.normalise_view(h, state.get("level"), state.get("code"))
    life = views.lifecycle(svc.engine, gd, svc.cache, period_of(state), level, code)
    return (charts.funnel(life["funnel"], lang, t("funnel_title", lang)),
            charts.stages(life["stages"], lang, t("stages_title", lang)))


def map_target(state: dict) -> dict:
    """Which unit the map highlights and the bounds it flies to."""
    svc = services()
    h = views.hierarchy(svc.geodata())
    level, code = views.normalise_view(h, state.get("level"), state.get("code"))
    key = (level, code if level != "district" else views.DISTRICT_CODE)
    return {"level": level, "code": code, "bounds": h.bounds[key]}


def drill_target(h: views.Hierarchy, state: dict, layer: str, code: str | None) -> tuple[str, str] | None:
    """Where a click on the map's ``layer`` feature ``code`` goes.

    A town or zone drills into it. The grids are drawn on top, so a grid click is how a user points at a
    zone too: a grid outside the current zone drills into the grid's zone (one step: district → zone), and a
    grid inside the current zone (or a sibling of the current grid) drills into the grid itself.
    """
    if not code:
        return None
    if layer == "towns" and h.exists("town", code):
        return "town", code
    if layer == "zones" and h.exists("zone", code):
        return "zone", code
    if layer == "grids" and h.exists("grid", code):
        zone = h.parent[("grid", code)]
        current_zone = state["code"] if state["level"] == "zone" else (
            h.parent.get(("grid", state["code"])) if state["level"] == "grid" else None)
        return ("grid", code) if current_zone == zone else ("zone", zone)
    return None
