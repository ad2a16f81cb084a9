"""KPI cards: the unit's value, its parent's value beside it and the change on the same period a year before.

Formatting lives here (one place): counts ``71,948``, rates ``39.86%``, hours ``18.3 h``; a missing value
(zero denominator, empty period) is ``—``, never NaN.
"""
from __future__ import annotations

import math

from dash import html

from ..i18n import t
from ..metrics.kpis import KPIS
from ..metrics import registry

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
    """(text, css class) of the change against the same period a year before."""
    if _missing(now) or _missing(before):
        return DASH, "wx-flat"
    kind = KPIS[kpi][2] if kpi in KPIS else "count"
    if kind == "rate":
        d = (now - before) * 100
        text = f"{d:+.2f}{t('pp', lang)}"
    else:
        if not before:
            return DASH, "wx-flat"
        d = (now - before) / before * 100
        text = f"{d:+.1f}%"
    if abs(d) < 1e-9:
        return text, "wx-flat"
    good = (d > 0) != (kpi in LOWER_IS_BETTER)
    return text, "wx-good" if good else "wx-bad"


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
        html.Div(t("yoy", lang, change=text), className=f"wx-card-yoy {cls}"),
    ])


def cards(values: dict, parent_values: dict | None, parent_name: str | None, prev_values: dict,
          lang: str) -> list:
    parent_values = parent_values or {}
    return [card(k, values.get(k), parent_values.get(k), parent_name, prev_values.get(k), lang) for k in CARD_KPIS]
