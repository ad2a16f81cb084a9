"""Plotly figures of the drill-down panel, as plain dicts (no ``go.Figure`` validation: fast to build).

Colours come from :mod:`dashboard.ui.palette` — the map's colours for the same categories, levels and states.
Labels are Chinese by default. Each function takes already-aggregated data (from ``metrics.views``).
"""
from __future__ import annotations

import math

from ..i18n import t
from ..metrics import registry
from ..metrics.kpis import KPIS
from ..store import catalogue, lifecycle
from . import palette
from .cards import fmt, kpi_label

FONT = {"family": "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif", "size": 12, "color": "#1f2d3d"}
ACCENT = "#1f618d"
SELECTED = "#f1c40f"


def _layout(title: str, **extra) -> dict:
    base = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "font": FONT, "margin": {"l": 10, "r": 10, "t": 36, "b": 10}, "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)", "showlegend": False, "hovermode": "closest",
    }
    base.update(extra)
    return base


def empty(title: str, lang: str) -> dict:
    return {"data": [], "layout": _layout(title, xaxis={"visible": False}, yaxis={"visible": False}, annotations=[
        {"text": t("no_data", lang), "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
         "font": {"size": 13, "color": "#7f8c8d"}}])}


def _scale(kpi: str, v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v * 100 if KPIS[kpi][2] == "rate" else v


def ranking(rows: list[dict], kpi: str, average, title: str, avg_label: str, lang: str,
            selected: str | None = None) -> dict:
    """Horizontal bars of the children by ``kpi`` (best on top), the district mark as a dashed line.

    ``rows``: [{code, name, level, value}]. Each bar's customdata is [code, level] so a click drills.
    """
    if not rows:
        return empty(title, lang)
    kind = KPIS[kpi][2]
    reverse = not registry.lower_is_better(kpi)
    with_value = [r for r in rows if r["value"] is not None]
    without = [r for r in rows if r["value"] is None]
    # plotly draws the first category at the bottom: worst first, best on top, units without a value below
    ordered = without[::-1] + sorted(with_value, key=lambda r: r["value"], reverse=not reverse)
    x = [_scale(kpi, r["value"]) if r["value"] is not None else 0 for r in ordered]
    colors = [SELECTED if r["code"] == selected else (ACCENT if r["value"] is not None else "#d5dbdb")
              for r in ordered]
    text = [fmt(kpi, r["value"], lang) for r in ordered]
    trace = {"type": "bar", "orientation": "h", "x": x, "y": [r["name"] for r in ordered],
             "customdata": [[r["code"], r["level"]] for r in ordered], "marker": {"color": colors},
             "text": text, "textposition": "auto", "cliponaxis": False,
             "hovertemplate": "%{y}: %{text}<extra></extra>"}
    shapes, annotations = [], []
    avg = _scale(kpi, average)
    if avg is not None:
        shapes.append({"type": "line", "x0": avg, "x1": avg, "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": "#c0392b", "width": 2, "dash": "dash"}})
        annotations.append({"x": avg, "yref": "paper", "y": 1.0, "yanchor": "bottom", "showarrow": False,
                            "text": f"{avg_label} {fmt(kpi, average, lang)}",
                            "font": {"color": "#c0392b", "size": 11}})
    height = max(220, 22 * len(ordered) + 70)
    return {"data": [trace], "layout": _layout(
        title, height=height, shapes=shapes, annotations=annotations,
        xaxis={"ticksuffix": "%" if kind == "rate" else "", "gridcolor": "#e5e8e8", "zeroline": False},
        yaxis={"automargin": True, "type": "category"}, margin={"l": 10, "r": 20, "t": 48, "b": 10})}


def trend(df, lang: str, title: str) -> dict:
    if df is None or len(df) == 0:
        return empty(title, lang)
    x = [p.strftime("%Y-%m-%d") for p in df["period"]]
    return {"data": [
        {"type": "scatter", "mode": "lines+markers", "name": t("trend_new", lang), "x": x,
         "y": df["new"].tolist(), "line": {"color": "#e74c3c", "width": 2}, "marker": {"size": 4}},
        {"type": "scatter", "mode": "lines+markers", "name": t("trend_closed", lang), "x": x,
         "y": df["closed"].tolist(), "line": {"color": palette.STATE_COLORS["closed"], "width": 2},
         "marker": {"size": 4}},
    ], "layout": _layout(title, height=260, showlegend=True, hovermode="x unified",
                         legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
                         xaxis={"type": "date", "gridcolor": "#eef0f0", "automargin": True,
                                "tickformat": "%m-%d" if lang == "zh" else "%b %d", "hoverformat": "%Y-%m-%d"},
                         yaxis={"gridcolor": "#e5e8e8", "rangemode": "tozero", "automargin": True})}


