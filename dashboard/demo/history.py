"""Demo history (演示数据): calendar 2019 calibrated to the seed's district figures, plus the recent days up to now.

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

Nothing happens between local midnight and 08:00 (events then are moved into 08:00–08:30 by a monotone
map), so "calendar 2019" gives the same figures whether a caller cuts the year in UTC or in Asia/Shanghai.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import texts

log = logging.getLogger(__name__)

YEAR = 2019
LOCAL_OFFSET = np.timedelta64(8, "h")  # Asia/Shanghai, no DST
H = np.timedelta64(3600, "s")

# ----------------------------------------------------------------------------------------- targets
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

STATES_BY_LEVEL = {
    "onsite": ("reported", "onsite_handled", "verified", "closed"),
    "town": ("reported", "routed", "in_progress", "handled", "verified", "closed"),
    "district": ("reported", "routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed"),
}
MAX_EVENTS = 8
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
MONTH_FACTOR = np.array([0.0, 0.9, 0.8, 1.0, 1.0, 1.05, 1.1, 1.25, 1.25, 1.05, 1.0, 0.95, 0.95])
WEEKDAY_FACTOR = np.array([1.05, 1.0, 1.0, 1.0, 1.0, 0.6, 0.45])  # Mon..Sun


def day_weights(days: np.ndarray, town_abbr: str | None = None) -> np.ndarray:
    d = pd.DatetimeIndex(days.astype("datetime64[ns]"))
    w = MONTH_FACTOR[d.month] * WEEKDAY_FACTOR[d.weekday]
    for a, b, f in HOLIDAYS_2019:
        w = np.where((days >= np.datetime64(a)) & (days <= np.datetime64(b)), w * f, w)
    if town_abbr == "ZL":  # migrant workers go home around the Spring Festival
        w = np.where((days >= np.datetime64("2019-01-25")) & (days <= np.datetime64("2019-02-24")), w * 0.45, w)
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
    roads = np.array(texts.ROADS, dtype=object)
    road_of_grid = (np.arange(len(geo.codes))[:, None] * 7 + np.array([0, 17, 41])[None, :]) % len(roads)
    r = road_of_grid[grid_i, rng.integers(0, 3, size=len(grid_i))]
    num = rng.integers(1, 400, size=len(grid_i))
    town = geo.town_name[geo.town_i[grid_i]]
    return np.array([f"{t}{roads[k]}{m}号" for t, k, m in zip(town, r, num)], dtype=object)


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


def assign_attributes(rng, geo: Geo, inc: dict, zone_onsite: np.ndarray, zone_district: np.ndarray) -> None:
    """Subcategory, severity, level and department (vectorised, in place)."""
    from dashboard.store import catalogue

    n = len(inc["grid_i"])
    cat = inc["category"]
    sub = inc["subcategory"]
    sev = inc["severity"]
    for key in np.unique(cat):
        m = (cat == key) & (sub == "")
        c = catalogue.get(key)
        subs = SUBCATEGORY_WEIGHTS.get(key) or {s: 1.0 for s in c.subcategories}
        sub[m] = pick(rng, int(m.sum()), subs)
        m2 = (cat == key) & (sev == 0)
        off = rng.choice([-1, 0, 1, 2], size=int(m2.sum()), p=[0.35, 0.5, 0.13, 0.02])
        sev[m2] = np.clip(c.default_severity + off, 1, 4)
    free = inc["level"] == ""
    zi = geo.zone_i[inc["grid_i"]]
    base_on = np.array([ONSITE_BASE.get(c, 0.3) for c in cat])
    x = _logit(base_on) + zone_onsite[zi] - 0.8 * (sev >= 3)
    # shift so that the expected 2019 on-site share hits the target
    m19 = free & inc["is2019"]
    fixed_on = int(((inc["level"] == "onsite") & inc["is2019"]).sum())
    target = ONSITE_TARGET * int(inc["is2019"].sum()) - fixed_on
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _expit(x[m19] + mid).sum() > target:
            hi = mid
        else:
            lo = mid
    p_on = _expit(x + (lo + hi) / 2)
    u = rng.random(n)
    base_d = np.array([DISTRICT_BASE.get(c, 0.03) for c in cat])
    is_disp = np.char.startswith(cat.astype(str), "dispute.")
    q = np.clip(_expit(_logit(base_d) + zone_district[zi]) + np.where(is_disp, 0.0, 0.3) * (sev >= 3), 0, 0.95)
    level = np.where(u < p_on, "onsite", np.where(rng.random(n) < q, "district", "town")).astype(object)
    inc["level"][free] = level[free]
    dept = np.array([catalogue.get(c).department for c in cat], dtype=object)
    alt = rng.random(n) < 0.2
    for key, options in DEPARTMENT_ALTERNATIVES.items():
        m = alt & (cat == key)
        if m.any():
            dept[m] = np.array(options, dtype=object)[rng.integers(0, len(options), int(m.sum()))]
    need = (inc["level"] == "district") & np.array([d is None for d in inc["department"]])
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

    nz = len(geo.zone_codes)
    zabbr = np.array([geo.town_abbr[geo.town_i[np.nonzero(geo.zone_i == z)[0][0]]] for z in range(nz)])
    zl = zabbr == "ZL"
    zone_cov = np.clip(rng.normal(1.0, 0.22, nz) - 0.12 * zl, 0.45, 1.6)
    zone_det = np.clip(rng.normal(1.0, 0.2, nz) + 0.35 * zl, 0.5, 2.0)
    zone_int = np.clip(rng.normal(1.0, 0.25, nz) + 0.3 * zl, 0.4, 2.0)
    zone_onsite = rng.normal(0, 0.55, nz)
    zone_district = rng.normal(0, 0.35, nz)

    # the stories' places
    dc_grid, dc_point, dc_name = _daochang(geo)
    ct_grid = _chaoyin_grid(geo)

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
    sources_d = {"app": 50, "citizen": 25, "hotline": 20, "department": 5}
    sources_o = {"hotline": 45, "citizen": 25, "app": 20, "department": 10}
    parts.append(report_incidents(rng, geo, disputes_2019, days19, dispute_mix(rng, geo), sources_d, True, True))
    n_rd = int(round(disputes_2019 / 365 * RECENT_DISPUTE_FACTOR * len(recent_days)))
    parts.append(report_incidents(rng, geo, n_rd, recent_days, dispute_mix(rng, geo), sources_d, False, True))
    fixed = sum(len(p["grid_i"]) for p in parts) + 5 + 1  # + stories
    other19 = config.target(OTHER_2019_DEFAULT)
    other_r = int(round(other19 / 365 * len(recent_days) * 0.8))
    if config.incidents is not None:
        room = max(0, int(config.incidents) - fixed)
        base = other19 + other_r
        other19, other_r = (int(round(room * other19 / base)), room - int(round(room * other19 / base))) if base \
            else (room, 0)
    parts.append(report_incidents(rng, geo, other19, days19, other_mix(rng), sources_o, True, False))
    parts.append(report_incidents(rng, geo, other_r, recent_days, other_mix(rng), sources_o, False, False))
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
    # disputes closed in 2019: exactly DISPUTES_CLOSED
    closed_at = last_time(times)
    d19 = is19 & is_disp & ~protected
    target_c = config.target(DISPUTES_CLOSED)
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

    # dispute outcomes: exactly DISPUTES_RESOLVED among those closed in 2019
    outcome = np.full(n, None, dtype=object)
    outcome[is_disp] = "resolved"
    dc19 = np.nonzero(is19 & is_disp & (closed_at < end19))[0]
    n_unres = len(dc19) - config.target(DISPUTES_RESOLVED)
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
    ok = ~np.isnat(times) & (times <= now)
    ok[:, 0] = True
    n_ev = ok.sum(axis=1)
    # anything reported after now (clipped recent samples) is moved back before now
    status_idx = n_ev - 1

    # ---- incidents frame
    say("frames")
    cats = {k: catalogue.get(k) for k in np.unique(inc["category"])}
    deadline = np.array([cats[c].deadline_hours for c in inc["category"]]) * 3600
    path = np.empty((n, MAX_EVENTS), dtype=object)
    for level, states in STATES_BY_LEVEL.items():
        m = inc["level"] == level
        path[m, :len(states)] = states
    status = path[np.arange(n), status_idx]
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
    ev_k = np.concatenate([np.arange(c) for c in n_ev]) if n else np.array([], np.int64)
    ev_at = times[ev_inc, ev_k]
    ev_to = path[ev_inc, ev_k]
    ev_from = np.where(ev_k > 0, path[ev_inc, np.maximum(ev_k - 1, 0)], None)
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

    dept_name = np.array([DEPARTMENTS[d][0] if d in DEPARTMENTS else "" for d in dept], dtype=object)
    src = inc["source"]
    reporter = np.where(np.isin(src, ["patrol", "app"]), worker,
                        np.where(src == "hotline", "12345热线",
                                 np.where(src == "department", np.where(dept_name != "", dept_name, "区级部门"),
                                          np.array(["群众" + s for s in rng.choice(list("王李张刘陈杨黄赵吴周徐孙沈"),
                                                                                  n)], dtype=object))))
    phone = np.where(np.isin(src, ["citizen", "hotline"]),
                     np.array([f"1{a}{b:09d}" for a, b in zip(rng.choice([3, 5, 8], n),
                                                              rng.integers(0, 10**9, n))], dtype=object), None)

    e_inc = ev_inc
    e_lvl = inc["level"][e_inc]
    actor = np.empty(len(e_inc), dtype=object)
    role = np.empty(len(e_inc), dtype=object)
    e_dept = np.full(len(e_inc), None, dtype=object)
    s = ev_to
    w_ = worker[e_inc]
    for st, (a, r) in {
        "reported": (reporter[e_inc], np.where(np.isin(src[e_inc], ["patrol", "app"]), "grid_worker", "duty_officer")),
        "onsite_handled": (w_, "grid_worker"),
        "routed": (town_actor[e_inc], "town"),
        "escalated": (town_actor[e_inc], "town"),
        "assigned": (np.full(len(e_inc), "区信息中心", object), "district"),
        "in_progress": (np.where(e_lvl == "district", dept_name[e_inc], station[e_inc]),
                        np.where(e_lvl == "district", "department", "station")),
        "handled": (np.where(e_lvl == "district", dept_name[e_inc], station[e_inc]),
                    np.where(e_lvl == "district", "department", "station")),
        "verified": (w_, "grid_worker"),
        "closed": (np.where(e_lvl == "onsite", station[e_inc], np.where(e_lvl == "district", "区信息中心",
                                                                         town_actor[e_inc])),
                   np.where(e_lvl == "onsite", "station", np.where(e_lvl == "district", "district", "town"))),
    }.items():
        m = s == st
        actor[m] = a[m] if isinstance(a, np.ndarray) else a
        role[m] = r[m] if isinstance(r, np.ndarray) else r
    m = np.isin(s, ["assigned", "in_progress", "handled"]) & (e_lvl == "district")
    e_dept[m] = dept[e_inc[m]]
    note = np.empty(len(e_inc), dtype=object)
    for st, opts in texts.NOTES.items():
        m = s == st
        note[m] = np.array(opts, dtype=object)[rng.integers(0, len(opts), int(m.sum()))]
    rep_note = {"patrol": "网格员巡查发现并上报", "app": "通过掌上基层上报", "citizen": "群众反映，网格员核实后上报",
                "hotline": "12345热线转办", "department": "部门移送"}
    m = s == "reported"
    note[m] = np.array([rep_note.get(x, "上报") for x in src[e_inc[m]]], dtype=object)
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

    # ---- inspections frame (2019 then recent; rel id = row)
    ins_parts = [ins19] + ([ins_r] if ins_r is not None else [])
    rows = []
    for p in ins_parts:
        g = p.unit_grid[p.visit_unit]
        rows.append(pd.DataFrame({
            "unit_id": [f"{c}-U{u:04d}" for c, u in zip(geo.codes[g], p.unit_no[p.visit_unit])],
            "grid_code": geo.codes[g], "zone_code": geo.zone[g], "town_code": geo.town[g],
            "inspected_on": p.visit_day, "inspector": geo.worker[g], "problems_found": p.visit_problems,
        }))
    inspections = pd.concat(rows, ignore_index=True)
    say("done")
    return DemoData(inspections=inspections, incidents=incidents, events=events, now=now,
                    stats={"incidents": len(incidents), "events": len(events), "inspections": len(inspections)})


def describe(rng, inc: dict) -> np.ndarray:
    n = len(inc["grid_i"])
    out = np.empty(n, dtype=object)
    shops = np.array(texts.SHOPS, dtype=object)
    keys = np.array([f"{c}|{s}" for c, s in zip(inc["category"], inc["subcategory"])], dtype=object)
    nums = rng.integers(2, 30, n)
    ms = rng.integers(1, 20, n)
    shop = shops[rng.integers(0, len(shops), n)]
    pick_i = rng.integers(0, 1000, n)
    for key in np.unique(keys):
        cat, sub = key.split("|")
        tpl = texts.TEMPLATES.get((cat, sub)) or texts.TEMPLATES.get((cat, "*")) or ("{addr}发现问题，需处置",)
        for i in np.nonzero(keys == key)[0]:
            if inc["story"][i]:
                continue
            out[i] = tpl[pick_i[i] % len(tpl)].format(addr=inc["address"][i], shop=shop[i], n=nums[i], m=ms[i])
    story = inc["story"] != ""
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


# -------------------------------------------------------------------------------------------- store
class DemoDataPresent(RuntimeError):
    pass


def has_demo_data(engine) -> bool:
    from sqlalchemy import func, select

    from dashboard.store.models import Incident, Inspection

    with engine.connect() as conn:
        if conn.execute(select(Inspection.id).limit(1)).first() is not None:
            return True
        return bool(conn.execute(select(func.count()).select_from(Incident)
                                 .where(Incident.client_ref.like("demo:%"))).scalar_one())


def wipe(engine) -> None:
    """Delete every incident, event and inspection (``--reset``)."""
    from sqlalchemy import delete

    from dashboard.store.models import Incident, IncidentEvent, Inspection

    with engine.begin() as conn:
        conn.execute(delete(IncidentEvent))
        conn.execute(delete(Incident))
        conn.execute(delete(Inspection))


def _py_datetimes(a: np.ndarray) -> list:
    return [None if x is None else x for x in a.astype("datetime64[us]").astype(object)]


def _records(df: pd.DataFrame, cols: list[str]) -> list[dict]:
    """Plain-Python dicts (no numpy scalars, None for missing) for the bulk helpers."""
    values = []
    for c in cols:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            values.append(_py_datetimes(s.to_numpy()))
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype) or \
                pd.api.types.is_float_dtype(s.dtype):
            values.append(s.tolist())
        else:
            values.append([None if (v is None or (isinstance(v, float) and v != v)) else v for v in s.tolist()])
    return [dict(zip(cols, row)) for row in zip(*values)]


def write(engine, data: DemoData, chunk: int = 50_000, bar=None) -> dict:
    """Store the frames with the store's bulk helpers, in one transaction. Returns counts and id bases.

    On SQLite the store's ``bulk_load`` drops the secondary indexes for the load and rebuilds them after."""
    from contextlib import nullcontext

    from dashboard.store import incidents as store_incidents

    bulk_load = getattr(store_incidents, "bulk_load", None)
    with bulk_load(engine) if bulk_load is not None else nullcontext():
        return _write(engine, data, chunk, bar)


