"""Layout of the command centre's wall display (大屏 ``/wall``): built for 3840×2160 and 1920×1080, dark.

Every rule of ``assets/wall.css`` is scoped under ``.wx-wall``; the clock, the tour and the connection watch
run in the browser (``assets/wall.js``, ``window.wx.wall``). Text reaches the page only as Dash component
children (escaped by React), never as HTML.
"""
from __future__ import annotations

from dash import dcc, html

from ..metrics import kpis as K
from .wall_text import RANK_KPIS, client_table, fmt_value, kpi_label, wt

# one interval per purpose (milliseconds)
CLOCK_MS = 1000
KPI_MS = 60_000  # KPI header / ranking / zone cards: after each change (pushed), and each minute (cases age)
HEARTBEAT_MS = 3000  # the connection sign reads the live stream's state (assets/live.js): no request
DEFAULT_TOUR_S = 20
DEFAULT_RANK_N = 5
HEADER_ROWS = {
    "today": ("new_incidents", "open_incidents", "overdue_incidents", "onsite_handling_rate", "resolution_rate"),
    "month": ("new_incidents", "overdue_incidents", "onsite_handling_rate", "resolution_rate",
              "in_zone_resolution_rate"),
}
WALL_HIDEOUTS = {  # the map's boundary layers restyled for a dark screen (see ui.layers)
    "towns": {"stroke": "#c39bd3", "weight": 2.5, "opacity": 0.85},
    "zones": {"stroke": "#8fd3ff", "weight": 2.2, "opacity": 0.9, "fillOpacity": 0.5},
    "grids": {"stroke": "#3f5a75", "weight": 0.5, "opacity": 0.7, "emptyFillOpacity": 0.0},
}
WALL_CHECKED = {"towns": True, "zones": True, "grids": True, "district": True, "rings": True, "hazards": False,
                "hotspots": False, "incidents": True}


def _int(value, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(float(value))))
    except (TypeError, ValueError):
        return default


def _setting(settings, name: str, default):
    value = getattr(settings, name, None)
    if value is None:
        value = (getattr(settings, "extra", None) or {}).get(name)
    return default if value in (None, "") else value


def wall_config(settings, lang: str, params: dict) -> dict:
    """Tour and ranking options: URL parameters over settings over defaults (``?tour=30&order=rank|code``,
    ``rank=<kpi>``, ``rank_period=today|month``, ``rank_n=5``, ``pause=<s>`` for an alert)."""
    tour_s = _int(params.get("tour", _setting(settings, "wall_tour_s", DEFAULT_TOUR_S)), DEFAULT_TOUR_S, 2, 3600)
    order = params.get("order") or _setting(settings, "wall_tour_order", "rank")
    rank = params.get("rank") or _setting(settings, "wall_rank_kpi", "resolution_rate")
    rank_period = params.get("rank_period") or "month"
    pause_s = _int(params.get("pause", _setting(settings, "wall_alert_pause_s", max(20, tour_s))),
                   max(20, tour_s), 2, 3600)
    return {
        "lang": lang,
        "tour_ms": tour_s * 1000,
        "order": order if order in ("rank", "code") else "rank",
        "rank": rank if rank in RANK_KPIS else "resolution_rate",
        "rank_period": rank_period if rank_period in ("today", "month") else "month",
        "rank_n": _int(params.get("rank_n"), DEFAULT_RANK_N, 1, 23),
        "pause_ms": pause_s * 1000,
        "text": client_table(lang),
    }


# -------------------------------------------------------------------------------------------- parts
def kpi_header(header: dict | None, lang: str) -> list:
    rows = []
    for per, keys in HEADER_ROWS.items():
        values = (header or {}).get(per) or {}
        cells = [html.Div(wt(per, lang), className="wx-wall-kpi-period")]
        for k in keys:
            cells.append(html.Div(className=f"wx-wall-kpi wx-wall-kpi-{k}", **{"data-kpi": f"{per}.{k}"}, children=[
                html.Div(kpi_label(k, lang), className="wx-wall-kpi-label"),
                html.Div(fmt_value(values.get(k), k), className="wx-wall-kpi-value"),
            ]))
        rows.append(html.Div(cells, className=f"wx-wall-kpi-row wx-wall-kpi-row-{per}"))
    return rows


