"""The aggregate fast path against the oracle (the pure KPI functions of dashboard/metrics/kpis.py on the raw rows).

Random histories written through the store's own write paths (single creates, backdated reports, every lifecycle
path, closes late and early, inspections), on SQLite and PostgreSQL — most in a few weeks around a new year, some
spread over four years; then, for random day-aligned periods (short ones, and long ones across year boundaries that
are read from the year, month and day grains, some as a year or month less the rows outside the period), random
moments and every unit level, every number of the fast path
must equal the oracle's (medians and p90 to 0.05 h); the incrementally kept aggregates must equal a rebuild from
the rows, and the year rows made from the month rows (migration 0010) must equal them too.
"""
from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
from cachelib import SimpleCache
from sqlalchemy import select

from dashboard.domain.hours import half_width
from dashboard.metrics import kpis, periods, registry, views
from dashboard.store import frames
from dashboard.store import aggregates as agg
from dashboard.store import catalogue, lifecycle
from dashboard.store import incidents as repo

UTC = dt.timezone.utc
ROLE_FOR = {"verified": "grid_worker"}
DEPTS = ("justice", "urban", "environment", "safety")


def _random_history(sessions, geo, rng: random.Random, n: int = 150):
    grids = geo.grids.sample(n=24, random_state=rng.randrange(10**6))
    cats = list(catalogue.CATEGORIES)
    base = dt.datetime(2024, 1, 1, tzinfo=UTC) - dt.timedelta(hours=8)  # local midnight, 1 Jan 2024
    with sessions() as s:
        for i in range(n):
            g = grids.iloc[rng.randrange(len(grids))]
            if rng.random() < 0.3:  # anywhere in four years: multi-year periods read whole years
                rep = base + dt.timedelta(seconds=rng.randrange(-800 * 86400, 600 * 86400))
            elif rng.random() < 0.08:  # exactly at a local midnight: the boundary of days and periods
                rep = base + dt.timedelta(days=rng.randrange(0, 80))
            else:
                rep = base + dt.timedelta(seconds=rng.randrange(0, 80 * 86400))
            inc, _ = repo.create_incident(s, repo.NewIncident(
                category=rng.choice(cats), lon=120.1, lat=30.85, grid_code=g["code"], zone_code=g["zone_code"],
                town_code=g["town_code"], longstanding=rng.random() < 0.1, reported_at=rep,
                source=rng.choice(["app", "patrol", "hotline"])))
            t = rep
            status, level = inc.status, inc.level
            while status != "closed" and rng.random() < 0.85:
                options = lifecycle.next_states(status, level)
                if not options:
                    break
                to = rng.choice(options)
                t = t + dt.timedelta(hours=rng.choice([0.0, rng.expovariate(1 / 6), rng.expovariate(1 / 60),
                                                         rng.uniform(0, 400)]))
                if rng.random() < 0.03:  # a step exactly at a local midnight
                    t = (t + dt.timedelta(hours=8)).replace(hour=0, minute=0, second=0, microsecond=0) \
                        - dt.timedelta(hours=8) + dt.timedelta(days=1)
                inc, _ev = repo.transition(
                    s, inc.id, to, actor="w", actor_role=ROLE_FOR.get(to, "duty_officer"),
                    department=rng.choice(DEPTS) if to == "assigned" else None,
                    outcome=rng.choice(["resolved", "resolved", "unresolved"]) if to == "closed" else None, at=t)
                status, level = inc.status, inc.level
        rows = []
        for _ in range(400):
            g = grids.iloc[rng.randrange(len(grids))]
            day = (dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(85)) if rng.random() < 0.7
                   else dt.date(2021, 10, 1) + dt.timedelta(days=rng.randrange(1400)))
            rows.append({"unit_id": f"{g['code']}-U{rng.randrange(12):04d}", "grid_code": g["code"],
                         "zone_code": g["zone_code"], "town_code": g["town_code"], "inspected_on": day,
                         "inspector": "x", "problems_found": rng.choice([0, 0, 1, 2])})
        for k in range(0, len(rows), 100):
            repo.bulk_insert_inspections(s, rows[k:k + 100])
    return grids


