"""What the wall (大屏) shows, assembled from the store (through its repositories), the cached KPI views and the
geodata.

The wall ranks, tours and colours the units right under the root (:func:`tour_level`): a county's zones, a city's
counties, a province's cities — so what it is sent grows with those units, never with a province's zones.

Every payload is cached in the shared cache (``services().cache``) under what it depends on — the store's change
sequence for the live parts (ticker, alerts), the minute for the KPI parts (as :mod:`dashboard.metrics.views`
does) — so fifty walls cost about what one does. Only whitelisted, non-personal fields leave this module: no
reporter, no phone number (the wall is a public screen).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from .. import context
from ..domain import timefmt
from ..domain.levels import LEVEL_LAYER
from ..metrics import kpis, periods, registry, views
from ..store import queries
from ..ui.wall_text import RANK_KPIS, fmt_value, kpi_label, severity_name
from . import alerts as alert_service
from . import db, maps, units
from .serialise import wall_alert_row, wall_ticker_row

CACHE_PREFIX = "wall3"  # bump when a cached payload changes shape
TICKER_MAX = 20  # the ticker's bound: the newest reports only
ALERTS_MAX = 10
MAP_MEASURE = "open_incidents"  # the toured units are coloured by open incidents, live
DARK_RAMP = ["#17324d", "#3d2f5a", "#6b2f57", "#9c2f45", "#cf3a32", "#ff5a36"]  # few (dark) -> many (bright)
HEADER_KPIS = ("new_incidents", "open_incidents", "overdue_incidents", "onsite_handling_rate", "resolution_rate",
               "in_zone_resolution_rate")
DEFAULT_RANK_KPI = "resolution_rate"
ZONE_CARD_KPIS = {"today": ("new_incidents", "open_incidents", "overdue_incidents"),
                  "month": ("new_incidents", "onsite_handling_rate", "resolution_rate", "overdue_incidents")}


# ------------------------------------------------------------------------------------------ helpers
def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def month_period(now=None) -> periods.Period:
    """This calendar month (Asia/Shanghai) up to and including today: ``[1st 00:00, tomorrow 00:00)``."""
    now = pd.Timestamp.now(tz=kpis.LOCAL_TZ) if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    today = now.tz_convert(kpis.LOCAL_TZ).tz_localize(None).normalize()
    start, end = kpis.period(today.replace(day=1), today)
    return periods.Period("month", start, end)


def wall_periods(now=None) -> dict[str, periods.Period]:
    return {"today": periods.resolve("today", now=now), "month": month_period(now)}


def _cached(key: str, timeout: int, build):
    """From the shared cache, or built once however many walls ask at once (``cache.remember``: per process, and
    between the workers with Redis)."""
    from ..cache import remember

    return remember(_SafeCache(context.services().cache), key, timeout, build)


class _SafeCache:
    """An unreachable cache must not break the wall: a failing read is a miss."""

    def __init__(self, cache):
        self._cache = cache
        self.wx_flights = getattr(cache, "wx_flights", None)
        self.wx_locks = getattr(cache, "wx_locks", None)  # built once between the workers (cache.remember)

    def get(self, key):
        try:
            return self._cache.get(key)
        except Exception:  # noqa: BLE001
            return None

    def set(self, key, value, timeout=None):
        return self._cache.set(key, value, timeout=timeout)


def change_seq() -> int:
    return maps.change_seq()


# ------------------------------------------------------------------------------------------- ticker
def ticker_items(lang: str, seq: int | None = None, limit: int = TICKER_MAX) -> list[dict]:
    """The newest ``limit`` reports (newest first), whitelisted fields only — cached per change sequence."""
    seq = change_seq() if seq is None else seq
    return _cached(f"{CACHE_PREFIX}:ticker:{lang}:{limit}:{seq}", 300, lambda: _ticker_build(lang, limit))


def _ticker_build(lang: str, limit: int) -> list[dict]:
    """Newest by arrival (creation order), not by ``reported_at``: a report that reaches the centre now is news
    now, even when the worker dates it earlier."""
    from ..ui.palette import CATEGORY_GLYPHS, SEVERITY_COLORS

    names = units.names()
    with db.session() as s:
        rows = queries.newest_arrivals(s, limit)  # public columns only: never reporter / reporter_phone
    return [wall_ticker_row(r, lang, names, glyph=CATEGORY_GLYPHS.get(r.category, "事"),
                            color=SEVERITY_COLORS.get(int(r.severity), "#888"),
                            severity_name=severity_name(r.severity, lang)) for r in rows]


# ------------------------------------------------------------------------------------------- alerts
def alert_seq() -> int:
    """The alert feed's latest sequence (a new alert or an acknowledgement moves it)."""
    return alert_service.current_seq()


