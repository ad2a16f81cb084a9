"""KPI figures for the front doors: one unit's KPIs with its parent's, last year's and its children's
(``GET /api/v1/kpis``), and the morning briefing — from the period's cached KPI bundle (``metrics.views``), the
same numbers the cards show."""
from __future__ import annotations

from .. import context
from ..domain.timefmt import iso_utc
from ..metrics import kpis, periods, views
from . import units


def moment(at: str) -> str:
    """A bundle's moment (``str`` of a UTC timestamp) in the API's form: ISO 8601 UTC with ``Z``."""
    import pandas as pd

    return iso_utc(pd.Timestamp(at).to_pydatetime())


def kpi_payload(level: str, code: str | None, p: periods.Period, children: bool = False) -> dict:
    """The KPIs of unit (``level``, ``code``) over period ``p``; ``children``: the children's KPIs too."""
    svc = context.services()
    gd = svc.geodata()
    h = units.hierarchy(gd)
    bundle = views.kpi_bundle(svc.engine, gd, svc.cache, p, grid_medians=(level, code))
    prev_kpis = views.unit_values(svc.engine, gd, svc.cache, p.previous_year(), level, code)
    parent_level = h.parent_level(level)
    parent_code = h.parent.get((level, code)) if parent_level else None
    values = views.unit_kpis(bundle, level, code)
    out = {
        "level": level,
        "code": code or h.root.code,
        "name": h.name(level, code, "zh"),
        "name_en": h.name(level, code, "en"),
        "period": {"key": p.key, "from": p.first_day, "to": p.last_day, "at": moment(bundle["at"])},
        "kpis": values,
        "parent": None if parent_level is None else {
            "level": parent_level, "code": parent_code or h.root.code,
            "name": h.name(parent_level, parent_code, "zh"), "kpis": views.unit_kpis(bundle, parent_level, parent_code)},
        "previous_year": {"from": p.previous_year().first_day, "to": p.previous_year().last_day,
                          "kpis": prev_kpis,
                          "change": kpis.changes(values, views.comparable(prev_kpis))},
        "definitions": {k: {"zh": zh, "en": en, "kind": kind} for k, (zh, en, kind) in kpis.KPIS.items()},
    }
    if children:
        child_level, rows = views.children_rows(bundle, h, level, code)
        out["children"] = {"level": child_level,
                           "units": [{"code": c, "name": h.name(child_level, c, "zh"), "kpis": r} for c, r in rows]}
    return out


def every_unit(p: periods.Period) -> dict:
    """Every unit's KPIs over period ``p`` — ``{"at": moment, "kpis": {level: {code: {kpi: value}}}}`` for the
    district, towns, zones and grids, grid medians included — from the same cached bundle as :func:`kpi_payload`
    (the GIS export)."""
    svc = context.services()
    bundle = views.kpi_bundle(svc.engine, svc.geodata(), svc.cache, p, grid_medians="all")
    return {"at": bundle["at"], "kpis": {lv: {c: dict(v) for c, v in rows.items()}
                                         for lv, rows in bundle["kpis"].items()}}


def briefing() -> dict:
    """The morning briefing's figures: the last 24 h per zone (cached by ``metrics.views``) and, under
    ``"year"``, the district's year-on-year table of the last whole year (``views.year_on_year``; None without
    one) with the root unit's ``kind`` (区 / 县 / 市: its title says 全区 / 全县 / 全市)."""
    svc = context.services()
    gd = svc.geodata()
    year = views.year_on_year(svc.engine, gd, svc.cache)
    return {**views.briefing(svc.engine, gd, svc.cache), "year": {**year, "kind": units.kind(gd)} if year else None}
