"""The overview's drill-down: the view (unit and period) in the URL, and the values the panel shows for it.

The view is a dict ``{"level": district|town|zone|grid, "code": str|None, "period": key, "from": "YYYY-MM-DD"|None,
"to": …}``; :func:`state_from_query` / :func:`query_for` convert between it and the URL query. :func:`panel_values`
and :func:`lifecycle_values` compute what the panel shows (from the cached KPI views); ``ui.panel`` turns those
values into components.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from .. import context
from ..domain.levels import LAYER_LEVEL, UPPER_LAYERS
from ..metrics import kpis, periods, views
from . import units

DEFAULT_KPI = "detection_rate"


# ------------------------------------------------------------------------------------- view state
def state_from_params(params: dict, h=None) -> dict:
    """The view named by URL query parameters; anything invalid falls back to the default. With the hierarchy
    ``h`` unknown units fall back to the district too."""
    level, code = params.get("level") or "district", params.get("code") or None
    if h is not None:
        level, code = units.normalise_view(h, level, code)
    elif level not in units.LEVELS or level == "district":
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


def state_from_query(search: str | None, h=None) -> dict:
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


def gis_query(state: dict) -> str:
    """The GIS export's query for a view (no leading ``?``): the KPI period as ``period`` (a custom one's days as
    ``period_from`` / ``period_to``) and, as the incident filter, the unit (``town`` / ``zone`` / ``grid``) and the
    incidents reported in the period (``from`` its first day, ``to`` the day after its last: ``to`` is exclusive)."""
    h = units.hierarchy()
    level, code = units.normalise_view(h, state.get("level"), state.get("code"))
    p = period_of(state)
    q = {"period": p.key}
    if p.key == "custom":
        q["period_from"], q["period_to"] = p.first_day, p.last_day
    if level != "district":
        q[level] = code
    q["from"], q["to"] = p.first_day, p.end.strftime("%Y-%m-%d")
    return urlencode(q)


def period_of(state: dict) -> periods.Period:
    try:
        return periods.resolve(state.get("period"), state.get("from"), state.get("to"))
    except periods.PeriodError:
        return periods.resolve(periods.DEFAULT_PERIOD)


def map_target(state: dict) -> dict:
    """Which unit the map highlights and the bounds it flies to."""
    h = units.hierarchy()
    level, code = units.normalise_view(h, state.get("level"), state.get("code"))
    return {"level": level, "code": code, "bounds": h.bounds[h.key(level, code)]}


def drill_target(h, state: dict, layer: str, code: str | None) -> tuple[str, str] | None:
    """Where a click on the map's ``layer`` feature ``code`` goes.

    A town or zone drills into it. The grids are drawn on top, so a grid click is how a user points at a
    zone too: a grid outside the current zone drills into the grid's zone (one step: district → zone), and a
    grid inside the current zone (or a sibling of the current grid) drills into the grid itself.
    """
    if not code:
        return None
    upper = LAYER_LEVEL.get(layer) if layer in UPPER_LAYERS else None
    if upper and h.exists(upper, code):  # a multi-county map: a city or county drills into it
        return upper, code
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


# ------------------------------------------------------------------------------------------ values
def _crumbs(h, state: dict, lang: str) -> list[dict]:
    """``[{"level", "code", "name", "href"}]`` from the district down to the unit (no ``href`` on the last)."""
    chain = h.chain(state["level"], state["code"])
    out = []
    for i, (lv, code) in enumerate(chain):
        target = {**state, "level": lv, "code": None if lv == "district" else code}
        out.append({"level": lv, "code": code, "name": h.name(lv, code, lang),
                    "href": None if i == len(chain) - 1 else "/" + query_for(target, lang)})
    return out


def _profile(h, gd, bundle, state, rank_kpis) -> dict:
    """``{"kind": district|town|zone|grid, …}``: what the unit's profile box shows."""
    svc = context.services()
    level, code = state["level"], state["code"]
    hz = views.hazards_of(gd, level, code)
    ranks = {k: views.rank_in_district(bundle, level, code, k) for k in rank_kpis} if code else {}
    if level == "zone":
        inspected = views.unit_kpis(bundle, "zone", code).get("units_inspected") or 0
        return {"kind": "zone", "staff": views.zone_staff(gd, code), "hazards": hz, "ranks": ranks,
                "inspected": inspected, "root_kind": h.root.kind}
    if level == "grid":
        return {"kind": "grid", "grid": h.grid_row(code),
                "activity": views.grid_activity(svc.engine, svc.cache, code),
                "kpis": views.unit_kpis(bundle, "grid", code), "hazards": hz, "ranks": ranks,
                "root_kind": h.root.kind}
    g = h.unit_grids(level, code)
    below = h.levels[h.levels.index(level) + 1:]  # the unit's own levels below it (a county: towns, zones, grids)
    info = {**{key: int(g[views.UNIT_COLUMN[lv]].nunique())
               for lv, key in (("city", "n_cities"), ("county", "n_counties"), ("town", "n_towns")) if lv in below},
            "n_zones": int(g["zone_code"].nunique()),
            "n_grids": int(len(g)), "registered_units": int(g["registered_units"].sum()),
            "population": int(g["population"].sum()), "full_time": int(g["worker_full_time"].astype(bool).sum()),
            "part_time": int((~g["worker_full_time"].astype(bool)).sum()), "hazards": hz, "ranks": ranks}
    return {"kind": level, "info": info, "root_kind": h.root.kind}


