"""The one registry of measures (指标): what each KPI is called, its unit, which way is better, and where it shows.

Every display list — the drill panel's cards, the map's colour-by menu (and which of its measures are live), the
wall's ranking choices, the grid profile's ranks, the API's KPI set — derives from :data:`PLACES` here, and the
label / unit / direction of a measure from :data:`MEASURES`. The formulas are in :mod:`dashboard.metrics.kpis`
(``docs/kpis.md``). Pure data, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class Measure:
    key: str
    zh: str
    en: str
    unit: str  # count | rate | hours
    better: str  # higher | lower

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"


_M = Measure
MEASURES: Mapping[str, Measure] = MappingProxyType({m.key: m for m in (
    _M("open_incidents", "在办案事件", "Open incidents", "count", "lower"),
    _M("new_incidents", "新增案事件", "New incidents", "count", "higher"),
    _M("overdue_incidents", "超期案事件", "Overdue incidents", "count", "lower"),
    _M("onsite_handling_rate", "现场处置率", "On-site handling rate", "rate", "higher"),
    _M("resolution_rate", "办结率", "Resolution rate", "rate", "higher"),
    _M("units_inspected", "巡查单位数", "Units inspected", "count", "higher"),
    _M("units_with_problems", "发现问题单位数", "Units with problems", "count", "higher"),
    _M("detection_rate", "发现率", "Problem detection rate", "rate", "higher"),
    _M("problems_found", "发现问题数", "Problems found", "count", "higher"),
    _M("registered_units", "登记单位数", "Registered units", "count", "higher"),
    _M("inspection_coverage", "巡查覆盖率", "Inspection coverage", "rate", "higher"),
    _M("median_hours_to_close", "结案时长中位数(小时)", "Median time to close (h)", "hours", "lower"),
    _M("dispute_median_hours", "纠纷化解时长中位数(小时)", "Median time to resolve a dispute (h)", "hours", "lower"),
    _M("in_zone_resolution_rate", "片区内化解率", "Share resolved inside the zone", "rate", "higher"),
    _M("disputes_closed", "办结矛盾纠纷数", "Disputes closed", "count", "higher"),
    _M("disputes_resolved", "化解矛盾纠纷数", "Disputes resolved", "count", "higher"),
    _M("dispute_success_rate", "矛盾纠纷化解成功率", "Dispute resolution success rate", "rate", "higher"),
    _M("longstanding_solved", "化解历史遗留问题数", "Long-standing problems solved", "count", "higher"),
)})

# where each measure shows, in display order
PLACES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # the KPI cards of the drill panel
    "cards": ("open_incidents", "new_incidents", "overdue_incidents", "onsite_handling_rate", "resolution_rate",
              "detection_rate", "problems_found", "inspection_coverage", "median_hours_to_close",
              "in_zone_resolution_rate", "dispute_success_rate", "dispute_median_hours", "units_inspected"),
    # what the map can be coloured by (the overview's menu and /api/map/measures.json)
    "map": ("open_incidents", "overdue_incidents", "new_incidents", "onsite_handling_rate", "resolution_rate",
            "detection_rate", "inspection_coverage", "in_zone_resolution_rate", "median_hours_to_close"),
    # of those, the ones counted now (they follow the live feed), not over the period
    "map_live": ("open_incidents", "overdue_incidents"),
    # the wall's zone ranking choices
    "wall_rank": ("resolution_rate", "onsite_handling_rate", "in_zone_resolution_rate", "overdue_incidents",
                  "open_incidents", "new_incidents", "inspection_coverage", "detection_rate",
                  "median_hours_to_close"),
    # the grid / zone profile: rank in the district
    "profile_rank": ("detection_rate", "inspection_coverage", "onsite_handling_rate", "resolution_rate",
                     "overdue_incidents"),
    # the morning briefing's year-on-year table (a whole calendar year against the one before)
    "briefing_year": ("new_incidents", "units_inspected", "detection_rate", "problems_found", "inspection_coverage",
                      "onsite_handling_rate", "resolution_rate", "median_hours_to_close", "in_zone_resolution_rate",
                      "disputes_resolved", "dispute_success_rate", "dispute_median_hours"),
    # every KPI the API and the bundles compute
    "api": tuple(MEASURES),
})

LOWER_IS_BETTER = frozenset(k for k, m in MEASURES.items() if m.lower_is_better)


def shown_in(place: str) -> tuple[str, ...]:
    return PLACES[place]


def label(key: str, lang: str = "zh") -> str:
    return MEASURES[key].label(lang)


def unit(key: str) -> str:
    return MEASURES[key].unit


def lower_is_better(key: str) -> bool:
    return key in LOWER_IS_BETTER
