"""KPI cards: the unit's value, its parent's value beside it and the change on the same period a year before.

Formatting lives here (one place): counts ``71,948``, rates ``39.86%``, hours ``18.3 h``; a missing value
(zero denominator, empty period) is ``—``, never NaN. 同比 is the relative change for every measure (``+16.12%``;
a rate's change in percentage points is in the tooltip).
"""
from __future__ import annotations

import math

from dash import html

from ..i18n import t
from ..metrics.kpis import KPIS, points_change, year_on_year
from ..metrics import registry
from .static import static

CARD_KPIS = registry.shown_in("cards")
LOWER_IS_BETTER = registry.LOWER_IS_BETTER

DASH = "—"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt(kpi: str, value, lang: str = "zh") -> str:
    """A KPI value as the cards show it."""
    if _missing(value):
        return DASH
    kind = KPIS[kpi][2] if kpi in KPIS else "count"
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind == "hours":
        return f"{value:.1f} {t('hours', lang)}"
    return f"{int(value):,}"


def change(kpi: str, now, before, lang: str = "zh") -> tuple[str, str]:
    """(text, css class) of 同比, the change on the same period a year before: the relative change
    (:func:`dashboard.metrics.kpis.year_on_year`, rates too — "同比增长 16.12%") to 0.01 %."""
    if _missing(now) or _missing(before):
        return DASH, "wx-flat"
    rel = year_on_year(now, before)
    if rel is None:
        return DASH, "wx-flat"
    d = rel * 100
    text = f"{d:+.2f}%"
    if abs(d) < 0.005:
        return text, "wx-flat"
    good = (d > 0) != (kpi in LOWER_IS_BETTER)
    return text, "wx-good" if good else "wx-bad"


def points_text(kpi: str, now, before, lang: str = "zh") -> str | None:
    """A rate's change in percentage points ("+5.53个百分点"), None for counts and hours or missing values."""
    kind = KPIS[kpi][2] if kpi in KPIS else "count"
    d = points_change(now, before) if kind == "rate" and not (_missing(now) or _missing(before)) else None
    return None if d is None else f"{d:+.2f}{t('pp', lang)}"


def change_title(kpi: str, now, before, lang: str = "zh") -> str:
    """The card's 同比 tooltip: last year's value and, for a rate, the change in percentage points."""
    pts = points_text(kpi, now, before, lang)
    return t("yoy_title", lang, before=fmt(kpi, before, lang), points=t("yoy_points", lang, points=pts) if pts else "")


def kpi_label(kpi: str, lang: str) -> str:
    zh, en, _ = KPIS[kpi]
    return zh if lang == "zh" else en


def card(kpi: str, value, parent_value, parent_name: str | None, prev_value, lang: str) -> html.Div:
    text, cls = change(kpi, value, prev_value, lang)
    parent = (t("parent_value", lang, parent=parent_name, value=fmt(kpi, parent_value, lang))
              if parent_name else "\u00a0")
    return html.Div(className="wx-card", id=f"card-{kpi}", children=[
        html.Div(kpi_label(kpi, lang), className="wx-card-label"),
        html.Div(fmt(kpi, value, lang), className="wx-card-value", id=f"card-value-{kpi}"),
        html.Div(parent, className="wx-card-parent"),
        html.Div(t("yoy", lang, change=text), className=f"wx-card-yoy {cls}", id=f"card-yoy-{kpi}",
                 title=change_title(kpi, value, prev_value, lang)),
    ])


def cards(values: dict, parent_values: dict | None, parent_name: str | None, prev_values: dict,
          lang: str) -> list:
    """The cards as the panel's ``kpi-cards`` children: one :class:`~dashboard.ui.static.Static` (text to read only:
    a drill's ~65 Dash components of cards cost the renderer 37–44 ms before the title could show)."""
    parent_values = parent_values or {}
    return [static([card(k, values.get(k), parent_values.get(k), parent_name, prev_values.get(k), lang)
                    for k in CARD_KPIS])]