def _agg_tables(engine) -> dict:
    out = {}
    with engine.connect() as c:
        for t in (agg.AggCounts, agg.AggCategory, agg.AggDept):
            keys = [col.name for col in t.columns if col.primary_key]
            df = pd.DataFrame(c.execute(select(t)).all(), columns=[col.name for col in t.columns])
            out[t.name] = df.sort_values(keys).reset_index(drop=True)
        hist = []
        for row in c.execute(select(agg.AggHours)).all():
            *key, nvals, data = row
            bins, n, hsum = agg.unpack(data)
            assert int(n.sum()) == nvals and (n > 0).all() and (np.diff(bins) > 0).all()
            hist += [(*key, int(b), int(k), round(float(h), 6)) for b, k, h in zip(bins, n, hsum)]
        out["agg_hist"] = pd.DataFrame(hist, columns=[*agg.HKEY, "bin", "n", "hsum"]).sort_values(
            [*agg.HKEY, "bin"]).reset_index(drop=True)
        u = pd.DataFrame(c.execute(select(agg.AggUnits)).all(), columns=["grid_code", "grain", "day", "a", "b"])
        u["a"] = [int.from_bytes(x, "little") for x in u["a"]]
        u["b"] = [int.from_bytes(x, "little") for x in u["b"]]
        out["agg_units"] = u.sort_values(["grid_code", "grain", "day"]).reset_index(drop=True)
    return out


def _close(a, b) -> bool:
    """Hours read from the histograms: within the half-width of their bin (0.05 h below 30 days)."""
    if a is None or b is None:
        return a is None and b is None
    tol = max(half_width(float(a)), half_width(float(b))) + 1e-9
    return abs(float(a) - float(b)) <= tol


def _random_period(rng: random.Random, long: bool = False) -> periods.Period:
    """A short period around the new year 2024, or (``long``) one of up to three years across year boundaries —
    now and then starting on the first of a month or of a year, or ending on the last day of one."""
    if not long:
        first = pd.Timestamp("2023-12-20") + pd.Timedelta(days=rng.randrange(0, 100))
        last = first + pd.Timedelta(days=rng.choice([0, 1, 6, 13, 29, 30, 45, 70]))
    else:
        first = pd.Timestamp("2021-11-01") + pd.Timedelta(days=rng.randrange(0, 900))
        first = rng.choice([first, first.replace(day=1), first.replace(month=1, day=1)])
        last = first + pd.Timedelta(days=rng.choice([300, 364, 365, 400, 700, 730, 1000]))
        last = rng.choice([last, last + pd.offsets.MonthEnd(0), last.replace(month=12, day=31)])
    return periods.resolve("custom", first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d"),
                           now=pd.Timestamp("2026-01-01", tz="UTC"))


def _check_unit(db, gd, h, b, p, now, at, level, code, sub, ev) -> None:
    """One unit's breakdowns, department workload and lifecycle (``sub``: its incidents; ``ev``: the events of those
    active in the period) against the pure functions."""
    cat = views.category_counts(db, p, level, code, h=h)
    exp_cat = kpis.category_breakdown(sub, p.start, p.end)
    assert dict(zip(cat["category"], cat["count"])) == dict(zip(exp_cat["category"], exp_cat["count"]))
    assert list(views.level_counts(b, h, level, code)["count"]) == list(kpis.level_share(sub, p.start, p.end)["count"])
    tr = views.trend_series(db, p, level, code, "D", h=h)
    exp_tr = kpis.trend(sub, p.start, p.end, "D")
    assert [(str(a.date()), int(n), int(c)) for a, n, c in zip(tr["period"], tr["new"], tr["closed"])] == \
        [(str(a.date()), int(n), int(c)) for a, n, c in zip(exp_tr["period"], exp_tr["new"], exp_tr["closed"])]
    dep = views.department_table(b, level, code, p, db, h=h)
    exp_dep = kpis.department_workload(sub, p.start, p.end, at)
    assert [(r["department"], r["assigned"], r["open"], r["closed"], r["overdue"]) for r in dep] == \
        [(r.department, r.assigned, r.open, r.closed, r.overdue) for r in exp_dep.itertuples()]
    for r, e in zip(dep, exp_dep.itertuples()):
        assert _close(r["median_hours_to_close"], kpis._none_if_nan(e.median_hours_to_close))
    life = views.lifecycle(db, gd, None, p, level, code, now=now)
    assert list(life["funnel"]["incidents"]) == list(kpis.funnel(ev)["incidents"])
    exp_st = kpis.stage_times(ev, at=at)
    got = life["stages"].set_index("state")
    assert list(got.index) == list(exp_st["state"])
    for e in exp_st.itertuples():
        g = got.loc[e.state]
        assert int(g["stays"]) == int(e.stays)
        assert _close(g["median_hours"], e.median_hours) and _close(g["p90_hours"], e.p90_hours)
        assert abs(g["mean_hours"] - e.mean_hours) <= 1e-6 * max(1.0, abs(e.mean_hours))


