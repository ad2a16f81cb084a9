"""User-facing strings: Simplified Chinese first, English on request (``?lang=en``).

Domain words follow the seed digest: 片区 zone, 网格 grid, 现场处置 on-site handling …
"""
from __future__ import annotations

LANGUAGES = ("zh", "en")

STRINGS: dict[str, dict[str, str]] = {
    "app_title": {"zh": "吴兴区基层社会治理指挥中心", "en": "Wuxing District Grassroots Governance Command Centre"},
    "switch_lang": {"zh": "English", "en": "中文"},
    "district": {"zh": "区", "en": "District"},
    "layer_district": {"zh": "区界", "en": "District outline"},
    "layer_towns": {"zh": "镇街", "en": "Towns / sub-districts"},
    "layer_zones": {"zh": "片区", "en": "Management zones"},
    "layer_grids": {"zh": "网格", "en": "Grids"},
    "layer_hazards": {"zh": "风险点位", "en": "Hazard sites"},
    "layer_incidents": {"zh": "案事件", "en": "Incidents"},
    "layer_hotspots": {"zh": "热点", "en": "Hotspots"},
    "layer_rings": {"zh": "安全半径", "en": "Safety rings"},
    "measure": {"zh": "着色指标", "en": "Colour by"},
    "measure_none": {"zh": "不着色", "en": "No colouring"},
    "measure_level": {"zh": "着色单元", "en": "Units"},
    "hotspot_period": {"zh": "热点时段", "en": "Hotspot period"},
    "hotspot_legend": {"zh": "热点：案事件密度（H3 六边形），粗框为 Gi* 显著热点", "en": "Hotspots: incident density (H3 hexagons); bold outline = significant Gi* hot spot"},
    "no_data": {"zh": "—", "en": "—"},
    "basemap": {"zh": "底图", "en": "Basemap"},
    "basemap_default": {"zh": "标准地图", "en": "Standard map"},
    "basemap_dark": {"zh": "深色地图", "en": "Dark map"},
    "basemap_none": {"zh": "无底图", "en": "No basemap"},
    "town": {"zh": "镇街", "en": "Town"},
    "zone": {"zh": "片区", "en": "Zone"},
    "grid": {"zh": "网格", "en": "Grid"},
    "nav_overview": {"zh": "总览", "en": "Overview"},
    "nav_incidents": {"zh": "案事件", "en": "Incidents"},
    "nav_wall": {"zh": "大屏", "en": "Wall"},
    "counts_line": {
        "zh": "{towns} 个镇街 · {zones} 个片区 · {grids} 个网格",
        "en": "{towns} towns · {zones} zones · {grids} grids",
    },
}


def normalise(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "zh"


def t(key: str, lang: str = "zh", **fmt) -> str:
    entry = STRINGS[key]
    text = entry.get(normalise(lang)) or entry["zh"]
    return text.format(**fmt) if fmt else text


def table(lang: str) -> dict[str, str]:
    """All strings in one language, for client-side code (tooltips, popups)."""
    lang = normalise(lang)
    return {k: v.get(lang, v["zh"]) for k, v in STRINGS.items()}
