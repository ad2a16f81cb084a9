"""Cached aggregations behind the drill-down (cards, rankings, charts, profiles, the morning briefing).

Every number here comes from :mod:`dashboard.metrics.kpis` (the one source of truth); this module only
decides *what* to compute once and keep, and *how to cut* it per unit:

- :func:`kpi_bundle` — for one period: ``kpis.all_kpis`` for the district and ``kpis.kpis_by`` for every
  town, zone and grid, plus per-grid "cubes" of incidents reported in the period (by category, by level
  reached, new/closed per local day) and the escalated cases (for ``kpis.department_workload``). A unit's
  cards, ranking and breakdowns are then cuts of this bundle (sums of per-grid counts), which takes a few
  milliseconds. The bundle is stored in the shared cache (file system or Redis) keyed by the period and a
  data version (see :func:`data_version`), so several workers and viewers share one computation.
- :func:`lifecycle` — funnel and median time per stage (``kpis.funnel`` / ``kpis.stage_times``) per unit, cached
  per unit (events are the heavy part; the page loads this panel in its own callback).

Functions take the database ``bind``, the geodata bundle and a cache explicitly (tests pass their own);
``cache`` may be ``None`` (compute every time). No module-level mutable state: derived geodata lookups are
memoised per geodata object, like the geodata itself.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

from ..store import aggregates as agg
from ..store import frames
from . import kpis, periods, registry, rollup

# Every level a geodata set can have, the root first. One county's set has district (its root) → town → zone →
# grid; a city's set puts its counties between (district = the city); a province's its cities and counties.
LEVELS = ("district", "city", "county", "town", "zone", "grid")
SINGLE_LEVELS = ("district", "town", "zone", "grid")
ABOVE_TOWN = ("city", "county")  # levels read as the sum of their towns (the store keeps rows per town, not above)
UNIT_COLUMN = {"city": "city_code", "county": "county_code", "town": "town_code", "zone": "zone_code",
               "grid": "code"}  # the column of Hierarchy.grids naming each grid's unit at a level
BUNDLE_SCHEMA = "v7"  # v7: a level's rows are rollup.UnitRows (columns), not a dict of dicts
PAST_TIMEOUT = 6 * 3600  # seconds: a period that has ended changes only by corrections
CURRENT_BUCKET_S = 60  # a current period is recomputed at most once a minute (fresh within a minute)
CARD_KPIS = registry.shown_in("cards")  # what the cards show, in order
GRID_MEDIAN_KPIS = ("median_hours_to_close", "dispute_median_hours")  # a bundle's grid rows leave them out (None)
LOWER_IS_BETTER = registry.LOWER_IS_BETTER


# ----------------------------------------------------------------------------------------- hierarchy
KIND_EN = {"区": "District", "县": "County", "市": "City", "省": "Province"}  # a county-level unit's kind by its name's last character


@dataclass(frozen=True)
class Root:
    """The root unit (the county-level unit the app serves): code and names from ``district.geojson``."""

    code: str
    name: str  # 德清县
    name_en: str | None  # the geodata's English name (``Deqing``), None when it has none

    @property
    def kind(self) -> str:
        """区 / 县 / 市: the last character of its name (区 when it is none of them)."""
        return self.name[-1:] if self.name[-1:] in KIND_EN else "区"

    @property
    def kind_en(self) -> str:
        return KIND_EN[self.kind]

    @property
    def short_en(self) -> str:
        """The English name of the unit in lists and names tables: the geodata's, else ``County 330521``
        (a pinyin-free fallback)."""
        return self.name_en or f"{self.kind_en} {self.code}"

    def title(self, lang: str = "zh") -> str:
        """Its full name in titles: ``德清县`` / ``Deqing County`` (name_en ``Deqing``); ``County 330521`` without one."""
        if lang != "en":
            return self.name
        if not self.name_en:
            return self.short_en
        return self.name_en if self.name_en.endswith(self.kind_en) else f"{self.name_en} {self.kind_en}"


@dataclass(frozen=True)
class Hierarchy:
    """Names, parents, children and bounds of every unit (from the geodata; immutable)."""

    root: Root  # the root unit (level "district": a county, or the city or province of a multi-county set)
    names: dict  # (level, code) -> (zh, en)
    parent: dict  # (level, code) -> code of the parent unit
    children: dict  # (level, code) -> tuple of child codes (sorted)
    grids_of: dict  # (level, code) -> tuple of grid codes
    bounds: dict  # (level, code) -> [[south, west], [north, east]]
    grids: pd.DataFrame  # code, zone_code, town_code, county_code, city_code, registered_units, worker fields
    levels: tuple = SINGLE_LEVELS  # the levels of this set, root first (see LEVELS)
    town_up: dict = field(default_factory=dict)  # {level above the towns: {town code: that level's code}}

    @property
    def multi(self) -> bool:
        """Several counties: the root is a city or the province."""
        return "county" in self.levels

    def child_level(self, level: str) -> str | None:
        i = self.levels.index(level)
        return self.levels[i + 1] if i + 1 < len(self.levels) else None

    def parent_level(self, level: str) -> str | None:
        i = self.levels.index(level)
        return self.levels[i - 1] if i > 0 else None

    def exists(self, level: str, code: str | None) -> bool:
        if level == "district":
            return True
        return level in self.levels and (level, code) in self.names

    def key(self, level: str, code: str | None) -> tuple[str, str | None]:
        """(level, code) with the district's code filled in."""
        return level, (code if level != "district" else self.root.code)

    def name(self, level: str, code: str | None, lang: str = "zh") -> str:
        zh, en = self.names.get(self.key(level, code), (code or "", code or ""))
        return en if lang == "en" and en else zh

    def chain(self, level: str, code: str | None) -> list[tuple[str, str]]:
        """[(level, code)] from the district down to the unit."""
        out = []
        lv, c = self.key(level, code)
        while lv is not None:
            out.append((lv, c))
            if lv == "district":
                break
            c = self.parent[(lv, c)]
            lv = self.parent_level(lv)
        return out[::-1]

    def ancestor(self, level: str, code: str | None, above: str) -> str | None:
        """The code of the unit at level ``above`` that holds (level, code) (None when ``above`` is not above it)."""
        for lv, c in self.chain(level, code):
            if lv == above:
                return c
        return None

    def kids(self, level: str, code: str | None) -> tuple[str, ...]:
        return self.children.get(self.key(level, code), ())

    @cached_property
    def grid_pos(self) -> dict:  # code -> row of ``grids`` (built on first use; the hierarchy is memoised)
        return {c: i for i, c in enumerate(self.grids["code"].tolist())}

    def grid_row(self, code: str) -> dict:
        """One grid's row of ``grids`` without its code, as ``grids.set_index("code").loc[code]`` gives it — found
        by position (a set_index of a province's 67,000 rows costs several ms); KeyError for an unknown code."""
        row = self.grids.iloc[self.grid_pos[code]].to_dict()
        row.pop("code", None)
        return row

    def unit_grids(self, level: str, code: str | None) -> pd.DataFrame:
        """The rows of ``grids`` under a unit, in their order (``grids[grids[unit column] == code]``), found by
        position from ``grids_of``; every grid for the root."""
        if level == "district":
            return self.grids
        return self.grids.iloc[sorted(self.grid_pos[c] for c in self.grids_of.get((level, code), ()))]

    def codes(self, level: str) -> list[str]:
        """Every unit of ``level`` (sorted); the district's one code."""
        if level == "district":
            return [self.root.code]
        return sorted(c for (lv, c) in self.names if lv == level)

    def towns_of(self, level: str, code: str | None) -> tuple[str, ...]:
        """The towns of a unit above them (a county or a city): the store's rows those levels are read as (none for
        a level the set has not or a code it does not know)."""
        up = self.town_up.get(level, {})
        return tuple(sorted(t for t, c in up.items() if c == code))


