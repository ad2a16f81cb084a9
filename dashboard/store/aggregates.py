"""KPI aggregates kept as the data changes — what every card, ranking, chart and choropleth reads.

Every incident *contributes* a fixed set of counts to aggregate rows keyed by unit (district, town, zone, grid) ×
local day, month or year (grains d, m, y: :data:`GRAINS`): reported that day (new, level reached, closed since,
closed late), closed that day (in the zone, disputes, long-standing), the lifecycle states it reached, and histograms
of hours to close (kind ``close``; resolved disputes also under ``dispute``) and of time spent in each state. A write
changes an incident's contribution; :func:`apply_change` subtracts the old one and adds the new one in
the same transaction as the write, so the aggregates are never behind the rows and never count twice. One
function, :func:`contributions`, defines a contribution, for one incident or ten million: the incremental path and
:func:`rebuild` (``python -m dashboard aggregates rebuild``) both use it, and the property tests check both against
the pure KPI definitions in ``dashboard/metrics/kpis.py`` (the oracle).

What is *not* aggregated, because it depends on a moment rather than on days: which cases are open at a moment,
open past their due time, or were closed after a period ended. Those come from the incidents open at that moment
(:func:`open_at`) — the open ones through the open-cases index, and for a past moment the ones closed after it
through ``ix_incidents_close_lag`` (about twice their number, whatever the history's length); a bundle has the
database count them per unit (:func:`_moment_stmt`) instead of reading them. On PostgreSQL that index carries the
columns the counts read (migration 0012), so a past moment's cases come from the index alone, not from table pages
scattered over the history (a cold first read at 10M: 487 → 24 ms).

Histograms: hours are binned at 0.1 h below 30 days, 1 h below 2,000 h and 24 h beyond; each bin keeps its count
and the exact sum of its values. A median or p90 is read at the bin's one value where it holds one, else at the
bin's middle: exact to 0.05 h below 30 days (0.5 h below 2,000 h).
A period is read as its whole years, the whole months at their edges and its edge days (:class:`DaySpan`): a
multi-year period reads one row per unit and year, not twelve. The year rows are written like the others (the same
contributions); :func:`backfill_years` makes them from the month rows of a store kept before them (migration 0010).
Stage dwell histograms are kept per month and year for the district, towns and zones and per day for the district
and towns.
A period's stage times add the stays of the incidents reported in it (those histograms; a zone's edge days from the
events of their incidents) and of the ones carried over into it (the events of the cases open at its start,
:func:`carried_over_events`); a grid's lifecycle is read from its own events.

Reads of packed histograms and bitmaps take the driver's plain bytes (PostgreSQL: a binary cursor, not hex text)
and unpack them together (:func:`unpack_many`), not one row at a time. A bundle's reads (:func:`bundle_rows`) are
statements compiled once per shape of the period (:class:`Prepared`: values bound, no statement built per request)
and come back as the driver's tuples and numpy arrays, not frames.

Times: the store keeps UTC; local days are Asia/Shanghai (UTC+8, no daylight saving).
"""
from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from sqlalchemy import (BigInteger, Integer, String, and_, bindparam, case, cast, delete, func, literal, or_, select,
                        text, tuple_, type_coerce, union_all)

from ..domain.hours import US_PER_H, bin_mid, half_width, hour_bin  # noqa: F401 (re-exported)
from .models import (
    AGG_COUNT_COLUMNS,
    UTC,
    AggCategory,
    AggCounts,
    AggDept,
    AggHours,
    AggUnits,
    Incident,
    IncidentEvent,
    Inspection,
    InspectionUnits,
)

LOCAL_OFFSET = pd.Timedelta(hours=8)  # Asia/Shanghai
DISTRICT = "*"
LEVELS = ("district", "town", "zone", "grid")
LEVEL_COLUMN = {"district": None, "town": "town_code", "zone": "zone_code", "grid": "grid_code"}
STATES = ("reported", "onsite_handled", "routed", "escalated", "assigned", "in_progress", "handled", "verified",
          "closed")
# grains of the aggregate rows: local day, local month (``day`` = its first day), local year (``day`` = 1 January)
GRAINS = ("d", "m", "y")
# stage-dwell histograms: by day, month and year for the district and towns, by month and year for zones (a zone's
# edge days are read from its few incidents' events), none for grids (a grid's lifecycle reads its own events)
STAY_GRAINS = ((("district", "town"), ("d", "m", "y")), (("zone",), ("m", "y")))
DAY_STAY_LEVELS = STAY_GRAINS[0][0]  # the levels whose stay histograms are kept by day too (district, towns)
COARSE_LEVELS = ("district", "town", "zone")  # what a bundle reads for every unit; grids on demand
INCIDENT_COLUMNS = ("id", "grid_code", "zone_code", "town_code", "reported_at", "closed_at", "due_at", "level",
                    "category", "outcome", "longstanding", "department")
EVENT_COLUMNS = ("incident_id", "seq", "at", "to_status")
KEY = ("lvl", "code", "grain", "day")
_CHUNK = 50_000


# ---------------------------------------------------------------------------------------------- bins
def close_lag_class(reported_at, closed_at) -> int | None:
    """``incidents.close_lag``: 0 for under a day, c >= 1 for [2^(c-1), 2^c) days, None while open."""
    if closed_at is None or reported_at is None or pd.isna(closed_at):
        return None
    days = (pd.Timestamp(closed_at) - pd.Timestamp(reported_at)).total_seconds() / 86400.0
    if days < 1.0:
        return 0
    return int(np.floor(np.log2(days))) + 1


def close_lag_classes(reported: pd.Series, closed: pd.Series) -> pd.Series:
    days = (closed - reported).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan) / 86400.0
    with np.errstate(invalid="ignore", divide="ignore"):
        cls = np.where(days < 1.0, 0, np.floor(np.log2(np.maximum(days, 1.0))) + 1)
    return pd.Series(np.where(np.isnan(days), np.nan, cls), index=reported.index)


MAX_LAG_CLASS = 16  # 2^15 days ≈ 90 years


# ------------------------------------------------------------------------------------------- helpers
def naive_utc(s: pd.Series) -> pd.Series:
    """Times as naive UTC datetime64[ns] (SQLite text, PostgreSQL tz-aware, or already naive)."""
    if not pd.api.types.is_datetime64_any_dtype(s):
        s = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[ns]")


def local_day(s: pd.Series) -> pd.Series:
    """Naive UTC times -> their local (Asia/Shanghai) day at midnight, naive."""
    return (s + LOCAL_OFFSET).dt.floor("D")


def _us(td) -> np.ndarray:
    """timedelta64 values -> integer microseconds (NaT -> 0; mask separately)."""
    return np.asarray(td, dtype="timedelta64[ns]").astype("timedelta64[us]").astype(np.int64)


@dataclass(frozen=True)
class Coded:
    """A column as integer codes into its distinct values (what grouping works on: hashing strings is slow)."""

    codes: np.ndarray
    uniques: np.ndarray

    @staticmethod
    def of(values) -> "Coded":
        if isinstance(values, Coded):
            return values
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
        return Coded(codes.astype(np.int64), np.asarray(uniques, dtype=object))

    @staticmethod
    def const(value, n: int) -> "Coded":
        return Coded(np.zeros(n, dtype=np.int64), np.array([value], dtype=object))

    def take(self, idx) -> "Coded":
        return Coded(self.codes[idx], self.uniques)

    def __len__(self):
        return len(self.codes)


def _concat_coded(parts: list) -> Coded:
    """Coded columns over one vocabulary (each part's codes are remapped)."""
    vocab = pd.Index(pd.unique(np.concatenate([p.uniques for p in parts]))) if parts else pd.Index([])
    codes = [vocab.get_indexer(p.uniques)[p.codes] if len(p.codes) else np.array([], dtype=np.int64) for p in parts]
    return Coded(np.concatenate(codes).astype(np.int64) if codes else np.array([], dtype=np.int64),
                 np.asarray(vocab, dtype=object))


_LEVEL_ARR = np.array(LEVELS, dtype=object)
_GRAIN_ARR = np.array(GRAINS, dtype=object)


def _expand_arrays(grid, zone, town, day, levels=LEVELS, grains=GRAINS):
    """Key columns (lvl, code, parent, grain, day) for every (level, grain) of n facts, and the index of the fact
    each key row comes from. lvl, code, parent and grain are :class:`Coded`; day is datetime64[D]."""
    grid, zone, town = (Coded.of(x) for x in (grid, zone, town))
    n = len(grid)
    vocab = _concat_coded([grid, zone, town, Coded.of(np.array([DISTRICT, ""], dtype=object))])
    off = np.cumsum([0, len(grid), len(zone), len(town)])
    g_c, z_c, t_c = (vocab.codes[off[i]:off[i + 1]] for i in range(3))
    star, blank = vocab.codes[off[3]], vocab.codes[off[3] + 1]
    day = np.asarray(day, dtype="datetime64[D]")
    at_grain = {"d": day, "m": day.astype("datetime64[M]").astype("datetime64[D]"),
                "y": day.astype("datetime64[Y]").astype("datetime64[D]")}
    lv, cd, pa, gr, dy, src = [], [], [], [], [], []
    idx = np.arange(n)
    for level in levels:
        code = {"district": np.full(n, star), "town": t_c, "zone": z_c, "grid": g_c}[level]
        parent = {"district": np.full(n, blank), "town": np.full(n, star), "zone": t_c, "grid": z_c}[level]
        for g in grains:
            lv.append(np.full(n, LEVELS.index(level), dtype=np.int64))
            cd.append(code)
            pa.append(parent)
            gr.append(np.full(n, GRAINS.index(g), dtype=np.int64))
            dy.append(at_grain[g])
            src.append(idx)
    if not lv:
        e = Coded(np.array([], dtype=np.int64), np.array([], dtype=object))
        return {"lvl": e, "code": e, "parent": e, "grain": e, "day": np.array([], dtype="datetime64[D]")}, \
            np.array([], dtype=int)
    keys = {"lvl": Coded(np.concatenate(lv), _LEVEL_ARR), "code": Coded(np.concatenate(cd), vocab.uniques),
            "parent": Coded(np.concatenate(pa), vocab.uniques), "grain": Coded(np.concatenate(gr), _GRAIN_ARR),
            "day": np.concatenate(dy)}
    return keys, np.concatenate(src)


def group_sum(columns: dict, by: list[str], value_cols: list[str], sign: int = 1) -> pd.DataFrame:
    """Sum ``value_cols`` over the distinct combinations of ``by`` (columns: arrays, Series or :class:`Coded`),
    in order of first appearance: each key column is reduced to integer codes and the codes to one int64 key, so
    no tuple of strings is ever hashed. Integer columns stay exact (sums below 2^53)."""
    n = len(columns[by[0]])
    if n == 0:
        return pd.DataFrame({c: [] for c in [*by, *value_cols]})
    key = np.zeros(n, dtype=np.int64)
    size = 1
    coded = {}
    for c in by:
        col = columns[c]
        if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype) and not (col.cat.codes < 0).any():
            col = Coded(col.cat.codes.to_numpy().astype(np.int64), np.asarray(col.cat.categories, dtype=object))
        if not isinstance(col, Coded):
            arr = col.to_numpy() if isinstance(col, pd.Series) else np.asarray(col)
            codes, uniques = pd.factorize(arr, use_na_sentinel=False)
            col = Coded(codes.astype(np.int64), np.asarray(uniques))
        coded[c] = col
        k = max(len(col.uniques), 1)
        if size * k >= 2 ** 62:  # renumber the combinations so far before they overflow
            key, u = pd.factorize(key)
            size = len(u)
        key = key * k + col.codes
        size *= k
    inv, uniq = pd.factorize(key)
    m = len(uniq)
    # factorize numbers groups in order of first appearance: a group's first row is where the running max grows
    first = np.flatnonzero(np.r_[True, inv[1:] > np.maximum.accumulate(inv)[:-1]])
    out = {}
    for c in by:
        col = coded[c]
        codes = col.codes[first]
        if col.uniques.dtype == object and len(col.uniques) and not pd.isna(col.uniques).any():
            # strings stay coded (categorical): what reads them next groups, sorts and concatenates them cheaply
            out[c] = pd.Categorical.from_codes(codes, categories=pd.Index(col.uniques, dtype=object))
        else:
            out[c] = col.uniques[codes]
    for c in value_cols:
        v = columns[c]
        v = v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v)
        if np.issubdtype(v.dtype, np.integer) or v.dtype == bool:
            s = np.bincount(inv, weights=v.astype(np.float64), minlength=m).round().astype(np.int64)
        else:
            s = np.bincount(inv, weights=v.astype(np.float64), minlength=m)
        out[c] = s * sign if sign != 1 else s
    df = pd.DataFrame(out)
    if "day" in df.columns:
        df["day"] = pd.to_datetime(df["day"])
    return df


@dataclass
class Deltas:
    """Signed changes to each aggregate table (key columns + value columns)."""

    counts: pd.DataFrame
    category: pd.DataFrame
    dept: pd.DataFrame
    hours: pd.DataFrame

    def tables(self):
        return (("counts", self.counts), ("category", self.category), ("dept", self.dept), ("hours", self.hours))


def _stays(ev: pd.DataFrame) -> pd.DataFrame:
    """Completed stays (incident_id, state, us, hours): a stay ends at the incident's next event; 'closed' has
    none."""
    if ev.empty:
        return pd.DataFrame({"incident_id": pd.Series(dtype="int64"), "state": pd.Series(dtype=object),
                             "us": pd.Series(dtype="int64"), "hours": pd.Series(dtype=float)})
    e = ev.sort_values(["incident_id", "seq"], kind="stable")
    inc = e["incident_id"].to_numpy()
    t = e["at"].to_numpy()
    same = np.r_[inc[1:] == inc[:-1], False]
    nxt = np.r_[t[1:], t[-1:]]
    us = _us(nxt - t)
    state = e["to_status"].to_numpy()
    keep = same & (state != "closed")
    return pd.DataFrame({"incident_id": inc[keep], "state": state[keep], "us": us[keep],
                         "hours": us[keep] / US_PER_H})


def _group(keys: dict, extra: dict, values: dict, by: list[str], value_cols: list[str], sign: int) -> pd.DataFrame:
    return group_sum({**keys, **extra, **values}, by, value_cols, sign)


