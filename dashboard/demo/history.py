"""Demo history (演示数据): calendar 2019 calibrated to the seed's district figures, calendar 2018 (the year before,
calibrated to the seed's year-on-year figures), plus the recent days up to now.

Deterministic: one ``numpy.random.Generator`` seeded from ``--seed`` drives everything (and ``now`` is a
parameter, so tests can fix it). Generation is vectorised (numpy/pandas) and pure — :func:`generate`
returns frames and touches no database — and :func:`write` stores them through the store's bulk helpers in
one transaction.

Calibration (district, calendar 2019, computed from the stored rows with :mod:`dashboard.metrics.kpis`):

- units inspected 58,594, units with problems 23,355 (发现率 39.86 %), problems found 71,948 — exact
  (largest-remainder allocation over grids, then over units and visits);
- every found problem is a ``patrol`` incident linked to its inspection (``inspection_id``);
- on-site handling ≈ 44 % (zone effects on a logit scale, shifted so the district hits the target);
- disputes (``dispute.*``) closed in 2019: 116,500 of which 115,335 resolved (99.0 %); ≈ 97 % inside the zone;
- resolution (closed by the end of 2019 / reported in 2019) ≈ 97 %;
- long-standing problems solved: 89 (incl. the five 破墙开门 shops on 横塘路, Chaoyin zone, 2019-11-28);
- coverage = 58,594 / registered units of the geodata grids (≈ 65 % with ≈ 90,150 registered units).

Calendar 2018, the year before (:func:`year_before`, its own generator seeded from ``--seed`` and 2018, the same
vectorised steps): a smaller, less mature system — fewer units inspected (37,500; coverage ≈ 42 %) and reports (70,000),
less handled on the spot (≈ 33 %), more escalated, slower — calibrated so that 2019 shows the seed's 同比:

- detection rate 2019 against 2018 +16.12 % (relative, "同比增长16.12%": 2018's rate is 39.86 % / 1.1612 = 34.33 %,
  exact through the integer count of units with problems);
- median time to resolve a dispute 70 % lower in 2019 (seed: "化解时间同比下降67%以上");
- 2018's cases still open at the year's end close in 2019, and the 2019 figures above count them (the disputes
  closed and resolved in 2019 stay exact).

Nothing happens between local midnight and 08:00 (events then are moved into 08:00–08:30 by a monotone
map), so "calendar 2019" gives the same figures whether a caller cuts the year in UTC or in Asia/Shanghai.
"""
from __future__ import annotations

import datetime as dt
import logging
import string
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from . import texts

log = logging.getLogger(__name__)

YEAR = 2019
LOCAL_OFFSET = np.timedelta64(8, "h")  # Asia/Shanghai, no DST
H = np.timedelta64(3600, "s")

# ----------------------------------------------------------------------------------------- targets
# The seed district (the committed geodata): its figures below are the article's. Another district's geodata (built
# with ``python -m dashboard.geodata build --county …``) gets every figure in proportion to its registered units
# (:func:`proportional_scale`), and none of the seed's stories or road names.
SEED_DISTRICT = "330502"
SEED_REGISTERED_UNITS = 90_150  # the seed district's registered units (the geodata build's total)
UNITS_INSPECTED = 58_594
UNITS_WITH_PROBLEMS = 23_355
PROBLEMS_FOUND = 71_948
LONGSTANDING_SOLVED = 89
DISPUTES_CLOSED = 116_500
DISPUTES_RESOLVED = 115_335  # 99.00 %
ONSITE_TARGET = 0.44
RESOLUTION_TARGET = 0.97
OTHER_2019_DEFAULT = 3_000  # non-patrol, non-dispute reports (hotline, citizens, departments)
RECENT_DISPUTE_FACTOR = 0.5  # recent daily dispute volume relative to 2019
RECENT_UNITS_PER_DAY = 320  # units inspected per day in the recent window

# the year before (2018): a smaller, less mature system a year earlier
YEAR_BEFORE = YEAR - 1
UNITS_INSPECTED_2018 = 37_500  # coverage ≈ 42 % of the registered units (2019: 65 %)
DETECTION_GROWTH = 0.1612  # seed: detection rate 39.86 %, "同比增长16.12%" — relative growth on 2018
PROBLEMS_FOUND_2018 = 28_000
DISPUTES_2018 = 40_000  # disputes reported in 2018 (2019: 117,400): many were settled and never recorded
OTHER_2018 = 2_000
ONSITE_TARGET_2018 = 0.33
DISTRICT_SHIFT_2018 = 0.4  # logit shift of escalation to the district (more cases went up in 2018)
SLOWER_2018 = 1.5  # every step of a non-dispute case took this much longer
DISPUTE_TIME_DROP = 0.70  # 2019's median time to resolve a dispute is this much below 2018's (seed: 67 %+)
LONGSTANDING_SOLVED_2018 = 37
DISPUTE_SUCCESS_2018 = 0.972  # 2019: 99 %, "历史最高值"
RESOLUTION_TARGET_2018 = 0.93
SOURCES_DISPUTE = {"app": 50, "citizen": 25, "hotline": 20, "department": 5}
SOURCES_OTHER = {"hotline": 45, "citizen": 25, "app": 20, "department": 10}

STATES_BY_LEVEL = {
    "onsite": ("reported", "onsite_handled", "verified", "closed"),
    "town": ("reported", "routed", "in_progress", "handled", "verified", "closed"),
    "district": ("reported", "routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed"),
}
MAX_EVENTS = 8
_STATE_NAMES = np.array(["reported", "onsite_handled", "routed", "escalated", "assigned", "in_progress", "handled",
                         "verified", "closed", None], dtype=object)  # index -1: no state
_STATE_INDEX = {name: i for i, name in enumerate(_STATE_NAMES[:-1])}
# median hours and log-sd of each step, per level (step k leads into state k+1)
STEP_HOURS = {
    "onsite": ((0.5, 0.6), (3.0, 0.8), (1.0, 0.7)),
    "town": ((1.5, 0.7), (3.0, 0.8), (16.0, 0.9), (5.0, 0.7), (1.5, 0.7)),
    "district": ((2.0, 0.7), (8.0, 0.8), (4.0, 0.7), (8.0, 0.7), (40.0, 0.8), (8.0, 0.7), (3.0, 0.7)),
}
HANDLING_STEP = {"town": 2, "district": 4}  # index of in_progress -> handled

# patrol problem mix per town profile (category -> weight)
PATROL_MIX = {
    "zhili": {"safety.fire": 40, "population.migrant": 17, "service.ebike_plate": 10, "safety.production": 11,
              "city.appearance": 7, "market.regulation": 5, "environment.pollution": 4, "construction.illegal": 3,
              "city.sanitation": 3, "safety.hazchem": 0.5},
    "street": {"safety.fire": 24, "population.migrant": 10, "service.ebike_plate": 6, "safety.production": 8,
               "city.appearance": 18, "market.regulation": 12, "environment.pollution": 4, "construction.illegal": 6,
               "city.sanitation": 12, "safety.hazchem": 0.3},
    "rural": {"safety.fire": 22, "population.migrant": 8, "service.ebike_plate": 5, "safety.production": 16,
              "city.appearance": 6, "market.regulation": 6, "environment.pollution": 15, "construction.illegal": 12,
              "city.sanitation": 9, "safety.hazchem": 1.0},
}
OTHER_MIX = {"order.public": 30, "order.key_persons": 8, "petition.letters": 12, "facility.road": 20,
             "city.sanitation": 10, "environment.pollution": 10, "service.ebike_plate": 6, "population.migrant": 4}
SUBCATEGORY_WEIGHTS = {
    "safety.fire": {"sanheyi": 30, "blocked_exit": 15, "wiring": 25, "ebike_charging": 20, "extinguisher": 10},
    "dispute.civil": {"neighbour": 40, "family": 20, "land": 12, "property_mgmt": 16, "traffic": 12},
}
ONSITE_BASE = {"safety.fire": 0.55, "safety.production": 0.45, "safety.hazchem": 0.15, "population.migrant": 0.62,
               "service.ebike_plate": 0.65, "city.appearance": 0.62, "city.sanitation": 0.55,
               "market.regulation": 0.40, "environment.pollution": 0.30, "construction.illegal": 0.15,
               "order.public": 0.35, "order.key_persons": 0.40, "petition.letters": 0.05, "facility.road": 0.20,
               "dispute.civil": 0.47, "dispute.labour": 0.30}
DISTRICT_BASE = {"safety.hazchem": 0.6, "safety.fire": 0.06, "safety.production": 0.10, "construction.illegal": 0.2,
                 "environment.pollution": 0.2, "petition.letters": 0.35, "order.public": 0.12, "market.regulation": 0.15,
                 "facility.road": 0.10, "dispute.civil": 0.025, "dispute.labour": 0.045}
DEPARTMENT_ALTERNATIVES = {  # sometimes a case goes to another department than the category's
    "safety.fire": ("enforcement", "housing"), "safety.production": ("housing", "market"),
    "construction.illegal": ("housing",), "environment.pollution": ("enforcement",),
    "dispute.labour": ("police",), "dispute.civil": ("police", "petition"), "order.public": ("enforcement",),
    "facility.road": ("housing",), "market.regulation": ("enforcement",),
}
LONGSTANDING_CATEGORIES = ("construction.illegal", "environment.pollution", "city.appearance", "facility.road")


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 20190424
    incidents: int | None = None  # total incidents; None = default size
    recent_days: int = 30
    now: dt.datetime | None = None  # UTC; None = the current time
    scale: float = 1.0  # < 1 shrinks everything (calibrated targets too) for quick tests

    def target(self, n: int) -> int:
        return int(round(n * self.scale))


@dataclass
class DemoData:
    inspections: pd.DataFrame  # id order = row order (rel_id 0..n-1)
    incidents: pd.DataFrame  # rel id 0..n-1, inspection_rel (-1 none)
    events: pd.DataFrame  # incident_rel, seq_rel, ...
    now: np.datetime64
    stats: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers
def largest_remainder(total: int, weights, caps=None) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (Hamilton), respecting ``caps``."""
    w = np.asarray(weights, dtype=float)
    out = np.zeros(len(w), dtype=np.int64)
    caps_arr = None if caps is None else np.asarray(caps, dtype=np.int64)
    active = w > 0
    if caps_arr is not None:
        active &= caps_arr > 0
    remaining = int(total)
    while remaining > 0:
        ww = np.where(active, w, 0.0)
        s = ww.sum()
        if s <= 0:
            raise ValueError(f"cannot allocate {remaining} more: no capacity left")
        q = remaining * ww / s
        base = np.floor(q).astype(np.int64)
        rem = remaining - int(base.sum())
        if rem > 0:
            order = np.argsort(-(q - base), kind="stable")
            order = order[active[order]][:rem]
            base[order] += 1
        if caps_arr is not None:
            base = np.minimum(base, caps_arr - out)
        out += base
        remaining = int(total) - int(out.sum())
        if caps_arr is not None:
            active &= out < caps_arr
    return out


def night_shift(t_utc: np.ndarray) -> np.ndarray:
    """Monotone map moving local times in [00:00, 08:30) into [08:00, 08:30) (nobody works at night)."""
    t = t_utc.astype("datetime64[s]")
    local = t + LOCAL_OFFSET
    day = local.astype("datetime64[D]").astype("datetime64[s]")
    tod = (local - day).astype(np.int64)
    lim = int(8.5 * 3600)
    night = tod < lim
    new_tod = np.where(night, 8 * 3600 + (tod * 1800) // lim, tod)
    return (day + new_tod.astype("timedelta64[s]")) - LOCAL_OFFSET


def local_day_to_utc(day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return day.astype("datetime64[D]").astype("datetime64[s]") + seconds.astype("timedelta64[s]") - LOCAL_OFFSET


HOLIDAYS_2019 = {  # (first, last, factor)
    ("2019-01-01", "2019-01-01", 0.5), ("2019-02-04", "2019-02-10", 0.3), ("2019-04-05", "2019-04-07", 0.7),
    ("2019-05-01", "2019-05-04", 0.6), ("2019-06-07", "2019-06-09", 0.7), ("2019-09-13", "2019-09-15", 0.7),
    ("2019-10-01", "2019-10-07", 0.5),
}
HOLIDAYS_2018 = {
    ("2018-01-01", "2018-01-01", 0.5), ("2018-02-15", "2018-02-21", 0.3), ("2018-04-05", "2018-04-07", 0.7),
    ("2018-04-29", "2018-05-01", 0.6), ("2018-06-16", "2018-06-18", 0.7), ("2018-09-22", "2018-09-24", 0.7),
    ("2018-10-01", "2018-10-07", 0.5),
}
# Zhili's migrant workers go home around the Spring Festival (2019-02-05, 2018-02-16)
MIGRANT_AWAY = (("2019-01-25", "2019-02-24"), ("2018-02-05", "2018-03-07"))
MONTH_FACTOR = np.array([0.0, 0.9, 0.8, 1.0, 1.0, 1.05, 1.1, 1.25, 1.25, 1.05, 1.0, 0.95, 0.95])
WEEKDAY_FACTOR = np.array([1.05, 1.0, 1.0, 1.0, 1.0, 0.6, 0.45])  # Mon..Sun


def day_weights(days: np.ndarray, town_abbr: str | None = None) -> np.ndarray:
    d = pd.DatetimeIndex(days.astype("datetime64[ns]"))
    w = MONTH_FACTOR[d.month] * WEEKDAY_FACTOR[d.weekday]
    for a, b, f in sorted(HOLIDAYS_2019 | HOLIDAYS_2018):
        w = np.where((days >= np.datetime64(a)) & (days <= np.datetime64(b)), w * f, w)
    if town_abbr == "ZL":  # migrant workers go home around the Spring Festival
        for a, b in MIGRANT_AWAY:
            w = np.where((days >= np.datetime64(a)) & (days <= np.datetime64(b)), w * 0.45, w)
    return w / w.sum()


# local hour-of-day profiles (0..23); nothing before 08:00
_PATROL_HOURS = np.array([0] * 8 + [8, 10, 9, 6, 3, 7, 9, 9, 7, 4, 1, 0, 0, 0, 0, 0], float)
_REPORT_HOURS = np.array([0] * 8 + [6, 9, 9, 7, 4, 6, 8, 8, 7, 6, 5, 5, 4, 3, 2, 1], float)


def sample_seconds(rng, n: int, profile: np.ndarray) -> np.ndarray:
    h = rng.choice(24, size=n, p=profile / profile.sum())
    return h * 3600 + rng.integers(0, 3600, size=n)


def pick(rng, n: int, mix: dict) -> np.ndarray:
    keys = np.array(list(mix), dtype=object)
    w = np.array(list(mix.values()), float)
    return keys[rng.choice(len(keys), size=n, p=w / w.sum())]


def _join(*parts) -> np.ndarray:
    """Element-wise concatenation of arrays (str() of each element) and plain strings, as an object array —
    vectorised (numpy string ufuncs), for the millions of texts of a big history."""
    out = None
    for p in parts:
        a = p if isinstance(p, str) else np.asarray(p).astype(str)
        out = a if out is None else np.strings.add(out, a)
    return np.asarray(out).astype(object)


def _lookup(values: np.ndarray, fn, dtype=object) -> np.ndarray:
    """``fn(v)`` for every element, computed once per distinct value."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return np.array([fn(u) for u in uniq], dtype=dtype)[codes] if len(values) else np.array([], dtype)