def test_aggregates_equal_the_oracle(backend, db, sessions, geo):
    rng = random.Random({"sqlite": 11, "postgresql": 29}[backend[0]])  # a different history on each back end
    _random_history(sessions, geo, rng)
    gd = geo
    h = views.hierarchy(gd)
    inc_all = frames.load_incidents(db)
    ins_all = frames.load_inspections(db)
    ev_all = frames.load_events(db)
    assert len(inc_all) and len(ev_all) and len(ins_all)
    assert inc_all["closed_at"].notna().sum() > 20
    checked = disputes_timed = long_periods = 0
    subtracted = np.zeros(2, dtype=int)
    cache = SimpleCache(threshold=1000)
    for i in range(12):
        p = _random_period(rng, long=i % 2 == 1)
        long_periods += any(g == "y" for g, _a, _b in views.day_span(p).pieces())
        # rows subtracted (a month less days, a year less months and days: DaySpan.signed) for counts / histograms
        subtracted += [any(sg < 0 for *_x, sg in views.day_span(p).signed(w)) for w in (agg.ROW_WEIGHTS,
                                                                                         agg.HIST_WEIGHTS)]
        # a moment inside or after the period: "now" for a period that has not ended
        now = p.start + pd.Timedelta(hours=rng.uniform(0, 24 * (max((p.end - p.start).days, 70) + 40)))
        at = views.moment(p, now)
        b = views.with_grid_medians(db, None, views.kpi_bundle(db, gd, None, p, now=now), p)
        plain = views.kpi_bundle(db, gd, None, p, now=now)
        assert all(r["median_hours_to_close"] is None and r["dispute_median_hours"] is None
                   for r in plain["kpis"]["grid"].values())  # grids on demand
        # a cached bundle (a current one keyed by its next report and due time, agg.version_at) read at a later
        # moment gives what a bundle built afresh at that moment gives
        assert views.kpi_bundle(db, gd, cache, p, now=now)["kpis"] == plain["kpis"]
        later = now + pd.Timedelta(minutes=rng.uniform(1, 3000))
        assert (views.kpi_bundle(db, gd, cache, p, now=later)["kpis"]
                == views.kpi_bundle(db, gd, None, p, now=later)["kpis"]), (p, now, later)
        f_inc = inc_all
        expect_d = kpis.all_kpis(f_inc, ins_all, h.grids, p.start, p.end, at)
        _compare(expect_d, b["kpis"]["district"][h.root.code])
        disputes_timed += expect_d["dispute_median_hours"] is not None
        for level, col in (("town", "town_code"), ("zone", "zone_code"), ("grid", "grid_code")):
            codes = sorted(set(inc_all[col]) | set(ins_all[col]))
            exp = kpis.kpis_by(inc_all, ins_all, h.grids, level, p.start, p.end, at, codes=codes)
            for code in codes:
                _compare(exp.loc[code].to_dict(), b["kpis"][level][code])
                checked += 1
        # breakdowns of a random unit
        level = rng.choice(["district", "town", "zone", "grid"])
        code = None if level == "district" else rng.choice(sorted(set(inc_all[f"{level}_code"])))
        sub = inc_all if level == "district" else inc_all[inc_all[f"{level}_code"] == code]
        ids = frames.load_incidents(db, p.start, p.end, None if level == "district" else level, code,
                                    columns=("id",))["id"]
        _check_unit(db, gd, h, b, p, now, at, level, code, sub, ev_all[ev_all["incident_id"].isin(set(ids))])
    assert checked > 50 and disputes_timed > 0 and long_periods >= 3 and (subtracted >= 2).all(), subtracted

    # the aggregates kept write by write equal a rebuild from the rows
    kept = _agg_tables(db)
    assert all((kept[name]["grain"] == "y").any() for name in kept)
    agg.rebuild(db)
    rebuilt = _agg_tables(db)
    for name in kept:
        pd.testing.assert_frame_equal(kept[name], rebuilt[name], check_dtype=False)
    _assert_laid_out_for_reads(db)
    # and a rebuild streamed in small pieces (id ranges of 7, rows written at every range as their days end)
    stats = agg.rebuild(db, chunk=7, fold=1)
    assert stats["flushes"] > 10, stats
    streamed = _agg_tables(db)
    for name in kept:
        pd.testing.assert_frame_equal(kept[name], streamed[name], check_dtype=False)
    # and so do the year rows made from the month rows (migration 0010's backfill of a store kept without them)
    with db.begin() as c:
        for t in (agg.AggCounts, agg.AggCategory, agg.AggDept, agg.AggHours, agg.AggUnits):
            c.execute(t.delete().where(t.c.grain == "y"))
    agg.backfill_years(db)
    backfilled = _agg_tables(db)
    for name in kept:
        pd.testing.assert_frame_equal(kept[name], backfilled[name], check_dtype=False)