def contributions(inc: pd.DataFrame, ev: pd.DataFrame, sign: int = 1) -> Deltas:
    """What the incidents ``inc`` (columns :data:`INCIDENT_COLUMNS`) with their events ``ev`` (columns
    :data:`EVENT_COLUMNS`) add to every aggregate table, times ``sign`` (vectorised; for many incidents —
    :func:`contributions_of` is the same for a few)."""
    inc = inc.reset_index(drop=True)
    n = len(inc)
    rep = naive_utc(inc["reported_at"])
    clo = naive_utc(inc["closed_at"])
    due = naive_utc(inc["due_at"])
    ev = ev.copy()
    if len(ev):
        ev["at"] = naive_utc(ev["at"])
    rday = local_day(rep).to_numpy()
    cday = local_day(clo).to_numpy()
    closed = clo.notna().to_numpy()
    level = inc["level"].astype(object).to_numpy()
    category = inc["category"].astype(object).fillna("").astype(str).to_numpy()
    dispute = np.char.startswith(category.astype(str), "dispute.") if n else np.zeros(0, dtype=bool)
    outcome = inc["outcome"].astype(object).to_numpy()
    longstanding = inc["longstanding"].fillna(False).astype(bool).to_numpy()
    late = closed & (clo > due).fillna(False).to_numpy()
    dur_us = _us((clo - rep).to_numpy())
    department = inc["department"].astype(object).to_numpy()
    grid, zone, town = (Coded.of(inc[c].astype(object).to_numpy()) for c in ("grid_code", "zone_code", "town_code"))
    reached = np.zeros((n, len(STATES)), dtype=np.int64)
    if len(ev) and n:
        pos = pd.Index(inc["id"]).get_indexer(ev["incident_id"])
        spos = pd.Index(STATES).get_indexer(ev["to_status"].astype(object))
        ok = (pos >= 0) & (spos >= 0)
        reached[pos[ok], spos[ok]] = 1

    # --- counts: report-day facts and close-day facts
    cols = list(AGG_COUNT_COLUMNS)
    rv = np.zeros((n, len(cols)), dtype=np.int64)
    ci = {c: k for k, c in enumerate(cols)}
    rv[:, ci["r_new"]] = 1
    rv[:, ci["r_onsite"]] = level == "onsite"
    rv[:, ci["r_town"]] = level == "town"
    rv[:, ci["r_district"]] = level == "district"
    rv[:, ci["r_closed"]] = closed
    rv[:, ci["r_late"]] = late
    for k, st in enumerate(STATES):
        rv[:, ci[f"rf_{st}"]] = reached[:, k]
    cm = np.flatnonzero(closed)
    cv = np.zeros((len(cm), len(cols)), dtype=np.int64)
    in_zone = level[cm] != "district"
    cv[:, ci["c_closed"]] = 1
    cv[:, ci["c_in_zone"]] = in_zone
    cv[:, ci["c_dispute"]] = dispute[cm]
    cv[:, ci["c_dispute_resolved"]] = dispute[cm] & (outcome[cm] == "resolved")
    cv[:, ci["c_dispute_in_zone"]] = dispute[cm] & in_zone
    cv[:, ci["c_longstanding"]] = longstanding[cm]
    for k, st in enumerate(STATES):
        cv[:, ci[f"cf_{st}"]] = reached[cm, k]
    both = np.r_[np.arange(n), cm]
    keys, src = _expand_arrays(grid.take(both), zone.take(both), town.take(both), np.r_[rday, cday[cm]])
    allv = np.vstack([rv, cv])[src]
    counts = _group(keys, {}, {c: allv[:, k] for k, c in enumerate(cols)}, [*KEY, "parent"], cols, sign)

    # --- category by report day
    keys, src = _expand_arrays(grid, zone, town, rday)
    category_df = _group({k: v for k, v in keys.items() if k != "parent"}, {"category": Coded.of(category).take(src)},
                         {"n": np.ones(len(src), dtype=np.int64)}, [*KEY, "category"], ["n"], sign)

    # --- escalated cases per department, by report day
    dm = np.flatnonzero((level == "district") & pd.notna(department))
    keys, src = _expand_arrays(grid.take(dm), zone.take(dm), town.take(dm), rday[dm])
    dsrc = dm[src]
    dept_df = _group({k: v for k, v in keys.items() if k != "parent"},
                     {"department": Coded.of(department[dm].astype(str)).take(src)},
                     {"assigned": np.ones(len(dsrc), dtype=np.int64), "closed": closed[dsrc].astype(np.int64),
                      "late": late[dsrc].astype(np.int64)}, [*KEY, "department"], ["assigned", "closed", "late"],
                     sign)

    # --- hour histograms
    hk = {"kind": [], "lvl": [], "code": [], "grain": [], "day": [], "key2": [], "us": []}

    def add_hist(kind, rows, day, key2, us, levels=LEVELS, grains=GRAINS):
        keys, src = _expand_arrays(grid.take(rows), zone.take(rows), town.take(rows), day, levels, grains)
        hk["kind"].append(Coded.const(kind, len(src)))
        for k in ("lvl", "code", "grain", "day"):
            hk[k].append(keys[k])
        hk["key2"].append((key2 if isinstance(key2, Coded) else Coded.of(np.asarray(key2, dtype=object))).take(src))
        hk["us"].append(np.asarray(us, dtype=np.int64)[src] if len(src) else np.array([], dtype=np.int64))

    add_hist("close", cm, cday[cm], Coded.const("", len(cm)), dur_us[cm])
    rdm = np.flatnonzero(closed & dispute & (outcome == "resolved"))  # resolved disputes: time to resolve
    add_hist("dispute", rdm, cday[rdm], Coded.const("", len(rdm)), dur_us[rdm])
    dcm = np.flatnonzero((level == "district") & pd.notna(department) & closed)
    add_hist("dept", dcm, rday[dcm], department[dcm].astype(str), dur_us[dcm])
    stays = _stays(ev)
    if len(stays):
        pos = pd.Index(inc["id"]).get_indexer(stays["incident_id"])
        ok = pos >= 0
        pos = pos[ok]
        st_state = Coded.of(stays["state"].to_numpy()[ok])  # coded once, taken for each level
        st_us = stays["us"].to_numpy()[ok]
        for lvls, grains in STAY_GRAINS:
            add_hist("stay_r", pos, rday[pos], st_state, st_us, lvls, grains)
        cpos = closed[pos]
        for lvls, grains in STAY_GRAINS:
            add_hist("stay_c", pos[cpos], cday[pos[cpos]], st_state.take(cpos), st_us[cpos], lvls, grains)
    if any(len(x) for x in hk["us"]):
        flat = {k: (_concat_coded(v) if k in ("kind", "lvl", "code", "grain", "key2") else np.concatenate(v))
                for k, v in hk.items()}
        us = flat.pop("us")
        hours_df = _hist_group(flat, us, sign)
    else:
        hours_df = pd.DataFrame(columns=["kind", *KEY, "key2", "bin", "n", "hsum"])
    return Deltas(counts, category_df, dept_df, hours_df)


def _hist_group(flat: dict, us: np.ndarray, sign: int) -> pd.DataFrame:
    cols = {**flat, "bin": hour_bin(us), "n": np.ones(len(us), dtype=np.int64), "hsum": us / US_PER_H}
    return group_sum(cols, ["kind", *KEY, "key2", "bin"], ["n", "hsum"], sign)


# ------------------------------------------------------------------------- the same, for a few incidents
def _aware(t) -> dt.datetime | None:
    if t is None or (not isinstance(t, dt.datetime) and pd.isna(t)):
        return None
    if isinstance(t, pd.Timestamp):
        t = t.to_pydatetime()
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _lday(t: dt.datetime) -> dt.date:
    return (t + dt.timedelta(hours=8)).date()


def _td_us(d: dt.timedelta) -> int:
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


class Acc:
    """Sparse signed deltas per aggregate table: {key tuple: {column: value}} (see :func:`contributions_of`)."""

    def __init__(self):
        self.counts: dict = {}
        self.category: dict = {}
        self.dept: dict = {}
        self.hours: dict = {}

    @staticmethod
    def _add(table: dict, key, vals: dict, sign: int):
        cur = table.setdefault(key, {})
        for c, v in vals.items():
            if v:
                cur[c] = cur.get(c, 0) + sign * v

    def deltas(self) -> Deltas:
        def frame(table, keys, vcols):
            rows = [(*k, *[v.get(c, 0) for c in vcols]) for k, v in table.items()]
            df = pd.DataFrame(rows, columns=[*keys, *vcols])
            if len(df):
                df["day"] = pd.to_datetime(df["day"])
            return df

        return Deltas(frame(self.counts, [*KEY, "parent"], list(AGG_COUNT_COLUMNS)),
                      frame(self.category, [*KEY, "category"], ["n"]),
                      frame(self.dept, [*KEY, "department"], ["assigned", "closed", "late"]),
                      frame(self.hours, ["kind", *KEY, "key2", "bin"], ["n", "hsum"]))


def _grain_day(day: dt.date, grain: str) -> dt.date:
    """The ``day`` key of the row of ``grain`` that holds local day ``day``."""
    return day if grain == "d" else day.replace(day=1) if grain == "m" else day.replace(month=1, day=1)


def _unit_keys(r: dict, day: dt.date, levels=LEVELS, grains=GRAINS):
    units = {"district": (DISTRICT, ""), "town": (r["town_code"], DISTRICT), "zone": (r["zone_code"], r["town_code"]),
             "grid": (r["grid_code"], r["zone_code"])}
    at = {g: _grain_day(day, g) for g in grains}
    for lv in levels:
        code, parent = units[lv]
        for g in grains:
            yield lv, code, parent, g, at[g]


def _stay_keys(r: dict, day: dt.date):
    for lvls, grains in STAY_GRAINS:
        yield from _unit_keys(r, day, lvls, grains)


def contributions_of(acc: Acc, r: dict, events: list, sign: int) -> None:
    """Add ``sign`` × the contribution of one incident (a dict of :data:`INCIDENT_COLUMNS`) with its events
    (tuples seq, at, to_status) to ``acc`` — the same as :func:`contributions` for one row."""
    rep, clo, due = _aware(r["reported_at"]), _aware(r["closed_at"]), _aware(r["due_at"])
    rday = _lday(rep)
    closed = clo is not None
    level = r["level"]
    cat = r["category"] or ""
    dispute = cat.startswith("dispute.")
    late = bool(closed and due is not None and clo > due)
    reached = {e[2] for e in events} & set(STATES)
    rvals = {"r_new": 1, "r_onsite": int(level == "onsite"), "r_town": int(level == "town"),
             "r_district": int(level == "district"), "r_closed": int(closed), "r_late": int(late)}
    rvals.update({f"rf_{s}": 1 for s in reached})
    for lv, code, parent, g, day in _unit_keys(r, rday):
        Acc._add(acc.counts, (lv, code, g, day, parent), rvals, sign)
        Acc._add(acc.category, (lv, code, g, day, cat), {"n": 1}, sign)
    dept = r["department"]
    escalated = level == "district" and dept is not None and not (isinstance(dept, float) and np.isnan(dept))
    if escalated:
        for lv, code, parent, g, day in _unit_keys(r, rday):
            Acc._add(acc.dept, (lv, code, g, day, str(dept)),
                     {"assigned": 1, "closed": int(closed), "late": int(late)}, sign)
    if closed:
        cday = _lday(clo)
        in_zone = level != "district"
        cvals = {"c_closed": 1, "c_in_zone": int(in_zone), "c_dispute": int(dispute),
                 "c_dispute_resolved": int(dispute and r["outcome"] == "resolved"),
                 "c_dispute_in_zone": int(dispute and in_zone), "c_longstanding": int(bool(r["longstanding"]))}
        cvals.update({f"cf_{s}": 1 for s in reached})
        us = _td_us(clo - rep)
        b, h = int(hour_bin(us)), us / US_PER_H
        for lv, code, parent, g, day in _unit_keys(r, cday):
            Acc._add(acc.counts, (lv, code, g, day, parent), cvals, sign)
            Acc._add(acc.hours, ("close", lv, code, g, day, "", b), {"n": 1, "hsum": h}, sign)
            if dispute and r["outcome"] == "resolved":
                Acc._add(acc.hours, ("dispute", lv, code, g, day, "", b), {"n": 1, "hsum": h}, sign)
        if escalated:
            for lv, code, parent, g, day in _unit_keys(r, rday):
                Acc._add(acc.hours, ("dept", lv, code, g, day, str(dept), b), {"n": 1, "hsum": h}, sign)
    evs = sorted(events, key=lambda e: e[0])
    for e0, e1 in zip(evs, evs[1:]):
        if e0[2] == "closed":
            continue
        us = _td_us(_aware(e1[1]) - _aware(e0[1]))
        b, h = int(hour_bin(us)), us / US_PER_H
        for lv, code, parent, g, day in _stay_keys(r, rday):
            Acc._add(acc.hours, ("stay_r", lv, code, g, day, e0[2], b), {"n": 1, "hsum": h}, sign)
        if closed:
            for lv, code, parent, g, day in _stay_keys(r, _lday(clo)):
                Acc._add(acc.hours, ("stay_c", lv, code, g, day, e0[2], b), {"n": 1, "hsum": h}, sign)


# ---------------------------------------------------------------------------------------- writing
_TABLES = {"counts": AggCounts, "category": AggCategory, "dept": AggDept}
HKEY = ("kind", *KEY, "key2")
# A rebuild writes each batch of new rows in the order the reads look them up — the leading columns of the tables'
# read indexes (``ix_agg_*_grain_day``, ``ix_agg_hist_kind_grain_lvl_day``), then the rest of the key — so the rows
# one period of the district, towns and zones needs lie together on a few pages instead of one page each: a cold
# read of a three-year period's close and dispute histograms at 10M incidents touched 1,696 pages of ``agg_hist``
# written in key order into a table emptied by DELETE, 244 written in this order into one emptied by TRUNCATE
# (rebuild; PostgreSQL's CLUSTER, a rewrite of the whole table, left 216).
READ_ORDER = {"rows": ("grain", "day", "lvl"), "hist": ("kind", "grain", "lvl", "day")}


def _read_order(df: pd.DataFrame, first: tuple, key: list) -> np.ndarray:
    """The positions of ``df``'s rows sorted by the columns ``first`` and then the rest of ``key`` (stable)."""
    cols = [*first, *(c for c in key if c not in first)]
    return np.lexsort([pd.factorize(np.asarray(df[c]), sort=True)[0] for c in reversed(cols)])


def _value_columns(table) -> list[str]:
    return [c.name for c in table.columns if not c.primary_key and c.name != "parent"]