# --------------------------------------------------------------------------------------- geography
class Geo:
    """The geodata facts the generator needs, as arrays aligned on grid row index."""

    def __init__(self, gd):
        grids = gd.grids.reset_index(drop=True)
        self.grids = grids
        self.locator = gd.locator
        self.codes = grids["code"].astype(str).to_numpy(dtype=object)
        self.zone = grids["zone_code"].astype(str).to_numpy(dtype=object)
        self.town = grids["town_code"].astype(str).to_numpy(dtype=object)
        self.registered = grids["registered_units"].fillna(0).astype(np.int64).to_numpy()
        self.population = (grids["population"].fillna(1000).astype(float).to_numpy()
                           if "population" in grids else np.full(len(grids), 1000.0))
        self.worker = (grids["worker_name"].fillna("网格员").astype(str).to_numpy(dtype=object)
                       if "worker_name" in grids else np.full(len(grids), "网格员", dtype=object))
        self.full_time = (grids["worker_full_time"].fillna(False).astype(bool).to_numpy()
                          if "worker_full_time" in grids else np.ones(len(grids), bool))
        self.geoms = np.asarray(grids.geometry.values, dtype=object)
        # the seed district: its stories and road names; any other district: generic ones
        self.is_seed = str(gd.district["code"].iloc[0]) == SEED_DISTRICT
        self.roads = np.array(texts.ROADS if self.is_seed else texts.GENERIC_ROADS, dtype=object)
        import shapely

        self.bounds = shapely.bounds(self.geoms)
        self.zone_codes = np.array(sorted(set(self.zone)), dtype=object)
        self.zone_i = np.searchsorted(self.zone_codes, self.zone)
        self.town_codes = np.array(sorted(set(self.town)), dtype=object)
        self.town_i = np.searchsorted(self.town_codes, self.town)
        towns = gd.towns
        tname = dict(zip(towns["code"].astype(str), towns["name"].astype(str))) if "name" in towns else {}
        self.town_abbr = np.array([c.rsplit("-", 1)[-1] for c in self.town_codes], dtype=object)
        self.town_name = np.array([tname.get(c, c) for c in self.town_codes], dtype=object)
        zones = gd.zones
        zname = dict(zip(zones["code"].astype(str), zones["name"].astype(str))) if "name" in zones else {}
        zst = (dict(zip(zones["code"].astype(str), zones["station_name"].astype(str)))
               if "station_name" in zones else {})
        self.zone_name = np.array([zname.get(c, c) for c in self.zone_codes], dtype=object)
        self.station = np.array([zst.get(c) or f"{zname.get(c, c)}社会治理工作站" for c in self.zone_codes],
                                dtype=object)
        self.hazards = gd.hazards.reset_index(drop=True) if gd.hazards is not None else None
        self.code_index = {c: i for i, c in enumerate(self.codes)}

    def profile(self, grid_i: np.ndarray) -> np.ndarray:
        abbr = self.town_abbr[self.town_i[grid_i]]
        street = np.isin(abbr, ["YH", "CY", "AS", "FY", "LQ", "HD", "KS", "RHS", "BH", "YJB", "HZ"])
        return np.where(abbr == "ZL", "zhili", np.where(street, "street", "rural"))

    def points_in(self, rng, grid_i: np.ndarray, max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random points inside each given grid (rejection sampling, verified with the locator)."""
        n = len(grid_i)
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        todo = np.arange(n)
        for _ in range(max_rounds):
            if not len(todo):
                break
            b = self.bounds[grid_i[todo]]
            x = np.round(b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0]), 6)
            y = np.round(b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1]), 6)
            got = self.locator.locate_many(x, y)
            ok = got == self.codes[grid_i[todo]]
            lon[todo[ok]] = x[ok]
            lat[todo[ok]] = y[ok]
            todo = todo[~ok]
        if len(todo):
            import shapely

            for k in todo:  # pathological slivers: a representative point
                p = shapely.point_on_surface(self.geoms[grid_i[k]])
                lon[k], lat[k] = round(p.x, 6), round(p.y, 6)
        return lon, lat


def addresses(rng, geo: Geo, grid_i: np.ndarray) -> np.ndarray:
    """``<town><road><n>号`` with three roads per grid (stable per grid)."""
    roads = geo.roads
    road_of_grid = (np.arange(len(geo.codes))[:, None] * 7 + np.array([0, 17, 41])[None, :]) % len(roads)
    r = road_of_grid[grid_i, rng.integers(0, 3, size=len(grid_i))]
    num = rng.integers(1, 400, size=len(grid_i))
    town = geo.town_name[geo.town_i[grid_i]]
    return _join(town, roads[r], num, "号")


# -------------------------------------------------------------------------------------- inspections
@dataclass
class Inspections:
    unit_grid: np.ndarray  # per inspected unit
    unit_no: np.ndarray
    unit_lon: np.ndarray
    unit_lat: np.ndarray
    unit_addr: np.ndarray
    visit_unit: np.ndarray  # per visit row: index into units
    visit_day: np.ndarray  # datetime64[D]
    visit_problems: np.ndarray


def gen_inspections(rng, geo: Geo, days: np.ndarray, n_units: int, n_problem_units: int, n_problems: int,
                    visit_lambda: tuple[float, float], zone_cov, zone_det, zone_int,
                    force_visit: tuple[int, np.datetime64] | None = None) -> Inspections:
    g = len(geo.codes)
    cov_w = geo.registered * zone_cov[geo.zone_i] * rng.lognormal(0, 0.15, g)
    u_g = largest_remainder(n_units, cov_w, caps=geo.registered)
    p_g = largest_remainder(n_problem_units, u_g * zone_det[geo.zone_i] * rng.lognormal(0, 0.2, g), caps=u_g)
    e_g = largest_remainder(n_problems - n_problem_units, p_g * zone_int[geo.zone_i] * rng.lognormal(0, 0.2, g))

    unit_grid = np.repeat(np.arange(g), u_g)
    unit_no = np.empty(len(unit_grid), dtype=np.int64)
    unit_prob = np.zeros(len(unit_grid), dtype=np.int64)
    pos = 0
    for gi in range(g):
        u = int(u_g[gi])
        if not u:
            continue
        unit_no[pos:pos + u] = rng.choice(int(geo.registered[gi]), size=u, replace=False) + 1
        p = int(p_g[gi])
        if p:
            extra = rng.multinomial(int(e_g[gi]), rng.dirichlet(np.full(p, 0.8))) if e_g[gi] else np.zeros(p, int)
            unit_prob[pos:pos + p] = 1 + extra
        pos += u
    lam = np.where(geo.full_time[unit_grid], visit_lambda[0], visit_lambda[1])
    n_vis = 1 + rng.poisson(lam)
    n_vis = np.minimum(n_vis, len(days))
    visit_unit = np.repeat(np.arange(len(unit_grid)), n_vis)
    # visit days per town profile of the day weights
    visit_day_i = np.empty(len(visit_unit), dtype=np.int64)
    vt = geo.town_i[unit_grid[visit_unit]]
    for ti in np.unique(vt):
        m = vt == ti
        visit_day_i[m] = rng.choice(len(days), size=int(m.sum()), p=day_weights(days, geo.town_abbr[ti]))
    # one row per unit and day: move duplicates to the next free day
    for _ in range(len(days)):
        order = np.lexsort((visit_day_i, visit_unit))
        vu, vd = visit_unit[order], visit_day_i[order]
        dup = np.r_[False, (vu[1:] == vu[:-1]) & (vd[1:] == vd[:-1])]
        if not dup.any():
            break
        vd = vd.copy()
        vd[dup] = (vd[dup] + 1) % len(days)
        visit_unit, visit_day_i = vu, vd
    order = np.lexsort((visit_day_i, visit_unit))
    visit_unit, visit_day_i = visit_unit[order], visit_day_i[order]

    # problems: spread each problem unit's problems over 1..n of its visits
    visit_problems = np.zeros(len(visit_unit), dtype=np.int64)
    first_visit = np.searchsorted(visit_unit, np.arange(len(unit_grid)))
    pu = np.nonzero(unit_prob > 0)[0]
    k = unit_prob[pu]
    nv = n_vis[pu]
    m = 1 + rng.binomial(np.minimum(nv, k) - 1, 0.3)
    for j, unit in enumerate(pu):
        kk, mm, nn = int(k[j]), int(m[j]), int(nv[j])
        which = rng.choice(nn, size=mm, replace=False) if mm < nn else np.arange(nn)
        alloc = np.ones(mm, dtype=np.int64)
        if kk > mm:
            alloc += rng.multinomial(kk - mm, np.full(mm, 1.0 / mm))
        visit_problems[first_visit[unit] + which] = alloc

    if force_visit is not None:  # a problem visit in this grid on this day (the 2019-04-24 story)
        gi, day = force_visit
        di = int(np.searchsorted(days, day))
        cand = np.nonzero((unit_grid[visit_unit] == gi) & (visit_problems > 0))[0]
        for c in cand:
            u = visit_unit[c]
            if not np.any((visit_unit == u) & (visit_day_i == di)):
                visit_day_i[c] = di
                break

    unit_lon, unit_lat = geo.points_in(rng, unit_grid)
    return Inspections(unit_grid, unit_no, unit_lon, unit_lat, addresses(rng, geo, unit_grid), visit_unit,
                       days[visit_day_i], visit_problems)


# ---------------------------------------------------------------------------------------- incidents
def concat(frames: list[dict]) -> dict:
    keys = frames[0].keys()
    return {k: np.concatenate([np.asarray(f[k]) for f in frames]) for k in keys}


def _base(n: int, **cols) -> dict:
    d = {
        "grid_i": np.zeros(n, np.int64), "category": np.full(n, "", object), "source": np.full(n, "patrol", object),
        "reported": np.zeros(n, "datetime64[s]"), "inspection_rel": np.full(n, -1, np.int64),
        "lon": np.zeros(n), "lat": np.zeros(n), "address": np.full(n, "", object),
        "longstanding": np.zeros(n, bool), "is2019": np.zeros(n, bool), "story": np.full(n, "", object),
        "subcategory": np.full(n, "", object), "severity": np.zeros(n, np.int64), "level": np.full(n, "", object),
        "department": np.full(n, None, object),
    }
    d.update(cols)
    return d


def patrol_incidents(rng, geo: Geo, ins: Inspections, insp_offset: int, is2019: bool) -> dict:
    vis = np.repeat(np.arange(len(ins.visit_unit)), ins.visit_problems)
    unit = ins.visit_unit[vis]
    grid = ins.unit_grid[unit]
    n = len(vis)
    secs = sample_seconds(rng, n, _PATROL_HOURS)
    rep = local_day_to_utc(ins.visit_day[vis], secs)
    prof = geo.profile(grid)
    cat = np.empty(n, dtype=object)
    for p, mix in PATROL_MIX.items():
        m = prof == p
        cat[m] = pick(rng, int(m.sum()), mix)
    return _base(n, grid_i=grid, category=cat, reported=rep, inspection_rel=vis + insp_offset,
                 lon=ins.unit_lon[unit], lat=ins.unit_lat[unit], address=ins.unit_addr[unit],
                 is2019=np.full(n, is2019))


def report_incidents(rng, geo: Geo, n: int, days: np.ndarray, mix_fn, sources: dict, is2019: bool,
                     dispute: bool) -> dict:
    """Non-patrol reports spread over grids by population (Zhili heavy) and over days by the season."""
    if n <= 0:
        return _base(0)
    w = geo.population * np.where(geo.town_abbr[geo.town_i] == "ZL", 1.6, 1.0)
    grid = rng.choice(len(w), size=n, p=w / w.sum())
    day_i = np.empty(n, dtype=np.int64)
    ti = geo.town_i[grid]
    for t in np.unique(ti):
        m = ti == t
        dw = day_weights(days, geo.town_abbr[t])
        day_i[m] = rng.choice(len(days), size=int(m.sum()), p=dw)
    rep = local_day_to_utc(days[day_i], sample_seconds(rng, n, _REPORT_HOURS))
    cat = mix_fn(grid, days[day_i])
    lon, lat = geo.points_in(rng, grid)
    return _base(n, grid_i=grid, category=cat, reported=rep, source=pick(rng, n, sources), lon=lon, lat=lat,
                 address=addresses(rng, geo, grid), is2019=np.full(n, is2019))


def dispute_mix(rng, geo: Geo):
    def fn(grid, day):
        zl = geo.town_abbr[geo.town_i[grid]] == "ZL"
        month = pd.DatetimeIndex(day.astype("datetime64[ns]")).month.to_numpy()
        p_lab = np.where(zl, 0.32, 0.15) * np.where(np.isin(month, [1, 12]), 1.8, 1.0)
        return np.where(rng.random(len(grid)) < p_lab, "dispute.labour", "dispute.civil").astype(object)
    return fn


def other_mix(rng):
    def fn(grid, day):
        return pick(rng, len(grid), OTHER_MIX)
    return fn


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + np.exp(-x))


def assign_attributes(rng, geo: Geo, inc: dict, zone_onsite: np.ndarray, zone_district: np.ndarray,
                      calibrate: np.ndarray | None = None, target: float = ONSITE_TARGET) -> None:
    """Subcategory, severity, level and department (vectorised, in place). The on-site share of the cases
    ``calibrate`` (default: the 2019 ones) is expected to hit ``target`` (:data:`ONSITE_TARGET`)."""
    from dashboard.store import catalogue

    n = len(inc["grid_i"])
    cat = inc["category"]
    sub = inc["subcategory"]
    sev = inc["severity"]
    for key in sorted(pd.unique(cat)):
        m = (cat == key) & (sub == "")
        c = catalogue.get(key)
        subs = SUBCATEGORY_WEIGHTS.get(key) or {s: 1.0 for s in c.subcategories}
        sub[m] = pick(rng, int(m.sum()), subs)
        m2 = (cat == key) & (sev == 0)
        off = rng.choice([-1, 0, 1, 2], size=int(m2.sum()), p=[0.35, 0.5, 0.13, 0.02])
        sev[m2] = np.clip(c.default_severity + off, 1, 4)
    free = inc["level"] == ""
    zi = geo.zone_i[inc["grid_i"]]
    base_on = _lookup(cat, lambda c: ONSITE_BASE.get(c, 0.3), float)
    x = _logit(base_on) + zone_onsite[zi] - 0.8 * (sev >= 3)
    # shift so that the expected 2019 on-site share hits the target
    cal = inc["is2019"] if calibrate is None else calibrate
    m19 = free & cal
    fixed_on = int(((inc["level"] == "onsite") & cal).sum())
    target = target * int(cal.sum()) - fixed_on
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _expit(x[m19] + mid).sum() > target:
            hi = mid
        else:
            lo = mid
    p_on = _expit(x + (lo + hi) / 2)
    u = rng.random(n)
    base_d = _lookup(cat, lambda c: DISTRICT_BASE.get(c, 0.03), float)
    is_disp = np.char.startswith(cat.astype(str), "dispute.")
    q = np.clip(_expit(_logit(base_d) + zone_district[zi]) + np.where(is_disp, 0.0, 0.3) * (sev >= 3), 0, 0.95)
    level = np.where(u < p_on, "onsite", np.where(rng.random(n) < q, "district", "town")).astype(object)
    inc["level"][free] = level[free]
    dept = _lookup(cat, lambda c: catalogue.get(c).department)
    alt = rng.random(n) < 0.2
    for key, options in DEPARTMENT_ALTERNATIVES.items():
        m = alt & (cat == key)
        if m.any():
            dept[m] = np.array(options, dtype=object)[rng.integers(0, len(options), int(m.sum()))]
    need = (inc["level"] == "district") & (inc["department"] == None)  # noqa: E711 - element-wise
    inc["department"][need] = dept[need]


def step_durations(rng, inc: dict) -> np.ndarray:
    """Hours of each step, shape (n, MAX_EVENTS-1), NaN where the path has no such step."""
    n = len(inc["grid_i"])
    dur = np.full((n, MAX_EVENTS - 1), np.nan)
    sev = inc["severity"]
    for level, steps in STEP_HOURS.items():
        m = np.nonzero(inc["level"] == level)[0]
        if not len(m):
            continue
        speed = np.where(sev[m] >= 3, 0.5, 1.0)[:, None]
        med = np.array([s[0] for s in steps])[None, :]
        sd = np.array([s[1] for s in steps])[None, :]
        d = med * np.exp(rng.standard_normal((len(m), len(steps))) * sd) * speed
        dur[m, :len(steps)] = np.maximum(d, 5 / 60)
    return dur


def event_times(reported: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Event times (datetime64[s], NaT where none): reported, then cumulative steps, night-shifted."""
    secs = np.nancumsum(np.nan_to_num(dur, nan=0.0), axis=1) * 3600.0
    secs = np.concatenate([np.zeros((len(dur), 1)), secs], axis=1).round().astype(np.int64)
    t = reported[:, None].astype("datetime64[s]") + secs.astype("timedelta64[s]")
    t = night_shift(t.ravel()).reshape(t.shape)
    valid = np.concatenate([np.ones((len(dur), 1), bool), ~np.isnan(dur)], axis=1)
    t = np.where(valid, t, np.datetime64("NaT"))
    # keep strictly increasing after rounding
    for k in range(1, t.shape[1]):
        bad = valid[:, k] & (t[:, k] <= t[:, k - 1])
        t[bad, k] = t[bad, k - 1] + np.timedelta64(1, "s")
    return t


def last_time(t: np.ndarray) -> np.ndarray:
    n_ev = (~np.isnat(t)).sum(axis=1)
    return t[np.arange(len(t)), n_ev - 1]


def set_close(inc: dict, dur: np.ndarray, idx: np.ndarray, close_at: np.ndarray) -> None:
    """Stretch or shrink the handling wait of cases ``idx`` so that each closes near ``close_at`` (aligned)."""
    idx = np.asarray(idx)
    close_at = np.asarray(close_at).astype("datetime64[s]")
    lv = inc["level"][idx]
    for level, hs in list(HANDLING_STEP.items()) + [("onsite", 1)]:
        sel = lv == level
        if not sel.any():
            continue
        m = idx[sel]
        other = np.nansum(dur[m], axis=1) - dur[m, hs]
        want = (close_at[sel] - inc["reported"][m]).astype("timedelta64[s]").astype(np.int64) / 3600.0 - other
        dur[m, hs] = np.maximum(want, 0.5)


def random_times(rng, n: int, first: str, last: str) -> np.ndarray:
    a = np.datetime64(first, "s")
    b = np.datetime64(last, "s")
    span = (b - a).astype(np.int64)
    return a + rng.integers(0, max(span, 1), size=n).astype("timedelta64[s]")


# ----------------------------------------------------------------------------------------- generate
def _days(first, last) -> np.ndarray:
    return np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)


