"""The one registry of measures (指标): what each KPI is called, its unit, which way is better, and where it shows.

Every display list — the drill panel's cards, the map's colour-by menu (and which of its measures are live), the
wall's ranking choices, the grid profile's ranks, the API's KPI set — derives from :data:`PLACES` here, and the
label / unit / direction of a measure and its column name in the GIS export (``field``) from :data:`MEASURES`. The formulas are in :mod:`dashboard.metrics.kpis`
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
    field: str  # short snake_case name (<= 10 characters: a Shapefile column) of the GIS export's KPI columns

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"


_M = Measure
MEASURES: Mapping[str, Measure] = MappingProxyType({m.key: m for m in (
    _M("open_incidents", "在办案事件", "Open incidents", "count", "lower", "open_inc"),
    _M("new_incidents", "新增案事件", "New incidents", "count", "higher", "new_inc"),
    _M("overdue_incidents", "超期案事件", "Overdue incidents", "count", "lower", "ovd_inc"),
    _M("onsite_handling_rate", "现场处置率", "On-site handling rate", "rate", "higher", "onsite_rt"),
    _M("resolution_rate", "办结率", "Resolution rate", "rate", "higher", "resol_rt"),
    _M("units_inspected", "巡查单位数", "Units inspected", "count", "higher", "units_insp"),
    _M("units_with_problems", "发现问题单位数", "Units with problems", "count", "higher", "units_prob"),
    _M("detection_rate", "发现率", "Problem detection rate", "rate", "higher", "det_rate"),
    _M("problems_found", "发现问题数", "Problems found", "count", "higher", "prob_found"),
    _M("registered_units", "登记单位数", "Registered units", "count", "higher", "reg_units"),
    _M("inspection_coverage", "巡查覆盖率", "Inspection coverage", "rate", "higher", "insp_cov"),
    _M("median_hours_to_close", "结案时长中位数(小时)", "Median time to close (h)", "hours", "lower", "med_hours"),
    _M("dispute_median_hours", "纠纷化解时长中位数(小时)", "Median time to resolve a dispute (h)", "hours", "lower",
       "disp_hours"),
    _M("in_zone_resolution_rate", "片区内化解率", "Share resolved inside the zone", "rate", "higher", "inzone_rt"),
    _M("disputes_closed", "办结矛盾纠纷数", "Disputes closed", "count", "higher", "disp_clsd"),
    _M("disputes_resolved", "化解矛盾纠纷数", "Disputes resolved", "count", "higher", "disp_resol"),
    _M("dispute_success_rate", "矛盾纠纷化解成功率", "Dispute resolution success rate", "rate", "higher", "disp_rt"),
    _M("longstanding_solved", "化解历史遗留问题数", "Long-standing problems solved", "count", "higher", "long_solvd"),
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

# what a value of each unit is, for a reader of an exported table (zh, en)
UNITS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "count": ("个数", "count"),
    "rate": ("比率，0–1 的小数（0.25 即 25%）", "fraction 0–1 (0.25 = 25 %)"),
    "hours": ("小时", "hours"),
})


def shown_in(place: str) -> tuple[str, ...]:
    return PLACES[place]


def label(key: str, lang: str = "zh") -> str:
    return MEASURES[key].label(lang)


def unit(key: str) -> str:
    return MEASURES[key].unit


def field(key: str) -> str:
    """The measure's column name in the GIS export (GeoPackage and Shapefile alike)."""
    return MEASURES[key].field


def lower_is_better(key: str) -> bool:
    return key in LOWER_IS_BETTER
