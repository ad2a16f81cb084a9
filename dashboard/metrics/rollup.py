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
from dataclasses import dataclass

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


def _rates(num: np.ndarray, den: np.ndarray) -> list:
    """``kpis._rate`` of each pair (the same float: num / den in double precision), None where den is 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / den
    ok = (den != 0) & np.isfinite(den)
    return [v if k else None for v, k in zip(r.tolist(), ok.tolist())]  # tolist: Python floats already


def _hours(values) -> list:
    """``kpis._none_if_nan`` of each value (math.isfinite: numpy's on one Python float costs a microsecond)."""
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


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
        "open_incidents": f_open.tolist(),
        "new_incidents": new.tolist(),
        "overdue_incidents": (late - f_late_after + f_over).tolist(),
        "onsite_handling_rate": _rates(onsite, new),
        "resolution_rate": _rates(new - f_unres, new),
        "units_inspected": ui.tolist(),
        "units_with_problems": up.tolist(),
        "detection_rate": _rates(up, ui),
        "problems_found": problems_found.tolist(),
        "registered_units": reg.tolist(),
        "inspection_coverage": _rates(ui, reg),
        "median_hours_to_close": _hours(_row_medians(rows.close, ix).tolist()),
        "dispute_median_hours": _hours(_row_medians(rows.dispute, ix).tolist()),
        "in_zone_resolution_rate": _rates(in_zone, closed),
        "disputes_closed": d_closed.tolist(),
        "disputes_resolved": d_resolved.tolist(),
        "dispute_success_rate": _rates(d_resolved, d_closed),
        "longstanding_solved": longst.tolist(),
    }
    names = list(cols)
    out: dict = {}
    for (level, code), vals in zip(ix.keys, zip(*cols.values())):
        out.setdefault(level, {})[root_code if level == "district" else code] = dict(zip(names, vals))
    reached = np.stack([c[col["r_onsite"]], c[col["r_town"]], c[col["r_district"]]], axis=1).tolist()
    levels = {(level, root_code if level == "district" else code): tuple(v)
              for (level, code), v, p in zip(ix.keys, reached, present.tolist()) if p}
    return out, levels


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