def _assert_laid_out_for_reads(db) -> None:
    """After a rebuild (one flush: this store is small) each aggregate table's rows lie in the order its reads look
    them up (agg.READ_ORDER, then the rest of the key), so a period's rows of the district, towns and zones share a
    few pages; on PostgreSQL they were written frozen into the emptied tables (every page all-visible)."""
    pg = db.dialect.name == "postgresql"
    where = "ctid" if pg else "rowid"
    rows_first = list(agg.READ_ORDER["rows"])
    tables = ((agg.AggHours.name, [*agg.READ_ORDER["hist"], "code", "key2"]),
              (agg.AggCounts.name, [*rows_first, "code", "parent"]),
              (agg.AggCategory.name, [*rows_first, "code", "category"]),
              (agg.AggDept.name, [*rows_first, "code", "department"]),
              (agg.AggUnits.name, ["grain", "day", "grid_code"]))
    with db.connect() as c:
        for name, cols in tables:
            rows = [tuple(str(v) for v in r) for r in
                    c.exec_driver_sql(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {where}").all()]
            assert len(rows) > 10 and rows == sorted(rows), (name, rows[:5])
            if pg:
                pages, visible = c.exec_driver_sql(
                    f"SELECT relpages, relallvisible FROM pg_class WHERE oid = '{name}'::regclass").one()
                assert pages > 0 and visible == pages, (name, pages, visible)


def _compare(expect: dict, got: dict) -> None:
    for k, v in expect.items():
        g = got.get(k)
        if registry.unit(k) == "hours":  # medians read from histograms
            assert _close(g, v), (k, g, v)
        elif v is None:
            assert g is None, (k, g, v)
        else:
            assert g == v, (k, g, v)


def test_counties_and_cities_equal_the_oracle(backend, db, sessions, geo):
    """A multi-county set (the seed's towns regrouped into counties and cities: a province on SQLite, a city on
    PostgreSQL): every county's and city's KPIs, breakdowns, department workload and lifecycle — read as the sums
    of their towns' aggregate rows — equal the pure functions on the rows of their incidents."""
    from tests.regrouped import regrouped

    with_cities = backend[0] == "sqlite"
    rng = random.Random({"sqlite": 5, "postgresql": 7}[backend[0]])
    _random_history(sessions, geo, rng, n=90)
    gd = regrouped(geo, with_cities)
    h = views.hierarchy(gd)
    assert h.levels == (("district", "city", "county", "town", "zone", "grid") if with_cities
                        else ("district", "county", "town", "zone", "grid"))
    up = {lv: h.grids.set_index("town_code")[views.UNIT_COLUMN[lv]].groupby(level=0).first().to_dict()
          for lv in ("county", "city") if lv in h.levels}
    inc_all = frames.load_incidents(db)
    ins_all = frames.load_inspections(db)
    ev_all = frames.load_events(db)
    for lv, m in up.items():
        inc_all[f"{lv}_code"] = inc_all["town_code"].map(m)
        ins_all[f"{lv}_code"] = ins_all["town_code"].map(m)
    checked = 0
    for i in range(4):
        p = _random_period(rng, long=i % 2 == 1)
        now = p.start + pd.Timedelta(hours=rng.uniform(0, 24 * (max((p.end - p.start).days, 70) + 40)))
        at = views.moment(p, now)
        b = views.kpi_bundle(db, gd, None, p, now=now)
        _compare(kpis.all_kpis(inc_all, ins_all, h.grids, p.start, p.end, at), b["kpis"]["district"][h.root.code])
        for lv in up:
            codes = h.codes(lv)
            assert sorted(b["kpis"][lv]) == codes
            exp = kpis.kpis_by(inc_all, ins_all, h.grids, f"{lv}_code", p.start, p.end, at, codes=codes)
            for code in codes:
                _compare(exp.loc[code].to_dict(), b["kpis"][lv][code])
                checked += 1
            # the unit's breakdowns, department workload and lifecycle
            code = rng.choice(codes)
            sub = inc_all[inc_all[f"{lv}_code"] == code]
            act = frames.load_incidents(db, p.start, p.end, columns=("id", "town_code"))  # active in the period
            ids = set(act.loc[act["town_code"].map(up[lv]) == code, "id"])
            _check_unit(db, gd, h, b, p, now, at, lv, code, sub, ev_all[ev_all["incident_id"].isin(ids)])
    assert checked >= 4 * sum(len(h.codes(lv)) for lv in up)
    # a county's and a city's rows are the sums of their towns': the parent of every town is its county
    for town in h.codes("town"):
        county = h.parent[("town", town)]
        assert town in h.kids("county", county) and h.chain("town", town)[-2] == ("county", county)


def _open_cases_falling_due(h, t0: pd.Timestamp, n: int = 500, seed: int = 7) -> list[dict]:
    """Incident rows as a store holds them at ``t0``: reported over the 40 days before it, most closed by then,
    the open ones falling due over the 14 h after it (a third) or earlier."""
    r = np.random.default_rng(seed)
    g = h.grids.iloc[r.integers(0, len(h.grids), n)]
    rep = t0 - pd.to_timedelta(r.integers(3600, 40 * 86400, n), unit="s")
    closed = rep + pd.to_timedelta(r.integers(600, 90 * 3600, n), unit="s")
    is_closed = (closed < t0) & (r.random(n) < 0.85)
    due = rep + pd.Timedelta(hours=48)
    soon = t0 + pd.to_timedelta(r.integers(0, 14 * 3600, n), unit="s")
    due = due.where(is_closed | (np.arange(n) % 3 != 0), soon)
    levels = np.array(["onsite", "town", "district"])[r.integers(0, 3, n)]
    return [{"id": i + 1, "category": "safety.fire", "level": lv,
             "department": "safety" if lv == "district" else None,
             "status": "closed" if c else "in_progress", "outcome": None, "longstanding": False,
             "grid_code": gc, "zone_code": zc, "town_code": tc, "lon": 120.1, "lat": 30.85,
             "reported_at": a.to_pydatetime(), "closed_at": b.to_pydatetime() if c else None,
             "due_at": d.to_pydatetime()}
            for i, (lv, c, gc, zc, tc, a, b, d) in enumerate(zip(
                levels, is_closed, g["code"], g["zone_code"], g["town_code"], rep, closed, due))]


@pytest.mark.parametrize("future_close", [False, True])
def test_a_current_bundle_is_reused_only_while_its_figures_hold(backend, db, sessions, geo, future_close):
    """A current period's bundle is keyed by what its moment flags depend on (``agg.version_at``: the next report
    and due time after the moment), not by the second: walking the clock through half a day of due times, every
    figure a cached bundle gives equals the one built afresh at that moment, the cache is reused between due times
    and a new key comes exactly where one passed. With a close recorded after the moment it is keyed by the second."""
    h = views.hierarchy(geo)
    t0 = pd.Timestamp("2019-04-20 06:00", tz="UTC")
    rows = _open_cases_falling_due(h, t0)
    if future_close:  # one case closed after every moment below (a close recorded with a future time)
        r = next(x for x in rows if x["status"] != "closed")
        r.update(status="closed", closed_at=(t0 + pd.Timedelta(hours=30)).to_pydatetime())
    with sessions() as s:
        repo.bulk_insert_incidents(s, rows)
    moments = [t0 + pd.Timedelta(minutes=25 * k) for k in range(30)]
    dues = pd.to_datetime(pd.Series([x["due_at"] for x in rows if x["status"] != "closed"]), utc=True)
    passing = sum(1 for a, b in zip(moments, moments[1:]) if ((dues >= a.ceil("s")) & (dues < b.ceil("s"))).any())
    assert 2 <= passing < len(moments) - 2  # the walk crosses due times, and stays between them too
    p = periods.resolve("custom", "2019-03-01", "2019-05-31")
    cache = SimpleCache(threshold=1000)
    keys, overdue = [], set()
    for now in moments:
        cached = views.kpi_bundle(db, geo, cache, p, now=now)
        fresh = views.kpi_bundle(db, geo, None, p, now=now)
        assert cached["kpis"] == fresh["kpis"] and cached["levels"] == fresh["levels"], now
        assert cached["at"] == fresh["at"] == str(views.moment(p, now))
        keys.append(cached["key"])
        overdue.add(views.unit_kpis(cached, "district", None)["overdue_incidents"])
    assert len(overdue) > 1  # the figures did move with the clock
    if future_close:
        assert len(set(keys)) == len(moments)
    else:
        assert len(set(keys)) - 1 == passing  # a new key exactly where a due time passed