def _utcnow() -> np.datetime64:
    return np.datetime64(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0), "s")


def zone_effects(rng, geo: Geo) -> tuple[np.ndarray, ...]:
    """Per-zone effects (the first draws of a seed's generator): coverage, detection and intensity of the
    inspections, and the logit shifts of on-site handling and of escalation to the district."""
    nz = len(geo.zone_codes)
    zabbr = np.array([geo.town_abbr[geo.town_i[np.nonzero(geo.zone_i == z)[0][0]]] for z in range(nz)])
    zl = zabbr == "ZL"
    zone_cov = np.clip(rng.normal(1.0, 0.22, nz) - 0.12 * zl, 0.45, 1.6)
    zone_det = np.clip(rng.normal(1.0, 0.2, nz) + 0.35 * zl, 0.5, 2.0)
    zone_int = np.clip(rng.normal(1.0, 0.25, nz) + 0.3 * zl, 0.4, 2.0)
    zone_onsite = rng.normal(0, 0.55, nz)
    zone_district = rng.normal(0, 0.35, nz)
    return zone_cov, zone_det, zone_int, zone_onsite, zone_district


def build_frames(rng, geo: Geo, inc: dict, times: np.ndarray, outcome: np.ndarray, now) -> tuple[pd.DataFrame,
                                                                                                    pd.DataFrame]:
    """The incidents and events frames of planned cases ``inc`` with their step ``times`` (cut at ``now``):
    status, reached level, department, closed_at, change-sequence order, actors and notes of every step."""
    from dashboard.store import catalogue

    n = len(inc["grid_i"])
    ok = ~np.isnat(times) & (times <= now)
    ok[:, 0] = True
    n_ev = ok.sum(axis=1)
    status_idx = n_ev - 1

    # ---- incidents frame
    deadline = _lookup(inc["category"], lambda c: catalogue.get(c).deadline_hours, float) * 3600
    path = np.full((n, MAX_EVENTS), -1, dtype=np.int8)  # state numbers (see _STATE_INDEX), -1: none
    for level, states in STATES_BY_LEVEL.items():
        m = inc["level"] == level
        path[m, :len(states)] = [_STATE_INDEX[x] for x in states]
    status = _STATE_NAMES[path[np.arange(n), status_idx]]
    # level = the highest level *reached* so far (open cases may not have been escalated yet)
    plan = inc["level"]
    reached = np.where((plan == "district") & (status_idx >= 2), "district",
                       np.where((plan != "onsite") & (status_idx >= 1), "town", "onsite")).astype(object)
    inc["level"] = reached
    inc["department"] = np.where((plan == "district") & (status_idx >= 3), inc["department"], None)
    is_closed = status == "closed"
    last_t = times[np.arange(n), status_idx]
    closed_at = np.where(is_closed, last_t, np.datetime64("NaT"))
    outcome = np.where(is_closed, outcome, None)
    reported = times[:, 0]

    order = np.lexsort((np.arange(n), reported))  # id order = report order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)

    # ---- events (long form)
    ev_inc = np.repeat(np.arange(n), n_ev)
    ev_k = np.arange(len(ev_inc)) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)  # step number within its case
    ev_at = times[ev_inc, ev_k]
    ev_to_i = path[ev_inc, ev_k]
    ev_to = _STATE_NAMES[ev_to_i]
    ev_from = _STATE_NAMES[np.where(ev_k > 0, path[ev_inc, np.maximum(ev_k - 1, 0)], -1)]  # -1: None
    ev_order = np.lexsort((ev_k, rank[ev_inc], ev_at))
    seq_rel = np.empty(len(ev_inc), dtype=np.int64)
    seq_rel[ev_order] = np.arange(len(ev_inc))
    first_seq = np.full(n, 0, np.int64)
    last_seq = np.full(n, 0, np.int64)
    np.maximum.at(last_seq, ev_inc, seq_rel)
    first_seq[ev_inc[ev_k == 0]] = seq_rel[ev_k == 0]

    gi = inc["grid_i"]
    worker = geo.worker[gi]
    zi = geo.zone_i[gi]
    ti = geo.town_i[gi]
    town_actor = np.array([f"{t}综治中心" for t in geo.town_name], dtype=object)[ti]
    station = geo.station[zi]
    dept = inc["department"]
    from dashboard.store.catalogue import DEPARTMENTS

    dept_name = _lookup(np.where(dept == None, "", dept).astype(str),  # noqa: E711 - element-wise
                        lambda d: DEPARTMENTS[d][0] if d in DEPARTMENTS else "")
    src = inc["source"]
    reporter = np.where(np.isin(src, ["patrol", "app"]), worker,
                        np.where(src == "hotline", "12345热线",
                                 np.where(src == "department", np.where(dept_name != "", dept_name, "区级部门"),
                                          _join("群众", rng.choice(list("王李张刘陈杨黄赵吴周徐孙沈"), n)))))
    phone = np.where(np.isin(src, ["citizen", "hotline"]),
                     _join("1", rng.choice([3, 5, 8], n), np.strings.zfill(rng.integers(0, 10**9, n).astype(str), 9)),
                     None)

    e_inc = ev_inc
    ne = len(e_inc)
    lvl = np.select([inc["level"] == "onsite", inc["level"] == "town"], [0, 1], 2)[e_inc]  # reached level
    actor = np.empty(ne, dtype=object)
    role = np.empty(ne, dtype=object)
    e_dept = np.full(ne, None, dtype=object)

    def steps_to(*states) -> np.ndarray:
        return np.nonzero(np.isin(ev_to_i, [_STATE_INDEX[x] for x in states]))[0]

    k = steps_to("reported")
    actor[k] = reporter[e_inc[k]]
    role[k] = np.where(np.isin(src[e_inc[k]], ["patrol", "app"]), "grid_worker", "duty_officer")
    k = steps_to("onsite_handled", "verified")
    actor[k], role[k] = worker[e_inc[k]], "grid_worker"
    k = steps_to("routed", "escalated")
    actor[k], role[k] = town_actor[e_inc[k]], "town"
    k = steps_to("assigned")
    actor[k], role[k] = "区信息中心", "district"
    k = steps_to("in_progress", "handled")
    d = lvl[k] == 2
    actor[k] = np.where(d, dept_name[e_inc[k]], station[e_inc[k]])
    role[k] = np.where(d, "department", "station")
    k = steps_to("closed")
    on, d = lvl[k] == 0, lvl[k] == 2
    actor[k] = np.where(on, station[e_inc[k]], np.where(d, "区信息中心", town_actor[e_inc[k]]))
    role[k] = np.where(on, "station", np.where(d, "district", "town"))
    k = steps_to("assigned", "in_progress", "handled")
    k = k[lvl[k] == 2]
    e_dept[k] = dept[e_inc[k]]
    note = np.empty(ne, dtype=object)
    for st, opts in texts.NOTES.items():
        k = steps_to(st) if st in _STATE_INDEX else np.array([], np.int64)
        note[k] = np.array(opts, dtype=object)[rng.integers(0, len(opts), len(k))]
    rep_note = {"patrol": "网格员巡查发现并上报", "app": "通过掌上基层上报", "citizen": "群众反映，网格员核实后上报",
                "hotline": "12345热线转办", "department": "部门移送"}
    k = steps_to("reported")
    note[k] = _lookup(src[e_inc[k]], lambda x: rep_note.get(x, "上报"))
    s = ev_to
    _story_notes(inc, e_inc, s, note, actor)

    events = pd.DataFrame({
        "incident_rel": rank[e_inc], "seq_rel": seq_rel, "at": ev_at, "actor": actor, "actor_role": role,
        "from_status": ev_from, "to_status": ev_to, "note": note, "department": e_dept,
    }).sort_values("seq_rel", kind="stable").reset_index(drop=True)

    desc = describe(rng, inc)
    due = reported + deadline.astype("timedelta64[s]")
    incidents = pd.DataFrame({
        "rel": rank, "first_seq_rel": first_seq, "seq_rel": last_seq,
        "category": inc["category"], "subcategory": inc["subcategory"], "severity": inc["severity"],
        "source": src, "description": desc, "address": inc["address"], "lon": inc["lon"], "lat": inc["lat"],
        "grid_code": geo.codes[gi], "zone_code": geo.zone[gi], "town_code": geo.town[gi], "status": status,
        "level": inc["level"], "department": np.where(inc["level"] == "district", dept, None),
        "reporter": reporter, "reporter_phone": phone, "inspection_rel": inc["inspection_rel"],
        "outcome": outcome, "longstanding": inc["longstanding"], "reported_at": reported,
        "updated_at": last_t, "due_at": due, "closed_at": closed_at, "story": inc["story"],
    }).sort_values("rel", kind="stable").reset_index(drop=True)

    return incidents, events