def _py(v):
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v).date()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _upsert_sql(table) -> str:
    cols = [c.name for c in table.columns]
    keys = [c.name for c in table.columns if c.primary_key]
    vals = _value_columns(table)
    sets = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in vals)
    return (f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")


def write(conn, deltas: Deltas, fresh: bool = False, freeze: bool = False) -> int:
    """Add ``deltas`` to the aggregate tables (upserts); rows that come to zero are removed. Returns rows touched.
    ``fresh``: the rows are known not to exist yet (a rebuild: plain inserts, in :data:`READ_ORDER`); ``freeze``:
    the tables were emptied by TRUNCATE in this transaction (PostgreSQL: ``COPY … FREEZE``)."""
    n = 0
    for name, df in deltas.tables():
        if df is None or df.empty:
            continue
        if name == "hours":
            n += write_hist(conn, df, fresh=fresh, freeze=freeze)
            continue
        table = _TABLES[name]
        vals = _value_columns(table)
        counters = [c for c in vals if c != "hsum"]
        df = df[(df[counters] != 0).any(axis=1)]
        if df.empty:
            continue
        cols = [c.name for c in table.columns]
        if fresh:
            df = df.iloc[_read_order(df, READ_ORDER["rows"], [c for c in cols if c not in vals])]
            n += _insert_many(conn, table.name, cols, [df[c] for c in cols], freeze=freeze)
            continue
        records = [{c: _py(v) for c, v in zip(cols, row)} for row in df[cols].itertuples(index=False, name=None)]
        conn.execute(text(_upsert_sql(table)), records)
        n += len(records)
        if not fresh and (df[counters] < 0).any(axis=None):  # something was subtracted: drop rows that came to zero
            keys = [c.name for c in table.columns if c.primary_key]
            cond = " AND ".join(f"{c} = 0" for c in counters)
            kcond = " AND ".join(f"{k} = :{k}" for k in keys)
            conn.execute(text(f"DELETE FROM {table.name} WHERE {kcond} AND {cond}"),
                         [{k: r[k] for k in keys} for r in records])
    return n


def _plain_column(col, sqlite: bool) -> list:
    if isinstance(col, pd.Series) and pd.api.types.is_datetime64_any_dtype(col):
        return col.dt.strftime("%Y-%m-%d").tolist() if sqlite else [x.date() for x in col]
    vals = col.tolist() if hasattr(col, "tolist") else list(col)
    if vals and isinstance(vals[0], dt.date) and sqlite:
        return [v.isoformat() for v in vals]
    return vals


def _insert_many(conn, table: str, cols: list[str], columns: list, freeze: bool = False) -> int:
    """Plain INSERT of many rows into an empty table (a rebuild): ``COPY`` on PostgreSQL (``FREEZE`` when the
    table was truncated in this transaction: rows written frozen and all-visible, so the first reads do not
    rewrite every page to set hint bits), the driver's executemany on SQLite."""
    sqlite = conn.dialect.name == "sqlite"
    if conn.dialect.name == "postgresql":
        return _copy_binary(conn, table, cols, columns, freeze=freeze)
    data = list(zip(*(_plain_column(c, sqlite) for c in columns)))
    if not data:
        return 0
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
    for i in range(0, len(data), 20_000):
        conn.exec_driver_sql(sql, data[i:i + 20_000])
    return len(data)


def _copy_binary(conn, table: str, cols: list[str], columns: list, freeze: bool = False) -> int:
    """``COPY … FROM STDIN (FORMAT binary)`` of columns (arrays, Series, lists): encoded column-wise with numpy
    (:func:`dashboard.store.incidents._pg_binary_blocks`), not a Python tuple per row."""
    from .incidents import _pg_binary_blocks

    types = _pg_types(conn, table)
    values = []
    for c, col in zip(cols, columns):
        if types[c] == "date":
            a = (col.to_numpy() if isinstance(col, pd.Series) else np.array(list(col), dtype="datetime64[D]"))
            values.append(np.asarray(a).astype("datetime64[D]"))
        elif types[c] in ("bigint", "integer", "smallint"):
            values.append(np.asarray(col, dtype=np.int64))
        else:
            values.append(np.asarray(col.astype(object) if isinstance(col, pd.Series) else list(col), dtype=object))
    n = len(values[0]) if values else 0
    if not n:
        return 0
    blocks = _pg_binary_blocks(list(cols), values, ["int"] * len(cols), types)
    with conn.connection.driver_connection.cursor() as cur, \
            cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT binary{', FREEZE' if freeze else ''})") \
            as copy:
        for block in blocks:
            copy.write(block)
    return n


def _pg_types(conn, table: str) -> dict:
    """PostgreSQL's names of a table's column types (``character varying`` as ``text``)."""
    rows = conn.exec_driver_sql(f"SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
                                f"'{table}'::regclass AND attnum > 0 AND NOT attisdropped").all()
    return {a: ("text" if t in ("character varying", "character") else t) for a, t in rows}


# ------------------------------------------------------------------------------------- histograms
def pack(bins: np.ndarray, n: np.ndarray, hsum: np.ndarray) -> bytes:
    """A histogram as bytes: count k, then k int32 bins (ascending), k int64 counts, k float64 sums."""
    k = len(bins)
    return (np.int32(k).tobytes() + np.asarray(bins, dtype="<i4").tobytes() + np.asarray(n, dtype="<i8").tobytes()
            + np.asarray(hsum, dtype="<f8").tobytes())


def pack_many(starts: np.ndarray, ends: np.ndarray, bins: np.ndarray, n: np.ndarray, hsum: np.ndarray) -> list[bytes]:
    """:func:`pack` of each slice ``[starts[g], ends[g])`` of ``bins``, ``n``, ``hsum``, all at once (a rebuild packs
    hundreds of thousands of histograms): every packed histogram is 1 + 5k little-endian 32-bit words (the count,
    k bins, k counts and k sums of two words each), laid out in one numpy buffer, then cut."""
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    k = ends - starts
    words = 1 + 5 * k
    off = np.cumsum(words) - words
    buf = np.empty(int(words.sum()), dtype="<u4")
    buf[off] = k.astype("<i4").view("<u4")
    g = np.repeat(np.arange(len(k)), k)  # the histogram of each value
    j = np.arange(len(g)) - np.repeat(np.cumsum(k) - k, k)  # its position in the histogram
    sel = starts[g] + j
    first = off[g] + 1  # the histogram's first bin
    buf[first + j] = np.asarray(bins)[sel].astype("<i4").view("<u4")
    for at, values in ((first + k[g] + 2 * j, np.asarray(n)[sel].astype("<i8")),
                       (first + 3 * k[g] + 2 * j, np.asarray(hsum)[sel].astype("<f8"))):
        w = values.view("<u4").reshape(-1, 2)
        buf[at] = w[:, 0]
        buf[at + 1] = w[:, 1]
    raw = buf.tobytes()
    return [raw[4 * a:4 * (a + z)] for a, z in zip(off.tolist(), words.tolist())]


