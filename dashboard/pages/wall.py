"""大屏 Wall: the command centre's wall display — district map with live incidents and alerts, KPI header (today
and this month), the newest reports, a clock, the ranking and an automatic tour of the units under the root: a
county's zones, a city's counties, a province's cities (``services.wall.tour_level``).

Read-only kiosk: ``/wall?token=…`` with a token from ``settings.wall_tokens`` (``WALL_TOKENS``) needs no typing;
nothing personal (no reporter, no phone number) reaches the page. Options: ``?tour=<s>&order=rank|code``,
``rank=<kpi>``, ``rank_period=today|month``, ``rank_n=<n>``, ``pause=<s>``, ``lang=en``.
"""
from __future__ import annotations

import logging

from dash import dcc, html

from ..callbacks import wall as wall_callbacks
from ..services import maps
from ..services import tiles as basemap_tiles
from ..services import units
from ..services import wall as wall_data
from ..ui import wall as ui
from ..ui.map import district_map
from ..ui.layers import start_urls
from ..ui.map_controls import legend, live_feed
from .head import map_preload

log = logging.getLogger("dashboard.wall")

PRELOAD = map_preload(start_urls(ui.WALL_CHECKED))
ASSETS = ("wall.js", "wall.css")  # the wall's browser side and style (pages.head: other pages leave them out)


def token_ok(settings, params: dict) -> bool:
    """A kiosk token, when one is given, must be one of ``settings.wall_tokens``."""
    token = params.get("token")
    return token is None or token in settings.wall_tokens


def _safe(build, default):
    try:
        return build()
    except Exception:  # noqa: BLE001 - the wall must come up even when a part of its data cannot be read
        log.exception("wall: initial data failed")
        return default


def layout(settings, lang: str, params: dict):
    if not token_ok(settings, params):
        return ui.invalid_token(lang, units.title(lang))
    level = _safe(wall_data.tour_level, "zone")
    cfg = ui.wall_config(settings, lang, params, units.kind(), level)
    seq = _safe(wall_data.change_seq, None)
    aseq = _safe(wall_data.alert_seq, None)
    kpi = _safe(lambda: wall_data.kpi_payload(lang, cfg["rank"], cfg["rank_period"]), None)
    items = _safe(lambda: wall_data.ticker_items(lang, seq), []) if seq is not None else []
    alerts = _safe(lambda: wall_data.active_alerts(lang, aseq), None) if aseq is not None else None
    choro = _safe(lambda: wall_data.unit_choropleth(lang, seq), None) if seq is not None else None
    pulse = sorted({a["incident_id"] for a in (alerts or {}).get("items", [])})
    hideouts = {k: dict(v) for k, v in ui.WALL_HIDEOUTS.items()}
    if choro:  # the toured units' layer (zones, counties or cities), coloured by open incidents
        hideouts[choro["layer"]].update(values=choro["values"], breaks=choro["breaks"], colors=choro["colors"],
                                        measureLabel=choro["label"], format=choro["format"])
    hideouts["incidents"] = {"alerts": pulse}
    # what the page already shows, so the first live tick changes nothing (None: read it on the first tick)
    live_state = {"seq": seq, "aseq": aseq if alerts is not None else None, "pulse": pulse}
    cfg["district_bounds"] = units.root_bounds()
    the_map = district_map(settings, lang, map_id="map", dark=True, hideouts=hideouts, checked=ui.WALL_CHECKED,
                           bounds=cfg["district_bounds"], home=cfg["district_bounds"],
                           tiles=basemap_tiles.basemaps(settings), levels=units.hierarchy().levels)
    return ui.wall_layout(
        lang, place=units.title(lang), cfg=cfg, kpi=kpi, items=items, alerts=alerts, live_state=live_state,
        kpi_state={"v": wall_data.kpi_version()} if kpi else None, map_component=the_map,
        map_inputs=map_inputs(seq, live_state["aseq"], cfg, maps.view_config()),
        legend_children=legend(choro, lang))


def map_inputs(seq: int | None, aseq: int | None, cfg: dict, view: dict | None = None) -> html.Div:
    """The (hidden, fixed) values the shared map callbacks (``callbacks.map``) read when the map's layer control
    reports its overlays, and the live feed (the stream starts at the sequences the page was built at; the
    wall's live panels come in its events: ``callbacks.pushed``, part ``wall``)."""
    push = {"wall": {"lang": cfg["lang"]}, "rings": {},
            "wallfigures": {"lang": cfg["lang"], "rank": cfg["rank"], "rank_period": cfg["rank_period"],
                            "rank_n": cfg["rank_n"]}}
    return html.Div(hidden=True, children=[
        dcc.Input(id="hotspot-period", type="hidden", value="30d"),
        html.Div(id="hotspot-legend-slot"),
        live_feed(seq, aseq, push, view=view),
    ])


def register_callbacks(app) -> None:
    wall_callbacks.register_callbacks(app)