def ticker(items: list[dict] | None, lang: str, shown_before: list | None = None) -> list:
    """The newest reports. Only reports not in ``shown_before`` (ids) slide in; the rest stay still (the whole
    list is re-sent on a change, and a wall replaying every row's entry each second is noise)."""
    if not items:
        return [html.Li(wt("ticker_empty", lang), className="wx-wall-tick wx-wall-tick-empty")]
    before = set(shown_before or ())
    return [ticker_item(it, lang, new=it["id"] not in before) for it in items]


def ticker_item(it: dict, lang: str, *, new: bool) -> html.Li:
    """One report of the ticker (``new``: it slides in)."""
    return html.Li(key=str(it["id"]), className=f"wx-wall-tick wx-sev-{it['severity']}" + (" wx-tick-new" if new else ""),
                   **{"data-code": it["code"]}, children=[
        html.Div([html.Span(it["time"], className="wx-wall-tick-time"),
                  html.Span(it["date"], className="wx-wall-tick-date")], className="wx-wall-tick-when"),
        html.Span(it["glyph"], className="wx-wall-tick-glyph", style={"background": it["color"]}),
        html.Div(className="wx-wall-tick-body", children=[
            html.Div(className="wx-wall-tick-head", children=[
                html.B(it["category"]),
                html.Span(f"{it['zone']} · {it['town']}", className="wx-wall-tick-place"),
            ]),
            html.Div(it["description"], className="wx-wall-tick-desc"),
        ]),
        html.Div(className="wx-wall-tick-side", children=[
            html.Span(it["severity_name"], className=f"wx-wall-sev wx-wall-sev-{it['severity']}"),
            html.Span(it["status_name"], className=f"wx-wall-state wx-wall-state-{it['status']}"),
        ]),
    ])