def unpack(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = int(np.frombuffer(data, dtype="<i4", count=1)[0])
    bins = np.frombuffer(data, dtype="<i4", count=k, offset=4)
    n = np.frombuffer(data, dtype="<i8", count=k, offset=4 + 4 * k)
    hsum = np.frombuffer(data, dtype="<f8", count=k, offset=4 + 12 * k)
    return bins, n, hsum


def _merge_hist(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bins = np.concatenate([p[0] for p in parts]).astype(np.int64)
    n = np.concatenate([p[1] for p in parts]).astype(np.int64)
    hsum = np.concatenate([p[2] for p in parts]).astype(float)
    ub, inv = np.unique(bins, return_inverse=True)
    nn = np.bincount(inv, weights=n, minlength=len(ub)).round().astype(np.int64)
    hs = np.bincount(inv, weights=hsum, minlength=len(ub))
    keep = nn != 0
    return ub[keep], nn[keep], hs[keep]


def _date(v) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v).date()
    return dt.date.fromisoformat(str(v)[:10])


def write_hist(conn, df: pd.DataFrame, fresh: bool = False, freeze: bool = False) -> int:
    """Add histogram deltas (rows kind, lvl, code, grain, day, key2, bin, n, hsum) to ``agg_hist``: each touched
    histogram is read, merged and written back (writes are serialised by the change-sequence lock); one that
    comes to nothing is removed. ``fresh``: the histograms are known not to exist yet (a rebuild)."""
    t = AggHours
    if df.empty:
        return 0
    df = df.sort_values([*HKEY, "bin"], kind="stable").reset_index(drop=True)
    df["day"] = pd.to_datetime(df["day"])
    gid = df.groupby(list(HKEY), sort=False).ngroup().to_numpy()
    starts = np.r_[0, np.flatnonzero(gid[1:] != gid[:-1]) + 1]
    ends = np.r_[starts[1:], len(df)]
    firsts = df.iloc[starts]
    bins, n, hs = df["bin"].to_numpy(), df["n"].to_numpy(dtype=np.int64), df["hsum"].to_numpy(dtype=float)
    if fresh:  # collapsed, sorted, new: pack the slices as they are (vectorised)
        nvals = np.add.reduceat(n, starts)
        keep = np.flatnonzero(np.add.reduceat((n != 0).astype(np.int64), starts) > 0)  # not all zero
        if not len(keep):
            return 0
        sel = keep[_read_order(firsts.iloc[keep], READ_ORDER["hist"], list(HKEY))]  # kept, in the reads' order
        f = firsts.iloc[sel]
        return _insert_many(conn, t.name, [*HKEY, "nvals", "data"],
                            [f["kind"], f["lvl"], f["code"], f["grain"], f["day"], f["key2"], nvals[sel].tolist(),
                             pack_many(starts[sel], ends[sel], bins, n, hs)], freeze=freeze)
    keys = list(zip(firsts["kind"], firsts["lvl"], firsts["code"], firsts["grain"],
                    [d.date() for d in firsts["day"]], firsts["key2"]))
    groups = {k: (a, b) for k, a, b in zip(keys, starts, ends)}
    old = {}
    klist = list(groups)
    for row in _rows_by_keys(conn, t, HKEY, klist, ("data",)):
        old[(row[0], row[1], row[2], row[3], _date(row[4]), row[5])] = unpack(row[6])
    ins, upd, dele = [], [], []
    for k, (a, b) in groups.items():
        parts = [(bins[a:b], n[a:b], hs[a:b])]
        if k in old:
            parts.append(old[k])
        ub, nn, hh = _merge_hist(parts)
        rec = {"kind": k[0], "lvl": k[1], "code": k[2], "grain": k[3], "day": k[4], "key2": k[5]}
        if len(ub) == 0:
            if k in old:
                dele.append(rec)
            continue
        rec.update(nvals=int(nn.sum()), data=pack(ub, nn, hh))
        (upd if k in old else ins).append(rec)
    cond = and_(*(t.c[c] == bindparam("k_" + c) for c in HKEY))
    if ins:
        conn.execute(t.insert(), ins)
    if upd:
        conn.execute(t.update().where(cond).values(nvals=bindparam("nvals"), data=bindparam("data")),
                     [{**{"k_" + c: r[c] for c in HKEY}, "nvals": r["nvals"], "data": r["data"]} for r in upd])
    if dele:
        conn.execute(t.delete().where(cond), [{"k_" + c: r[c] for c in HKEY} for r in dele])
    return len(ins) + len(upd) + len(dele)


def write_acc(conn, acc: Acc) -> int:
    """:func:`write` for the sparse deltas of :class:`Acc` (no pandas on the path of a single write)."""
    n = 0
    if acc.hours:
        rows = [(*k, v.get("n", 0), v.get("hsum", 0.0)) for k, v in acc.hours.items()]
        n += write_hist(conn, pd.DataFrame(rows, columns=[*HKEY, "bin", "n", "hsum"]))
    for name, table_d, keys in (("counts", acc.counts, [*KEY, "parent"]), ("category", acc.category,
                                [*KEY, "category"]), ("dept", acc.dept, [*KEY, "department"])):
        table = _TABLES[name]
        vals = _value_columns(table)
        counters = [c for c in vals if c != "hsum"]
        records, negative = [], False
        for k, v in table_d.items():
            if not any(v.get(c, 0) for c in counters):
                continue
            rec = dict(zip(keys, k))
            for c in vals:
                rec[c] = v.get(c, 0)
                if c in counters and rec[c] < 0:
                    negative = True
            records.append(rec)
        if not records:
            continue
        conn.execute(text(_upsert_sql(table)), records)
        n += len(records)
        if negative:
            pk = [c.name for c in table.columns if c.primary_key]
            cond = " AND ".join(f"{c} = 0" for c in counters)
            kcond = " AND ".join(f"{k} = :{k}" for k in pk)
            conn.execute(text(f"DELETE FROM {table.name} WHERE {kcond} AND {cond}"),
                         [{k: r[k] for k in pk} for r in records])
    return n


IN_PART = 1000  # values a statement's IN list takes at once (PostgreSQL binds at most 65,535 parameters a statement;
# a rebuild registers a province's inspected units, in ~67,000 grids, at once)


def _parts(values: list, size: int = IN_PART):
    """``values`` in consecutive slices of at most ``size``, for IN lists of a bounded length."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _read_rows(conn, ids) -> tuple[list[dict], dict]:
    """Current rows (dicts) of ``ids`` and their events {incident_id: [(seq, at, to_status)]} — the small path."""
    ids = [int(i) for i in ids]
    t, e = Incident.__table__, IncidentEvent.__table__
    rows, events = [], {}
    for part in _parts(ids):
        rows += [dict(r._mapping) for r in conn.execute(select(*(t.c[c] for c in INCIDENT_COLUMNS))
                                                        .where(t.c.id.in_(part)))]
        for iid, seq, at, st in conn.execute(select(*(e.c[c] for c in EVENT_COLUMNS))
                                             .where(e.c.incident_id.in_(part))):
            events.setdefault(iid, []).append((seq, at, st))
    return rows, events


def _frame(rows, columns, epoch_us: bool = False) -> pd.DataFrame:
    """Rows as a frame with the time columns as naive UTC datetime64[ns]; ``epoch_us``: the times come as integer
    microseconds (NULL as None) and are converted exactly, with no float on the way."""
    cols = dict(zip(columns, zip(*rows))) if rows else {c: () for c in columns}
    data = {}
    for c, v in cols.items():
        if epoch_us and c in _TIME_COLUMNS:  # from the values as fetched, exactly
            data[c] = _epoch_us(v).view("datetime64[us]").astype("datetime64[ns]")
        else:
            data[c] = list(v)
    df = pd.DataFrame(data, columns=list(columns))
    if not epoch_us:
        for c in _TIME_COLUMNS:
            if c in df.columns:
                df[c] = naive_utc(df[c]) if len(df) else pd.Series(dtype="datetime64[ns]")
    return df


def _epoch_us(values) -> np.ndarray:
    """Integer microseconds (None -> NaT's integer) as int64: through float64 when every value is below 2^53 in
    magnitude (exact there: any time before the year 2255), else one value at a time."""
    f = np.array(values, dtype=np.float64) if len(values) else np.array([], dtype=np.float64)
    ok = ~np.isnan(f)
    if ok.any() and np.abs(f[ok]).max() >= 2.0 ** 53:
        return np.array([_NAT if v is None else v for v in values], dtype=np.int64)
    us = np.full(len(f), _NAT, dtype=np.int64)
    us[ok] = f[ok].astype(np.int64)
    return us


@dataclass
class Snapshot:
    """The state of some incidents before a change (see :func:`capture`)."""

    rows: list
    events: dict


def capture(session, ids) -> Snapshot:
    """Read the current state of ``ids`` (inside the write transaction, after locking them) before changing them."""
    rows, events = _read_rows(session.connection(), ids)
    return Snapshot(rows, events)


def apply_change(session, before: Snapshot | None, ids) -> None:
    """After a write (flushed, not committed): replace the contribution of ``before`` by that of ``ids`` now.

    ``before`` is None for incidents that did not exist. Call it in the write's own transaction."""
    session.flush()
    conn = session.connection()
    rows, events = _read_rows(conn, ids)
    acc = Acc()
    if before is not None:
        for r in before.rows:
            contributions_of(acc, r, before.events.get(r["id"], []), -1)
    for r in rows:
        contributions_of(acc, r, events.get(r["id"], []), +1)
    _set_close_lag(conn, rows)
    write_acc(conn, acc)


def apply_new(session, rows: list[dict], events: dict) -> None:
    """:func:`apply_change` for incidents just inserted, from the rows the writer holds (no read back):
    ``rows`` dicts with :data:`INCIDENT_COLUMNS`, ``events`` {id: [(seq, at, to_status)]}."""
    acc = Acc()
    for r in rows:
        contributions_of(acc, r, events.get(r["id"], []), +1)
    write_acc(session.connection(), acc)


def _collapse(d: Deltas) -> Deltas:
    def coll(df, keys, vals):
        if df.empty:
            return df
        return group_sum({c: df[c] for c in [*keys, *vals]}, keys, vals)

    return Deltas(coll(d.counts, [*KEY, "parent"], list(AGG_COUNT_COLUMNS)),
                  coll(d.category, [*KEY, "category"], ["n"]),
                  coll(d.dept, [*KEY, "department"], ["assigned", "closed", "late"]),
                  coll(d.hours, ["kind", *KEY, "key2", "bin"], ["n", "hsum"]))


def _set_close_lag(conn, rows: list[dict]) -> None:
    upd = [{"i": int(r["id"]), "c": close_lag_class(_aware(r["reported_at"]), _aware(r["closed_at"]))}
           for r in rows if r["closed_at"] is not None]
    if upd:
        t = Incident.__table__
        conn.execute(t.update().where(t.c.id == bindparam("i")).values(close_lag=bindparam("c")), upd)


# ------------------------------------------------------------------------------------- inspections
def _or_bytes(a: bytes, b: bytes) -> bytes:
    v = int.from_bytes(a, "little") | int.from_bytes(b, "little")
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "little")


def unit_ordinals(conn, units: pd.DataFrame) -> np.ndarray:
    """Ordinal of each (unit_id, grid_code) within its grid, registering units seen for the first time."""
    t = InspectionUnits
    ids = sorted(set(units["unit_id"].astype(str)))
    known = {}
    for part in _parts(ids):
        for uid, ordinal in conn.execute(select(t.c.unit_id, t.c.ordinal).where(t.c.unit_id.in_(part))):
            known[uid] = ordinal
    missing = units[~units["unit_id"].astype(str).isin(known)].drop_duplicates("unit_id")
    if len(missing):
        nxt = {}
        for part in _parts(sorted(set(missing["grid_code"]))):
            nxt.update(conn.execute(select(t.c.grid_code, func.max(t.c.ordinal)).where(
                t.c.grid_code.in_(part)).group_by(t.c.grid_code)).all())
        rows = []
        for uid, grid in zip(missing["unit_id"].astype(str), missing["grid_code"].astype(str)):
            o = (nxt.get(grid) if nxt.get(grid) is not None else -1) + 1
            nxt[grid] = o
            known[uid] = o
            rows.append({"unit_id": uid, "grid_code": grid, "ordinal": o})
        conn.execute(t.insert(), rows)
    return units["unit_id"].astype(str).map(known).to_numpy()


def add_inspections(conn, rows: pd.DataFrame) -> None:
    """Aggregate new inspection rows (unit_id, grid_code, zone_code, town_code, inspected_on, problems_found):
    counts per unit and day, and the grid's bitmaps of units inspected / with problems (distinct units)."""
    if rows.empty:
        return
    rows = rows.reset_index(drop=True)
    write(conn, inspection_counts(rows))
    add_inspection_bits(conn, rows)


def inspection_counts(rows: pd.DataFrame) -> Deltas:
    """The counts inspection rows add (rows and problems found per unit and day)."""
    day = pd.to_datetime(rows["inspected_on"]).dt.floor("D")
    keys, src = _expand_arrays(rows["grid_code"].astype(object).to_numpy(), rows["zone_code"].astype(object).to_numpy(),
                               rows["town_code"].astype(object).to_numpy(), day.to_numpy())
    vals = {c: np.zeros(len(src), dtype=np.int64) for c in AGG_COUNT_COLUMNS}
    vals["i_rows"][:] = 1
    vals["i_problems"] = rows["problems_found"].astype(np.int64).to_numpy()[src]
    counts = _group(keys, {}, vals, [*KEY, "parent"], list(AGG_COUNT_COLUMNS), 1)
    empty = pd.DataFrame()
    return Deltas(counts, empty, empty, empty)


def add_inspection_bits(conn, rows: pd.DataFrame, acc: dict | None = None, known: dict | None = None) -> None:
    """The grids' bitmaps of units inspected / with problems per day, month and year (distinct units). With ``acc``
    (a rebuild) the bits are gathered there and written once by :func:`write_bits_fresh`; ``known``: every unit's
    ordinal, registered beforehand (a rebuild)."""
    day = pd.to_datetime(rows["inspected_on"]).dt.floor("D")
    ords = (unit_ordinals(conn, rows[["unit_id", "grid_code"]]) if known is None
            else rows["unit_id"].astype(str).map(known).to_numpy())
    new: dict = {} if acc is None else acc
    days = [d.date() for d in day]
    for grid, d, o, p in zip(rows["grid_code"].astype(str), days, ords.tolist(), (rows["problems_found"] > 0).tolist()):
        bit = 1 << int(o)
        for key in [(grid, g, _grain_day(d, g)) for g in GRAINS]:
            cur = new.get(key)
            if cur is None:
                cur = new[key] = [0, 0]
            cur[0] |= bit
            if p:
                cur[1] |= bit
    if acc is None:
        _merge_bits(conn, {k: (_int_bytes(a), _int_bytes(b)) for k, (a, b) in new.items()})


def write_bits_fresh(conn, acc: dict, freeze: bool = False) -> int:
    """Insert gathered bitmaps into an empty ``agg_units`` (a rebuild), in the order its reads take them (by grain
    and day)."""
    items = sorted(acc.items(), key=lambda kv: (kv[0][1], str(kv[0][2]), kv[0][0]))
    return _insert_many(conn, AggUnits.name, ["grid_code", "grain", "day", "inspected", "problems"],
                        [[k[0] for k, _ in items], [k[1] for k, _ in items], [k[2] for k, _ in items],
                         [_int_bytes(v[0]) for _, v in items], [_int_bytes(v[1]) for _, v in items]], freeze=freeze)


def _rows_by_keys(conn, table, cols, keys, values):
    """The rows (``cols`` then ``values``) of ``table`` whose ``cols`` equal one of ``keys``, a hundred keys per
    query (an OR of ANDs: both back ends answer it from the primary key)."""
    sel = [table.c[c] for c in (*cols, *values)]
    for i in range(0, len(keys), 100):
        yield from conn.execute(select(*sel).where(_keys_in(table, cols, keys[i:i + 100])))


def _keys_in(table, cols, keys):
    """Rows whose ``cols`` equal one of ``keys``: an OR of ANDs, which both back ends answer from the primary key
    (PostgreSQL does not use the index for a row-value IN list)."""
    return or_(*(and_(*(table.c[c] == v for c, v in zip(cols, k))) for k in keys))


def _int_bytes(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "little")


def _merge_bits(conn, new: dict) -> None:
    t = AggUnits
    keys = list(new)
    old = {}
    for g, gr, d, a, b in _rows_by_keys(conn, t, ("grid_code", "grain", "day"), keys, ("inspected", "problems")):
        old[(g, gr, d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)))] = (a, b)
    ins, upd = [], []
    for k, (a, b) in new.items():
        if k in old:
            oa, ob = old[k]
            upd.append({"g": k[0], "gr": k[1], "d": k[2], "a": _or_bytes(oa, a), "b": _or_bytes(ob, b)})
        else:
            ins.append({"grid_code": k[0], "grain": k[1], "day": k[2], "inspected": a, "problems": b})
    if ins:
        conn.execute(t.insert(), ins)
    if upd:
        conn.execute(t.update().where(and_(t.c.grid_code == bindparam("g"), t.c.grain == bindparam("gr"),
                                           t.c.day == bindparam("d"))).values(
            inspected=bindparam("a"), problems=bindparam("b")), upd)


# ------------------------------------------------------------------------------------------ rebuild
AGG_TABLES = (AggCounts, AggCategory, AggDept, AggHours, AggUnits, InspectionUnits)


def rebuild(engine, chunk: int = _CHUNK, progress=None, fold: int = 2) -> dict:
    """Recompute every aggregate from the rows (one transaction), streaming: incidents in id ranges of ``chunk``
    with their events, and beside them the inspections in order of their day. Also sets ``incidents.close_lag``.
    Returns counts of what was read and written.

    Memory stays bounded whatever the store's size: every ``fold`` ranges what was gathered is collapsed and each
    aggregate row that nothing still to come can add to is written (COPY on PostgreSQL) and let go. An incident
    adds only to rows of its local report day and close day (and the months and years holding them), so before the
    id ranges still to read, whose earliest such day is known from one pass over the incidents
    (:func:`_id_ranges`), a row of a day, month or year that ended is final; the inspections of those days are read
    first. A store whose ids follow report time (the demo's, one written live) keeps only the rows of the days to
    come and of the current month and year; one where they do not just keeps more until the end. The same rows as
    one collapse of everything: each key is written once, with all its contributions."""
    t, e, it = Incident.__table__, IncidentEvent.__table__, Inspection.__table__
    stats = {"incidents": 0, "inspections": 0, "rows": 0, "flushes": 0}
    with _begin(engine) as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            # TRUNCATE, not DELETE: the new rows go to new, empty files in the order they are written (READ_ORDER),
            # not into the free space of the old pages all over the table, and COPY may write them frozen. Readers
            # wait for the rebuild's end either way: it drops the tables' keys and indexes below.
            conn.exec_driver_sql(f"TRUNCATE {', '.join(t.name for t in AGG_TABLES)}")
        else:
            for table in AGG_TABLES:
                conn.execute(delete(table))
        restore = []
        if pg:  # keys and indexes built once at the end, not row by row
            from .incidents import _pg_drop_secondary

            restore = _pg_drop_secondary(conn, [t.name for t in AGG_TABLES if t is not InspectionUnits])
        ranges = _id_ranges(conn, chunk)
        sink = _Sink(conn, stats, freeze=pg)
        known = _register_units(conn)
        done_to: dt.date | None = None  # inspections read: every one before this day
        cols = ("id", "unit_id", "grid_code", "zone_code", "town_code", "inspected_on", "problems_found")
        for i, (lo, hi, _first) in enumerate(ranges):
            t0 = time.perf_counter()
            inc = _raw_frame(conn, t, (*INCIDENT_COLUMNS, "close_lag"), "id", lo, hi)
            ev = _raw_frame(conn, e, EVENT_COLUMNS, "incident_id", lo, hi)
            t1 = time.perf_counter()
            sink.add(contributions(inc, ev, +1))
            _set_close_lag_bulk(conn, inc)
            stats["incidents"] += len(inc)
            del inc, ev
            sink.seconds["read"] += t1 - t0
            sink.seconds["contributions"] += time.perf_counter() - t1
            if progress:
                progress(stats)
            if (i + 1) % fold and i + 1 < len(ranges):
                continue
            # the earliest day the ranges still to read add to (non-decreasing): every row of a period before it
            # is final
            upto = ranges[i + 1][2] if i + 1 < len(ranges) else None
            t0 = time.perf_counter()
            for df in _inspections_between(conn, it, cols, done_to, upto, chunk * 4):
                sink.add(inspection_counts(df))
                add_inspection_bits(conn, df, sink.bits, known)
                stats["inspections"] += len(df)
            sink.seconds["inspections"] += time.perf_counter() - t0
            done_to = upto
            sink.flush(upto)
        if not ranges:  # no incident: the inspections alone
            for df in _inspections_between(conn, it, cols, None, None, chunk * 4):
                sink.add(inspection_counts(df))
                add_inspection_bits(conn, df, sink.bits, known)
                stats["inspections"] += len(df)
            sink.flush(None)
        t0 = time.perf_counter()
        if restore:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for sql in restore:
            conn.exec_driver_sql(sql)
        sink.seconds["indexes"] = time.perf_counter() - t0
        analyze(conn)
    stats["seconds"] = {k: round(v, 2) for k, v in sink.seconds.items()}
    return stats


