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

import numpy as np
import pandas as pd

from ..domain.hours import bin_mid
from . import kpis

LEVEL_COLUMN = {"district": None, "town": "town_code", "zone": "zone_code", "grid": "grid_code"}


def _naive(ts) -> pd.Timestamp:
    return kpis.to_utc(ts)


# ------------------------------------------------------------------------------------ histograms
def quantiles(hist: pd.DataFrame, qs=(0.5,), keys=("lvl", "code")) -> pd.DataFrame:
    """Per group of ``keys``: n, mean and the quantiles ``qs`` (pandas' linear interpolation between order
    statistics) of a histogram with rows (keys…, bin, n, hsum): a bin's values are taken at its one value where it
    holds one, else at its middle (``dashboard.domain.hours``)."""
    keys = list(keys)
    cols = [*keys, "n", "mean", *[f"q{q}" for q in qs]]
    if hist is None or hist.empty:
        return pd.DataFrame(columns=cols)
    h = hist[hist["n"] > 0].sort_values([*keys, "bin"], kind="stable")
    if h.empty:
        return pd.DataFrame(columns=cols)
    n = h["n"].to_numpy(dtype=np.int64)
    mid, _half = bin_mid(h["bin"].to_numpy())
    val = np.where(n == 1, h["hsum"].to_numpy(dtype=float), mid)  # one value: exact; more: the bin's middle
    grp = h.groupby(keys, sort=False).ngroup().to_numpy()
    starts = np.r_[0, np.flatnonzero(grp[1:] != grp[:-1]) + 1]
    ends = np.r_[starts[1:], len(h)]
    out = []
    first = h.iloc[starts][keys].reset_index(drop=True)
    for k, (a, b) in enumerate(zip(starts, ends)):
        cn = np.cumsum(n[a:b])
        total = int(cn[-1])
        row = [total, float(h["hsum"].to_numpy()[a:b].sum() / total)]
        for q in qs:
            pos = (total - 1) * q
            lo, hi = int(np.floor(pos)), int(np.ceil(pos))
            vlo = val[a:b][np.searchsorted(cn, lo, side="right")]
            vhi = val[a:b][np.searchsorted(cn, hi, side="right")]
            row.append(float(vlo + (vhi - vlo) * (pos - lo)))
        out.append(row)
    res = pd.DataFrame(out, columns=["n", "mean", *[f"q{q}" for q in qs]])
    return pd.concat([first, res], axis=1)


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


def _by_level(span: pd.DataFrame, flags: pd.DataFrame, level: str) -> pd.DataFrame:
    col = LEVEL_COLUMN[level]
    key = span[col].astype(object) if col else pd.Series("*", index=span.index, dtype=object)
    return flags.astype(np.int64).groupby(key.to_numpy()).sum()


# ------------------------------------------------------------------------------------- KPI rows
def kpi_rows(counts: pd.DataFrame, units: pd.DataFrame, grid_parents: pd.DataFrame, registered: dict,
             span: pd.DataFrame, close_hist: pd.DataFrame, start, end, at, codes: dict) -> dict:
    """{level: {code: {kpi: value}}} for every unit in ``codes`` ({level: [codes]}; the district's code is '*').

    ``counts``: read_counts rows (lvl, code, sums); ``units``: per grid units_inspected / units_with_problems;
    ``grid_parents``: grid code → zone_code, town_code; ``registered``: {(level, code): registered units};
    ``span``: the incidents of S; ``close_hist``: 'close' histogram rows (lvl, code, bin, n, hsum)."""
    flags = span_flags(span, start, end, at) if len(span) else None
    med = quantiles(close_hist, (0.5,))
    med = {(r.lvl, r.code): r._4 for r in med.itertuples(index=False)} if len(med) else {}
    c = counts.set_index(["lvl", "code"]) if len(counts) else None
    u = units.merge(grid_parents, left_on="grid_code", right_on="code", how="left") if len(units) else None
    out = {}
    for level, level_codes in codes.items():
        fl = _by_level(span, flags, level) if flags is not None else None
        if u is not None:
            col = {"district": None, "town": "town_code", "zone": "zone_code", "grid": "grid_code"}[level]
            g = u if col is None else u[u[col].notna()]
            ukey = pd.Series("*", index=g.index) if col is None else g[col]
            usum = g[["units_inspected", "units_with_problems"]].groupby(ukey.to_numpy()).sum()
        else:
            usum = None
        rows = {}
        for code in level_codes:
            def cnt(name):
                if c is None or (level, code) not in c.index:
                    return 0
                return int(c.at[(level, code), name])

            def fv(name):
                return int(fl.at[code, name]) if fl is not None and code in fl.index else 0

            def uv(name):
                return int(usum.at[code, name]) if usum is not None and code in usum.index else 0

            new = cnt("r_new")
            row = {
                "open": fv("open"),
                "new": new,
                "overdue": cnt("r_late") - fv("late_after") + fv("overdue_open"),
                "onsite": cnt("r_onsite"),
                "resolved": new - fv("unresolved"),
                "closed_in": cnt("c_closed"),
                "closed_in_zone": cnt("c_in_zone"),
                "dispute_closed": cnt("c_dispute"),
                "dispute_resolved": cnt("c_dispute_resolved"),
                "longstanding_solved": cnt("c_longstanding"),
                "median_hours": med.get((level, code), np.nan),
                "units_inspected": uv("units_inspected"),
                "units_with_problems": uv("units_with_problems"),
                "problems_found": cnt("i_problems"),
                "registered_units": registered.get((level, code), 0),
            }
            rows[code] = kpis._finish(row)
        out[level] = rows
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
    esc = None
    if flags is not None:
        m = ((span["level"] == "district") & span["department"].notna()).to_numpy()
        esc = span[m].assign(**{k: flags[k].to_numpy()[m] for k in flags.columns})
    med = quantiles(dept_hist, (0.5,), keys=("lvl", "code", "key2"))
    med = {(r.lvl, r.code, r.key2): r._5 for r in med.itertuples(index=False)} if len(med) else {}
    out = {}
    for level, code in units:
        d = dept[(dept["lvl"] == level) & (dept["code"] == code)] if len(dept) else dept
        col = LEVEL_COLUMN[level]
        e = None
        if esc is not None and len(esc):
            e = esc if col is None else esc[esc[col] == code]
            e = e.groupby("department")[["open_in_p", "overdue_open", "late_after"]].sum()
        rows = []
        for r in d.itertuples(index=False):
            if int(r.assigned) <= 0:
                continue
            dep = r.department
            get = (lambda k: int(e.at[dep, k]) if e is not None and dep in e.index else 0)
            rows.append({"department": dep, "assigned": int(r.assigned), "open": get("open_in_p"),
                         "closed": int(r.closed), "overdue": int(r.late) - get("late_after") + get("overdue_open"),
                         "median_hours_to_close": kpis._none_if_nan(med.get((level, code, dep), np.nan))})
        rows.sort(key=lambda x: (-x["assigned"], x["department"]))
        out[(level, code)] = rows
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
    """Histogram rows (key2 = state, bin, n, hsum) of stays (incident_id, state, us, hours)."""
    if stays is None or stays.empty:
        return pd.DataFrame(columns=["key2", "bin", "n", "hsum"])
    s = stays.assign(bin=bin_fn(stays["us"].to_numpy()), key2=stays["state"])
    return s.groupby(["key2", "bin"], sort=False).agg(n=("hours", "size"), hsum=("hours", "sum")).reset_index()
