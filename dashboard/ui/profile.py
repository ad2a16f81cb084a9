"""Unit profiles: district / town summary, the zone's workstation and "1+1+1+N" staff, a grid's worker and cases."""
from __future__ import annotations

from dash import html

from ..domain.timefmt import SHORT, beijing
from ..i18n import kind_words, t
from ..metrics import registry
from ..store import catalogue, lifecycle
from .cards import fmt, kpi_label
from .layers import HAZARD_KINDS

RANK_KPIS = registry.shown_in("profile_rank")


def _row(label: str, value, cls: str = "") -> html.Div:
    return html.Div([html.Span(label, className="wx-prof-k"), html.Span(value, className="wx-prof-v " + cls)],
                    className="wx-prof-row")


def _stars(n: int) -> str:
    n = max(0, min(5, int(n or 0)))
    return "★" * n + "☆" * (5 - n)


def _hazards(hz: dict, lang: str):
    kinds = HAZARD_KINDS.get(lang, HAZARD_KINDS["zh"])
    parts = [f"{kinds.get(k, k)} {v}" for k, v in sorted(hz["by_kind"].items())]
    text = f"{hz['total']}" + (f"({t('major', lang)} {hz['major']})" if hz["major"] else "")
    return _row(t("hazard_sites", lang), text + (" · " + ", ".join(parts) if parts else ""))


def _ranks(ranks: dict, lang: str, root_kind: str):
    items = []
    for k in RANK_KPIS:
        r, n = ranks.get(k, (None, 0))
        items.append(html.Li([html.Span(kpi_label(k, lang)), " ",
                              html.B(t("rank_of", lang, rank=r, n=n) if r else "—")]))
    return html.Div([html.Div(t("rank_in_district", lang, **kind_words(root_kind, lang)), className="wx-prof-sub"),
                     html.Ul(items, className="wx-rank-list")])


def _counts(info: dict, lang: str) -> list:
    """The unit's cities, counties and towns (those it has below it), zones and grids."""
    rows = [_row(t(key, lang), info[f"n_{lv}"]) for lv, key in
            (("cities", "cities_n"), ("counties", "counties_n"), ("towns", "towns_n")) if f"n_{lv}" in info]
    return [*rows, _row(t("zones_n", lang), info["n_zones"]), _row(t("grids_n", lang), info["n_grids"])]


def _people(info: dict, lang: str) -> list:
    return [_row(t("registered_units", lang), f"{info['registered_units']:,}"),
            _row(t("population", lang), f"{info['population']:,}"),
            _row(t("grid_workers", lang), f"{t('full_time', lang)} {info['full_time']} · "
                                          f"{t('part_time', lang)} {info['part_time']}")]


def district_profile(info: dict, lang: str) -> html.Div:
    """The root unit's summary (what it holds; no rank)."""
    return html.Div(className="wx-profile", id="unit-profile", children=[
        html.H4(t("profile", lang)), *_counts(info, lang), *_people(info, lang), _hazards(info["hazards"], lang),
    ])


def town_profile(info: dict, lang: str, root_kind: str) -> html.Div:
    """A town's (or a county's or city's) summary and its ranks among the units of its level."""
    return html.Div(className="wx-profile", id="unit-profile", children=[
        html.H4(t("profile", lang)), *_counts(info, lang), *_people(info, lang), _hazards(info["hazards"], lang),
        _ranks(info["ranks"], lang, root_kind),
    ])


def zone_profile(staff: dict, hz: dict, ranks: dict, inspected: int, lang: str, root_kind: str) -> html.Div:
    stars = " · ".join(f"{k}★ {v}" for k, v in sorted(staff["stars"].items(), reverse=True) if v)
    return html.Div(className="wx-profile", id="unit-profile", children=[
        html.H4([t("workstation", lang), ": ", html.Span(staff["station_name"], className="wx-station")]),
        html.Div("1 + 1 + 1 + N", className="wx-prof-sub"),
        _row(t("chief", lang), staff["chief"]), _row(t("deputy", lang), staff["deputy"]),
        _row(t("station_master", lang), staff["station_master"]),
        _row(t("grid_workers", lang), f"{staff['n_grids']}({t('full_time', lang)} {staff['full_time']} · "
                                      f"{t('part_time', lang)} {staff['part_time']})"),
        _row(t("stars", lang), (stars or "—") + (f" · ⌀ {staff['mean_stars']:.1f}" if staff["mean_stars"] else "")),
        _row(t("dept_staff", lang), staff["dept_staff"]),
        _row(t("registered_units", lang), f"{staff['registered_units']:,}"),
        _row(t("units_inspected_period", lang), f"{inspected:,}"),
        _row(t("population", lang), f"{staff['population']:,}"),
        _hazards(hz, lang),
        _ranks(ranks, lang, root_kind),
    ])


def grid_profile(grid: dict, activity: dict, kp: dict, hz: dict, ranks: dict, lang: str, root_kind: str) -> html.Div:
    open_ = activity["open"]
    items = []
    for r in open_.head(12).itertuples():
        cat = catalogue.CATEGORIES.get(r.category)
        name = (cat.name_zh if lang == "zh" else cat.name_en) if cat else r.category
        when = beijing(r.reported_at, SHORT)
        items.append(html.Li([html.Span(r.code, className="wx-code"), " ", name, " · ",
                              lifecycle.STATES.get(r.status, (r.status, r.status))[0 if lang == "zh" else 1],
                              " · ", when], className=f"wx-open-inc wx-sev-{int(r.severity)}"))
    return html.Div(className="wx-profile", id="unit-profile", children=[
        html.H4(t("profile", lang)),
        _row(t("worker", lang), f"{grid['worker_name']}({t('full_time' if grid['worker_full_time'] else 'part_time', lang)})"),
        _row(t("stars", lang), _stars(grid["worker_stars"]), "wx-stars"),
        _row(t("last_inspection", lang), activity["last_inspection"] or "—"),
        _row(t("registered_units", lang), f"{int(grid['registered_units']):,}"),
        _row(kpi_label("units_inspected", lang), fmt("units_inspected", kp.get("units_inspected"), lang)),
        _row(kpi_label("inspection_coverage", lang), fmt("inspection_coverage", kp.get("inspection_coverage"), lang)),
        _row(t("population", lang), f"{int(grid['population']):,}"),
        _hazards(hz, lang),
        html.Div(f"{t('open_incidents_list', lang)} ({len(open_)})", className="wx-prof-sub"),
        html.Ul(items or [html.Li(t("none", lang))], className="wx-open-list", id="grid-open-incidents"),
        _ranks(ranks, lang, root_kind),
    ])