def _id_ranges(conn, chunk: int) -> list[tuple[int, int, dt.date]]:
    """The incidents as id ranges ``[lo, hi]`` of about ``chunk`` ids (fixed-width buckets that hold any),
    each with the earliest local day its incidents add to (report or close day), made non-decreasing from the
    end: ``ranges[k][2]`` is the earliest day any range from k on adds to. One pass over the incidents."""
    t = Incident.__table__
    b = (t.c.id // int(chunk)).label("b")
    pg = conn.dialect.name == "postgresql"

    def earliest(col):  # as _raw_time reads a column: PostgreSQL's epoch microseconds, SQLite's text
        m = func.min(col)
        return cast(func.extract("epoch", m) * 1_000_000, BigInteger) if pg else type_coerce(m, String())

    rows = conn.execute(select(b, func.min(t.c.id), func.max(t.c.id), earliest(t.c.reported_at),
                               earliest(t.c.closed_at)).group_by(b).order_by(b)).all()
    if not rows:
        return []
    first = _frame([(r[3], r[4]) for r in rows], ("reported_at", "closed_at"), epoch_us=pg)
    day = np.minimum(local_day(first["reported_at"]).to_numpy(),
                     local_day(first["closed_at"]).fillna(pd.Timestamp.max).to_numpy())
    day = np.minimum.accumulate(day[::-1])[::-1]  # the earliest of this range and every later one
    return [(int(r[1]), int(r[2]), pd.Timestamp(d).date()) for r, d in zip(rows, day)]


def _register_units(conn) -> dict:
    """Give every inspected unit its ordinal in its grid, in the order of their first inspection row (by id): what
    reading the inspections in id order gives, as the writes do, although a rebuild reads them by day.
    Returns {unit_id: ordinal}."""
    it = Inspection.__table__
    first = select(func.min(it.c.id).label("id")).group_by(it.c.unit_id).subquery()
    rows = conn.execute(select(it.c.unit_id, it.c.grid_code).join(first, it.c.id == first.c.id)
                        .order_by(it.c.id)).all()
    units = pd.DataFrame(rows, columns=["unit_id", "grid_code"])
    if units.empty:
        return {}
    return dict(zip(units["unit_id"].astype(str), unit_ordinals(conn, units).tolist()))


def _inspections_between(conn, it, cols, after: dt.date | None, before: dt.date | None, limit: int):
    """Frames of the inspections with ``after <= inspected_on < before`` (None: open), ``limit`` rows at a time."""
    cond = [c for c in (it.c.inspected_on >= after if after is not None else None,
                        it.c.inspected_on < before if before is not None else None) if c is not None]
    result = conn.execute(select(*(it.c[c] for c in cols)).where(*cond).execution_options(
        stream_results=True, max_row_buffer=limit))  # a server-side cursor on PostgreSQL
    try:
        for rows in result.partitions(limit):
            yield pd.DataFrame(rows, columns=list(cols))
    finally:
        result.close()


class _Sink:
    """What a streaming :func:`rebuild` gathered and not yet written: deltas (collapsed at each flush) and the
    grids' bitmaps. :meth:`flush` writes the rows of the periods that ended before a day and keeps the rest."""

    def __init__(self, conn, stats: dict, freeze: bool = False):
        self.conn, self.stats, self.freeze = conn, stats, freeze
        self.parts: list[Deltas] = []
        self.bits: dict = {}
        self.seconds = {"read": 0.0, "contributions": 0.0, "inspections": 0.0, "collapse": 0.0, "write": 0.0}

    def add(self, d: Deltas) -> None:
        self.parts.append(d)

    def flush(self, upto: dt.date | None) -> None:
        """Write every row of a day, month or year before ``upto`` (None: every row), keep the others."""
        t0 = time.perf_counter()
        if self.parts:
            whole = _collapse(_concat(self.parts))
            self.parts = []
            done, keep = _split_final(whole, upto)
            del whole
            t1 = time.perf_counter()
            self.seconds["collapse"] += t1 - t0
            t0 = t1
            self.stats["rows"] += write(self.conn, done, fresh=True, freeze=self.freeze)
            if upto is not None and any(len(df) for _n, df in keep.tables()):
                self.parts = [keep]
        if self.bits:
            if upto is None:
                final = self.bits
                self.bits = {}
            else:
                thr = _grain_thresholds(upto)
                final = {k: v for k, v in self.bits.items() if k[2] < thr[k[1]]}
                for k in final:
                    del self.bits[k]
            self.stats["rows"] += write_bits_fresh(self.conn, final, freeze=self.freeze)
        self.seconds["write"] += time.perf_counter() - t0
        self.stats["flushes"] += 1


def _grain_thresholds(upto: dt.date) -> dict:
    """Per grain, the key ``day`` below which a row's period ended before local day ``upto``."""
    return {"d": upto, "m": upto.replace(day=1), "y": upto.replace(month=1, day=1)}


def _split_final(d: Deltas, upto: dt.date | None) -> tuple[Deltas, Deltas]:
    """``d`` cut into the rows whose period (grain and day) ended before ``upto`` and the others."""
    if upto is None:
        return d, Deltas(*(df.iloc[:0] for _n, df in d.tables()))
    thr = {g: np.datetime64(v, "ns") for g, v in _grain_thresholds(upto).items()}

    def cut(df):
        if df.empty:
            return df, df
        g = np.asarray(df["grain"], dtype=object)
        limit = np.where(g == "d", thr["d"], np.where(g == "m", thr["m"], thr["y"]))
        final = pd.to_datetime(df["day"]).to_numpy() < limit
        return df[final].reset_index(drop=True), df[~final].reset_index(drop=True)

    pairs = [cut(df) for _n, df in d.tables()]
    return Deltas(*(p[0] for p in pairs)), Deltas(*(p[1] for p in pairs))


_TABLE_KEYS = {"counts": [*KEY, "parent"], "category": [*KEY, "category"], "dept": [*KEY, "department"]}


def _year_of(days) -> np.ndarray:
    """Days (dates, ISO text or datetime64) -> 1 January of their year, as datetime64[D]."""
    return pd.to_datetime(pd.Series(days)).to_numpy().astype("datetime64[Y]").astype("datetime64[D]")


def backfill_years(bind) -> dict:
    """(Re)make the year rows (grain y) of every aggregate table from its month rows — a year's counts are the sums of
    its months', its histograms their merge, its bitmaps their OR: what :func:`rebuild` writes, for a store whose
    aggregates were kept before the year grain (migration 0010), without reading the incidents again. Returns the
    year rows written per table."""
    stats = {}
    with _begin(bind) as conn:
        for table in (AggCounts, AggCategory, AggDept, AggHours, AggUnits):
            conn.execute(delete(table).where(table.c.grain == "y"))
        parts = {}
        for name, table in _TABLES.items():
            cols = [c.name for c in table.columns]
            df = pd.DataFrame(_plain_rows(conn, select(*(table.c[c] for c in cols)).where(table.c.grain == "m")),
                              columns=cols)
            keys = _TABLE_KEYS[name]
            if df.empty:
                parts[name] = pd.DataFrame(columns=cols)
                continue
            df["grain"] = "y"
            df["day"] = _year_of(df["day"])
            parts[name] = group_sum({c: df[c] for c in cols}, keys, [c for c in cols if c not in keys])
        t = AggHours
        hours = []
        for (kind,) in conn.execute(select(t.c.kind).where(t.c.grain == "m").distinct()).all():  # a kind at a time
            rows = _blob_rows(conn, select(t.c.lvl, t.c.code, t.c.day, t.c.key2, t.c.data).where(
                t.c.grain == "m", t.c.kind == kind))
            g, bins, n, hsum = unpack_many([bytes(r[4]) for r in rows])
            cols = {name: np.array([r[i] for r in rows], dtype=object)[g] for i, name in ((0, "lvl"), (1, "code"),
                                                                                         (3, "key2"))}
            cols.update(kind=np.full(len(g), kind, dtype=object), grain=np.full(len(g), "y", dtype=object),
                        day=_year_of([r[2] for r in rows])[g], bin=bins, n=n, hsum=hsum)
            hours.append(group_sum(cols, ["kind", *KEY, "key2", "bin"], ["n", "hsum"]))
        parts["hours"] = _concat_frames(hours) if hours else pd.DataFrame(columns=["kind", *KEY, "key2", "bin", "n",
                                                                                    "hsum"])
        deltas = Deltas(parts["counts"], parts["category"], parts["dept"], parts["hours"])
        for name, df in deltas.tables():
            stats[name] = write(conn, Deltas(*(df if n == name else pd.DataFrame() for n, _ in deltas.tables())),
                                fresh=True)
        u = AggUnits
        bits: dict = {}
        for grid, day, a, b in _blob_rows(conn, select(u.c.grid_code, u.c.day, u.c.inspected, u.c.problems).where(
                u.c.grain == "m")):
            cur = bits.setdefault((grid, "y", _grain_day(_date(day), "y")), [0, 0])
            cur[0] |= int.from_bytes(bytes(a), "little")
            cur[1] |= int.from_bytes(bytes(b), "little")
        stats["units"] = write_bits_fresh(conn, bits)
        analyze(conn)
    return stats


def analyze(bind) -> None:
    """Planner statistics for the aggregate tables (and the incidents' ``close_lag``), when they hold rows: a
    rebuild fills them at once, and without statistics PostgreSQL plans their reads for a handful of rows and
    SQLite may pick the wrong index. An empty store is left alone (statistics of empty tables would mislead the
    planner once live writes fill them)."""
    with _begin(bind) as conn:
        if conn.execute(select(AggCounts.c.lvl).limit(1)).first() is None:
            return
        names = [t.name for t in AGG_TABLES] + [Incident.__tablename__]
        for name in names:
            conn.exec_driver_sql(f"ANALYZE {name}")


_TIME_COLUMNS = ("reported_at", "closed_at", "due_at", "at")
_NAT = np.iinfo(np.int64).min


def _raw_time(conn, col):
    """A time column as the driver's plain value: SQLite's text as stored, PostgreSQL's epoch microseconds — read
    column-wise by :func:`_raw_rows_frame` instead of one datetime object at a time. ``conn``: a connection or the
    dialect's name."""
    if (conn if isinstance(conn, str) else conn.dialect.name) == "postgresql":
        return cast(func.extract("epoch", col) * 1_000_000, BigInteger).label(col.name)
    return type_coerce(col, String()).label(col.name)


def _raw_rows_frame(conn, rows, columns) -> pd.DataFrame:
    """:func:`_frame` of rows read with :func:`_raw_time` (PostgreSQL's times as epoch microseconds)."""
    return _frame(rows, columns, epoch_us=conn.dialect.name == "postgresql")


def _raw_frame(conn, table, columns, key: str, lo: int, hi: int) -> pd.DataFrame:
    """Rows of ``table`` with ``key`` in [lo, hi], times read raw (:func:`_raw_time`)."""
    q = select(*(_raw_time(conn, table.c[c]) if c in _TIME_COLUMNS else table.c[c] for c in columns)).where(
        table.c[key].between(int(lo), int(hi)))
    result = conn.execute(q)
    try:  # plain tuples from the driver's cursor: a million rows are not worth a Row object each
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return _raw_rows_frame(conn, rows, columns)


@contextmanager
def _begin(bind):
    if hasattr(bind, "begin") and not hasattr(bind, "execute"):  # an Engine: one transaction of its own
        with bind.begin() as conn:
            yield conn
    else:  # a Connection already in a transaction (a migration)
        yield bind


def _concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """pd.concat that keeps categorical columns categorical (over the union of their categories)."""
    if len(frames) == 1:
        return frames[0]
    cats = {c: [f[c] for f in frames] for c in frames[0].columns
            if all(c in f.columns and isinstance(f[c].dtype, pd.CategoricalDtype) for f in frames)}
    out = pd.concat([f.drop(columns=list(cats)) for f in frames], ignore_index=True)
    for c, parts in cats.items():
        out[c] = pd.api.types.union_categoricals(parts)
    return out[list(frames[0].columns)]


def _concat(ds: list[Deltas]) -> Deltas:
    return Deltas(*(_concat_frames([getattr(d, n) for d in ds if len(getattr(d, n))])
                    if any(len(getattr(d, n)) for d in ds) else getattr(ds[0], n)
                    for n in ("counts", "category", "dept", "hours")))


def _set_close_lag_bulk(conn, inc: pd.DataFrame) -> None:
    """Set ``close_lag`` where it is not what the times say (a bulk load writes it; an update of a million rows
    that already hold the right class would rewrite every row and its indexes for nothing)."""
    closed = inc[inc["closed_at"].notna()]
    if closed.empty:
        return
    cls = close_lag_classes(closed["reported_at"], closed["closed_at"]).astype(int)
    if "close_lag" in closed.columns:
        have = pd.to_numeric(closed["close_lag"], errors="coerce")
        wrong = (have != cls).to_numpy() | have.isna().to_numpy()
        closed, cls = closed[wrong], cls[wrong]
        if closed.empty:
            return
    t = Incident.__table__
    for c, g in closed.groupby(cls.to_numpy()):
        ids = [int(i) for i in g["id"]]
        for i in range(0, len(ids), 5000):
            conn.execute(t.update().where(t.c.id.in_(ids[i:i + 5000])).values(close_lag=int(c)))


# ---------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class DaySpan:
    """A range of local days [first, last] cut into whole years (grain y), whole months at their edges (grain m)
    and edge days (grain d): a multi-year period reads one row per unit and year instead of twelve."""

    first: dt.date
    last: dt.date

    def pieces(self) -> list[tuple[str, dt.date, dt.date]]:
        """[(grain, from, to)] inclusive ranges of ``day`` values that add up to the span exactly (days, months,
        years, months, days; each piece only where it is not empty)."""
        out = []
        a, b = self.first, self.last
        if a > b:
            return out
        m_first = a if a.day == 1 else _next_month(a)
        m_last_excl = _month_start(b) if b != _month_end(b) else _next_month(b)
        if m_first >= m_last_excl:  # no whole month inside
            return [("d", a, b)]
        if a < m_first:
            out.append(("d", a, m_first - dt.timedelta(days=1)))
        y_first = m_first if m_first.month == 1 else dt.date(m_first.year + 1, 1, 1)
        y_last_excl = dt.date(m_last_excl.year, 1, 1)
        if y_first < y_last_excl:  # whole years inside the whole months
            if m_first < y_first:
                out.append(("m", m_first, _prev_month(y_first)))
            out.append(("y", y_first, dt.date(y_last_excl.year - 1, 1, 1)))
            if y_last_excl < m_last_excl:
                out.append(("m", y_last_excl, _prev_month(m_last_excl)))
        else:
            out.append(("m", m_first, _prev_month(m_last_excl)))
        if m_last_excl <= b:
            out.append(("d", m_last_excl, b))
        return out


    def signed(self, weights: tuple = (1, 1, 1), today: dt.date | None = None) -> list[tuple[str, dt.date, dt.date,
                                                                                           int]]:
        """[(grain, from, to, sign)]: ranges of ``day`` values whose rows, added (sign 1) or subtracted (-1), sum to
        the span exactly — for sums and histograms, not for bitmaps (an OR has no inverse). A partly covered month
        may be read as the month less the days outside the span, a partly covered year as the year less the months
        and days outside it, where that reads less: ``weights`` = the cost of a day, month and year row (rows for
        counts; bytes for histograms, where a month holds about 13 days' bins and a year 45), rows after ``today``
        cost nothing (there are none: a report or close is never in the future, so "this year" is its year row less
        nothing). 1 January – 30 November is the year less December (two rows, not eleven), a 30-day period the
        month less its first days."""
        a, b = self.first, self.last
        if a > b:
            return []
        w = dict(zip(GRAINS, weights))
        today = today or dt.date.max
        parts = [(a, b)] if a.year == b.year else [(a, dt.date(a.year, 12, 31)), (dt.date(b.year, 1, 1), b)]
        out = []
        if b.year - a.year > 1:  # the whole years between: one range
            out.append(("y", dt.date(a.year + 1, 1, 1), dt.date(b.year - 1, 1, 1), 1))
        for x, y in parts:
            out += _year_part(x, y, w, today)
        return _merge_signed(out)


def _cost(pieces, w: dict, today: dt.date) -> float:
    """What reading ``pieces`` costs (rows or bytes, see :meth:`DaySpan.signed`): rows after ``today`` are none."""
    total = 0.0
    for g, a, b, _s in pieces:
        if a > today:
            continue
        if g == "d":
            n = (min(b, today) - a).days + 1
        elif g == "m":
            n = (min(b, today).year - a.year) * 12 + min(b, today).month - a.month + 1
        else:
            n = min(b, today).year - a.year + 1
        total += w[g] * n
    return total


def _neg(pieces) -> list:
    return [(g, a, b, -s) for g, a, b, s in pieces]


def _days_part(s: dt.date, e: dt.date, w: dict, today: dt.date) -> list:
    """Days [s, e] of one month: themselves, or the month less the days outside, whichever reads less."""
    m1, mend = _month_start(s), _month_end(s)
    if s == m1 and e == mend:
        return [("m", m1, m1, 1)]
    direct = [("d", s, e, 1)]
    comp = ([("d", m1, s - dt.timedelta(days=1), 1)] if s > m1 else []) + \
        ([("d", e + dt.timedelta(days=1), mend, 1)] if e < mend else [])
    via_month = [("m", m1, m1, 1), *_neg(comp)]
    return via_month if _cost(via_month, w, today) < _cost(direct, w, today) else direct


def _months_part(s: dt.date, e: dt.date, w: dict, today: dt.date) -> list:
    """Days [s, e] of one year, month by month (whole months as month rows, partly covered ones see
    :func:`_days_part`)."""
    out, m = [], _month_start(s)
    while m <= e:
        out += _days_part(max(s, m), min(e, _month_end(m)), w, today)
        m = _next_month(m)
    return out


def _year_part(s: dt.date, e: dt.date, w: dict, today: dt.date) -> list:
    """Days [s, e] of one year: month by month, or the year less the months and days outside, whichever reads
    less."""
    j1, d31 = dt.date(s.year, 1, 1), dt.date(s.year, 12, 31)
    if s == j1 and e == d31:
        return [("y", j1, j1, 1)]
    direct = _months_part(s, e, w, today)
    comp = (_months_part(j1, s - dt.timedelta(days=1), w, today) if s > j1 else []) + \
        (_months_part(e + dt.timedelta(days=1), d31, w, today) if e < d31 else [])
    via_year = [("y", j1, j1, 1), *_neg(comp)]
    return via_year if _cost(via_year, w, today) < _cost(direct, w, today) else direct


def _merge_signed(pieces) -> list:
    """Adjacent ranges of one grain and sign joined (fewer conditions in the statement)."""
    def after(g, d):
        return d + dt.timedelta(days=1) if g == "d" else _next_month(d) if g == "m" else d.replace(year=d.year + 1)

    out = []
    for g, a, b, sg in sorted(pieces, key=lambda p: (p[3], p[0], p[1])):
        if out and out[-1][0] == g and out[-1][3] == sg and after(g, out[-1][2]) == a:
            out[-1] = (g, out[-1][1], b, sg)
        else:
            out.append((g, a, b, sg))
    return out


def _month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _prev_month(d: dt.date) -> dt.date:
    return (d.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _month_end(d: dt.date) -> dt.date:
    return _next_month(d) - dt.timedelta(days=1)


EPOCH = dt.date(1970, 1, 1)


def _is(col, code):
    """``col = code``, or ``col IN (…)`` for a tuple of codes: a county or city is read as its towns together."""
    return col == code if isinstance(code, str) else col.in_(sorted(code))


def _span_cond(table, span: DaySpan):
    parts = [and_(table.c.grain == g, table.c.day.between(a, b)) for g, a, b in span.pieces()]
    return or_(*parts) if parts else (table.c.day < EPOCH)


ROW_WEIGHTS = (1, 1, 1)  # counts: every row costs alike
HIST_WEIGHTS = (1, 13, 45)  # histograms: a month holds about 13 days' bins, a year 45 (bytes read, at 1M incidents)


def _local_today() -> dt.date:
    return (dt.datetime.now(UTC) + LOCAL_OFFSET.to_pytimedelta()).date()


def _signed_cond(table, span: DaySpan, weights):
    """(condition, sign): the rows of ``span``'s signed pieces (:meth:`DaySpan.signed`) and, per row, 1 or -1."""
    pieces = span.signed(weights, _local_today())
    if not pieces:
        return table.c.day < EPOCH, literal(1)
    cond = or_(*(and_(table.c.grain == g, table.c.day.between(a, b)) for g, a, b, _s in pieces))
    neg = [and_(table.c.grain == g, table.c.day.between(a, b)) for g, a, b, sg in pieces if sg < 0]
    return cond, (case((or_(*neg), -1), else_=1) if neg else literal(1))


def _units_cond(table, units):
    """``units``: None (every level) or an iterable of (lvl, code) or a level name (all its units)."""
    if units is None:
        return True
    if isinstance(units, str):
        return table.c.lvl == units
    units = list(units)
    if units and all(isinstance(u, str) for u in units):  # level names
        return table.c.lvl.in_(units)
    levels = {lv for lv, _ in units}
    if len(levels) == 1:  # one level: lvl = … AND code IN (…), which the primary key serves
        return and_(table.c.lvl == units[0][0], table.c.code.in_(sorted({c for _, c in units})))
    return tuple_(table.c.lvl, table.c.code).in_(units) if units else (table.c.lvl == "")


def read_daily(bind, span: DaySpan, lvl: str, code, columns=("r_new", "c_closed")) -> pd.DataFrame:
    """Day-by-day counts of one unit (grain d) over ``span``: columns day + ``columns`` (``code``: a code, or a
    tuple of codes summed)."""
    t = AggCounts
    q = (select(t.c.day, *(func.sum(t.c[c]).label(c) for c in columns))
         .where(t.c.lvl == lvl, _is(t.c.code, code), t.c.grain == "d", t.c.day.between(span.first, span.last))
         .group_by(t.c.day).order_by(t.c.day))
    with connection(bind) as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=["day", *columns])


def months_with_data(bind) -> list[dt.date]:
    """The local months (first days) in which the district has any report or inspection, oldest first (from the
    district's month rows: one row per month of history)."""
    t = AggCounts
    q = (select(t.c.day).where(t.c.lvl == "district", t.c.code == DISTRICT, t.c.grain == "m",
                               or_(t.c.r_new > 0, t.c.i_rows > 0)).order_by(t.c.day))
    with connection(bind) as conn:
        return [d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)[:10]) for (d,) in conn.execute(q)]