def inspection_frame(geo: Geo, parts: list[Inspections]) -> pd.DataFrame:
    """One row per inspected unit and day (rel id = row), the parts one after the other."""
    rows = []
    for p in parts:
        g = p.unit_grid[p.visit_unit]
        rows.append(pd.DataFrame({
            "unit_id": _join(geo.codes[g], "-U", np.strings.zfill(p.unit_no[p.visit_unit].astype(str), 4)),
            "grid_code": geo.codes[g], "zone_code": geo.zone[g], "town_code": geo.town[g],
            "inspected_on": p.visit_day, "inspector": geo.worker[g], "problems_found": p.visit_problems,
        }))
    return pd.concat(rows, ignore_index=True)


def generate(gd, config: DemoConfig = DemoConfig(), progress: Callable[[str], None] | None = None) -> DemoData:
    """Generate the demo history as frames (no database)."""
    from dashboard.store import catalogue

    say = progress or (lambda s: None)
    rng = np.random.default_rng(config.seed)
    geo = Geo(gd)
    now = (np.datetime64(config.now.replace(tzinfo=None) if config.now.tzinfo is None
                         else config.now.astimezone(dt.timezone.utc).replace(tzinfo=None), "s")
           if config.now is not None else _utcnow())
    days19 = _days(f"{YEAR}-01-01", f"{YEAR}-12-31")
    today_local = (now + LOCAL_OFFSET).astype("datetime64[D]")
    recent_days = np.arange(today_local - config.recent_days + 1, today_local + 1) if config.recent_days else \
        np.array([], dtype="datetime64[D]")

    zone_cov, zone_det, zone_int, zone_onsite, zone_district = zone_effects(rng, geo)

    # the stories' places (the seed district's only)
    dc_grid, dc_point, dc_name = _daochang(geo) if geo.is_seed else (None, None, None)
    ct_grid = _chaoyin_grid(geo) if geo.is_seed else None

    # ---- inspections 2019 (exact) and recent
    say("inspections")
    ins19 = gen_inspections(rng, geo, days19, config.target(UNITS_INSPECTED), config.target(UNITS_WITH_PROBLEMS),
                            config.target(PROBLEMS_FOUND), (1.5, 0.9), zone_cov, zone_det, zone_int,
                            force_visit=(dc_grid, np.datetime64("2019-04-24")) if dc_grid is not None else None)
    n_ru = config.target(RECENT_UNITS_PER_DAY * len(recent_days))
    if n_ru:
        n_rp = int(round(n_ru * UNITS_WITH_PROBLEMS / UNITS_INSPECTED))
        ins_r = gen_inspections(rng, geo, recent_days, n_ru, n_rp, int(round(n_rp * PROBLEMS_FOUND /
                                                                                UNITS_WITH_PROBLEMS)),
                                (0.05, 0.02), zone_cov, zone_det, zone_int)
    else:
        ins_r = None

    # ---- incidents
    say("incidents")
    parts = [patrol_incidents(rng, geo, ins19, 0, True)]
    n_v19 = len(ins19.visit_unit)
    if ins_r is not None:
        parts.append(patrol_incidents(rng, geo, ins_r, n_v19, False))
    disputes_2019 = config.target(DISPUTES_CLOSED) + config.target(900)
    sources_d, sources_o = SOURCES_DISPUTE, SOURCES_OTHER
    parts.append(report_incidents(rng, geo, disputes_2019, days19, dispute_mix(rng, geo), sources_d, True, True))
    n_rd = int(round(disputes_2019 / 365 * RECENT_DISPUTE_FACTOR * len(recent_days)))
    parts.append(report_incidents(rng, geo, n_rd, recent_days, dispute_mix(rng, geo), sources_d, False, True))
    fixed = (sum(len(p["grid_i"]) for p in parts) + (5 + 1 if geo.is_seed else 0)  # + stories
             + year_before_size(config))  # + 2018
    other19 = config.target(OTHER_2019_DEFAULT)
    other_r = int(round(other19 / 365 * len(recent_days) * 0.8))
    bulk_n = 0  # beyond what the demo holds: the bulk years (see bulk_plan), generated apart
    if config.incidents is not None:
        room = max(0, int(config.incidents) - fixed)
        base = other19 + other_r
        if room > base:
            bulk_n = room - base
        else:
            other19, other_r = (int(round(room * other19 / base)), room - int(round(room * other19 / base))) \
                if base else (room, 0)
    parts.append(report_incidents(rng, geo, other19, days19, other_mix(rng), sources_o, True, False))
    parts.append(report_incidents(rng, geo, other_r, recent_days, other_mix(rng), sources_o, False, False))
    if geo.is_seed:
        parts.append(_hengtang(rng, geo, ct_grid))
        if dc_grid is None:
            parts.append(_daochang_standalone(geo, dc_point))
    if len(recent_days):
        parts.append(_near_hazards(rng, geo, now))
    inc = concat([p for p in parts if len(p["grid_i"])])
    n = len(inc["grid_i"])

    # Daochang story = the first problem found at the forced 2019-04-24 visit in the site's grid
    if dc_grid is not None:
        cand = np.nonzero((inc["grid_i"] == dc_grid) & (inc["inspection_rel"] >= 0) & (inc["inspection_rel"] < n_v19)
                          & ((inc["reported"] + LOCAL_OFFSET).astype("datetime64[D]") == np.datetime64("2019-04-24")))[0]
        if len(cand):
            k = cand[0]
            _story_daochang(inc, k, dc_point, dc_name)
        else:
            extra = _daochang_standalone(geo, dc_point)
            inc = concat([inc, extra])
            n = len(inc["grid_i"])

    say("lifecycle")
    assign_attributes(rng, geo, inc, zone_onsite, zone_district)
    dur = step_durations(rng, inc)
    _fix_story_times(inc, dur)
    story = inc["story"] != ""
    is19 = inc["is2019"]
    is_disp = np.char.startswith(inc["category"].astype(str), "dispute.")
    end19 = np.datetime64(f"{YEAR}-12-31T16:00:00")  # local midnight, = end of the year in Asia/Shanghai

    # long-standing problems solved in 2019 (the 5 Hengtang shops are among them)
    n_ls = config.target(LONGSTANDING_SOLVED) - int((inc["longstanding"] & is19).sum())
    cand = np.nonzero(is19 & ~story & ~is_disp & np.isin(inc["category"], LONGSTANDING_CATEGORIES)
                      & (inc["level"] != "onsite") & (inc["reported"] < np.datetime64("2019-08-31")))[0]
    ls = np.sort(rng.choice(cand, size=min(max(n_ls, 0), len(cand)), replace=False))
    inc["longstanding"][ls] = True
    close = inc["reported"][ls] + (rng.uniform(30, 120, len(ls)) * 86400).astype("timedelta64[s]")
    close = np.minimum(close, np.datetime64("2019-12-15T06:00:00"))
    set_close(inc, dur, ls, close)
    protected = story | inc["longstanding"]

    times = event_times(inc["reported"], dur)
    closed_at = last_time(times)

    # ---- the year before (2018): its own generator; its disputes take 1 / (1 - DISPUTE_TIME_DROP) × as long as
    # the 2019 disputes as planned so far (the calibration below moves few of them)
    say("2018")
    _, hours = _close_hours(inc, times)
    m = is19 & is_disp & (closed_at < end19)
    med19 = float(np.median(hours[m])) if m.any() else None
    y18 = year_before(np.random.default_rng([config.seed, YEAR_BEFORE]), geo, config,
                      (zone_cov, zone_det, zone_int, zone_onsite, zone_district),
                      None if med19 is None else med19 / (1 - DISPUTE_TIME_DROP))
    start19 = np.datetime64(f"{YEAR_BEFORE}-12-31T16:00:00")
    closed18 = last_time(y18.times)
    disp18 = np.char.startswith(y18.inc["category"].astype(str), "dispute.")
    spill = disp18 & (closed18 >= start19) & (closed18 < end19)  # 2018 disputes closed in 2019

    # disputes closed in 2019: exactly DISPUTES_CLOSED, the 2018 ones closed in 2019 included
    d19 = is19 & is_disp & ~protected
    target_c = config.target(DISPUTES_CLOSED) - int(spill.sum())
    c_now = int((d19 & (closed_at < end19)).sum())
    if c_now > target_c:  # push the latest-reported extra ones into 2020
        cand = np.nonzero(d19 & (closed_at < end19) & (inc["level"] != "onsite"))[0]
        cand = cand[np.argsort(inc["reported"][cand])[::-1]][: (c_now - target_c)]
        cand = np.sort(cand)
        set_close(inc, dur, cand, random_times(rng, len(cand), "2020-01-03T01:00", "2020-02-20T09:00"))
    elif c_now < target_c:  # pull spilled ones back before the year end
        cand = np.nonzero(d19 & (closed_at >= end19) & (inc["reported"] < np.datetime64("2019-12-28")))[0]
        cand = np.sort(rng.choice(cand, size=min(target_c - c_now, len(cand)), replace=False))
        lo = inc["reported"][cand] + np.timedelta64(2, "h")
        hi = np.datetime64("2019-12-31T08:00:00")
        close = lo + ((hi - lo).astype(np.int64) * rng.uniform(0.3, 0.9, len(cand))).astype("timedelta64[s]")
        set_close(inc, dur, cand, close)
    times = event_times(inc["reported"], dur)
    closed_at = last_time(times)

    # resolution ≈ RESOLUTION_TARGET: the rest of the unresolved are long-running non-dispute cases
    n19 = int(is19.sum())
    resolved = int((is19 & (closed_at < end19)).sum())
    want = int(round(RESOLUTION_TARGET * n19))
    if resolved > want:
        cand = np.nonzero(is19 & ~is_disp & ~protected & (closed_at < end19) & (inc["level"] != "onsite")
                          & (inc["reported"] > np.datetime64("2019-06-01")))[0]
        cand = np.sort(rng.choice(cand, size=min(resolved - want, len(cand)), replace=False))
        set_close(inc, dur, cand, random_times(rng, len(cand), "2020-01-03T01:00", "2020-04-28T09:00"))
        times = event_times(inc["reported"], dur)
        closed_at = last_time(times)

    # dispute outcomes: exactly DISPUTES_RESOLVED among those closed in 2019 (the 2018 ones among them resolved)
    outcome = np.full(n, None, dtype=object)
    outcome[is_disp] = "resolved"
    dc19 = np.nonzero(is19 & is_disp & (closed_at < end19))[0]
    y18.outcome[spill] = "resolved"
    n_unres = len(dc19) + int(spill.sum()) - config.target(DISPUTES_RESOLVED)
    if n_unres > 0:
        w = np.select([inc["level"][dc19] == "district", inc["level"][dc19] == "town"], [5.0, 2.0], 0.5)
        bad = rng.choice(dc19, size=n_unres, replace=False, p=w / w.sum())
        outcome[bad] = "unresolved"
    later = is_disp & ~(is19 & (closed_at < end19))
    outcome[later & (rng.random(n) < 0.01)] = "unresolved"

    # recent: cut at now; guarantee open cases in every open state
    say("recent")
    times = _ensure_open_states(rng, inc, dur, times, now)
    # nothing may be reported in the future: a case the re-planning left after now goes back before it
    future = times[:, 0] > now
    if future.any():
        inc["reported"][future] = _before(rng, now, int(future.sum()))
        times = event_times(inc["reported"], dur)
    # 2018 goes first (ids and the change sequence follow report time); 2019's and the recent visits come after
    # 2018's in the inspections frame
    n_v18 = len(y18.ins.visit_unit)
    inc["inspection_rel"] = np.where(inc["inspection_rel"] >= 0, inc["inspection_rel"] + n_v18, -1)
    inc = concat([y18.inc, inc])
    times = np.concatenate([y18.times, times])
    outcome = np.concatenate([y18.outcome, outcome])
    say("frames")
    incidents, events = build_frames(rng, geo, inc, times, outcome, now)

    # ---- inspections frame (2018, 2019, then recent; rel id = row)
    inspections = inspection_frame(geo, [y18.ins, ins19] + ([ins_r] if ins_r is not None else []))
    say("done")
    return DemoData(inspections=inspections, incidents=incidents, events=events, now=now,
                    stats={"incidents": len(incidents), "events": len(events), "inspections": len(inspections),
                           "bulk_incidents": bulk_n})


