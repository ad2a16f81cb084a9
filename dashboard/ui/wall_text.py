"""Strings of the wall display (大屏), Simplified Chinese first, English with ``?lang=en``.

Kept next to the wall (not in the shared :mod:`dashboard.i18n` table) so the wall can change its wording
without touching other pages; :func:`wt` falls back to :func:`dashboard.i18n.t` for shared keys.
"""
from __future__ import annotations

from ..i18n import STRINGS, kind_words, normalise, t
from ..metrics import kpis, registry
from ..store import catalogue

WALL_STRINGS: dict[str, tuple[str, str]] = {
    "wall_title": ("{place}基层社会治理指挥中心", "{place} Grassroots Governance Command Centre"),  # the root unit
    "wall_subtitle": ("实时态势大屏", "Live situation wall"),
    "today": ("今日", "Today"),
    "month": ("本月", "This month"),
    "now": ("当前", "Now"),
    "reconnecting": ("正在重连…", "Reconnecting…"),
    "updated": ("数据更新", "Updated"),
    "ticker": ("最新上报", "Newest reports"),
    "ticker_empty": ("暂无上报", "No reports yet"),
    "ranking": ("{unit}排名", "{unit} ranking"),  # {unit}: the toured unit's word (unit_word)
    "ranking_top": ("前{n}名", "Top {n}"),
    "ranking_bottom": ("后{n}名", "Bottom {n}"),
    "tour": ("{unit}巡览", "{unit} tour"),
    "tour_district": ("全{kind}概况", "{kind} overview"),  # {kind}: i18n.kind_words
    "tour_step": ("{i} / {n}", "{i} / {n}"),
    "rank_of": ("第 {r} / {n} 名", "Rank {r} of {n}"),
    "grids": ("网格", "Grids"),
    "registered_units": ("登记单位", "Registered units"),
    "hazards": ("风险点位", "Hazard sites"),
    "major_hazards": ("重大危险源", "Major hazards"),
    "station": ("工作站", "Workstation"),
    "alert": ("告警", "Alert"),
    "alert_title": ("新告警", "New alert"),
    "alert_high": ("高等级案事件", "High-severity incident"),
    "alert_ring": ("危化品安全半径内", "Inside a hazardous-chemical safety ring"),
    "alerts_active": ("当前告警 {n} 条", "{n} active alerts"),
    "severity": ("等级", "Severity"),
    "invalid_token": ("大屏令牌无效或已停用", "The wall token is not valid"),
    "invalid_token_hint": ("请联系指挥中心管理员获取大屏访问链接。",
                           "Ask the command centre's administrator for the wall's link."),
}

RANK_KPIS = registry.shown_in("wall_rank")
SEVERITY_NAMES = catalogue.SEVERITY_NAMES


def wt(key: str, lang: str = "zh", **fmt) -> str:
    """A wall string (or a shared one from :mod:`dashboard.i18n`) in ``lang``."""
    lang = normalise(lang)
    if key in WALL_STRINGS:
        zh, en = WALL_STRINGS[key]
        text = zh if lang == "zh" else en
    else:
        entry = STRINGS[key]
        text = entry.get(lang) or entry["zh"]
    return text.format(**fmt) if fmt else text


def severity_name(severity: int, lang: str) -> str:
    zh, en = SEVERITY_NAMES.get(int(severity or 1), SEVERITY_NAMES[1])
    return zh if normalise(lang) == "zh" else en


TOUR_LEVELS = ("zone", "county", "city")  # what a wall tours: a county's zones, a city's counties, a province's cities
COUNT_KEYS = ("cities", "counties", "towns", "zones")  # the counts a card of a unit above the towns shows


def unit_word(level: str, lang: str = "zh") -> str:
    """The toured unit as the wall's headings name it: 片区 / 县（市、区） / 市 (Zone / County / City)."""
    return t(f"wall_unit_{level if level in TOUR_LEVELS else 'zone'}", lang)


def client_table(lang: str, root_kind: str, level: str = "zone") -> dict:
    """The strings the wall's JS needs (tour cards, alert card), in one language; ``root_kind`` 区 / 县 / 市
    (``services.units.kind``: 全区概况 / 全县概况); ``level``: the toured unit's (片区巡览 / 县（市、区）巡览)."""
    keys = ("today", "month", "now", "rank_of", "grids", "registered_units", "hazards",
            "major_hazards", "station", "alert_title", "alert_high", "alert_ring", "severity", "zone", "town")
    return {**{k: wt(k, lang) for k in keys}, "tour": wt("tour", lang, unit=unit_word(level, lang)),
            "tour_district": wt("tour_district", lang, **kind_words(root_kind, lang)),
            **{k: t(f"wall_n_{k}", lang) for k in COUNT_KEYS}}


def fmt_value(value, kpi: str) -> str:
    """A KPI as the wall prints it: counts with thousands separators, rates in %, hours with one decimal."""
    if value is None:
        return "—"
    kind = kpis.KPIS[kpi][2]
    if kind == "rate":
        return f"{float(value) * 100:.1f}%"
    if kind == "hours":
        return f"{float(value):.1f}"
    return f"{int(value):,}"


def kpi_label(kpi: str, lang: str) -> str:
    zh, en, _ = kpis.KPIS[kpi]
    return zh if lang == "zh" else en
