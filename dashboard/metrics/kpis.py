"""KPI definitions (指标口径): pure functions over pandas frames — the one source of truth.

The KPI cards, the ranking charts and ``GET /api/v1/kpis`` all call these functions; nothing else
computes a KPI. No Dash, no SQL, no SQLAlchemy here (frames come from :mod:`dashboard.store.frames`
or from a test fixture). Every formula is documented in ``docs/kpis.md``.

Inputs
------
``incidents`` — one row per incident (案事件), columns per ``docs/data-model.md``; the ones used here:
``reported_at, closed_at, due_at, status, level, category, outcome, longstanding, department`` and the
unit codes ``grid_code, zone_code, town_code`` for the group-by helpers.

``inspections`` — one row per unit inspected on a day (巡查记录): ``unit_id, inspected_on,
problems_found`` (+ unit codes).

``registered`` — registered units (登记单位数) of the unit being measured: an int, or a frame of grids
with ``registered_units`` (+ ``code``/``zone_code``/``town_code``) for the group-by helpers.

Periods are half-open ``[start, end)``. Bounds may be naive (taken as UTC, like the stored times) or
tz-aware (converted to UTC); :func:`period` builds bounds from local (Asia/Shanghai) calendar days, which
is what the UI means by "calendar 2019". Inspection days (``inspected_on``) are local dates: a day is in
the period when it overlaps it.

Results
-------
Counts are ``int``. Rates are ``float`` in [0, 1] and medians ``float`` hours, or ``None`` when the
denominator is zero / nothing to measure (the UI shows "—"). Never NaN.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from . import registry as _registry

LOCAL_TZ = "Asia/Shanghai"
DISPUTE_PREFIX = "dispute"  # catalogue group of 矛盾纠纷 categories: dispute.civil, dispute.labour
LEVELS = ("onsite", "town", "district")
STATE_ORDER = (
    "reported", "onsite_handled", "routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed",
)

# Every KPI the cards / API / rankings know: key -> (zh, en, kind), from the one registry (metrics/registry.py).
KPIS: dict[str, tuple[str, str, str]] = {k: (m.zh, m.en, m.unit) for k, m in _registry.MEASURES.items()}

_GROUP_COLUMNS = {"town": "town_code", "zone": "zone_code", "grid": "grid_code"}


# --------------------------------------------------------------------------------------------- time
def to_utc(value) -> pd.Timestamp | None:
    """A bound as a naive UTC Timestamp (naive input is taken as UTC already)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _utc_series(s: pd.Series) -> pd.Series:
    """Times as naive UTC datetime64 (SQLite gives naive UTC, PostgreSQL tz-aware)."""
    s = pd.to_datetime(s, errors="coerce", utc=False) if not pd.api.types.is_datetime64_any_dtype(s) else s
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s