def _bounds(geom) -> list:
    minx, miny, maxx, maxy = geom.bounds
    return [[round(miny, 6), round(minx, 6)], [round(maxy, 6), round(maxx, 6)]]


def _name_en(v) -> str | None:
    return str(v) if isinstance(v, str) and v.strip() else None


def _layer_bounds(layer) -> list:
    """:func:`_bounds` of every geometry of a layer, from one vectorised call (Python's ``round`` on each value, as for
    one geometry)."""
    b = layer.geometry.bounds
    return [[[round(s, 6), round(w, 6)], [round(n, 6), round(e, 6)]]
            for w, s, e, n in zip(b["minx"].tolist(), b["miny"].tolist(), b["maxx"].tolist(), b["maxy"].tolist())]


def _column(layer, name: str) -> list:
    """A column's values (None for every row when the layer has no such column)."""
    return layer[name].tolist() if name in layer.columns else [None] * len(layer)


def _sorted_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of a column with the uniques in the order of ``sorted`` (missing values: code -1)."""
    return pd.factorize(np.asarray(values.tolist(), dtype=object), sort=True)


def _grouped(keys: tuple, values: tuple, distinct: bool) -> tuple[list, list]:
    """(the distinct keys sorted, each one's values as a sorted tuple — their distinct values if ``distinct``) of two
    columns given as :func:`_sorted_codes`, without a Python loop per group: the pairs sorted by key and value codes
    and cut where the key changes. Missing keys are left out, as ``groupby`` does."""
    (kc, ku), (vc, vu) = keys, values
    ok = (kc >= 0) & (vc >= 0)
    kc, vc = kc[ok], vc[ok]
    order = np.lexsort((vc, kc))
    kc, vc = kc[order], vc[order]
    if distinct and len(kc):
        keep = np.r_[True, (kc[1:] != kc[:-1]) | (vc[1:] != vc[:-1])]
        kc, vc = kc[keep], vc[keep]
    if not len(kc):
        return [], []
    starts = np.r_[0, np.flatnonzero(kc[1:] != kc[:-1]) + 1].tolist()
    vals = np.asarray(vu, dtype=object)[vc].tolist()
    groups = [tuple(vals[a:b]) for a, b in zip(starts, [*starts[1:], len(vals)])]
    return np.asarray(ku, dtype=object)[kc[starts]].tolist(), groups


@lru_cache(maxsize=8)
def hierarchy(gd) -> Hierarchy:
    """Derived lookups of one geodata bundle (memoised per geodata object, which is itself memoised), built column by
    column (a province's 67,000 grids: one vectorised bounds call per layer, no Python loop per row or group).

    A multi-county set (``gd.counties``) has its counties under the root — under their cities when the root is
    the province (more than one city) — and the towns under their counties."""
    names, parent, children, grids_of, bounds = {}, {}, {}, {}, {}
    d = gd.district.iloc[0]
    root = Root(code=str(d["code"]), name=str(d["name"]), name_en=_name_en(d.get("name_en")))
    root_code = root.code
    names[("district", root_code)] = (root.name, root.short_en)
    bounds[("district", root_code)] = _bounds(gd.district.geometry.union_all())
    counties = getattr(gd, "counties", None)
    cities = getattr(gd, "cities", None)
    levels = SINGLE_LEVELS
    county_of_town: dict = {}

    def add(level, layer, en, up) -> None:
        keys = [(level, c) for c in layer["code"].tolist()]
        names.update(zip(keys, zip(layer["name"].tolist(), en)))
        parent.update(zip(keys, up))
        bounds.update(zip(keys, _layer_bounds(layer)))

    def en_or_name(layer) -> list:  # the English name, else the Chinese (a blank or missing one counts as none)
        return [_name_en(e) or n for e, n in zip(_column(layer, "name_en"), layer["name"].tolist())]

    if counties is not None:
        with_cities = cities is not None and len(cities) > 1
        levels = ("district", *(("city",) if with_cities else ()), "county", "town", "zone", "grid")
        if with_cities:
            add("city", cities, en_or_name(cities), [root_code] * len(cities))
        add("county", counties, en_or_name(counties),
            counties["city_code"].tolist() if with_cities else [root_code] * len(counties))
        county_of_town = dict(zip(gd.towns["code"], gd.towns["district_code"].astype(str)))
    t = gd.towns
    add("town", t, t["name_en"].tolist(), [county_of_town.get(c, root_code) for c in t["code"].tolist()])
    add("zone", gd.zones, gd.zones["name_en"].tolist(), gd.zones["town_code"].tolist())
    g = gd.grids
    add("grid", g, [e or n for e, n in zip(_column(g, "name_en"), g["name"].tolist())], g["zone_code"].tolist())
    grids = pd.DataFrame(gd.grids.drop(columns="geometry"))
    town_of_grid = grids["town_code"].astype(str)
    grids["county_code"] = town_of_grid.map(county_of_town) if county_of_town else root_code
    grids["city_code"] = (grids["county_code"].map({c: p for (lv, c), p in parent.items() if lv == "county"})
                          if "city" in levels else root_code)
    coded = {lv: _sorted_codes(grids[UNIT_COLUMN[lv]]) for lv in levels[1:]}  # each column sorted once
    for level in levels[1:]:  # children of each unit, and the grids under it
        up = levels[levels.index(level) - 1]
        if up == "district":
            children[("district", root_code)] = tuple(sorted(set(grids[UNIT_COLUMN[level]].tolist())))
        else:
            ups, kids = _grouped(coded[up], coded[level], distinct=True)
            children.update(zip(((up, c) for c in ups), kids))
        if level == "grid":
            continue
        units, under = _grouped(coded[level], coded["grid"], distinct=False)
        grids_of.update(zip(((level, c) for c in units), under))
    grid_codes = grids["code"].tolist()
    grids_of[("district", root_code)] = tuple(sorted(grid_codes))
    grids_of.update({("grid", c): (c,) for c in grid_codes})
    town_codes = grids["town_code"].tolist()
    town_up = {lv: dict(zip(town_codes, grids[UNIT_COLUMN[lv]].tolist())) for lv in ABOVE_TOWN if lv in levels}
    return Hierarchy(root, names, parent, children, grids_of, bounds, grids, levels, town_up)


def normalise_view(h: Hierarchy, level: str | None, code: str | None) -> tuple[str, str | None]:
    """A valid (level, code): unknown levels or codes fall back to the district."""
    if level not in h.levels or level == "district" or not h.exists(level, code):
        return "district", None
    return level, code


# -------------------------------------------------------------------------------------------- cache
def _cached(cache, key: str, timeout: int, build, keep: bool = False):
    """From the shared cache, or built once per process however many viewers ask at once (``cache.remember``);
    ``keep``: also kept in the process, the last few (a bundle: its key names its content)."""
    from ..cache import remember

    return remember(cache, key, timeout, build, keep)


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.timezone.utc))


def _as_utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def is_current(period: periods.Period, now) -> bool:
    return _as_utc(period.end) > _as_utc(now)


def moment(period: periods.Period, now) -> pd.Timestamp:
    """The moment "open" and "overdue" are measured at: the period's end, or now if the period has not ended —
    rounded up to the second (a whole second keys the cache; rounding down would leave out a report stored earlier
    in the same second, and a figure computed right after it would stay short until the next change)."""
    end, now = _as_utc(period.end), _as_utc(now)
    if end <= now:
        return end
    return min(now.ceil("s"), end)


def data_version(bind) -> str:
    """The store's change sequence and last inspection: every cached figure is keyed by it (exact)."""
    return agg.version(bind)


def _key(*parts) -> str:
    raw = "|".join(str(p) for p in parts)
    return "wx:views:" + hashlib.sha1(raw.encode()).hexdigest()[:24]


def _plain(v):
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    return v


def day_span(period: periods.Period) -> agg.DaySpan:
    """The local days of a period (its bounds are local midnights)."""
    first = kpis._local_day(period.start).normalize()
    last = kpis._local_day(period.end).normalize() - pd.Timedelta(days=1)
    return agg.DaySpan(first.date(), last.date())


def _utc_dt(ts) -> dt.datetime:
    return _as_utc(ts).to_pydatetime()


def _store_code(level: str, code: str | None) -> str:
    return agg.DISTRICT if level == "district" else code


def store_unit(level: str, code: str | None, h: Hierarchy | None = None) -> tuple[str, object]:
    """The store's rows of a unit: (lvl, code) — a county or city as its towns, ("town", (codes…)), whose rows
    the store's readers sum (``h`` is needed for those)."""
    if level in ABOVE_TOWN:
        if h is None:
            raise ValueError(f"a {level} is read as its towns: pass the hierarchy")
        return "town", h.towns_of(level, code)
    return level, _store_code(level, code)


@lru_cache(maxsize=8)
def unit_index(gd) -> rollup.UnitIndex:
    """Where each unit of the geodata's hierarchy sits in a bundle's table (``rollup.UnitIndex``; memoised per
    geodata object): rows for the district ('*'), then every level's units in code order; the towns' counties and
    cities; each grid's unit at every level; the registered units."""
    h = hierarchy(gd)
    keys = [("district", agg.DISTRICT)] + [(lv, c) for lv in h.levels[1:] for c in h.codes(lv)]
    row = {k: i for i, k in enumerate(keys)}
    ups = [lv for lv in ABOVE_TOWN if lv in h.town_up]
    lift = np.full((len(keys), len(ups)), -1, dtype=np.int64)
    for j, lv in enumerate(ups):
        for town, up in h.town_up[lv].items():
            t, u = row.get(("town", town)), row.get((lv, up))
            if t is not None and u is not None:
                lift[t, j] = u
    g = h.grids
    grid_units = np.array([[row.get((lv, c), -1) for c in g[UNIT_COLUMN[lv]].tolist()] for lv in h.levels[1:]],
                          dtype=np.int64).T.reshape(len(g), len(h.levels) - 1)
    units = g["registered_units"].to_numpy().astype(np.int64)
    registered = np.zeros(len(keys), dtype=np.int64)
    registered[0] = units.sum()
    at = grid_units.ravel()
    ok = at >= 0
    np.add.at(registered, at[ok], np.repeat(units, grid_units.shape[1])[ok])
    return rollup.UnitIndex(keys=keys, row=row, lift=lift, grid_row={c: i for i, c in enumerate(g["code"].tolist())},
                            grid_units=grid_units, registered=registered)


# ------------------------------------------------------------------------------------------- bundle
def bundle_key(bind, period: periods.Period, now=None) -> tuple[str, str, pd.Timestamp, bool]:
    """(cache key, version, moment, current) of ``period``'s bundle at ``now``: a past period's by the store's
    version, a current one's by what its moment flags depend on (``agg.version_at``: the same figures until a write
    or the next report / due time after the moment) — what a figure derived from the bundle alone is cached by."""
    now = now_utc() if now is None else _as_utc(now)
    at = moment(period, now)
    current = is_current(period, now)
    if current:
        version = agg.version_at(bind, _utc_dt(at))
        return _key(BUNDLE_SCHEMA, "bundle", period.start, period.end, "live", version), version, at, True
    version = data_version(bind)
    return _key(BUNDLE_SCHEMA, "bundle", period.start, period.end, at, version), version, at, False


def kpi_bundle(bind, gd, cache, period: periods.Period, now=None, grid_medians=None) -> dict:
    """Every unit's KPIs for ``period`` (district, towns, zones, grids), the level-reached counts and the
    department workload of the district, towns and zones — read from the store's aggregates (see
    :mod:`dashboard.metrics.rollup`), cached by the period, the moment and the store's change sequence.

    Grid medians (time to close, time to resolve a dispute) are left out (None) unless ``grid_medians`` asks: ``"all"``, or a view
    ``(level, code)`` — then the grids of that zone (or of the grid's zone), the ones its ranking shows."""
    key, version, at, current = bundle_key(bind, period, now)

    def build():
        rows = agg.bundle_rows(bind, day_span(period), _utc_dt(at), _utc_dt(period.start), _utc_dt(period.end))
        table, levels = rollup.bundle_table(rows, unit_index(gd), hierarchy(gd).root.code)
        return {"kpis": table, "levels": levels, "at": str(at), "version": version}

    timeout = PAST_TIMEOUT if not current else 120
    # "at": this request's moment — a current bundle built at an earlier second of the same key has its figures
    bundle = {**_cached(cache, key, timeout, build, keep=True), "at": str(at), "key": key, "timeout": timeout}
    if grid_medians is None:
        return bundle
    if grid_medians == "all":
        codes = None
    else:  # a view (level, code): the grids a zone or grid view ranks
        level, code = grid_medians
        zone = code if level == "zone" else (hierarchy(gd).parent.get(("grid", code)) if level == "grid" else None)
        if zone is None:
            return bundle
        codes = hierarchy(gd).kids("zone", zone)
    return with_grid_medians(bind, cache, bundle, period, codes)


# --------------------------------------------------------------------------------------- unit cuts
def unit_values(bind, gd, cache, period: periods.Period, level: str, code: str | None, now=None) -> dict:
    """One unit's KPIs of ``period`` alone — what a comparison shows (last year's, beside the cards): the bundle's row,
    and for a grid its own medians (that one grid's histograms read, not those of the zone's grids a view ranks)."""
    bundle = kpi_bundle(bind, gd, cache, period, now=now)
    if level == "grid":
        bundle = with_grid_medians(bind, cache, bundle, period, [code])
    return unit_kpis(bundle, level, code)


def _district_row(bundle: dict) -> dict:
    """The district's KPIs of a bundle (its one row, keyed by the root unit's code)."""
    return next(iter(bundle["kpis"]["district"].values()), None) or {}


def unit_kpis(bundle: dict, level: str, code: str | None) -> dict:
    if level == "district":
        return dict(_district_row(bundle))
    return dict(bundle["kpis"][level].get(code) or {})


def comparable(values: dict) -> dict:
    """A unit's KPIs of a comparison period with "no data" as None: a period without inspections has no
    coverage to compare with (0 % would only mean "not recorded"), one without incidents no incident counts."""
    out = dict(values)
    if not out.get("units_inspected"):
        for k in ("inspection_coverage", "units_inspected", "units_with_problems", "problems_found", "detection_rate"):
            out[k] = None
    if not out.get("new_incidents") and not out.get("open_incidents"):
        for k, (_, _, kind) in kpis.KPIS.items():
            if k not in ("registered_units",) and k in out and k not in (
                    "inspection_coverage", "units_inspected", "units_with_problems", "problems_found",
                    "detection_rate"):
                out[k] = None
    return out


def children_rows(bundle: dict, h: Hierarchy, level: str, code: str | None) -> tuple[str | None, list]:
    """(child level, [(code, kpis)]) — for a grid, its sibling grids (the ranking then marks the grid)."""
    if level == "grid":
        zone = h.parent[("grid", code)]
        return "grid", [(c, bundle["kpis"]["grid"].get(c, {})) for c in h.kids("zone", zone)]
    child = h.child_level(level)
    return child, [(c, bundle["kpis"][child].get(c, {})) for c in h.kids(level, code)]


def level_average(bundle: dict, level: str, kpi: str) -> float | None:
    """The district's mark on a ranking of ``level`` units: the district rate (rates, hours) or the mean per
    unit of that level (counts)."""
    kind = kpis.KPIS[kpi][2]
    district = _district_row(bundle).get(kpi)
    if kind != "count":
        return district
    n = len(bundle["kpis"].get(level, {})) or 1
    return None if district is None else district / n


def rank_in_district(bundle: dict, level: str, code: str, kpi: str) -> tuple[int | None, int]:
    """1-based rank of the unit among all units of its level (best first) and the number ranked."""
    rows = bundle["kpis"].get(level)
    if rows is None:
        return None, 0
    rank, ranked = rollup.rank_of(rows, code, kpi, lower_is_better=kpi in LOWER_IS_BETTER)
    return rank, (ranked or len(rows))


def category_counts(bind, period: periods.Period, level: str, code: str | None, h: Hierarchy | None = None
                    ) -> pd.DataFrame:
    """Cases reported in the period per category for the unit (same as ``kpis.category_breakdown``)."""
    d = agg.read_category(bind, day_span(period), *store_unit(level, code, h))
    d = d[d["n"] > 0].sort_values(["n", "category"], ascending=[False, True], kind="stable")
    total = int(d["n"].sum())
    return pd.DataFrame({"category": d["category"].astype(str).to_numpy(), "count": d["n"].astype(int).to_numpy(),
                         "share": [kpis._rate(c, total) for c in d["n"].to_numpy()]})


def level_counts(bundle: dict, h: Hierarchy, level: str, code: str | None) -> pd.DataFrame:
    """Cases reported in the period by level reached (same as ``kpis.level_share``)."""
    counts = np.array(bundle.get("levels", {}).get(h.key(level, code), (0, 0, 0)), dtype=int)
    total = int(counts.sum())
    return pd.DataFrame({"level": list(kpis.LEVELS), "count": counts.astype(int),
                         "share": [kpis._rate(c, total) for c in counts]})


def trend_series(bind, period: periods.Period, level: str, code: str | None, freq: str = "D",
                 h: Hierarchy | None = None) -> pd.DataFrame:
    """New and closed per local day / week / month (same as ``kpis.trend``, without empty buckets)."""
    d = agg.read_daily(bind, day_span(period), *store_unit(level, code, h))
    d = pd.DataFrame({"day": pd.to_datetime(d["day"]), "new": d["r_new"].astype(int),
                      "closed": d["c_closed"].astype(int)})
    if freq in ("W", "M"):
        d["period"] = d["day"].dt.to_period(freq).dt.start_time  # weeks start on Monday, as in kpis.trend
        d = d.groupby("period", as_index=False)[["new", "closed"]].sum()
    else:
        d = d.rename(columns={"day": "period"})
    d = d[(d["new"] > 0) | (d["closed"] > 0)].reset_index(drop=True)
    return d.astype({"new": int, "closed": int})


def department_table(bundle: dict, level: str, code: str | None, period: periods.Period = None, bind=None,
                     cache=None, h: Hierarchy | None = None) -> list[dict]:
    """``kpis.department_workload`` of the unit's escalated cases, read when a view shows it (one unit's rows of
    the aggregates and its open cases), cached with the bundle. A county or city is its towns' rows together."""
    lvl, c = ("district", agg.DISTRICT) if level == "district" else (level, code)
    at = pd.Timestamp(bundle["at"])

    def build():
        s_lvl, s_code = store_unit(lvl, c, h)
        x = agg.dept_inputs(bind, day_span(period), s_lvl, s_code, _utc_dt(at), _utc_dt(period.end))
        if lvl in ABOVE_TOWN:  # the towns' rows as the one unit's
            x = {"dept": x["dept"].assign(lvl=lvl, code=c), "dept_hist": x["dept_hist"].assign(lvl=lvl, code=c),
                 "open_set": x["open_set"].assign(**{rollup.LEVEL_COLUMN[lvl]: c})}
            x["dept"] = x["dept"].groupby(["lvl", "code", "department"], as_index=False)[
                ["assigned", "closed", "late"]].sum()
            x["dept_hist"] = x["dept_hist"].astype({"key2": object}).groupby(
                ["lvl", "code", "key2", "bin"], as_index=False)[["n", "hsum"]].sum()
        rows = rollup.department_rows(x["dept"], x["open_set"], x["dept_hist"], period.start, period.end, at,
                                      [(lvl, c)])
        return [{k: _plain(v) for k, v in r.items()} for r in rows[(lvl, c)]]

    return _cached(cache, bundle["key"] + f":dept:{lvl}:{c}", bundle.get("timeout", 120), build)


def with_grid_medians(bind, cache, bundle: dict, period: periods.Period, codes=None) -> dict:
    """The bundle with the median time to close and to resolve a dispute of ``codes`` (default: every grid)
    filled in. A bundle leaves grid medians out (None): they are read from as many histogram values as the period
    has closes, so only the views that show them (a zone's grid ranking, the grid layer coloured by it, a grid's
    cards) ask."""
    grid_rows = bundle["kpis"]["grid"]
    codes = sorted(grid_rows) if codes is None else [c for c in codes if c in grid_rows]
    if not codes:
        return bundle

    # every grid, or so many that they are read as every grid (a statement binds at most 65,535 parameters on
    # PostgreSQL): the medians of a few grids more than asked for are harmless
    every = len(codes) == len(grid_rows) or len(codes) > 20_000

    def build():
        x = agg.grid_hists(bind, day_span(period), None if every else codes)
        return {kpi: {c: kpis._none_if_nan(v) for (_, c, _k2), v in rollup.hist_medians(x[kind]).items()}
                for kpi, kind in zip(GRID_MEDIAN_KPIS, ("close", "dispute"))}

    key = bundle["key"] + ":gmed2:" + hashlib.sha1(",".join(codes).encode()).hexdigest()[:16]
    med = _cached(cache, key, bundle.get("timeout", 120), build)
    grids = grid_rows.with_values({kpi: {c: m.get(c) for c in codes} for kpi, m in med.items()})
    return {**bundle, "kpis": {**bundle["kpis"], "grid": grids}}


def auto_freq(period: periods.Period) -> str:
    days = (period.end - period.start).days
    return "D" if days <= 62 else ("W" if days <= 200 else "M")


# ---------------------------------------------------------------------------------------- lifecycle
def lifecycle(bind, gd, cache, period: periods.Period, level: str, code: str | None, now=None) -> dict:
    """Funnel (incidents reaching each state) and time per stage for one unit and period (cached).

    The incidents counted are those active in the period: reported before its end and not closed before its
    start. Funnel: per-state counts by report day up to the last day minus by close day before the first. Stage
    times of the district and towns the same way, from the stay histograms (by report day up to the last day less
    by close day before the first); a zone's: the stays of the incidents reported in the period (its stay
    histograms; its edge days from their incidents' events) plus those of the incidents carried over into it (their
    events): what is read grows with the period and the cases open at its start, not with the history; a grid's
    from its own events."""
    now = now_utc() if now is None else _as_utc(now)
    at = moment(period, now)
    key = _key(BUNDLE_SCHEMA, "life", period.start, period.end, level, code, data_version(bind))

    def build():
        span = day_span(period)
        lvl, c = store_unit(level, code, hierarchy(gd))
        x = agg.lifecycle_inputs(bind, span, lvl, c, _utc_dt(period.start), _utc_dt(period.end))
        funnel = pd.DataFrame({"state": list(kpis.STATE_ORDER),
                               "incidents": [x["reached"][f"rf_{s}"] - x["closed_before"][f"cf_{s}"]
                                             for s in kpis.STATE_ORDER]})
        if lvl == "grid":
            hist = rollup.stays_hist(x["stays"], agg.hour_bin)
        elif "active_hist" in x:  # reported by the last day, less closed before the first: the active ones
            hist = x["active_hist"][["key2", "bin", "n", "hsum"]].astype({"key2": object})
        else:  # reported in the period + carried over into it: disjoint, so their stays add up
            parts = [x["period_hist"][["key2", "bin", "n", "hsum"]] if len(x["period_hist"]) else None,
                     rollup.stays_hist(x["edge_stays"], agg.hour_bin),
                     rollup.stays_hist(x["carried_stays"], agg.hour_bin)]
            parts = [p.astype({"key2": object}) for p in parts if p is not None and len(p)]
            hist = (pd.concat(parts, ignore_index=True).groupby(["key2", "bin"], sort=False)[["n", "hsum"]].sum()
                    .reset_index()) if parts else rollup.stays_hist(None, agg.hour_bin)
        return {"funnel": funnel, "stages": rollup.stage_table(hist)}

    return _cached(cache, key, PAST_TIMEOUT if not is_current(period, now) else 120, build)


# ------------------------------------------------------------------------------------------ profile
def grid_activity(bind, cache, code: str, now=None) -> dict:
    """Last inspection day of a grid and its open incidents (newest first), cached for a minute."""
    now = now_utc() if now is None else _as_utc(now)
    key = _key(BUNDLE_SCHEMA, "grid", code, int(now.timestamp()) // CURRENT_BUCKET_S)

    def build():
        ins = frames.load_inspections(bind, None, None, "grid", code, columns=("inspected_on", "unit_id"))
        inc = frames.load_incidents(bind, None, now, "grid", code,
                                    columns=("id", "code", "category", "severity", "status", "reported_at",
                                             "due_at", "closed_at", "level"))
        last = None if ins.empty else str(pd.to_datetime(ins["inspected_on"]).max().date())
        open_ = inc[inc["status"] != "closed"].sort_values("reported_at", ascending=False)
        return {"last_inspection": last, "open": open_.reset_index(drop=True)}

    return _cached(cache, key, 2 * CURRENT_BUCKET_S, build)


def zone_staff(gd, code: str) -> dict:
    """The zone's workstation and "1+1+1+N" staff, from the geodata (a copy of what :func:`_zone_staff` keeps)."""
    out = _zone_staff(gd, code)
    return {**out, "stars": dict(out["stars"])}


_NO_ROWS = np.empty(0, dtype=np.intp)


@lru_cache(maxsize=32)
def rows_of(gd, layer: str, column: str) -> dict:
    """``{value: positions}`` of one column of a geodata layer (its rows holding each value, in their order), kept per
    (geodata, layer, column) as the hierarchy is: a unit's rows by position, where a mask over a province's 66,582
    hazard sites or 5,728 zones cost 3–5 ms on each first visit of a unit (its grids: ``Hierarchy.unit_grids``)."""
    return getattr(gd, layer).groupby(column, sort=False).indices


# the columns a unit's profile finds its rows by (built at a worker's start: dashboard.warm; the hazard sites by their
# own code, which no view asks for, only on first use)
ROW_INDEXES = (("zones", "code"), ("hazards", "grid_code"), ("hazards", "zone_code"), ("hazards", "town_code"))


def _rows(gd, layer: str, column: str, values) -> "pd.DataFrame":
    """The rows of ``layer`` whose ``column`` holds one of ``values``, in the layer's order (``layer[isin]``)."""
    idx = rows_of(gd, layer, column)
    parts = [idx[v] for v in values if v in idx]
    pos = np.sort(np.concatenate(parts)) if len(parts) > 1 else (parts[0] if parts else _NO_ROWS)
    return getattr(gd, layer).iloc[pos]


@lru_cache(maxsize=512)
def _zone_staff(gd, code: str) -> dict:  # the geodata never changes while the app runs: kept per (geodata, zone)
    zone = _rows(gd, "zones", "code", (code,))
    if zone.empty:
        raise KeyError(code)
    z = zone.iloc[0]
    g = hierarchy(gd).unit_grids("zone", code)
    stars = g["worker_stars"].value_counts().reindex(range(1, 6), fill_value=0)
    return {
        "station_name": z["station_name"], "chief": z["chief"], "deputy": z["deputy"],
        "station_master": z["station_master"], "dept_staff": int(z["dept_staff"]),
        "n_grids": int(len(g)), "full_time": int(g["worker_full_time"].sum()),
        "part_time": int((~g["worker_full_time"].astype(bool)).sum()),
        "stars": {int(k): int(v) for k, v in stars.items()},
        "mean_stars": float(g["worker_stars"].mean()) if len(g) else None,
        "registered_units": int(g["registered_units"].sum()), "population": int(g["population"].sum()),
    }


def hazards_of(gd, level: str, code: str | None) -> dict:
    """Hazard sites of the unit by kind, and how many are major (a copy of what :func:`_hazards_of` keeps)."""
    out = _hazards_of(gd, level, code)
    return {**out, "by_kind": dict(out["by_kind"])}


@lru_cache(maxsize=2048)
def _hazards_of(gd, level: str, code: str | None) -> dict:  # kept per (geodata, unit), as the hierarchy is
    hz = gd.hazards
    if level in ABOVE_TOWN:  # a county or city: the hazard sites of its towns
        hz = _rows(gd, "hazards", "town_code", hierarchy(gd).towns_of(level, code))
    elif level != "district":
        hz = _rows(gd, "hazards", "code" if level == "hazard" else f"{level}_code", (code,))
    return {"total": int(len(hz)), "major": int(hz["major"].astype(bool).sum()),
            "by_kind": {str(k): int(v) for k, v in hz["kind"].value_counts().items()}}


# ---------------------------------------------------------------------------------------- briefing
def reference_year(bind, now=None) -> int | None:
    """The latest whole calendar year before the current one (Asia/Shanghai) with data in each of its 12 months
    — last year in a running system; in the demo, 2019 — or None when there is none yet."""
    now = now_utc() if now is None else _as_utc(now)
    this_year = now.tz_convert(kpis.LOCAL_TZ).year
    months: dict[int, int] = {}
    for m in agg.months_with_data(bind):
        months[m.year] = months.get(m.year, 0) + 1
    full = [y for y, n in months.items() if n == 12 and y < this_year]
    return max(full) if full else None


def year_on_year(bind, gd, cache, now=None) -> dict | None:
    """The district's headline measures (``registry.shown_in("briefing_year")``) for the reference year
    (:func:`reference_year`) and the year before it, with 同比 (``kpis.changes``) — from the two years' cached
    KPI bundles, the numbers the cards show for those periods. None when there is no whole year yet."""
    year = reference_year(bind, now)
    if year is None:
        return None
    p = periods.calendar(year)
    now_v = unit_kpis(kpi_bundle(bind, gd, cache, p, now=now), "district", None)
    before = comparable(unit_kpis(kpi_bundle(bind, gd, cache, p.previous_year(), now=now), "district", None))
    keys = registry.shown_in("briefing_year")
    ch = kpis.changes({k: now_v.get(k) for k in keys}, before)
    return {"year": year, "previous": year - 1,
            "rows": [{"kpi": k, "value": now_v.get(k), "before": before.get(k), **ch[k]} for k in keys]}


def row_level(h: Hierarchy) -> str:
    """The unit a root-wide table or tour shows one row (or card) per — the briefing's rows, the wall's ranking and
    tour: a zone in one county's set (its towns are too few and too large); in a city's or province's set the level
    under the root (its counties, or the province's cities)."""
    return h.child_level("district") if h.multi else "zone"


def briefing(bind, gd, cache, now=None, hours: int = 24, notable_per_zone: int = 3) -> dict:
    """The morning-meeting (晨会) figures of the last ``hours`` per unit (:func:`row_level`: zones, or a city's
    counties / a province's cities), cached for a minute.

    Per unit: new (reported in the window), handled on the spot (of those, level ``onsite``), routed to the
    town and escalated to the district (level reached), overdue now (open and past ``due_at`` at ``now``,
    whenever reported), and notable cases (reported in the window with severity ≥ 3, hazardous chemicals,
    or overdue now), most severe first. ``level`` names the rows' level and ``parent_level`` the level of each
    row's ``parent`` (None when the parent is the root).
    """
    now = now_utc() if now is None else _as_utc(now)
    at = now.floor(f"{CURRENT_BUCKET_S}s")
    start = at - pd.Timedelta(hours=hours)
    key = _key(BUNDLE_SCHEMA, "briefing2", at, hours)

    def build():
        h = hierarchy(gd)
        level = row_level(h)
        up = h.parent_level(level)
        parent_level = None if up == "district" else up
        cols = ("id", "code", "category", "subcategory", "severity", "status", "level", "description", "address",
                "grid_code", "zone_code", "town_code", "reported_at", "due_at", "closed_at")
        inc = frames.load_incidents(bind, start, at, columns=cols)
        f = kpis.incident_flags(inc, start, at, at)
        due = kpis._utc_series(inc["due_at"]) if len(inc) else pd.Series(dtype="datetime64[ns]")
        overdue_now = f["open"].to_numpy() & (due < kpis.to_utc(at)).fillna(False).to_numpy()
        lvl = inc["level"].to_numpy() if len(inc) else np.array([])
        new = f["new"].to_numpy()
        if not len(inc):
            unit_of = np.array([], dtype=object)
        elif level == "zone":
            unit_of = inc["zone_code"].to_numpy()
        else:  # a county or city: its towns' rows
            unit_of = inc["town_code"].map(h.town_up[level]).to_numpy()
        d = pd.DataFrame({"unit": unit_of, "new": new, "onsite": f["onsite"].to_numpy(),
                          "town": new & (lvl == "town"), "district": new & (lvl == "district"),
                          "overdue": overdue_now})
        agg = d.groupby("unit")[["new", "onsite", "town", "district", "overdue"]].sum()
        codes = h.codes(level)
        agg = agg.reindex(codes, fill_value=0).astype(int)
        sev = inc["severity"].to_numpy() if len(inc) else np.array([])
        cat = inc["category"].to_numpy() if len(inc) else np.array([])
        notable_mask = (new & ((sev >= 3) | (cat == "safety.hazchem"))) | overdue_now
        notable = inc[notable_mask].assign(overdue=overdue_now[notable_mask], is_new=new[notable_mask],
                                           unit=unit_of[notable_mask])
        notable = notable.sort_values(["severity", "overdue", "reported_at"], ascending=[False, False, False])
        rows = []
        for u in codes:
            r = agg.loc[u]
            nz = notable[notable["unit"] == u].head(notable_per_zone)
            rows.append({"unit": u, "parent": h.parent[(level, u)] if parent_level else None,
                         "new": int(r["new"]), "onsite": int(r["onsite"]),
                         "routed_town": int(r["town"]), "escalated_district": int(r["district"]),
                         "overdue": int(r["overdue"]),
                         "onsite_rate": kpis._rate(r["onsite"], r["new"]),
                         "notable": nz[["code", "category", "severity", "status", "description", "address",
                                        "reported_at", "overdue", "is_new"]].to_dict("records")})
        totals = {k: int(agg[k].sum()) for k in ("new", "onsite", "town", "district", "overdue")}
        totals["onsite_rate"] = kpis._rate(totals["onsite"], totals["new"])
        return {"start": str(start), "end": str(at), "level": level, "parent_level": parent_level, "rows": rows,
                "totals": totals}

    return _cached(cache, key, 2 * CURRENT_BUCKET_S, build)