def ranking(rank: dict | None, lang: str, n: int = DEFAULT_RANK_N) -> list:
    if not rank or not rank.get("rows"):
        return []
    rows = rank["rows"]
    kind = K.KPIS[rank["kpi"]][2]
    top_value = max((r["value"] for r in rows if r["value"] is not None), default=0) or 1
    n = min(n, max(1, len(rows) // 2))

    def row(i, r):
        v = r["value"]
        width = 0 if v is None else (v * 100 if kind == "rate" else v / top_value * 100)
        return html.Li(className="wx-wall-rank-row", **{"data-zone": r["code"]}, children=[
            html.Span(str(i), className="wx-wall-rank-pos"),
            html.Span(className="wx-wall-rank-name", children=[r["name"], html.Small(r["town"])]),
            html.Span(html.I(style={"width": f"{max(0.0, min(100.0, width)):.1f}%"}), className="wx-wall-rank-bar"),
            html.Span(r["text"], className="wx-wall-rank-value"),
        ])

    period = wt(rank["period"], lang)
    total = len(rows)
    return [
        html.H3([wt("ranking", lang), html.Small(f"{rank['label']} · {period}")], className="wx-wall-panel-title"),
        html.Div(className="wx-wall-rank-cols", children=[
            html.Div([html.H4(wt("ranking_top", lang, n=n)),
                      html.Ol([row(i + 1, r) for i, r in enumerate(rows[:n])], className="wx-wall-rank-list")],
                     className="wx-wall-rank-top"),
            html.Div([html.H4(wt("ranking_bottom", lang, n=n)),
                      html.Ol([row(total - n + i + 1, r) for i, r in enumerate(rows[-n:])],
                              className="wx-wall-rank-list")], className="wx-wall-rank-bottom"),
        ]),
    ]


def alert_count(count: int, lang: str) -> str:
    return wt("alerts_active", lang, n=count) if count else ""


def status_sign(lang: str) -> html.Div:
    """The small "reconnecting" sign: hidden while the live stream is connected."""
    return html.Div(id="wall-conn-sign", className="wx-wall-conn", role="status", children=[
        html.I(className="wx-wall-conn-dot"), html.Span(wt("reconnecting", lang))])


def invalid_token(lang: str, place: str) -> html.Div:
    return html.Div(className="wx-wall wx-wall-denied", id="wall-root", children=[
        html.Div(className="wx-wall-denied-box", children=[
            html.H1(wt("wall_title", lang, place=place)), html.H2(wt("invalid_token", lang)), html.P(wt("invalid_token_hint", lang)),
        ])])


# ------------------------------------------------------------------------------------------- layout
def wall_layout(lang: str, *, place: str, cfg: dict, kpi: dict | None, items: list | None,
                alerts: dict | None, live_state: dict, kpi_state: dict | None, map_component, map_inputs,
                legend_children: list) -> html.Div:
    """``place``: the root unit's name in ``lang`` (``services.units.title``), for the title."""
    return html.Div(id="wall-root", className="wx-wall", lang="zh-CN" if lang == "zh" else "en", children=[
        # state and ticks (one interval per purpose)
        dcc.Store(id="wall-config", data=cfg),
        dcc.Store(id="wall-live-state", data={**live_state, "ticker_ids": [it["id"] for it in items or []]}),
        dcc.Store(id="wall-kpi-state", data=kpi_state),
        dcc.Store(id="wall-zones", data={k: (kpi or {}).get(k) for k in ("zones", "district", "order", "ranked")}),
        dcc.Store(id="wall-alerts", data=(alerts or {}).get("items", [])),
        dcc.Store(id="wall-tour"),
        dcc.Store(id="wall-conn", data={"ok": True, "fails": 0}),
        dcc.Interval(id="wall-clock-tick", interval=CLOCK_MS),
        dcc.Interval(id="wall-kpi-tick", interval=KPI_MS),
        dcc.Interval(id="wall-tour-tick", interval=cfg["tour_ms"]),
        dcc.Interval(id="wall-heartbeat-tick", interval=HEARTBEAT_MS),
        map_inputs,
        html.Header(className="wx-wall-head", children=[
            html.Div(className="wx-wall-title", children=[
                html.H1(wt("wall_title", lang, place=place)), html.Span(wt("wall_subtitle", lang), className="wx-wall-subtitle")]),
            html.Div(className="wx-wall-head-mid", children=[
                html.Span(alert_count((alerts or {}).get("count", 0), lang), id="wall-alert-count", className="wx-wall-alert-count"),
                html.Span([wt("updated", lang), " ", html.B((kpi or {}).get("as_of", ""), id="wall-updated")],
                          className="wx-wall-updated"),
                status_sign(lang),
            ]),
            html.Div(className="wx-wall-clock", children=[
                html.Div(id="wall-clock", className="wx-wall-time"),
                html.Div(id="wall-date", className="wx-wall-date"),
            ]),
        ]),
        html.Section(kpi_header((kpi or {}).get("header"), lang), id="wall-kpis", className="wx-wall-kpis"),
        html.Aside(className="wx-wall-left", children=[
            html.Section(id="wall-zone-card", className="wx-wall-panel wx-wall-zone"),
            html.Section(ranking((kpi or {}).get("ranking"), lang, cfg["rank_n"]), id="wall-ranking",
                         className="wx-wall-panel wx-wall-ranking"),
        ]),
        html.Main(className="wx-wall-map", id="wall-map-panel", children=[
            map_component,
            html.Div(legend_children, id="map-legend", className="wx-wall-legend"),
            html.Div(id="wall-alert", className="wx-wall-alert", role="alert"),
        ]),
        html.Aside(className="wx-wall-right wx-wall-panel", children=[
            html.H3(wt("ticker", lang), className="wx-wall-panel-title"),
            html.Ol(ticker(items, lang), id="wall-ticker", className="wx-wall-ticker"),
        ]),
    ])
