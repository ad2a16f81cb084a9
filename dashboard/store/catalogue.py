"""The incident category catalogue (案事件分类): the one place for category facts.

Each category key (``group.name``, stored in ``incidents.category``) has zh/en names, an Open311
``service_code`` (``services.json``), a handling deadline in hours (``due_at = reported_at + deadline``),
a default severity (1 一般 … 4 特别重大), the district department that usually takes it when the
district information centre assigns it (交办), and its subcategories (``incidents.subcategory``).

It covers what the seed names: safety hazards incl. hazardous chemicals 危化品 and fire 消防,
disputes 矛盾纠纷, illegal construction incl. 破墙开门, environment 环境, public order 治安, key people
重点人员, migrant registration 流动人口, e-bike plates 电动车上牌, petitions 信访, sanitation and city
appearance 市容环卫, roads and public facilities 道路设施, market regulation 市场监管.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

SEVERITY_NAMES: Mapping[int, tuple[str, str]] = MappingProxyType(
    {1: ("一般", "low"), 2: ("较大", "medium"), 3: ("重大", "high"), 4: ("特别重大", "critical")}
)

SOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "patrol": ("巡查", "patrol"),
        "app": ("掌上基层", "mobile app"),
        "hotline": ("热线", "hotline"),
        "citizen": ("群众", "citizen"),
        "department": ("部门", "department"),
    }
)

# District departments (区级部门) that staff the zones and receive assigned (交办) cases.
DEPARTMENTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "police": ("公安分局", "Public Security"),
        "enforcement": ("综合行政执法局", "Comprehensive Law Enforcement"),
        "emergency": ("应急管理局", "Emergency Management"),
        "market": ("市场监管局", "Market Regulation"),
        "environment": ("生态环境分局", "Ecology and Environment"),
        "housing": ("住建局", "Housing and Construction"),
        "petition": ("信访局", "Letters and Calls (Petitions)"),
        "justice": ("司法局", "Justice"),
        "transport": ("交通运输局", "Transport"),
    }
)


def department_names(key: str) -> tuple[str, str]:
    """(zh, en) names of a department; the key itself for both when the catalogue does not know it."""
    return DEPARTMENTS.get(key, (key, key))


@dataclass(frozen=True)
class Category:
    key: str
    name_zh: str
    name_en: str
    service_code: str
    deadline_hours: int
    default_severity: int
    department: str
    group_zh: str
    group_en: str
    subcategories: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def subcategory_names(self, key: str) -> tuple[str, str]:
        """(zh, en) names of a subcategory; the key itself for both when unknown."""
        return self.subcategories.get(key, (key, key))

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name_zh,
            "name_en": self.name_en,
            "service_code": self.service_code,
            "deadline_hours": self.deadline_hours,
            "default_severity": self.default_severity,
            "department": self.department,
            "group": self.group_zh,
            "group_en": self.group_en,
            "subcategories": [
                {"key": k, "name": zh, "name_en": en} for k, (zh, en) in self.subcategories.items()
            ],
        }


def _c(key, zh, en, code, hours, sev, dept, gzh, gen, subs) -> Category:
    return Category(key, zh, en, code, hours, sev, dept, gzh, gen, MappingProxyType(dict(subs)))


_CATEGORIES = (
    _c("safety.hazchem", "危险化学品", "Hazardous chemicals", "101", 24, 3, "emergency", "安全隐患", "Safety hazards", {
        "illegal_storage": ("非法储存", "illegal storage"),
        "illegal_sale": ("非法经营", "illegal sale"),
        "transport": ("违规运输", "unsafe transport"),
        "leak": ("泄漏", "leak"),
    }),
    _c("safety.fire", "消防安全", "Fire safety", "102", 48, 2, "emergency", "安全隐患", "Safety hazards", {
        "sanheyi": ("三合一场所", "live-work-store premises (三合一)"),
        "blocked_exit": ("消防通道堵塞", "blocked fire exit"),
        "wiring": ("电线私拉乱接", "illegal wiring"),
        "ebike_charging": ("电动车违规充电", "unsafe e-bike charging"),
        "extinguisher": ("消防器材缺失", "missing extinguishers"),
    }),
    _c("safety.production", "安全生产", "Workplace safety", "103", 72, 2, "emergency", "安全隐患", "Safety hazards", {
        "workshop": ("小作坊隐患", "workshop hazard"),
        "construction_site": ("建筑工地隐患", "construction-site hazard"),
        "gas": ("燃气安全", "gas safety"),
        "special_equipment": ("特种设备", "special equipment"),
    }),
    _c("dispute.civil", "矛盾纠纷", "Civil disputes", "201", 72, 1, "justice", "矛盾纠纷", "Disputes", {
        "neighbour": ("邻里纠纷", "neighbours"),
        "family": ("婚姻家庭纠纷", "marriage and family"),
        "land": ("土地山林纠纷", "land and forest"),
        "property_mgmt": ("物业纠纷", "property management"),
        "traffic": ("交通事故纠纷", "traffic accident"),
    }),
    _c("dispute.labour", "劳资纠纷", "Labour disputes", "202", 72, 2, "justice", "矛盾纠纷", "Disputes", {
        "unpaid_wages": ("拖欠工资", "unpaid wages"),
        "contract": ("劳动合同", "labour contract"),
        "injury": ("工伤", "work injury"),
    }),
    _c("construction.illegal", "违法建设", "Illegal construction", "301", 168, 2, "enforcement", "违法建设",
       "Illegal construction", {
        "wall_opening": ("破墙开门", "wall broken open into a shop front"),
        "illegal_building": ("违章搭建", "unauthorised structure"),
        "land_occupation": ("违法占地", "illegal land use"),
        "rooftop": ("屋顶违建", "rooftop structure"),
    }),
    _c("environment.pollution", "环境污染", "Environmental pollution", "401", 72, 2, "environment", "生态环境",
       "Environment", {
        "water": ("水污染", "water"),
        "air": ("大气污染", "air"),
        "noise": ("噪声扰民", "noise"),
        "waste": ("固废倾倒", "dumped waste"),
        "burning": ("露天焚烧", "open burning"),
    }),
    _c("order.public", "社会治安", "Public order", "501", 24, 2, "police", "社会治安", "Public order", {
        "theft": ("盗窃", "theft"),
        "gambling": ("赌博", "gambling"),
        "fight": ("打架斗殴", "fight"),
        "fraud": ("电信诈骗", "fraud"),
        "suspicious": ("可疑情况", "suspicious activity"),
    }),
    _c("order.key_persons", "重点人员", "Key persons", "502", 24, 2, "police", "社会治安", "Public order", {
        "mental_health": ("严重精神障碍患者", "serious mental illness"),
        "community_correction": ("社区矫正人员", "community correction"),
        "drug": ("吸毒人员", "drug user"),
    }),
    _c("population.migrant", "流动人口登记", "Migrant registration", "601", 120, 1, "police", "基层服务",
       "Citizen services", {
        "unregistered": ("未登记流动人口", "unregistered migrant"),
        "rental_housing": ("出租房管理", "rental housing"),
        "residence_permit": ("居住证办理", "residence permit"),
    }),
    _c("service.ebike_plate", "电动车上牌", "E-bike plates", "602", 120, 1, "police", "基层服务", "Citizen services", {
        "plate_at_home": ("上门上牌", "plating at home"),
        "unplated": ("未上牌电动车", "unplated e-bike"),
    }),
    _c("petition.letters", "信访事项", "Petitions", "701", 360, 2, "petition", "信访", "Petitions", {
        "letter": ("来信", "letter"),
        "visit": ("来访", "visit"),
        "online": ("网上信访", "online petition"),
    }),
    _c("city.sanitation", "环境卫生", "Sanitation", "801", 48, 1, "enforcement", "市容环卫",
       "Sanitation and city appearance", {
        "garbage": ("垃圾堆放", "piled garbage"),
        "sorting": ("垃圾分类", "waste sorting"),
        "public_toilet": ("公厕", "public toilet"),
    }),
    _c("city.appearance", "市容秩序", "City appearance", "802", 48, 1, "enforcement", "市容环卫",
       "Sanitation and city appearance", {
        "street_vendor": ("流动摊贩", "street vendor"),
        "outside_shop": ("出店经营", "business outside the shop"),
        "illegal_ads": ("违规广告", "illegal advertising"),
        "parking": ("乱停乱放", "disorderly parking"),
    }),
    _c("facility.road", "道路与公共设施", "Roads and public facilities", "901", 96, 1, "transport", "公共设施",
       "Public facilities", {
        "pothole": ("路面破损", "pothole"),
        "streetlight": ("路灯损坏", "broken street light"),
        "manhole": ("井盖缺失", "missing manhole cover"),
        "drainage": ("排水不畅", "blocked drain"),
    }),
    _c("market.regulation", "市场监管", "Market regulation", "951", 72, 2, "market", "市场监管",
       "Market regulation", {
        "food_safety": ("食品安全", "food safety"),
        "unlicensed": ("无证经营", "unlicensed business"),
        "counterfeit": ("假冒伪劣", "counterfeit goods"),
    }),
)

CATEGORIES: Mapping[str, Category] = MappingProxyType({c.key: c for c in _CATEGORIES})
BY_SERVICE_CODE: Mapping[str, Category] = MappingProxyType({c.service_code: c for c in _CATEGORIES})

assert len(BY_SERVICE_CODE) == len(CATEGORIES), "service codes must be unique"


def get(key: str) -> Category:
    """The category for ``key``; ``KeyError`` if unknown."""
    return CATEGORIES[key]


def as_dict() -> dict:
    return {
        "categories": [c.as_dict() for c in _CATEGORIES],
        "severities": [{"value": k, "name": zh, "name_en": en} for k, (zh, en) in SEVERITY_NAMES.items()],
        "sources": [{"key": k, "name": zh, "name_en": en} for k, (zh, en) in SOURCES.items()],
        "departments": [{"key": k, "name": zh, "name_en": en} for k, (zh, en) in DEPARTMENTS.items()],
    }
