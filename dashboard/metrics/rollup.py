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


def quantiles(hist: pd.DataFrame, qs=(0.5,), keys=("lvl", "code")) -> pd.DataFrame:
    """Per group of ``keys``: n, mean and the quantiles ``qs`` (pandas' linear interpolation between order
    statistics) of a histogram with rows (keys…, bin, n, hsum): a bin's values are taken at its one value where it
    holds one, else at its middle (``dashboard.domain.hours``)."""
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
    cum = np.cumsum(n)
    before = np.r_[0, cum[:-1]][starts]  # values before each group
    total = np.add.reduceat(n, starts)
    out = hist.iloc[idx[starts]][keys].reset_index(drop=True)
    out["n"] = total
    out["mean"] = np.add.reduceat(hsum, starts) / total

    def value(at):  # one value in a bin: exact; more: the bin's middle
        return np.where(n[at] == 1, hsum[at], bin_mid(b[at])[0])

    for q in qs:
        pos = (total - 1) * q
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        vlo = value(np.searchsorted(cum, before + lo, side="right"))
        vhi = value(np.searchsorted(cum, before + hi, side="right"))
        out[f"q{q}"] = vlo + (vhi - vlo) * (pos - lo)
    return out


def medians(hist: pd.DataFrame | None) -> dict:
    """{(lvl, code): median hours} of a histogram's rows (see :func:`quantiles`)."""
    q = quantiles(hist, (0.5,))
    if not len(q):
        return {}
    return dict(zip(zip(q["lvl"].tolist(), q["code"].tolist()), q["q0.5"].tolist()))


def subtract_hist(plus: pd.DataFrame, minus: pd.DataFrame, keys) -> pd.DataFrame:
    keys = list(keys)
    if minus is None or minus.empty:
        return plus
    m = minus.assign(n=-minus["n"], hsum=-minus["hsum"])
    both = pd.concat([plus, m], ignore_index=True)
    out = both.groupby([*keys, "bin"], sort=False)[["n", "hsum"]].sum().reset_index()
    return out[out["n"] > 0]


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


MOMENT_FLAGS = ("open", "unresolved", "overdue_open", "late_after", "open_in_p")


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


def _add_rows(out: np.ndarray, pos: list, values: np.ndarray) -> None:
    """out[pos[i]] += values[i] where pos[i] >= 0."""
    pos = np.asarray(pos, dtype=np.int64)
    ok = pos >= 0
    if ok.any():
        np.add.at(out, pos[ok], values[ok])


_COUNT_COLUMNS = ("r_new", "r_late", "r_onsite", "c_closed", "c_in_zone", "c_dispute", "c_dispute_resolved",
                  "c_longstanding", "i_problems")


def kpi_rows(counts: pd.DataFrame, units: pd.DataFrame, grid_parents: pd.DataFrame, registered: dict,
             moment: pd.DataFrame, close_hist: pd.DataFrame, codes: dict,
             dispute_hist: pd.DataFrame | None = None) -> dict:
    """{level: {code: {kpi: value}}} for every unit in ``codes`` ({level: [codes]}; the district's code is '*') —
    the same values as ``kpis._finish`` of each unit's sums, computed for every unit at once (arrays, not dicts).

    ``counts``: read_counts rows (lvl, code, sums); ``units``: per grid units_inspected / units_with_problems;
    ``grid_parents``: grid code → zone_code, town_code; ``registered``: {(level, code): registered units};
    ``moment``: the moment flags of S counted per (grid_code, zone_code, town_code) (``store.aggregates.
    moment_counts``); ``close_hist``: 'close' histogram rows (lvl, code, bin,
    n, hsum); ``dispute_hist``: the same of the resolved disputes ('dispute')."""
    med = medians(close_hist)
    dmed = medians(dispute_hist)
    keys = [(level, code) for level, level_codes in codes.items() for code in level_codes]
    at = {k: i for i, k in enumerate(keys)}
    size = len(keys)
    cv = np.zeros((size, len(_COUNT_COLUMNS)), dtype=np.int64)
    if len(counts):
        _add_rows(cv, [at.get(k, -1) for k in zip(counts["lvl"].tolist(), counts["code"].tolist())],
                  counts[list(_COUNT_COLUMNS)].to_numpy(dtype=np.int64))
    fv = np.zeros((size, len(MOMENT_FLAGS)), dtype=np.int64)
    if moment is not None and len(moment):
        vals = moment[list(MOMENT_FLAGS)].to_numpy(dtype=np.int64)
        for level in codes:
            col = LEVEL_COLUMN.get(level)
            if col is None:
                _add_rows(fv, [at.get((level, c), -1) for c in codes[level][:1]] * len(moment), vals)
            else:
                _add_rows(fv, [at.get((level, c), -1) for c in moment[col].tolist()], vals)
    uv = np.zeros((size, 2), dtype=np.int64)
    if units is not None and len(units):
        grids = units["grid_code"].tolist()
        vals = units[["units_inspected", "units_with_problems"]].to_numpy(dtype=np.int64)
        known = set(grid_parents["code"].tolist())
        for level in codes:
            col = LEVEL_COLUMN.get(level)
            if col is None:
                unit_of = [codes[level][0] if codes[level] else None] * len(grids)
            elif col == "grid_code":
                unit_of = [g if g in known else None for g in grids]
            else:
                up = dict(zip(grid_parents["code"].tolist(), grid_parents[col].tolist()))
                unit_of = [up.get(g) for g in grids]
            _add_rows(uv, [at.get((level, u), -1) if u is not None else -1 for u in unit_of], vals)
    new, late, onsite, closed, in_zone, d_closed, d_resolved, longst, problems = cv.T
    f_open, f_unres, f_over, f_late_after, _ = fv.T
    ui, up = uv.T
    reg = np.array([registered.get(k, 0) for k in keys], dtype=np.int64)
    cols = {
        "open_incidents": f_open.tolist(),
        "new_incidents": new.tolist(),
        "overdue_incidents": (late - f_late_after + f_over).tolist(),
        "onsite_handling_rate": _rates(onsite, new),
        "resolution_rate": _rates(new - f_unres, new),
        "units_inspected": ui.tolist(),
        "units_with_problems": up.tolist(),
        "detection_rate": _rates(up, ui),
        "problems_found": problems.tolist(),
        "registered_units": reg.tolist(),
        "inspection_coverage": _rates(ui, reg),
        "median_hours_to_close": _hours(med.get(k, np.nan) for k in keys),
        "dispute_median_hours": _hours(dmed.get(k, np.nan) for k in keys),
        "in_zone_resolution_rate": _rates(in_zone, closed),
        "disputes_closed": d_closed.tolist(),
        "disputes_resolved": d_resolved.tolist(),
        "dispute_success_rate": _rates(d_resolved, d_closed),
        "longstanding_solved": longst.tolist(),
    }
    names = list(cols)
    out: dict = {level: {} for level in codes}
    for (level, code), vals in zip(keys, zip(*cols.values())):
        out[level][code] = dict(zip(names, vals))
    return out


def level_counts(counts: pd.DataFrame, level: str, code: str) -> dict:
    """Cases reported in the period by level reached: {onsite, town, district}."""
    if counts.empty:
        return {"onsite": 0, "town": 0, "district": 0}
    r = counts[(counts["lvl"] == level) & (counts["code"] == code)]
    if r.empty:
        return {"onsite": 0, "town": 0, "district": 0}
    r = r.iloc[0]
    return {"onsite": int(r["r_onsite"]), "town": int(r["r_town"]), "district": int(r["r_district"])}


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
