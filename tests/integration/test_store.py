"""Store: migrations, idempotent create (also concurrent), atomic transitions, change sequence, pagination, bulk."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, inspect, select, text

from dashboard.store import catalogue, init_db, lifecycle, make_engine, sequence, session_factory
from dashboard.store import incidents as repo
from dashboard.store.models import UTC, Incident, IncidentEvent, Inspection


def _new(point, **kw) -> repo.NewIncident:
    lon, lat, grid, zone, town = point
    base = dict(category="dispute.civil", description="邻里纠纷", lon=lon, lat=lat, grid_code=grid,
                zone_code=zone, town_code=town, reporter="张网格")
    base.update(kw)
    return repo.NewIncident(**base)


def _counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (c.execute(text("SELECT COUNT(*) FROM incidents")).scalar_one(),
                c.execute(text("SELECT COUNT(*) FROM incident_events")).scalar_one())


def test_migration_creates_tables_and_indexes(db):
    insp = inspect(db)
    assert {"incidents", "incident_events", "inspections", "hazard_sites", "alembic_version"} <= set(
        insp.get_table_names())
    idx = {i["name"]: i for i in insp.get_indexes("incidents")}
    for name in ("ix_incidents_reported_at", "ix_incidents_status_reported_at", "ix_incidents_grid_code",
                 "ix_incidents_zone_code", "ix_incidents_town_code", "ix_incidents_category", "ix_incidents_seq"):
        assert name in idx, name
    assert idx["ix_incidents_seq"]["unique"]
    assert idx["ix_incidents_status_reported_at"]["column_names"] == ["status", "reported_at"]
    init_db(db)  # idempotent: upgrade head twice is a no-op
    with db.connect() as c:
        from alembic.script import ScriptDirectory

        from dashboard.store import alembic_config

        head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_sqlite_engine_pragmas(tmp_path):
    """SQLite-only (not parametrised over back ends)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'p.sqlite3'}")  # parent dir is created
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_create_sets_fields_and_creation_event(sessions, points):
    reported = dt.datetime(2019, 4, 24, 1, 30, tzinfo=UTC)  # 09:30 Beijing
    with sessions() as s:
        inc, created = repo.create_incident(s, _new(points[0], category="safety.hazchem", reported_at=reported))
    assert created
    assert inc.status == "reported" and inc.level == "onsite" and inc.department is None
    assert inc.severity == catalogue.get("safety.hazchem").default_severity
    assert inc.due_at == reported + dt.timedelta(hours=catalogue.get("safety.hazchem").deadline_hours)
    assert inc.code == f"WX20190424-{inc.seq:06d}"
    assert inc.grid_code == points[0][2]
    with sessions() as s:
        got = s.get(Incident, inc.id)
        assert got.reported_at == reported and got.reported_at.tzinfo is not None
        evs = repo.events_of(s, inc.id)
    assert [(e.from_status, e.to_status, e.seq) for e in evs] == [(None, "reported", inc.seq)]


def test_code_uses_beijing_date(sessions, points):
    late_utc = dt.datetime(2019, 11, 27, 17, 0, tzinfo=UTC)  # 2019-11-28 01:00 Beijing
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(points[1], reported_at=late_utc))
    assert inc.code.startswith("WX20191128-")


def test_idempotent_create(sessions, points, db):
    with sessions() as s:
        a, created_a = repo.create_incident(s, _new(points[0], client_ref="app-1"))
    with sessions() as s:
        b, created_b = repo.create_incident(s, _new(points[1], client_ref="app-1", description="again"))
    assert created_a and not created_b
    assert a.id == b.id and b.description == "邻里纠纷"
    assert _counts(db) == (1, 1)


def test_concurrent_same_client_ref_makes_one_row(sessions, points, db):
    n = 8
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        try:
            barrier.wait()
            with sessions() as s:
                inc, created = repo.create_incident(s, _new(points[i % len(points)], client_ref="same-ref"))
            results.append((inc.id, created))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({r[0] for r in results}) == 1
    assert sum(1 for r in results if r[1]) == 1
    assert _counts(db) == (1, 1)


