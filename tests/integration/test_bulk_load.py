"""The store's bulk loader (issue 9: COPY on PostgreSQL, ``executemany`` on SQLite) on both back ends.

What :func:`bulk_copy` writes inside :func:`bulk_load` reads back exactly (NULLs, times, booleans, floats, text
with tabs, newlines and backslashes); the demo with bulk years written this way gives back its frames; the
indexes and constraints are all there again after a load, and still enforced; a failed load leaves the store as
it was; the change sequence and the id sequences continue after the loaded rows.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from dashboard.demo import history as H
from dashboard.store import frames as F
from dashboard.metrics import kpis as K
from dashboard.store import sequence, session_factory
from dashboard.store.incidents import NewIncident, bulk_copy, bulk_load, create_incident
from dashboard.store.models import Incident, IncidentEvent

NOW = dt.datetime(2025, 11, 25, 9, 0, 0)
TABLES = ("inspections", "incidents", "incident_events")


def _schema(engine) -> set:
    """Names of the indexes and constraints of the bulk tables."""
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            return set(c.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND tbl_name "
                                      "IN ('inspections', 'incidents', 'incident_events')")).all())
        idx = c.execute(text("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE "
                             "indrelid IN ('inspections'::regclass, 'incidents'::regclass, "
                             "'incident_events'::regclass)")).all()
        cons = c.execute(text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid IN "
                              "('inspections'::regclass, 'incidents'::regclass, 'incident_events'::regclass)")).all()
        return set(idx) | set(cons)


def _counts(engine) -> dict:
    with engine.connect() as c:
        return {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def _incident(i: int, **over) -> dict:
    t = np.datetime64("2024-03-01T02:03:04") + np.timedelta64(i, "h")
    row = {"id": i, "code": f"WX-T-{i}", "client_ref": None, "category": "city.appearance", "subcategory": None,
           "severity": 2, "source": "app", "description": f"case {i}", "address": None, "lon": 120.1 + i / 1000,
           "lat": 30.85, "grid_code": "G", "zone_code": "Z", "town_code": "T", "status": "reported",
           "level": "onsite", "department": None, "reporter": "r", "reporter_phone": None, "inspection_id": None,
           "outcome": None, "longstanding": False, "reported_at": t, "updated_at": t,
           "due_at": t + np.timedelta64(48, "h"), "closed_at": np.datetime64("NaT"), "seq": 10_000 + i}
    row.update(over)
    return row


def _columns(rows: list[dict]) -> dict:
    return {k: np.array([r[k] for r in rows], dtype=object if not isinstance(rows[0][k], np.datetime64)
                        else "datetime64[us]") for k in rows[0]}


def test_values_read_back_exactly(db):
    awkward = ["tab\there", "two\nlines", "back\\slash", "\\N", "", "回车\r", "普通"]
    rows = [_incident(k + 1, description=d, address=None if k % 2 else d, longstanding=bool(k % 3 == 0),
                      subcategory="x" if k == 2 else None,
                      closed_at=np.datetime64("2024-03-05T06:07:08.123456") if k == 1 else np.datetime64("NaT"))
            for k, d in enumerate(awkward)]
    rows[1]["status"] = "closed"
    with bulk_load(db) as s:
        assert bulk_copy(s, "incidents", _columns(rows)) == len(rows)
    t = Incident.__table__
    with db.connect() as c:
        got = c.execute(select(t.c.id, t.c.description, t.c.address, t.c.longstanding, t.c.subcategory,
                               t.c.closed_at, t.c.reported_at, t.c.lon, t.c.severity).order_by(t.c.id)).all()
    assert len(got) == len(rows)
    for r, g in zip(rows, got):
        assert (g.id, g.description, g.address, g.longstanding, g.subcategory, g.lon, g.severity) == \
            (r["id"], r["description"], r["address"], r["longstanding"], r["subcategory"], r["lon"], r["severity"])
        assert g.reported_at == pd.Timestamp(r["reported_at"]).tz_localize("UTC")
        assert g.closed_at == (None if np.isnat(r["closed_at"]) else pd.Timestamp(r["closed_at"]).tz_localize("UTC"))


def test_demo_with_bulk_years_reads_back(db, geo):
    data = H.generate(geo, H.DemoConfig(scale=0.005, now=NOW))
    g = H.Geo(geo)
    plan = H.bulk_plan(3_000, np.datetime64(NOW, "s"), 30, chunk=1_200)
    pool = H.location_pool(1, g, size=32)
    effects = H.zone_effects(np.random.default_rng(1), g)
    chunks = [H.bulk_chunk(1, k, g, pool, effects, plan, np.datetime64(NOW, "s")) for k in range(len(plan.bounds))]
    before = _schema(db)
    out = H.write(db, data, bulk=chunks, split=plan.start_utc)
    assert _schema(db) == before
    parts = [data] + chunks
    assert out["incidents"] == sum(len(p.incidents) for p in parts) == _counts(db)["incidents"]
    assert out["events"] == sum(len(p.events) for p in parts) == _counts(db)["incident_events"]

    times = ["reported_at", "updated_at", "due_at", "closed_at"]
    cols = ["category", "subcategory", "severity", "source", "description", "address", "lon", "lat", "grid_code",
            "zone_code", "town_code", "status", "level", "department", "reporter", "reporter_phone", "outcome",
            "longstanding", *times]
    with db.connect() as c:
        inc = pd.DataFrame(c.execute(select(*(Incident.__table__.c[k] for k in cols))).all(), columns=cols)
        ev = pd.DataFrame(c.execute(select(IncidentEvent.at, IncidentEvent.actor, IncidentEvent.actor_role,
                                           IncidentEvent.from_status, IncidentEvent.to_status, IncidentEvent.note,
                                           IncidentEvent.department)).all())

    def canon(df, columns, tcols):
        d = df[columns].copy()
        for k in tcols:
            d[k] = pd.to_datetime(d[k], utc=True).dt.tz_localize(None).astype("datetime64[s]")
        return sorted(map(tuple, d.astype(object).where(d.notna(), None).to_numpy().tolist()), key=repr)

    assert canon(inc, cols, times) == canon(pd.concat([p.incidents for p in parts]), cols, times)
    assert canon(ev, list(ev.columns), ["at"]) == canon(pd.concat([p.events for p in parts]), list(ev.columns), ["at"])
    s19, e19 = K.calendar_year(2019)
    assert K.all_kpis(F.load_incidents(db, s19, e19), F.load_inspections(db, s19, e19), geo.grids, s19, e19) == \
        K.all_kpis(data.incidents, data.inspections, geo.grids, s19, e19)
    with db.connect() as c:
        disagree = c.execute(text(
            "SELECT count(*) FROM incidents i WHERE i.status <> (SELECT e.to_status FROM incident_events e "
            "WHERE e.incident_id = i.id ORDER BY e.seq DESC LIMIT 1) OR i.seq <> (SELECT max(e.seq) FROM "
            "incident_events e WHERE e.incident_id = i.id)")).scalar_one()
        wrong_patrol = c.execute(text(
            "SELECT count(*) FROM incidents i JOIN inspections s ON s.id = i.inspection_id "
            "WHERE s.grid_code <> i.grid_code OR s.problems_found < 1")).scalar_one()
        patrol = c.execute(text("SELECT count(*) FROM incidents WHERE inspection_id IS NOT NULL")).scalar_one()
        problems = c.execute(text("SELECT sum(problems_found) FROM inspections")).scalar_one()
        max_seq = c.execute(text("SELECT max(seq) FROM incident_events")).scalar_one()
        max_id = c.execute(text("SELECT max(id) FROM incidents")).scalar_one()
    assert disagree == 0 and wrong_patrol == 0 and patrol == problems
    Session = session_factory(db)
    with Session() as s:  # the change sequence and the id sequence continue after the load
        assert sequence.allocate(s, 1) > max_seq
        s.rollback()
    with Session() as s:
        inc_new, created = create_incident(s, NewIncident(category="city.appearance", lon=120.1, lat=30.85,
                                                          grid_code="G", zone_code="Z", town_code="T"))
        assert created and inc_new.id > max_id and inc_new.seq > max_seq


def test_constraints_are_back_and_enforced(db):
    with bulk_load(db) as s:
        bulk_copy(s, "incidents", _columns([_incident(1), _incident(2)]))
    with pytest.raises(IntegrityError):  # unique code
        with bulk_load(db) as s:
            bulk_copy(s, "incidents", _columns([_incident(3, code="WX-T-1")]))
    with pytest.raises(IntegrityError):  # the events' foreign key to incidents
        with bulk_load(db) as s:
            bulk_copy(s, "incident_events", {"incident_id": np.array([99]), "seq": np.array([1]),
                                             "at": np.array(["2024-03-01T00:00:00"], dtype="datetime64[s]"),
                                             "actor": np.array(["x"], dtype=object),
                                             "to_status": np.array(["reported"], dtype=object)})
    assert _counts(db) == {"inspections": 0, "incidents": 2, "incident_events": 0}


def test_a_failed_load_leaves_the_store_as_it_was(db):
    before = _schema(db)
    with pytest.raises(RuntimeError, match="stop"):
        with bulk_load(db) as s:
            bulk_copy(s, "incidents", _columns([_incident(k) for k in range(1, 50)]))
            raise RuntimeError("stop")
    assert _counts(db)["incidents"] == 0 and _schema(db) == before