def _write(engine, data: DemoData, chunk: int, bar) -> dict:
    from sqlalchemy import func, select

    from dashboard.store import sequence, session_factory
    from dashboard.store.incidents import bulk_insert_events, bulk_insert_incidents, bulk_insert_inspections
    from dashboard.store.models import Incident, Inspection

    inc, ev, ins = data.incidents, data.events, data.inspections
    Session = session_factory(engine)
    with Session() as session:
        try:
            seq0 = sequence.allocate(session, len(ev))
            inc_base = int(session.execute(select(func.coalesce(func.max(Incident.id), 0))).scalar_one()) + 1
            ins_base = int(session.execute(select(func.coalesce(func.max(Inspection.id), 0))).scalar_one()) + 1

            ins_df = ins.copy()
            ins_df.insert(0, "id", np.arange(len(ins_df), dtype=np.int64) + ins_base)
            ins_df["inspected_on"] = pd.to_datetime(ins_df["inspected_on"]).dt.date
            icols = ["id", "unit_id", "grid_code", "zone_code", "town_code", "inspected_on", "inspector",
                     "problems_found"]
            for a in range(0, len(ins_df), chunk):
                part = ins_df.iloc[a:a + chunk]
                rows = [dict(zip(icols, r)) for r in zip(*(part[c].tolist() for c in icols))]
                bulk_insert_inspections(session, rows, commit=False)
                if bar is not None:
                    bar.update(len(part))

            d = inc.copy()
            d["id"] = d["rel"].to_numpy() + inc_base
            d["seq"] = d["seq_rel"].to_numpy() + seq0
            d["inspection_id"] = np.where(d["inspection_rel"].to_numpy() >= 0,
                                          d["inspection_rel"].to_numpy() + ins_base, -1)
            local_day = pd.to_datetime(d["reported_at"]) + pd.Timedelta(hours=8)
            first = d["first_seq_rel"].to_numpy() + seq0
            d["code"] = ["WX" + day + f"-{s:06d}" for day, s in zip(local_day.dt.strftime("%Y%m%d"), first)]
            d["client_ref"] = np.where(d["story"] != "", "demo:" + d["story"] + ":" + d["code"], None)
            cols = ["id", "code", "client_ref", "category", "subcategory", "severity", "source", "description",
                    "address", "lon", "lat", "grid_code", "zone_code", "town_code", "status", "level", "department",
                    "reporter", "reporter_phone", "inspection_id", "outcome", "longstanding", "reported_at",
                    "updated_at", "due_at", "closed_at", "seq"]
            for a in range(0, len(d), chunk):
                part = d.iloc[a:a + chunk]
                rows = _records(part, cols)
                for r in rows:
                    if r["inspection_id"] == -1:
                        r["inspection_id"] = None
                bulk_insert_incidents(session, rows, commit=False)
                if bar is not None:
                    bar.update(len(part))

            e = ev.copy()
            e["incident_id"] = e["incident_rel"].to_numpy() + inc_base
            e["seq"] = e["seq_rel"].to_numpy() + seq0
            ecols = ["incident_id", "seq", "at", "actor", "actor_role", "from_status", "to_status", "note",
                     "department"]
            for a in range(0, len(e), chunk):
                part = e.iloc[a:a + chunk]
                bulk_insert_events(session, _records(part, ecols), commit=False)
                if bar is not None:
                    bar.update(len(part))
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return {"incident_id_base": inc_base, "inspection_id_base": ins_base, "seq_base": seq0,
            "incidents": len(inc), "events": len(ev), "inspections": len(ins)}