def test_transition_is_one_atomic_step(sessions, points, db):
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(points[0]))
    before_seq = inc.seq
    with sessions() as s:
        inc2, ev = repo.transition(s, inc.id, "routed", actor="李站长", actor_role="station", note="转镇街")
    assert inc2.status == "routed" and inc2.level == "town" and inc2.seq > before_seq
    assert ev.seq == inc2.seq and ev.from_status == "reported" and ev.to_status == "routed"
    # refused step: nothing changes, no event
    with sessions() as s:
        with pytest.raises(lifecycle.TransitionError):
            repo.transition(s, inc.id, "closed", actor="x", actor_role="town")
    with sessions() as s:
        again = s.get(Incident, inc.id)
        assert again.status == "routed" and again.seq == inc2.seq
    assert _counts(db) == (1, 2)
    with sessions() as s:
        with pytest.raises(repo.IncidentNotFound):
            repo.transition(s, 999999, "routed", actor="x", actor_role="town")


def test_full_district_path_and_close(sessions, points):
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(points[2], category="construction.illegal", subcategory="wall_opening"))
    steps = [("routed", "town", None), ("escalated", "town", None), ("assigned", "district", "enforcement"),
             ("in_progress", "department", None), ("handled", "department", None),
             ("verified", "grid_worker", None), ("closed", "station", None)]
    for to, role, dept in steps:
        with sessions() as s:
            inc, _ = repo.transition(s, inc.id, to, actor="someone", actor_role=role, department=dept,
                                     outcome="resolved" if to == "closed" else None)
    assert inc.status == "closed" and inc.level == "district" and inc.department == "enforcement"
    assert inc.closed_at is not None and inc.outcome == "resolved"
    with sessions() as s:
        evs = repo.events_of(s, inc.id)
    assert [e.to_status for e in evs] == ["reported"] + [s_[0] for s_ in steps]
    assert [e.seq for e in evs] == sorted(e.seq for e in evs)


