"""The drill-down panel beside the overview map: breadcrumb, period, KPI cards, rankings, charts, profiles.

Only builders: :func:`panel_layout` (as first served) and :func:`render` / :func:`render_lifecycle`, which turn the
values ``services.drill`` computed for a view into the panel's props (what the drill callbacks return).
"""
from __future__ import annotations

from dash import dcc, html

from ..i18n import kind_words, t
from ..metrics import periods
from ..metrics.kpis import KPIS
from . import cards as ui_cards
from . import charts, profile
from .gis import gis_links
from .select import Select  # a native <select>: no lazy chunk before the map's first paint (ui/select.py)
from .static import static

LEVEL_KEYS = {"district": "district", "city": "city", "county": "county", "town": "town", "zone": "zone", "grid": "grid"}
RANK_KPIS = profile.RANK_KPIS  # the KPIs whose district rank a unit's profile shows


# ------------------------------------------------------------------------------------------ layout
PERIOD_RANGE = {"type": "period-range", "i": 0}  # pattern-matching id: the drill callbacks take it when it is there


def period_range(first: str | None, last: str | None) -> dcc.DatePickerRange:
    """The custom period's date range picker. It is in the panel only while the period is custom
    (``period-range-box``, filled by the drill callbacks): mounting a ``dcc.DatePickerRange`` loads dcc's date
    picker chunk (~100 KB evaluated on the main thread), which the overview's first paint need not wait for."""
    return dcc.DatePickerRange(id=PERIOD_RANGE, start_date=first, end_date=last,
                               display_format="YYYY-MM-DD", min_date_allowed="2000-01-01",
                               max_date_allowed="2100-12-31", first_day_of_week=1, minimum_nights=0,
                               clearable=False, className="wx-period-range")


