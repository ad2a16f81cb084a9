"""Layout of the command centre's wall display (大屏 ``/wall``): built for 3840×2160 and 1920×1080, dark.

Every rule of ``assets/wall.css`` is scoped under ``.wx-wall``; the clock, the tour and the connection watch
run in the browser (``assets/wall.js``, ``window.wx.wall``). Text reaches the page only as Dash component
children (escaped by React), never as HTML.
"""
from __future__ import annotations

from dash import dcc, html

from ..metrics import kpis as K
from .palette import SEVERITY_COLORS
from .wall_text import RANK_KPIS, client_table, fmt_value, kpi_label, severity_name, unit_word, wt

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
    "cities": {"stroke": "#f0b27a", "weight": 3, "opacity": 0.95, "fillOpacity": 0.5},
    "counties": {"stroke": "#8fd3ff", "weight": 2.5, "opacity": 0.9, "fillOpacity": 0.5},
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


def wall_config(settings, lang: str, params: dict, root_kind: str, level: str = "zone") -> dict:
    """Tour and ranking options: URL parameters over settings over defaults (``?tour=30&order=rank|code``,
    ``rank=<kpi>``, ``rank_period=today|month``, ``rank_n=5``, ``pause=<s>`` for an alert); ``level``: the toured
    unit's (``services.wall.tour_level``: zone, or a city's counties, a province's cities)."""
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
        "text": client_table(lang, root_kind, level),
    }


# -------------------------------------------------------------------------------------------- parts
# The header, the ticker and the ranking reach the page as values (dcc.Stores: ``wall-header``, ``wall-ticks``,
# ``wall-rank``); ``assets/wall.js`` (``wx.wall.header`` / ``ticker`` / ``ranking``) builds their elements in the
# browser. A change then moves a few values (pushed as a Dash patch, ``callbacks.pushed``), not component trees.
def header_data(header: dict | None, lang: str) -> dict:
    """The KPI header: ``{"rows": [[period, its name, [[kpi, label], …]], …], "values": {period: [text, …]}}``
    (``rows`` never moves; ``values``: each row's figures as the wall prints them)."""
    return {"rows": [[per, wt(per, lang), [[k, kpi_label(k, lang)] for k in keys]]
                     for per, keys in HEADER_ROWS.items()],
            "values": header_values(header)}


def header_values(header: dict | None) -> dict:
    return {per: [fmt_value(((header or {}).get(per) or {}).get(k), k) for k in keys]
            for per, keys in HEADER_ROWS.items()}


# a ticker item, in this order (wx.wall.ticker reads them by position: a pushed report costs no key names)
TICK_FIELDS = ("id", "code", "severity", "status", "time", "date", "glyph", "category", "place", "description",
               "status_name")


def tick(it: dict) -> list:
    """One report of the ticker as values (:data:`TICK_FIELDS`)."""
    return [it["id"], it["code"], it["severity"], it["status"], it["time"], it["date"], it["glyph"], it["category"],
            f"{it['zone']} · {it['town']}", it["description"], it["status_name"]]


def ticker_data(items: list[dict] | None, lang: str, shown_before: list | None = None) -> dict:
    """The newest reports: ``{"items": [tick, …], "fresh": [ids sliding in], "sev": {severity: [name, colour]},
    "empty": text}``. Only reports not in ``shown_before`` (ids) slide in; the rest stand still."""
    before = set(shown_before or ())
    return {"items": [tick(it) for it in items or []],
            "fresh": [it["id"] for it in items or [] if it["id"] not in before],
            "sev": {str(s): [severity_name(s, lang), SEVERITY_COLORS[s]] for s in sorted(SEVERITY_COLORS)},
            "empty": wt("ticker_empty", lang)}