def period(first_day, last_day=None, tz: str = LOCAL_TZ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Bounds ``[start, end)`` covering local calendar days ``first_day`` … ``last_day`` inclusive (tz-aware)."""
    first = pd.Timestamp(first_day).normalize()
    last = pd.Timestamp(last_day if last_day is not None else first_day).normalize()
    return first.tz_localize(tz), (last + pd.Timedelta(days=1)).tz_localize(tz)


def calendar_year(year: int, tz: str = LOCAL_TZ) -> tuple[pd.Timestamp, pd.Timestamp]:
    return period(f"{year}-01-01", f"{year}-12-31", tz)


def _local_day(value, tz: str = LOCAL_TZ) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts


def _num(n) -> int:
    return int(n)


def _rate(num, den) -> float | None:
    den = float(den)
    if not den or not np.isfinite(den):
        return None
    return float(num) / den


def _none_if_nan(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else x


# ------------------------------------------------------------------------------------ incident flags
def _col(df: pd.DataFrame, name: str, default) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series(default, index=df.index)


def incident_flags(incidents: pd.DataFrame, start, end, at=None) -> pd.DataFrame:
    """Per-incident boolean flags (and hours to close) that every incident KPI is a sum/median of.

    ``at`` is the moment for "open" and "overdue" (default: ``end``).
    """
    start, end = to_utc(start), to_utc(end)
    at = end if at is None else to_utc(at)
    idx = incidents.index
    rep_at = _utc_series(_col(incidents, "reported_at", pd.NaT))
    closed_at = _utc_series(_col(incidents, "closed_at", pd.NaT))
    due_at = _utc_series(_col(incidents, "due_at", pd.NaT))
    status = _col(incidents, "status", "reported").astype(object)
    level = _col(incidents, "level", "onsite").astype(object)
    category = _col(incidents, "category", "").astype(object).fillna("")
    outcome = _col(incidents, "outcome", None).astype(object)
    longstanding = _col(incidents, "longstanding", False).fillna(False).astype(bool)

    # a closed status without closed_at is treated as closed at an unknown time before `at`
    is_closed_status = (status == "closed").to_numpy()
    closed_known = closed_at.notna().to_numpy()

    def between(s: pd.Series, a, b) -> np.ndarray:
        v = s.notna().to_numpy().copy()
        if a is not None:
            v &= (s >= a).fillna(False).to_numpy()
        if b is not None:
            v &= (s < b).fillna(False).to_numpy()
        return v

    reported = between(rep_at, start, end)
    closed_by_end = (closed_known & between(closed_at, None, end)) if end is not None else (
        closed_known | is_closed_status)
    closed_in = between(closed_at, start, end)
    closed_by_at = (closed_known & (closed_at <= at).fillna(False).to_numpy()) | (is_closed_status & ~closed_known)
    open_at = (rep_at <= at).fillna(False).to_numpy() & ~closed_by_at
    past_due_at = (due_at < at).fillna(False).to_numpy()
    closed_late = closed_by_at & (closed_at > due_at).fillna(False).to_numpy()
    is_dispute = category.str.startswith(DISPUTE_PREFIX + ".").to_numpy(dtype=bool)  # a prefix test: 10x faster than split
    hours = ((closed_at - rep_at).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan)

    flags = pd.DataFrame(
        {
            "open": open_at,
            "new": reported,
            "overdue": reported & ((open_at & past_due_at) | closed_late),
            "onsite": reported & (level == "onsite").to_numpy(),
            "resolved": reported & closed_by_end,
            "closed_in": closed_in,
            "closed_in_zone": closed_in & (level != "district").to_numpy(),
            "dispute_closed": closed_in & is_dispute,
            "dispute_resolved": closed_in & is_dispute & (outcome == "resolved").to_numpy(),
            "longstanding_solved": closed_in & longstanding.to_numpy(),
            "close_hours": np.where(closed_in, hours, np.nan),
            "dispute_hours": np.where(closed_in & is_dispute & (outcome == "resolved").to_numpy(), hours, np.nan),
        },
        index=idx,
    )
    return flags


# ---------------------------------------------------------------------------------- incident KPIs
def open_incidents(incidents: pd.DataFrame, at) -> int:
    """在办案事件: incidents reported by ``at`` and not closed at ``at``."""
    return _num(incident_flags(incidents, None, at, at)["open"].sum())


def new_incidents(incidents: pd.DataFrame, start, end) -> int:
    """新增案事件: incidents reported in the period."""
    return _num(incident_flags(incidents, start, end)["new"].sum())


def overdue_incidents(incidents: pd.DataFrame, start, end, at=None) -> int:
    """超期: reported in the period and either open at ``at`` (default ``end``) past ``due_at``, or closed after ``due_at``."""
    return _num(incident_flags(incidents, start, end, at)["overdue"].sum())


def onsite_handling_rate(incidents: pd.DataFrame, start, end) -> float | None:
    """现场处置率: reported in the period with level ``onsite`` / reported in the period."""
    f = incident_flags(incidents, start, end)
    return _rate(f["onsite"].sum(), f["new"].sum())


def resolution_rate(incidents: pd.DataFrame, start, end) -> float | None:
    """办结率: reported in the period and closed by its end / reported in the period."""
    f = incident_flags(incidents, start, end)
    return _rate(f["resolved"].sum(), f["new"].sum())


def median_hours_to_close(incidents: pd.DataFrame, start, end) -> float | None:
    """结案时长中位数: median of (closed_at − reported_at) in hours over incidents closed in the period."""
    h = incident_flags(incidents, start, end)["close_hours"].dropna()
    return None if h.empty else _none_if_nan(h.median())


def dispute_median_hours(incidents: pd.DataFrame, start, end) -> float | None:
    """纠纷化解时长中位数: median of (closed_at − reported_at) in hours over the disputes (``dispute.*``) closed in the
    period with outcome ``resolved`` — the time it took to resolve a dispute (seed 2019: down 67 %+ on 2018)."""
    h = incident_flags(incidents, start, end)["dispute_hours"].dropna()
    return None if h.empty else _none_if_nan(h.median())


def in_zone_resolution_rate(incidents: pd.DataFrame, start, end) -> float | None:
    """片区内化解率: closed in the period with level ≠ ``district`` / closed in the period."""
    f = incident_flags(incidents, start, end)
    return _rate(f["closed_in_zone"].sum(), f["closed_in"].sum())


def disputes_closed(incidents: pd.DataFrame, start, end) -> int:
    return _num(incident_flags(incidents, start, end)["dispute_closed"].sum())


def disputes_resolved(incidents: pd.DataFrame, start, end) -> int:
    """化解矛盾纠纷数: dispute incidents (category ``dispute.*``) closed in the period with outcome ``resolved``."""
    return _num(incident_flags(incidents, start, end)["dispute_resolved"].sum())


def dispute_success_rate(incidents: pd.DataFrame, start, end) -> float | None:
    """矛盾纠纷化解成功率: disputes closed in the period and resolved / disputes closed in the period."""
    f = incident_flags(incidents, start, end)
    return _rate(f["dispute_resolved"].sum(), f["dispute_closed"].sum())


def dispute_in_zone_rate(incidents: pd.DataFrame, start, end) -> float | None:
    """Disputes closed in the period with level ≠ district / disputes closed in the period (纠纷片区内化解率)."""
    f = incident_flags(incidents, start, end)
    d = f["dispute_closed"].to_numpy()
    return _rate((d & f["closed_in_zone"].to_numpy()).sum(), d.sum())


def longstanding_solved(incidents: pd.DataFrame, start, end) -> int:
    """化解历史遗留问题数: long-standing incidents closed in the period."""
    return _num(incident_flags(incidents, start, end)["longstanding_solved"].sum())


# -------------------------------------------------------------------------------- inspection KPIs
def inspections_in(inspections: pd.DataFrame, start, end) -> pd.DataFrame:
    """Inspection rows whose local day overlaps ``[start, end)``."""
    if inspections.empty:
        return inspections
    day = pd.to_datetime(inspections["inspected_on"])
    mask = np.ones(len(inspections), dtype=bool)
    if start is not None:
        mask &= (day >= _local_day(start).normalize()).to_numpy()
    if end is not None:
        mask &= (day < _local_day(end)).to_numpy()
    return inspections[mask]


def units_inspected(inspections: pd.DataFrame, start, end) -> int:
    """巡查单位数: distinct ``unit_id`` inspected in the period."""
    return _num(inspections_in(inspections, start, end)["unit_id"].nunique()) if len(inspections) else 0


def units_with_problems(inspections: pd.DataFrame, start, end) -> int:
    """发现问题单位数: distinct ``unit_id`` with ``problems_found > 0`` in the period."""
    if not len(inspections):
        return 0
    x = inspections_in(inspections, start, end)
    return _num(x.loc[x["problems_found"] > 0, "unit_id"].nunique())


def detection_rate(inspections: pd.DataFrame, start, end) -> float | None:
    """发现率: units with problems / units inspected."""
    return _rate(units_with_problems(inspections, start, end), units_inspected(inspections, start, end))


def problems_found(inspections: pd.DataFrame, start, end) -> int:
    """发现问题数: sum of ``problems_found`` in the period."""
    if not len(inspections):
        return 0
    return _num(inspections_in(inspections, start, end)["problems_found"].sum())


def _registered_total(registered) -> int:
    if registered is None:
        return 0
    if isinstance(registered, pd.DataFrame):
        return int(registered["registered_units"].sum())
    if isinstance(registered, pd.Series):
        return int(registered.sum())
    return int(registered)


def inspection_coverage(inspections: pd.DataFrame, registered, start, end) -> float | None:
    """巡查覆盖率: distinct units inspected in the period / registered units."""
    return _rate(units_inspected(inspections, start, end), _registered_total(registered))


# ------------------------------------------------------------------------------------ all at once
def _finish(row: dict) -> dict:
    out = {
        "open_incidents": int(row["open"]),
        "new_incidents": int(row["new"]),
        "overdue_incidents": int(row["overdue"]),
        "onsite_handling_rate": _rate(row["onsite"], row["new"]),
        "resolution_rate": _rate(row["resolved"], row["new"]),
        "units_inspected": int(row["units_inspected"]),
        "units_with_problems": int(row["units_with_problems"]),
        "detection_rate": _rate(row["units_with_problems"], row["units_inspected"]),
        "problems_found": int(row["problems_found"]),
        "registered_units": int(row["registered_units"]),
        "inspection_coverage": _rate(row["units_inspected"], row["registered_units"]),
        "median_hours_to_close": _none_if_nan(row["median_hours"]),
        "dispute_median_hours": _none_if_nan(row["dispute_median_hours"]),
        "in_zone_resolution_rate": _rate(row["closed_in_zone"], row["closed_in"]),
        "disputes_closed": int(row["dispute_closed"]),
        "disputes_resolved": int(row["dispute_resolved"]),
        "dispute_success_rate": _rate(row["dispute_resolved"], row["dispute_closed"]),
        "longstanding_solved": int(row["longstanding_solved"]),
    }
    return out


_SUMMED = ("open", "new", "overdue", "onsite", "resolved", "closed_in", "closed_in_zone", "dispute_closed",
           "dispute_resolved", "longstanding_solved")


def all_kpis(incidents: pd.DataFrame, inspections: pd.DataFrame, registered, start, end, at=None) -> dict:
    """Every KPI of :data:`KPIS` for one unit and period, as a dict (what one set of cards shows)."""
    f = incident_flags(incidents, start, end, at)
    row = {k: f[k].sum() for k in _SUMMED}
    h = f["close_hours"].dropna()
    row["median_hours"] = h.median() if len(h) else np.nan
    hd = f["dispute_hours"].dropna()
    row["dispute_median_hours"] = hd.median() if len(hd) else np.nan
    row["units_inspected"] = units_inspected(inspections, start, end)
    row["units_with_problems"] = units_with_problems(inspections, start, end)
    row["problems_found"] = problems_found(inspections, start, end)
    row["registered_units"] = _registered_total(registered)
    return _finish(row)


def _group_column(by: str) -> str:
    return _GROUP_COLUMNS.get(by, by)


def kpis_by(
    incidents: pd.DataFrame,
    inspections: pd.DataFrame,
    units: pd.DataFrame | None,
    by: str,
    start,
    end,
    at=None,
    codes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """All KPIs per town / zone / grid (``by`` = ``town|zone|grid`` or the column name).

    ``units`` is the grids frame (``code, zone_code, town_code, registered_units``) giving registered units
    per group; ``codes`` fixes the rows (e.g. all children of a unit, even those without data). Returns a
    frame indexed by code with one column per KPI (rates ``None`` where undefined, never NaN).
    Same formulas as :func:`all_kpis` — a group's row equals ``all_kpis`` on that group's rows.
    """
    col = _group_column(by)
    f = incident_flags(incidents, start, end, at)
    f["_g"] = _col(incidents, col, None).to_numpy()
    summed = f.groupby("_g")[list(_SUMMED)].sum()
    median = f.groupby("_g")["close_hours"].median()
    dispute_median = f.groupby("_g")["dispute_hours"].median()

    if len(inspections):
        x = inspections_in(inspections, start, end)
    else:
        x = pd.DataFrame(columns=["unit_id", "problems_found", col])
    ui = x.groupby(col)["unit_id"].nunique() if len(x) else pd.Series(dtype=float)
    up = x[x["problems_found"] > 0].groupby(col)["unit_id"].nunique() if len(x) else pd.Series(dtype=float)
    pf = x.groupby(col)["problems_found"].sum() if len(x) else pd.Series(dtype=float)

    if units is not None and len(units):
        ucol = col if col in units.columns else ("code" if col == "grid_code" else col)
        reg = units.groupby(ucol)["registered_units"].sum()
    else:
        reg = pd.Series(dtype=float)

    if codes is None:
        keys = set(summed.index.dropna()) | set(ui.index) | set(reg.index)
        codes = sorted(str(k) for k in keys)
    codes = list(codes)
    rows = []
    for code in codes:
        row = {k: (summed.at[code, k] if code in summed.index else 0) for k in _SUMMED}
        row["median_hours"] = median.get(code, np.nan)
        row["dispute_median_hours"] = dispute_median.get(code, np.nan)
        row["units_inspected"] = ui.get(code, 0)
        row["units_with_problems"] = up.get(code, 0)
        row["problems_found"] = pf.get(code, 0)
        row["registered_units"] = reg.get(code, 0)
        rows.append(_finish(row))
    out = pd.DataFrame(rows, index=pd.Index(codes, name=col), columns=list(KPIS))
    return out.astype(object).where(out.notna(), None)


# ------------------------------------------------------------------- change on the same period a year before
def year_on_year(now, before) -> float | None:
    """同比: the change of a measure on the same period a year before, as the relative change
    ``(now − before) / before`` (a fraction: 0.1612 is +16.12 %) — for counts, hours **and rates** alike.

    That is the Chinese statistical usage of "同比增长 x %" (a difference of two rates is written "x 个百分点"):
    the seed's "问题检出率达39.86%、同比增长16.12%" means 2018's rate was 39.86 % / 1.1612 = 34.33 %.
    :func:`points_change` gives a rate's difference in percentage points beside it. None when either value is
    missing (no data in one of the periods) or the year before is 0 (no relative change of nothing)."""
    now, before = _none_if_nan(now), _none_if_nan(before)
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before


def points_change(now, before) -> float | None:
    """A rate's change on the year before in percentage points, ``(now − before) × 100`` (None if either is
    missing)."""
    now, before = _none_if_nan(now), _none_if_nan(before)
    if now is None or before is None:
        return None
    return (now - before) * 100.0


def changes(values: dict, before: dict) -> dict:
    """``{kpi: {"change": year_on_year, "points": points_change or None}}`` for every KPI of ``values``
    (``points`` for rates only) — what the cards, the briefing and ``GET /api/v1/kpis`` show as 同比."""
    out = {}
    for k, v in values.items():
        if k not in KPIS:
            continue
        b = before.get(k)
        out[k] = {"change": year_on_year(v, b), "points": points_change(v, b) if KPIS[k][2] == "rate" else None}
    return out


# ------------------------------------------------------------------------- breakdowns and funnel
def level_share(incidents: pd.DataFrame, start, end) -> pd.DataFrame:
    """Cases reported in the period by level reached (片区现场 / 镇街 / 区): columns level, count, share."""
    f = incident_flags(incidents, start, end)
    lv = _col(incidents, "level", "onsite")[f["new"].to_numpy()]
    counts = lv.value_counts().reindex(list(LEVELS), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {"level": list(LEVELS), "count": counts.astype(int).to_numpy(),
         "share": [_rate(c, total) for c in counts.to_numpy()]}
    )


def department_workload(incidents: pd.DataFrame, start, end, at=None) -> pd.DataFrame:
    """Escalated (district) cases reported in the period per department (交办): assigned, open, closed, overdue,
    median hours to close. Sorted by assigned, descending."""
    f = incident_flags(incidents, start, end, at)
    dept = _col(incidents, "department", None)
    m = f["new"].to_numpy() & dept.notna().to_numpy() & (_col(incidents, "level", "") == "district").to_numpy()
    cols = ["department", "assigned", "open", "closed", "overdue", "median_hours_to_close"]
    if not m.any():
        return pd.DataFrame(columns=cols)
    rep = _utc_series(_col(incidents, "reported_at", pd.NaT))[m]
    cl = _utc_series(_col(incidents, "closed_at", pd.NaT))[m]
    d = pd.DataFrame({
        "department": dept[m].to_numpy(),
        "open": f["open"].to_numpy()[m],
        "closed": cl.notna().to_numpy(),
        "overdue": f["overdue"].to_numpy()[m],
        "hours": ((cl - rep).dt.total_seconds() / 3600.0).to_numpy(dtype=float, na_value=np.nan),
    })
    g = d.groupby("department")
    out = pd.DataFrame({
        "assigned": g.size(),
        "open": g["open"].sum(),
        "closed": g["closed"].sum(),
        "overdue": g["overdue"].sum(),
        "median_hours_to_close": g["hours"].median(),
    }).reset_index()
    out = out.astype({"assigned": int, "open": int, "closed": int, "overdue": int})
    out = out.sort_values(["assigned", "department"], ascending=[False, True]).reset_index(drop=True)[cols]
    out["median_hours_to_close"] = pd.Series([_none_if_nan(v) for v in out["median_hours_to_close"]],
                                             dtype=object, index=out.index)
    return out


def category_breakdown(incidents: pd.DataFrame, start, end) -> pd.DataFrame:
    """Cases reported in the period per category: category, count, share (descending)."""
    f = incident_flags(incidents, start, end)
    cat = _col(incidents, "category", "")[f["new"].to_numpy()]
    vc = cat.value_counts()
    total = int(vc.sum())
    return pd.DataFrame({"category": vc.index.astype(str), "count": vc.to_numpy().astype(int),
                         "share": [_rate(c, total) for c in vc.to_numpy()]})


def trend(incidents: pd.DataFrame, start, end, freq: str = "D", tz: str = LOCAL_TZ) -> pd.DataFrame:
    """New and closed cases per local day / week / month (``freq`` D, W, M) in the period."""
    f = incident_flags(incidents, start, end)
    freq = {"M": "MS", "W": "W-MON"}.get(freq, freq)

    def local(s: pd.Series) -> pd.Series:
        return _utc_series(s).dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)

    rep = local(_col(incidents, "reported_at", pd.NaT))[f["new"].to_numpy()]
    cl = local(_col(incidents, "closed_at", pd.NaT))[f["closed_in"].to_numpy()]
    new = rep.dt.to_period(freq[0]).dt.start_time.value_counts() if len(rep) else pd.Series(dtype=int)
    closed = cl.dt.to_period(freq[0]).dt.start_time.value_counts() if len(cl) else pd.Series(dtype=int)
    idx = new.index.union(closed.index).sort_values()
    return pd.DataFrame({"period": idx, "new": new.reindex(idx, fill_value=0).astype(int).to_numpy(),
                         "closed": closed.reindex(idx, fill_value=0).astype(int).to_numpy()})


def stage_durations(events: pd.DataFrame, at=None, include_open: bool = False) -> pd.DataFrame:
    """Time spent in each state, one row per (incident, state) stay: incident_id, state, hours.

    A stay starts at the event that entered the state and ends at the next event of the same incident.
    The current (last) state of an open incident is counted up to ``at`` only if ``include_open``.
    """
    cols = ["incident_id", "state", "hours"]
    if events is None or events.empty:
        return pd.DataFrame(columns=cols)
    order = ["incident_id", "seq"] if "seq" in events.columns else ["incident_id", "at"]
    e = events.sort_values(order, kind="stable")
    t = _utc_series(e["at"])
    inc = e["incident_id"].to_numpy()
    nxt_t = t.shift(-1)
    same = np.r_[inc[1:] == inc[:-1], False]
    end_t = nxt_t.where(same)
    if include_open:
        at_ts = to_utc(at) if at is not None else t.max()
        last_open = ~same & (e["to_status"] != "closed").to_numpy()
        end_t = end_t.where(~last_open, at_ts)
    hours = (end_t - t).dt.total_seconds() / 3600.0
    out = pd.DataFrame({"incident_id": inc, "state": e["to_status"].to_numpy(), "hours": hours.to_numpy()})
    out = out[(out["state"] != "closed") & out["hours"].notna()]
    return out.reset_index(drop=True)


def stage_times(events: pd.DataFrame, at=None, include_open: bool = False) -> pd.DataFrame:
    """Median / mean / p90 hours spent in each state (where cases get stuck), in lifecycle order."""
    d = stage_durations(events, at, include_open)
    cols = ["state", "stays", "median_hours", "mean_hours", "p90_hours"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby("state")["hours"]
    out = pd.DataFrame({"stays": g.size(), "median_hours": g.median(), "mean_hours": g.mean(),
                        "p90_hours": g.quantile(0.9)})
    order = [s for s in STATE_ORDER if s in out.index] + [s for s in out.index if s not in STATE_ORDER]
    out = out.reindex(order).reset_index().rename(columns={"index": "state"})
    out["stays"] = out["stays"].astype(int)
    return out[cols]


def funnel(events: pd.DataFrame) -> pd.DataFrame:
    """How many distinct incidents reached each state (lifecycle funnel), in lifecycle order."""
    cols = ["state", "incidents"]
    if events is None or events.empty:
        return pd.DataFrame({"state": list(STATE_ORDER), "incidents": [0] * len(STATE_ORDER)})[cols]
    n = events.groupby("to_status")["incident_id"].nunique()
    return pd.DataFrame({"state": list(STATE_ORDER),
                         "incidents": [int(n.get(s, 0)) for s in STATE_ORDER]})[cols]
