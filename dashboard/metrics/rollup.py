"""KPIs from the store's aggregates (pure): the fast path that :mod:`dashboard.metrics.kpis` is the oracle of.

The store (``dashboard/store/aggregates.py``) hands over sums of per-day counts, histograms of hours and the
incidents open at the moment ``at``; these functions turn them into exactly the values ``kpis.all_kpis`` /
``kpis.kpis_by`` / ``kpis.department_workload`` / ``kpis.funnel`` / ``kpis.stage_times`` give on the raw rows
(``tests/integration/test_aggregates_oracle.py`` checks it on random histories). Medians and p90 are read from
histograms (see the store module): exact to 0.05 h below a week.

How the moment-dependent KPIs decompose (``P`` the period ``[start, end)``, ``S`` the incidents reported by ``at``
and closed at or after ``at`` or still open):

- open at ``at``             = |S with closed_at > at or open|
- resolved                   = new − |S reported in P, not closed before ``end``|  (``at`` = ``end`` or now)
- overdue                    = closed late (any time, reported in P) − |S reported in P, closed after ``at`` and
  late| + |S reported in P, open at ``at``, past due at ``at``|
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..domain.hours import bin_mid
from . import kpis

LEVEL_COLUMN = {"district": None, "city": "city_code", "county": "county_code", "town": "town_code",
                "zone": "zone_code", "grid": "grid_code"}


def _naive(ts) -> pd.Timestamp:
    return kpis.to_utc(ts)


# ------------------------------------------------------------------------------------ histograms
def _group_codes(h: pd.DataFrame, keys: list) -> np.ndarray:
    """One int64 code per row for the combination of ``keys`` (categorical codes or factorised values)."""
    g = np.zeros(len(h), dtype=np.int64)
    for k in keys:
        col = h[k]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes, size = col.cat.codes.to_numpy().astype(np.int64), len(col.cat.categories) + 1
        else:
            codes, uniq = pd.factorize(col.to_numpy(), use_na_sentinel=True)
            codes, size = codes.astype(np.int64), len(uniq) + 1
        g = g * size + (codes + 1)
    return g


def group_quantiles(starts: np.ndarray, b: np.ndarray, n: np.ndarray, hsum: np.ndarray, qs) -> tuple:
    """(values per group, [quantile q per group for q in ``qs``]) of histogram values sorted by group, then bin
    (``starts``: each group's first index; every count > 0) — pandas' linear interpolation between order statistics,
    a bin's values taken at its one value where it holds one, else at its middle (``dashboard.domain.hours``)."""
    cum = np.cumsum(n)
    before = np.r_[0, cum[:-1]][starts]  # values before each group
    total = np.add.reduceat(n, starts)

    def value(at):  # one value in a bin: exact; more: the bin's middle
        return np.where(n[at] == 1, hsum[at], bin_mid(b[at])[0])

    out = []
    for q in qs:
        pos = (total - 1) * q
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        vlo = value(np.searchsorted(cum, before + lo, side="right"))
        vhi = value(np.searchsorted(cum, before + hi, side="right"))
        out.append(vlo + (vhi - vlo) * (pos - lo))
    return total, out


def quantiles(hist: pd.DataFrame, qs=(0.5,), keys=("lvl", "code")) -> pd.DataFrame:
    """Per group of ``keys``: n, mean and the quantiles ``qs`` (:func:`group_quantiles`) of a histogram with rows
    (keys…, bin, n, hsum)."""
    keys = list(keys)
    cols = [*keys, "n", "mean", *[f"q{q}" for q in qs]]
    if hist is None or hist.empty:
        return pd.DataFrame(columns=cols)
    n_all = hist["n"].to_numpy(dtype=np.int64)
    grp = _group_codes(hist, keys)
    b = hist["bin"].to_numpy(dtype=np.int64)
    idx = np.flatnonzero(n_all > 0)
    if len(idx) == 0:
        return pd.DataFrame(columns=cols)
    if len(idx) < len(n_all):
        grp, b = grp[idx], b[idx]
    change = np.flatnonzero(grp[1:] != grp[:-1]) + 1
    ordered = (len(change) + 1 == len(np.unique(grp[np.r_[0, change]]))  # each group's rows together, bins ascending
               and bool(np.all((b[1:] > b[:-1]) | (grp[1:] != grp[:-1]))))
    if not ordered:  # sorted by group, then bin (stable, as the rows came)
        order = np.lexsort((b, grp))
        idx, grp, b = idx[order], grp[order], b[order]
        change = np.flatnonzero(grp[1:] != grp[:-1]) + 1
    n = n_all[idx]
    hsum = hist["hsum"].to_numpy(dtype=float)[idx]
    starts = np.r_[0, change]
    total, values = group_quantiles(starts, b, n, hsum, qs)
    out = hist.iloc[idx[starts]][keys].reset_index(drop=True)
    out["n"] = total
    out["mean"] = np.add.reduceat(hsum, starts) / total
    for q, v in zip(qs, values):
        out[f"q{q}"] = v
    return out


def hist_medians(hist) -> dict:
    """{key: median hours} of a :class:`dashboard.store.aggregates.Hist` (sorted by key, then bin) per key."""
    if not len(hist.n):
        return {}
    starts = np.r_[0, np.flatnonzero(hist.key[1:] != hist.key[:-1]) + 1]
    _total, (med,) = group_quantiles(starts, hist.bins, hist.n, hist.hsum, (0.5,))
    return dict(zip((hist.keys[k] for k in hist.key[starts].tolist()), med.tolist()))


# -------------------------------------------------------------------------------- moment flags
def span_flags(span: pd.DataFrame, start, end, at) -> pd.DataFrame:
    """Per incident of S (see the module doc): open at ``at``, unresolved at ``end``, open and past due at ``at``,
    closed late after ``at`` — for incidents reported in the period (except ``open``)."""
    start, end, at = _naive(start), _naive(end), _naive(at)
    rep, cl, due = span["reported_at"], span["closed_at"], span["due_at"]
    is_open = (cl.isna() | (cl > at)).to_numpy() & (rep <= at).to_numpy()
    in_p = ((rep >= start) & (rep < end)).to_numpy()
    unresolved = in_p & (cl.isna() | (cl >= end)).to_numpy()
    overdue_open = in_p & is_open & (due < at).fillna(False).to_numpy()
    late_after = in_p & cl.notna().to_numpy() & (cl > at).fillna(False).to_numpy() & (cl > due).fillna(False).to_numpy()
    return pd.DataFrame({"open": is_open, "unresolved": unresolved, "overdue_open": overdue_open,
                         "late_after": late_after, "open_in_p": in_p & is_open}, index=span.index)


def _rates(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``kpis._rate`` of each pair (the same float: num / den in double precision), NaN (None) where den is 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / den
    return np.where((den != 0) & np.isfinite(den), r, np.nan)


def _hours(values) -> np.ndarray:
    """``kpis._none_if_nan`` of each value: NaN (None) where not finite."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan)


class UnitRows(Mapping):
    """One level's KPIs in a bundle — ``{code: {kpi: value}}`` as a read-only mapping, held as columns: an int64
    array per count and a float64 array per rate or hours, NaN standing for None (a rate without a denominator, a
    median without closes; ``_rates`` / ``_hours`` never give NaN otherwise). A row is built when it is asked for, with
    the values the dict of dicts held (Python ints, floats and None, in the same order), so a province's bundle
    (72,000 units × 18 measures) pickles and loads as a few arrays — the dict of dicts took 90 ms to load from the
    cache on every drill click — and a ranking of 67,000 grids is a comparison of arrays (:func:`rank_of`).
    ``hidden`` columns travel with the rows but are no KPI (the level-reached counts: :class:`Reached`)."""

    def __init__(self, codes, columns: dict, hidden: dict | None = None, ordered: bool | None = None):
        self.codes = list(codes)
        self.columns = columns
        self.hidden = hidden or {}
        # codes in ascending order (a bundle's are: ``UnitIndex``) are found by bisection; a dict of 67,000 positions
        # took 5–8 ms to build for each bundle loaded from the cache, several per drill click
        self.ordered = all(a < b for a, b in zip(self.codes, self.codes[1:])) if ordered is None else ordered
        self._pos = None

    def __getstate__(self):
        return {"codes": self.codes, "columns": self.columns, "hidden": self.hidden, "ordered": self.ordered}

    def __setstate__(self, state):
        self.__dict__.update({"ordered": False, **state})
        self._pos = None

    def pos(self, code) -> int | None:
        """The row of ``code`` (None: not a unit of the level)."""
        if self.ordered:
            try:
                i = bisect_left(self.codes, code)
            except TypeError:  # not comparable with the codes: not one of them
                return None
            return i if i < len(self.codes) and self.codes[i] == code else None
        if self._pos is None:
            self._pos = {c: i for i, c in enumerate(self.codes)}
        return self._pos.get(code)

    def __getitem__(self, code) -> dict:
        i = self.pos(code)
        if i is None:
            raise KeyError(code)
        return {name: _value(a, i) for name, a in self.columns.items()}

    def __contains__(self, code) -> bool:
        return self.pos(code) is not None

    def __iter__(self):
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        return f"UnitRows({len(self.codes)} units × {len(self.columns)} measures)"

    def array(self, name: str) -> np.ndarray:
        """One measure of every unit, in the rows' order, as float64 (NaN: None)."""
        return self.columns[name].astype(np.float64, copy=False)

    def column(self, name: str) -> list:
        """One measure of every unit, in the rows' order, as the rows give it (Python values, None)."""
        a = self.columns[name]
        if a.dtype.kind != "f":
            return a.tolist()
        return [None if v != v else v for v in a.tolist()]

    def table(self) -> dict:
        """``{kpi: {code: value}}`` of every unit (what a choropleth picks its measure from)."""
        return {name: dict(zip(self.codes, self.column(name))) for name in self.columns}

    def with_values(self, values: dict) -> "UnitRows":
        """A copy with ``values`` (``{kpi: {code: value or None}}``, float measures) put in."""
        columns = dict(self.columns)
        for name, by_code in values.items():
            a = np.array(columns[name], dtype=np.float64)
            for code, v in by_code.items():
                i = self.pos(code)
                if i is not None:
                    a[i] = np.nan if v is None else v
            columns[name] = a
        out = UnitRows(self.codes, columns, self.hidden, self.ordered)
        out._pos = self._pos
        return out


def _value(a: np.ndarray, i: int):
    v = a[i].item()
    return None if v != v else v  # NaN (float columns only): None


def rank_of(rows: UnitRows, code: str, kpi: str, lower_is_better: bool) -> tuple[int | None, int]:
    """1-based rank of ``code`` among ``rows`` by ``kpi`` (best first; units without a value are not ranked) and the
    number ranked — what a stable sort of the rows' values gives, ties in the rows' order."""
    vals, i = rows.array(kpi), rows.pos(code)
    ranked = int(np.count_nonzero(~np.isnan(vals)))
    if not ranked or i is None or np.isnan(vals[i]):
        return None, ranked
    v = vals[i]
    better = np.count_nonzero(vals < v if lower_is_better else vals > v)
    return int(better + np.count_nonzero(vals[:i] == v) + 1), ranked


class Reached(Mapping):
    """A bundle's level-reached counts: ``{(level, code): (onsite, town, district)}`` of the units with counts in
    the period, read from the hidden columns of its :class:`UnitRows` (keyed as the bundle's rows are)."""

    COLUMNS = ("r_onsite", "r_town", "r_district")

    def __init__(self, tables: dict):
        self.tables = tables

    def __getitem__(self, key) -> tuple:
        level, code = key
        rows = self.tables.get(level)
        i = None if rows is None else rows.pos(code)
        if i is None or not rows.hidden["present"][i]:
            raise KeyError(key)
        return tuple(int(rows.hidden[c][i]) for c in self.COLUMNS)

    def __iter__(self):
        for level, rows in self.tables.items():
            for i in np.flatnonzero(rows.hidden["present"]).tolist():
                yield level, rows.codes[i]

    def __len__(self) -> int:
        return int(sum(np.count_nonzero(rows.hidden["present"]) for rows in self.tables.values()))


@dataclass(frozen=True)
class UnitIndex:
    """Where every unit of a hierarchy sits in a bundle's table (built once per hierarchy: ``metrics.views``).

    ``keys``: (level, code) of each row — the district first, as the store's '*', then each level's codes sorted;
    ``row``: {(level, code): row}; ``lift``: (rows × levels above the towns) the row of each town's county and city
    (-1 elsewhere: the store keeps no rows above the towns, a county is its towns together); ``grid_row``: {grid code:
    index into ``grid_units``}; ``grid_units``: (grids × levels below the root) the row of each grid's unit at each
    level (-1 where unknown); ``registered``: registered units per row."""

    keys: list
    row: dict
    lift: np.ndarray
    grid_row: dict
    grid_units: np.ndarray
    registered: np.ndarray

    @cached_property
    def spans(self) -> tuple:
        """(level, first row, end row) of each level's run of rows, in order."""
        out, start = [], 0
        for i in range(1, len(self.keys) + 1):
            if i == len(self.keys) or self.keys[i][0] != self.keys[start][0]:
                out.append((self.keys[start][0], start, i))
                start = i
        return tuple(out)


def _lift(x: np.ndarray, lift: np.ndarray) -> None:
    """Add each town's row of ``x`` to its county's and city's (in place)."""
    for j in range(lift.shape[1]):
        src = np.flatnonzero(lift[:, j] >= 0)
        if len(src):
            np.add.at(x, lift[src, j], x[src])


def _sorted_sums(unit: np.ndarray, b: np.ndarray, n: np.ndarray, hsum: np.ndarray) -> tuple:
    """Histogram values summed per (unit, bin), sorted by unit then bin."""
    lo = int(b.min())
    comb = unit * (int(b.max()) - lo + 1) + (b - lo)
    u, inv = np.unique(comb, return_inverse=True)
    first = np.zeros(len(u), dtype=np.int64)
    first[inv] = np.arange(len(inv))  # any index of each cell: its unit and bin
    return (unit[first], b[first], np.bincount(inv, weights=n.astype(np.float64)).round().astype(np.int64),
            np.bincount(inv, weights=hsum))


def _row_medians(hist, ix: UnitIndex) -> np.ndarray:
    """Median hours per row of ``ix`` (NaN without values) from a :class:`dashboard.store.aggregates.Hist` keyed (lvl,
    code, key2): each unit's own histogram, and a county's or city's as its towns' summed."""
    med = np.full(len(ix.keys), np.nan)
    if not len(hist.n):
        return med
    krow = np.fromiter((ix.row.get(k[:2], -1) for k in hist.keys), dtype=np.int64, count=len(hist.keys))
    starts = np.r_[0, np.flatnonzero(hist.key[1:] != hist.key[:-1]) + 1]  # one group per key (one unit each)
    _total, (q,) = group_quantiles(starts, hist.bins, hist.n, hist.hsum, (0.5,))
    rows = krow[hist.key[starts]]
    ok = rows >= 0
    med[rows[ok]] = q[ok]
    if ix.lift.shape[1]:
        r = krow[hist.key]
        ups = [np.where(r >= 0, ix.lift[np.maximum(r, 0), j], -1) for j in range(ix.lift.shape[1])]
        up = np.concatenate(ups)
        sel = up >= 0
        if sel.any():
            rep = len(ups)
            u, b, n, h = _sorted_sums(up[sel], np.tile(hist.bins, rep)[sel], np.tile(hist.n, rep)[sel],
                                      np.tile(hist.hsum, rep)[sel])
            starts = np.r_[0, np.flatnonzero(u[1:] != u[:-1]) + 1]
            _total, (q,) = group_quantiles(starts, b, n, h, (0.5,))
            med[u[starts]] = q
    return med


def bundle_table(rows, ix: UnitIndex, root_code: str) -> tuple[dict, dict]:
    """({level: {code: {kpi: value}}}, {(level, code): (onsite, town, district)}) of a period's bundle rows
    (``store.aggregates.BundleRows``) for every unit of ``ix`` — the same values as ``kpis._finish`` of each unit's
    sums, computed for every unit at once: the store's rows placed by unit, the grids' distinct units and the moment
    counts added up to every level (``np.add.at`` on the units' rows), the towns' rows lifted to their counties and
    cities. The district's row is keyed by ``root_code``; grid medians are left out (None: read on demand)."""
    size = len(ix.keys)
    get = ix.row.get
    col = {c: i for i, c in enumerate(rows.count_columns)}
    cv = np.zeros((size, len(col)), dtype=np.int64)
    present = np.zeros(size, dtype=np.int64)  # rows with counts (the level-reached shares)
    unit_keys, sums = rows.counts
    if unit_keys:
        pos = np.fromiter((get(u, -1) for u in unit_keys), dtype=np.int64, count=len(unit_keys))
        ok = pos >= 0
        cv[pos[ok]] = sums[ok]  # one row per unit
        present[pos[ok]] = 1
    fv = np.zeros((size, 5), dtype=np.int64)  # open, unresolved, overdue open, closed late after, open in period
    if rows.moment:
        m = np.array([r[3:8] for r in rows.moment], dtype=np.int64)
        fv[0] = m.sum(axis=0)  # the district: every incident
        for level, c in (("grid", 0), ("zone", 1), ("town", 2)):
            pos = np.fromiter((get((level, r[c]), -1) for r in rows.moment), dtype=np.int64, count=len(m))
            ok = pos >= 0
            np.add.at(fv, pos[ok], m[ok])
    for x in (cv, present, fv):
        _lift(x, ix.lift)
    uv = np.zeros((size, 2), dtype=np.int64)  # distinct units inspected, with problems
    grids, inspected, problems = rows.units
    if len(grids):
        vals = np.stack([np.asarray(inspected, dtype=np.int64), np.asarray(problems, dtype=np.int64)], axis=1)
        uv[0] = vals.sum(axis=0)  # the district: every grid
        gi = np.fromiter((ix.grid_row.get(g, -1) for g in grids), dtype=np.int64, count=len(grids))
        known = gi >= 0
        at = ix.grid_units[gi[known]]  # (grids, levels): each grid's unit at every level below the root
        v = np.repeat(vals[known], at.shape[1], axis=0)
        at = at.ravel()
        ok = at >= 0
        np.add.at(uv, at[ok], v[ok])
    c = cv.T
    new, late, onsite, closed, in_zone = (c[col[k]] for k in ("r_new", "r_late", "r_onsite", "c_closed", "c_in_zone"))
    d_closed, d_resolved, longst, problems_found = (c[col[k]] for k in ("c_dispute", "c_dispute_resolved",
                                                                         "c_longstanding", "i_problems"))
    f_open, f_unres, f_over, f_late_after, _ = fv.T
    ui, up = uv.T
    reg = ix.registered
    cols = {
        "open_incidents": f_open,
        "new_incidents": new,
        "overdue_incidents": late - f_late_after + f_over,
        "onsite_handling_rate": _rates(onsite, new),
        "resolution_rate": _rates(new - f_unres, new),
        "units_inspected": ui,
        "units_with_problems": up,
        "detection_rate": _rates(up, ui),
        "problems_found": problems_found,
        "registered_units": reg,
        "inspection_coverage": _rates(ui, reg),
        "median_hours_to_close": _hours(_row_medians(rows.close, ix)),
        "dispute_median_hours": _hours(_row_medians(rows.dispute, ix)),
        "in_zone_resolution_rate": _rates(in_zone, closed),
        "disputes_closed": d_closed,
        "disputes_resolved": d_resolved,
        "dispute_success_rate": _rates(d_resolved, d_closed),
        "longstanding_solved": longst,
    }
    hidden = {"present": present.astype(bool), "r_onsite": c[col["r_onsite"]], "r_town": c[col["r_town"]],
              "r_district": c[col["r_district"]]}
    out: dict = {}
    for level, a, b in ix.spans:  # each level's units are one run of rows
        codes = [root_code] if level == "district" else [code for _lv, code in ix.keys[a:b]]
        out[level] = UnitRows(codes, {k: np.array(v[a:b]) for k, v in cols.items()},
                              {k: np.array(v[a:b]) for k, v in hidden.items()})
    return out, Reached(out)


def department_rows(dept: pd.DataFrame, span: pd.DataFrame, dept_hist: pd.DataFrame, start, end, at,
                    units: list[tuple[str, str]]) -> dict:
    """{(level, code): rows of ``kpis.department_workload``} for ``units``."""
    flags = span_flags(span, start, end, at) if len(span) else None
    esc_by = {}  # (level, code, department) -> (open in the period, overdue open, closed late after at)
    if flags is not None:
        m = ((span["level"] == "district") & span["department"].notna()).to_numpy()
        esc = span[m]
        f = flags[m].astype(np.int64)
        for level, col in LEVEL_COLUMN.items():
            if not len(esc):
                break
            if col is not None and col not in esc.columns:
                continue
            key = esc[col].astype(object).to_numpy() if col else np.full(len(esc), "*", dtype=object)
            g = f[["open_in_p", "overdue_open", "late_after"]].groupby([key, esc["department"].to_numpy()]).sum()
            for (code, dep), row in zip(g.index, g.to_numpy().tolist()):
                esc_by[(level, code, dep)] = row
    med = quantiles(dept_hist, (0.5,), keys=("lvl", "code", "key2"))
    med = {(a, b, c): v for a, b, c, v in zip(med["lvl"], med["code"], med["key2"], med["q0.5"])} if len(med) else {}
    per_unit: dict = {}
    if len(dept):
        for lvl, code, dep, a, c, late in zip(dept["lvl"], dept["code"], dept["department"], dept["assigned"],
                                              dept["closed"], dept["late"]):
            if int(a) <= 0:
                continue
            o, oo, la = esc_by.get((lvl, code, dep), (0, 0, 0))
            per_unit.setdefault((lvl, code), []).append({
                "department": dep, "assigned": int(a), "open": int(o), "closed": int(c),
                "overdue": int(late) - int(la) + int(oo),
                "median_hours_to_close": kpis._none_if_nan(med.get((lvl, code, dep), np.nan))})
    out = {}
    for unit in units:
        rows = per_unit.get(unit, [])
        rows.sort(key=lambda x: (-x["assigned"], x["department"]))
        out[unit] = rows
    return out


def stage_table(hist: pd.DataFrame) -> pd.DataFrame:
    """``kpis.stage_times`` from a stays histogram (key2 = state, bin, n, hsum)."""
    cols = ["state", "stays", "median_hours", "mean_hours", "p90_hours"]
    q = quantiles(hist, (0.5, 0.9), keys=("key2",))
    if q.empty:
        return pd.DataFrame(columns=cols)
    q = q.set_index("key2")
    order = [s for s in kpis.STATE_ORDER if s in q.index] + [s for s in q.index if s not in kpis.STATE_ORDER]
    q = q.reindex(order)
    return pd.DataFrame({"state": order, "stays": q["n"].astype(int).to_numpy(),
                         "median_hours": q["q0.5"].to_numpy(dtype=float),
                         "mean_hours": q["mean"].to_numpy(dtype=float),
                         "p90_hours": q["q0.9"].to_numpy(dtype=float)})[cols]


def stays_hist(stays: pd.DataFrame, bin_fn) -> pd.DataFrame:
    """Histogram rows (key2 = state, bin, n, hsum) of stays (incident_id, state, us, hours), by state then bin."""
    if stays is None or stays.empty:
        return pd.DataFrame({"key2": pd.Series(dtype=object), "bin": pd.Series(dtype="int64"),
                             "n": pd.Series(dtype="int64"), "hsum": pd.Series(dtype=float)})
    codes, states = pd.factorize(stays["state"].to_numpy(dtype=object))
    b = np.asarray(bin_fn(stays["us"].to_numpy()), dtype=np.int64)
    width = int(b.max()) + 1
    u, inv = np.unique(codes.astype(np.int64) * width + b, return_inverse=True)
    return pd.DataFrame({"key2": np.asarray(states, dtype=object)[u // width], "bin": u % width,
                         "n": np.bincount(inv, minlength=len(u)).astype(np.int64),
                         "hsum": np.bincount(inv, weights=stays["hours"].to_numpy(dtype=float), minlength=len(u))})
