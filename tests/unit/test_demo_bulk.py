"""``--incidents N`` beyond the calibrated demo (issue 9): the extra cases go to the bulk years before the
recent days, generated chunk by chunk, on a SMALL history (scale 1 %) in a temporary SQLite file.

The calibrated 2019 year stays exactly what the demo alone gives; every case of the bulk years follows an allowed
lifecycle path and agrees with its events; patrol problems are the inspections' problems; ids follow report
time across the parts; chunks are reproducible from the seed.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from dashboard.demo import history as H
from dashboard.store import lifecycle

NOW = dt.datetime(2025, 11, 25, 9, 0, 0)
SCALE = 0.01
N = 14_000  # the scaled demo holds ~2,100: the rest goes to the bulk years


@pytest.fixture(scope="module")
def stored(tmp_path_factory, geodata_dir):
    from dashboard.store import make_engine

    url = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'bulk.sqlite3'}"
    out = H.run_history(url, scale=SCALE, incidents=N, now=NOW, geodata_dir=geodata_dir, progress=False)
    engine = make_engine(url)
    with engine.connect() as c:
        inc = pd.read_sql(text("SELECT * FROM incidents ORDER BY id"), c)
        ev = pd.read_sql(text("SELECT * FROM incident_events ORDER BY incident_id, seq"), c)
        ins = pd.read_sql(text("SELECT * FROM inspections ORDER BY id"), c)
    engine.dispose()
    for col in ("reported_at", "closed_at", "due_at", "updated_at"):
        inc[col] = pd.to_datetime(inc[col], format="ISO8601")
    ev["at"] = pd.to_datetime(ev["at"], format="ISO8601")
    return out, inc, ev, ins


def _plan():
    return H.bulk_plan(50_000, np.datetime64(NOW, "s"), 30, chunk=7_000)


def test_plan_fills_the_years_before_the_recent_days():
    plan = _plan()
    assert int(plan.per_day.sum()) == 50_000
    recent_first = np.datetime64(NOW.date()) - 29
    assert plan.days[-1] == recent_first - 1 and plan.days[0] >= H.BULK_START
    assert len(plan.days) == round(365.25 * H.BULK_YEARS)
    assert (np.diff(plan.days.astype(np.int64)) == 1).all()
    # contiguous chunks of whole days, none over the chunk size
    assert plan.bounds[0][0] == 0 and plan.bounds[-1][1] == len(plan.days)
    assert all(b[1] == c[0] for b, c in zip(plan.bounds, plan.bounds[1:]))
    assert max(int(plan.per_day[a:b].sum()) for a, b in plan.bounds) <= 7_000


def test_plan_never_reaches_into_the_calibrated_year():
    plan = H.bulk_plan(1_000, np.datetime64("2022-06-01T00:00:00"), 30)
    assert plan.days[0] == H.BULK_START
    with pytest.raises(ValueError, match="no room"):
        H.bulk_plan(1_000, np.datetime64("2020-01-10T00:00:00"), 30)


def test_size_and_the_calibrated_year_unchanged(stored, gd):
    out, inc, ev, ins = stored
    assert out["incidents"] == len(inc) and out["events"] == len(ev) and out["inspections"] == len(ins)
    assert N <= len(inc) <= N + 20  # + the few recent cases placed inside hazard rings
    from dashboard.metrics import kpis as K

    alone = H.generate(gd, H.DemoConfig(scale=SCALE, now=NOW))
    s, e = K.calendar_year(2019)
    assert K.all_kpis(inc, ins, gd.grids, s, e) == K.all_kpis(alone.incidents, alone.inspections, gd.grids, s, e)
    plan = H.bulk_plan(out["bulk_incidents"], np.datetime64(NOW, "s"), 30)
    end = H.local_day_to_utc(plan.days[-1:] + 1, np.zeros(1, np.int64))[0]
    in_span = inc["reported_at"].between(pd.Timestamp(plan.start_utc), pd.Timestamp(end), inclusive="left")
    assert in_span.sum() == out["bulk_incidents"] > 0.8 * N


def test_every_step_allowed_and_rows_agree_with_events(stored, gd):
    _, inc, ev, _ = stored
    allowed = set(lifecycle.ALLOWED_STEPS) | {(None, "reported")}
    steps = set(zip([None if pd.isna(x) else x for x in ev["from_status"]], ev["to_status"]))
    assert steps <= allowed, steps - allowed
    prev_to = ev.groupby("incident_id")["to_status"].shift(1)
    assert (ev["from_status"].isna() | (ev["from_status"] == prev_to)).all()
    g = ev.groupby("incident_id")
    assert (g["seq"].diff().dropna() > 0).all() and (g["at"].diff().dropna() > pd.Timedelta(0)).all()
    assert ev["seq"].is_unique and ev["id"].is_unique and inc["seq"].is_unique and inc["code"].is_unique
    assert inc["code"].str.match(r"^WX\d{8}-\d{6,}$").all()
    last = ev.groupby("incident_id").tail(1).set_index("incident_id")
    i = inc.set_index("id")
    assert (i["status"] == last["to_status"].reindex(i.index)).all()
    assert (i["seq"] == last["seq"].reindex(i.index)).all()
    closed = i["status"] == "closed"
    assert (i.loc[closed, "closed_at"] == last.loc[i.index[closed], "at"]).all()
    assert i.loc[~closed, "closed_at"].isna().all()
    reached = ev.groupby("incident_id")["to_status"].agg(set).reindex(i.index)
    district = reached.map(lambda s: "escalated" in s)
    town = reached.map(lambda s: "routed" in s) & ~district
    assert (i.loc[district, "level"] == "district").all() and (i.loc[town, "level"] == "town").all()
    assert (i.loc[~district & ~town, "level"] == "onsite").all()
    assigned = reached.map(lambda s: "assigned" in s)
    assert i.loc[assigned, "department"].notna().all() and i.loc[~assigned, "department"].isna().all()
    workers = dict(zip(gd.grids["code"], gd.grids["worker_name"]))
    ver = ev[ev["to_status"] == "verified"].merge(inc[["id", "grid_code"]], left_on="incident_id", right_on="id")
    assert (ver["actor_role"] == "grid_worker").all() and (ver["actor"] == ver["grid_code"].map(workers)).all()
    assert (ev.loc[ev["to_status"] == "closed", "from_status"] == "verified").all()
    assert ev["at"].max() <= pd.Timestamp(NOW) and inc["reported_at"].max() <= pd.Timestamp(NOW)
    assert (i["due_at"] > i["reported_at"]).all() and i["severity"].between(1, 4).all()


def test_the_bulk_years_look_like_the_demo(stored):
    _, inc, _, _ = stored
    bulk = inc[(inc["reported_at"] >= pd.Timestamp("2020-06-01")) & (inc["reported_at"] < pd.Timestamp("2025-06-01"))]
    onsite = (bulk["level"] == "onsite").mean()
    assert abs(onsite - H.ONSITE_TARGET) < 0.03
    assert (bulk["status"] == "closed").mean() > 0.95
    disputes = bulk["category"].str.startswith("dispute.")
    assert abs(disputes.mean() - (1 - H.PATROL_SHARE) * H.DISPUTE_SHARE) < 0.02
    assert (bulk.loc[disputes & (bulk["status"] == "closed"), "outcome"] == "resolved").mean() > 0.97
    by_year = bulk.groupby(bulk["reported_at"].dt.year).size()
    assert by_year.loc[2024] > by_year.loc[2021]  # the volume grows over the span


def test_patrol_incidents_are_the_problems_found(stored, gd):
    _, inc, _, ins = stored
    patrol = inc[inc["inspection_id"].notna()]
    assert (patrol["source"] == "patrol").all()
    per_inspection = patrol.groupby("inspection_id").size()
    expect = ins.set_index("id")["problems_found"]
    expect = expect[expect > 0]
    assert per_inspection.reindex(expect.index, fill_value=0).equals(expect.astype(per_inspection.dtype))
    joined = patrol.merge(ins, left_on="inspection_id", right_on="id", suffixes=("", "_i"))
    assert (joined["grid_code"] == joined["grid_code_i"]).all()
    local_day = (joined["reported_at"] + pd.Timedelta(hours=8)).dt.strftime("%Y-%m-%d")
    assert (local_day == pd.to_datetime(joined["inspected_on"]).dt.strftime("%Y-%m-%d")).all()
    assert not ins.duplicated(["unit_id", "inspected_on"]).any()
    got = gd.locator.locate_many(inc["lon"].to_numpy(), inc["lat"].to_numpy())
    assert (got == inc["grid_code"].to_numpy()).all()


def test_ids_and_sequence_follow_report_time(stored):
    _, inc, ev, _ = stored
    assert inc["reported_at"].is_monotonic_increasing  # 2019, then the bulk years, then the recent days
    newest = inc.nlargest(50, "id")
    assert (newest["reported_at"] >= pd.Timestamp(NOW) - pd.Timedelta(days=30)).all()
    creation = ev[ev["from_status"].isna()].set_index("incident_id")["seq"]
    assert creation.reindex(inc["id"]).is_monotonic_increasing


def test_chunks_are_reproducible(gd):
    geo = H.Geo(gd)
    plan = _plan()
    pool = H.location_pool(3, geo, size=64)
    effects = H.zone_effects(np.random.default_rng(3), geo)
    now = np.datetime64(NOW, "s")
    a = H.bulk_chunk(3, 1, geo, pool, effects, plan, now)
    b = H.bulk_chunk(3, 1, geo, pool, effects, plan, now)
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.inspections, b.inspections)
    c = H.bulk_chunk(3, 2, geo, pool, effects, plan, now)
    a0, a1 = plan.bounds[1]
    assert len(a.incidents) == int(plan.per_day[a0:a1].sum())
    assert a.incidents["reported_at"].max() < c.incidents["reported_at"].min()


def test_the_location_pool_stays_bounded_with_many_grids_and_every_point_is_in_its_grid(gd):
    geo = H.Geo(gd)
    g = len(geo.codes)
    # under the bound: the same draws as placing every grid's points at once (a district's stores unchanged)
    lon, lat = H.location_pool(5, geo, size=64)
    x, y = geo.points_in(np.random.default_rng([5, 1906]), np.repeat(np.arange(g), 64))
    assert np.array_equal(lon, x.reshape(g, 64)) and np.array_equal(lat, y.reshape(g, 64))
    # over it (a province's grids): fewer points a grid, never under the minimum, placed in several batches
    for points, per_grid in ((g * 20, 20), (g * 4, H.BULK_POOL_MIN)):
        lon, lat = H.location_pool(5, geo, size=64, points=points)
        assert lon.shape == lat.shape == (g, per_grid)
        assert (geo.locator.locate_many(lon.ravel(), lat.ravel()) == np.repeat(geo.codes, per_grid)).all()


def test_cli_reads_counts_and_refuses_bad_ones(capsys):
    from dashboard.demo.__main__ import _count, main

    assert [_count(v) for v in ("1000000", "1_000_000", "100k", "10m")] == [1_000_000, 1_000_000, 100_000,
                                                                           10_000_000]
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as exc:
            main(["history", "--incidents", bad, "--db", "sqlite:///:memory:"])
        assert exc.value.code == 2
    assert "--incidents" in capsys.readouterr().err


def test_cli_says_when_there_is_no_room_for_the_bulk_years(tmp_path, geodata_dir, capsys):
    from dashboard.demo.__main__ import main

    rc = main(["history", "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "--scale", "0.002", "--incidents", "5000",
               "--now", "2020-01-10T02:00:00", "--geodata", str(geodata_dir), "--quiet"])
    assert rc == 2 and "no room" in capsys.readouterr().err
