"""One palette for map and charts: the same colour for the same severity, category group and state everywhere.

The map's JS receives these through ``hideout`` (see :func:`map_legend_tables`), so there is one source.
"""
from __future__ import annotations

from ..store import catalogue, lifecycle

SEVERITY_COLORS = {1: "#2e86de", 2: "#f1c40f", 3: "#e67e22", 4: "#c0392b"}

GROUP_COLORS = {  # by category group (the part of the key before the dot)
    "safety": "#c0392b", "dispute": "#8e44ad", "construction": "#d35400", "environment": "#16a085",
    "order": "#2c3e50", "population": "#2980b9", "service": "#27ae60", "petition": "#7f8c8d",
    "city": "#f39c12", "facility": "#6d4c41", "market": "#1abc9c",
}
CATEGORY_GLYPHS = {
    "safety.hazchem": "危", "safety.fire": "火", "safety.production": "安", "dispute.civil": "纠",
    "dispute.labour": "薪", "construction.illegal": "违", "environment.pollution": "污", "order.public": "治",
    "order.key_persons": "重", "population.migrant": "人", "service.ebike_plate": "车", "petition.letters": "访",
    "city.sanitation": "卫", "city.appearance": "容", "facility.road": "路", "market.regulation": "市",
}
STATE_COLORS = {
    "reported": "#e74c3c", "onsite_handled": "#27ae60", "routed": "#f39c12", "in_progress": "#3498db",
    "handled": "#1abc9c", "escalated": "#8e44ad", "assigned": "#9b59b6", "verified": "#2ecc71", "closed": "#95a5a6",
}
LEVEL_COLORS = {"onsite": "#27ae60", "town": "#f39c12", "district": "#8e44ad"}
# sequential scale for choropleths (light -> dark); "bad is dark" measures reverse it
SEQUENTIAL = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"]
SEQUENTIAL_BAD = ["#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#cb181d"]


def category_color(key: str) -> str:
    return GROUP_COLORS.get(key.split(".", 1)[0], "#7f8c8d")


def category_table(lang: str) -> dict:
    """{key: {name, glyph, color}} for the map's JS and chart legends."""
    return {key: {"name": c.name_zh if lang == "zh" else c.name_en, "glyph": CATEGORY_GLYPHS.get(key, "事"),
                  "color": category_color(key)} for key, c in catalogue.CATEGORIES.items()}


def state_table(lang: str) -> dict:
    return {key: (zh if lang == "zh" else en) for key, (zh, en) in lifecycle.STATES.items()}