def _view(state: dict):
    """(services, geodata, hierarchy, level, code, state, period, bundle) of a view: the unit normalised (an
    unknown one is the root) and the period's KPI bundle with the grid medians the view shows."""
    svc = context.services()
    gd = svc.geodata()
    h = units.hierarchy(gd)
    level, code = units.normalise_view(h, state.get("level"), state.get("code"))
    state = {**state, "level": level, "code": code}
    p = period_of(state)
    bundle = views.kpi_bundle(svc.engine, gd, svc.cache, p, grid_medians=(level, code))
    return svc, gd, h, level, code, state, p, bundle


def panel_text_values(state: dict, lang: str, rank_kpis=()) -> dict:
    """What the panel shows as text for one view — breadcrumb, title, KPI cards (with the parent's and last
    year's), profile — as values: the first part of a drill, sent without waiting for the charts (their values:
    :func:`panel_chart_values`); ``rank_kpis``: the KPIs whose rank the unit's profile shows."""
    svc, gd, h, level, code, state, p, bundle = _view(state)
    return {
        "level": level, "code": code, "name": h.name(level, code, lang), "root_kind": h.root.kind,
        "period": {"from": p.first_day, "to": p.last_day},
        "crumbs": _crumbs(h, state, lang),
        **_cards(svc, gd, h, level, code, p, bundle, lang),
        "profile": _profile(h, gd, bundle, state, rank_kpis),
    }


def panel_chart_values(state: dict, lang: str, kpi: str | None, freq: str | None) -> dict:
    """What the panel's charts show for one view (ranking of the children by ``kpi``, trend by ``freq``,
    categories, levels reached, departments) as values."""
    svc, gd, h, level, code, state, p, bundle = _view(state)
    kpi = kpi if kpi in kpis.KPIS else DEFAULT_KPI
    child_level, rows = views.children_rows(bundle, h, level, code)
    f = views.auto_freq(p) if freq in (None, "auto") else freq
    return {
        "level": level, "code": code, "kpi": kpi, "freq": f, "root_kind": h.root.kind,
        "child_level": child_level,
        "ranking": [{"code": c, "name": h.name(child_level, c, lang), "level": child_level, "value": r.get(kpi)}
                    for c, r in rows],
        "ranking_average": views.level_average(bundle, child_level, kpi),
        "trend": views.trend_series(svc.engine, p, level, code, f, h=h),
        "categories": views.category_counts(svc.engine, p, level, code, h=h),
        "levels": views.level_counts(bundle, h, level, code),
        "departments": views.department_table(bundle, level, code, p, svc.engine, svc.cache, h=h),
    }


def panel_values(state: dict, lang: str, kpi: str | None, freq: str | None, rank_kpis=()) -> dict:
    """Everything the panel shows for one view: :func:`panel_text_values` and :func:`panel_chart_values` (the
    lifecycle charts: :func:`lifecycle_values`)."""
    return {**panel_chart_values(state, lang, kpi, freq), **panel_text_values(state, lang, rank_kpis)}


def card_values(state: dict, lang: str) -> dict:
    """What the KPI cards of one view show (a part of :func:`panel_values`, pushed to open overviews after each
    change): the unit's values, its parent's, the parent's name and last year's."""
    svc, gd, h, level, code, _state, p, bundle = _view(state)
    return _cards(svc, gd, h, level, code, p, bundle, lang)


def _cards(svc, gd, h, level: str, code: str | None, p: periods.Period, bundle: dict, lang: str) -> dict:
    """The KPI cards' values of a view (its period's ``bundle``): the unit's, its parent's with the parent's name, and
    the unit's of the same days a year before."""
    parent_level = h.parent_level(level)
    parent_code = h.parent.get((level, code)) if parent_level else None
    prev = views.unit_values(svc.engine, gd, svc.cache, p.previous_year(), level, code)
    return {"values": views.unit_kpis(bundle, level, code),
            "parent_values": views.unit_kpis(bundle, parent_level, parent_code) if parent_level else None,
            "parent_name": h.name(parent_level, parent_code, lang) if parent_level else None,
            "previous": views.comparable(prev)}


def lifecycle_values(state: dict) -> dict:
    """``{"funnel", "stages"}`` of the view's unit and period (cached per unit by ``metrics.views``)."""
    svc = context.services()
    gd = svc.geodata()
    h = units.hierarchy(gd)
    level, code = units.normalise_view(h, state.get("level"), state.get("code"))
    return views.lifecycle(svc.engine, gd, svc.cache, period_of(state), level, code)
