"""总览 Overview: the district map with towns, zones, grids and hazard sites."""
from __future__ import annotations

from dash import html

from ..i18n import t
from ..ui.map import district_map
from ..ui.shell import header


def layout(settings, lang: str, params: dict, counts: dict):
    return html.Div([
        header(lang, "/", params, t("counts_line", lang, **counts)),
        html.Main(className="wx-main", children=[
            html.Div(district_map(settings, lang), className="wx-map", id="map-panel"),
        ]),
    ])
