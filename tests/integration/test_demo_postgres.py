"""A small demo history on both back ends (SQLite and a throwaway PostgreSQL schema, see conftest ``backend``):
stored rows give the same KPIs as the generated frames, and the store's sequences continue after the load."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from dashboard.demo import history as H
from dashboard.store import frames as F
from dashboard.metrics import kpis as K

NOW = dt.datetime(2025, 11, 25, 9, 0, 0)


def test_small_history_roundtrip(db, geo):
    data = H.generate(geo, H.DemoConfig(scale=0.005, now=NOW))
    out = H.write(db, data)
    assert out["incidents"] == len(data.incidents)
    start, end = K.calendar_year(2019)
    inc = F.load_incidents(db, start, end)
    ins = F.load_inspections(db, start, end)
    stored = K.all_kpis(inc, ins, geo.grids, start, end)
    made = K.all_kpis(data.incidents, data.inspections, geo.grids, start, end)
    assert stored == made
    ev = F.load_events(db, start, end)
    assert K.funnel(ev).set_index("state").loc["reported", "incidents"] == len(inc)
    assert H.has_demo_data(db)
    with db.connect() as c:
        n_ev = c.execute(text("SELECT count(*) FROM incident_events")).scalar_one()
        max_seq = c.execute(text("SELECT max(seq) FROM incident_events")).scalar_one()
    assert n_ev == len(data.events)
    from dashboard.store import sequence, session_factory

    with session_factory(db)() as s:  # the change sequence continues after the demo's block
        assert sequence.allocate(s, 1) > max_seq
        s.rollback()