def run_history(url: str | None = None, *, seed: int = DemoConfig.seed, incidents: int | None = None,
                recent_days: int = 30, reset: bool = False, scale: float = 1.0, now: dt.datetime | None = None,
                geodata_dir=None, progress: bool = True, if_present: str = "refuse") -> dict:
    """Generate and store the demo history. ``if_present``: ``refuse`` (raise) or ``skip`` (no-op)."""
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
        cfg = DemoConfig(seed=seed, incidents=incidents, recent_days=recent_days, now=now, scale=scale)
        stages = ["inspections", "incidents", "lifecycle", "recent", "frames", "done"]
        with tqdm(total=len(stages), desc="generate", unit="stage", disable=not progress, leave=False) as bar:
            data = generate(gd, cfg, progress=lambda s: (bar.set_postfix_str(s), bar.update(1)))
        t1 = time.perf_counter()
        total = len(data.incidents) + len(data.events) + len(data.inspections)
        with tqdm(total=total, desc="write", unit="row", unit_scale=True, disable=not progress) as bar:
            out = write(engine, data, bar=bar)
        t2 = time.perf_counter()
        out.update({"generate_s": round(t1 - t0, 2), "write_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
                    "url": engine.url.render_as_string(hide_password=True)})
        return out
    finally:
        engine.dispose()