def read_category(bind, span: DaySpan, lvl: str, code) -> pd.DataFrame:
    """Cases reported per category of one unit over ``span`` (``code``: a code, or a tuple of codes summed)."""
    t = AggCategory
    q = (select(t.c.category, func.sum(t.c.n).label("n")).where(_span_cond(t, span), t.c.lvl == lvl,
                                                                _is(t.c.code, code)).group_by(t.c.category))
    with connection(bind) as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=["category", "n"])


def read_dept(conn, span: DaySpan, units=None) -> pd.DataFrame:
    t = AggDept
    q = (select(t.c.lvl, t.c.code, t.c.department, func.sum(t.c.assigned), func.sum(t.c.closed),
                func.sum(t.c.late)).where(_span_cond(t, span), _units_cond(t, units))
         .group_by(t.c.lvl, t.c.code, t.c.department))
    return pd.DataFrame(conn.execute(q).all(), columns=["lvl", "code", "department", "assigned", "closed", "late"])


def _blob_rows(conn, stmt) -> list:
    """The rows of ``stmt``, which selects packed histograms or bitmaps: on PostgreSQL from a binary cursor of
    the same connection and transaction (bytea as its bytes: the server neither writes nor the driver parses
    twice their size in hex text — half the time of a long period's histograms)."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return _plain_rows(conn, stmt)
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with conn.connection.driver_connection.cursor(binary=True) as cur:
        cur.execute(str(compiled), compiled.params)
        return cur.fetchall()


def unpack_many(datas: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`unpack` of many packed histograms at once: (which histogram, bins, counts, sums) of every value, in
    order. Each histogram is 1 + 5k little-endian 32-bit words (see :func:`pack_many`): the words are labelled by
    section (count, bins, counts, sums) in one pass and each section taken whole — the counts' and sums' word pairs
    stay adjacent, so they are read as 64-bit values directly (a third of the time of gathering them by index)."""
    if not datas:
        e = np.array([], dtype=np.int64)
        return e, e, e, np.array([], dtype=np.float64)
    words = np.frombuffer(b"".join(datas), dtype="<u4")
    size = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas)) >> 2
    k = words[np.cumsum(size) - size].astype(np.int64)
    lens = np.empty((len(k), 4), dtype=np.int64)
    lens[:, 0], lens[:, 1], lens[:, 2], lens[:, 3] = 1, k, 2 * k, 2 * k
    section = np.repeat(np.tile(np.arange(4, dtype=np.int8), len(k)), lens.ravel())
    return (np.repeat(np.arange(len(k)), k), words[section == 1].view("<i4").astype(np.int64),
            words[section == 2].view("<i8"), words[section == 3].view("<f8"))


_DENSE_MAX = 1 << 21  # (histograms × bin range) up to which bins are summed in a dense array, else by sorting


@dataclass(frozen=True)
class Hist:
    """Histograms summed per key, as arrays: ``keys`` the distinct keys (tuples, e.g. (lvl, code, key2)) in order of
    first appearance, then per bin that holds values its key's index into them, bin, count and sum — sorted by key,
    then bin. What a median is read from (``metrics.rollup``), without a frame or an object per value."""

    keys: list
    key: np.ndarray
    bins: np.ndarray
    n: np.ndarray
    hsum: np.ndarray

    @staticmethod
    def empty() -> "Hist":
        e = np.array([], dtype=np.int64)
        return Hist([], e, e, e, np.array([], dtype=np.float64))


_CHUNK_BYTES = 4 << 20  # packed bytes summed at once (the arrays made from them are about four times as large)


def hist_sum(keys_of_rows, datas: list, signs=None, chunk_bytes: int | None = None) -> Hist:
    """The packed histograms ``datas`` summed per key (``keys_of_rows``: one hashable key per histogram): numpy
    throughout — a long period's histograms hold tens of thousands of bins and are unpacked at once. ``signs``: +1 or
    -1 per histogram (a histogram subtracted from the others); only bins holding values are kept.

    More than ``chunk_bytes`` (default :data:`_CHUNK_BYTES`) are summed a group of whole keys at a time and the
    groups' sums put together: the grids' histograms over three years (24 MB packed) made the process's arrays
    grow by 94 MB at once, the worker's peak past 400 MB on a 10M store. The result is the same either way."""
    if not datas:
        return Hist.empty()
    limit = _CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    if sum(map(len, datas)) <= limit:
        return _hist_sum(keys_of_rows, datas, signs)
    keys_of_rows = list(keys_of_rows)
    rows_of: dict = {}  # the rows of each key, keys in order of first appearance
    for i, k in enumerate(keys_of_rows):
        rows_of.setdefault(k, []).append(i)
    groups, group, size = [], [], 0
    for k, rows in rows_of.items():
        b = sum(len(datas[i]) for i in rows)
        if group and size + b > limit:
            groups.append(group)
            group, size = [], 0
        group.append(k)
        size += b
    groups.append(group)
    parts, offset = [], 0
    for group in groups:
        rows = [i for k in group for i in rows_of[k]]
        part = _hist_sum([keys_of_rows[i] for i in rows], [datas[i] for i in rows],
                         None if signs is None else [signs[i] for i in rows])
        if len(part.bins):  # its keys are the group's, in the same order (first appearance)
            parts.append(Hist(part.keys, part.key + offset, part.bins, part.n, part.hsum))
        offset += len(group)
    if not parts:
        return Hist.empty()
    return Hist([k for group in groups for k in group], *(np.concatenate([getattr(p, a) for p in parts])
                                                         for a in ("key", "bins", "n", "hsum")))


def _hist_sum(keys_of_rows, datas: list, signs=None) -> Hist:
    """:func:`hist_sum` of ``datas`` all at once."""
    ids: dict = {}
    kid_of_row = np.fromiter((ids.setdefault(k, len(ids)) for k in keys_of_rows), dtype=np.int64, count=len(datas))
    g, b, ns, hs = unpack_many(datas)
    if not len(b):
        return Hist.empty()
    if signs is not None:
        sg = np.asarray(signs, dtype=np.int64)[g]
        ns, hs = ns * sg, hs * sg
    lo = int(b.min())
    width = int(b.max()) - lo + 1
    comb = kid_of_row[g] * width + (b - lo)
    if len(ids) * width <= _DENSE_MAX:  # a dense sum: the occupied cells come out sorted by key, then bin
        size = len(ids) * width
        n = np.bincount(comb, weights=ns.astype(np.float64), minlength=size)
        u = np.flatnonzero(n > 0.5)  # a stored bin holds values; a cell whose values were all subtracted holds none
        n = n[u].round().astype(np.int64)
        h = np.bincount(comb, weights=hs, minlength=size)[u]
    else:
        inv, u = pd.factorize(comb)  # hashing; only the distinct keys are sorted
        n = np.bincount(inv, weights=ns.astype(np.float64), minlength=len(u)).round().astype(np.int64)
        h = np.bincount(inv, weights=hs, minlength=len(u))
        order = np.argsort(u, kind="stable")  # by key, then bin
        u, n, h = u[order], n[order], h[order]
        keep = n > 0  # bins whose values were all subtracted
        u, n, h = u[keep], n[keep], h[keep]
    k_of, bin_of = np.divmod(u, width)
    return Hist(list(ids), k_of.astype(np.int64), bin_of + lo, n, h)


def _hist_frame(rows, signs=None) -> pd.DataFrame:
    """Rows (lvl, code, key2, data) -> summed histogram rows lvl, code, key2, bin, n, hsum, sorted by key then bin
    (:func:`hist_sum`; the key columns categorical)."""
    cols = ["lvl", "code", "key2", "bin", "n", "hsum"]
    x = hist_sum([r[:3] for r in rows], [r[3] for r in rows], signs)
    if not len(x.bins):
        return pd.DataFrame(columns=cols)
    out = {}  # each key column coded by its own distinct values
    for i, c in enumerate(("lvl", "code", "key2")):
        vals = np.array([nm[i] for nm in x.keys], dtype=object)
        codes, uniq = pd.factorize(vals)
        out[c] = pd.Categorical.from_codes(codes[x.key], categories=pd.Index(uniq, dtype=object))
    return pd.DataFrame({**out, "bin": x.bins, "n": x.n, "hsum": x.hsum})[cols]


