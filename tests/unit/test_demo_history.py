"""The demo generator on a SMALL deterministic history (scale 1 %) in a temporary SQLite file.

Invariants: every event is an allowed lifecycle step, a case closes only after an on-site verification by
its grid worker, status/level/closed_at agree with the events, points lie in their grids, patrol incidents
match the inspections' problem counts, the stories exist, recent open cases sit in every open state, and
the same seed gives the same rows.
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


@pytest.fixture(scope="module")
def small_db(tmp_path_factory, geodata_dir):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite3'}"
    out = H.run_history(url, scale=SCALE, now=NOW, geodata_dir=geodata_dir, progress=False)
    from dashboard.store import make_engine

    engine = make_engine(url)
    yield url, engine, out
    engine.dispose()


def _read(engine, sql):
    with engine.connect() as c:
        return pd.read_sql(text(sql), c)


@pytest.fixture(scope="module")
def tables(small_db):
    _, engine, _ = small_db
    inc = _read(engine, "SELECT * FROM incidents ORDER BY id")
    ev = _read(engine, "SELECT * FROM incident_events ORDER BY incident_id, seq")
    ins = _read(engine, "SELECT * FROM inspections ORDER BY id")
    for c in ("reported_at", "closed_at", "due_at", "updated_at"):
        inc[c] = pd.to_datetime(inc[c], format="ISO8601")
    ev["at"] = pd.to_datetime(ev["at"], format="ISO8601")
    return inc, ev, ins


def test_largest_remainder_is_exact_and_respects_caps():
    w = np.array([5.0, 1.0, 1.0, 0.0, 3.0])
    out = H.largest_remainder(11, w)
    assert out.sum() == 11 and out[3] == 0
    capped = H.largest_remainder(20, w, caps=[2, 10, 10, 5, 3])
    assert capped.sum() == 20 and (capped <= [2, 10, 10, 5, 3]).all() and capped[3] == 0
    with pytest.raises(ValueError):
        H.largest_remainder(100, w, caps=[1, 1, 1, 1, 1])


def test_night_shift_is_monotone_and_daytime():
    t = np.arange(np.datetime64("2019-03-01T00:00"), np.datetime64("2019-03-03T00:00"),
                  np.timedelta64(7, "m")).astype("datetime64[s]") - H.LOCAL_OFFSET
    m = H.night_shift(t)
    assert (np.diff(m.astype(np.int64)) > 0).all()
    local_hour = ((m + H.LOCAL_OFFSET).astype("datetime64[m]").astype(np.int64) // 60) % 24
    assert local_hour.min() >= 8


def test_sizes_and_calibrated_counts(small_db, tables):
    _, _, out = small_db
    inc, ev, ins = tables
    assert out["incidents"] == len(inc) and out["events"] == len(ev) and out["inspections"] == len(ins)
    from dashboard.metrics import kpis as K

    s, e = K.calendar_year(2019)
    assert K.units_inspected(ins, s, e) == round(H.UNITS_INSPECTED * SCALE)
    assert K.units_with_problems(ins, s, e) == round(H.UNITS_WITH_PROBLEMS * SCALE)
    assert K.problems_found(ins, s, e) == round(H.PROBLEMS_FOUND * SCALE)
    assert K.disputes_closed(inc, s, e) == round(H.DISPUTES_CLOSED * SCALE)
    assert K.disputes_resolved(inc, s, e) == round(H.DISPUTES_RESOLVED * SCALE)


def test_every_event_is_an_allowed_step(tables):
    inc, ev, _ = tables
    allowed = set(lifecycle.ALLOWED_STEPS)
    steps = set(zip([None if pd.isna(x) else x for x in ev["from_status"]], ev["to_status"]))
    creation = {(None, "reported")}
    assert steps <= allowed | creation, steps - allowed - creation
    first = ev.groupby("incident_id").head(1)
    assert (first["from_status"].isna() & (first["to_status"] == "reported")).all()
    # the chain links: each from_status is the previous to_status, seq and time strictly increase
    prev_to = ev.groupby("incident_id")["to_status"].shift(1)
    linked = ev["from_status"].isna() | (ev["from_status"] == prev_to)
    assert linked.all()
    g = ev.groupby("incident_id")
    assert (g["seq"].diff().dropna() > 0).all()
    assert (g["at"].diff().dropna() > pd.Timedelta(0)).all()
    assert ev["seq"].is_unique and inc["seq"].is_unique
    assert set(inc["id"]) == set(ev["incident_id"])


def test_closed_only_after_verification_by_the_grid_worker(tables, gd):
    inc, ev, _ = tables
    workers = dict(zip(gd.grids["code"], gd.grids["worker_name"]))
    ver = ev[ev["to_status"] == "verified"].merge(inc[["id", "grid_code"]], left_on="incident_id", right_on="id")
    assert (ver["actor_role"] == "grid_worker").all()
    assert (ver["actor"] == ver["grid_code"].map(workers)).all()
    closed = ev[ev["to_status"] == "closed"]
    assert (closed["from_status"] == "verified").all()
    assigned = ev[ev["to_status"] == "assigned"]
    assert assigned["department"].notna().all()


def test_incident_row_agrees_with_its_events(tables):
    inc, ev, _ = tables
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
    assigned = reached.map(lambda s: "assigned" in s)
    assert (i.loc[district, "level"] == "district").all() and i.loc[assigned, "department"].notna().all()
    assert i.loc[~assigned, "department"].isna().all()
    assert (i.loc[town, "level"] == "town").all()
    assert (i.loc[~district & ~town, "level"] == "onsite").all()
    assert i["severity"].between(1, 4).all() and (i["severity"] <= 2).mean() > 0.75
    assert i["code"].str.match(r"^WX\d{8}-\d{6,}$").all()
    assert (i["due_at"] > i["reported_at"]).all()


def test_points_are_inside_their_grids(tables, gd):
    inc, _, _ = tables
    got = gd.locator.locate_many(inc["lon"].to_numpy(), inc["lat"].to_numpy())
    assert (got == inc["grid_code"].to_numpy()).all()
    zone = dict(zip(gd.grids["code"], gd.grids["zone_code"]))
    assert (inc["grid_code"].map(zone) == inc["zone_code"]).all()


def test_patrol_incidents_are_the_problems_found(tables):
    inc, _, ins = tables
    patrol = inc[inc["inspection_id"].notna()]
    assert (patrol["source"] == "patrol").all()
    per_inspection = patrol.groupby("inspection_id").size()
    expect = ins.set_index("id")["problems_found"]
    expect = expect[expect > 0]
    assert per_inspection.reindex(expect.index, fill_value=0).equals(expect.astype(per_inspection.dtype))
    joined = patrol.merge(ins, left_on="inspection_id", right_on="id", suffixes=("", "_i"))
    assert (joined["grid_code"] == joined["grid_code_i"]).all()
    y2019 = joined[joined["reported_at"] < pd.Timestamp("2020-01-01")]
    local_day = (y2019["reported_at"] + pd.Timedelta(hours=8)).dt.strftime("%Y-%m-%d")
    assert (local_day == pd.to_datetime(y2019["inspected_on"]).dt.strftime("%Y-%m-%d")).all()
    assert (y2019["reporter"] == y2019["inspector"]).all()
    assert not ins.duplicated(["unit_id", "inspected_on"]).any()


def test_stories(tables):
    inc, ev, _ = tables
    local = inc["reported_at"] + pd.Timedelta(hours=8)
    dc = inc[(inc["category"] == "safety.hazchem") & (inc["severity"] == 4)
             & (local.dt.strftime("%Y-%m-%d") == "2019-04-24") & inc["town_code"].str.endswith("-DC")]
    assert len(dc) == 1
    d = dc.iloc[0]
    assert d["level"] == "district" and d["department"] == "emergency" and d["status"] == "closed"
    steps = ev[ev["incident_id"] == d["id"]]
    handled = steps[steps["to_status"] == "handled"]["at"].iloc[0] + pd.Timedelta(hours=8)
    assert handled.strftime("%Y-%m-%d") == "2019-04-24" and handled.hour < 12  # sealed the same morning
    assert "生态环境" in steps[steps["to_status"] == "assigned"]["note"].iloc[0]
    ht = inc[inc["address"].fillna("").str.contains("横塘路") & (inc["subcategory"] == "wall_opening")]
    assert len(ht) == 5 and ht["longstanding"].all() and (ht["status"] == "closed").all()
    assert ((ht["closed_at"] + pd.Timedelta(hours=8)).dt.strftime("%Y-%m-%d") == "2019-11-28").all()
    assert ht["zone_code"].nunique() == 1


def test_recent_days_have_open_cases_in_every_state(tables):
    inc, _, _ = tables
    recent = inc[inc["reported_at"] >= pd.Timestamp(NOW) - pd.Timedelta(days=31)]
    assert recent["reported_at"].max() <= pd.Timestamp(NOW)
    open_states = set(recent.loc[recent["status"] != "closed", "status"])
    assert open_states == set(lifecycle.OPEN_STATES)
    overdue = (recent["status"] != "closed") & (recent["due_at"] < pd.Timestamp(NOW))
    assert overdue.any()


def test_same_seed_same_rows(gd, tables):
    a = H.generate(gd, H.DemoConfig(scale=SCALE, now=NOW))
    b = H.generate(gd, H.DemoConfig(scale=SCALE, now=NOW))
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.inspections, b.inspections)
    c = H.generate(gd, H.DemoConfig(seed=7, scale=SCALE, now=NOW))
    assert not a.incidents["lon"].equals(c.incidents["lon"])
    # and what was stored is exactly what the generator made
    inc, _, _ = tables
    assert inc["description"].tolist() == a.incidents["description"].tolist()
    assert np.allclose(inc["lon"], a.incidents["lon"])


def test_refuses_or_skips_when_demo_data_present_and_reset_wipes(small_db, geodata_dir, tmp_path):
    url, engine, _ = small_db
    with pytest.raises(H.DemoDataPresent, match="--reset"):
        H.run_history(url, scale=SCALE, now=NOW, geodata_dir=geodata_dir, progress=False)
    assert H.run_history(url, scale=SCALE, now=NOW, geodata_dir=geodata_dir, progress=False,
                         if_present="skip") == {"skipped": True}
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    first = H.run_history(other, scale=0.002, now=NOW, geodata_dir=geodata_dir, progress=False)
    again = H.run_history(other, scale=0.002, now=NOW, geodata_dir=geodata_dir, progress=False, reset=True)
    assert again["incidents"] == first["incidents"]
    from dashboard.store import make_engine

    eng = make_engine(other)
    try:
        with eng.connect() as c:
            assert c.execute(text("SELECT count(*) FROM incidents")).scalar_one() == first["incidents"]
    finally:
        eng.dispose()


def test_cli_refuses_with_a_clear_message(small_db, geodata_dir, capsys):
    from dashboard.demo.__main__ import main

    url, _, _ = small_db
    rc = main(["history", "--db", url, "--scale", "0.002", "--geodata", str(geodata_dir), "--quiet"])
    assert rc == 3
    assert "already holds demo data" in capsys.readouterr().err
    assert main(["history", "--db", url, "--if-missing", "--geodata", str(geodata_dir), "--quiet"]) == 0


def test_some_recent_cases_lie_inside_hazard_safety_rings(tables, gd):
    inc, _, _ = tables
    hz = gd.hazards[gd.hazards["kind"].isin(["hazchem", "gas_station"])]
    recent = inc[(inc["reported_at"] >= pd.Timestamp(NOW) - pd.Timedelta(days=3)) & (inc["status"] != "closed")]
    lat0 = np.radians(30.85)
    dx = (recent["lon"].to_numpy()[:, None] - hz.geometry.x.to_numpy()[None, :]) * 111_320 * np.cos(lat0)
    dy = (recent["lat"].to_numpy()[:, None] - hz.geometry.y.to_numpy()[None, :]) * 111_320
    inside = (np.hypot(dx, dy) <= hz["ring_m"].to_numpy()[None, :]).any(axis=1)
    assert inside.sum() >= 3


def test_nothing_is_reported_or_happens_after_now_even_before_dawn(tmp_path, geodata_dir):
    """At 01:30 in Huzhou (before the demo's working day starts) no incident or step lies in the future."""
    from sqlalchemy import text

    from dashboard.store import make_engine

    early = dt.datetime(2025, 11, 24, 17, 30, 0)  # UTC = 01:30 local on the 25th
    url = f"sqlite:///{tmp_path / 'early.sqlite3'}"
    H.run_history(url, scale=SCALE, now=early, geodata_dir=geodata_dir, progress=False)
    engine = make_engine(url)
    with engine.connect() as conn:
        last_report = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
        last_event = conn.execute(text("SELECT max(at) FROM incident_events")).scalar_one()
    engine.dispose()
    assert last_report <= early.isoformat(" ") and last_event <= early.isoformat(" ")
