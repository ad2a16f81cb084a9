"""Controls over the map: colour-by measure and units, hotspot period, legends, and the live refresh tick."""
from __future__ import annotations

from dash import dcc, html

from ..i18n import t
from ..metrics import registry
from ..metrics.kpis import KPIS
from ..metrics.periods import LABELS as PERIOD_LABELS
from .select import Select  # a native <select>: no lazy chunk before the map's first paint (ui/select.py)

MEASURE_CHOICES = registry.shown_in("map")  # what the map can be coloured by (the measure registry)
DEFAULT_MEASURE = "open_incidents"
DEFAULT_LAYER = "zones"


def _kpi_label(key: str, lang: str) -> str:
    zh, en, _ = KPIS[key]
    return zh if lang == "zh" else en


MULTI_LAYER = "counties"  # what a multi-county map colours at start (its zones are drawn only zoomed in)
UNIT_CHOICES = (("cities", "layer_cities"), ("counties", "layer_counties"), ("zones", "layer_zones"),
                ("grids", "layer_grids"), ("towns", "layer_towns"))


def map_controls(lang: str, measure: str = DEFAULT_MEASURE, layer: str = DEFAULT_LAYER,
                 period: dict | None = None, unit_layers=("zones", "grids", "towns")) -> html.Div:
    """``unit_layers``: the layers the set can be coloured on (``services.maps.map_layers``)."""
    return html.Div(className="wx-map-controls", id="map-controls-body", children=[
        html.Label(t("measure", lang), htmlFor="map-measure"),
        Select(id="map-measure", value=measure, className="wx-select",
               options=[{"label": t("measure_none", lang), "value": "none"}]
               + [{"label": _kpi_label(k, lang), "value": k} for k in MEASURE_CHOICES]),
        dcc.RadioItems(id="map-measure-layer", value=layer, inline=True,
                       options=[{"label": t(label, lang), "value": key} for key, label in UNIT_CHOICES
                                if key in unit_layers]),
        html.Label(t("hotspot_period", lang), htmlFor="hotspot-period"),
        Select(id="hotspot-period", value="30d", className="wx-select",
               options=[{"label": PERIOD_LABELS[k][0 if lang == "zh" else 1], "value": k}
                        for k in ("today", "7d", "30d", "year", "2019")]),
        dcc.Store(id="map-coloured", data=layer if measure != "none" else None),
        dcc.Store(id="map-period", data=period or {"period": "30d"}),
    ])


def hidden_map_inputs(measure: str = "none", layer: str = DEFAULT_LAYER, hotspot_period: str = "30d") -> html.Div:
    """The values the shared map callbacks (callbacks.map) read, fixed and hidden, for a page that shows
    ``district_map`` without the overview's controls (every map callback then finds all of its inputs)."""
    return html.Div(hidden=True, children=[
        dcc.Input(id="map-measure", type="hidden", value=measure),
        dcc.Input(id="map-measure-layer", type="hidden", value=layer),
        dcc.Input(id="hotspot-period", type="hidden", value=hotspot_period),
        dcc.Store(id="map-period", data={"period": "30d"}),
        dcc.Store(id="map-coloured", data=layer if measure != "none" else None),
        html.Div(id="map-legend"),
        html.Div(id="hotspot-legend-slot"),
    ])


def live_feed(seq: int | None, aseq: int | None, push: dict | None = None, *, charts: bool = False,
              reload: str | None = None, truncated: str | None = None, view: dict | None = None) -> html.Div:
    """What a page with ``district_map`` needs to follow the store by push (``assets/live.js``): the incident
    and alert change sequences the page was built at (the live stream starts there, so nothing committed between
    the render and the stream is missed), ``live-push``: the page's live parts and their parameters (the stream
    sends their new props after each change: ``callbacks.pushed``; a page's clientside callback keeps it current
    as the view changes), and with ``charts`` the store ``charts-seq`` that the stream moves at most once a minute
    while changes come (the overview's charts follow it). ``reload``: the store the stream moves when too much
    changed at once to send (the page then reloads that part). ``truncated``: the element (:func:`map_note`) shown
    while the incident layer holds only the newest of its filter (the payload says ``truncated``). ``view``: a
    multi-county map's (``ui.layers.incident_view``): the incidents of the view only, as counts per cell or
    markers."""
    ids = {"charts": "charts-seq"} if charts else {}
    if reload:
        ids["reload"] = reload
    if truncated:
        ids["truncated"] = truncated
    stores = [dcc.Store(id="charts-seq", data=seq)] if charts else []
    if reload:
        stores.append(dcc.Store(id=reload))
    conf = {"seq": seq, "aseq": aseq, "ids": ids, "push": push or {}}
    if view:
        conf["view"] = view
    return html.Div([dcc.Store(id="live-conf", data=conf),
                     dcc.Store(id="live-push", data=push or {}), *stores, dcc.Store(id="live-follow")],
                    style={"display": "none"})


def map_note(note_id: str, text: str) -> html.Div:
    """A note over the map, hidden until ``assets/live.js`` shows it (e.g. the markers are only the newest of a
    filter that matches more)."""
    return html.Div(text, id=note_id, className="wx-map-note", role="status", hidden=True)


def legend(payload: dict | None, lang: str) -> list:
    """Colour legend for a choropleth payload (see services.maps.measure_payload)."""
    if not payload or not payload.get("colors"):
        return []
    fmt = (lambda v: f"{v * 100:.1f}%") if payload["format"] == "pct" else (lambda v: f"{round(v, 1):g}")
    brks, colors = payload["breaks"], payload["colors"]
    rows = []
    for i, color in enumerate(colors):
        if not brks:
            text = t("no_data", lang) if not any(v is not None for v in payload["values"].values()) else "…"
        elif i == 0:
            text = f"≤ {fmt(brks[0])}"
        elif i == len(brks):
            text = f"> {fmt(brks[-1])}"
        else:
            text = f"{fmt(brks[i - 1])} – {fmt(brks[i])}"
        rows.append(html.Div([html.I(style={"background": color}), text], className="wx-legend-row"))
    period = payload.get("period") or {}
    note = "" if payload.get("live") else f"{period.get('from', '')} – {period.get('to', '')}"
    return [html.Div(className="wx-legend", id="choropleth-legend", children=[
        html.B(payload["label"]), html.Div(note, className="wx-legend-note"), *rows,
        html.Div([html.I(style={"background": "#ffffff", "border": "1px solid #ccc"}), t("no_data", lang)],
                 className="wx-legend-row"),
    ])]


def hotspot_legend(lang: str) -> html.Div:
    from .palette import SEQUENTIAL_BAD

    return html.Div(className="wx-legend wx-hotspot-legend", id="hotspot-legend", children=[
        html.B(t("layer_hotspots", lang)),
        html.Div(t("hotspot_legend", lang), className="wx-legend-note"),
        html.Div([html.I(style={"background": c}) for c in SEQUENTIAL_BAD[1:]], className="wx-legend-ramp"),
    ])