def period_selector(state: dict, lang: str) -> html.Div:
    options = [{"label": periods.LABELS[k][0 if lang == "zh" else 1], "value": k} for k in periods.PERIODS]
    custom = state["period"] == "custom"
    return html.Div(className="wx-period", children=[
        html.Span(t("period", lang), className="wx-period-label"),
        dcc.RadioItems(id="period-select", options=options, value=state["period"], inline=True,
                       className="wx-period-radio", inputClassName="wx-radio-input",
                       labelClassName="wx-radio-label"),
        html.Span(id="period-range-box", className="wx-period-range-box",
                  children=period_range(state.get("from"), state.get("to")) if custom else None),
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


def panel_layout(state: dict, lang: str, kpi: str, gis_query: str | None = None) -> html.Aside:
    """The panel as first served: text parts, chart boxes with their controls, and empty chart slots. The
    graphs (:func:`chart_graphs`) are mounted once the map has drawn: mounting a ``dcc.Graph`` loads and
    evaluates plotly.js (the partial bundle of ``pages.head.install_plotly``, ~0.3 s of main thread here), which
    would otherwise hold up the map's first draw. ``panel-request`` / ``lifecycle-request`` carry the view to the panel callbacks only once the
    graphs are there, ``text-request`` the view to the panel's text (title, cards, profile) once the map has drawn
    (see ``dashboard/callbacks/drill.py``). ``kpi``: the ranking's measure at start;
    ``gis_query``: the GIS export links' query for the view (``services.drill.gis_query``); None hides them (a
    viewer who may not export: the public overview)."""
    return html.Aside(className="wx-panel", id="drill-panel", children=[
        dcc.Store(id="charts-mounted"),
        dcc.Store(id="panel-request"),
        dcc.Store(id="text-request"),
        dcc.Store(id="text-shown"),
        dcc.Store(id="lifecycle-request"),
        dcc.Store(id="charts-data"),  # the charts' figures of a view, drawn one by one (``wx.panel.draw``)
        dcc.Store(id="lifecycle-data"),
        dcc.Store(id="charts-drawn"),
        html.Div(className="wx-panel-top", children=[
            html.Nav(id="breadcrumb", className="wx-breadcrumb"),
            html.A(t("briefing", lang), href="/briefing" + ("?lang=en" if lang == "en" else ""),
                   className="wx-briefing-link", id="briefing-link"),
        ]),
        period_selector(state, lang),
        html.Div(gis_links(lang, gis_query or "", "ov-gis", "wx-gis-link"), className="wx-gis-links", id="ov-gis",
                 hidden=gis_query is None),
        html.H2(id="unit-title", className="wx-unit-title"),
        dcc.Loading(html.Div(id="kpi-cards", className="wx-cards"), type="dot", delay_show=400),
        html.Div(className="wx-chart-box", children=[
            html.Div(className="wx-chart-tools", children=[
                html.Label(t("select_kpi", lang), htmlFor="ranking-kpi"),
                Select(id="ranking-kpi", options=charts.ranking_options(lang), value=kpi,
                       className="wx-select wx-kpi-dropdown"),
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
def _crumbs(crumbs: list[dict], lang: str) -> list:
    out = []
    for i, c in enumerate(crumbs):
        lv = c["level"]
        label = f"{t(LEVEL_KEYS[lv], lang)} · {c['name']}" if lv != "district" else c["name"]
        if i:
            out.append(html.Span("›", className="wx-crumb-sep"))
        if c["href"] is None:
            out.append(html.Span(label, className=f"wx-crumb wx-crumb-current wx-crumb-{lv}"))
        else:
            out.append(dcc.Link(label, href=c["href"], className=f"wx-crumb wx-crumb-{lv}"))
    return out


def _profile(p: dict, lang: str):
    kind, root_kind = p["kind"], p["root_kind"]
    if kind == "zone":
        return profile.zone_profile(p["staff"], p["hazards"], p["ranks"], p["inspected"], lang, root_kind)
    if kind == "grid":
        return profile.grid_profile(p["grid"], p["activity"], p["kpis"], p["hazards"], p["ranks"], lang, root_kind)
    if kind == "district":
        return profile.district_profile(p["info"], lang)
    return profile.town_profile(p["info"], lang, root_kind)


TEXT_PARTS = ("breadcrumb", "title", "cards", "profile", "period_label")
CHART_PARTS = ("ranking", "trend", "category", "level", "dept")


def render_text(v: dict, lang: str) -> dict:
    """The panel's text props for one view from ``services.drill.panel_text_values`` (:data:`TEXT_PARTS`)."""
    level, code = v["level"], v["code"]
    return {
        "breadcrumb": _crumbs(v["crumbs"], lang),
        "title": [html.Span(t(LEVEL_KEYS[level], lang) if level != "district" else "", className="wx-level-tag"),
                  v["name"], html.Span(code or "", className="wx-code")],
        "cards": ui_cards.cards(v["values"], v["parent_values"], v["parent_name"], v["previous"], lang),
        "profile": static(_profile(v["profile"], lang)),  # text to read: one component (ui.static)
        "period_label": t("period_from_to", lang, first=v["period"]["from"], last=v["period"]["to"]),
    }


def render_charts(v: dict, lang: str) -> dict:
    """The panel's chart figures for one view from ``services.drill.panel_chart_values`` (:data:`CHART_PARTS`;
    the lifecycle charts: :func:`render_lifecycle`)."""
    level, code, kpi, f = v["level"], v["code"], v["kpi"], v["freq"]
    label = ui_cards.kpi_label(kpi, lang)
    if level == "grid":
        title = t("ranking_siblings", lang, kpi=label)
    else:
        title = t("ranking_title", lang, kpi=label, children=t(LEVEL_KEYS[v["child_level"]], lang))
    words = kind_words(v["root_kind"], lang)
    avg_label = t("district_avg", lang, **words) if KPIS[kpi][2] != "count" else t("district_avg_per", lang, **words)
    return {
        "ranking": charts.ranking(v["ranking"], kpi, v["ranking_average"], title, avg_label, lang,
                                  selected=code if level == "grid" else None),
        "trend": charts.trend(v["trend"], lang, f"{t('trend_title', lang)}({t('freq_' + f, lang)})"),
        "category": charts.category(v["categories"], lang, t("category_title", lang)),
        "level": charts.levels(v["levels"], lang, t("level_title", lang)),
        "dept": charts.departments(v["departments"], lang, t("dept_title", lang)),
    }


def render(v: dict, lang: str) -> dict:
    """Every panel prop for one view from ``services.drill.panel_values``: :func:`render_text` and
    :func:`render_charts`."""
    return {**render_text(v, lang), **render_charts(v, lang)}


def render_lifecycle(life: dict, lang: str) -> tuple[dict, dict]:
    """The funnel and stage-time charts from ``services.drill.lifecycle_values``."""
    return (charts.funnel(life["funnel"], lang, t("funnel_title", lang)),
            charts.stages(life["stages"], lang, t("stages_title", lang)))