def active_alerts(lang: str, aseq: int | None = None) -> dict:
    """``{"count", "items"}``: the active alerts (newest first, at most :data:`ALERTS_MAX` items) as the wall shows
    them, from the alert feed's shared snapshot (``services.alerts.snapshot``), cached per alert sequence."""
    aseq = alert_seq() if aseq is None else aseq
    return _cached(f"{CACHE_PREFIX}:alerts:{lang}:{aseq}", 300,
                   lambda: _alerts_build(alert_service.snapshot(aseq), lang))


def _alerts_build(snap: dict, lang: str) -> dict:
    names = units.names()
    items = [wall_alert_row(a, lang, names, severity_name=severity_name(a["incident"]["severity"], lang))
             for a in snap.get("items", [])[:ALERTS_MAX]]
    return {"count": int(snap.get("count", len(items))), "items": items}


# ------------------------------------------------------------------------------------------ the map
def tour_level(gd=None) -> str:
    """The unit the wall ranks, tours and colours: the level right under the root — a county's zones (its towns
    are too few and too large to tour), a city's counties, a province's cities."""
    return views.row_level(units.hierarchy(gd))


def tour_layer(gd=None) -> str:
    """The map layer of :func:`tour_level` (``zones`` / ``counties`` / ``cities``)."""
    return LEVEL_LAYER[tour_level(gd)]


def unit_choropleth(lang: str, seq: int) -> dict:
    """The toured units (:func:`tour_layer`: zones, or a city's counties, a province's cities) coloured by open
    incidents right now (``services.maps.measure_payload``, the same classes as the overview map) in a ramp made
    for a dark screen, cached per change; ``layer`` names the layer."""
    layer = tour_layer()

    def build():
        payload = maps.measure_payload(layer, MAP_MEASURE, periods.resolve(None), lang)
        return {**payload, "colors": DARK_RAMP[: len(payload["colors"])]}

    return _cached(f"{CACHE_PREFIX}:choro:{layer}:{lang}:{seq}", 300, build)


# ---------------------------------------------------------------------------------------------- KPIs
def kpi_version(now=None) -> str:
    """What the wall's KPI figures depend on: the store's change sequence (a report or a step shows at once)
    and the minute (cases turn overdue as time passes, with no write)."""
    now = now_utc() if now is None else now
    return f"{views.data_version(context.services().engine)}:{int(now.timestamp() // 60)}"


def kpi_payload(lang: str, rank_kpi: str = DEFAULT_RANK_KPI, rank_period: str = "month", now=None) -> dict:
    """KPI header (the root unit, today and this month), the ranking of the toured units (:func:`tour_level`) and
    every toured unit's card data: a county's zones; a city's counties or a province's cities — never the zones of
    a city or province (the payload grows with the units under the root, not with the set)."""
    now = now_utc() if now is None else now
    rank_kpi = rank_kpi if rank_kpi in RANK_KPIS else DEFAULT_RANK_KPI
    rank_period = rank_period if rank_period in ("today", "month") else "month"
    key = f"{CACHE_PREFIX}:kpi:{lang}:{rank_kpi}:{rank_period}:{kpi_version(now)}"
    return _cached(key, 120, lambda: _kpi_build(lang, rank_kpi, rank_period, now))


def _zone_cards(gd, h, codes: list, lang: str) -> dict:
    """What the zones' tour cards show that is not a KPI (a county's wall)."""
    zones_geo = gd.zones.set_index("code")
    hz = gd.hazards
    out = {}
    for code in codes:
        z = zones_geo.loc[code]
        g = h.grids[h.grids["zone_code"] == code]
        zh = hz[hz["zone_code"] == code]
        out[code] = {
            "code": code, "name": h.name("zone", code, lang), "town": h.name("town", h.parent[("zone", code)], lang),
            "station": str(z["station_name"]) if lang == "zh" else f"{h.name('zone', code, lang)} workstation",
            "bounds": h.bounds[("zone", code)], "grids": int(len(g)),
            "registered_units": int(g["registered_units"].sum()),
            "hazards": int(len(zh)), "major_hazards": int(zh["major"].astype(bool).sum())}
    return out


def _counts(g, hz, below: tuple) -> dict:
    """The card figures of a unit above the towns (or the root of a multi-county set) from its grids ``g`` and
    hazard sites ``hz``: ``counts`` ([[key, n], …] of the levels in ``below``: its cities, counties, towns and
    zones), grids, registered units, hazard sites and the major ones."""
    return {"counts": [[LEVEL_LAYER[lv], int(g[views.UNIT_COLUMN[lv]].nunique())] for lv in below],
            "grids": int(len(g)), "registered_units": int(g["registered_units"].sum()),
            "hazards": int(len(hz)), "major_hazards": int(hz["major"].astype(bool).sum())}