def test_concurrent_transitions_one_wins(sessions, points, db):
    """Two workers race to move the same case from reported: exactly one step is taken."""
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(points[0]))
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(to):
        barrier.wait()
        try:
            with sessions() as s:
                repo.transition(s, inc.id, to, actor="w", actor_role="station")
            outcomes.append(("ok", to))
        except lifecycle.TransitionError:
            outcomes.append(("refused", to))

    ts = [threading.Thread(target=worker, args=(to,)) for to in ("onsite_handled", "routed")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert _counts(db) == (1, 2)


def test_sequence_monotonic_under_concurrency(sessions, points):
    n_threads, per = 6, 10
    got: list[list[int]] = [[] for _ in range(n_threads)]

    def worker(i):
        for k in range(per):
            with sessions() as s:
                inc, _ = repo.create_incident(s, _new(points[(i * per + k) % len(points)]))
            got[i].append(inc.seq)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    allseq = [x for g in got for x in g]
    assert len(set(allseq)) == n_threads * per
    for g in got:
        assert g == sorted(g)  # each writer sees increasing values
    with sessions() as s:
        assert sequence.current(s) >= max(allseq)
        first = sequence.allocate(s, 5)
        s.commit()
    assert first > max(allseq)


def test_changes_after_in_seq_order(sessions, points):
    ids = []
    for i in range(5):
        with sessions() as s:
            inc, _ = repo.create_incident(s, _new(points[i]))
            ids.append(inc.id)
    with sessions() as s:
        rows, last = repo.changes_after(s, 0)
    assert [r.id for r in rows] == ids and last == rows[-1].seq
    with sessions() as s:
        repo.transition(s, ids[1], "routed", actor="x", actor_role="station")
    with sessions() as s:
        rows2, last2 = repo.changes_after(s, last)
    assert [r.id for r in rows2] == [ids[1]] and rows2[0].status == "routed" and last2 > last
    with sessions() as s:
        rows3, last3 = repo.changes_after(s, last2)
    assert rows3 == [] and last3 == last2
    with sessions() as s:
        page, lastp = repo.changes_after(s, 0, limit=2)
    assert [r.id for r in page] == [ids[0], ids[2]]  # ids[1] moved to the end of the feed


def test_keyset_pagination_covers_everything_once(sessions, points):
    base = dt.datetime(2019, 6, 1, tzinfo=UTC)
    for i in range(23):
        with sessions() as s:
            # pairs share a reported_at: the id breaks the tie
            repo.create_incident(s, _new(points[i % len(points)], reported_at=base + dt.timedelta(hours=i // 2)))
    seen, cursor = [], None
    while True:
        with sessions() as s:
            rows, cursor = repo.list_incidents(s, limit=5, cursor=cursor)
        seen.extend((r.reported_at, r.id) for r in rows)
        if cursor is None:
            break
    assert len(seen) == 23 and len({i for _, i in seen}) == 23
    assert seen == sorted(seen, reverse=True)
    with pytest.raises(repo.CursorError):
        repo.decode_cursor("not-a-cursor")


def test_bulk_insert_helpers(sessions, points, db):
    t0 = dt.datetime(2019, 1, 1, tzinfo=UTC)
    with sessions() as s:
        insp = repo.bulk_insert_inspections(s, [
            dict(unit_id=f"{points[i % 5][2]}-U{i:04d}", grid_code=points[i % 5][2], zone_code=points[i % 5][3],
                 town_code=points[i % 5][4], inspected_on=dt.date(2019, 1, 1 + i % 28), inspector="王",
                 problems_found=i % 3) for i in range(300)])
    assert insp == 300
    rows = [dict(category=list(catalogue.CATEGORIES)[i % 16], lon=points[i % 9][0], lat=points[i % 9][1],
                 grid_code=points[i % 9][2], zone_code=points[i % 9][3], town_code=points[i % 9][4],
                 reported_at=t0 + dt.timedelta(minutes=7 * i), status="closed" if i % 2 else "reported",
                 closed_at=t0 + dt.timedelta(minutes=7 * i + 60) if i % 2 else None) for i in range(2000)]
    with sessions() as s:
        ids = repo.bulk_insert_incidents(s, rows)
    assert len(ids) == 2000 and len(set(ids)) == 2000
    events = [dict(incident_id=iid, at=t0, actor="demo", to_status="reported") for iid in ids]
    with sessions() as s:
        repo.bulk_insert_events(s, events)
    assert _counts(db) == (2000, 2000)
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Inspection)).scalar_one() == 300
        seqs = s.execute(select(Incident.seq)).scalars().all()
        assert len(set(seqs)) == 2000
        codes = s.execute(select(Incident.code)).scalars().all()
        assert len(set(codes)) == 2000
        ev_seqs = s.execute(select(IncidentEvent.seq)).scalars().all()
        # the counter moved past every bulk value: a later create gets a larger seq
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(points[0]))
    assert inc.seq > max(seqs + ev_seqs) and inc.id > max(ids)


def test_bulk_insert_keeps_the_aggregates_exact(tmp_path, points):
    """The bulk helpers (what an importer uses) keep the KPI aggregates equal to a rebuild from the rows."""
    from dashboard.store import aggregates

    t0 = dt.datetime(2019, 1, 1, tzinfo=UTC)
    cats = list(catalogue.CATEGORIES)
    n = 2_000
    rows = [dict(category=cats[i % len(cats)], lon=points[i % 40][0], lat=points[i % 40][1],
                 grid_code=points[i % 40][2], zone_code=points[i % 40][3], town_code=points[i % 40][4],
                 reported_at=t0 + dt.timedelta(seconds=97 * i), status="closed", level="town",
                 closed_at=t0 + dt.timedelta(seconds=97 * i + 3600 * (i % 50)), outcome="resolved")
            for i in range(n)]
    eng = make_engine(f"sqlite:///{tmp_path / 'bulk.sqlite3'}")
    init_db(eng)
    S = session_factory(eng)
    with S() as s:
        ids = repo.bulk_insert_incidents(s, rows)
    with S() as s:
        repo.bulk_insert_events(s, [dict(incident_id=i, at=t0, actor="demo", from_status=None, to_status="reported")
                                    for i in ids] +
                                [dict(incident_id=i, at=r["closed_at"], actor="demo", from_status="verified",
                                      to_status="closed") for i, r in zip(ids, rows)])
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT sum(r_new), sum(c_closed), sum(cf_closed) FROM agg_counts "
                                 "WHERE lvl = 'district' AND grain = 'm'").one() == (n, n, n)
    assert aggregates.check(eng) == []
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request, tmp_path):
    """An engine on an empty database of its own (no migration run): a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
        yield eng
        eng.dispose()
        return
    import uuid

    from sqlalchemy import create_engine

    from tests.conftest import unavailable
    from tests.integration.conftest import PG_BASE_URL, _pg_available

    problem = _pg_available()
    if problem:
        unavailable(f"PostgreSQL at {PG_BASE_URL} is not reachable ({problem})")
    schema = f"t_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_BASE_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(f"{PG_BASE_URL}?options=-csearch_path%3D{schema}")
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migration_0010_backfills_the_year_grain(fresh_engine, points):
    """A store built at the previous head (0009) and kept there — day and month rows, no year rows — upgraded to
    head: migration 0010 makes its year rows, equal to a rebuild's, and a multi-year period reads from them what its
    incidents say (before the upgrade the same read misses the whole years)."""
    from alembic import command

    from dashboard.store import aggregates, alembic_config

    eng = fresh_engine
    cfg = alembic_config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009_agg_hist_level_index")
    t0 = dt.datetime(2021, 11, 20, tzinfo=UTC)
    cats = list(catalogue.CATEGORIES)
    n = 1_200  # one a day for three years and a quarter, across four new years
    rows = [dict(category=cats[i % len(cats)], lon=points[i % 40][0], lat=points[i % 40][1],
                 grid_code=points[i % 40][2], zone_code=points[i % 40][3], town_code=points[i % 40][4],
                 reported_at=t0 + dt.timedelta(days=i, hours=i % 24), status="closed",
                 level="district" if i % 5 == 0 else "town", department="urban" if i % 5 == 0 else None,
                 closed_at=t0 + dt.timedelta(days=i, hours=i % 24 + 1 + i % 70), outcome="resolved")
            for i in range(n)]
    S = session_factory(eng)
    with S() as s:
        ids = repo.bulk_insert_incidents(s, rows)
    with S() as s:
        repo.bulk_insert_events(s, [dict(incident_id=i, at=r["reported_at"], actor="demo", from_status=None,
                                         to_status="reported") for i, r in zip(ids, rows)] +
                                [dict(incident_id=i, at=r["closed_at"], actor="demo", from_status="verified",
                                      to_status="closed") for i, r in zip(ids, rows)])
        repo.bulk_insert_inspections(s, [{"unit_id": f"{p[2]}-U{k:04d}", "grid_code": p[2], "zone_code": p[3],
                                          "town_code": p[4], "inspected_on": dt.date(2021, 12, 1) + dt.timedelta(
                                              days=37 * k), "inspector": "x", "problems_found": k % 2}
                                         for k, p in enumerate(points[:30])])
    tables = (aggregates.AggCounts, aggregates.AggCategory, aggregates.AggDept, aggregates.AggHours,
              aggregates.AggUnits)
    with eng.begin() as c:  # the aggregates as the code of 0009 kept them: day and month rows only
        for t in tables:
            c.execute(t.delete().where(t.c.grain == "y"))
    span = aggregates.DaySpan(dt.date(2021, 12, 20), dt.date(2025, 1, 15))  # days, 2022-2024 whole, days
    assert [g for g, _a, _b in span.pieces()] == ["d", "y", "d"]
    first, last = (dt.datetime.combine(d, dt.time(), tzinfo=UTC) - dt.timedelta(hours=8)
                   for d in (span.first, span.last + dt.timedelta(days=1)))
    expect = sum(1 for r in rows if first <= r["reported_at"] < last)

    def reported():
        units, sums = aggregates.bundle_rows(eng, span, last, first, last).counts
        new = aggregates.BUNDLE_COUNT_COLUMNS.index("r_new")
        return sum(int(v[new]) for u, v in zip(units, sums) if u[0] == "district")

    assert reported() < expect  # the whole years have no rows yet
    init_db(eng)  # upgrade head: 0010
    with eng.connect() as c:
        for t in tables:
            assert c.execute(select(func.count()).select_from(t).where(t.c.grain == "y")).scalar_one() > 0, t.name
    assert reported() == expect
    assert aggregates.check(eng) == []  # the year rows (and all the others) equal a rebuild from the rows


def test_bulk_load_rebuilds_indexes(tmp_path, points):
    """SQLite-only: bulk_load drops the secondary indexes during the load and rebuilds every one."""
    eng = make_engine(f"sqlite:///{tmp_path / 'bl.sqlite3'}")
    init_db(eng)
    before = {t: {i["name"] for i in inspect(eng).get_indexes(t)} for t in ("incidents", "incident_events")}
    S = session_factory(eng)
    t0 = dt.datetime(2019, 1, 1, tzinfo=UTC)
    with repo.bulk_load(eng) as s:
        assert "ix_incidents_reported_at" not in {i["name"] for i in inspect(s.connection()).get_indexes("incidents")}
        ids = repo.bulk_insert_incidents(s, [dict(category="dispute.civil", lon=p[0], lat=p[1], grid_code=p[2],
                                                  zone_code=p[3], town_code=p[4], reported_at=t0)
                                             for p in points], commit=False)
    after = {t: {i["name"] for i in inspect(eng).get_indexes(t)} for t in ("incidents", "incident_events")}
    assert after == before
    with S() as s:
        rows, _ = repo.list_incidents(s, repo.IncidentFilter(grids=[points[0][2]]))
    assert [r.id for r in rows] == [ids[0]]
    eng.dispose()


def test_load_hazard_sites_from_geodata(sessions, geo):
    from dashboard.store.hazards import load_hazard_sites
    from dashboard.store.models import HazardSite

    with sessions() as s:
        n = load_hazard_sites(s, geo.hazards)
    assert n == len(geo.hazards) > 0
    with sessions() as s:
        n2 = load_hazard_sites(s, geo.hazards)  # replaces, does not duplicate
        assert n2 == n and s.execute(select(func.count()).select_from(HazardSite)).scalar_one() == n
        first = geo.hazards.sort_values("code").iloc[0]
        row = s.execute(select(HazardSite).where(HazardSite.code == first["code"])).scalar_one()
    assert (row.kind, row.risk, row.grid_code) == (first["kind"], int(first["risk"]), first["grid_code"])
    assert abs(row.lon - first.geometry.x) < 1e-9 and abs(row.lat - first.geometry.y) < 1e-9
    assert geo.locator.locate(row.lon, row.lat) == row.grid_code


def test_units_in_more_grids_than_one_statement_can_bind_get_their_ordinals(db):
    """A rebuild registers every inspected unit at once: on a province store (~67,000 grids) the grids' last
    ordinals were asked for in one IN list, past PostgreSQL's 65,535 parameters a statement."""
    import pandas as pd

    from dashboard.store import aggregates as agg

    n = 66_000 + 4_000
    grids = [f"g{i:05d}" for i in range(n)]
    with db.begin() as conn:
        first = agg.unit_ordinals(conn, pd.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "grid_code": grids}))
    with db.begin() as conn:
        second = agg.unit_ordinals(conn, pd.DataFrame({"unit_id": [f"v{i}" for i in range(n)], "grid_code": grids}))
    assert (first == 0).all()  # each the first unit of its grid
    assert (second == 1).all()  # the second: every grid's last ordinal was read back
