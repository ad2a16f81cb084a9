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
    hsum = h["hsum"].to_numpy(dtype=float)
    mid, _half = bin_mid(h["bin"].to_numpy())
    val = np.where(n == 1, hsum, mid)  # one value: exact; more: the bin's middle
    grp = h.groupby(keys, sort=False).ngroup().to_numpy()
    starts = np.r_[0, np.flatnonzero(grp[1:] != grp[:-1]) + 1]
    cum = np.cumsum(n)
    before = np.r_[0, cum[:-1]][starts]  # values before each group
    total = np.add.reduceat(n, starts)
    out = h.iloc[starts][keys].reset_index(drop=True)
    out["n"] = total
    out["mean"] = np.add.reduceat(hsum, starts) / total
    for q in qs:
        pos = (total - 1) * q
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        vlo = val[np.searchsorted(cum, before + lo, side="right")]
        vhi = val[np.searchsorted(cum, before + hi, side="right")]
        out[f"q{q}"] = vlo + (vhi - vlo) * (pos - lo)
    return out


def medians(hist: pd.DataFrame | None) -> dict:
    """{(lvl, code): median hours} of a histogram's rows (see :func:`quantiles`)."""
    q = quantiles(hist, (0.5,))
    return {(a, b): v for a, b, v in zip(q["lvl"], q["code"], q["q0.5"])} if len(q) else {}


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


def _by_level(span: pd.DataFrame, flags: pd.DataFrame, level: str) -> dict:
    """{code: {flag: count}} of the moment flags grouped by the unit of ``level``."""
    if flags is None or not len(span):
        return {}
    col = LEVEL_COLUMN[level]
    key = span[col].astype(object).to_numpy() if col else np.full(len(span), "*", dtype=object)
    g = flags.astype(np.int64).groupby(key).sum()
    return {code: dict(zip(g.columns, row)) for code, row in zip(g.index, g.to_numpy().tolist())}


def _unit_sums(units: pd.DataFrame, grid_parents: pd.DataFrame, level: str) -> dict:
    if units is None or not len(units):
        return {}
    u = units.merge(grid_parents, left_on="grid_code", right_on="code", how="left")
    col = LEVEL_COLUMN[level]
    if col is None:
        return {"*": (int(u["units_inspected"].sum()), int(u["units_with_problems"].sum()))}
    u = u[u[col].notna()]
    g = u.groupby(col)[["units_inspected", "units_with_problems"]].sum()
    return {code: (int(a), int(b)) for code, (a, b) in zip(g.index, g.to_numpy().tolist())}


_NO_FLAGS = {"open": 0, "unresolved": 0, "overdue_open": 0, "late_after": 0, "open_in_p": 0}


def kpi_rows(counts: pd.DataFrame, units: pd.DataFrame, grid_parents: pd.DataFrame, registered: dict,
             span: pd.DataFrame, close_hist: pd.DataFrame, start, end, at, codes: dict,
             dispute_hist: pd.DataFrame | None = None) -> dict:
    """{level: {code: {kpi: value}}} for every unit in ``codes`` ({level: [codes]}; the district's code is '*').

    ``counts``: read_counts rows (lvl, code, sums); ``units``: per grid units_inspected / units_with_problems;
    ``grid_parents``: grid code → zone_code, town_code; ``registered``: {(level, code): registered units};
    ``span``: the incidents of S; ``close_hist``: 'close' histogram rows (lvl, code, bin, n, hsum);
    ``dispute_hist``: the same of the resolved disputes ('dispute')."""
    flags = span_flags(span, start, end, at) if len(span) else None
    med = medians(close_hist)
    dmed = medians(dispute_hist)
    cols = [c for c in counts.columns if c not in ("lvl", "code")]
    by_unit = {(a, b): dict(zip(cols, vals)) for a, b, vals in
               zip(counts["lvl"], counts["code"], counts[cols].to_numpy().tolist())} if len(counts) else {}
    zero = dict.fromkeys(cols, 0)
    out = {}
    for level, level_codes in codes.items():
        fl = _by_level(span, flags, level)
        us = _unit_sums(units, grid_parents, level)
        rows = {}
        for code in level_codes:
            c = by_unit.get((level, code), zero)
            f = fl.get(code, _NO_FLAGS)
            ui, up = us.get(code, (0, 0))
            new = int(c["r_new"])
            rows[code] = kpis._finish({
                "open": f["open"], "new": new,
                "overdue": int(c["r_late"]) - f["late_after"] + f["overdue_open"],
                "onsite": int(c["r_onsite"]), "resolved": new - f["unresolved"],
                "closed_in": int(c["c_closed"]), "closed_in_zone": int(c["c_in_zone"]),
                "dispute_closed": int(c["c_dispute"]), "dispute_resolved": int(c["c_dispute_resolved"]),
                "longstanding_solved": int(c["c_longstanding"]), "median_hours": med.get((level, code), np.nan),
                "dispute_median_hours": dmed.get((level, code), np.nan),
                "units_inspected": ui, "units_with_problems": up, "problems_found": int(c["i_problems"]),
                "registered_units": registered.get((level, code), 0),
            })
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
    esc_by = {}  # (level, code, department) -> (open in the period, overdue open, closed late after at)
    if flags is not None:
        m = ((span["level"] == "district") & span["department"].notna()).to_numpy()
        esc = span[m]
        f = flags[m].astype(np.int64)
        for level, col in LEVEL_COLUMN.items():
            if not len(esc):
                break
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
    """Histogram rows (key2 = state, bin, n, hsum) of stays (incident_id, state, us, hours)."""
    if stays is None or stays.empty:
        return pd.DataFrame({"key2": pd.Series(dtype=object), "bin": pd.Series(dtype="int64"),
                             "n": pd.Series(dtype="int64"), "hsum": pd.Series(dtype=float)})
    s = stays.assign(bin=bin_fn(stays["us"].to_numpy()), key2=stays["state"])
    return s.groupby(["key2", "bin"], sort=False).agg(n=("hours", "size"), hsum=("hours", "sum")).reset_index()