def read_hours(conn, kind: str, span: DaySpan, units=None, key2: str | None = None) -> pd.DataFrame:
    """Histogram rows (lvl, code, key2, bin, n, hsum) of ``kind`` summed over ``span``."""
    t = AggHours
    span_cond, sign = _signed_cond(t, span, HIST_WEIGHTS)
    cond = [t.c.kind == kind, span_cond, _units_cond(t, units)]
    if key2 is not None:
        cond.append(t.c.key2 == key2)
    rows = _blob_rows(conn, select(t.c.lvl, t.c.code, t.c.key2, t.c.data, sign).where(*cond))
    return _hist_frame([r[:4] for r in rows], signs=[r[4] for r in rows])


def read_counts_upto(conn, last_day: dt.date, lvl: str, code: str, columns) -> dict:
    """Sums of ``columns`` of one unit over every day up to ``last_day`` inclusive (years, months, then days)."""
    t = AggCounts
    cond, sign = _signed_cond(t, DaySpan(dt.date(1, 1, 1), last_day), ROW_WEIGHTS)
    q = select(*(func.sum(sign * cast(t.c[c], Integer)) for c in columns)).where(t.c.lvl == lvl,
                                                                                   _is(t.c.code, code), cond)
    row = conn.execute(q).one()
    return {c: int(v or 0) for c, v in zip(columns, row)}