def _upper_cards(gd, h, level: str, codes: list, lang: str) -> dict:
    """The tour cards of the counties (a city's wall) or cities (a province's): name, parent (the unit above it:
    the root for the units right under it), bounds and counts."""
    below = tuple(lv for lv in h.levels[h.levels.index(level) + 1:] if lv != "grid")
    unit_of_town = h.town_up[level]
    hz = gd.hazards
    hz_unit = hz["town_code"].map(unit_of_town)
    col = views.UNIT_COLUMN[level]
    out = {}
    for code in codes:
        up = h.parent.get((level, code))
        up_level = h.parent_level(level)
        out[code] = {"code": code, "name": h.name(level, code, lang),
                     "parent": h.name(up_level, up, lang) if up is not None else None,
                     "bounds": h.bounds[(level, code)],
                     **_counts(h.grids[h.grids[col] == code], hz[hz_unit == code], below)}
    return out


def _kpi_build(lang: str, rank_kpi: str, rank_period: str, now) -> dict:
    sv = context.services()
    gd = sv.geodata()
    h = units.hierarchy(gd)
    level = tour_level(gd)
    pers = wall_periods(now)
    bundles = {k: views.kpi_bundle(sv.engine, gd, sv.cache, p, now=now) for k, p in pers.items()}
    header = {k: {kpi: views.unit_kpis(b, "district", None).get(kpi) for kpi in HEADER_KPIS}
              for k, b in bundles.items()}

    codes = h.codes(level)
    ranked = rank_units(bundles[rank_period], level, codes, rank_kpi)
    valued = [(c, v) for c, v in ranked if v is not None]  # units without a value (no cases) are not ranked
    position = {code: i + 1 for i, (code, _) in enumerate(valued)}

    def card_kpis(lv, code):
        return {per: [{"key": k, "label": kpi_label(k, lang),
                       "value": fmt_value(views.unit_kpis(bundles[per], lv, code).get(k), k)} for k in keys]
                for per, keys in ZONE_CARD_KPIS.items()}

    if level == "zone":
        cards = _zone_cards(gd, h, codes, lang)
    else:
        cards = _upper_cards(gd, h, level, codes, lang)
    for code, card in cards.items():
        card.update(rank=position.get(code), kpis=card_kpis(level, code))
    hz = gd.hazards
    district = {"name": h.name("district", None, lang), "bounds": h.bounds[h.key("district", None)],
                "kpis": card_kpis("district", None)}
    if level == "zone":
        district.update({"zones": len(codes), "grids": int(len(h.grids)),
                         "registered_units": int(h.grids["registered_units"].sum()),
                         "hazards": int(len(hz)), "major_hazards": int(hz["major"].astype(bool).sum())})
    else:
        district.update(_counts(h.grids, hz, tuple(lv for lv in h.levels[1:] if lv != "grid")))

    def parent_of(code):
        """A ranking row's second line: a zone's town; a county's or city's parent when it is not the root."""
        if level == "zone":
            return h.name("town", h.parent[("zone", code)], lang)
        up_level = h.parent_level(level)
        return "" if up_level == "district" else h.name(up_level, h.parent[(level, code)], lang)

    return {
        "level": level, "layer": LEVEL_LAYER[level],
        "header": header,
        "ranking": {"kpi": rank_kpi, "label": kpi_label(rank_kpi, lang), "period": rank_period, "level": level,
                    "rows": [{"code": c, "name": h.name(level, c, lang), "town": parent_of(c), "value": v,
                              "text": fmt_value(v, rank_kpi)} for c, v in valued]},
        "units": cards, "district": district, "ranked": len(valued),
        "order": {"rank": [c for c, _ in ranked], "code": codes},  # the tour visits every unit
        "as_of": timefmt.beijing(now, timefmt.CLOCK),
    }


def rank_units(bundle: dict, level: str, codes: list[str], kpi: str) -> list[tuple[str, float | None]]:
    """All units of ``level``, best first for ``kpi`` (lower is better for open / overdue / hours); no value goes
    last."""
    rows = bundle["kpis"].get(level, {})
    vals = [(c, (rows.get(c) or {}).get(kpi)) for c in codes]
    have = [x for x in vals if x[1] is not None]
    missing = [x for x in vals if x[1] is None]
    have.sort(key=lambda x: (x[1], x[0]) if registry.lower_is_better(kpi) else (-x[1], x[0]))
    return have + missing