def category(df, lang: str, title: str) -> dict:
    if df is None or len(df) == 0 or int(df["count"].sum()) == 0:
        return empty(title, lang)
    d = df.iloc[::-1]
    names = []
    for k in d["category"]:
        c = catalogue.CATEGORIES.get(k)
        names.append((c.name_zh if lang == "zh" else c.name_en) if c else k)
    share = [f"{s * 100:.1f}%" if s is not None else "—" for s in d["share"]]
    return {"data": [{"type": "bar", "orientation": "h", "x": d["count"].tolist(), "y": names,
                      "customdata": share, "marker": {"color": [palette.category_color(k) for k in d["category"]]},
                      "text": [f"{c:,}" for c in d["count"]], "textposition": "auto",
                      "hovertemplate": "%{y}: %{x:,} (%{customdata})<extra></extra>"}],
            "layout": _layout(title, height=max(220, 20 * len(d) + 60), yaxis={"automargin": True},
                              xaxis={"gridcolor": "#e5e8e8"})}


def levels(df, lang: str, title: str) -> dict:
    if df is None or int(df["count"].sum()) == 0:
        return empty(title, lang)
    names = [lifecycle.LEVELS[lv][0 if lang == "zh" else 1] for lv in df["level"]]
    return {"data": [{"type": "pie", "hole": 0.5, "labels": names, "values": df["count"].tolist(),
                      "marker": {"colors": [palette.LEVEL_COLORS[lv] for lv in df["level"]]},
                      "textinfo": "label+percent", "sort": False, "direction": "clockwise",
                      "hovertemplate": "%{label}: %{value:,} (%{percent})<extra></extra>"}],
            "layout": _layout(title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})}


def departments(rows: list[dict], lang: str, title: str) -> dict:
    if not rows:
        return empty(title, lang)
    rows = rows[::-1]
    names = [catalogue.department_names(r["department"])[0 if lang == "zh" else 1] for r in rows]
    med = [f"{r['median_hours_to_close']:.1f}" if r.get("median_hours_to_close") is not None else "—" for r in rows]
    def bar(key, label, color):
        return {"type": "bar", "orientation": "h", "name": label, "y": names, "x": [r[key] for r in rows],
                "marker": {"color": color}, "customdata": med,
                "hovertemplate": "%{y} · " + label + ": %{x:,}<br>" + kpi_label("median_hours_to_close", lang)
                                 + ": %{customdata}<extra></extra>"}
    return {"data": [bar("assigned", t("dept_assigned", lang), palette.STATE_COLORS["assigned"]),
                     bar("open", t("dept_open", lang), palette.STATE_COLORS["in_progress"]),
                     bar("overdue", t("dept_overdue", lang), palette.SEVERITY_COLORS[4])],
            "layout": _layout(title, barmode="group", height=max(240, 34 * len(rows) + 70), showlegend=True,
                              legend={"orientation": "h", "y": 1.1, "x": 1, "xanchor": "right"},
                              yaxis={"automargin": True}, xaxis={"gridcolor": "#e5e8e8"})}


def funnel(df, lang: str, title: str) -> dict:
    if df is None or len(df) == 0 or int(df["incidents"].sum()) == 0:
        return empty(title, lang)
    d = df[df["incidents"] > 0]
    names = [lifecycle.STATES[s][0 if lang == "zh" else 1] for s in d["state"]]
    return {"data": [{"type": "funnel", "y": names, "x": d["incidents"].tolist(),
                      "marker": {"color": [palette.STATE_COLORS.get(s, ACCENT) for s in d["state"]]},
                      "textinfo": "value+percent initial",
                      "hovertemplate": "%{y}: %{x:,}<extra></extra>"}],
            "layout": _layout(title, height=300, yaxis={"automargin": True})}


def stages(df, lang: str, title: str) -> dict:
    if df is None or len(df) == 0:
        return empty(title, lang)
    d = df.iloc[::-1]
    names = [lifecycle.STATES.get(s, (s, s))[0 if lang == "zh" else 1] for s in d["state"]]
    med = [round(float(v), 1) for v in d["median_hours"]]
    p90 = [f"{float(v):.1f}" for v in d["p90_hours"]]
    worst = max(med) if med else None
    return {"data": [{"type": "bar", "orientation": "h", "y": names, "x": med, "customdata": p90,
                      "marker": {"color": [("#c0392b" if v == worst else palette.STATE_COLORS.get(s, ACCENT))
                                           for v, s in zip(med, d["state"])]},
                      "text": [f"{v:.1f} {t('hours', lang)}" for v in med], "textposition": "auto",
                      "hovertemplate": "%{y}: %{x:.1f} h (p90 %{customdata} h)<extra></extra>"}],
            "layout": _layout(title, height=300, yaxis={"automargin": True},
                              xaxis={"gridcolor": "#e5e8e8", "ticksuffix": " h"})}


def ranking_options(lang: str) -> list[dict]:
    return [{"label": kpi_label(k, lang), "value": k} for k in KPIS]