def _or_popcounts(blobs, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The popcount of the bitwise OR of the bitmaps ``blobs`` (little-endian bytes of any length) within each group
    of rows ``order[starts[i]:starts[i+1]]`` — numpy, not one Python integer per row: the bitmaps are padded to one
    width of 64-bit words, OR-ed per group and counted (``np.bitwise_count``)."""
    width = max(-(-max(map(len, blobs)) // 8) * 8, 8)
    mat = np.frombuffer(b"".join([b.ljust(width, b"\0") for b in blobs]), dtype=np.uint64).reshape(len(blobs), -1)
    words = np.bitwise_or.reduceat(mat[order], starts, axis=0)
    return np.bitwise_count(words).sum(axis=1, dtype=np.int64)


def _s_parts(cols, level: str | None, has_until: bool, past: bool, many: bool = False) -> list:
    """The SELECTs (disjoint) whose union is S: the incidents reported by ``at`` and not closed before ``at``,
    and those reported after ``at`` but before ``until`` (see :func:`open_at`) — with bound parameters (``s_at``,
    ``s_until``, ``s_code``, ``s_u<c>``: :func:`_s_params`), so that a statement built on them is built once and
    compiled once (building the 19 SELECTs was a fifth of a bundle's client time). ``many``: ``s_code`` is a list
    of codes (a county read as its towns)."""
    t = Incident.__table__
    at = bindparam("s_at", type_=t.c.reported_at.type)
    col = None if not level or level == "district" else t.c[LEVEL_COLUMN[level]]
    unit = [] if col is None else [col.in_(bindparam("s_code", expanding=True)) if many else col == bindparam("s_code")]
    # the open cases through their partial index (SQLite would otherwise pick reported_at and scan the history)
    parts = [select(*cols).where(t.c.status != "closed", func.coalesce(t.c.reported_at, t.c.reported_at) <= at,
                                 *unit)]
    if has_until:  # reported after the moment but inside the period (a past moment only)
        parts.append(select(*cols).where(t.c.reported_at > at,
                                         t.c.reported_at < bindparam("s_until", type_=t.c.reported_at.type), *unit))
    if past:
        for c in range(0, MAX_LAG_CLASS + 1):
            parts.append(select(*cols).where(t.c.close_lag == c, t.c.closed_at >= at,
                                             t.c.closed_at < bindparam(f"s_u{c}", type_=t.c.closed_at.type),
                                             t.c.reported_at <= at, *unit))
    return parts


def _many(code) -> bool:
    """Several codes (a tuple: a county or city read as its towns), not one."""
    return code is not None and not isinstance(code, str)


def _s_shape(at: dt.datetime, until: dt.datetime | None) -> tuple[bool, bool]:
    """(has_until, past): which parts S has at ``at`` (see :func:`_s_parts`)."""
    return until is not None and until > at, at < dt.datetime.now(UTC)


def _s_params(at: dt.datetime, until: dt.datetime | None, code: str | None = None) -> dict:
    """The values of :func:`_s_parts`' parameters: class c closes less than 2^c days after its report, so one
    closed at or after ``at`` is closed before ``at + 2^c days``."""
    has_until, past = _s_shape(at, until)
    params = {"s_at": at}
    if code is not None:
        params["s_code"] = code if isinstance(code, str) else sorted(code)
    if has_until:
        params["s_until"] = until
    if past:
        params.update({f"s_u{c}": at + dt.timedelta(days=2 ** c if c else 1) for c in range(0, MAX_LAG_CLASS + 1)})
    return params


def open_at(conn, at: dt.datetime, until: dt.datetime | None = None, *, level: str | None = None,
            code: str | None = None, columns=("grid_code", "zone_code", "town_code", "level", "department",
                                              "reported_at", "closed_at", "due_at")) -> pd.DataFrame:
    """The incidents reported by ``at`` and not closed before ``at`` (``closed_at`` NULL or ``>= at``), and those
    reported after ``at`` but before ``until`` (the rest of a period measured at a moment inside it).

    Open ones through the open-cases index; for a past ``at``, the ones closed at or after ``at`` by close-lag
    class (class c closes less than 2^c days after its report, so it is closed before ``at + 2^c days``)."""
    stmt = _open_at_stmt(conn.dialect.name, tuple(columns), level, *_s_shape(at, until), _many(code))
    return _raw_rows_frame(conn, conn.execute(stmt, _s_params(at, until, code)).all(), columns)


@lru_cache(maxsize=64)
def _open_at_stmt(dialect: str, columns: tuple, level: str | None, has_until: bool, past: bool, many: bool):
    t = Incident.__table__
    cols = [_raw_time(dialect, t.c[c]) if c in _TIME_COLUMNS else t.c[c] for c in columns]
    parts = _s_parts(cols, level, has_until, past, many)
    return union_all(*parts) if len(parts) > 1 else parts[0]


UNIT_COLUMNS = ("grid_code", "zone_code", "town_code")


@lru_cache(maxsize=8)
def _moment_stmt(has_until: bool, past: bool):
    """How many incidents of S (see :func:`open_at`) per (grid_code, zone_code, town_code), counted in the database:
    ``open`` at ``at``; of those reported in [``m_start``, ``m_end``): ``unresolved`` (not closed before the end),
    ``overdue_open`` (open at ``at`` and past due), ``late_after`` (closed after ``at`` and late), ``open_in_p`` (open
    at ``at``) — the moment flags of ``metrics.rollup.span_flags``, without moving the rows. Built once per shape of
    S (parameters ``m_start``, ``m_end`` and S's: :func:`_s_params`)."""
    t = Incident.__table__
    cols = [t.c[c] for c in (*UNIT_COLUMNS, "reported_at", "closed_at", "due_at")]
    parts = _s_parts(cols, None, has_until, past)
    s = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("s")
    rep, cl, due = s.c.reported_at, s.c.closed_at, s.c.due_at
    tt = t.c.reported_at.type
    at, start, end = bindparam("s_at", type_=tt), bindparam("m_start", type_=tt), bindparam("m_end", type_=tt)
    is_open = and_(or_(cl.is_(None), cl > at), rep <= at)
    in_p = and_(rep >= start, rep < end)

    def n(cond):
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    keys = [s.c[c] for c in UNIT_COLUMNS]
    return select(*keys, n(is_open), n(and_(in_p, or_(cl.is_(None), cl >= end))), n(and_(in_p, is_open, due < at)),
                  n(and_(in_p, cl.is_not(None), cl > at, cl > due)), n(and_(in_p, is_open))).group_by(*keys)


@contextmanager
def connection(bind):
    """A connection from an Engine (opened and closed here), or the Connection given."""
    if hasattr(bind, "connect") and not hasattr(bind, "execute"):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def version(bind) -> str:
    """What the aggregates depend on: the change sequence and the last inspection (two index lookups)."""
    with connection(bind) as conn:
        return _version(conn)


def _version(conn) -> str:
    seq, insp = conn.execute(_VERSION).one()  # one round trip
    return f"s{int(seq)}-i{int(insp)}"


_VERSION = select(select(func.coalesce(func.max(Incident.seq), 0)).scalar_subquery(),
                  select(func.coalesce(func.max(Inspection.id), 0)).scalar_subquery())


def version_at(bind, at: dt.datetime) -> str:
    """What a figure measured at the moment ``at`` (one not yet passed: a current period's) depends on — the
    store's version (:func:`version`) and the next moments after ``at`` at which a moment flag of
    ``metrics.rollup.span_flags`` can turn without a write: the next report after ``at`` (``rep <= at``) and the
    next due time at or after ``at`` of an open case (``due < at``). Two moments with the same answer give the same
    figures, so a current period's bundle is keyed by it instead of by the second (a province's bundle was rebuilt
    on every click). A case closed after ``at`` (a close recorded with a future time) would turn ``cl > at`` too:
    then the answer holds ``at`` itself (keyed by the second, as before). One round trip of index lookups: the
    report index, the open cases' partial index, and the last close of each close-lag class."""
    with connection(bind) as conn:
        row = conn.execute(_version_at_stmt(), {"v_at": at}).one()
    seq, insp, next_rep, next_due, *last_closes = row
    head = f"s{int(seq)}-i{int(insp)}"
    if any(c is not None and _as_aware(c) > at for c in last_closes):
        return f"{head}-t{at.isoformat()}"
    return f"{head}-r{_iso(next_rep)}-d{_iso(next_due)}"


def _as_aware(t) -> dt.datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _iso(t) -> str:
    return "-" if t is None else _as_aware(t).isoformat()


@lru_cache(maxsize=1)
def _version_at_stmt():
    t = Incident.__table__
    at = bindparam("v_at", type_=t.c.reported_at.type)
    return select(
        select(func.coalesce(func.max(t.c.seq), 0)).scalar_subquery(),
        select(func.coalesce(func.max(Inspection.id), 0)).scalar_subquery(),
        select(func.min(t.c.reported_at)).where(t.c.reported_at > at).scalar_subquery(),
        # "status <> 'closed'": the planner's cue for the open cases' partial index (as in _s_parts)
        select(func.min(t.c.due_at)).where(t.c.status != "closed", t.c.due_at >= at).scalar_subquery(),
        *(select(func.max(t.c.closed_at)).where(t.c.close_lag == c).scalar_subquery()
          for c in range(0, MAX_LAG_CLASS + 1)))


@contextmanager
def reading(bind):
    """A connection for a read of several statements in one transaction (one snapshot). On PostgreSQL the
    transaction plans no parallel workers: a bundle's statements each read a few thousand rows, and starting two
    workers (which the planner chose for the moment counts) cost more than the work — 20–40 ms on a busy machine.
    A connection already in a transaction is used as it is."""
    with connection(bind) as conn:
        if conn.in_transaction():
            yield conn
            return
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            yield conn


def events_of(conn, *, level: str | None, code: str | None, reported: tuple | None = None,
              closed: tuple | None = None, active: tuple | None = None) -> pd.DataFrame:
    """The events of one unit's incidents reported in ``reported`` = [a, b), closed in ``closed`` = [a, b), or
    ``active`` = (start, end): reported before end and not closed before start — for the edges of a period and a
    grid's lifecycle, where the rows are few. One statement: a lifecycle's stays need the events only (the incidents
    were read too, a second pass over the unit's incidents — 271 heap pages for one grid on a cold buffer cache)."""
    t, e = Incident.__table__, IncidentEvent.__table__
    ids = select(t.c.id).where(*_incident_cond(level, code, reported, closed, active))
    return _frame(conn.execute(select(*(e.c[c] for c in EVENT_COLUMNS)).where(e.c.incident_id.in_(ids))).all(),
                  EVENT_COLUMNS)


def _incident_cond(level, code, reported, closed, active) -> list:
    t = Incident.__table__
    cond = [] if not level or level == "district" else [_is(t.c[LEVEL_COLUMN[level]], code)]
    if reported is not None:
        cond += [t.c.reported_at >= reported[0], t.c.reported_at < reported[1]]
    if closed is not None:
        cond += [t.c.closed_at >= closed[0], t.c.closed_at < closed[1]]
    if active is not None:
        cond += [t.c.reported_at < active[1], or_(t.c.closed_at.is_(None), t.c.closed_at >= active[0])]
    return cond


def stays_of(inc: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
    """Completed stays (incident_id, state, hours) of the events ``ev`` (see :func:`contributions`)."""
    ev = ev.copy()
    if len(ev):
        ev["at"] = naive_utc(ev["at"])
    return _stays(ev)


def _snapshot(conn) -> dict:
    out = {}
    for table in AGG_TABLES:
        keys = [c.name for c in table.columns if c.primary_key]
        rows = conn.execute(select(table).order_by(*(table.c[k] for k in keys))).all()
        if table is AggHours:
            rows = [(*r[:6], r[6], tuple(zip(*(x.tolist() for x in unpack(r[7]))))) for r in rows]
            rows = [(*r[:7], tuple((b, n, round(h, 6)) for b, n, h in r[7])) for r in rows]
        out[table.name] = [tuple(str(v) if isinstance(v, (dt.date, bytes)) else v for v in r) for r in rows]
    return out


def check(engine) -> list[str]:
    """Compare the stored aggregates with a rebuild from the rows (rolled back): the differences, one line each."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            before = _snapshot(conn)
            rebuild(conn)
            after = _snapshot(conn)
        finally:
            trans.rollback()
    diff = []
    for name in before:
        a, b = set(before[name]), set(after[name])
        diff += [f"{name}: stored, not in the rows: {r}" for r in sorted(a - b, key=str)[:20]]
        diff += [f"{name}: in the rows, not stored: {r}" for r in sorted(b - a, key=str)[:20]]
    return diff


# ------------------------------------------------------------------------------------------- a bundle's rows
BUNDLE_COUNT_COLUMNS = ("r_new", "r_late", "r_onsite", "r_town", "r_district", "c_closed", "c_in_zone", "c_dispute",
                        "c_dispute_resolved", "c_longstanding", "i_problems")


class Prepared:
    """A Core statement compiled once for one dialect: its SQL, the order of its parameters and their bind
    processors. It runs with values only, on the driver's cursor: no statement is built, no cache key computed and no
    Row object made per request (a bundle's statements are built once per shape of its period: :func:`_prepared`)."""

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)  # (an IN list: of literal() or bindparam() elements, not expanding)
        self.sql = compiled.string
        self._compiled = compiled
        self._order = list(compiled.positiontup) if compiled.positional else None
        procs = {}
        for bind, name in compiled.bind_names.items():
            proc = bind.type._cached_bind_processor(dialect)
            if proc is not None:
                procs[name] = proc
        self._procs = procs

    def params(self, values: dict):
        """The driver's parameters for ``values`` (the statement's literals included, each value processed as the
        column's type does: SQLite's dates and times as text)."""
        p = self._compiled.construct_params(values)
        for name, proc in self._procs.items():
            if name in p:
                p[name] = proc(p[name])
        return tuple(p[name] for name in self._order) if self._order is not None else p

    def rows(self, conn, values: dict, binary: bool = False) -> list:
        """The rows as the driver's plain tuples (PostgreSQL ``binary``: bytea as its bytes, not hex text)."""
        params = self.params(values)
        driver = conn.connection.driver_connection
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            with driver.cursor(binary=binary) as cur:
                cur.execute(self.sql, params)
                return cur.fetchall()
        if conn.dialect.name == "sqlite":
            cur = driver.execute(self.sql, params)
            try:
                return cur.fetchall()
            finally:
                cur.close()
        result = conn.exec_driver_sql(self.sql, params)
        try:
            return result.cursor.fetchall()
        finally:
            result.close()


@lru_cache(maxsize=256)
def _prepared(dialect, build, shape) -> Prepared:
    """``build(*shape)``'s statement compiled for ``dialect``, once per shape."""
    return Prepared(build(*shape), dialect)


def _run(conn, build, shape: tuple, values: dict, binary: bool = False) -> list:
    return _prepared(conn.dialect, build, shape).rows(conn, values, binary)


def _pieces_cond(table, shape: tuple):
    """(condition, sign) of the pieces ``shape`` = ((grain, sign), …): piece i is the rows of its grain with ``day``
    between the parameters ``d<i>a`` and ``d<i>b`` (:func:`_pieces_values`), counted with its sign."""
    if not shape:
        return table.c.day < EPOCH, literal(1)
    day = table.c.day.type
    conds = [and_(table.c.grain == g, table.c.day.between(bindparam(f"d{i}a", type_=day), bindparam(f"d{i}b", type_=day)))
             for i, (g, _s) in enumerate(shape)]
    neg = [c for c, (_g, sg) in zip(conds, shape) if sg < 0]
    return or_(*conds), (case((or_(*neg), -1), else_=1) if neg else literal(1))


def _pieces_values(pieces) -> tuple[tuple, dict]:
    """(shape, values) of pieces (grain, from, to[, sign]) for :func:`_pieces_cond`."""
    shape = tuple((p[0], p[3] if len(p) > 3 else 1) for p in pieces)
    values = {}
    for i, p in enumerate(pieces):
        values[f"d{i}a"], values[f"d{i}b"] = p[1], p[2]
    return shape, values


def _counts_stmt(*shape):
    """Sums of the bundle's count columns per (lvl, code) and sign of the pieces (:func:`counts_by_unit` subtracts the
    negative ones): the sign computed once per row as a group key, not once per column; each value a 32-bit integer
    summed as a bigint (PostgreSQL's SUM of a bigint accumulates and returns numeric: half the time of the statement,
    and a Decimal per value in the client); every stored count fits 32 bits (a year of the district)."""
    t = AggCounts
    cond, sign = _pieces_cond(t, shape)
    sign = sign.label("sg")
    return (select(t.c.lvl, t.c.code, sign, *(func.sum(cast(t.c[c], Integer)) for c in BUNDLE_COUNT_COLUMNS))
            .where(cond).group_by(t.c.lvl, t.c.code, sign))


def counts_by_unit(rows) -> tuple[list, np.ndarray]:
    """([(lvl, code)], sums: one row per unit) of rows (lvl, code, sign, sums…): the positive pieces' sums less the
    negative ones'."""
    if not rows:
        return [], np.zeros((0, len(BUNDLE_COUNT_COLUMNS)), dtype=np.int64)
    ids: dict = {}
    at = np.fromiter((ids.setdefault((r[0], r[1]), len(ids)) for r in rows), dtype=np.int64, count=len(rows))
    values = np.array([r[3:] for r in rows], dtype=np.int64)
    values *= np.array([r[2] for r in rows], dtype=np.int64)[:, None]
    out = np.zeros((len(ids), values.shape[1]), dtype=np.int64)
    np.add.at(out, at, values)
    return list(ids), out


def _close_hist_stmt(grids: int | None, *shape):
    """The close and dispute histograms over signed pieces: of the coarse units (``grids`` None) or of every grid
    (``grids`` 0) or of the grids given as parameters ``g0`` … (``grids`` of them)."""
    t = AggHours
    cond, sign = _pieces_cond(t, shape)
    if grids is None:
        units = t.c.lvl.in_([literal(lv) for lv in COARSE_LEVELS])
    elif grids == 0:
        units = t.c.lvl == "grid"
    else:
        units = and_(t.c.lvl == "grid", t.c.code.in_([bindparam(f"g{i}") for i in range(grids)]))
    return select(t.c.kind, t.c.lvl, t.c.code, t.c.key2, t.c.data, sign).where(
        t.c.kind.in_([literal("close"), literal("dispute")]), cond, units)


def _units_stmt(*shape):
    t = AggUnits
    return select(t.c.grid_code, t.c.inspected, t.c.problems).where(_pieces_cond(t, shape)[0])


def _hists_by_kind(rows) -> dict:
    """{kind: :class:`Hist` keyed (lvl, code, key2)} of rows (kind, lvl, code, key2, data, sign)."""
    out = {}
    for kind in ("close", "dispute"):
        sel = [r for r in rows if r[0] == kind]
        out[kind] = hist_sum([r[1:4] for r in sel], [r[4] for r in sel], [r[5] for r in sel])
    return out


@dataclass(frozen=True)
class BundleRows:
    """What a period's KPI bundle is computed from, as the driver's tuples and arrays (no frame, no ORM object):

    ``counts``: ([(lvl, code)], their sums of ``count_columns`` over the period, one row each); ``units``: (grid codes, distinct units
    inspected, with problems) per grid; ``close`` / ``dispute``: the coarse units' hours to close and to resolve a
    dispute (:class:`Hist` keyed (lvl, code, key2)); ``moment``: (grid_code, zone_code, town_code, open,
    unresolved, overdue_open, late_after, open_in_p) counted per unit (:func:`_moment_stmt`)."""

    counts: tuple
    units: tuple
    close: Hist
    dispute: Hist
    moment: list
    count_columns: tuple = BUNDLE_COUNT_COLUMNS


def bundle_rows(bind, span: DaySpan, at: dt.datetime, start: dt.datetime, end: dt.datetime) -> BundleRows:
    """Everything a period's KPI bundle is computed from, read in one transaction with statements compiled once per
    shape of the period: the counts it shows, distinct units (popcounts of the OR of the grids' bitmaps), the coarse
    units' close-time and dispute histograms over ``span``, and the moment flags of the incidents open at ``at``
    counted per unit (the period is [start, end))."""
    today = _local_today()
    with reading(bind) as conn:
        counts = counts_by_unit(_run(conn, _counts_stmt, *_pieces_values(span.signed(ROW_WEIGHTS, today))))
        shape, values = _pieces_values(span.signed(HIST_WEIGHTS, today))
        hists = _hists_by_kind(_run(conn, _close_hist_stmt, (None, *shape), values, binary=True))
        bits = _run(conn, _units_stmt, *_pieces_values(span.pieces()), binary=True)
        moment = _run(conn, _moment_stmt, _s_shape(at, end), {**_s_params(at, end), "m_start": start, "m_end": end})
    return BundleRows(counts, _popcounts(bits), hists["close"], hists["dispute"], moment)


def _popcounts(rows) -> tuple[list, np.ndarray, np.ndarray]:
    """(grid codes, units inspected, units with problems) of bitmap rows (grid, inspected, problems): per grid, the
    popcounts of the OR of its rows' bitmaps (grids in order of first appearance)."""
    if not rows:
        e = np.array([], dtype=np.int64)
        return [], e, e
    grid = np.array([r[0] for r in rows], dtype=object)  # (zip(*rows) of 15,000 rows: 4 ms)
    inspected, problems = [r[1] for r in rows], [r[2] for r in rows]  # bytes from both drivers (PostgreSQL: binary)
    codes, uniq = pd.factorize(grid)
    order = np.argsort(codes, kind="stable")  # each grid's rows together, grids in order of first appearance
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    return list(uniq), _or_popcounts(inspected, order, starts), _or_popcounts(problems, order, starts)


def grid_hists(bind, span: DaySpan, grids) -> dict:
    """The per-grid parts a bundle leaves out (they are as many as the closes): {"close", "dispute": :class:`Hist`
    keyed (lvl, code, key2)} of ``grids`` (None: every grid) over ``span``."""
    grids = None if grids is None else sorted(grids)
    shape, values = _pieces_values(span.signed(HIST_WEIGHTS, _local_today()))
    if grids is not None:
        values.update({f"g{i}": g for i, g in enumerate(grids)})
    with reading(bind) as conn:
        return _hists_by_kind(_run(conn, _close_hist_stmt, (0 if grids is None else len(grids), *shape), values,
                                   binary=True))


def dept_inputs(bind, span: DaySpan, lvl: str, code: str, at: dt.datetime, until: dt.datetime) -> dict:
    """One unit's department workload inputs (one transaction): assigned / closed / late counts and time-to-close
    histograms per department over ``span``, and the unit's incidents open at ``at`` (see :func:`open_at`)."""
    units = [(lvl, code)] if isinstance(code, str) else [(lvl, c) for c in code]
    with reading(bind) as conn:
        return {"dept": read_dept(conn, span, units=units),
                "dept_hist": read_hours(conn, "dept", span, units=units),
                "open_set": open_at(conn, at, until, level=None if lvl == "district" else lvl,
                                    code=None if lvl == "district" else code)}


def _local_midnight(day: dt.date) -> dt.datetime:
    """The UTC moment a local (Asia/Shanghai) day starts."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC) - LOCAL_OFFSET.to_pytimedelta()


def carried_over_events(conn, lvl: str, code: str, start: dt.datetime) -> pd.DataFrame:
    """The events of one unit's incidents reported before ``start`` and not closed before it (the cases a period
    starting at ``start`` carries over): S at ``start`` (see :func:`open_at`), found through the open-cases and
    close-lag indexes — about twice their number, whatever the history's length."""
    stmt = _carried_stmt(conn.dialect.name, lvl, *_s_shape(start, None), lvl != "district" and _many(code))
    params = {**_s_params(start, None, None if lvl == "district" else code), "c_start": start}
    return _raw_rows_frame(conn, _plain_rows(conn, stmt, params), EVENT_COLUMNS)


@lru_cache(maxsize=32)
def _carried_stmt(dialect: str, lvl: str, has_until: bool, past: bool, many: bool):
    t, e = Incident.__table__, IncidentEvent.__table__
    parts = _s_parts([t.c.id, t.c.reported_at], lvl, has_until, past, many)
    s = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("s")
    ids = select(s.c.id).where(s.c.reported_at < bindparam("c_start", type_=t.c.reported_at.type))
    return select(*(_raw_time(dialect, e.c[c]) if c in _TIME_COLUMNS else e.c[c]
                    for c in EVENT_COLUMNS)).where(e.c.incident_id.in_(ids))


def _plain_rows(conn, stmt, params=None) -> list:
    """The rows of ``stmt`` as the driver's plain tuples (tens of thousands are not worth a Row object each)."""
    result = conn.execute(stmt, params) if params is not None else conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def lifecycle_inputs(bind, span: DaySpan, lvl: str, code: str, start: dt.datetime, end: dt.datetime) -> dict:
    """What one unit's lifecycle funnel and stage times are computed from (one transaction): the states reached
    by report day up to the period's last day and by close day before its first (funnel); for a grid its active
    incidents' stays, else the stays of the incidents active in the period as two disjoint parts — reported in the
    period (the period's stay histograms; a zone has month and year grains only, its edge days are read from their
    incidents' events) and carried over from before it (their events: :func:`carried_over_events`).

    The district and towns, whose stay histograms are kept by day too, read instead what the funnel reads: the stays
    of the incidents reported up to the period's last day less those of the ones closed before its first (a subset of
    the first: what is left are exactly the incidents active in the period), summed in one pass
    (``active_hist``). One statement reading a few hundred histograms, whatever the period; the events of
    the cases carried over into a period were thousands of index lookups at the start of a long history (31,082
    events of 4,900 cases at the district on 1 January 2019 at 1M incidents: 0.3–0.5 s)."""
    before = span.first - dt.timedelta(days=1)
    with reading(bind) as conn:
        out = {"reached": read_counts_upto(conn, span.last, lvl, code, [f"rf_{s}" for s in STATES]),
               "closed_before": read_counts_upto(conn, before, lvl, code, [f"cf_{s}" for s in STATES])}
        if lvl == "grid":
            out["stays"] = stays_of(None, events_of(conn, level="grid", code=code, active=(start, end)))
            return out
        if lvl in DAY_STAY_LEVELS:  # every grain kept: the active incidents' stays from the histograms alone
            t = AggHours
            r_cond, r_sign = _signed_cond(t, DaySpan(dt.date(1, 1, 1), span.last), HIST_WEIGHTS)
            c_cond, c_sign = _signed_cond(t, DaySpan(dt.date(1, 1, 1), before), HIST_WEIGHTS)
            rows = _blob_rows(conn, select(t.c.key2, t.c.data, case((t.c.kind == "stay_r", r_sign), else_=-c_sign))
                              .where(t.c.lvl == lvl, _is(t.c.code, code), or_(and_(t.c.kind == "stay_r", r_cond),
                                                                           and_(t.c.kind == "stay_c", c_cond))))
            one = code if isinstance(code, str) else ",".join(sorted(code))  # several towns: one sum
            out["active_hist"] = _hist_frame([(lvl, one, key2, data) for key2, data, _s in rows],
                                             signs=[sg for _k, _d, sg in rows])
            return out
        grains = next(g for lvls, g in STAY_GRAINS if lvl in lvls)
        t = AggHours
        pieces = [and_(t.c.grain == g, t.c.day.between(a, b)) for g, a, b in span.pieces() if g in grains]
        rows = [] if not pieces else _blob_rows(conn, select(t.c.lvl, t.c.code, t.c.key2, t.c.data).where(
            t.c.kind == "stay_r", t.c.lvl == lvl, _is(t.c.code, code), or_(*pieces)))
        out["period_hist"] = _hist_frame(rows)
        edges = []
        for g, a, b in span.pieces():
            if g not in grains:
                edges.append(stays_of(None, events_of(conn, level=lvl, code=code, reported=(
                    _local_midnight(a), _local_midnight(b + dt.timedelta(days=1))))))
        out["edge_stays"] = _concat_frames(edges) if edges else None
        out["carried_stays"] = stays_of(None, carried_over_events(conn, lvl, code, start))
        return out