# -------------------------------------------------------------------------------------- the year before
@dataclass
class YearBefore:
    """Calendar 2018 as planned cases: ``inc`` (the :func:`_base` columns), their final step ``times``, dispute
    ``outcome`` (those still open at the year's end: "resolved", the 2019 calibration may change them) and the
    inspections ``ins`` (patrol ``inspection_rel`` index its visits from 0)."""

    inc: dict
    times: np.ndarray
    outcome: np.ndarray
    ins: Inspections


def units_with_problems_2018(config: DemoConfig) -> int:
    """2018's units with problems: the integer count that puts 2019's detection rate :data:`DETECTION_GROWTH`
    above 2018's — relative growth, as the seed's "同比增长16.12%" (2018's rate = 2019's / 1.1612)."""
    rate19 = config.target(UNITS_WITH_PROBLEMS) / config.target(UNITS_INSPECTED)
    return int(round(config.target(UNITS_INSPECTED_2018) * rate19 / (1 + DETECTION_GROWTH)))


def year_before_size(config: DemoConfig) -> int:
    """How many cases :func:`year_before` plans (known before it runs: patrol problems are exact)."""
    return config.target(PROBLEMS_FOUND_2018) + config.target(DISPUTES_2018) + config.target(OTHER_2018)


def _close_hours(inc: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(closed_at, hours from report to close) of every planned case."""
    closed_at = last_time(times)
    return closed_at, (closed_at - inc["reported"]).astype("timedelta64[s]").astype(np.int64) / 3600.0


def year_before(rng, geo: Geo, config: DemoConfig, effects, dispute_hours: float | None) -> YearBefore:
    """Calendar 2018, a smaller and less mature system a year earlier, with the steps of 2019 (vectorised): exact
    inspections (units inspected :data:`UNITS_INSPECTED_2018`, with problems :func:`units_with_problems_2018`,
    problems found :data:`PROBLEMS_FOUND_2018`, each a patrol case), disputes and other reports; on-site handling
    ≈ :data:`ONSITE_TARGET_2018`, more escalation, every step :data:`SLOWER_2018` × longer; the disputes' steps
    scaled so that the median time to resolve the disputes closed in 2018 is ``dispute_hours`` (2019's median /
    (1 − :data:`DISPUTE_TIME_DROP`)); :data:`LONGSTANDING_SOLVED_2018` long-standing problems solved, dispute
    success ≈ :data:`DISPUTE_SUCCESS_2018`, resolution ≈ :data:`RESOLUTION_TARGET_2018` (the rest close in 2019)."""
    zone_cov, zone_det, zone_int, zone_onsite, zone_district = effects
    days = _days(f"{YEAR_BEFORE}-01-01", f"{YEAR_BEFORE}-12-31")
    end = np.datetime64(f"{YEAR_BEFORE}-12-31T16:00:00")  # local midnight: the end of the year in Asia/Shanghai
    ins = gen_inspections(rng, geo, days, config.target(UNITS_INSPECTED_2018), units_with_problems_2018(config),
                          config.target(PROBLEMS_FOUND_2018), (0.6, 0.3), zone_cov, zone_det, zone_int)
    parts = [patrol_incidents(rng, geo, ins, 0, False),
             report_incidents(rng, geo, config.target(DISPUTES_2018), days, dispute_mix(rng, geo), SOURCES_DISPUTE,
                              False, True),
             report_incidents(rng, geo, config.target(OTHER_2018), days, other_mix(rng), SOURCES_OTHER, False, False)]
    inc = concat([p for p in parts if len(p["grid_i"])])
    n = len(inc["grid_i"])
    assign_attributes(rng, geo, inc, zone_onsite, zone_district + DISTRICT_SHIFT_2018, calibrate=np.ones(n, bool),
                      target=ONSITE_TARGET_2018)
    dur = step_durations(rng, inc) * SLOWER_2018
    is_disp = np.char.startswith(inc["category"].astype(str), "dispute.")

    # the disputes' steps: scaled until the median time to resolve (closed in 2018) is dispute_hours
    d = np.nonzero(is_disp)[0]
    if dispute_hours and len(d):
        sub = {"reported": inc["reported"][d]}
        base = dur[d].copy()
        factor = 1.0
        for _ in range(6):
            closed_at, hours = _close_hours(sub, event_times(sub["reported"], base * factor))
            med = float(np.median(hours[closed_at < end])) if (closed_at < end).any() else 0.0
            if not med or abs(med / dispute_hours - 1) < 0.005:
                break
            factor *= dispute_hours / med
        dur[d] = base * factor

    # long-standing problems solved in 2018, all closed before mid-December
    cand = np.nonzero(~is_disp & np.isin(inc["category"], LONGSTANDING_CATEGORIES) & (inc["level"] != "onsite")
                      & (inc["reported"] < np.datetime64(f"{YEAR_BEFORE}-08-31")))[0]
    ls = np.sort(rng.choice(cand, size=min(config.target(LONGSTANDING_SOLVED_2018), len(cand)), replace=False))
    inc["longstanding"][ls] = True
    close = inc["reported"][ls] + (rng.uniform(30, 120, len(ls)) * 86400).astype("timedelta64[s]")
    set_close(inc, dur, ls, np.minimum(close, np.datetime64(f"{YEAR_BEFORE}-12-15T06:00:00")))

    times = event_times(inc["reported"], dur)
    closed_at = last_time(times)
    # resolution ≈ RESOLUTION_TARGET_2018: long-running non-dispute cases close in the first months of 2019
    resolved = int((closed_at < end).sum())
    want = int(round(RESOLUTION_TARGET_2018 * n))
    if resolved > want:
        cand = np.nonzero(~is_disp & ~inc["longstanding"] & (closed_at < end) & (inc["level"] != "onsite")
                          & (inc["reported"] > np.datetime64(f"{YEAR_BEFORE}-06-01")))[0]
        cand = np.sort(rng.choice(cand, size=min(resolved - want, len(cand)), replace=False))
        set_close(inc, dur, cand, random_times(rng, len(cand), f"{YEAR}-01-03T01:00", f"{YEAR}-04-28T09:00"))
        times = event_times(inc["reported"], dur)
        closed_at = last_time(times)

    # dispute outcomes of 2018: ≈ DISPUTE_SUCCESS_2018 of those closed in the year resolved
    outcome = np.full(n, None, dtype=object)
    outcome[is_disp] = "resolved"
    dc = np.nonzero(is_disp & (closed_at < end))[0]
    n_unres = int(round(len(dc) * (1 - DISPUTE_SUCCESS_2018)))
    if n_unres > 0:
        w = np.select([inc["level"][dc] == "district", inc["level"][dc] == "town"], [5.0, 2.0], 0.5)
        outcome[rng.choice(dc, size=n_unres, replace=False, p=w / w.sum())] = "unresolved"
    return YearBefore(inc, times, outcome, ins)


def describe(rng, inc: dict) -> np.ndarray:
    n = len(inc["grid_i"])
    out = np.empty(n, dtype=object)
    shops = np.array(texts.SHOPS, dtype=object)
    keys = _join(inc["category"], "|", inc["subcategory"])
    nums = rng.integers(2, 30, n)
    ms = rng.integers(1, 20, n)
    shop = shops[rng.integers(0, len(shops), n)]
    pick_i = rng.integers(0, 1000, n)
    story = inc["story"] != ""
    fields = {"addr": inc["address"], "shop": shop, "n": nums, "m": ms}
    for key in sorted(pd.unique(keys)):
        cat, sub = key.split("|")
        tpl = texts.TEMPLATES.get((cat, sub)) or texts.TEMPLATES.get((cat, "*")) or ("{addr}发现问题，需处置",)
        idx = np.nonzero((keys == key) & ~story)[0]
        which = pick_i[idx] % len(tpl)
        for j, t in enumerate(tpl):  # template j for its cases at once: literal parts and fields joined
            sel = idx[which == j]
            if not len(sel):
                continue
            parts = [p for lit, f, _, _ in string.Formatter().parse(t)
                     for p in ([lit] if lit else []) + ([fields[f][sel]] if f is not None else [])]
            out[sel] = _join(*parts) if any(not isinstance(p, str) for p in parts) else "".join(parts)
    out[story] = inc["address"][story]  # replaced below by the story text
    for i in np.nonzero(story)[0]:
        out[i] = STORY_TEXT.get(inc["story"][i], out[i])
    return out


# -------------------------------------------------------------------------------------------- stories
STORY_TEXT = {
    "daochang": "网格员巡查发现道场乡一仓库违规存放大量危险化学品，立即上报片区工作站；应急管理、生态环境、综合执法联合处置，当天上午查封",
    "hengtang": "潮音片区横塘路临街住宅“破墙开门”经营，属历史遗留问题，经片区联合整治恢复原状",
}


def _daochang(geo: Geo):
    """Grid, point and name of the Daochang hazardous-chemical site (from geodata hazards)."""
    hz = geo.hazards
    if hz is not None and len(hz):
        m = (hz["kind"].astype(str) == "hazchem") & hz["town_code"].astype(str).str.endswith("-DC")
        cand = hz[m]
        if len(cand):
            if "risk" in cand:
                cand = cand.sort_values(["risk", "code"], ascending=[False, True])
            named = cand[cand["name"].astype(str).str.contains("2019-04-24")] if "name" in cand else cand
            if not len(named) and "name" in cand:
                named = cand[cand["name"].astype(str).str.contains("仓库")]
            row = (named if len(named) else cand).iloc[0]
            gi = geo.code_index.get(str(row["grid_code"]))
            lon, lat = float(row.geometry.x), float(row.geometry.y)
            if gi is not None and geo.locator.locate(lon, lat) == geo.codes[gi]:
                return gi, (round(lon, 6), round(lat, 6)), str(row.get("name", "危化品仓库")).split("（")[0]
    dc = np.nonzero(geo.town_abbr[geo.town_i] == "DC")[0]
    gi = int(dc[0]) if len(dc) else 0
    import shapely

    p = shapely.point_on_surface(geo.geoms[gi])
    return gi, (round(p.x, 6), round(p.y, 6)), "道场乡危化品仓库"


def _story_daochang(inc: dict, k: int, point, name: str) -> None:
    inc["story"][k] = "daochang"
    inc["category"][k] = "safety.hazchem"
    inc["subcategory"][k] = "illegal_storage"
    inc["severity"][k] = 4
    inc["level"][k] = "district"
    inc["department"][k] = "emergency"
    inc["lon"][k], inc["lat"][k] = point
    inc["address"][k] = f"道场乡{name}" if "道场" not in name else name
    inc["reported"][k] = local_day_to_utc(np.array([np.datetime64("2019-04-24")]), np.array([8 * 3600 + 40 * 60]))[0]


def _daochang_standalone(geo: Geo, point) -> dict:
    gi = geo.code_index[geo.locator.locate(*point)] if geo.locator.locate(*point) else 0
    d = _base(1, grid_i=np.array([gi]), source=np.array(["app"], object), is2019=np.array([True]))
    _story_daochang(d, 0, point, "道场乡危化品仓库")
    return d


def _chaoyin_grid(geo: Geo) -> int:
    z = np.nonzero(np.char.find(geo.zone_name.astype(str), "潮音") >= 0)[0]
    if len(z):
        g = np.nonzero(geo.zone_i == z[0])[0]
        return int(g[0])
    return int(np.nonzero(geo.town_abbr[geo.town_i] == "AS")[0][0]) if (geo.town_abbr == "AS").any() else 0


def _hengtang(rng, geo: Geo, gi: int) -> dict:
    """Five 破墙开门 shops on 横塘路, long-standing, all fixed (closed) on 2019-11-28."""
    d = _base(5, grid_i=np.full(5, gi), source=np.array(["patrol", "app", "patrol", "citizen", "app"], object),
              is2019=np.ones(5, bool), story=np.full(5, "hengtang", object))
    d["category"][:] = "construction.illegal"
    d["subcategory"][:] = "wall_opening"
    d["severity"][:] = 2
    d["level"][:] = "town"
    d["longstanding"][:] = True
    d["reported"] = local_day_to_utc(np.array(["2019-03-12", "2019-04-02", "2019-05-20", "2019-06-18",
                                               "2019-08-07"], dtype="datetime64[D]"),
                                     np.array([9.5, 10.2, 14.1, 15.3, 9.1]) * 3600)
    lon, lat = geo.points_in(rng, d["grid_i"])
    d["lon"], d["lat"] = lon, lat
    zname = geo.zone_name[geo.zone_i[gi]]
    d["address"] = np.array([f"{zname}横塘路{n}号" for n in (12, 14, 18, 23, 27)], dtype=object)
    return d


def _near_hazards(rng, geo: Geo, now) -> dict:
    """A few open recent cases inside the safety rings of hazardous-chemical sites and gas stations."""
    hz = geo.hazards
    if hz is None or not len(hz):
        return _base(0)
    cand = hz[hz["kind"].astype(str).isin(["hazchem", "gas_station"])].sort_values("code")
    if not len(cand):
        return _base(0)
    cand = cand.iloc[rng.choice(len(cand), size=min(6, len(cand)), replace=False)]
    lons, lats, grids = [], [], []
    for _, row in cand.iterrows():
        ring = float(row.get("ring_m", 300) or 300)
        for _ in range(2):
            r = ring * np.sqrt(rng.uniform(0.05, 0.9))
            a = rng.uniform(0, 2 * np.pi)
            lat = row.geometry.y + r * np.sin(a) / 111_320
            lon = row.geometry.x + r * np.cos(a) / (111_320 * np.cos(np.radians(row.geometry.y)))
            code = geo.locator.locate(round(lon, 6), round(lat, 6))
            if code is not None:
                lons.append(round(lon, 6))
                lats.append(round(lat, 6))
                grids.append(geo.code_index[code])
    n = len(grids)
    if not n:
        return _base(0)
    rep = now - (rng.uniform(0.2, 48, n) * 3600).astype("timedelta64[s]")
    d = _base(n, grid_i=np.array(grids), lon=np.array(lons), lat=np.array(lats), reported=rep,
              source=pick(rng, n, {"patrol": 2, "app": 2, "citizen": 1}),
              category=pick(rng, n, {"safety.hazchem": 3, "safety.fire": 2}))
    d["address"] = addresses(rng, geo, d["grid_i"])
    d["severity"] = rng.choice([2, 3], size=n, p=[0.5, 0.5])
    return d


def _story_notes(inc, e_inc, s, note, actor) -> None:
    dc = np.nonzero(inc["story"][e_inc] == "daochang")[0]
    notes = {
        "reported": "网格员巡查发现仓库违规存放大量危化品，立即上报片区工作站",
        "routed": "片区工作站接报，镇街综治中心研判",
        "escalated": "危化品数量大，上报区信息中心",
        "assigned": "交办区应急管理局，会同生态环境分局、综合行政执法局联合处置",
        "in_progress": "三部门联合赶赴现场",
        "handled": "当天上午联合查封仓库，危化品转移处置",
        "verified": "网格员现场核实：仓库已查封",
        "closed": "结案",
    }
    for i in dc:
        note[i] = notes.get(s[i], note[i])
    ht = np.nonzero(inc["story"][e_inc] == "hengtang")[0]
    for i in ht:
        if s[i] == "handled":
            note[i] = "潮音片区联合整治，破墙开门恢复原状"
        elif s[i] == "closed":
            note[i] = "历史遗留问题化解，结案"


def _fix_story_times(inc: dict, dur: np.ndarray) -> None:
    """Exact timelines of the stories (hours per step)."""
    for k in np.nonzero(inc["story"] == "daochang")[0]:
        dur[k, :7] = [0.2, 0.2, 0.25, 0.3, 1.8, 2.5, 2.0]  # sealed the same morning, closed the same day
    ht = np.nonzero(inc["story"] == "hengtang")[0]
    if len(ht):
        fix = local_day_to_utc(np.array(["2019-11-28"] * len(ht), dtype="datetime64[D]"),
                               np.array([10.0, 10.5, 11.0, 11.5, 12.0][: len(ht)]) * 3600)
        for j, k in enumerate(ht):
            dur[k, :5] = [2.0, 20.0, np.nan, 3.0, 2.0]
            before = 2.0 + 20.0
            handled = (fix[j] - inc["reported"][k]).astype("timedelta64[s]").astype(np.int64) / 3600 - before
            dur[k, 2] = handled


def _replan(rng, inc: dict, dur: np.ndarray, idx: np.ndarray, level: str) -> None:
    """Put cases ``idx`` on another path (level), with fresh waits and a department when district."""
    from dashboard.store import catalogue

    if not len(idx):
        return
    inc["level"][idx] = level
    steps = STEP_HOURS[level]
    med = np.array([x[0] for x in steps])[None, :]
    sd = np.array([x[1] for x in steps])[None, :]
    dur[idx, :] = np.nan
    dur[idx, :len(steps)] = np.maximum(med * np.exp(rng.standard_normal((len(idx), len(steps))) * sd), 5 / 60)
    for i in idx:
        inc["department"][i] = catalogue.get(inc["category"][i]).department if level == "district" else None
    if level != "district":
        return


def _before(rng, now, n: int) -> np.ndarray:
    """``n`` report times shortly before ``now`` inside working hours (event_times maps local night hours to
    08:00, which before dawn would be in the future): before 08:30 local, the previous evening."""
    t = now - (rng.uniform(0.1, 6, n) * 3600).astype("timedelta64[s]")
    local = t + LOCAL_OFFSET
    day = local.astype("datetime64[D]")
    night = (local - day) < np.timedelta64(8 * 3600 + 1800, "s")
    evening = day.astype("datetime64[s]") - LOCAL_OFFSET - (rng.uniform(0.5, 3.5, n) * 3600).astype("timedelta64[s]")
    return np.where(night, evening, t)


def _ensure_open_states(rng, inc, dur, times, now) -> np.ndarray:
    """Every open state has at least a few recent cases in it at ``now``."""
    recent = ~inc["is2019"]
    if not recent.any():
        return times
    # recent reports sampled after now (today's late hours) go back before now
    late = recent & (inc["reported"] > now)
    if late.any():
        inc["reported"][late] = now - (rng.uniform(0.1, 8, int(late.sum())) * 3600).astype("timedelta64[s]")
        times = event_times(inc["reported"], dur)
    want = 3
    used = np.zeros(len(inc["grid_i"]), dtype=bool)
    for level, states in STATES_BY_LEVEL.items():
        for k, st in enumerate(states[:-1]):
            for _attempt in range(6):
                cur = recent & (inc["level"] == level)
                inside = cur & (times[:, k] <= now) & (np.isnat(times[:, k + 1]) | (times[:, k + 1] > now))
                missing = want - int(inside.sum())
                used |= inside
                if missing <= 0:
                    break
                movable = (inc["story"] == "") & (inc["inspection_rel"] < 0)  # patrol cases stay on their day
                cand = np.nonzero(cur & ~used & movable)[0]
                if len(cand) < missing and level != "onsite":  # too few recent cases on this path: re-plan
                    other = np.nonzero(recent & ~used & (inc["level"] != level) & movable
                                       & ~inc["longstanding"])[0]
                    conv = rng.choice(other, size=min(missing - len(cand), len(other)), replace=False)
                    _replan(rng, inc, dur, conv, level)
                    cand = np.concatenate([cand, conv]).astype(np.int64)
                    times = event_times(inc["reported"], dur)
                if not len(cand):
                    break
                cand = rng.choice(cand, size=min(missing, len(cand)), replace=False)
                for i in cand:  # shift the case so that now falls inside state k
                    enter = times[i, k]
                    leave = times[i, k + 1]
                    mid = enter + (leave - enter) // 2
                    inc["reported"][i] = inc["reported"][i] + (now - mid)
                times = event_times(inc["reported"], dur)
    return times


# ------------------------------------------------------------------------------------------ bulk years
# ``--incidents N`` beyond the calibrated demo: the extra cases are spread over the BULK_YEARS before the
# recent days (never into 2019, whose figures stay calibrated), generated and written BULK_CHUNK at a time.
BULK_YEARS = 5
BULK_CHUNK = 200_000
BULK_POOL = 1024  # candidate locations per grid (checked inside the grid once, then drawn from)
# … and at most this many in all: a province's 67,000 grids get 29 each (at 1,024 each, 69M points to place took
# more than the machine's 24 GB); Wuxing's 538 keep 1,024
BULK_POOL_POINTS = 2_000_000
BULK_POOL_MIN = 16
BULK_START = np.datetime64("2020-01-01")  # the bulk years never reach back into the calibrated year
# the 2019 mix: problems found on patrol, disputes, other reports; visits with and without problems
PATROL_SHARE = PROBLEMS_FOUND / (PROBLEMS_FOUND + DISPUTES_CLOSED + 900 + OTHER_2019_DEFAULT)
DISPUTE_SHARE = (DISPUTES_CLOSED + 900) / (DISPUTES_CLOSED + 900 + OTHER_2019_DEFAULT)
EXTRA_PROBLEMS = 1.45  # a visit that finds problems finds 1 + Poisson(1.45) of them (2019: 2.45 per visit)
QUIET_VISITS = 3.75  # visits that find nothing per visit that finds something (2019)
LONG_RUNNING = 0.03  # town/district non-dispute cases whose handling takes months
BULK_GROWTH = 0.5  # the daily volume grows linearly by this share over the span


class BulkSpanError(ValueError):
    """No room for the bulk years between the calibrated year and the recent days (``now`` too early)."""


@dataclass(frozen=True)
class BulkPlan:
    """Where the extra cases go: local days ``days`` (the span), ``per_day`` reports each (sums to ``n``),
    cut into chunks of whole days (``bounds``: day index ranges)."""

    n: int
    days: np.ndarray
    per_day: np.ndarray
    bounds: tuple[tuple[int, int], ...]

    @property
    def start_utc(self) -> np.datetime64:
        """The first instant of the span (local midnight of its first day, in UTC)."""
        return local_day_to_utc(self.days[:1], np.zeros(1, np.int64))[0]


def bulk_plan(n: int, now: np.datetime64, recent_days: int, years: float = BULK_YEARS,
              chunk: int = BULK_CHUNK) -> BulkPlan:
    """``n`` cases over the ``years`` before the recent window (the span ends where the recent days start,
    or today when there are none), seasonal like 2019 and slowly growing."""
    today = (now + LOCAL_OFFSET).astype("datetime64[D]")
    end = today - recent_days + 1 if recent_days else today + 1  # exclusive
    start = max(end - int(round(365.25 * years)), BULK_START)
    if start >= end:
        raise BulkSpanError(f"no room for the extra cases between {BULK_START} and the recent days before {today}")
    days = np.arange(start, end)
    growth = 1.0 + BULK_GROWTH * np.linspace(0.0, 1.0, len(days))
    per_day = largest_remainder(n, day_weights(days) * growth)
    bounds, a, acc = [], 0, 0
    for i, c in enumerate(per_day.tolist()):
        if acc and acc + c > chunk:
            bounds.append((a, i))
            a, acc = i, 0
        acc += c
    bounds.append((a, len(days)))
    return BulkPlan(int(n), days, per_day, tuple(bounds))


def location_pool(seed: int, geo: Geo, size: int = BULK_POOL,
                  points: int = BULK_POOL_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``size`` random points inside each grid (lon and lat arrays, shape grids × size), fewer per grid when the
    grids are so many that ``points`` would be exceeded (never under ``BULK_POOL_MIN``), placed ``points`` at a
    time: the memory stays bounded whatever the number of grids."""
    g = len(geo.codes)
    size = max(BULK_POOL_MIN, min(size, points // max(g, 1)))
    rng = np.random.default_rng([seed, 1906])
    step = max(1, points // size)  # grids per batch: all of them in one when they fit (the same draws as before)
    lon = np.empty((g, size))
    lat = np.empty((g, size))
    for a in range(0, g, step):
        b = min(g, a + step)
        x, y = geo.points_in(rng, np.repeat(np.arange(a, b), size))
        lon[a:b], lat[a:b] = x.reshape(-1, size), y.reshape(-1, size)
    return lon, lat


def _unit_addresses(geo: Geo, grid: np.ndarray, unit_no: np.ndarray) -> np.ndarray:
    """A fixed address per unit: ``<town><one of its grid's three roads><n>号``."""
    roads = geo.roads
    road_of_grid = (np.arange(len(geo.codes))[:, None] * 7 + np.array([0, 17, 41])[None, :]) % len(roads)
    road = roads[road_of_grid[grid, unit_no % 3]]
    num = 1 + (unit_no * 7919) % 399
    return _join(geo.town_name[geo.town_i[grid]], road, num, "号")


def _bulk_inspections(rng, geo: Geo, pool, effects, days: np.ndarray, p_day: np.ndarray,
                      n_problems: int) -> Inspections:
    """Visits (one row per unit and day) finding exactly ``n_problems`` problems, plus the quiet ones."""
    zone_cov, zone_det, zone_int = effects[:3]
    probs = 1 + rng.poisson(EXTRA_PROBLEMS, int(n_problems / (1 + EXTRA_PROBLEMS) * 1.2) + 16)
    while probs.sum() < n_problems:
        probs = np.concatenate([probs, 1 + rng.poisson(EXTRA_PROBLEMS, 64)])
    cut = int(np.searchsorted(np.cumsum(probs), n_problems)) if n_problems else -1
    probs = probs[:cut + 1]
    if len(probs):
        probs[-1] -= int(probs.sum()) - n_problems  # stays >= 1
    n_quiet = int(round(len(probs) * QUIET_VISITS))
    g = len(geo.codes)
    w_cov = geo.registered * zone_cov[geo.zone_i]
    w_det = w_cov * zone_det[geo.zone_i] * zone_int[geo.zone_i]
    grid = np.concatenate([rng.choice(g, len(probs), p=w_det / w_det.sum()),
                           rng.choice(g, n_quiet, p=w_cov / w_cov.sum())])
    found = np.concatenate([probs, np.zeros(n_quiet, np.int64)])
    unit_no = 1 + (rng.random(len(grid)) * geo.registered[grid]).astype(np.int64)
    day_i = rng.choice(len(days), len(grid), p=p_day)
    # one row per unit and day: repeated draws merge (their problems add up), rows in (day, grid, unit) order
    key = (day_i * g + grid) * (int(geo.registered.max()) + 1) + unit_no
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    found = np.bincount(inv.ravel(), weights=found).astype(np.int64)
    grid, unit_no, day_i = grid[first], unit_no[first], day_i[first]
    spot = (unit_no * 2_654_435_761) % pool[0].shape[1]
    return Inspections(unit_grid=grid, unit_no=unit_no, unit_lon=pool[0][grid, spot], unit_lat=pool[1][grid, spot],
                       unit_addr=_unit_addresses(geo, grid, unit_no), visit_unit=np.arange(len(grid)),
                       visit_day=days[day_i], visit_problems=found)


def _bulk_reports(rng, geo: Geo, pool, n: int, days: np.ndarray, p_day: np.ndarray, mix_fn,
                  sources: dict) -> dict:
    """Non-patrol reports: grids by population (Zhili heavy), days as planned, places from the pool."""
    if n <= 0:
        return _base(0)
    w = geo.population * np.where(geo.town_abbr[geo.town_i] == "ZL", 1.6, 1.0)
    grid = rng.choice(len(w), size=n, p=w / w.sum())
    day = days[rng.choice(len(days), size=n, p=p_day)]
    rep = local_day_to_utc(day, sample_seconds(rng, n, _REPORT_HOURS))
    spot = rng.integers(0, pool[0].shape[1], n)
    return _base(n, grid_i=grid, category=mix_fn(grid, day), reported=rep, source=pick(rng, n, sources),
                 lon=pool[0][grid, spot], lat=pool[1][grid, spot], address=addresses(rng, geo, grid))


def bulk_chunk(seed: int, k: int, geo: Geo, pool, effects, plan: BulkPlan, now: np.datetime64) -> DemoData:
    """Chunk ``k`` of the plan (its own generator, seeded from ``seed`` and ``k``): inspections, patrol
    problems, disputes and other reports over the chunk's days, every case on a full lifecycle path, cut at
    ``now``. Rel ids from 0 like :func:`generate`."""
    a, b = plan.bounds[k]
    rng = np.random.default_rng([seed, 1905, k])
    days, per_day = plan.days[a:b], plan.per_day[a:b]
    n = int(per_day.sum())
    p_day = per_day / max(n, 1)
    n_patrol = int(round(n * PATROL_SHARE))
    n_disp = int(round((n - n_patrol) * DISPUTE_SHARE))
    ins = _bulk_inspections(rng, geo, pool, effects, days, p_day, n_patrol)
    parts = [patrol_incidents(rng, geo, ins, 0, False),
             _bulk_reports(rng, geo, pool, n_disp, days, p_day, dispute_mix(rng, geo),
                           {"app": 50, "citizen": 25, "hotline": 20, "department": 5}),
             _bulk_reports(rng, geo, pool, n - n_patrol - n_disp, days, p_day, other_mix(rng),
                           {"hotline": 45, "citizen": 25, "app": 20, "department": 10})]
    inc = concat([p for p in parts if len(p["grid_i"])])
    n = len(inc["grid_i"])
    assign_attributes(rng, geo, inc, effects[3], effects[4], calibrate=np.ones(n, bool))
    dur = step_durations(rng, inc)
    is_disp = np.char.startswith(inc["category"].astype(str), "dispute.")
    # a few cases take months (the rest of the span's resolution): never those reported near the span's end
    late = local_day_to_utc(plan.days[-1:], np.zeros(1, np.int64))[0] - np.timedelta64(150, "D")
    slow = (inc["level"] != "onsite") & ~is_disp & (inc["reported"] < late) & (rng.random(n) < LONG_RUNNING)
    for level, hs in HANDLING_STEP.items():
        m = slow & (inc["level"] == level)
        dur[m, hs] += rng.uniform(20, 150, int(m.sum())) * 24
    inc["longstanding"][slow & np.isin(inc["category"], LONGSTANDING_CATEGORIES)] = True
    times = event_times(inc["reported"], dur)
    future = times[:, 0] > now  # only when the span reaches today (no recent days)
    if future.any():
        inc["reported"][future] = _before(rng, now, int(future.sum()))
        times = event_times(inc["reported"], dur)
    outcome = np.where(is_disp, np.where(rng.random(n) < 0.01, "unresolved", "resolved"), None).astype(object)
    incidents, events = build_frames(rng, geo, inc, times, outcome, now)
    inspections = inspection_frame(geo, [ins])
    return DemoData(inspections=inspections, incidents=incidents, events=events, now=now,
                    stats={"incidents": len(incidents), "events": len(events), "inspections": len(inspections)})


# -------------------------------------------------------------------------------------------- store
class DemoDataPresent(RuntimeError):
    pass


def has_demo_data(engine) -> bool:
    """Any inspection, or any incident the generator wrote (``client_ref`` ``demo:…``)."""
    from dashboard.store.incidents import bulk_has_demo_rows

    return bulk_has_demo_rows(engine)


def wipe(engine) -> None:
    """Delete every incident, event and inspection (``--reset``)."""
    from dashboard.store.incidents import bulk_wipe

    bulk_wipe(engine)


@dataclass(frozen=True)
class _Ids:
    """Stored ids of a part's rel ids: ``base + rel``, plus ``shift`` from ``boundary`` on (the demo rows after
    the bulk years make room for them)."""

    base: int
    boundary: int | None = None
    shift: int = 0

    def __call__(self, rel) -> np.ndarray:
        rel = np.asarray(rel, dtype=np.int64)
        if self.boundary is None or not self.shift:
            return rel + self.base
        return rel + self.base + np.where(rel >= self.boundary, self.shift, 0)


@dataclass(frozen=True)
class _Numbering:
    """How a part's rel ids become stored ids: incidents, change sequence (an event's id is its sequence number
    + ``event_shift``), inspections; and which rows of the part to write (``rows``: slices of incidents, events
    and inspections; None: all)."""

    incident: _Ids
    seq: _Ids
    inspection: _Ids
    event_shift: int
    rows: tuple[slice, slice, slice] | None = None


def _part_columns(d: DemoData, num: _Numbering) -> list[tuple[str, dict]]:
    """The columns to store for (the selected rows of) part ``d``: ``[(table, {column: values})]`` in the order
    to write them (inspections, incidents, events)."""
    from dashboard.store.models import Incident

    s_inc, s_ev, s_ins = num.rows or (slice(None),) * 3
    ins = d.inspections.iloc[s_ins]
    rel_ins_rows = np.arange(len(d.inspections))[s_ins]
    out = [("inspections", {
        "id": num.inspection(rel_ins_rows), "unit_id": ins["unit_id"], "grid_code": ins["grid_code"],
        "zone_code": ins["zone_code"], "town_code": ins["town_code"],
        "inspected_on": ins["inspected_on"].to_numpy().astype("datetime64[D]"), "inspector": ins["inspector"],
        "problems_found": ins["problems_found"].to_numpy().astype(np.int64)})]

    inc = d.incidents.iloc[s_inc]
    last = num.seq(inc["seq_rel"].to_numpy())
    first = num.seq(inc["first_seq_rel"].to_numpy())
    reported = inc["reported_at"].to_numpy().astype("datetime64[s]")
    closed = inc["closed_at"].to_numpy().astype("datetime64[s]")
    day = np.strings.replace(np.datetime_as_string((reported + LOCAL_OFFSET).astype("datetime64[D]")), "-", "")
    code = np.strings.add(np.strings.add("WX", day), np.strings.add("-", np.strings.zfill(first.astype(str), 6)))
    story = inc["story"].to_numpy()
    rel_ins = inc["inspection_rel"].to_numpy()
    cols = {
        "id": num.incident(np.arange(len(d.incidents))[s_inc]), "code": code,
        "client_ref": np.where(story != "", "demo:" + story + ":" + code.astype(object), None),
        **{c: inc[c] for c in ("category", "subcategory", "severity", "source", "description", "address", "lon",
                               "lat", "grid_code", "zone_code", "town_code", "status", "level", "department",
                               "reporter", "reporter_phone", "outcome", "longstanding")},
        "inspection_id": np.where(rel_ins >= 0, num.inspection(np.maximum(rel_ins, 0)), np.nan),
        "reported_at": reported, "updated_at": inc["updated_at"].to_numpy(), "due_at": inc["due_at"].to_numpy(),
        "closed_at": closed, "seq": last,
    }
    if "close_lag" in Incident.__table__.c:  # the aggregates' index column: class of the time to close
        from dashboard.store import aggregates

        cols["close_lag"] = aggregates.close_lag_classes(pd.Series(reported.astype("datetime64[ns]")),
                                                         pd.Series(closed.astype("datetime64[ns]"))).to_numpy()
    out.append(("incidents", cols))

    ev = d.events.iloc[s_ev]
    ev_seq = num.seq(ev["seq_rel"].to_numpy())
    out.append(("incident_events", {
        "id": ev_seq + num.event_shift, "incident_id": num.incident(ev["incident_rel"].to_numpy()), "seq": ev_seq,
        **{c: ev[c] for c in ("at", "actor", "actor_role", "from_status", "to_status", "note", "department")}}))
    return out


def _put(session, d: DemoData, num: _Numbering) -> None:
    from dashboard.store.incidents import bulk_copy

    for table, cols in _part_columns(d, num):
        bulk_copy(session, table, cols)


def _bulk_numbering(start: dict, done: dict, event_shift: int) -> _Numbering:
    """Chunk numbering: right after the demo rows before the span (``start``) and the chunks already written."""
    return _Numbering(_Ids(start["incidents"] + done["incidents"]), _Ids(start["seq"] + done["events"]),
                      _Ids(start["inspections"] + done["inspections"]), event_shift)


def _bulk_worker(chunks, start: dict, event_shift: int, types: dict, queue) -> None:
    """Worker process (PostgreSQL): generate the bulk chunks and turn each into COPY payloads for the parent,
    which only streams them to the server — generation overlaps with the server's work on the previous chunk."""
    import traceback

    from dashboard.store.incidents import bulk_copy_payload

    try:
        done = {"incidents": 0, "events": 0, "inspections": 0}
        for part in chunks:
            payloads = [bulk_copy_payload(table, cols, types[table])
                        for table, cols in _part_columns(part, _bulk_numbering(start, done, event_shift))]
            counts = {k: len(getattr(part, k)) for k in done}
            queue.put(("part", payloads, counts))
            for k in done:
                done[k] += counts[k]
        queue.put(("done", None, None))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        queue.put(("error", traceback.format_exc(), None))


def _timed(it, note):
    """``it``, calling ``note(seconds)`` with the time each next item took."""
    it = iter(it)
    while True:
        t = time.perf_counter()
        item = next(it, None)
        note(time.perf_counter() - t)
        if item is None:
            return
        yield item


def _from_worker(chunks, start: dict, event_shift: int, types: dict):
    """Yield ``(payloads, counts)`` of each bulk chunk, made in a forked worker process (bounded queue)."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("fork")
    q = ctx.Queue(maxsize=2)
    proc = ctx.Process(target=_bulk_worker, args=(chunks, start, event_shift, types, q), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload, counts = q.get(timeout=5)
            except queue_mod.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the bulk worker died (exit code {proc.exitcode})") from None
                continue
            if kind == "error":
                raise RuntimeError(f"the bulk worker failed:\n{payload}")
            if kind == "done":
                return
            yield payload, counts
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()


def write(engine, data: DemoData, bar=None, bulk: Iterable[DemoData] = (), split=None, workers: bool = True,
          separate_aggregates: bool = False) -> dict:
    """Store the frames in ONE transaction with the store's bulk loader (:func:`dashboard.store.incidents.
    bulk_load`: COPY on PostgreSQL, indexes and constraints built once at the end), then rebuild the KPI
    aggregates. Returns counts, id bases and seconds.

    ``bulk``: chunks of the bulk years (:func:`bulk_chunk`, generated while writing — on PostgreSQL in a worker
    process when ``workers``), which take the ids and change sequence numbers between the demo rows before
    ``split`` (the span's first instant, UTC) and those after it: ids and the sequence follow report time across
    the whole history. ``separate_aggregates``: rebuild the aggregates in a process of its own, from the engine's
    URL (:func:`build_aggregates`)."""
    from dashboard.store import sequence
    from dashboard.store.incidents import bulk_copy_types, bulk_copy_write, bulk_id_bases, bulk_load

    t0 = time.perf_counter()
    inc, ev, ins = data.incidents, data.events, data.inspections
    if split is None:
        a_inc, a_ev, a_ins = len(inc), len(ev), len(ins)
    else:  # rel order = report order, seq order = time order, inspections: the 2019 rows, then the recent ones
        split = np.datetime64(split, "s")
        a_inc = int((inc["reported_at"].to_numpy() < split).sum())
        a_ev = int((ev["at"].to_numpy() < split).sum())
        a_ins = int((ins["inspected_on"].to_numpy() < (split + LOCAL_OFFSET).astype("datetime64[D]")).sum())
    # the rows before the split can go first when none of them refers past it (the usual case)
    early = bool((inc["seq_rel"].to_numpy()[:a_inc] < a_ev).all()
                 and (inc["inspection_rel"].to_numpy()[:a_inc] < a_ins).all())
    done = {"incidents": 0, "events": 0, "inspections": 0}
    bulk_s = {"generate": 0.0}
    with bulk_load(engine) as session:
        seq0 = sequence.allocate(session, 1)
        bases = bulk_id_bases(session)
        shift = bases["incident_events"] - seq0
        if early and split is not None:
            _put(session, data, _Numbering(_Ids(bases["incidents"]), _Ids(seq0), _Ids(bases["inspections"]), shift,
                                           (slice(0, a_inc), slice(0, a_ev), slice(0, a_ins))))
            if bar is not None:
                bar.update(a_inc)
        start = {"incidents": bases["incidents"] + a_inc, "seq": seq0 + a_ev,
                 "inspections": bases["inspections"] + a_ins}
        chunks = _timed(bulk, lambda s_: bulk_s.__setitem__("generate", bulk_s["generate"] + s_))
        if engine.dialect.name == "postgresql" and workers:
            waited = {"s": 0.0}
            for payloads, counts in _timed(_from_worker(chunks, start, shift, bulk_copy_types(session)),
                                           lambda s_: waited.__setitem__("s", waited["s"] + s_)):
                for payload in payloads:
                    bulk_copy_write(session, payload)
                for k in done:
                    done[k] += counts[k]
                if bar is not None:
                    bar.update(counts["incidents"])
            bulk_s["generate"] = None  # in the worker, overlapped with the writes
            bulk_s["waited_for_worker"] = waited["s"]
        else:
            for part in chunks:
                _put(session, part, _bulk_numbering(start, done, shift))
                for k in done:
                    done[k] += len(getattr(part, k))
                if bar is not None:
                    bar.update(len(part.incidents))
        rows = (slice(a_inc, None), slice(a_ev, None), slice(a_ins, None)) if early and split is not None else None
        _put(session, data, _Numbering(_Ids(bases["incidents"], a_inc, done["incidents"]),
                                       _Ids(seq0, a_ev, done["events"]),
                                       _Ids(bases["inspections"], a_ins, done["inspections"]), shift, rows))
        if bar is not None:
            bar.update(len(inc) - (a_inc if rows else 0))
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    aggregates = build_aggregates(engine, separate=separate_aggregates)
    t3 = time.perf_counter()
    return {"incident_id_base": bases["incidents"], "inspection_id_base": bases["inspections"], "seq_base": seq0,
            "incidents": len(inc) + done["incidents"], "events": len(ev) + done["events"],
            "inspections": len(ins) + done["inspections"], "bulk_incidents": done["incidents"],
            "bulk_generate_s": None if bulk_s["generate"] is None else round(bulk_s["generate"], 2),
            **({"bulk_waited_s": round(bulk_s["waited_for_worker"], 2)} if "waited_for_worker" in bulk_s else {}),
            "load_s": round(t1 - t0, 2), "indexes_s": round(t2 - t1, 2), "aggregates": aggregates,
            "aggregates_s": round(t3 - t2, 2)}


def build_aggregates(engine, separate: bool = False) -> dict | None:
    """Rebuild the KPI aggregates from the stored rows (a bulk load leaves them alone; the rebuild streams, so its
    memory does not grow with the store). ``separate``: in a fresh (spawned) process, whose memory holds nothing
    else. None while the store has no aggregates module (it is being added beside this loader)."""
    import importlib.util

    if importlib.util.find_spec("dashboard.store.aggregates") is None:
        return None
    if separate:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(1) as pool:
            return pool.apply(_rebuild_at, (engine.url.render_as_string(hide_password=False),))
    from dashboard.store import aggregates

    return aggregates.rebuild(engine)


def _rebuild_at(url: str) -> dict:
    """:func:`dashboard.store.aggregates.rebuild` of the store at ``url`` (in a process of its own)."""
    from dashboard.store import aggregates, make_engine

    engine = make_engine(url)
    try:
        return aggregates.rebuild(engine)
    finally:
        engine.dispose()


def proportional_scale(gd, scale: float = 1.0) -> float:
    """``scale`` for the district of ``gd``: the seed's figures in proportion to its registered units (exactly
    ``scale`` for the seed district, whose units are the figures' base)."""
    units = int(gd.grids["registered_units"].fillna(0).sum())
    return scale if units == SEED_REGISTERED_UNITS else scale * units / SEED_REGISTERED_UNITS


def run_history(url: str | None = None, *, seed: int = DemoConfig.seed, incidents: int | None = None,
                recent_days: int = 30, reset: bool = False, scale: float = 1.0, now: dt.datetime | None = None,
                geodata_dir=None, progress: bool = True, if_present: str = "refuse") -> dict:
    """Generate and store the demo history, then rebuild the KPI aggregates. ``if_present``: ``refuse``
    (raise) or ``skip`` (no-op). ``incidents`` beyond the calibrated demo go to the bulk years
    (:func:`bulk_plan`), generated chunk by chunk while they are written."""
    from tqdm import tqdm

    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings
    from dashboard.store import init_db, make_engine

    settings = Settings.from_env()
    url = url or settings.sqlalchemy_url
    engine = make_engine(url)
    try:
        init_db(engine)
        if has_demo_data(engine):
            if reset:
                wipe(engine)
            elif if_present == "skip":
                return {"skipped": True}
            else:
                raise DemoDataPresent(
                    f"the database {engine.url.render_as_string(hide_password=True)} already holds demo data "
                    "(inspections / demo incidents); use --reset to wipe it and generate again")
        gd = load_geodata(geodata_dir if geodata_dir is not None else settings.geodata_dir)
        t0 = time.perf_counter()
        cfg = DemoConfig(seed=seed, incidents=incidents, recent_days=recent_days, now=now,
                         scale=proportional_scale(gd, scale))
        stages = ["inspections", "incidents", "lifecycle", "2018", "recent", "frames", "done"]
        with tqdm(total=len(stages), desc="generate", unit="stage", disable=not progress, leave=False) as bar:
            data = generate(gd, cfg, progress=lambda s: (bar.set_postfix_str(s), bar.update(1)))
        extra = int(data.stats.get("bulk_incidents", 0))
        chunks, split = (), None
        if extra:
            geo = Geo(gd)
            plan = bulk_plan(extra, data.now, recent_days)
            pool = location_pool(seed, geo)
            effects = zone_effects(np.random.default_rng(seed), geo)
            chunks = (bulk_chunk(seed, k, geo, pool, effects, plan, data.now) for k in range(len(plan.bounds)))
            split = plan.start_utc
        t1 = time.perf_counter()
        with tqdm(total=len(data.incidents) + extra, desc="write", unit="incident", unit_scale=True,
                  disable=not progress) as bar:
            # with the bulk years the aggregates are rebuilt in a fresh process: this one holds the demo's frames
            out = write(engine, data, bar=bar, bulk=chunks, split=split,
                        separate_aggregates=bool(extra) and engine.url.database not in (None, "", ":memory:"))
        t2 = time.perf_counter()
        out.update({"generate_s": round(t1 - t0, 2), "write_s": round(t2 - t1 - out["aggregates_s"], 2),
                    "total_s": round(t2 - t0, 2), "url": engine.url.render_as_string(hide_password=True)})
        return out
    finally:
        engine.dispose()