def ranking_data(rank: dict | None, lang: str, n: int = DEFAULT_RANK_N) -> dict:
    """The ranking of the toured units as values: ``{"title", "sub", "top", "bottom" (the columns' headings),
    "total" (units ranked), "rows_top", "rows_bottom": [[unit code, name, second line (a zone's town), bar width,
    text], …]}`` (a row's position follows from ``total``, so a unit ranked anew moves no row); ``{}``: nothing
    ranked. Zones: the best and the last ``n`` (at most half each); the few counties or cities of a city's or
    province's wall: every one (the first half, rounded up, and the rest) when there are no more than ``2 n``."""
    if not rank or not rank.get("rows"):
        return {}
    rows = rank["rows"]
    level = rank.get("level", "zone")
    kind = K.KPIS[rank["kpi"]][2]
    top_value = max((r["value"] for r in rows if r["value"] is not None), default=0) or 1
    if level != "zone" and len(rows) <= 2 * n:
        n_top, n_bottom = (len(rows) + 1) // 2, len(rows) // 2
    else:
        n_top = n_bottom = min(n, max(1, len(rows) // 2))

    def row(r):
        v = r["value"]
        width = 0 if v is None else (v * 100 if kind == "rate" else v / top_value * 100)
        return [r["code"], r["name"], r["town"], f"{max(0.0, min(100.0, width)):.1f}%", r["text"]]

    return {"title": wt("ranking", lang, unit=unit_word(level, lang)),
            "sub": f"{rank['label']} · {wt(rank['period'], lang)}",
            "top": wt("ranking_top", lang, n=n_top), "bottom": wt("ranking_bottom", lang, n=n_bottom),
            "total": len(rows), "rows_top": [row(r) for r in rows[:n_top]],
            "rows_bottom": [row(r) for r in rows[len(rows) - n_bottom:]] if n_bottom else []}


def tour_data(payload: dict | None) -> dict:
    """The tour's unit cards (``wall-zones``, read by ``wx.wall.tour``) from a KPI payload
    (``services.wall.kpi_payload``): the toured level and its map layer (``level``, ``layer``: zone / zones, or a
    city's counties, a province's cities), what each card shows that never moves (``units``, ``district``: names,
    bounds, counts of towns, zones, grids, units and hazard sites), the card figures' labels (``cards``:
    ``{period: [[kpi, label], …]}``) apart from their values (``values``: ``{unit code or "district": [text, …]}``
    in the order of ``cards``), and the tour's orders (``order``: rank / code; a unit's rank is its place in
    ``order.rank`` among the ``ranked``)."""
    if not payload:
        return {k: None for k in ("level", "layer", "units", "district", "cards", "values", "order", "ranked")}

    def fixed(unit):
        return {k: v for k, v in unit.items() if k not in ("kpis", "rank")}

    district = payload["district"]
    cards = {per: [[row["key"], row["label"]] for row in rows] for per, rows in district["kpis"].items()}

    def values(unit):
        return [row["value"] for per in cards for row in unit["kpis"][per]]

    vals = {code: values(u) for code, u in payload["units"].items()}
    vals["district"] = values(district)
    return {"level": payload["level"], "layer": payload["layer"],
            "units": {code: fixed(u) for code, u in payload["units"].items()}, "district": fixed(district),
            "cards": cards, "values": vals, "order": payload["order"], "ranked": payload["ranked"]}


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
        dcc.Store(id="wall-zones", data=tour_data(kpi)),
        dcc.Store(id="wall-header", data=header_data((kpi or {}).get("header"), lang)),
        dcc.Store(id="wall-rank", data=ranking_data((kpi or {}).get("ranking"), lang, cfg["rank_n"])),
        dcc.Store(id="wall-ticks", data=ticker_data(items, lang)),
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
        html.Section(id="wall-kpis", className="wx-wall-kpis"),
        html.Aside(className="wx-wall-left", children=[
            html.Section(id="wall-zone-card", className="wx-wall-panel wx-wall-zone"),
            html.Section(id="wall-ranking", className="wx-wall-panel wx-wall-ranking"),
        ]),
        html.Main(className="wx-wall-map", id="wall-map-panel", children=[
            map_component,
            html.Div(legend_children, id="map-legend", className="wx-wall-legend"),
            html.Div(id="wall-alert", className="wx-wall-alert", role="alert"),
        ]),
        html.Aside(className="wx-wall-right wx-wall-panel", children=[
            html.H3(wt("ticker", lang), className="wx-wall-panel-title"),
            html.Ol(id="wall-ticker", className="wx-wall-ticker"),
        ]),
    ])
