"""Small name tables shared by the store's rules and the pages: ``key -> (Chinese, English)``.

(The incident catalogue, severities, sources and departments: ``dashboard.store.catalogue``; lifecycle states,
levels and actor roles: ``dashboard.store.lifecycle``.)
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

# why an alert was raised (告警 kinds; the store's check constraint allows exactly these keys)
ALERT_KINDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "high_severity": ("重大案事件", "High-severity incident"),
    "hazchem_ring": ("危化品安全半径内", "Inside a hazardous-chemical safety ring"),
})

# hazard site kinds (geodata hazards.geojson ``kind``)
HAZARD_KINDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "hazchem": ("危化品储存", "Hazardous chemicals"),
    "gas_station": ("加油站", "Gas station"),
    "sanheyi": ("三合一场所", "3-in-1 premises"),
    "construction": ("建筑工地", "Construction site"),
})

# who signs in (the users table's check constraint allows exactly these keys). wall: the kiosk display (read-only,
# no personal data); leader: read; duty_officer: read and act on incidents and alerts; admin: everything a duty
# officer may, plus user management through the CLI.
USER_ROLES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "wall": ("大屏", "wall display"),
    "leader": ("领导", "leader"),
    "duty_officer": ("值班员", "duty officer"),
    "admin": ("管理员", "administrator"),
})


def pick(pair: tuple[str, str] | None, lang: str, default: str = "") -> str:
    """The English or Chinese half of a ``(zh, en)`` pair (``default`` for no pair; Chinese when there is no
    English)."""
    if not pair:
        return default
    return (pair[1] or pair[0]) if lang == "en" else pair[0]


def name_of(table: Mapping[str, tuple[str, str]], key, lang: str) -> str:
    """``key``'s name in ``lang`` from a ``key -> (zh, en)`` table; the key itself when the table lacks it."""
    if key is None:
        return ""
    return pick(table.get(key), lang, str(key))
